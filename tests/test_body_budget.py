"""``--max-buffered-size``: the bytes of bodies held at once, all requests.

A Hub-mode server with a budget of 10 MiB. One signed-in 6 MB upload in
flight holds 6 MB of it (reserved as its headers arrive: the server's
``100 Continue`` says so), so a second one, announced by ``Content-Length``
or sent chunked, is answered 503 ``Server busy, try again later`` with
``Retry-After`` and holds nothing; once the first has finished, or a client
has gone away half-way, the budget is free again and the next upload is
accepted.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest
import requests
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
from _servers import token_for

COURSE = 'budget 101'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
SUBMIT = ('submission', COURSE, 'ps1')
FORM = 'application/x-www-form-urlencoded'
PATIENCE = 30
BUSY = {'success': False, 'message': 'Server busy, try again later'}


@pytest.fixture
def server(start_ngshare):
    started = start_ngshare(
        hub_mode=True, args=['--max-buffered-size', '10M', '--max-body-size', '8M']
    )
    seed_course(started, COURSE, INSTRUCTOR, STUDENT)
    return started


def six_mb_form(seed: int) -> bytes:
    """A submission form body of about 6 MB (4.5 MB of file)."""
    content = bytes([seed]) * (4500 * 1000)
    body = urllib.parse.urlencode({'files': tree({'ps1.ipynb': content})}).encode()
    assert 6_000_000 <= len(body) < 6_500_000
    return body


AUTHORIZED_FORM = {'Content-Type': FORM, 'Authorization': f'token {token_for(STUDENT)}'}


def head(server, length: int | None = None, **headers) -> bytes:
    if length is not None:
        headers['Content-Length'] = str(length)
    return head_of(server, 'POST', SUBMIT, AUTHORIZED_FORM | headers)


def start_upload(sock, server, body: bytes) -> None:
    """Headers, the server's go-ahead (its reservation made), half the body."""
    sock.sendall(head(server, len(body), Expect='100-continue'))
    assert read_one_answer(sock, PATIENCE).status == 100
    sock.sendall(body[: len(body) // 2])


def refused_as_busy(received: bytes) -> None:
    answer, _rest = parse_answer(received)
    assert (answer.status, answer.json()) == (503, BUSY), answer
    assert answer.headers['retry-after'] == '5'


def submissions(server) -> int:
    answer = ok(server.get(('submissions', COURSE, 'ps1', STUDENT), user=STUDENT))
    return len(answer['submissions'])


def test_second_upload_is_refused_until_the_first_is_done(server):
    first_body = six_mb_form(1)
    with opened(server, 3, timeout=PATIENCE) as (first, second, chunked):
        start_upload(first, server, first_body)

        # Announced by Content-Length: refused before any of it is read.
        second.sendall(
            head(
                server,
                **{'Content-Length': str(len(first_body))},
                Expect='100-continue',
            )
        )
        received, closed = read_until_closed(second, PATIENCE)
        assert closed
        refused_as_busy(received)

        # Chunked: refused when its pieces outgrow what is left.
        chunked.sendall(head(server, **{'Transfer-Encoding': 'chunked'}))
        piece = b'x' * (256 * 1024)
        answer = bytearray()
        for _ in range(24):  # 6 MiB
            if closed_by_server(chunked, answer) or not send_quietly(
                chunked, b'%x\r\n%s\r\n' % (len(piece), piece)
            ):
                break
        more, closed = read_until_closed(chunked, PATIENCE)
        assert closed
        refused_as_busy(bytes(answer) + more)

        # The first upload was not disturbed, and completes.
        first.sendall(first_body[len(first_body) // 2 :])
        answer = read_one_answer(first, PATIENCE)
        assert answer.status == 200, answer
        assert answer.json()['success'] is True
    assert submissions(server) == 1
    # Its reservation is given back: the next 6 MB upload is accepted.
    ok(
        requests.post(
            server.url(SUBMIT),
            data=six_mb_form(2),
            headers={
                'Content-Type': FORM,
                'Authorization': f'token {token_for(STUDENT)}',
            },
            timeout=PATIENCE,
        )
    )
    assert submissions(server) == 2
    assert 'Traceback' not in server.log_text()


def test_an_aborted_upload_gives_its_share_back(server):
    body = six_mb_form(3)
    with opened(server, timeout=PATIENCE) as (sock,):
        start_upload(sock, server, body)
    # The client went away half-way: within a bounded wait, a new 6 MB
    # upload fits again (it would be refused for ever if the share leaked).
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            resp = requests.post(
                server.url(SUBMIT),
                data=body,
                headers=AUTHORIZED_FORM,
                timeout=PATIENCE,
            )
        except requests.ConnectionError:
            # Refused (503) while the body was still being sent.
            resp = None
        if resp is not None and resp.status_code != 503:
            break
        assert time.monotonic() < deadline, 'the aborted upload kept its share'
        time.sleep(0.1)
    ok(resp)
    assert submissions(server) == 1
