"""A big file's round trip, never whole in the client's memory.

The big upload measures how the server copes with a file of tens of
megabytes (its peak memory, its event loop); a client that held the body
whole would measure itself. So the body is generated block by block while
it is sent (``bench_http.py`` reads it through ``read``, after the
``Content-Length`` of ``__len__``), and the answer is decoded and hashed as
it arrives, on a connection of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import random

from bench_http import Connection, Endpoint, Prepared
from bench_wire import (
    FORM_TYPE,
    MULTIPART,
    file_part_head,
    manifest_part,
    multipart_content_type,
    new_boundary,
    quote,
    quote_base64,
)

MIB = 1024 * 1024
# Generated, encoded and checked in blocks of this many bytes (a multiple
# of 3, so that the blocks' base64 texts concatenate).
BLOCK = 3 * MIB


class BigBody:
    """One file of ``size`` random bytes (from ``seed``) uploaded in
    ``encoding`` by ``user``, made while it is sent.

    A dry pass at construction (before the step's clock) gives its length
    and the file's md5; multipart needs the md5 before the file (it is in
    the manifest), so the dry pass is needed there anyway.
    """

    def __init__(self, encoding: str, path: str, size: int, user: str, seed=1):
        self.encoding, self.path, self.size, self.user = encoding, path, size, user
        self.seed = seed
        self.boundary = new_boundary()
        digest = hashlib.md5(usedforsecurity=False)
        for block in self._blocks():
            digest.update(block)
        self.md5 = digest.hexdigest()
        self.length = sum(len(piece) for piece in self._pieces())
        if encoding == MULTIPART:
            self.content_type = multipart_content_type(self.boundary)
        else:
            self.content_type = FORM_TYPE
        self._pieces_iter = None
        self._buffer = b''
        self._offset = 0

    def _blocks(self):
        rng = random.Random(self.seed)
        left = self.size
        while left:
            block = rng.randbytes(min(BLOCK, left))
            left -= len(block)
            yield block

    def _pieces(self):
        if self.encoding == MULTIPART:
            yield from self._multipart_pieces()
            return
        yield b'files=' + quote(f'[{{"path": {json.dumps(self.path)}, "content": "')
        for block in self._blocks():
            yield quote_base64(base64.b64encode(block))
        yield quote('"}]') + b'&user=' + quote(self.user)

    def _multipart_pieces(self):
        boundary = self.boundary
        yield (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\n'
                f'{self.user}\r\n'
            ).encode()
            + manifest_part(boundary, [{'path': self.path, 'checksum': self.md5}])
            + file_part_head(boundary, 0)
        )
        yield from self._blocks()
        yield f'\r\n--{boundary}--\r\n'.encode()

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self._pieces_iter is None:
            self._pieces_iter = self._pieces()
        if self._offset == len(self._buffer):
            self._buffer = next(self._pieces_iter, b'')
            self._offset = 0
        if size is None or size < 0:
            size = len(self._buffer) - self._offset
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk


def streamed_tree_md5(blocks) -> dict[str, tuple[str, int]]:
    """``{path: (md5, size)}`` of a tree answer arriving in ``blocks``
    (bytes), decoded as it arrives."""
    marker = b'"content": "'
    skeleton = bytearray()
    searched = 0
    contents = []
    digest = None
    pending = b''
    size = 0
    for data in blocks:
        while data:
            if digest is None:
                skeleton += data
                start = skeleton.find(marker, searched)
                if start < 0:
                    searched = max(searched, len(skeleton) - len(marker))
                    break
                cut = searched = start + len(marker)
                data = bytes(skeleton[cut:])
                del skeleton[cut:]
                digest, size, pending = hashlib.md5(usedforsecurity=False), 0, b''
                continue
            end = data.find(b'"')
            pending += data if end < 0 else data[:end]
            # base64 with line breaks (ngshare 0.6.0's encodebytes) has JSON
            # "\n" escapes in it: drop them, keeping a "\" cut off at the end.
            cut_escape = b'\\' if end < 0 and pending.endswith(b'\\') else b''
            pending = pending[: len(pending) - len(cut_escape)].replace(b'\\n', b'')
            usable = len(pending) // 4 * 4 if end < 0 else len(pending)
            decoded = binascii.a2b_base64(pending[:usable])
            digest.update(decoded)
            size += len(decoded)
            pending = pending[usable:] + cut_escape
            if end < 0:
                break
            contents.append((digest.hexdigest(), size))
            digest = None
            data = data[end:]
    answer = json.loads(bytes(skeleton))
    result = {}
    for entry, (md5, length) in zip(answer['files'], contents):
        if entry['checksum'] != md5:
            raise ValueError(f'{entry["path"]}: checksum {entry["checksum"]} != {md5}')
        result[entry['path']] = (md5, length)
    return result


def send_big(endpoint: Endpoint, target: str, big: BigBody) -> str | None:
    """POST ``big`` to ``target`` on a connection of its own, generated
    while it is sent; an error message, or None."""
    request = endpoint.prepare(
        'POST', target, body=big, length=len(big), content_type=big.content_type
    )
    connection = Connection(endpoint.host, endpoint.port)
    try:
        answer = connection.exchange(request)
        content = connection.body(answer)
        if answer.status != 200 or not json.loads(content).get('success'):
            return f'big upload: {answer.status} {content[:200]}'
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f'big upload: {type(exc).__name__} {exc}'
    finally:
        connection.close()
    return None


def receive_big(endpoint: Endpoint, request: Prepared, big: BigBody) -> str | None:
    """Send the prebuilt GET of the submission of ``big``, checking its md5
    and size as the answer arrives; an error message, or None."""
    connection = Connection(endpoint.host, endpoint.port)
    try:
        answer = connection.exchange(request)
        if answer.status != 200:
            return f'big download: {answer.status} {connection.body(answer)[:200]}'
        files = streamed_tree_md5(connection.body_blocks(answer, MIB))
        if files.get(big.path) != (big.md5, big.size):
            return f'big download: got {files}, sent {big.md5}'
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f'big download: {type(exc).__name__} {exc}'
    finally:
        connection.close()
    return None
