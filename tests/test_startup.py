"""Starting ngshare: flags, defaults, refusals of bad configurations, and
where each mode listens.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from _api import ok
from _servers import free_port, run_ngshare, token_for

FLAGS = [
    '--database',
    '--storage',
    '--admins',
    '--debug',
    '--no-upgrade-db',
    '--jupyterhub_api_url',
    '--prefix',
    '--vngshare',
    '--host',
    '--port',
]


def assert_startup_error(done):
    """Exit status 1, one ``ngshare: error:`` line, no traceback."""
    shown = f'rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}'
    assert done.returncode == 1, shown
    errors = [
        line for line in done.stderr.splitlines() if line.startswith('ngshare: error:')
    ]
    assert len(errors) == 1, shown
    assert len(errors[0]) > len('ngshare: error:') + 1, shown
    assert 'Traceback' not in done.output, shown


# --------------------------------------------------------------------------
# --help


def test_help_lists_every_flag():
    done = run_ngshare(['--help'])
    assert done.returncode == 0, done.output
    for flag in FLAGS:
        assert re.search(rf'(^|[\s,\[]){re.escape(flag)}\b', done.stdout), (
            flag,
            done.stdout,
        )


def test_help_mentions_defaults():
    text = ' '.join(run_ngshare(['--help']).stdout.split())
    assert '/srv/ngshare/ngshare.db' in text, text
    assert '/srv/ngshare/files' in text, text
    assert '/tmp/ngshare.db' in text, text
    assert '/tmp/ngshare' in text.replace('/tmp/ngshare.db', ''), text


# --------------------------------------------------------------------------
# bad configurations


@pytest.mark.parametrize('prefix', ['api/', '/api', 'api', 'api//x'])
@pytest.mark.parametrize('hub_mode', [False, True], ids=['vngshare', 'hub'])
def test_bad_prefix(start_ngshare, hub_mode, prefix):
    done = start_ngshare(
        hub_mode=hub_mode, args=[f'--prefix={prefix}'], expect_fail=True
    )
    assert_startup_error(done)


def test_storage_is_a_regular_file(start_ngshare, tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('x')
    for storage in (blocker, blocker / 'files'):
        done = start_ngshare(hub_mode=False, storage=storage, expect_fail=True)
        assert_startup_error(done)
    assert blocker.read_text() == 'x'


def test_storage_in_hub_mode_is_a_regular_file(start_ngshare, tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('x')
    done = start_ngshare(hub_mode=True, storage=blocker, expect_fail=True)
    assert_startup_error(done)


def test_unreachable_postgres(start_ngshare):
    url = f'postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x'
    done = start_ngshare(hub_mode=False, database_url=url, expect_fail=True)
    assert_startup_error(done)


def test_sqlite_under_a_regular_file(start_ngshare, tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('x')
    url = f'sqlite:///{blocker / "ngshare.db"}'
    for hub_mode in (False, True):
        done = start_ngshare(hub_mode=hub_mode, database_url=url, expect_fail=True)
        assert_startup_error(done)


# --------------------------------------------------------------------------
# --no-upgrade-db

_UPGRADE_WORDS = ('upgrade', 'schema', 'migrat', 'alembic', 'revision')


def _upgrade_warnings(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if re.search(r'(^\[W |warn)', line, re.IGNORECASE)
        and any(word in line.lower() for word in _UPGRADE_WORDS)
    ]


def test_no_upgrade_db_on_empty_database_refuses(start_ngshare):
    """A database not at the current revision (here: empty) is refused with
    --no-upgrade-db, saying what to do; an old (0.6.0) one: test_upgrade."""
    done = start_ngshare(hub_mode=False, args=['--no-upgrade-db'], expect_fail=True)
    assert_startup_error(done)
    assert 'start without --no-upgrade-db' in done.stderr, done.output
    assert 'ngshare-admin upgrade' in done.stderr, done.output


def test_upgraded_database_does_not_warn(start_ngshare, tmp_path):
    workdir = tmp_path / 'db'
    first = start_ngshare(hub_mode=False, workdir=workdir)
    ok(first.request('POST', ('course', 'Kept'), user='root'))
    assert _upgrade_warnings(first.log_text()) == [], first.describe()
    first.stop()
    # An up-to-date database needs no upgrade: no warning, data intact.
    second = start_ngshare(hub_mode=False, workdir=workdir, args=['--no-upgrade-db'])
    assert _upgrade_warnings(second.log_text()) == [], second.describe()
    assert ok(second.request('GET', 'courses', user='root'))['courses'] == ['Kept']


# --------------------------------------------------------------------------
# stand-alone mode


def test_vngshare_warns_against_production(start_ngshare, hub_server):
    server = start_ngshare(hub_mode=False)
    assert 'do not use in production' in server.log_text().lower(), server.describe()
    assert 'do not use in production' not in hub_server.log_text().lower()


def test_vngshare_binds_only_the_given_host(vngshare_server):
    assert requests.get(vngshare_server.base + '/healthz', timeout=10).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f'http://127.0.0.2:{vngshare_server.port}/healthz', timeout=10)


def test_vngshare_serves_under_api(vngshare_server):
    assert vngshare_server.prefix == '/api/'
    resp = requests.get(
        vngshare_server.base + '/api/courses', params={'user': 'root'}, timeout=10
    )
    assert ok(resp)['courses'] == []


def test_vngshare_custom_prefix(start_ngshare):
    server = start_ngshare(hub_mode=False, args=['--prefix', '/custom/x/'])
    resp = requests.get(
        server.base + '/custom/x/courses', params={'user': 'root'}, timeout=10
    )
    assert ok(resp)['courses'] == []
    resp = requests.get(
        server.base + '/api/courses', params={'user': 'root'}, timeout=10
    )
    assert resp.status_code == 404


def test_vngshare_module_entry_point(start_ngshare):
    server = start_ngshare(hub_mode=False, module='ngshare.vngshare')
    ok(server.request('POST', ('course', 'Entry'), user='root'))
    assert ok(server.request('GET', 'courses', user='root'))['courses'] == ['Entry']
    # Debug is on: any user may dump the database.
    resp = server.request(
        'GET', 'initialize-Data6ase', user='kevin', params={'action': 'dump'}
    )
    assert 'Entry' in json.dumps(ok(resp))


def test_several_admins(start_ngshare):
    server = start_ngshare(hub_mode=False, admins='root,alice')
    ok(server.request('POST', ('course', 'By Alice'), user='alice'))
    ok(server.request('POST', ('course', 'By Root'), user='root'))
    refused = server.request('POST', ('course', 'By Bob'), user='bob')
    # Debug mode (always on with --vngshare) may say why: "(not admin)".
    assert refused.status_code == 403, refused.text
    assert refused.json()['message'].startswith('Permission denied'), refused.text
    assert ok(server.request('GET', 'courses', user='alice'))['courses'] == [
        'By Alice',
        'By Root',
    ]


# --------------------------------------------------------------------------
# managed mode


def test_managed_mode_listens_on_service_url_port_under_service_prefix(hub_server):
    # The fixture gives the port only through JUPYTERHUB_SERVICE_URL.
    assert f':{hub_server.port}' in hub_server.env['JUPYTERHUB_SERVICE_URL']
    assert not any(arg == '--port' for arg in hub_server.command)
    resp = requests.get(
        hub_server.base + '/services/ngshare/courses',
        headers={'Authorization': f'token {token_for("root")}'},
        timeout=10,
    )
    assert ok(resp)['courses'] == []
    resp = requests.get(
        hub_server.base + '/api/courses',
        headers={'Authorization': f'token {token_for("root")}'},
        timeout=10,
    )
    assert resp.status_code == 404


def test_managed_mode_binds_the_service_url_host(hub_server):
    # The fixture's JUPYTERHUB_SERVICE_URL names 127.0.0.1: like JupyterHub's
    # own services, ngshare listens there only. 127.0.0.2 is loopback too,
    # reachable only when more than 127.0.0.1 is bound.
    assert hub_server.env['JUPYTERHUB_SERVICE_URL'].startswith('http://127.0.0.1:')
    assert requests.get(hub_server.base + '/healthz', timeout=10).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f'http://127.0.0.2:{hub_server.port}/healthz', timeout=10)
    assert f'on 127.0.0.1:{hub_server.port}' in hub_server.log_text()


@pytest.mark.parametrize(
    ('service_host', 'reachable_at'),
    [
        # The Helm chart's JUPYTERHUB_SERVICE_URL: every IPv4 interface.
        pytest.param('0.0.0.0', '127.0.0.2', id='any-ipv4'),  # noqa: S104
        # A DNS name (a Kubernetes Service) is not this process's address.
        pytest.param('ngshare.example', '127.0.0.2', id='dns-name'),
        pytest.param('localhost', '127.0.0.1', id='localhost'),
    ],
)
def test_managed_mode_bind_address_from_service_url(
    start_ngshare, service_host, reachable_at
):
    port = free_port()
    server = start_ngshare(
        hub_mode=True,
        port=port,
        env={'JUPYTERHUB_SERVICE_URL': f'http://{service_host}:{port}'},
    )
    resp = requests.get(f'http://{reachable_at}:{port}/healthz', timeout=10)
    assert resp.json() == {'success': True}
    if reachable_at == '127.0.0.1':
        with pytest.raises(requests.ConnectionError):
            requests.get(f'http://127.0.0.2:{port}/healthz', timeout=10)
    assert server.running


def test_managed_mode_host_flag_overrides_the_service_url(start_ngshare):
    # JUPYTERHUB_SERVICE_URL names 127.0.0.1 (the fixture); --host wins.
    server = start_ngshare(hub_mode=True, args=['--host', '0.0.0.0'])  # noqa: S104
    resp = requests.get(f'http://127.0.0.2:{server.port}/healthz', timeout=10)
    assert resp.json() == {'success': True}


def test_managed_mode_prefix_flag_overrides_environment(start_ngshare):
    server = start_ngshare(hub_mode=True, args=['--prefix', '/custom/'])
    root = {'Authorization': f'token {token_for("root")}'}
    resp = requests.get(server.base + '/custom/courses', headers=root, timeout=10)
    assert ok(resp)['courses'] == []
    resp = requests.get(
        server.base + '/services/ngshare/courses', headers=root, timeout=10
    )
    assert resp.status_code == 404


def test_managed_mode_debug_flag(start_ngshare):
    server = start_ngshare(hub_mode=True, args=['--debug'])
    ok(server.request('POST', ('course', 'Dbg'), user='root'))
    resp = server.request(
        'GET', 'initialize-Data6ase', user='kevin', params={'action': 'dump'}
    )
    assert 'Dbg' in json.dumps(ok(resp))
    ok(
        server.request(
            'GET', 'initialize-Data6ase', user='root', params={'action': 'clear'}
        )
    )
    assert ok(server.request('GET', 'courses', user='root'))['courses'] == []
