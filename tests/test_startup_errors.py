"""Start-up refusals an administrator meets on the first day.

Started by hand without the Hub's environment, with a port out of range, a
bare path for ``--database``, PostgreSQL without its driver, or a storage
folder that cannot work, ``python -m ngshare`` stops with exactly one
``ngshare: error:`` line that says what is wrong and how to fix it, no
traceback, and (where the check needs no disk) nothing created. Exit status
2 when it was started the wrong way (argparse's status), 1 when the
configuration cannot work. Every test runs the real process.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from _mounts import tmpfs
from _servers import REPO_ROOT, free_port, ngshare_env, run_ngshare

POSTGRES_HINT = 'install ngshare[postgres] (psycopg 3) to use PostgreSQL'


def error_line(done, status: int, prog: str = 'ngshare') -> str:
    """The one ``PROG: error:`` line of a failed start, after the checks."""
    shown = f'rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}'
    assert done.returncode == status, shown
    assert 'Traceback' not in done.output, shown
    errors = [
        line for line in done.stderr.splitlines() if line.startswith(f'{prog}: error:')
    ]
    assert len(errors) == 1, shown
    return errors[0]


def deployment(where: Path) -> list[str]:
    """``--database`` and ``--storage`` inside ``where`` (which must stay absent)."""
    return ['--database', f'sqlite:///{where / "ngshare.db"}', '--storage', str(where)]


def assert_untouched(cwd: Path) -> None:
    """Nothing was created: no folder, database, secret file, not even in cwd."""
    assert sorted(p.name for p in cwd.iterdir()) == [], list(cwd.rglob('*'))


# --------------------------------------------------------------------------
# started without the Hub's environment


def test_without_the_hub_environment_nothing_is_touched(tmp_path):
    done = run_ngshare(
        [*deployment(tmp_path / 'srv'), '--admins', 'root'], cwd=tmp_path
    )
    line = error_line(done, 2)
    assert line.startswith(
        'ngshare: error: JUPYTERHUB_API_TOKEN and JUPYTERHUB_API_URL are not set, '
        'so this is not a JupyterHub service: run ngshare as a service of '
        'JupyterHub, which sets them'
    ), line
    assert 'set JUPYTERHUB_API_TOKEN and pass --jupyterhub_api_url' in line, line
    assert 'add --vngshare for a stand-alone development server' in line, line
    assert done.stdout == ''
    assert_untouched(tmp_path)


@pytest.mark.skipif(
    os.path.lexists('/srv/ngshare'), reason='/srv/ngshare exists on this machine'
)
def test_without_the_hub_environment_the_default_folder_is_not_created(tmp_path):
    # The defaults: sqlite:////srv/ngshare/ngshare.db, /srv/ngshare/files/.
    done = run_ngshare([], cwd=tmp_path)
    error_line(done, 2)
    assert not os.path.lexists('/srv/ngshare')
    assert_untouched(tmp_path)


@pytest.mark.parametrize(
    ('args', 'env'),
    [
        pytest.param(
            ['--jupyterhub_api_url', 'http://127.0.0.1:1/hub/api'], {}, id='flag'
        ),
        pytest.param(
            [], {'JUPYTERHUB_API_URL': 'http://127.0.0.1:1/hub/api'}, id='env'
        ),
        pytest.param(
            [],
            {
                'JUPYTERHUB_API_URL': 'http://127.0.0.1:1/hub/api',
                'JUPYTERHUB_API_TOKEN': '',
            },
            id='empty-token',
        ),
    ],
)
def test_only_the_token_missing_is_named(tmp_path, args, env):
    done = run_ngshare([*deployment(tmp_path / 'srv'), *args], env=env, cwd=tmp_path)
    line = error_line(done, 2)
    assert line.startswith('ngshare: error: JUPYTERHUB_API_TOKEN is not set, '), line
    assert_untouched(tmp_path)


# --------------------------------------------------------------------------
# ports

BAD_PORTS = ['0', '65536', '99999', '-1', 'http', '80.5']


@pytest.mark.parametrize('port', BAD_PORTS)
def test_bad_port_flag(tmp_path, port):
    done = run_ngshare(
        ['--vngshare', '--port', port, *deployment(tmp_path / 'srv')], cwd=tmp_path
    )
    line = error_line(done, 2)
    assert line == f"ngshare: error: argument --port: not a port (1-65535): '{port}'"
    assert_untouched(tmp_path)


@pytest.mark.parametrize('port', ['0', '65536', '99999', 'http'])
def test_bad_port_of_the_service_url(start_ngshare, tmp_path, port):
    url = f'http://127.0.0.1:{port}'
    workdir = tmp_path / 'managed'
    done = start_ngshare(
        hub_mode=True,
        workdir=workdir,
        env={'JUPYTERHUB_SERVICE_URL': url},
        expect_fail=True,
    )
    line = error_line(done, 2)
    assert line == (
        f"ngshare: error: JUPYTERHUB_SERVICE_URL '{url}': "
        f"not a port (1-65535): '{port}'"
    )
    assert_untouched(workdir)


def logged_addresses(server) -> list[str]:
    match = re.search(r'serving \S+ on (.+)$', server.log_text(), re.MULTILINE)
    assert match, server.describe()
    return match.group(1).split(', ')


def test_the_log_names_the_port_that_answers(start_ngshare):
    port = free_port()
    server = start_ngshare(hub_mode=False, port=port)
    assert logged_addresses(server) == [f'127.0.0.1:{port}']
    assert requests.get(f'http://127.0.0.1:{port}/healthz', timeout=10).ok


def test_every_interface_logs_each_bound_address(start_ngshare):
    # A DNS name in the service URL binds every interface: the log shows the
    # sockets' own addresses (0.0.0.0, and [::] where IPv6 is there), each
    # answering on the port the service URL names.
    port = free_port()
    server = start_ngshare(
        hub_mode=True,
        port=port,
        env={'JUPYTERHUB_SERVICE_URL': f'http://ngshare.example:{port}'},
    )
    addresses = logged_addresses(server)
    assert f'0.0.0.0:{port}' in addresses, addresses
    assert set(addresses) <= {f'0.0.0.0:{port}', f'[::]:{port}'}, addresses
    loopback = {'0.0.0.0': '127.0.0.2', '[::]': '[::1]'}  # noqa: S104
    for address in addresses:
        host = loopback[address.rpartition(':')[0]]
        resp = requests.get(f'http://{host}:{port}/healthz', timeout=10)
        assert resp.json() == {'success': True}, address


def test_a_port_in_use_is_one_line(start_ngshare, tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start_ngshare(hub_mode=False, port=port, expect_fail=True)
    line = error_line(done, 1)
    assert line.startswith(f'ngshare: error: cannot listen on 127.0.0.1:{port}: '), line


# --------------------------------------------------------------------------
# database URL


@pytest.mark.parametrize('relative', [False, True], ids=['absolute', 'relative'])
def test_bare_database_path_gets_the_sqlite_url(tmp_path, relative):
    path = tmp_path / 'x.db'
    given = 'x.db' if relative else str(path)
    done = run_ngshare(
        ['--vngshare', '--database', given, '--storage', str(tmp_path / 'files')],
        cwd=tmp_path,
    )
    line = error_line(done, 1)
    assert line == (
        f"ngshare: error: invalid database URL '{given}' "
        f'(for a SQLite file use sqlite:///{path})'
    )
    assert f'sqlite:////{str(path).lstrip("/")})' in line  # four slashes
    assert_untouched(tmp_path)


@pytest.fixture
def without_psycopg(tmp_path) -> dict[str, str]:
    """An environment where ``import psycopg`` fails, as without the extra.

    A ``psycopg.py`` that raises ImportError comes first on PYTHONPATH; the
    installed package is left alone.
    """
    shadow = tmp_path / 'shadow'
    shadow.mkdir()
    (shadow / 'psycopg.py').write_text(
        "raise ImportError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    env = {'PYTHONPATH': os.pathsep.join([str(shadow), str(REPO_ROOT)])}
    probe = subprocess.run(
        [sys.executable, '-c', 'import psycopg'],
        env=ngshare_env(env),
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0, 'the shadow module did not hide psycopg'
    return env


@pytest.mark.parametrize('scheme', ['postgresql', 'postgresql+psycopg'])
def test_postgresql_without_psycopg(tmp_path, without_psycopg, scheme):
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    url = f'{scheme}://ngshare:secret@127.0.0.1:{free_port()}/ngshare'
    done = run_ngshare(
        ['--vngshare', '--database', url, '--storage', str(cwd / 'files')],
        env=without_psycopg,
        cwd=cwd,
    )
    line = error_line(done, 1)
    assert line.endswith(f"No module named 'psycopg': {POSTGRES_HINT}"), line
    assert 'secret' not in done.output
    assert_untouched(cwd)


def test_postgresql_url_means_psycopg_3(start_ngshare):
    # No server listens there: the refusal names the driver that was used.
    url = f'postgresql://nobody@127.0.0.1:{free_port()}/x'
    done = start_ngshare(hub_mode=False, database_url=url, expect_fail=True)
    line = error_line(done, 1)
    assert line.startswith(
        'ngshare: error: cannot use database postgresql+psycopg://'
    ), line


def test_a_file_that_is_no_database_is_one_line(start_ngshare, tmp_path):
    garbage = tmp_path / 'garbage.db'
    garbage.write_bytes(b'not a database, ' * 512)
    done = start_ngshare(
        hub_mode=False, database_url=f'sqlite:///{garbage}', expect_fail=True
    )
    line = error_line(done, 1)
    assert 'file is not a database' in line, line
    assert garbage.read_bytes() == b'not a database, ' * 512


def test_database_folder_under_a_file(start_ngshare, tmp_path):
    blocker = tmp_path / 'blocker'
    blocker.write_text('x')
    url = f'sqlite:///{blocker / "db" / "ngshare.db"}'
    done = start_ngshare(hub_mode=False, database_url=url, expect_fail=True)
    line = error_line(done, 1)
    assert line == (
        f"ngshare: error: cannot create database folder '{blocker / 'db'}': "
        f"'{blocker}' is not a folder"
    )


# --------------------------------------------------------------------------
# storage folder


def test_storage_is_a_file(start_ngshare, tmp_path):
    blocker = tmp_path / 'passwd'
    blocker.write_text('x')
    done = start_ngshare(hub_mode=False, storage=blocker, expect_fail=True)
    assert (
        error_line(done, 1)
        == f"ngshare: error: storage folder '{blocker}' is not a folder"
    )
    done = start_ngshare(hub_mode=False, storage=blocker / 'files', expect_fail=True)
    assert error_line(done, 1) == (
        f"ngshare: error: cannot create storage folder '{blocker / 'files'}': "
        f"'{blocker}' is not a folder"
    )
    assert blocker.read_text() == 'x'


def test_storage_on_a_read_only_file_system(start_ngshare, tmp_path):
    with tmpfs(tmp_path / 'ro', '1M') as mount:
        subprocess.run(
            ['mount', '-o', 'remount,ro', str(mount)], check=True, capture_output=True
        )
        done = start_ngshare(hub_mode=False, storage=mount, expect_fail=True)
        assert error_line(done, 1) == (
            f"ngshare: error: storage folder '{mount}' is not writable by this user"
            ' (Read-only file system)'
        )
        inner = mount / 'files'
        done = start_ngshare(hub_mode=False, storage=inner, expect_fail=True)
        assert error_line(done, 1) == (
            f"ngshare: error: cannot create storage folder '{inner}': "
            f"Read-only file system (creating '{inner}')"
        )


# --------------------------------------------------------------------------
# ngshare-admin: the same checks, the same words


def test_admin_gets_the_same_hints(tmp_path, without_psycopg):
    storage = tmp_path / 'files'
    storage.mkdir()
    bare = str(tmp_path / 'x.db')
    done = run_ngshare(
        ['verify', '--database', bare, '--storage', str(storage)],
        module='ngshare.admin',
    )
    assert error_line(done, 2, 'ngshare-admin') == (
        f"ngshare-admin: error: invalid database URL '{bare}' "
        f'(for a SQLite file use sqlite:///{bare})'
    )
    url = f'postgresql://nobody@127.0.0.1:{free_port()}/x'
    done = run_ngshare(
        ['verify', '--database', url, '--storage', str(storage)],
        module='ngshare.admin',
        env=without_psycopg,
    )
    assert error_line(done, 2, 'ngshare-admin').endswith(POSTGRES_HINT)
    blocker = tmp_path / 'passwd'
    blocker.write_text('x')
    done = run_ngshare(
        [
            'verify',
            '--database',
            f'sqlite:///{tmp_path / "x.db"}',
            '--storage',
            str(blocker),
        ],
        module='ngshare.admin',
    )
    assert error_line(done, 2, 'ngshare-admin') == (
        f"ngshare-admin: error: storage folder '{blocker}' is not a folder"
    )


# --------------------------------------------------------------------------
# the documentation quotes what is printed


def flat(text: str) -> str:
    return ' '.join(text.replace('`', ' ').split())


# Lines quoted whole in docs/cli.md; (True) also in docs/behaviour.md.
QUOTED = [
    pytest.param([], {}, False, id='no-hub-environment'),
    pytest.param(['--vngshare', '--port', '99999'], {}, False, id='port'),
    pytest.param(
        [],
        {
            'JUPYTERHUB_API_TOKEN': 'x',
            'JUPYTERHUB_SERVICE_URL': 'http://127.0.0.1:99999',
        },
        False,
        id='service-url-port',
    ),
    pytest.param(['--vngshare', '--database', '/srv/x.db'], {}, True, id='bare-path'),
    pytest.param(
        ['--vngshare', '--storage', '/etc/passwd'], {}, True, id='storage-file'
    ),
    pytest.param(
        ['--vngshare', '--storage', '/etc/passwd/files'], {}, False, id='under-file'
    ),
]


@pytest.mark.parametrize(('args', 'env', 'in_behaviour'), QUOTED)
def test_docs_quote_the_line_printed(tmp_path, args, env, in_behaviour):
    if '/etc/passwd' in ' '.join(args) and not os.path.isfile('/etc/passwd'):
        pytest.skip('no /etc/passwd here')
    defaults = deployment(tmp_path / 'srv')
    for flag in ('--database', '--storage'):
        if flag not in args:
            args = [*args, flag, defaults[defaults.index(flag) + 1]]
    done = run_ngshare(args, env=env, cwd=tmp_path)
    assert done.returncode in (1, 2), done.output
    line = error_line(done, done.returncode)
    assert_untouched(tmp_path)
    docs = REPO_ROOT / 'docs'
    assert flat(line) in flat((docs / 'cli.md').read_text()), line
    if in_behaviour:
        message = flat(line.removeprefix('ngshare: error: '))
        assert message in flat((docs / 'behaviour.md').read_text()), line
