"""The blob store: file contents on disk, named by their hash.

A blob's key is ``sha256/ab/cd/<sha256>``: identical content is stored once,
and the two levels of sharding keep every folder small however many files
a university uploads. Blobs are written to a temporary name in the target
folder, flushed, and renamed into place, so a crash never leaves a partial
file under a real name. Keys written by ngshare 0.6.0 (flat UUID names) are
read the same way. A key is always chosen by the server and checked before
use: nothing a client sends decides where a file lands.

When the file system refuses (full, over quota, read-only, gone, broken),
the ``OSError`` is raised as a :class:`BlobStoreFailure` that knows which
blob, relative to the storage folder, and whether more space would help:
the request then answers 507 or 503 instead of a bare 500 (see
``operations/runner.py``), and the admin reads one line saying what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

from .filetree import is_legal_path


class StorageError(Exception):
    """The storage folder is unusable (missing, not a folder, not writable)."""


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
    """The file system refused a blob write or read; nothing was stored.

    An ``OSError`` still (``errno``, ``strerror``, ``filename``), so code
    that catches ``OSError`` keeps working; ``full`` tells whether the
    storage ran out of room, ``relative`` names the file under the storage
    folder, and :meth:`advice` is the line for the admin.
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


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def check_usable(self) -> None:
        """Create the folder if needed and prove that blobs can be written.

        The refusal is the one line start-up shows: it names the path at
        fault and says what is wrong with it in the admin's terms (a file
        where the folder should be, a folder it may not write), not the
        bare ``File exists`` of ``mkdir``.
        """
        shown = repr(str(self.root))
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f'storage folder {shown} is not a folder')
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(
                f'cannot create storage folder {shown}: {self._why(error)}'
            ) from None
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix='.probe-'):
                pass
        except OSError as error:
            raise StorageError(
                f'storage folder {shown} is not writable by this user'
                f' ({error.strerror})'
            ) from None

    def _why(self, error: OSError) -> str:
        """Why the folder could not be created: which ancestor is a file."""
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            for parent in (self.root, *self.root.parents):
                if parent.exists() or parent.is_symlink():
                    if not parent.is_dir():
                        return f'{str(parent)!r} is not a folder'
                    break
        where = f' (creating {str(error.filename)!r})' if error.filename else ''
        return f'{error.strerror}{where}'

    @staticmethod
    def key_for(content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'

    def path_for(self, key: str) -> Path:
        if not is_legal_path(key):
            raise ValueError(f'illegal blob key {key!r}')
        return self.root / key

    def _relative(self, path: str | os.PathLike[str] | None, fallback: str) -> str:
        if path is None:
            return fallback
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    @contextlib.contextmanager
    def _failures(self, action: str, key: str):
        """Raise the file system's refusals as :class:`BlobStoreFailure`.

        A missing blob on reading stays ``FileNotFoundError``: that is lost
        data, not a storage folder the admin repairs by freeing space or
        remounting it.
        """
        try:
            yield
        except BlobStoreFailure:
            raise
        except OSError as error:
            if action == 'read' and isinstance(error, FileNotFoundError):
                raise
            raise BlobStoreFailure(
                error,
                action=action,
                relative=self._relative(error.filename, key),
                root=self.root,
            ) from error

    def put(self, content: bytes) -> tuple[str, bool]:
        """Store ``content``; return its key and whether this call created it.

        Raises :class:`BlobStoreFailure` when the file system refuses; the
        temporary file is removed then, so a failed write leaves nothing.
        """
        key = self.key_for(content)
        target = self.path_for(key)
        with self._failures('write', key):
            if target.is_file():
                return key, False
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix='.tmp-')
            try:
                with os.fdopen(fd, 'wb') as stream:
                    stream.write(content)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        return key, True

    def read(self, key: str) -> bytes:
        path = self.path_for(key)
        with self._failures('read', key):
            return path.read_bytes()

    def open(self, key: str):
        """The blob, open for binary reading; the caller closes it."""
        path = self.path_for(key)
        with self._failures('read', key):
            return open(path, 'rb')  # noqa: SIM115

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(key).unlink()
