"""HTTP for the benchmark client: prebuilt requests on kept-alive sockets.

The machine's two cores are shared by the client and the server under
test, so every millisecond of client CPU is one the server may lack: with
``requests`` (about 1 ms of CPU per request: its session, adapters, header
dicts, urllib3's pool) the client was the bottleneck of the small reads.
Here a request is built once, before its step's clock starts, as the exact
bytes ``requests`` sends for it (request line, ``Host``, its default
headers, ``Content-Length`` and ``Content-Type`` in its order; the smoke
test compares both on a loopback socket), and sent with one ``sendmsg`` of
head and body (no copy of the body). Answers are read by a small reader of
its own (``Content-Length`` or chunked: the tree answers Tornado streams
are chunked), on blocking sockets with kernel timeouts.

Measured on the development machine, 2000 GET /healthz from 20 threads:
``requests`` 710 us of client CPU per request, ``http.client`` 90-150 us,
this client 50 us, a minimal asyncio client 25-30 us (not taken: every
step's checks would have to become coroutines, for 25 us more).

One connection per worker thread and server, kept alive; when the server
closed one while it was idle (no byte of an answer comes back), the
request is sent once more on a new one (not a streamed body).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import urllib.parse

import requests.utils

TIMEOUT = 600
RECEIVE = 1 << 20  # bytes asked of each recv
MAX_HEAD = 1 << 16
# Exactly the headers a requests.Session sends by default, in its order.
DEFAULT_HEADERS = list(requests.utils.default_headers().items())
# A body's headers go in the order requests puts them: with a ``data``
# dict (what ngshare_exchange 0.5.3 sends) it adds Content-Length, then the
# form Content-Type; with bytes and an explicit Content-Type (our plugin's
# multipart), the Content-Type comes first.
FORM_TYPE = 'application/x-www-form-urlencoded'


class Prepared:
    """One request ready to send: ``head`` (request line and headers) and
    ``body`` (bytes, or an object with ``read`` for a streamed one), and a
    ``label`` for error messages."""

    __slots__ = ('body', 'head', 'label', 'length', 'method')

    def __init__(self, method: str, head: bytes, body, length: int, label: str):
        self.method, self.head, self.body = method, head, body
        self.length, self.label = length, label


class Endpoint:
    """The server under the API ``url``: builds ``Prepared`` requests for it,
    and holds one kept-alive ``Connection`` per thread."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url.rstrip('/') + '/')
        if parts.scheme != 'http':
            raise ValueError(f'only http:// servers are benchmarked: {url}')
        self.host, self.port = parts.hostname, parts.port or 80
        self.netloc = parts.netloc
        self.prefix = parts.path  # ends with '/'
        self.local = threading.local()

    def target(self, segments: tuple[str, ...], query: dict | None = None) -> str:
        path = self.prefix + '/'.join(urllib.parse.quote(s, safe='') for s in segments)
        return path + ('?' + urllib.parse.urlencode(query) if query else '')

    def prepare(
        self,
        method: str,
        target: str,
        *,
        body=None,
        length: int = 0,
        content_type: str | None = None,
        label: str = '',
    ) -> Prepared:
        """The request as ``requests`` sends it: ``body`` bytes (``length``
        taken from them) or a streamed body of ``length`` bytes."""
        lines = [f'{method} {target} HTTP/1.1', f'Host: {self.netloc}']
        lines += [f'{name}: {value}' for name, value in DEFAULT_HEADERS]
        if body is not None:
            length = len(body) if isinstance(body, bytes | bytearray) else length
            sized = [f'Content-Length: {length}', f'Content-Type: {content_type}']
            lines += sized if content_type == FORM_TYPE else sized[::-1]
        head = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
        return Prepared(method, head, body, length, label or f'{method} {target}')

    def connection(self) -> Connection:
        found = getattr(self.local, 'connection', None)
        if found is None:
            found = self.local.connection = Connection(self.host, self.port)
        return found


