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


class ExpectedTexts:
    """The big file's base64 text as each server writes it, made before the
    step's clock: plain (this ngshare) and with a JSON ``\\n`` escape after
    every 76 characters (0.6.0's ``encodebytes``).

    Checking the download against these texts (a comparison of bytes) is
    as strict as decoding and hashing it, and costs the client a tenth as
    much: decoding took nine tenths of the step's time, so that the step
    measured the client rather than the server.
    """

    def __init__(self, big: BigBody):
        content = b''.join(big._blocks())
        self.plain = base64.b64encode(content)
        self.lined = base64.encodebytes(content).replace(b'\n', b'\\n')
        self.md5, self.size = big.md5, big.size

    def matching(self, start: bytes) -> bytes | None:
        """The text whose first 80 bytes ``start`` begins with, or None (the
        big file is far longer than that)."""
        for text in (self.plain, self.lined):
            if start[:80] == text[:80]:
                return text
        return None


def streamed_tree_matches(blocks, path: str, expected: ExpectedTexts) -> str | None:
    """Whether a tree answer arriving in ``blocks`` is exactly one file,
    ``path``, with the content and checksum of ``expected``: an error
    message, or None. Nothing is decoded: the content's text is compared
    with the expected one as it arrives."""
    marker = b'"content": "'
    head = bytearray()  # the answer up to its content
    begun = None  # the content's first bytes, until its text is known
    text, offset = None, 0
    tail = bytearray()  # the answer after its content
    for data in blocks:
        if begun is None:
            head += data
            at = head.find(marker)
            if at < 0:
                continue
            data = bytes(head[at + len(marker) :])
            del head[at + len(marker) :]
            begun = b''
        if text is None:
            begun += data
            if len(begun) < 80:
                continue
            text, data = expected.matching(begun), begun
            if text is None:
                return f'big download: content begins {begun[:80]!r}'
        take = min(len(data), len(text) - offset)
        if data[:take] != text[offset : offset + take]:
            return f'big download: content differs after {offset} characters'
        offset += take
        tail += data[take:]
    if text is None or offset != len(text) or not tail.startswith(b'"'):
        return f'big download: {offset} characters of content, then {tail[:20]!r}'
    answer = json.loads(bytes(head) + bytes(tail))
    files = [(entry['path'], entry['checksum']) for entry in answer['files']]
    if files != [(path, expected.md5)]:
        return f'big download: got {files}, sent {expected.md5}'
    return None


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


def receive_big(
    endpoint: Endpoint, request: Prepared, big: BigBody, expected: ExpectedTexts
) -> str | None:
    """Send the prebuilt GET of the submission of ``big``, comparing its
    content with ``expected`` as the answer arrives; an error message, or
    None."""
    connection = Connection(endpoint.host, endpoint.port)
    try:
        answer = connection.exchange(request)
        if answer.status != 200:
            return f'big download: {answer.status} {connection.body(answer)[:200]}'
        blocks = connection.body_blocks(answer, 4 * MIB)
        return streamed_tree_matches(blocks, big.path, expected)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f'big download: {type(exc).__name__} {exc}'
    finally:
        connection.close()
    return None
