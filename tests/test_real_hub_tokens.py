"""Which Hub tokens ngshare accepts, under a real JupyterHub.

Two Hubs (see :mod:`_jupyterhub`), each started once for the module: the
example configuration as shipped, with ``--auth-cache-seconds 2`` so that a
revocation can be watched; and the strict setup of docs/security.md
(``--strict-token-scopes`` with ``c.Spawner.server_token_scopes``). The
tokens are real: the one JupyterHub hands a spawned single-user server, an
OAuth token JupyterHub issued to another service through the code flow a
browser goes through, a token created with no scopes, a service's token.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
import requests
from _api import err, ok
from _jupyterhub import RealHub, browser_login

pytestmark = pytest.mark.e2e  # a real JupyterHub: slow, not in the quick lane

STRICT_SERVER_TOKEN_SCOPES = [
    'users:activity!user',
    'access:servers!server',
    'access:services!service=ngshare',
]
# What a stock single-user server's token carries (the `server` role).
SERVER_SCOPES = ['users:activity!user', 'access:servers!server={name}/']
POLL_LIMIT = 20.0


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    started = RealHub(
        tmp_path_factory.mktemp('jupyterhub'),
        ngshare_args=['--auth-cache-seconds', '2'],
    )
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope='module')
def strict_hub(tmp_path_factory):
    started = RealHub(
        tmp_path_factory.mktemp('jupyterhub-strict'),
        ngshare_args=['--strict-token-scopes'],
        server_token_scopes=STRICT_SERVER_TOKEN_SCOPES,
    )
    try:
        yield started
    finally:
        started.stop()


def call(hub, token, method, *segments, **kwargs):
    path = '/'.join(urllib.parse.quote(s, safe='') for s in segments)
    return requests.request(
        method,
        hub.service + path,
        headers={'Authorization': f'token {token}'},
        allow_redirects=False,
        timeout=30,
        **kwargs,
    )


def courses(hub, token):
    return ok(call(hub, token, 'GET', 'courses'))['courses']


def admin_token(hub):
    if not hasattr(hub, 'admin_token'):
        hub.create_user('admin')  # in the example's --admins admin,admin2
        hub.admin_token = hub.new_token('admin')['token']
    return hub.admin_token


def user_with_course(hub, name, course):
    """``name`` (a new Hub user) teaches ``course``, made by the admin."""
    hub.create_user(name)
    data = {'instructors': json.dumps([name])}
    ok(call(hub, admin_token(hub), 'POST', 'course', course, data=data))


def identify(hub, token) -> dict:
    resp = requests.get(
        hub.hub_api + '/user', headers={'Authorization': f'token {token}'}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def other_service_token(hub, name) -> str:
    """An OAuth token JupyterHub issues to ``other-svc`` for ``name``.

    As a browser would: the authorize URL sends an anonymous browser to the
    Hub login; after it, the Hub redirects (no confirmation page) to the
    service's redirect URI with a code, which the service exchanges with its
    own API token as the client secret.
    """
    state = 'state-of-other-svc'
    authorize = (
        hub.url
        + '/hub/api/oauth2/authorize?'
        + urllib.parse.urlencode(
            {
                'client_id': 'service-other-svc',
                'redirect_uri': hub.other_svc_redirect,
                'response_type': 'code',
                'state': state,
            }
        )
    )
    landed = browser_login(requests.Session(), authorize, name)
    back = [r.headers['Location'] for r in landed.history if r.is_redirect]
    target = next(url for url in back if url.startswith(hub.other_svc_redirect))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    assert query['state'] == [state], target
    resp = requests.post(
        hub.hub_api + '/oauth2/token',
        data={
            'client_id': 'service-other-svc',
            'client_secret': hub.other_svc_token,
            'grant_type': 'authorization_code',
            'code': query['code'][0],
            'redirect_uri': hub.other_svc_redirect,
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()['access_token']


# --------------------------------------------------------------------------
# The example configuration, no extra setup


def test_spawned_single_user_server_token_acts_as_its_user(hub):
    user_with_course(hub, 'sam', 'Spawned 101')
    token = hub.start_server('sam')
    scopes = identify(hub, token)['scopes']
    assert 'users:activity!user=sam' in scopes, scopes
    assert courses(hub, token) == ['Spawned 101']
    person = {'first_name': 'Sam', 'last_name': 'Doe', 'email': 'sam@x.org'}
    ok(call(hub, token, 'POST', 'instructor', 'Spawned 101', 'sam', data=person))


def test_full_permission_user_token_acts_as_its_user(hub):
    user_with_course(hub, 'tess', 'Full 101')
    token = hub.new_token('tess')['token']  # what the Token page makes
    assert courses(hub, token) == ['Full 101']


def test_oauth_token_of_another_service_is_refused(hub):
    user_with_course(hub, 'alice', 'Other 101')
    token = other_service_token(hub, 'alice')
    scopes = identify(hub, token)['scopes']
    assert 'access:services!service=other-svc' in scopes, scopes
    err(call(hub, token, 'GET', 'courses'), 403, 'Invalid token')
    err(
        call(hub, token, 'DELETE', 'instructor', 'Other 101', 'alice'),
        403,
        'Invalid token',
    )
    # alice is still its instructor
    assert 'Other 101' in courses(hub, admin_token(hub))
    roster = ok(call(hub, admin_token(hub), 'GET', 'instructors', 'Other 101'))
    assert [entry['username'] for entry in roster['instructors']] == ['alice']


def test_token_with_no_scopes_is_refused(hub):
    user_with_course(hub, 'nora', 'Bare 101')
    model = hub.new_token('nora', scopes=[])
    assert not any(s.startswith(('access:', 'users:activity')) for s in model['scopes'])
    err(call(hub, model['token'], 'GET', 'courses'), 403, 'Invalid token')


def test_service_named_like_an_admin_gets_nothing(hub):
    assert identify(hub, hub.admin2_token)['kind'] == 'service'
    err(call(hub, hub.admin2_token, 'POST', 'course', 'Svc 101'), 403, 'Invalid token')
    err(call(hub, hub.admin2_token, 'GET', 'courses'), 403, 'Invalid token')
    assert 'Svc 101' not in courses(hub, admin_token(hub))


def test_deleted_users_token_is_refused_once_the_cache_period_passed(hub):
    user_with_course(hub, 'gone', 'Gone 101')
    scopes = [s.format(name='gone') for s in SERVER_SCOPES]
    token = hub.new_token('gone', scopes=scopes)['token']
    assert courses(hub, token) == ['Gone 101']
    resp = hub.api('DELETE', '/users/gone')
    assert resp.status_code == 204, resp.text
    deadline = time.monotonic() + POLL_LIMIT
    while True:
        resp = call(hub, token, 'GET', 'courses')
        if resp.status_code == 403:
            break
        assert resp.status_code == 200, resp.text
        assert time.monotonic() < deadline, 'a deleted user kept access'
        time.sleep(0.25)
    err(resp, 403, 'Invalid token')
    err(call(hub, token, 'POST', 'course', 'Gone 102'), 403, 'Invalid token')


# --------------------------------------------------------------------------
# Strict mode: --strict-token-scopes and c.Spawner.server_token_scopes


def test_strict_mode_accepts_the_server_token_of_the_documented_setup(strict_hub):
    user_with_course(strict_hub, 'sam', 'Strict 101')
    token = strict_hub.start_server('sam')
    scopes = identify(strict_hub, token)['scopes']
    assert 'access:services!service=ngshare' in scopes, scopes
    assert courses(strict_hub, token) == ['Strict 101']


def test_strict_mode_refuses_a_stock_server_token(strict_hub):
    user_with_course(strict_hub, 'ulla', 'Strict 102')
    scopes = [s.format(name='ulla') for s in SERVER_SCOPES]
    token = strict_hub.new_token('ulla', scopes=scopes)['token']
    err(call(strict_hub, token, 'GET', 'courses'), 403, 'Invalid token')


def test_strict_mode_keeps_the_browser_login(strict_hub):
    admin_token(strict_hub)
    page = browser_login(requests.Session(), strict_hub.service, 'admin')
    assert page.status_code == 200, page.text[:500]
    assert 'Signed in as <strong>admin</strong>' in page.text, page.text
