"""What ngshare needs of a blob store, whatever keeps the bytes.

A blob is the content of one uploaded file, named by its key,
``sha256/ab/cd/<sha256>`` (:func:`blob_key`): identical content is stored
once. Keys written by ngshare 0.6.0 (flat UUID names) are read the same way.
A key is always chosen by the server and checked before use: nothing a
client sends decides where a file lands.

:class:`BlobStore` is the interface the operations, the lifecycle
(:mod:`.lifecycle`), ``ngshare-admin gc`` and ``verify`` use; the local
folder (:mod:`.folder`) and an S3-compatible bucket (:mod:`.s3`) implement
it, chosen by :func:`ngshare.blobs.open_store` from the ``--storage`` value.

A store that refuses (full, over quota, read-only, gone, broken) raises
:class:`BlobStoreFailure`, which knows which blob and whether more space
would help: the request then answers 507 or 503 instead of a bare 500 (see
``operations/runner.py``), and the admin reads one line saying what to do.
An object store's refusals are :class:`ObjectStoreFailure`, a subclass
whose line names the bucket and the store's error code instead of an errno.
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
    """The store is unusable (missing, not a folder, not writable, a bucket
    that cannot be reached or written); the message is one line."""


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


# Error codes of S3-compatible stores (AWS, Ceph RGW, MinIO, SeaweedFS) that
# mean "no more room": more quota or space would help (507, not 503).
FULL_CODES = frozenset(
    {
        'EntityTooLarge',
        'InsufficientStorage',
        'QuotaExceeded',
        'StorageFull',
        'XMinioStorageFull',
        'XMinioAdminBucketQuotaExceeded',
    }
)


class ObjectStoreFailure(BlobStoreFailure):
    """An object store refused (or could not be reached for) a blob.

    Raised by :mod:`.s3` instead of the folder's errno-based failure, but a
    :class:`BlobStoreFailure` (and so an ``OSError``, errno ``EIO``) for every
    caller: the runner answers 507 when ``full`` and 503 otherwise, exactly
    as for a folder. ``code`` is the store's error code (``AccessDenied``,
    ``NoSuchBucket``...) or, for a store that did not answer, the client's
    exception name (``EndpointConnectionError``, ``ReadTimeoutError``...).
    """

    def __init__(
        self,
        *,
        action: str,
        relative: str,
        location: str,
        code: str,
        message: str,
        endpoint: str | None = None,
        status: int | None = None,
    ):
        OSError.__init__(self, errno.EIO, f'{code}: {message}', relative)
        self.action = action
        self.relative = relative
        self.root = location
        self.location = location
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.full = code in FULL_CODES or status == 507

    @property
    def errno_name(self) -> str:
        return self.code

    def advice(self) -> str:
        """One line: what failed, in which bucket, the store's code, and
        what the admin should check."""
        at = f' at {self.endpoint}' if self.endpoint else ''
        what = (
            f'cannot {self.action} {self.relative} in {self.location}{at}'
            f' ({self.code}: {self.message})'
        )
        if self.full:
            return (
                f"Storage full: {what}; raise the bucket's quota or free space"
                ' on the object store'
            )
        return (
            f'Storage unavailable: {what}; check that the object store is'
            " reachable, that the bucket exists, and that ngshare's credentials"
            ' may read, write and delete objects under the prefix'
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

    @property
    def location(self) -> str:
        """Where the store is, as messages show it: the folder's path, or
        ``s3://bucket/prefix``."""

    def check_usable(self) -> None:
        """Create the store if needed and prove that blobs can be written;
        else raise :class:`StorageError` with the one line start-up shows."""

    def put(self, key: str, content: bytes, *, md5_hex: str | None = None) -> bool:
        """Store ``content`` under ``key`` (its :func:`blob_key`, which the
        caller computed already); whether this call created it. Atomic: a
        failure (:class:`BlobStoreFailure`) leaves nothing under ``key``.
        ``md5_hex``, the content's md5 when the caller has it, spares a
        store that checks transfers by md5 hashing the content again."""

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store what ``stream`` yields (read in pieces) under ``key``,
        replacing what is there: for moving blobs between stores with
        bounded memory. Whole or nothing, as :meth:`put`."""

    def check_readable(self) -> None:
        """Prove, writing nothing, that the store can be listed and read
        (read-only maintenance); else raise :class:`StorageError`."""

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

    def create_once(self, name: str, content: bytes) -> bytes:
        """Store a small object (not a blob: the login cookie secret) under
        ``name`` unless one is there, and return what is stored, whoever
        won a race between processes starting together."""


__all__ = [
    'BLOB_TEMPORARY_PREFIX',
    'FULL_CODES',
    'FULL_ERRNOS',
    'PROBE_PREFIX',
    'SECRET_PREFIX',
    'TEMPORARY_PREFIXES',
    'BlobStore',
    'BlobStoreFailure',
    'ObjectStoreFailure',
    'StorageError',
    'StoredFile',
    'blob_key',
]
