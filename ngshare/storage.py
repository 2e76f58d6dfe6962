"""The blob store: file contents on disk, named by their hash.

A blob's key is ``sha256/ab/cd/<sha256>``: identical content is stored once,
and the two levels of sharding keep every folder small however many files
a university uploads. Blobs are written to a temporary name in the target
folder, flushed, and renamed into place, so a crash never leaves a partial
file under a real name. Keys written by ngshare 0.6.0 (flat UUID names) are
read the same way. A key is always chosen by the server and checked before
use: nothing a client sends decides where a file lands.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from .filetree import is_legal_path


class StorageError(Exception):
    """The storage folder is unusable (missing, not a folder, not writable)."""


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def check_usable(self) -> None:
        """Create the folder if needed and prove that blobs can be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix='.probe-'):
                pass
        except OSError as error:
            raise StorageError(
                f'storage folder {str(self.root)!r} is not usable: {error.strerror}'
            ) from error

    @staticmethod
    def key_for(content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'

    def path_for(self, key: str) -> Path:
        if not is_legal_path(key):
            raise ValueError(f'illegal blob key {key!r}')
        return self.root / key

    def put(self, content: bytes) -> tuple[str, bool]:
        """Store ``content``; return its key and whether this call created it."""
        key = self.key_for(content)
        target = self.path_for(key)
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
        return self.path_for(key).read_bytes()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(key).unlink()
