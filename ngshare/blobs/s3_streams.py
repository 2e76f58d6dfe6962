"""The file objects of the S3 store: a download's body read in pieces, and
a source stream whose errors stay its own during an upload.

Both are ``io.RawIOBase`` (``read(n)``, ``readinto``, ``close``, ``with``),
what the handlers, ``ngshare-admin verify`` and the move use; neither
imports boto3.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, BinaryIO


class SourceError(Exception):
    """What the stream given to :meth:`S3Store.put_stream` raised, carried
    through the transfer so that it is not taken for the bucket's refusal."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class Source(io.RawIOBase):
    """The caller's stream, with its errors marked as :class:`SourceError`."""

    def __init__(self, stream: BinaryIO):
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._stream.read(size)
        except Exception as error:
            raise SourceError(error) from error

    def readinto(self, buffer) -> int:
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)


class ObjectReader(io.RawIOBase):
    """A downloaded object, read in the pieces the caller asks for.

    Wraps botocore's ``StreamingBody``: ``read(n)`` takes at most ``n`` bytes
    from the socket, so a download holds one piece at a time. A store that
    fails mid-stream (gone, too slow, the body cut short: botocore checks
    the length) raises :class:`~.store.ObjectStoreFailure`, an ``OSError``,
    never a silently short blob.
    """

    def __init__(self, body: Any, fail):
        super().__init__()
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError('read of a closed blob')
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except Exception as error:  # botocore and urllib3 errors alike
            raise self._fail(error) from error

    def readinto(self, buffer) -> int:
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


__all__ = ['ObjectReader', 'Source', 'SourceError']
