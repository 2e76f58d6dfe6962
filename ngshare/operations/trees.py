"""Storing an uploaded tree as blobs + rows, and answering one back."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from ..database.models import File
from ..filetree import TreeFile
from .context import Context


def store_tree(ctx: Context, tree: list[TreeFile]) -> list[File]:
    """Write every file's blob and return the (unsaved) rows naming them.

    Runs inside the request's write transaction, after its first statement:
    on SQLite that transaction already holds the write lock, and on
    PostgreSQL a shared advisory lock per blob is taken here. The clean-up of
    a failed request removes blobs only under the matching exclusive lock,
    so it can never delete a blob that this transaction is about to commit a
    reference to.
    """
    rows = []
    for item in tree:
        key = ctx.store.key_for(item.content)
        lock_blob(ctx, key, shared=True)
        key, created = ctx.store.put(item.content)
        if created:
            ctx.created_blobs.append(key)
        rows.append(
            File(
                filename=item.path,
                checksum=item.checksum,
                actual_name=key,
                size=len(item.content),
            )
        )
    return rows


def release_blobs(ctx: Context, keys) -> None:
    """Mark blobs for removal once unreferenced: recorded in the same
    transaction and removed after the grace period (``operations.released``),
    or right after the commit with ``--released-blob-grace 0``."""
    ctx.released_blobs.extend(keys)


def lock_blob(ctx: Context, key: str, *, shared: bool) -> None:
    """Serialise blob writers and blob deleters across PostgreSQL replicas."""
    if ctx.session.get_bind().dialect.name != 'postgresql':
        return
    function = 'pg_advisory_xact_lock_shared' if shared else 'pg_advisory_xact_lock'
    ctx.session.execute(
        text(f'SELECT {function}(hashtextextended(:key, 0))'), {'key': key}
    )


def try_lock_blob(ctx: Context, key: str) -> bool:
    """Take the exclusive blob lock if nobody holds it; whether it was taken.

    For the sweep of released blobs, which must never wait for a lock while
    it holds others. On SQLite the caller's write lock is the blob lock.
    """
    if ctx.session.get_bind().dialect.name != 'postgresql':
        return True
    return bool(
        ctx.session.scalar(
            text('SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))'),
            {'key': key},
        )
    )


@dataclasses.dataclass(frozen=True)
class FileRef:
    """What an answer needs of a file; its content is read while answering."""

    path: str
    checksum: str
    key: str


def list_tree(files: list[File]) -> list[FileRef]:
    """The files of an answer, in upload order, without their content.

    The handler writes the answer out file by file (reading and encoding one
    blob at a time), so a large tree is never held in memory at once.
    """
    return [FileRef(row.filename, row.checksum, row.actual_name) for row in files]
