"""Which peers may name the client: X-Forwarded-For / X-Real-Ip in the logs.

JupyterHub's proxy connects from loopback on the Hub's machine and says who
the client is; any other peer saying so is not believed (``--trusted-proxies``).
"""

from __future__ import annotations

import time

import pytest
import requests
from _servers import token_for

from ngshare.server import is_trusted, parse_networks

SPOOFED = '203.0.113.7'  # TEST-NET-3: never a real peer here


def logged_peer(server, marker: str) -> str:
    """The address of the access-log line of the request for ``marker``.

    The line is written just after the answer is sent: polled, bounded.
    """
    deadline = time.monotonic() + 10
    while True:
        for line in server.log_text().splitlines():
            if marker in line:
                return line.split('(', 1)[1].split(')', 1)[0].split()[0]
        if time.monotonic() > deadline:
            raise AssertionError(f'no log line for {marker}:\n{server.log_text()}')
        time.sleep(0.05)


def courses(server, marker: str, headers: dict) -> None:
    resp = requests.get(
        server.api + 'courses',
        params={'marker': marker},
        headers={'Authorization': f'token {token_for("root")}', **headers},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize('header', ['X-Real-Ip', 'X-Forwarded-For'])
def test_loopback_proxy_is_believed_by_default(hub_server, header):
    courses(hub_server, f'default-{header}', {header: SPOOFED})
    assert logged_peer(hub_server, f'default-{header}') == SPOOFED


@pytest.mark.parametrize('header', ['X-Real-Ip', 'X-Forwarded-For'])
def test_untrusted_peer_is_logged_as_itself(start_ngshare, header):
    server = start_ngshare(hub_mode=True, args=['--trusted-proxies', '10.0.0.0/8'])
    courses(server, f'untrusted-{header}', {header: SPOOFED})
    assert logged_peer(server, f'untrusted-{header}') == '127.0.0.1'
    # and a forwarded scheme is not believed either: no https redirect
    # target or secure cookie for a direct client claiming it.
    resp = requests.get(
        server.api,
        headers={'X-Forwarded-Proto': 'https'},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302
    assert 'https%3A' not in resp.headers['Location'], resp.headers['Location']


def test_networks_and_addresses():
    networks = parse_networks(['127.0.0.1', '10.0.0.0/8', '::1'])
    assert is_trusted('127.0.0.1', networks)
    assert is_trusted('10.1.2.3', networks)
    assert is_trusted('::ffff:10.1.2.3', networks)
    assert is_trusted('::1', networks)
    assert not is_trusted('127.0.0.2', networks)
    assert not is_trusted('192.0.2.1', networks)
    assert not is_trusted('not-an-ip', networks)
    assert not is_trusted('127.0.0.1', ())
    with pytest.raises(ValueError, match='not an IP address or network'):
        parse_networks(['proxy.example'])
