"""Large uploads and downloads without holding them in the test's memory.

* :class:`FormBody`: the urlencoded form body of an upload (``files`` as
  JSON with base64 contents, as the nbgrader exchange sends it), generated
  on the fly from seeded random bytes, with its exact ``Content-Length``; it
  can stop part-way until the test lets it go on (:meth:`FormBody.pause_at`).
* :class:`TreeStream`: reads a tree answer as it streams in, keeping the md5
  and size of every file's decoded content and the JSON around the contents.
* :func:`proc_status_kb` / :func:`proc_io`: the server's memory (``VmRSS``,
  ``VmHWM``) and I/O counters, from ``/proc/<pid>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import threading
import urllib.parse
from collections.abc import Iterator

__all__ = ['MIB', 'FormBody', 'TreeStream', 'proc_io', 'proc_status_kb']

MIB = 1024 * 1024
# Content is generated (and base64-encoded) in blocks of this many bytes, a
# multiple of 3, so that the blocks' base64 texts simply concatenate.
BLOCK = 3 * MIB


def _quote_base64(text: bytes) -> bytes:
    """Form-encode base64 (as urlencode does: only ``+``, ``/``, ``=``)."""
    return text.replace(b'+', b'%2B').replace(b'/', b'%2F').replace(b'=', b'%3D')


def _quote(text: str) -> bytes:
    return urllib.parse.quote_plus(text).encode('ascii')


class FormBody:
    """``files=<tree JSON>&user=<name>``, form-encoded, made while it is sent.

    ``files`` maps paths to ``(size, seed)``: the content of each file is
    ``size`` bytes of ``random.Random(seed)``. :attr:`md5` and
    :attr:`sizes` give the expected checksum and size of every path.
    Pass the object as ``data=`` with the headers of :meth:`headers`.
    """

    def __init__(self, files: dict[str, tuple[int, int]], user: str | None = None):
        self.files = dict(files)
        self.user = user
        self.md5: dict[str, str] = {}
        self.sizes = {path: size for path, (size, _seed) in self.files.items()}
        self.length = sum(len(piece) for piece in self._pieces(record=True))
        self._iterator: Iterator[bytes] | None = None
        self._buffer = b''
        self._offset = 0
        self.sent = 0
        self._pause_at: int | None = None
        self.paused = threading.Event()
        self.resume = threading.Event()

    def _content_blocks(self, size: int, seed: int) -> Iterator[bytes]:
        generator = random.Random(seed)
        left = size
        while left:
            block = generator.randbytes(min(BLOCK, left))
            left -= len(block)
            yield block

    def _pieces(self, record: bool = False) -> Iterator[bytes]:
        yield b'files=' + _quote('[')
        for index, (path, (size, seed)) in enumerate(self.files.items()):
            head = (', ' if index else '') + '{"path": ' + json.dumps(path)
            yield _quote(head + ', "content": "')
            digest = hashlib.md5()
            for block in self._content_blocks(size, seed):
                if record:
                    digest.update(block)
                yield _quote_base64(base64.b64encode(block))
            if record:
                self.md5[path] = digest.hexdigest()
            yield _quote('"}')
        yield _quote(']')
        if self.user is not None:
            yield b'&user=' + _quote(self.user)

    def headers(self) -> dict[str, str]:
        return {
            'Content-Type': 'application/x-www-form-urlencoded',
            'Content-Length': str(self.length),
        }

    def pause_at(self, offset: int) -> None:
        """Stop sending after ``offset`` bytes until :attr:`resume` is set.

        :attr:`paused` is set when the body has stopped there.
        """
        self._pause_at = offset

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self._iterator is None:
            self._iterator = self._pieces()
        if size is None or size < 0:
            size = self.length
        if self._pause_at is not None and self.sent >= self._pause_at:
            self._pause_at = None
            self.paused.set()
            self.resume.wait()
        if self._pause_at is not None:
            size = min(size, self._pause_at - self.sent)
        if self._offset == len(self._buffer):
            self._buffer = next(self._iterator, b'')
            self._offset = 0
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += len(chunk)
        self.sent += len(chunk)
        return chunk


class TreeStream:
    """A tree answer (``{"success": true, ..., "files": [...]}``) as it arrives.

    Feed it the bytes of the answer; the content of every file is base64
    decoded into an md5 as it streams by, so a large answer is never held
    whole. :meth:`skeleton` is the JSON of the answer with every
    ``content`` emptied; :attr:`md5` and :attr:`sizes` map each path (in
    answer order) to its content's checksum and size.
    """

    MARKER = b'"content": "'

    def __init__(self):
        self._skeleton = bytearray()
        self._searched = 0
        self._in_content = False
        self._pending = b''
        self._digest = None
        self._size = 0
        self.contents: list[tuple[str, int]] = []
        self.received = 0

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        while data:
            if self._in_content:
                end = data.find(b'"')
                part = data if end < 0 else data[:end]
                self._pending += part
                usable = len(self._pending) // 4 * 4
                self._decode(self._pending[:usable])
                self._pending = self._pending[usable:]
                if end < 0:
                    return
                self._decode(self._pending)
                self._pending = b''
                self.contents.append((self._digest.hexdigest(), self._size))
                self._in_content = False
                data = data[end:]
                continue
            self._skeleton += data
            start = self._skeleton.find(self.MARKER, self._searched)
            if start < 0:
                self._searched = max(
                    self._searched, len(self._skeleton) - len(self.MARKER)
                )
                return
            cut = start + len(self.MARKER)
            data = bytes(self._skeleton[cut:])
            del self._skeleton[cut:]
            self._searched = cut
            self._in_content = True
            self._digest = hashlib.md5()
            self._size = 0

    def _decode(self, text: bytes) -> None:
        if text:
            content = binascii.a2b_base64(text, strict_mode=True)
            self._digest.update(content)
            self._size += len(content)

    def skeleton(self) -> dict:
        assert not self._in_content, 'the answer ended inside a content string'
        return json.loads(bytes(self._skeleton))

    def files(self) -> dict[str, tuple[str, int]]:
        """``{path: (md5, size)}``; checks the answer's checksums too."""
        entries = self.skeleton()['files']
        assert len(entries) == len(self.contents)
        result = {}
        for entry, (digest, size) in zip(entries, self.contents):
            assert entry['content'] == ''
            assert entry['checksum'] == digest, entry['path']
            result[entry['path']] = (digest, size)
        return result


def proc_status_kb(pid: int) -> dict[str, int]:
    """The ``Vm*`` lines of ``/proc/<pid>/status``, in KiB."""
    result = {}
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            key, _, value = line.partition(':')
            if key.startswith('Vm') or key.startswith('Rss'):
                result[key] = int(value.split()[0])
    return result


def proc_io(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io``: ``rchar`` (bytes read, sockets included) and so on."""
    with open(f'/proc/{pid}/io') as io:
        return {
            key: int(value) for key, _, value in (line.partition(':') for line in io)
        }
