"""What ngshare needs of a blob store, whatever keeps the bytes.

A blob is the content of one uploaded file, named by its key,
``sha256/ab/cd/<sha256>`` (:func:`blob_key`): identical content is stored
once. Keys written by ngshare 0.6.0 (flat UUID names) are read the same way.
A key is always chosen by the server and checked before use: nothing a
client sends decides where a file lands.

:class:`BlobStore` is the interface the operations, the lifecycle
(:mod:`.lifecycle`), ``ngshare-admin gc`` and ``verify`` use; the local
folder (:mod:`.folder`) is today's one implementation, chosen by
:func:`ngshare.blobs.open_store` from the ``--storage`` value. A second one
(object storage) is a new module and a branch there.

A store that refuses (full, over quota, read-only, gone, broken) raises
:class:`BlobStoreFailure`, which knows which blob and whether more space
would help: the request then answers 507 or 503 instead of a bare 500 (see
``operations/runner.py``), and the admin reads one line saying what to do.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

# Prefixes of the temporary files ngshare writes into the storage folder: a
# blob being written, the start-up probe, the cookie secret being created.
BLOB_TEMPORARY_PREFIX = '.tmp-'
PROBE_PREFIX = '.probe-'
SECRET_PREFIX = '.secret-'  # noqa: S105 (a file name prefix)
TEMPORARY_PREFIXES = (BLOB_TEMPORARY_PREFIX, PROBE_PREFIX, SECRET_PREFIX)


def blob_key(content: bytes) -> str:
    """The key content is stored under: its sha256, sharded two levels deep
    so that every folder stays small however many files a university
    uploads."""
    digest = hashlib.sha256(content).hexdigest()
    return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'


class StorageError(Exception):
    """The store is unusable (missing, not a folder, not writable)."""


# A file system that refuses these needs more room (or a larger limit); the
# others mean it is not there, not writable, or failing.
FULL_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        getattr(errno, 'EDQUOT', None),
        errno.EFBIG,
    )
    if code is not None
)


class BlobStoreFailure(OSError):
    """The store refused a blob write or read; nothing was stored.

    An ``OSError`` still (``errno``, ``strerror``, ``filename``), so code
    that catches ``OSError`` keeps working; ``full`` tells whether the
    storage ran out of room, ``relative`` names the blob in the store, and
    :meth:`advice` is the line for the admin.
    """

    def __init__(self, error: OSError, *, action: str, relative: str, root: Path):
        super().__init__(error.errno, error.strerror, error.filename)
        self.action = action
        self.relative = relative
        self.root = root
        self.full = error.errno in FULL_ERRNOS

    @property
    def errno_name(self) -> str:
        return errno.errorcode.get(self.errno, str(self.errno))

    def advice(self) -> str:
        """One line: what failed, where, and what the admin should do."""
        what = (
            f'cannot {self.action} {self.relative} in storage folder {str(self.root)!r}'
            f' ({self.errno_name}: {self.strerror})'
        )
        if self.full:
            return (
                f'Storage full: {what}; free space on it, or raise its quota or'
                ' the file size limit (ulimit -f) of the ngshare process'
            )
        return (
            f'Storage unavailable: {what}; check that the storage folder is'
            ' mounted read-write, is a folder writable by the ngshare user, and'
            ' that its disk is healthy'
        )


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """An object in the store; ``key`` is its name relative to the store,
    with ``/`` separators, as ``files.actual_name`` spells it; ``mtime`` a
    Unix time."""

    key: str
    size: int
    mtime: float


class BlobStore(Protocol):
    """The operations ngshare performs on stored blobs."""

    def check_usable(self) -> None:
        """Create the store if needed and prove that blobs can be written;
        else raise :class:`StorageError` with the one line start-up shows."""

    def put(self, key: str, content: bytes) -> bool:
        """Store ``content`` under ``key`` (its :func:`blob_key`, which the
        caller computed already); whether this call created it. Atomic: a
        failure (:class:`BlobStoreFailure`) leaves nothing under ``key``."""

    def open(self, key: str) -> BinaryIO:
        """The blob, open for binary reading; the caller closes it. A
        missing blob raises ``FileNotFoundError`` (lost data), any other
        refusal :class:`BlobStoreFailure`."""

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Remove the blob; nothing to do if it is not there."""

    def stat(self, key: str) -> StoredFile | None:
        """Size and modification time of what is stored under ``key`` (a
        blob or any other object), or None if nothing is."""

    def iter_files(self) -> Iterator[StoredFile]:
        """Everything stored, blobs and temporary files alike, in a
        stable order, for ``ngshare-admin gc``."""


__all__ = [
    'BLOB_TEMPORARY_PREFIX',
    'FULL_ERRNOS',
    'PROBE_PREFIX',
    'SECRET_PREFIX',
    'TEMPORARY_PREFIXES',
    'BlobStore',
    'BlobStoreFailure',
    'StorageError',
    'StoredFile',
    'blob_key',
]
