"""Pages around the API: health, welcome page, favicon, the JSON envelope of
routing errors, the debug actions (and their protection against cross-site
requests), the pages' security headers, and internal errors.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse

import pytest
import requests
from _api import err, ok, tree
from _servers import token_for

DUMP = 'initialize-Data6ase'
# What a cross-site link or redirect looks like to the server.
CROSS_SITE_NAVIGATION = {
    'Sec-Fetch-Mode': 'navigate',
    'Sec-Fetch-Site': 'cross-site',
    'Sec-Fetch-Dest': 'document',
}


@pytest.fixture(params=['vngshare', 'hub'])
def server(request):
    """The stand-alone server, then the Hub-managed (production) one."""
    return request.getfixturevalue(
        'vngshare_server' if request.param == 'vngshare' else 'hub_server'
    )


def create_course(server, name, instructors=()):
    ok(
        server.request(
            'POST',
            ('course', name),
            user='root',
            data={'instructors': json.dumps(list(instructors))},
        )
    )


def courses(server, user='root'):
    return ok(server.request('GET', 'courses', user=user))['courses']


def assert_html(resp):
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers['Content-Type'].startswith('text/html'), resp.headers


# --------------------------------------------------------------------------
# health, welcome page, favicon


def test_healthz_without_credentials(server):
    for url in (server.base + '/healthz', server.api + 'healthz'):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200, (url, resp.text)
        assert resp.headers['Content-Type'].startswith('application/json')
        assert resp.json() == {'success': True}


def test_welcome_page(server):
    resp = server.request('GET', '', user='root')
    assert_html(resp)
    assert 'ngshare' in resp.text.lower()


def test_welcome_page_shows_debug_actions_to_admins_only_in_production(hub_server):
    admin_page = hub_server.request('GET', '', user='root')
    assert_html(admin_page)
    assert DUMP in admin_page.text
    user_page = hub_server.request('GET', '', user='eric')
    assert_html(user_page)
    assert DUMP not in user_page.text


def test_welcome_page_shows_debug_actions_to_everyone_in_debug(vngshare_server):
    page = vngshare_server.request('GET', '', user='eric')
    assert_html(page)
    assert DUMP in page.text


@pytest.mark.parametrize(
    'page', ['', DUMP + '?action=dump&human-readable=true'], ids=['home', 'dump']
)
def test_pages_carry_security_headers(server, page):
    resp = server.request('GET', page, user='root')
    assert_html(resp)
    assert resp.headers['X-Content-Type-Options'] == 'nosniff'
    assert resp.headers['X-Frame-Options'] == 'DENY'
    policy = {
        part.strip().split()[0]: part.strip().split()[1:]
        for part in resp.headers['Content-Security-Policy'].split(';')
    }
    # No script at all, nothing from elsewhere, never in a frame.
    assert policy['default-src'] == ["'none'"]
    assert 'script-src' not in policy
    assert policy['frame-ancestors'] == ["'none'"]
    assert policy['form-action'] == ["'self'"]
    assert policy['base-uri'] == ["'none'"]
    assert '<script' not in resp.text
    assert ' style=' not in resp.text  # inline style attributes would be blocked


def test_favicon(server):
    resp = server.request('GET', 'favicon.ico', user='root')
    assert resp.status_code == 200
    assert resp.headers['Content-Type'].startswith('image/'), resp.headers
    assert len(resp.content) > 0


# --------------------------------------------------------------------------
# routing errors keep the JSON envelope


@pytest.mark.parametrize(
    'path',
    ['no-such-thing', 'course', 'courses/extra', ('course', 'C', 'extra')],
)
def test_unknown_path_is_json_404(server, path):
    err(server.request('GET', path, user='root'), 404, 'Not Found')


@pytest.mark.parametrize(
    ('method', 'path'),
    [
        ('PUT', 'courses'),
        ('DELETE', 'courses'),
        ('POST', 'courses'),
        ('PATCH', ('course', 'C')),
        ('PUT', ('assignment', 'C', 'A')),
    ],
)
def test_wrong_method_is_json_405(server, method, path):
    err(server.request(method, path, user='root'), 405, 'Method Not Allowed')


# --------------------------------------------------------------------------
# debug actions


def dump(server, user, **params):
    return server.request('GET', DUMP, user=user, params={'action': 'dump', **params})


def test_dump_for_admin_in_production(hub_server):
    create_course(hub_server, 'Dump 101', ['eric'])
    body = ok(dump(hub_server, 'root'))
    text = json.dumps(body, ensure_ascii=False)
    assert 'Dump 101' in text
    assert 'eric' in text


def test_dump_refused_to_non_admin_in_production(hub_server):
    create_course(hub_server, 'Dump 101', ['eric'])
    # Not even an instructor may dump everything.
    err(dump(hub_server, 'eric'), 403, 'Permission denied')
    err(
        dump(hub_server, 'kevin', **{'human-readable': 'true'}),
        403,
        'Permission denied',
    )


def test_dump_open_to_anyone_in_debug(vngshare_server):
    create_course(vngshare_server, 'Dump 101', ['eric'])
    body = ok(dump(vngshare_server, 'kevin'))
    assert 'Dump 101' in json.dumps(body, ensure_ascii=False)


def test_dump_human_readable(server):
    create_course(server, 'Readable 101')
    resp = dump(server, 'root', **{'human-readable': 'true'})
    assert_html(resp)
    assert 'Readable 101' in resp.text


@pytest.mark.parametrize('action', ['clear', 'init'])
def test_dangerous_actions_refused_in_production(hub_server, action):
    create_course(hub_server, 'Keep 101', ['eric'])
    for user in ('root', 'eric'):
        resp = hub_server.request('GET', DUMP, user=user, params={'action': action})
        err(resp, 403, 'Permission denied')
    assert courses(hub_server) == ['Keep 101']
    assert courses(hub_server, 'eric') == ['Keep 101']


def test_clear_in_debug_removes_data(vngshare_server):
    create_course(vngshare_server, 'Gone 101', ['eric'])
    assert courses(vngshare_server) == ['Gone 101']
    ok(vngshare_server.request('GET', DUMP, user='root', params={'action': 'clear'}))
    assert courses(vngshare_server) == []
    assert courses(vngshare_server, 'eric') == []
    assert 'Gone 101' not in json.dumps(ok(dump(vngshare_server, 'root')))


def test_init_in_debug_loads_sample_data(vngshare_server):
    assert courses(vngshare_server) == []
    ok(vngshare_server.request('GET', DUMP, user='root', params={'action': 'init'}))
    assert courses(vngshare_server) != []


def test_init_loads_the_sample_data_of_0_6_0(vngshare_server):
    """What 0.6.0's init_db created, which its scripts and test suite expect."""
    server = vngshare_server
    answer = ok(server.request('GET', DUMP, user='none', params={'action': 'init'}))
    assert answer == {'success': True, 'message': 'done'}
    assert courses(server) == ['course1', 'course2']
    for user, taught in (('kevin', 'course1'), ('abigail', 'course2')):
        assert courses(server, user) == [taught]
    for user, taken in (('lawrence', 'course1'), ('eric', 'course2')):
        assert courses(server, user) == [taken]
    nobody = {'first_name': None, 'last_name': None, 'email': None}
    assert ok(server.get(('students', 'course2'), user='abigail'))['students'] == [
        {'username': 'eric', **nobody}
    ]
    assert ok(server.get(('instructors', 'course1'), user='lawrence'))[
        'instructors'
    ] == [{'username': 'kevin', **nobody}]
    assert ok(server.get(('assignments', 'course2'), user='eric'))['assignments'] == [
        'assignment2a',
        'assignment2b',
    ]
    files = ok(server.get(('assignment', 'course1', 'challenge'), user='lawrence'))
    assert [(f['path'], f['content']) for f in files['files']] == [
        ('file2', 'MjIyMjI=')  # b'22222'
    ]
    submissions = ok(
        server.get(('submissions', 'course1', 'challenge', 'lawrence'), user='kevin')
    )['submissions']
    stamps = [s['timestamp'] for s in submissions]
    assert len(stamps) == 2
    assert stamps[0] == '2020-01-01 00:00:00.000000 UTC'
    first = ok(
        server.get(
            ('submission', 'course1', 'challenge', 'lawrence'),
            user='kevin',
            params={'timestamp': stamps[0]},
        )
    )
    assert [(f['path'], f['content']) for f in first['files']] == [
        ('file3', 'MzMzMzM=')  # b'33333'
    ]
    latest = ok(
        server.get(('submission', 'course1', 'challenge', 'lawrence'), user='kevin')
    )
    assert [f['path'] for f in latest['files']] == ['file4']
    feedback = ok(
        server.get(
            ('feedback', 'course1', 'challenge', 'lawrence'),
            user='lawrence',
            params={'timestamp': stamps[0]},
        )
    )
    assert [(f['path'], f['content']) for f in feedback['files']] == [
        ('file5', 'NTU1NTU=')  # b'55555'
    ]
    # Loading it again changes nothing; clearing answers 'done' as in 0.6.0.
    ok(server.request('GET', DUMP, user='none', params={'action': 'init'}))
    assert len(ok(dump(server, 'root'))['submissions']) == 2
    answer = ok(server.request('GET', DUMP, user='none', params={'action': 'clear'}))
    assert answer == {'success': True, 'message': 'done'}
    assert courses(server) == []


