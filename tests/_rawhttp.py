"""HTTP/1.1 by hand, for clients that misbehave on purpose.

``requests`` sends a whole body before it reads, and retries or hides what
a server did to the connection; these helpers let a test send headers
without a body, a body byte by byte, or stop half-way, and see exactly what
came back and whether the server closed the connection.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
import urllib.parse
from collections.abc import Mapping

__all__ = [
    'Answer',
    'closed_by_server',
    'connect',
    'head_of',
    'opened',
    'parse_answer',
    'read_one_answer',
    'read_until_closed',
    'send_quietly',
]


def connect(server, timeout: float = 30) -> socket.socket:
    """A TCP connection to ``server`` (an NgshareServer) on loopback."""
    return socket.create_connection(('127.0.0.1', server.port), timeout=timeout)


def head_of(
    server,
    method: str,
    path: tuple[str, ...] | str,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """Request line and headers of a request to ``server.url(path)``."""
    target = urllib.parse.urlsplit(server.url(path))
    lines = [f'{method} {target.path or "/"} HTTP/1.1', 'Host: 127.0.0.1']
    lines += [f'{name}: {value}' for name, value in (headers or {}).items()]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``; False when the server has closed the connection."""
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def read_until_closed(sock: socket.socket, patience: float) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it closed within ``patience``.

    A reset counts as closed: a server that closes while unread body bytes
    are waiting resets the connection rather than ending it.
    """
    deadline = time.monotonic() + patience
    received = b''
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return received, False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return received, True
        except TimeoutError:
            return received, False
        if not data:
            return received, True
        received += data


def closed_by_server(sock: socket.socket, received: bytearray) -> bool:
    """Without waiting: has the server closed ``sock``? Adds what it sent."""
    while select.select([sock], [], [], 0)[0]:
        try:
            data = sock.recv(65536)
        except OSError:
            return True
        if not data:
            return True
        received += data
    return False


class Answer:
    """One HTTP response: ``status``, ``headers`` (lower-case), ``body``."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        assert self.headers.get('content-type', '').startswith('application/json'), (
            self.headers
        )
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f'Answer({self.status}, {self.headers}, {self.body[:300]!r})'


def parse_answer(data: bytes) -> tuple[Answer, bytes]:
    """The first response in ``data`` (with a Content-Length) and the rest."""
    head, separator, rest = data.partition(b'\r\n\r\n')
    assert separator, f'no complete response in {data[:500]!r}'
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split(' ', 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get('content-length', '0'))
    assert len(rest) >= length, f'truncated response: {data[:500]!r}'
    return Answer(status, headers, rest[:length]), rest[length:]


@contextlib.contextmanager
def opened(server, count: int = 1, timeout: float = 30):
    """``count`` connections to ``server``, all closed at the end."""
    socks = []
    try:
        for _ in range(count):
            socks.append(connect(server, timeout))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def read_one_answer(sock: socket.socket, patience: float) -> Answer:
    """Read until one whole response has arrived (the connection may stay)."""
    deadline = time.monotonic() + patience
    received = b''
    while True:
        head, separator, rest = received.partition(b'\r\n\r\n')
        if separator:
            answer, _ = parse_answer(received) if _complete(head, rest) else (None, b'')
            if answer is not None:
                return answer
        left = deadline - time.monotonic()
        assert left > 0, f'no whole answer within {patience}s: {received[:300]!r}'
        sock.settimeout(left)
        data = sock.recv(65536)
        assert data, f'connection closed after {received[:300]!r}'
        received += data


def _complete(head: bytes, rest: bytes) -> bool:
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            return len(rest) >= int(value)
    return True
