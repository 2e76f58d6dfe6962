"""Uploads made ready before their transaction: decoded, hashed, written.

A write transaction is short only if the costly part of an upload happens
before it: decoding the tree, hashing every file and writing its blob (a
file written and flushed to disk, or an object PUT to a bucket) take far
longer than the few statements of a submission. On SQLite a write
transaction holds the database's one write lock, so a large upload decoded
inside it would hold up every other write of the process. :func:`prepare`
therefore runs in the worker pool before the operation, outside any
transaction, and the operation gets a :class:`PreparedUpload`.

What this keeps exactly as before:

* **The answers.** A tree that cannot be decoded is not refused here: the
  refusal is kept and raised by the operation at the point where it decodes
  the tree (:meth:`PreparedUpload.tree`), so that a caller without
  permission still gets 403 or 404 first, as in every earlier version.
* **No lost blob.** Writing a blob here is only a head start. Inside the
  transaction :func:`~.trees.store_tree` takes the shared blob lock and
  stores each blob again, which for a blob already there is one existence
  check (a ``stat`` or a ``HEAD``): a concurrent clean-up that deleted it in
  between (another request's failed upload of the same content, the sweep
  of released blobs, ``ngshare-admin gc``) is made good from the content
  still in memory, and no clean-up can delete it from then on until the
  transaction has committed its reference (:mod:`ngshare.blobs.lifecycle`).
* **Nothing left behind.** The blobs created here are handed to the
  operation's unit of work (:func:`created_by`), whose failure removes them
  again like those it created itself. A store that refuses a write here is
  not an answer either: the transaction's own write meets the same refusal
  and answers it (507 or 503) where it always did.

No database, no actor: only the tree, the store and the size limit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from ..blobs.store import BlobStore, BlobStoreFailure
from ..errors import ApiError
from ..filetree import TreeFile, check_parts, parse_tree

log = logging.getLogger('ngshare.operations')

__all__ = ['PreparedUpload', 'created_by', 'prepare_form', 'prepare_parts']


@dataclasses.dataclass
class PreparedUpload:
    """A decoded tree whose blobs are stored, or the refusal of its tree."""

    files: list[TreeFile] = dataclasses.field(default_factory=list)
    error: ApiError | None = None
    # Blob keys this preparation created in the store.
    created: list[str] = dataclasses.field(default_factory=list)

    def tree(self) -> list[TreeFile]:
        """The files, or the tree's refusal raised where the operation
        decodes its tree."""
        if self.error is not None:
            raise self.error
        return self.files

    @property
    def size(self) -> int:
        """Decoded bytes of all files (for the metrics)."""
        return sum(len(item.content) for item in self.files)


def prepare_form(
    store: BlobStore, files_json: str | None, max_file_size: int | None
) -> PreparedUpload:
    """The documented ``files`` field, decoded and stored."""
    return _prepare(store, lambda: parse_tree(files_json, max_file_size))


def prepare_parts(
    store: BlobStore,
    manifest_json: str | None,
    contents: list[bytes],
    max_file_size: int | None,
) -> PreparedUpload:
    """A raw-parts upload (``manifest`` and file parts), checked and stored."""
    return _prepare(store, lambda: check_parts(manifest_json, contents, max_file_size))


def _prepare(store: BlobStore, decode: Callable[[], list[TreeFile]]) -> PreparedUpload:
    try:
        files = decode()
    except ApiError as refusal:
        return PreparedUpload(error=refusal)
    upload = PreparedUpload(files)
    for item in files:
        try:
            if store.put(item.key, item.content, md5_hex=item.checksum):
                upload.created.append(item.key)
        except BlobStoreFailure as failure:
            # Answered by the transaction's own write, which meets it again.
            log.info('Blob write before the transaction refused: %s', failure)
            break
    return upload


def created_by(args: Iterable[object]) -> list[str]:
    """The blobs created by the prepared uploads among an operation's
    arguments, so that its unit of work removes them if it fails."""
    return [
        key for arg in args if isinstance(arg, PreparedUpload) for key in arg.created
    ]
