"""Storing an uploaded tree as blobs + rows, and answering one back."""

from __future__ import annotations

import dataclasses

from sqlalchemy import insert

from ..blobs.lifecycle import lock_blob
from ..database.models import File
from ..database.prepared import prepared
from ..filetree import TreeFile, parse_tree
from .context import Context
from .uploads import PreparedUpload


def upload_tree(ctx: Context, files: PreparedUpload | str | None) -> list[TreeFile]:
    """The uploaded tree: prepared before the transaction (the request
    path, :mod:`.uploads`), or the ``files`` JSON decoded now (operations
    called directly, as the debug actions and tests do)."""
    if isinstance(files, PreparedUpload):
        return files.tree()
    return parse_tree(files, ctx.max_file_size)


def store_tree(ctx: Context, tree: list[TreeFile]) -> list[File]:
    """Make sure every file's blob is stored; the (unsaved) rows naming them.

    Runs inside the request's write transaction, after its first statement:
    on SQLite that transaction already holds the write lock, and on
    PostgreSQL a shared advisory lock per blob is taken here. The clean-up of
    a failed request removes blobs only under the matching exclusive lock,
    so it can never delete a blob that this transaction is about to commit a
    reference to. A blob written before the transaction (:mod:`.uploads`)
    costs one existence check here, and is written again if a clean-up
    removed it meanwhile. The content is not hashed again: the tree carries
    its md5 and key.
    """
    return [File(**row) for row in _stored_rows(ctx, tree)]


def insert_tree(ctx: Context, tree: list[TreeFile], **owner: int) -> None:
    """As :func:`store_tree`, the rows inserted at once for ``owner``
    (``submission_id=``, ``feedback_id=`` or ``assignment_id=``): one Core
    statement for the whole tree (built once; no ORM bulk insert, which
    would also read back every row's key), for the uploads of every
    student."""
    rows = [{**row, **owner} for row in _stored_rows(ctx, tree)]
    if rows:
        ctx.session.execute(prepared('insert files', _insert_files), rows)


def _insert_files():
    return insert(File.__table__).inline()


def _stored_rows(ctx: Context, tree: list[TreeFile]) -> list[dict]:
    rows = []
    for item in tree:
        key = item.key
        lock_blob(ctx.session, key, shared=True)
        if ctx.store.put(key, item.content, md5_hex=item.checksum):
            ctx.created_blobs.append(key)
        rows.append(
            {
                'filename': item.path,
                'checksum': item.checksum,
                'actual_name': key,
                'size': len(item.content),
            }
        )
    return rows


def release_blobs(ctx: Context, keys) -> None:
    """Mark blobs for removal once unreferenced: recorded in the same
    transaction and removed after the grace period (``operations.released``),
    or right after the commit with ``--released-blob-grace 0``."""
    ctx.released_blobs.extend(keys)


@dataclasses.dataclass(frozen=True)
class FileRef:
    """What an answer needs of a file; its content is read while answering."""

    path: str
    checksum: str
    key: str
    # As recorded at upload, for the history (None: unknown, as for some
    # files of 0.6.0); the answer's sizes are the blobs' own.
    size: int | None = None


def list_tree(files) -> list[FileRef]:
    """The files of an answer (``File`` rows, or result rows with their
    columns), in upload order, without their content.

    The handler writes the answer out file by file (reading and encoding one
    blob at a time), so a large tree is never held in memory at once.
    """
    return [
        FileRef(row.filename, row.checksum, row.actual_name, row.size) for row in files
    ]