class Connection:
    """One kept-alive socket to the server. ``exchange`` sends a prepared
    request and reads the answer's head; ``body`` reads its body whole and
    ``body_blocks`` as it arrives (``Content-Length`` or chunked), one of
    them before the next exchange.

    Its own reader rather than ``http.client.HTTPResponse``: that one costs
    about 60 us of CPU per answer (a file object per response, the email
    parser for the headers), more than all the rest of a small request."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.scratch = bytearray(RECEIVE)
        self.scratch_view = memoryview(self.scratch)
        self.answered = False  # a byte of the current answer has come

    def connect(self) -> None:
        """A blocking socket with the kernel's send and receive timeouts: a
        Python timeout would add a ``poll`` before every ``send`` and
        ``recv``, each a release of the GIL among 20 threads."""
        sock = socket.create_connection(self.address, timeout=TIMEOUT)
        sock.settimeout(None)
        timeval = struct.pack('ll', TIMEOUT, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buffer.clear()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, request: Prepared) -> Answer:
        """Send ``request``, read the answer's head. On a kept-alive socket
        the server closed while idle (no byte of an answer came back: the
        request was not read), once more on a new one."""
        resendable = not hasattr(request.body, 'read')
        for attempt in (1, 2):
            reused = self.sock is not None
            if not reused:
                self.connect()
            try:
                self.send(request)
                return self.read_head(request.method)
            except ConnectionError:  # http.client.RemoteDisconnected too
                self.close()
                if not (reused and resendable and attempt == 1) or self.answered:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError('unreachable')

    def send(self, request: Prepared) -> None:
        self.answered = bool(self.buffer)
        body, head = request.body, request.head
        if body is None:
            self.sock.sendall(head)
        elif isinstance(body, bytes | bytearray):
            # Head and body in one system call, the body not copied.
            sent = self.sock.sendmsg([head, body])
            if sent < len(head):
                self.sock.sendall(head[sent:])
                sent = len(head)
            if sent < len(head) + len(body):
                self.sock.sendall(memoryview(body)[sent - len(head) :])
        else:  # streamed: generated while it is sent
            self.sock.sendall(head)
            for block in iter(lambda: body.read(1 << 20), b''):
                self.sock.sendall(block)

    def receive(self) -> None:
        """Append what has come to the buffer (through a scratch buffer of
        the connection's: ``recv(1 MB)`` would allocate and shrink a 1 MB
        object each time, an mmap and a munmap)."""
        got = self.sock.recv_into(self.scratch)
        if not got:
            raise http.client.RemoteDisconnected('the server closed the connection')
        self.answered = True
        self.buffer += self.scratch_view[:got]

    def take_until(self, marker: bytes) -> bytearray:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise http.client.LineTooLong('answer head')
            self.receive()
        found = self.buffer[:end]
        del self.buffer[: end + len(marker)]
        return found

    def take(self, size: int) -> bytearray:
        """Exactly ``size`` bytes; what is not here yet is received straight
        into the result (a large body is copied once, by the kernel)."""
        have = len(self.buffer)
        if have >= size:
            found = self.buffer[:size]
            del self.buffer[:size]
            return found
        out = bytearray(size)
        out[:have] = self.buffer
        self.buffer.clear()
        view = memoryview(out)
        while have < size:
            got = self.sock.recv_into(view[have:], size - have)
            if not got:
                raise http.client.IncompleteRead(bytes(out[:have]), size - have)
            have += got
        return out

    def read_head(self, method: str) -> Answer:
        lines = self.take_until(b'\r\n\r\n').decode('latin-1').split('\r\n')
        version, _, rest = lines[0].partition(' ')
        if not version.startswith('HTTP/1.'):
            raise http.client.BadStatusLine(lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(':')
            headers[name.strip().lower()] = value.strip()
        answer = Answer(int(rest[:3]), headers)
        if method == 'HEAD' or answer.status in (204, 304):
            answer.length = 0
        return answer

    def body_blocks(self, answer: Answer, most: int = RECEIVE):
        """The body of ``answer`` in blocks of at most ``most`` bytes."""
        if answer.chunked:
            while size := int(self.take_until(b'\r\n').split(b';')[0], 16):
                while size:
                    block = self.take(min(size, most))
                    size -= len(block)
                    yield block
                self.take(2)
            while self.take_until(b'\r\n'):  # trailers, then the blank line
                pass
        elif answer.length is None:  # until the server closes
            answer.close = True
            yield from self._until_closed()
        else:
            left = answer.length
            while left:
                block = self.take(min(left, most))
                left -= len(block)
                yield block
        if answer.close:
            self.close()

    def _until_closed(self):
        if self.buffer:
            yield bytes(self.buffer)
            self.buffer.clear()
        while got := self.sock.recv_into(self.scratch):
            yield bytes(self.scratch_view[:got])

    def body(self, answer: Answer) -> bytearray:
        """The whole body (a bytearray: ``json.loads`` and comparisons take
        it as it is, no copy to ``bytes``). A chunk of a chunked answer is
        received straight into a buffer of its own (``take``): measured
        cheaper than appending each ``recv`` to one growing buffer."""
        if not answer.chunked and answer.length is not None:
            content = self.take(answer.length)
            if answer.close:
                self.close()
            return content
        content = bytearray()
        for block in self.body_blocks(answer, 1 << 30):
            content += block
        return content


class Answer:
    """An answer's status and headers (names in lower case)."""

    __slots__ = ('chunked', 'close', 'headers', 'length', 'status')

    def __init__(self, status: int, headers: dict[str, str]):
        self.status, self.headers = status, headers
        self.chunked = 'chunked' in headers.get('transfer-encoding', '').lower()
        length = headers.get('content-length')
        self.length = int(length) if length is not None else None
        self.close = headers.get('connection', '').lower() == 'close'


def fetch(endpoint: Endpoint, request: Prepared) -> tuple[Answer, bytearray]:
    """Send ``request`` on this thread's connection to ``endpoint`` and read
    the whole answer: its status and headers, and its body."""
    connection = endpoint.connection()
    answer = connection.exchange(request)
    try:
        return answer, connection.body(answer)
    except BaseException:
        connection.close()
        raise
