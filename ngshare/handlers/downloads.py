"""Tree answers written out piece by piece, never whole in memory.

An assignment, submission or feedback answer is ``{"success": true, ...,
"files": [{"path", "checksum", "content"}, ...]}`` with base64 contents. Each
blob is read and base64-encoded in the worker pool, in pieces of
:data:`DOWNLOAD_CHUNK` bytes, each written and flushed (sent to the client)
before the next is read, so the answer never holds more than a piece of one
file, whatever the size of the files, apart from the pieces of a small file
collected for the cache under its reservation (:mod:`ngshare.encoded_cache`:
a release fetched by a whole class is read and encoded once). A blob is
opened and its first piece read in one trip to the pool, so that a file of
one piece (most notebooks, every feedback page) costs one.

Blobs are checked to exist, and their sizes read, before the first byte of
the answer is written, so a missing one is a clean JSON 500 rather than a
truncated answer, a store that refuses the check (a bucket unreachable) the
documented 503, and the answer's ``Content-Length`` is known (Tornado's
chunked framing copied every piece). Once the answer has begun, a blob that
cannot be opened or read to its end (the storage failing meanwhile, an
object store cutting the body off), or whose content is not the size its
check said, can no longer become a JSON error: the connection is closed, so
that the client sees a broken answer, never a short one that parses. A
``HEAD`` request is answered 405, as every method no handler defines.
"""

from __future__ import annotations

import binascii
import json
import logging

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
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


