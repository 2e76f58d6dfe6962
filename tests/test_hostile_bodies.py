"""Request bodies before and after login: what a hostile client can make us hold.

Under the Hub stand-in, with raw sockets (so the test controls exactly what
is sent and sees whether the server closed the connection):

* a request announcing a body is identified from its headers first: an
  anonymous one (or a refused token) is answered at once, 401 / 403 JSON,
  without a byte of its body being read, and the connection is closed;
* so four anonymous clients pushing 50 MB each leave the server's memory
  (``VmRSS`` of its process) where it was;
* an upload aborted half-way gives its memory back as soon as the client
  goes away;
* bodies Tornado cannot parse as a form (a multipart body without a
  boundary, more than 1,000 fields, a bad ``Content-Length``) answer 400
  JSON, with no traceback in the server's log, before and after login;
* every answer carries the security headers (``nosniff``, no framing).

The budget of bytes held at once and the slow-body cut-off have their own
servers, in ``test_body_budget.py`` and ``test_slow_bodies.py``.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from _api import ok, seed_course
from _rawhttp import head_of, opened, parse_answer, read_until_closed, send_quietly
from _servers import HubStub, start_server, token_for
from _transfer import MIB, proc_status_kb

pytestmark = pytest.mark.skipif(
    not Path('/proc/self/status').exists(), reason='reads /proc/<pid>/status'
)

COURSE = 'hostile 101'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
SUBMIT = ('submission', COURSE, 'ps1')
FORM = 'application/x-www-form-urlencoded'
# How long to wait for something that must happen (a failure if it does not).
PATIENCE = 30
SECURITY_HEADERS = {
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': "frame-ancestors 'none'",
}


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    hub = HubStub(tmp_path_factory.mktemp('hostile-hub'))
    started = start_server(tmp_path_factory.mktemp('hostile'), hub_mode=True, hub=hub)
    try:
        seed_course(started, COURSE, INSTRUCTOR, STUDENT)
        yield started
    finally:
        started.stop()
        hub.stop()


def resident(server) -> int:
    return proc_status_kb(server.proc.pid)['VmRSS'] * 1024


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'still waiting for {what} after {PATIENCE}s')
        time.sleep(0.05)


def upload_head(server, length: int, token: str | None = None, **extra) -> bytes:
    headers = {'Content-Type': FORM, 'Content-Length': str(length), **extra}
    if token is not None:
        headers['Authorization'] = f'token {token}'
    return head_of(server, 'POST', SUBMIT, headers)


# Refused before the body


@pytest.mark.parametrize(
    ('token', 'status', 'message'),
    [(None, 401, 'Login required'), ('not-a-token', 403, 'Invalid token')],
    ids=['anonymous', 'refused-token'],
)
def test_refused_before_the_body_is_read(server, token, status, message):
    """200 MB announced, none sent: the answer comes, the connection closes."""
    with opened(server) as (sock,):
        # Expect: 100-continue would make the server ask for the body.
        sock.sendall(upload_head(server, 200_000_000, token, Expect='100-continue'))
        received, closed = read_until_closed(sock, PATIENCE)
    assert closed, f'connection still open; received {received[:300]!r}'
    answer, rest = parse_answer(received)
    assert (answer.status, answer.json()) == (
        status,
        {'success': False, 'message': message},
    )
    assert rest == b'', 'one answer only (no 100 Continue, no bare 400 after it)'


def test_anonymous_uploads_hold_no_memory(server):
    """4 anonymous clients push 50 MB each: the server's RSS stays put."""
    ok(server.get('courses', user=STUDENT))  # warmed up
    before = resident(server)
    piece = b'x' * MIB
    with opened(server, 4, timeout=5) as socks:
        pushed = []
        for sock in socks:
            sock.sendall(upload_head(server, 60 * MIB))
            sent = 0
            while sent < 50 * MIB and send_quietly(sock, piece):
                sent += len(piece)
            pushed.append(sent)
        rise = resident(server) - before
        assert rise < 32 * MIB, f'RSS rose by {rise / MIB:.1f} MiB (pushed {pushed})'
        for sock in socks:
            _received, closed = read_until_closed(sock, PATIENCE)
            assert closed
    assert resident(server) - before < 32 * MIB
    ok(server.get('courses', user=STUDENT))


def test_aborted_upload_frees_its_memory_at_once(server):
    """Half of a 100 MB upload is held; the client goes away; it is freed."""
    ok(server.get('courses', user=STUDENT))
    before = resident(server)
    piece = b'a' * MIB
    with opened(server, timeout=PATIENCE) as (sock,):
        sock.sendall(upload_head(server, 100 * MIB, token_for(STUDENT)))
        for _ in range(60):
            sock.sendall(piece)
        # The server holds what it received: it is receiving this body.
        wait_for(
            lambda: resident(server) - before >= 40 * MIB,
            'the server to hold 40 MiB of the upload',
        )
    wait_for(
        lambda: resident(server) - before < 16 * MIB,
        'the aborted upload to be freed',
    )
    ok(server.get('courses', user=STUDENT))


