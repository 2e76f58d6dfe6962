"""Pages around the API: health, welcome page, favicon, the JSON envelope of
routing errors, the debug actions, and internal errors.
"""

from __future__ import annotations

import json
import shutil

import pytest
import requests
from _api import err, ok, tree

DUMP = 'initialize-Data6ase'


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


def test_unknown_action_is_400(server):
    resp = server.request('GET', DUMP, user='root', params={'action': 'explode'})
    assert resp.status_code == 400, resp.text
    assert resp.headers['Content-Type'].startswith('application/json')
    body = resp.json()
    assert body['success'] is False
    assert isinstance(body['message'], str) and body['message']


# --------------------------------------------------------------------------
# internal errors


def break_storage(server):
    """Replace the storage folder by a regular file: writes must fail."""
    assert server.storage.is_dir()
    shutil.rmtree(server.storage)
    server.storage.write_bytes(b'not a folder')


def release(server, course, assignment):
    return server.request(
        'POST',
        ('assignment', course, assignment),
        user='root',
        data={'files': tree({'a.ipynb': b'{"cells": []}'})},
    )


def test_internal_error_in_production_hides_details(hub_server):
    create_course(hub_server, 'Broken 101')
    break_storage(hub_server)
    resp = release(hub_server, 'Broken 101', 'A1')
    err(resp, 500, 'Internal server error')
    assert 'Traceback' not in resp.text
    # The server survives the failure, and nothing half-stored is listed.
    assert hub_server.running
    assert courses(hub_server) == ['Broken 101']
    resp = hub_server.request('GET', ('assignments', 'Broken 101'), user='root')
    assert ok(resp)['assignments'] == []


def test_internal_error_in_debug_explains(vngshare_server):
    create_course(vngshare_server, 'Broken 101')
    break_storage(vngshare_server)
    resp = release(vngshare_server, 'Broken 101', 'A1')
    assert resp.status_code == 500, resp.text
    assert resp.headers['Content-Type'].startswith('application/json')
    body = resp.json()
    assert body['success'] is False
    assert body['message'].startswith('Internal server error')
    assert len(body['message']) > len('Internal server error')
    assert vngshare_server.running
