"""Which Hub tokens ngshare accepts, what refusals cost, a frozen Hub, and the
OAuth callback's manners, against the Hub stand-in (:mod:`hubstub`).

The same rule is proven under a real JupyterHub in ``test_real_hub_tokens``;
here the stand-in lets the tests count Hub lookups and freeze the Hub.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse

import pytest
import requests
from _api import err, ok
from hubstub import (
    bare_token_for,
    oauth_token_for,
    server_oauth_token_for,
    service_token_for,
    token_for,
)
from test_auth import browser_login

ROOT = token_for('root')  # root is the --admins of hub_server
POLL_LIMIT = 20.0


def courses_of(server, token) -> list[str]:
    return ok(server.request('GET', 'courses', token=token))['courses']


def set_cookies(resp: requests.Response) -> list[str]:
    return resp.raw.headers.getlist('Set-Cookie')


# --------------------------------------------------------------------------
# The rule


@pytest.mark.parametrize(
    'token',
    [
        pytest.param(token_for('eric'), id='own-server-token'),
        pytest.param(oauth_token_for('eric', 'ngshare'), id='issued-to-ngshare'),
    ],
)
def test_tokens_meant_for_ngshare_or_the_users_own_act_as_the_user(hub_server, token):
    ok(
        hub_server.request(
            'POST',
            ('course', 'Rule 101'),
            token=ROOT,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    assert courses_of(hub_server, token) == ['Rule 101']
    # eric, not an admin: his token cannot create a course
    err(
        hub_server.request('POST', ('course', 'Rule 102'), token=token),
        403,
        'Permission denied',
    )


@pytest.mark.parametrize(
    'token',
    [
        # an OAuth token the Hub issued to another service for root
        pytest.param(oauth_token_for('root', 'other-svc'), id='other-service'),
        # root opened eric's server, which received root's OAuth token
        pytest.param(server_oauth_token_for('root', 'eric'), id='via-eric-server'),
        pytest.param(bare_token_for('root'), id='no-scopes'),
        # a Hub service named like an admin
        pytest.param(service_token_for('root'), id='service-named-root'),
    ],
)
def test_tokens_meant_for_others_are_refused(hub_server, token):
    for method, path in (
        ('GET', 'courses'),
        ('POST', ('course', 'Stolen 101')),
        ('DELETE', ('course', 'Stolen 101')),
    ):
        err(hub_server.request(method, path, token=token), 403, 'Invalid token')
    # nothing was created behind the refusal
    assert courses_of(hub_server, ROOT) == []


def test_trusted_services_act_under_their_own_name(start_ngshare, hub):
    server = start_ngshare(
        hub_mode=True,
        hub=hub,
        admins='root,grader',
        args=['--trusted-services', 'grader,helper'],
    )
    # an admin by --admins: creates a course
    ok(server.request('POST', ('course', 'Svc 101'), token=service_token_for('grader')))
    # trusted but no admin: a caller without a role
    helper = service_token_for('helper')
    assert courses_of(server, helper) == []
    err(
        server.request('POST', ('course', 'Svc 102'), token=helper),
        403,
        'Permission denied',
    )
    # an untrusted service named like an admin still gets nothing
    err(
        server.request('GET', 'courses', token=service_token_for('root')),
        403,
        'Invalid token',
    )
    assert courses_of(server, ROOT) == ['Svc 101']


def test_strict_mode_accepts_only_tokens_issued_for_ngshare(start_ngshare, hub):
    server = start_ngshare(hub_mode=True, hub=hub, args=['--strict-token-scopes'])
    err(
        server.request('GET', 'courses', token=token_for('root')),
        403,
        'Invalid token',
    )
    ngshare_root = oauth_token_for('root', 'ngshare')
    ok(
        server.request(
            'POST',
            ('course', 'Strict 101'),
            token=ngshare_root,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    # the browser login (the Hub issues ngshare's own OAuth token) works
    eric = browser_login(server, 'eric')
    resp = eric.get(server.url('courses'), allow_redirects=False, timeout=30)
    assert ok(resp)['courses'] == ['Strict 101']


# --------------------------------------------------------------------------
# What refused tokens cost


def test_a_refused_token_costs_one_lookup_per_cache_period(start_ngshare, hub):
    server = start_ngshare(hub_mode=True, hub=hub, args=['--auth-cache-seconds', '1'])
    unknown, foreign = 'not-a-hub-token-0123', oauth_token_for('root', 'other-svc')
    for attempt in range(5):
        # another session cookie each time does not bypass the cache
        cookie = {'Cookie': f'jupyterhub-session-id=s{attempt}'}
        for token in (unknown, foreign):
            err(
                server.request(
                    'GET',
                    'courses',
                    headers={**cookie, 'Authorization': f'token {token}'},
                ),
                403,
                'Invalid token',
            )
    assert hub.user_requests(unknown) == 1
    assert hub.user_requests(foreign) == 1
    # ... and once the period has passed, it is looked up again (once)
    deadline = time.monotonic() + POLL_LIMIT
    while hub.user_requests(unknown) < 2:
        assert time.monotonic() < deadline, 'refusal cached beyond its period'
        err(server.request('GET', 'courses', token=unknown), 403, 'Invalid token')
        time.sleep(0.2)
    assert hub.user_requests(unknown) == 2


@pytest.mark.parametrize(
    'token',
    [
        pytest.param('t' * 257, id='too-long'),
        pytest.param('tök-1234', id='not-ascii'),
        pytest.param('tok en', id='space'),
    ],
)
def test_impossible_tokens_are_refused_without_a_lookup(hub_server, token):
    before = hub_server.hub.user_requests()
    resp = hub_server.request(
        'GET', 'courses', headers={'Authorization': f'token {token}'.encode('latin-1')}
    )
    err(resp, 403, 'Invalid token')
    assert hub_server.hub.user_requests() == before


# --------------------------------------------------------------------------
# A frozen Hub


def test_frozen_hub_answers_503_within_the_hub_timeout(start_ngshare, hub):
    server = start_ngshare(hub_mode=True, hub=hub, args=['--hub-timeout', '1'])
    assert courses_of(server, ROOT) == []  # cached from now on
    os.kill(hub.proc.pid, signal.SIGSTOP)
    try:
        # far below the 120 s an unbounded lookup hung for
        resp = server.request('GET', 'courses', token=token_for('kevin'), timeout=15)
        err(resp, 503, 'Hub unavailable')
        resp = server.request(
            'POST', ('course', 'X'), token=token_for('eric'), timeout=15
        )
        err(resp, 503, 'Hub unavailable')
        # a cached token does not need the Hub
        assert courses_of(server, ROOT) == []
    finally:
        os.kill(hub.proc.pid, signal.SIGCONT)
    assert courses_of(server, token_for('kevin')) == []
    assert 'The Hub did not answer within 1.0s' in server.log_text()


# --------------------------------------------------------------------------
# Cookies and the OAuth callback


def test_login_and_state_cookies_are_samesite_lax(hub_server):
    browser = requests.Session()
    start = browser.get(hub_server.url('courses'), allow_redirects=False, timeout=30)
    err(start, 302, 'Login required')
    (state_cookie,) = set_cookies(start)
    assert 'samesite=lax' in state_cookie.lower(), state_cookie
    authorize = urllib.parse.urljoin(hub_server.hub.url, start.headers['Location'])
    back = browser.get(
        authorize, params={'login_as': 'eric'}, allow_redirects=False, timeout=30
    )
    callback = urllib.parse.urljoin(hub_server.base, back.headers['Location'])
    done = browser.get(callback, allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text
    login = [c for c in set_cookies(done) if c.startswith('service-ngshare=')]
    assert login, set_cookies(done)
    assert all('samesite=lax' in c.lower() for c in login), login
    ok(browser.get(hub_server.url('courses'), allow_redirects=False, timeout=30))


@pytest.mark.parametrize('method', ['POST', 'PUT', 'DELETE', 'PATCH'])
def test_oauth_callback_other_methods_are_json_405(hub_server, method):
    resp = requests.request(method, hub_server.url('oauth_callback'), timeout=30)
    err(resp, 405, 'Method Not Allowed')
    assert resp.headers['Allow'] == 'GET'


def test_oauth_callback_errors_are_json(hub_server):
    url = hub_server.url('oauth_callback')
    err(requests.get(url, timeout=30), 400, 'OAuth callback made without a token')
    resp = requests.get(url, params={'code': 'c', 'state': 'forged'}, timeout=30)
    assert resp.status_code == 403
    assert resp.json()['success'] is False
    # A real state, but a code the Hub never issued: refused, not a 500.
    browser = requests.Session()
    start = browser.get(hub_server.url('courses'), allow_redirects=False, timeout=30)
    query = urllib.parse.parse_qs(
        urllib.parse.urlsplit(start.headers['Location']).query
    )
    resp = browser.get(
        url, params={'code': 'code-never', 'state': query['state'][0]}, timeout=30
    )
    err(resp, 400, 'OAuth login failed')
    assert 'code-never' not in hub_server.log_text()


def test_a_cache_period_of_zero_asks_the_hub_every_time(start_ngshare, hub):
    # HubAuth itself takes 0 to mean "cache forever"
    server = start_ngshare(hub_mode=True, hub=hub, args=['--auth-cache-seconds', '0'])
    for _ in range(3):
        assert courses_of(server, ROOT) == []
        err(server.request('GET', 'courses', token='unknown-1'), 403, 'Invalid token')
    assert hub.user_requests(ROOT) == 3
    assert hub.user_requests('unknown-1') == 3
