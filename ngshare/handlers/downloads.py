"""Tree answers written out piece by piece, never whole in memory.

An assignment, submission or feedback answer is ``{"success": true, ...,
"files": [{"path", "checksum", "content"}, ...]}`` with base64 contents. Each
blob is read and base64-encoded in the worker pool, in pieces of
:data:`DOWNLOAD_CHUNK` bytes, each written and flushed (sent to the client)
before the next is read, so the answer never holds more than a piece of one
file, whatever the size of the files. A blob is opened and its first piece
read in one trip to the pool, so that a file of one piece (most notebooks,
every feedback page) costs one.

Blobs are checked to exist before the first byte of the answer is written,
so a missing one is a clean JSON 500 rather than a truncated answer, and a
store that refuses the check (a bucket unreachable) the documented 503.
Once the answer has begun, a blob that cannot be opened or read to its end
(the storage failing meanwhile, an object store cutting the body off) can
no longer become a JSON error: the connection is closed, so that the client
sees a broken answer, never a short one that parses.
"""

from __future__ import annotations

import binascii
import json
import logging

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from ..blobs.store import BlobStoreFailure
from ..operations.runner import storage_api_error

log = logging.getLogger('ngshare.handlers')

# Files are read, base64-encoded and written out in pieces of this many
# bytes: a multiple of 3, so that the pieces' base64 texts concatenate.
DOWNLOAD_CHUNK = 3 * 256 * 1024


# The base64 length of a full piece: a shorter one is a file's last.
_FULL_PIECE = DOWNLOAD_CHUNK // 3 * 4


def read_chunk_encoded(stream) -> bytes:
    """The next piece of an open blob, base64-encoded (empty at the end).

    Read until the piece is full or the blob ends, so that a piece shorter
    than a full one is always the blob's last (a stream may answer a read
    with fewer bytes before its end)."""
    raw = stream.read(DOWNLOAD_CHUNK)
    while raw and len(raw) < DOWNLOAD_CHUNK:
        more = stream.read(DOWNLOAD_CHUNK - len(raw))
        if not more:
            break
        raw += more
    return binascii.b2a_base64(raw, newline=False)


def _open_encoded(store, key):
    """The blob open and its first piece; closed already when that piece is
    all of it. One trip to the pool for a file of one piece."""
    stream = store.open(key)
    try:
        piece = read_chunk_encoded(stream)
    except BaseException:
        stream.close()
        raise
    if len(piece) < _FULL_PIECE:
        stream.close()
        return None, piece
    return stream, piece


def _checked_and_first(store, files):
    """The keys of missing blobs, else the first file opened as by
    :func:`_open_encoded`: one trip to the pool for the check and a
    one-piece answer."""
    missing = [f.key for f in files if not store.exists(f.key)]
    if missing:
        return missing, None
    return [], _open_encoded(store, files[0].key)


async def write_tree(handler: RequestHandler, fields: dict, *, list_only: bool):
    """Answer ``fields`` (with its ``files`` of FileRef) on ``handler``."""
    files = fields.pop('files')
    store = handler.runtime.store
    pool = handler.runtime.pool
    loop = IOLoop.current()
    first = None
    if not list_only and files:
        try:
            missing, first = await loop.run_in_executor(
                pool, _checked_and_first, store, files
            )
        except BlobStoreFailure as failure:
            raise storage_api_error(failure) from None
        if missing:
            raise RuntimeError(f'blobs missing from storage: {missing}')
    head = json.dumps({'success': True, **fields})
    handler.write(head[:-1] + ', "files": [')
    for index, ref in enumerate(files):
        entry = json.dumps({'path': ref.path, 'checksum': ref.checksum})
        if list_only:
            handler.write((', ' if index else '') + entry)
            continue
        # The same text as json.dumps of the entry with its content.
        handler.write((', ' if index else '') + entry[:-1] + ', "content": "')
        try:
            if first is not None:
                (stream, piece), first = first, None
            else:
                stream, piece = await loop.run_in_executor(
                    pool, _open_encoded, store, ref.key
                )
        except OSError as error:
            _abandon(handler, ref.key, error)
            return
        try:
            while piece:
                handler.write(piece)
                del piece
                await handler.flush()
                if stream is None:
                    break
                piece = await loop.run_in_executor(pool, read_chunk_encoded, stream)
        except OSError as error:  # BlobStoreFailure is one
            _abandon(handler, ref.key, error)
            return
        finally:
            if stream is not None:
                stream.close()
        handler.write('"}')
    handler.finish(']}')


def _abandon(handler: RequestHandler, key: str, error: OSError) -> None:
    """Close an answer already under way: its blob cannot be read."""
    log.error('Cannot read %s for an answer, closing it: %s', key, error)
    handler.request.connection.close()
