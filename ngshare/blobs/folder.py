"""The blob store as a local folder (``--storage PATH``).

Each blob is a file under the folder, at its key (``sha256/ab/cd/<sha256>``,
or a 0.6.0 UUID name). A blob is written to a temporary name in its target
folder, flushed, and renamed into place, so a crash never leaves a partial
file under a real name. The file system's refusals are raised as
:class:`~.store.BlobStoreFailure`, naming the file relative to the folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..paths import is_legal_path
from .store import (
    BLOB_TEMPORARY_PREFIX,
    PROBE_PREFIX,
    SECRET_PREFIX,
    BlobStoreFailure,
    StorageError,
    StoredFile,
)

# put_stream reads its source in pieces of this size.
STREAM_PIECE = 1024 * 1024


class FolderStore:
    """A :class:`~.store.BlobStore` keeping each blob as a file under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def location(self) -> str:
        """The folder, as messages show it."""
        return str(self.root)

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
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=PROBE_PREFIX):
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

    def path_for(self, key: str) -> Path:
        """The file of ``key``; a key that is no legal relative path (it
        could name a file outside the folder) raises ``ValueError``."""
        if not is_legal_path(key):
            raise ValueError(f'illegal blob key {key!r}')
        return self.root / key

    def _inside(self, key: str) -> Path:
        """The file of any key :meth:`iter_files` may list (leftovers with
        names no client could choose included), refusing only keys that
        could leave the folder."""
        parts = key.split('/')
        if not key or any(part in ('', '.', '..') for part in parts):
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

    def put(self, key: str, content: bytes, *, md5_hex: str | None = None) -> bool:
        """Store ``content`` under ``key``; whether this call created it.

        The content is not hashed again: the caller computed ``key`` from
        these very bytes (:func:`~.store.blob_key`), and ``ngshare-admin
        verify`` checks every blob against its name. Raises
        :class:`BlobStoreFailure` when the file system refuses; the
        temporary file is removed then, so a failed write leaves nothing.
        """
        target = self.path_for(key)
        with self._failures('write', key):
            if target.is_file():
                return False
            temporary = _written_beside(target, content, BLOB_TEMPORARY_PREFIX)
            try:
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        return True

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store what ``stream`` yields under ``key``, replacing any file
        there (the move between stores), one piece in memory at a time.

        As :meth:`put`: a temporary file in the target folder, flushed and
        renamed into place, removed on any failure, so ``key`` holds the old
        file or the complete new one. The file system's refusals are
        :class:`BlobStoreFailure`; what reading ``stream`` raises is raised
        as it is.
        """
        target = self.path_for(key)
        with self._failures('write', key):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(
                dir=target.parent, prefix=BLOB_TEMPORARY_PREFIX
            )
        try:
            with os.fdopen(fd, 'wb') as output:
                while piece := stream.read(STREAM_PIECE):
                    with self._failures('write', key):
                        output.write(piece)
                with self._failures('write', key):
                    output.flush()
                    os.fsync(output.fileno())
            with self._failures('write', key):
                os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def check_readable(self) -> None:
        """Prove, creating nothing, that the folder exists and can be
        listed; else :class:`StorageError` with one line."""
        shown = repr(str(self.root))
        if not self.root.is_dir():
            raise StorageError(f'storage folder {shown} does not exist')
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise StorageError(f'storage folder {shown} is not readable by this user')

    def open(self, key: str) -> BinaryIO:
        """The blob, open for binary reading; the caller closes it."""
        path = self.path_for(key)
        with self._failures('read', key):
            return open(path, 'rb')  # noqa: SIM115

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file of ``key`` (a blob, or a leftover ``gc`` found)."""
        with contextlib.suppress(FileNotFoundError):
            self._inside(key).unlink()

    def stat(self, key: str) -> StoredFile | None:
        """What is at ``key`` (not following a symbolic link), or None."""
        try:
            info = os.lstat(self._inside(key))
        except FileNotFoundError:
            return None
        return StoredFile(key, info.st_size, info.st_mtime)

    def iter_files(self) -> Iterator[StoredFile]:
        """The regular files and symbolic links under the folder, folder by
        folder in name order. Folders are walked, not followed through
        symbolic links, and never reported themselves; a file removed
        while walking is skipped."""
        root = os.fspath(self.root)
        for directory, folders, names in os.walk(root):
            folders.sort()
            for name in sorted(names):
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                except FileNotFoundError:
                    continue
                if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
                    continue
                key = Path(os.path.relpath(path, root)).as_posix()
                yield StoredFile(key, info.st_size, info.st_mtime)

    def create_once(self, name: str, content: bytes) -> bytes:
        """Write ``content`` to the file ``name`` unless it exists; what the
        file holds. Written to a temporary file and hard-linked into place
        (a link never replaces a file), so of two processes starting
        together one wins and both read its content."""
        target = self.path_for(name)
        with self._failures('write', name):
            if not target.is_file():
                temporary = _written_beside(target, content, SECRET_PREFIX)
                try:
                    with contextlib.suppress(FileExistsError):
                        os.link(temporary, target)
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(temporary)
        with self._failures('read', name):
            return target.read_bytes()


def _written_beside(target: Path, content: bytes, prefix: str) -> str:
    """A temporary file named ``prefix...`` in ``target``'s folder (made if
    needed) holding ``content``, flushed to disk; the caller moves it into
    place. Removed again if writing it fails."""
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix)
    except FileNotFoundError:
        # The first blob of its shard: a mkdir only then, not on every write.
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix)
    try:
        with os.fdopen(fd, 'wb') as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary
