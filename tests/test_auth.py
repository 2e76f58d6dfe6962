"""Authentication: Hub tokens (real HubAuth against the Hub stand-in), the
stand-alone ``user`` parameter, failures of the Hub, and the cookie secret.
"""

from __future__ import annotations

import json
import stat
import urllib.parse

import requests
from _api import err, ok
from _servers import free_port, token_for

ROOT = token_for('root')
ERIC = token_for('eric')
KEVIN = token_for('kevin')


def courses_of(server, **identity) -> list[str]:
    return ok(server.request('GET', 'courses', **identity))['courses']


# --------------------------------------------------------------------------
# Under the Hub


def test_token_identifies_the_user(hub_server):
    ok(
        hub_server.request(
            'POST',
            ('course', 'Auth 101'),
            token=ROOT,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    assert courses_of(hub_server, token=ROOT) == ['Auth 101']
    # The same request with other tokens answers per user: the token decides.
    assert courses_of(hub_server, token=ERIC) == ['Auth 101']
    assert courses_of(hub_server, token=KEVIN) == []


def test_unicode_user_name_from_token(hub_server):
    ok(
        hub_server.request(
            'POST',
            ('course', 'Zoë 1'),
            token=ROOT,
            data={'instructors': json.dumps(['zoë 李'])},
        )
    )
    assert courses_of(hub_server, token=token_for('zoë 李')) == ['Zoë 1']
    assert courses_of(hub_server, token=token_for('zoe 李')) == []


def test_non_admin_cannot_create_course(hub_server):
    err(
        hub_server.request('POST', ('course', 'Nope'), token=ERIC),
        403,
        'Permission denied',
    )
    assert courses_of(hub_server, token=ROOT) == []


def test_user_parameter_is_ignored_under_the_hub(hub_server):
    # eric's token, claiming to be root in the form: still eric.
    err(
        hub_server.request(
            'POST', ('course', 'Spoof'), token=ERIC, data={'user': 'root'}
        ),
        403,
        'Permission denied',
    )
    ok(hub_server.request('POST', ('course', 'Real'), token=ROOT))
    # ... and in the query string: eric sees eric's courses, not root's.
    assert courses_of(hub_server, token=ERIC, params={'user': 'root'}) == []
    assert courses_of(hub_server, token=ROOT, params={'user': 'eric'}) == ['Real']


def test_bogus_token_is_refused(hub_server):
    for method in ('GET', 'POST', 'DELETE'):
        path = 'courses' if method == 'GET' else ('course', 'X')
        err(
            hub_server.request(method, path, token='not-a-real-token'),
            403,
            'Invalid token',
        )
    err(
        hub_server.request(
            'GET', 'courses', headers={'Authorization': 'bearer not-a-real-token'}
        ),
        403,
        'Invalid token',
    )


def test_bearer_header_is_accepted(hub_server):
    ok(hub_server.request('POST', ('course', 'Bearer'), token=ROOT))
    resp = hub_server.request(
        'GET', 'courses', headers={'Authorization': f'bearer {ERIC}'}
    )
    assert ok(resp)['courses'] == []
    resp = hub_server.request(
        'GET', 'courses', headers={'Authorization': f'Bearer {ROOT}'}
    )
    assert ok(resp)['courses'] == ['Bearer']


def test_get_without_credentials_redirects_to_hub_login(hub_server):
    resp = hub_server.request('GET', 'courses')
    err(resp, 302, 'Login required')
    location = urllib.parse.urlsplit(resp.headers['Location'])
    assert location.path in ('/hub/api/oauth2/authorize', '/hub/login'), location
    if location.path == '/hub/api/oauth2/authorize':
        query = urllib.parse.parse_qs(location.query)
        assert query['client_id'] == ['service-ngshare'], query
        assert query['response_type'] == ['code'], query
        redirect = urllib.parse.urlsplit(query['redirect_uri'][0])
        assert redirect.path == '/services/ngshare/oauth_callback', query


def test_post_and_delete_without_credentials_answer_401(hub_server):
    err(hub_server.request('POST', ('course', 'X')), 401, 'Login required')
    err(hub_server.request('DELETE', ('course', 'X')), 401, 'Login required')
    # Nothing was created behind the refusal.
    assert courses_of(hub_server, token=ROOT) == []


def test_hub_unreachable_answers_503(start_ngshare):
    closed = free_port()
    server = start_ngshare(
        hub_mode=True,
        env={'JUPYTERHUB_API_URL': f'http://127.0.0.1:{closed}/hub/api'},
    )
    for method, path in (
        ('GET', 'courses'),
        ('POST', ('course', 'X')),
        ('DELETE', ('course', 'X')),
    ):
        resp = server.request(method, path, token=ROOT)
        err(resp, 503, 'Hub unavailable')
        assert 'Traceback' not in resp.text
    # The service itself stays up.
    assert server.running
    assert server.request('GET', 'healthz').json() == {'success': True}


def test_hub_failing_answers_503(hub_server):
    resp = hub_server.request('GET', 'courses', token='status-500')
    err(resp, 503, 'Hub unavailable')
    resp = hub_server.request('POST', ('course', 'X'), token='status-502')
    err(resp, 503, 'Hub unavailable')
    # A working token still works afterwards.
    assert courses_of(hub_server, token=ROOT) == []


def test_token_lookups_are_cached(hub_server):
    hub = hub_server.hub
    assert hub.user_requests(ERIC) == 0
    for _ in range(5):
        assert courses_of(hub_server, token=ERIC) == []
    assert hub.user_requests(ERIC) == 1
    # A different token is looked up on its own.
    ok(hub_server.request('POST', ('course', 'Cache'), token=ROOT))
    ok(hub_server.request('DELETE', ('course', 'Cache'), token=ROOT))
    assert hub.user_requests(ROOT) == 1
    assert hub.user_requests(ERIC) == 1


def _assert_logs_hide_tokens(server, secrets):
    # Requests that log: success, an unknown path (warning), a refusal.
    ok(server.request('GET', 'courses', params={'token': secrets[0]}, token=secrets[1]))
    resp = server.request(
        'GET',
        'no-such-endpoint-7q',
        params={'token': secrets[0], 'user': 'root'},
        token=secrets[1],
    )
    assert resp.status_code == 404, resp.text
    server.request('GET', 'courses', token=secrets[2])
    server.stop()  # flushes and closes the logs
    logs = server.log_text()
    # The server does log requests (else this test would prove nothing).
    assert 'no-such-endpoint-7q' in logs, logs
    for secret in secrets:
        assert secret not in logs, f'{secret!r} leaked into the log:\n{logs}'


def test_logs_never_contain_tokens_under_the_hub(hub_server):
    _assert_logs_hide_tokens(
        hub_server, ['secret-xyz', token_for('eric'), 'secret-header-abc']
    )


def test_logs_never_contain_tokens_stand_alone(start_ngshare, hub):
    server = start_ngshare(
        hub_mode=False, hub=hub, args=['--jupyterhub_api_url', hub.api_url]
    )
    _assert_logs_hide_tokens(
        server, ['secret-xyz', token_for('eric'), 'secret-header-abc']
    )


# --------------------------------------------------------------------------
# Stand-alone (--vngshare)


def test_stand_alone_user_parameter_identifies_the_caller(vngshare_server):
    s = vngshare_server
    ok(
        s.request(
            'POST',
            ('course', 'V 101'),
            user='root',
            data={'instructors': json.dumps(['eric'])},
        )
    )
    err(s.request('POST', ('course', 'V 102'), user='eric'), 403, 'Permission denied')
    assert courses_of(s, user='root') == ['V 101']
    assert courses_of(s, user='eric') == ['V 101']
    assert courses_of(s, user='kevin') == []
    # DELETE takes the user from the form, too.
    err(s.request('DELETE', ('course', 'V 101'), user='eric'), 403, 'Permission denied')
    ok(s.request('DELETE', ('course', 'V 101'), user='root'))
    assert courses_of(s, user='root') == []


def test_stand_alone_without_user_answers_401(vngshare_server):
    err(vngshare_server.request('GET', 'courses'), 401, 'Login required')
    err(vngshare_server.request('POST', ('course', 'X')), 401, 'Login required')
    err(vngshare_server.request('DELETE', ('course', 'X')), 401, 'Login required')
    assert courses_of(vngshare_server, user='root') == []


def test_stand_alone_token_resolved_through_the_hub(start_ngshare, hub):
    server = start_ngshare(
        hub_mode=False, hub=hub, args=['--jupyterhub_api_url', hub.api_url]
    )
    # No user parameter, only a token: the Hub says who it is.
    ok(
        server.request(
            'POST',
            ('course', 'Tok 1'),
            token=ROOT,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    err(
        server.request('POST', ('course', 'Tok 2'), token=ERIC),
        403,
        'Permission denied',
    )
    assert courses_of(server, token=ERIC) == ['Tok 1']
    assert courses_of(server, token=KEVIN) == []
    assert hub.user_requests(ERIC) >= 1
    err(
        server.request('GET', 'courses', token='not-a-real-token'), 403, 'Invalid token'
    )
    # Neither a user nor a token.
    err(server.request('GET', 'courses'), 401, 'Login required')


def test_stand_alone_hub_unreachable_answers_503(start_ngshare):
    closed = free_port()
    server = start_ngshare(
        hub_mode=False,
        args=['--jupyterhub_api_url', f'http://127.0.0.1:{closed}/hub/api'],
    )
    err(server.request('GET', 'courses', token=ERIC), 503, 'Hub unavailable')
    err(server.request('POST', ('course', 'X'), token=ROOT), 503, 'Hub unavailable')
    # The user parameter does not need the Hub.
    ok(server.request('POST', ('course', 'X'), user='root'))
    assert courses_of(server, user='root') == ['X']


# --------------------------------------------------------------------------
# Cookie secret


def _secret_files(workdir):
    return sorted(
        p for p in workdir.rglob('*') if p.is_file() and 'secret' in p.name.lower()
    )


def test_cookie_secret_file_is_created_private_and_reused(start_ngshare, hub, tmp_path):
    workdir = tmp_path / 'shared'
    first = start_ngshare(hub_mode=True, hub=hub, workdir=workdir)
    secrets = _secret_files(workdir)
    assert len(secrets) == 1, (secrets, sorted(workdir.rglob('*')))
    secret = secrets[0]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    content = secret.read_bytes()
    assert content.strip(), 'empty cookie secret'
    mtime = secret.stat().st_mtime_ns
    first.stop()

    second = start_ngshare(hub_mode=True, hub=hub, workdir=workdir)
    assert second.running
    assert _secret_files(workdir) == [secret]
    assert secret.read_bytes() == content
    assert secret.stat().st_mtime_ns == mtime
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_cookie_secret_from_environment_writes_no_file(start_ngshare, hub, tmp_path):
    workdir = tmp_path / 'envsecret'
    server = start_ngshare(
        hub_mode=True,
        hub=hub,
        workdir=workdir,
        env={'NGSHARE_COOKIE_SECRET': '00112233445566778899aabbccddeeff' * 2},
    )
    assert courses_of(server, token=ROOT) == []
    assert _secret_files(workdir) == []


# --------------------------------------------------------------------------
# Browsers: OAuth login through the Hub, then the service's cookie


def browser_login(server, name) -> requests.Session:
    """Log ``name`` in as a browser would; return the session (cookies)."""
    browser = requests.Session()
    start = browser.get(server.url('courses'), allow_redirects=False, timeout=30)
    err(start, 302, 'Login required')
    authorize = urllib.parse.urljoin(server.hub.url, start.headers['Location'])
    # The user signs in at the Hub, which sends the browser back with a code.
    back = browser.get(
        authorize, params={'login_as': name}, allow_redirects=False, timeout=30
    )
    assert back.status_code == 302, back.text
    callback = urllib.parse.urljoin(server.base, back.headers['Location'])
    assert urllib.parse.urlsplit(callback).path == server.prefix + 'oauth_callback'
    done = browser.get(callback, allow_redirects=False, timeout=30)
    assert done.status_code == 302, (done.status_code, done.text[:500])
    # ... and on to the page first asked for.
    assert urllib.parse.urljoin(server.base, done.headers['Location']) == (
        server.url('courses')
    )
    return browser


def test_browser_login_through_hub_oauth(hub_server):
    ok(
        hub_server.request(
            'POST',
            ('course', 'Web 101'),
            token=ROOT,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    eric = browser_login(hub_server, 'eric')
    assert hub_server.hub.stats()['token_exchanges'] == 1
    resp = eric.get(hub_server.url('courses'), allow_redirects=False, timeout=30)
    assert ok(resp)['courses'] == ['Web 101']
    kevin = browser_login(hub_server, 'kevin')
    resp = kevin.get(hub_server.url('courses'), allow_redirects=False, timeout=30)
    assert ok(resp)['courses'] == []
    # A forged state is refused, and logs nobody in.
    forged = requests.Session()
    resp = forged.get(
        hub_server.url('oauth_callback'),
        params={'code': 'code-0', 'state': 'forged'},
        allow_redirects=False,
        timeout=30,
    )
    assert 400 <= resp.status_code < 500, resp.status_code
    resp = forged.get(hub_server.url('courses'), allow_redirects=False, timeout=30)
    assert resp.status_code == 302


def test_login_cookie_survives_restart_only_with_the_same_secret(
    start_ngshare, hub, tmp_path
):
    workdir = tmp_path / 'cookie'
    first = start_ngshare(hub_mode=True, hub=hub, workdir=workdir)
    ok(
        first.request(
            'POST',
            ('course', 'Kept 101'),
            token=ROOT,
            data={'instructors': json.dumps(['eric'])},
        )
    )
    eric = browser_login(first, 'eric')
    first.stop()

    # Same database folder, secret file re-read: the cookie still works.
    second = start_ngshare(hub_mode=True, hub=hub, workdir=workdir)
    resp = eric.get(second.url('courses'), allow_redirects=False, timeout=30)
    assert ok(resp)['courses'] == ['Kept 101']
    second.stop()

    # Another secret does not accept the cookie.
    third = start_ngshare(
        hub_mode=True,
        hub=hub,
        workdir=workdir,
        env={'NGSHARE_COOKIE_SECRET': 'ab' * 32},
    )
    resp = eric.get(third.url('courses'), allow_redirects=False, timeout=30)
    err(resp, 302, 'Login required')