def test_unknown_action_is_400(server):
    resp = server.request('GET', DUMP, user='root', params={'action': 'explode'})
    err(resp, 400, 'action should be clear, init, or dump')


# --------------------------------------------------------------------------
# debug actions under the Hub in debug mode: cookies, tokens, XSRF


@pytest.fixture
def hub_debug_server(start_ngshare, hub, ngshare_database_url):
    """ngshare under the Hub stand-in with --debug (admin ``root``)."""
    return start_ngshare(
        hub_mode=True, hub=hub, args=['--debug'], database_url=ngshare_database_url
    )


def browser_login(server, name) -> requests.Session:
    """Log ``name`` in through the Hub's OAuth as a browser would."""
    browser = requests.Session()
    start = browser.get(server.url(''), allow_redirects=False, timeout=30)
    err(start, 302, 'Login required')
    authorize = urllib.parse.urljoin(server.hub.url, start.headers['Location'])
    back = browser.get(
        authorize, params={'login_as': name}, allow_redirects=False, timeout=30
    )
    assert back.status_code == 302, back.text
    callback = urllib.parse.urljoin(server.base, back.headers['Location'])
    done = browser.get(callback, allow_redirects=False, timeout=30)
    assert done.status_code == 302, (done.status_code, done.text[:500])
    # The cookie alone now identifies the browser.
    page = browser.get(server.url(''), allow_redirects=False, timeout=30)
    assert_html(page)
    assert f'Signed in as <strong>{name}</strong>' in page.text
    return browser