def encoded_length(size: int) -> int:
    """The length of the base64 text of ``size`` bytes (no newlines)."""
    return -(-size // 3) * 4


def decoded_size(piece: bytes) -> int:
    """How many bytes the base64 ``piece`` encodes (only a blob's last piece
    has padding): exact where the text's length is not, since 3k+1 to 3k+3
    bytes all encode to 4k+4 characters."""
    return len(piece) // 4 * 3 - piece[-2:].count(b'=')


def _checked_and_opened(store, files, opened: int | None):
    """The keys of missing blobs, and the size of every blob; then, unless
    some are missing, the file at index ``opened`` (if any) opened as by
    :func:`_open_encoded`: one trip to the pool for the check and a
    one-piece answer."""
    missing, sizes = [], []
    for ref in files:
        found = store.stat(ref.key)
        if found is None:
            missing.append(ref.key)
        else:
            sizes.append(found.size)
    if missing or opened is None:
        return missing, sizes, None
    return [], sizes, _open_encoded(store, files[opened].key)


def _answer_length(head: str, entries: list[str], lengths: list[int]) -> int:
    """The exact byte length of the answer :func:`write_tree` writes: the
    texts are ASCII (``json.dumps`` escapes the rest), so characters are
    bytes."""
    total = len(head) + len(']}')
    for index, (entry, length) in enumerate(zip(entries, lengths)):
        total += (2 if index else 0) + len(entry) + length + len('"}')
    return total


async def write_tree(handler: RequestHandler, fields: dict, *, list_only: bool):
    """Answer ``fields`` (with its ``files`` of FileRef) on ``handler``.

    Every blob is checked, and its size read, before the first byte, so that
    the answer's ``Content-Length`` is known: Tornado then writes the pieces
    as they are (no chunked framing, no copy of each). A blob whose content
    turns out longer or shorter than its size said closes the connection:
    the client sees an answer shorter than announced, never one that
    parses. Blobs in the runtime's :class:`~ngshare.encoded_cache.EncodedCache`
    are written from it, without a trip to the pool; small blobs read from
    the store are kept there for the next answer.
    """
    files = fields.pop('files')
    head = json.dumps({'success': True, **fields})[:-1] + ', "files": ['
    if list_only:
        # Small: Tornado sets its Content-Length when it finishes.
        handler.write(head)
        for index, ref in enumerate(files):
            entry = json.dumps({'path': ref.path, 'checksum': ref.checksum})
            handler.write((', ' if index else '') + entry)
        handler.finish(']}')
        return
    runtime = handler.runtime
    cache = runtime.encoded_cache
    loop = IOLoop.current()
    # The first file the cache does not hold is opened in the check's trip.
    opened = next((i for i, ref in enumerate(files) if ref.key not in cache), None)
    sizes = []
    first = None
    if files:
        try:
            missing, sizes, first = await loop.run_in_executor(
                runtime.pool, _checked_and_opened, runtime.store, files, opened
            )
        except BlobStoreFailure as failure:
            raise storage_api_error(failure) from None
        if missing:
            raise RuntimeError(f'blobs missing from storage: {missing}')
    # Each entry is json.dumps of the entry with its content, cut open.
    entries = [
        json.dumps({'path': ref.path, 'checksum': ref.checksum})[:-1] + ', "content": "'
        for ref in files
    ]
    lengths = [encoded_length(size) for size in sizes]
    handler.set_header('Content-Length', _answer_length(head, entries, lengths))
    handler.write(head)
    try:
        for index, ref in enumerate(files):
            handler.write((', ' if index else '') + entries[index])
            if index == opened:
                ready, first = first, None
            else:
                ready = None
            if not await _write_blob(handler, ref.key, sizes[index], ready):
                return
            handler.write('"}')
    finally:
        if first is not None and first[0] is not None:
            first[0].close()
    handler.finish(']}')


async def _write_blob(handler, key: str, size: int, ready) -> bool:
    """Write the base64 text of blob ``key`` (``size`` bytes, as its check
    said): from the cache, or from the store (``ready``: already opened by
    :func:`_open_encoded`). False when the answer had to be closed.

    What is sent is counted in decoded bytes: content of another size, even
    of the same base64 length, closes the answer before a byte too many."""
    runtime = handler.runtime
    cache = runtime.encoded_cache
    length = encoded_length(size)
    if ready is None:
        cached = cache.get(key)
        if cached is not None and _cached_size(*cached) == size:
            for piece in cached[0]:
                handler.write(piece)
                if not await _flushed(handler):
                    return False
            return True
        try:
            ready = await IOLoop.current().run_in_executor(
                runtime.pool, _open_encoded, runtime.store, key
            )
        except OSError as error:
            _abandon(handler, key, error)
            return False
    stream, piece = ready
    fill = cache.reserve(key, length)
    sent, error = 0, None
    try:
        while piece:
            sent += decoded_size(piece)
            if sent > size:
                error = _changed(size, 'longer')
                break
            handler.write(piece)
            if fill is not None:
                fill.add(piece)
            del piece
            if not await _flushed(handler):
                return False
            if stream is None:
                break
            piece = await IOLoop.current().run_in_executor(
                runtime.pool, read_chunk_encoded, stream
            )
        if error is None and sent != size:
            error = _changed(size, 'shorter')
        if error is None and fill is not None:
            fill.commit()
    except OSError as failure:  # BlobStoreFailure is one
        error = failure
    finally:
        # Before the connection is closed: its client may look at once.
        if fill is not None:
            fill.release()
        if stream is not None:
            stream.close()
    if error is not None:
        _abandon(handler, key, error)
        return False
    return True


async def _flushed(handler: RequestHandler) -> bool:
    """Send what was written; False when the client has gone."""
    try:
        await handler.flush()
    except StreamClosedError:
        return False
    return True


def _cached_size(pieces: tuple[bytes, ...], length: int) -> int:
    """The decoded size of a cached blob of ``length`` encoded bytes."""
    return length // 4 * 3 - (pieces[-1][-2:].count(b'=') if pieces else 0)


def _changed(size: int, how: str) -> OSError:
    return OSError(f'the blob is {how} than its size said ({size} bytes)')


def _abandon(handler: RequestHandler, key: str, error: OSError) -> None:
    """Close an answer already under way: its blob cannot be read."""
    log.error('Cannot read %s for an answer, closing it: %s', key, error)
    handler.request.connection.close()
