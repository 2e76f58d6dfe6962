"""Clients too slow to keep: bodies (``--body-timeout``, ``--min-body-rate``)
and headers (``--idle-timeout``).

One Hub-mode server with ``--body-timeout 1 --min-body-rate 1000
--idle-timeout 1``: a body must arrive by ``start + 1 s + received / 1000
bytes/s``. A signed-in upload that stops is answered 408 ``Request
timeout`` and its connection closed; 50 uploads that each send a byte every
half second are all closed by the server (within a bounded wait; they
would stay open for ever otherwise); a body longer than the grace period
but faster than the rate is accepted. Request headers sent a byte at a
time are cut off by the idle timeout. The server serves normally after all
of them.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest
from _api import ok, seed_course, tree
from _rawhttp import (
    closed_by_server,
    head_of,
    opened,
    parse_answer,
    read_one_answer,
    read_until_closed,
    send_quietly,
)
from _servers import HubStub, start_server, token_for

COURSE = 'slow 101'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
SUBMIT = ('submission', COURSE, 'ps1')
FORM = 'application/x-www-form-urlencoded'
# How long a bounded wait may last before it is a failure.
PATIENCE = 30
TRICKLE_INTERVAL = 0.5


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    hub = HubStub(tmp_path_factory.mktemp('slow-hub'))
    started = start_server(
        tmp_path_factory.mktemp('slow'),
        hub_mode=True,
        hub=hub,
        args=['--body-timeout', '1', '--min-body-rate', '1000', '--idle-timeout', '1'],
    )
    try:
        seed_course(started, COURSE, INSTRUCTOR, STUDENT)
        yield started
    finally:
        started.stop()
        hub.stop()


def upload_head(server, length: int) -> bytes:
    return head_of(
        server,
        'POST',
        SUBMIT,
        {
            'Content-Type': FORM,
            'Content-Length': str(length),
            'Authorization': f'token {token_for(STUDENT)}',
        },
    )


def trickle_until_closed(socks, byte: bytes) -> list[bytearray]:
    """Send ``byte`` to each open socket every half second until all close.

    Returns what each received; fails if any is still open after PATIENCE.
    """
    received = [bytearray() for _ in socks]
    open_ = set(range(len(socks)))
    deadline = time.monotonic() + PATIENCE
    while open_:
        for index in sorted(open_):
            sock = socks[index]
            if closed_by_server(sock, received[index]) or not send_quietly(sock, byte):
                open_.discard(index)
        if not open_:
            break
        assert time.monotonic() < deadline, (
            f'{len(open_)} of {len(socks)} connections still open after {PATIENCE}s'
        )
        time.sleep(TRICKLE_INTERVAL)
    return received


def test_stalled_body_is_answered_408_and_closed(server):
    with opened(server) as (sock,):
        sock.sendall(upload_head(server, 1000) + b'files=[')
        received, closed = read_until_closed(sock, PATIENCE)
    assert closed, f'still open; received {received[:300]!r}'
    answer, rest = parse_answer(received)
    assert (answer.status, answer.json()) == (
        408,
        {'success': False, 'message': 'Request timeout'},
    )
    assert rest == b''


def test_trickling_bodies_are_all_closed(server):
    """50 uploads at 2 bytes/s: the server closes every one of them."""
    with opened(server, 50) as socks:
        for sock in socks:
            sock.sendall(upload_head(server, 1_000_000) + b'files=')
        received = trickle_until_closed(socks, b'x')
    for data in received:
        # Whatever arrived before the close is the 408 answer (a reset may
        # have lost it: the client was still sending).
        assert bytes(data[:12]) in (b'', b'HTTP/1.1 408'[: len(data)]), data[:200]
    assert any(data.startswith(b'HTTP/1.1 408') for data in received)
    ok(server.get('courses', user=STUDENT))


def test_a_long_body_at_a_good_rate_is_accepted(server):
    """Longer than the 1 s grace, at five times the minimum rate: accepted."""
    files = tree({'ps1.ipynb': b'{"cells": []}', 'pad.txt': b'p' * 9000})
    body = urllib.parse.urlencode({'files': files}).encode('ascii')
    assert len(body) > 12_000  # at 5000 bytes/s: more than two seconds
    with opened(server) as (sock,):
        sock.sendall(upload_head(server, len(body)))
        for start in range(0, len(body), 500):
            sock.sendall(body[start : start + 500])
            time.sleep(0.1)
        answer = read_one_answer(sock, PATIENCE)
    assert answer.status == 200, answer
    assert answer.json()['success'] is True


def test_slow_headers_are_cut_off_by_the_idle_timeout(server):
    """Request lines sent a byte every half second: all closed."""
    with opened(server, 20) as socks:
        for sock in socks:
            sock.sendall(b'GET /services/ngshare/courses HTTP/1.1\r\nX-Slow: ')
        trickle_until_closed(socks, b'a')
    ok(server.get('courses', user=STUDENT))
    assert 'Traceback' not in server.log_text()