def form_action(page_html: str, button_id: str) -> str:
    """The action URL of the form holding the button ``button_id``."""
    match = re.search(
        r'<form method="post" action="([^"]+)">\s*<button[^>]*id="'
        + re.escape(button_id)
        + '"',
        page_html,
    )
    assert match, f'no POST form for #{button_id} in:\n{page_html}'
    return html.unescape(match.group(1))


def submit(server, browser: requests.Session, button_id: str, **headers):
    """Press a button of the welcome page: POST its form, as a browser does."""
    page = browser.get(server.url(''), allow_redirects=False, timeout=30)
    assert_html(page)
    action = urllib.parse.urljoin(server.api, form_action(page.text, button_id))
    return browser.post(action, headers=headers, allow_redirects=False, timeout=30)


@pytest.mark.parametrize('action', ['clear', 'init'])
def test_cookie_only_get_cannot_change_the_database(hub_debug_server, action):
    server = hub_debug_server
    create_course(server, 'Keep 101', ['eric'])
    eric = browser_login(server, 'eric')
    # A link on another site, followed by eric's browser (cookie sent).
    resp = eric.get(
        server.url(DUMP),
        params={'action': action},
        headers=CROSS_SITE_NAVIGATION,
        allow_redirects=False,
        timeout=30,
    )
    err(resp, 403, 'Permission denied')
    assert courses(server) == ['Keep 101']
    # The cookie still works for reading: the dump is a plain page view.
    assert 'Keep 101' in json.dumps(
        ok(eric.get(server.url(DUMP), params={'action': 'dump'}, timeout=30))
    )