# Bodies that are not forms


def raw_answer(server, head: bytes, body: bytes = b''):
    with opened(server) as (sock,):
        sock.sendall(head + body)
        received, _closed = read_until_closed(sock, PATIENCE)
    return parse_answer(received)[0]


def form_post(server, body: bytes, content_type: str = FORM, **headers):
    return requests.post(
        server.url(SUBMIT),
        data=body,
        headers={'Content-Type': content_type, **headers},
        timeout=PATIENCE,
    )


MALFORMED = {
    'multipart-without-boundary': (b'--x\r\n\r\n', 'multipart/form-data', {}),
    'multipart-without-final-boundary': (
        b'--b\r\nContent-Disposition: form-data; name="files"\r\n\r\n[]',
        'multipart/form-data; boundary=b',
        {},
    ),
    'urlencoded-gzip': (b'\x1f\x8b\x08', FORM, {'Content-Encoding': 'gzip'}),
}
TOO_MANY = {
    'small': b'&'.join(b'f%d=1' % i for i in range(1001)),
    # Over 256 KiB: parsed in the worker pool (forms.parse_form) otherwise.
    'large': b'files=' + b'y' * (300 * 1024) + b'&' + b'&'.join([b'g=1'] * 1000),
}


@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_form_bodies_answer_400(server, case):
    body, content_type, extra = MALFORMED[case]
    headers = {'Authorization': f'token {token_for(STUDENT)}', **extra}
    resp = form_post(server, body, content_type, **headers)
    assert (resp.status_code, resp.json()) == (
        400,
        {'success': False, 'message': 'Invalid request body'},
    )
    assert 'Traceback' not in server.log_text()


@pytest.mark.parametrize('size', sorted(TOO_MANY))
def test_too_many_fields_answer_400(server, size):
    resp = form_post(
        server, TOO_MANY[size], Authorization=f'token {token_for(STUDENT)}'
    )
    assert (resp.status_code, resp.json()) == (
        400,
        {'success': False, 'message': 'Too many form fields'},
    )
    assert 'Traceback' not in server.log_text()


@pytest.mark.parametrize(
    'framing',
    [
        {'Content-Length': 'abc'},
        {'Content-Length': '5, 6'},
        {'Content-Length': '5', 'Transfer-Encoding': 'chunked'},
        {'Transfer-Encoding': 'gzip'},
    ],
    ids=['not-a-number', 'two-lengths', 'length-and-chunked', 'other-encoding'],
)
def test_bad_framing_answers_400_json(server, framing):
    head = head_of(
        server,
        'POST',
        SUBMIT,
        {'Content-Type': FORM, 'Authorization': f'token {token_for(STUDENT)}'}
        | framing,
    )
    answer = raw_answer(server, head, b'files')
    assert (answer.status, answer.json()) == (
        400,
        {'success': False, 'message': 'Invalid request body'},
    )


def test_standalone_parse_errors_before_login(start_ngshare):
    """Stand-alone bodies are parsed before the caller is known: still 400."""
    server = start_ngshare(hub_mode=False)
    path = server.url(('course', 'standalone 0'))
    for body, content_type, message in [
        (b'--x\r\n\r\n', 'multipart/form-data', 'Invalid request body'),
        (TOO_MANY['small'], FORM, 'Too many form fields'),
        (TOO_MANY['large'], FORM, 'Too many form fields'),
    ]:
        resp = requests.post(
            path, data=body, headers={'Content-Type': content_type}, timeout=30
        )
        assert (resp.status_code, resp.json()['message']) == (400, message)
    # The user field still identifies a caller when it is in the body.
    resp = requests.post(
        server.url(('course', 'standalone 1')),
        data=urllib.parse.urlencode({'user': 'root'}),
        headers={'Content-Type': FORM},
        timeout=30,
    )
    ok(resp)
    assert 'Traceback' not in server.log_text()


# Security headers


@pytest.mark.parametrize(
    ('method', 'path', 'status'),
    [
        ('GET', 'courses', 200),
        ('GET', 'no/such/thing', 404),
        ('PUT', 'courses', 405),
        ('POST', 'course/x', 401),
        ('GET', 'healthz', 200),
    ],
)
def test_security_headers_on_every_answer(server, method, path, status):
    headers = {}
    if status != 401:
        headers['Authorization'] = f'token {token_for(STUDENT)}'
    resp = requests.request(
        method, server.url(path), headers=headers, data=b'', timeout=PATIENCE
    )
    assert resp.status_code == status, resp.text
    assert resp.headers['Content-Type'].startswith('application/json')
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.headers)