def test_post_without_the_right_xsrf_token_is_refused(hub_debug_server):
    server = hub_debug_server
    create_course(server, 'Keep 101', ['eric'])
    eric = browser_login(server, 'eric')
    kevin = browser_login(server, 'kevin')
    kevin_page = kevin.get(server.url(''), timeout=30).text
    kevin_xsrf = urllib.parse.parse_qs(
        urllib.parse.urlsplit(form_action(kevin_page, 'action-clear')).query
    )['_xsrf'][0]
    for params in (
        {'action': 'clear'},  # no token
        {'action': 'clear', '_xsrf': 'forged'},
        {'action': 'clear', '_xsrf': kevin_xsrf},  # another browser's token
    ):
        for place in ('query', 'body'):
            # A connection of its own: a refused request's body may be left
            # unread, and the server then closes the connection.
            attempt = requests.Session()
            attempt.cookies.update(eric.cookies)
            resp = attempt.post(
                server.url(DUMP),
                params=params if place == 'query' else None,
                data=params if place == 'body' else None,
                allow_redirects=False,
                timeout=30,
            )
            # The Hub library does not accept the login cookie of a POST
            # without its XSRF token: the caller is anonymous.
            err(resp, 401, 'Login required')
    assert courses(server) == ['Keep 101']


def test_post_with_the_xsrf_token_of_the_page_runs_the_action(hub_debug_server):
    server = hub_debug_server
    create_course(server, 'Gone 101', ['eric'])
    eric = browser_login(server, 'eric')
    resp = submit(server, eric, 'action-clear')
    assert ok(resp)['message'] == 'done'
    assert courses(server) == []
    resp = submit(server, eric, 'action-init')
    assert ok(resp)['message'] == 'done'
    assert courses(server) == ['course1', 'course2']


def test_api_clients_with_a_token_keep_the_documented_get(hub_debug_server):
    server = hub_debug_server
    create_course(server, 'Gone 101', ['eric'])
    ok(server.request('GET', DUMP, user='eric', params={'action': 'clear'}))
    assert courses(server) == []
    ok(server.request('GET', DUMP, user='eric', params={'action': 'init'}))
    assert courses(server) == ['course1', 'course2']
    # A POST with a token needs no XSRF token: it cannot come from a page.
    ok(server.request('POST', DUMP, user='eric', params={'action': 'clear'}))
    assert courses(server) == []


def test_post_actions_never_run_outside_debug_mode(hub_server):
    create_course(hub_server, 'Keep 101', ['eric'])
    for action in ('clear', 'init'):
        for user in ('root', 'eric'):
            resp = hub_server.request(
                'POST', DUMP, user=user, params={'action': action}
            )
            err(resp, 403, 'Permission denied')
    root = browser_login(hub_server, 'root')
    page = root.get(hub_server.url(''), timeout=30).text
    assert 'action-clear' not in page and '_xsrf' not in page
    assert courses(hub_server) == ['Keep 101']


def test_post_of_other_actions_is_400(hub_debug_server):
    for action in ('dump', 'explode', ''):
        resp = hub_debug_server.request(
            'POST', DUMP, user='root', params={'action': action}
        )
        err(resp, 400, 'Unknown action')


def test_stand_alone_forms_work_and_need_the_xsrf_token(vngshare_server):
    server = vngshare_server
    create_course(server, 'Gone 101', ['eric'])
    browser = requests.Session()
    page = browser.get(server.api, params={'user': 'eric'}, timeout=30)
    assert_html(page)
    action = form_action(page.text, 'action-clear')
    assert 'user=eric' in action
    # Without the token of the page (and its cookie), nothing happens.
    err(
        requests.post(
            server.url(DUMP), params={'action': 'clear', 'user': 'eric'}, timeout=30
        ),
        403,
        'Permission denied',
    )
    assert courses(server) == ['Gone 101']
    resp = browser.post(urllib.parse.urljoin(server.api, action), timeout=30)
    assert ok(resp)['message'] == 'done'
    assert courses(server) == []


# --------------------------------------------------------------------------
# internal errors


def lose_blobs(server):
    """Remove every stored file behind ngshare's back: its rows now dangle."""
    blobs = [path for path in server.storage.rglob('*') if path.is_file()]
    blobs = [
        path for path in blobs if path.relative_to(server.storage).parts[0] == 'sha256'
    ]
    assert blobs, list(server.storage.rglob('*'))
    for path in blobs:
        path.unlink()


def release(server, course, assignment):
    return server.request(
        'POST',
        ('assignment', course, assignment),
        user='root',
        data={'files': tree({'a.ipynb': b'{"cells": []}'})},
    )


def test_internal_error_in_production_hides_details(hub_server):
    create_course(hub_server, 'Broken 101')
    ok(release(hub_server, 'Broken 101', 'A1'))
    lose_blobs(hub_server)
    resp = hub_server.request('GET', ('assignment', 'Broken 101', 'A1'), user='root')
    err(resp, 500, 'Internal server error')
    assert 'Traceback' not in resp.text
    # The server survives the failure.
    assert hub_server.running
    assert courses(hub_server) == ['Broken 101']


def test_internal_error_in_debug_explains(vngshare_server):
    create_course(vngshare_server, 'Broken 101')
    ok(release(vngshare_server, 'Broken 101', 'A1'))
    lose_blobs(vngshare_server)
    resp = vngshare_server.request(
        'GET', ('assignment', 'Broken 101', 'A1'), user='root'
    )
    assert resp.status_code == 500, resp.text
    assert resp.headers['Content-Type'].startswith('application/json')
    body = resp.json()
    assert body['success'] is False
    assert body['message'].startswith('Internal server error')
    assert len(body['message']) > len('Internal server error')
    assert vngshare_server.running


# --------------------------------------------------------------------------
# the server's root, and what the welcome page tells


def test_root_redirects_to_the_welcome_page_stand_alone(vngshare_server):
    server = vngshare_server
    resp = requests.get(server.base + '/', allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    assert resp.headers['Location'] == '/api/'
    # The query (who is asking) goes along, and the redirect lands on the page.
    resp = requests.get(server.base + '/?user=eric', timeout=10)
    assert_html(resp)
    assert resp.url == server.api + '?user=eric'
    assert 'Signed in as <strong>eric</strong>' in resp.text
    # Other methods get the JSON envelope.
    resp = requests.post(server.base + '/', timeout=10)
    err(resp, 405, 'Method Not Allowed')


def test_root_is_not_ours_under_the_hub(hub_server):
    resp = requests.get(hub_server.base + '/', allow_redirects=False, timeout=10)
    err(resp, 404, 'Not Found')


def test_root_redirect_follows_the_prefix(start_ngshare):
    server = start_ngshare(hub_mode=False, args=['--prefix', '/share/'])
    resp = requests.get(server.base + '/', allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    assert resp.headers['Location'] == '/share/'


def test_curl_example_is_an_absolute_url_that_works(server):
    page = server.request('GET', '', user='eric')
    assert_html(page)
    match = re.search(r'<code id="curl-example">([^<]*)</code>', page.text)
    assert match, page.text
    command = html.unescape(match.group(1))
    url = re.search(r"'(https?://[^']+)'", command).group(1)
    assert url.startswith(server.api + 'courses'), command
    headers = {}
    if server.hub_mode:
        assert "-H 'Authorization: token <token>'" in command
        headers['Authorization'] = 'token ' + token_for('eric')
    # Run as written (the token filled in): the API answers.
    assert ok(requests.get(url, headers=headers, timeout=10))['courses'] == []


def test_welcome_page_names_our_plugin(server):
    page = server.request('GET', '', user='root')
    assert_html(page)
    text = html.unescape(page.text)
    assert 'ngshare_exchange' not in text
    assert 'python -m pip install "ngshare[exchange]>=1.0.0.dev0"' in text
    assert 'from ngshare.exchange import configureExchange' in text
    assert f"configureExchange(c, '{server.api.rstrip('/')}')" in text
