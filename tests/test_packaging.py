"""The wheel alone serves: built from a copy of the sources, installed into a
fresh virtual environment, started from a folder outside the checkout.

The wheel is built without build isolation (``--no-isolation``, with the
setuptools and wheel of the test extra) and installed with ``--no-deps
--no-index``: nothing is downloaded at test time. The fresh environment
borrows the dependencies (Tornado, JupyterHub, SQLAlchemy, ...) of the
environment running the tests through a ``.pth`` file that lists its
site-packages folders. A ``.pth`` file only adds folders to ``sys.path``;
the ``.pth`` files inside them (such as an editable install of this
checkout) are not processed, so ``ngshare`` itself can only come from the
wheel, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import site
import sqlite3
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import requests
from _servers import REPO_ROOT, free_port

from ngshare.database.migrate import head_revision
from ngshare.version import __version__

pytest.importorskip('build', reason='"build" is not installed (the test extra)')

IGNORED = (
    '.git',
    '.venv',
    'venv',
    'node_modules',
    'build',
    'dist',
    '*.egg-info',
    '__pycache__',
    '*.pyc',
    '.pytest_cache',
    '.ruff_cache',
    'test-artifacts',
    '_build',
)


def _clean_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('JUPYTERHUB_', 'NGSHARE_', 'PYTHON', 'VIRTUAL_ENV'))
    }
    env['PYTHONUNBUFFERED'] = '1'
    return env


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        env=kwargs.pop('env', _clean_env()),
        timeout=kwargs.pop('timeout', 600),
        **kwargs,
    )
    assert done.returncode == 0, (
        f'{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}'
    )
    return done


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp('packaging')
    source = work / 'src'
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    _run(
        [
            sys.executable,
            '-m',
            'build',
            '--wheel',
            '--no-isolation',
            '--outdir',
            work / 'dist',
            source,
        ],
        cwd=work,
    )
    (built,) = (work / 'dist').glob('ngshare-*.whl')
    return built


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO_ROOT / 'ngshare'
    expected = {
        f'ngshare/templates/{path.name}'
        for path in (package / 'templates').iterdir()
        if path.is_file()
    }
    assert {'ngshare/templates/home.html', 'ngshare/templates/dump.html'} <= expected
    expected |= {'ngshare/alembic/env.py', 'ngshare/alembic/script.py.mako'}
    versions = sorted((package / 'alembic' / 'versions').glob('*.py'))
    assert versions, 'no Alembic revisions found'
    expected |= {f'ngshare/alembic/versions/{path.name}' for path in versions}
    missing = expected - names
    assert not missing, f'the wheel lacks {sorted(missing)}'
    # Nothing reads an alembic.ini at run time (ngshare.database.migrate
    # locates the scripts from its own path), and none is shipped.
    assert not any(name.endswith('alembic.ini') for name in names)
    assert not any('__pycache__' in name or name.endswith('.pyc') for name in names)
    assert not any(name.startswith(('tests/', 'docs/')) for name in names)

    info = f'ngshare-{__version__}.dist-info'
    entry_points = zipfile.ZipFile(wheel).read(f'{info}/entry_points.txt').decode()
    for script in ('ngshare = ngshare.cli:main', 'ngshare-admin = ngshare.admin:main'):
        assert script in entry_points
    metadata = zipfile.ZipFile(wheel).read(f'{info}/METADATA').decode()
    for requirement in ('tornado', 'jupyterhub', 'SQLAlchemy', 'alembic'):
        assert f'Requires-Dist: {requirement}' in metadata
    assert 'Requires-Dist: prometheus' in metadata


def test_installed_wheel_serves(wheel, tmp_path):
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', venv])
    python = venv / 'bin' / 'python'
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', wheel])
    purelib = Path(
        _run(
            [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']}
    ours.update(site.getsitepackages())
    (purelib / 'zz_test_dependencies.pth').write_text(
        '\n'.join(sorted(path for path in ours if os.path.isdir(path))) + '\n'
    )

    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    where = _run(
        [python, '-c', 'import ngshare, sys; print(ngshare.__file__)'], cwd=outside
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), f'ngshare imported from {where}'
    assert not Path(where).is_relative_to(REPO_ROOT)

    port = free_port()
    database = outside / 'data' / 'ngshare.db'
    log = open(outside / 'ngshare.log', 'w+')  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            python,
            '-m',
            'ngshare',
            '--vngshare',
            '--host',
            '127.0.0.1',
            '--port',
            str(port),
            '--database',
            f'sqlite:///{database}',
            '--storage',
            outside / 'files',
            '--admins',
            'root',
        ],
        cwd=outside,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f'http://127.0.0.1:{port}'
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, _log(log)
            try:
                health = requests.get(base + '/healthz', timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, _log(log)
                time.sleep(0.1)
        assert health.json() == {'success': True}

        with sqlite3.connect(database) as connection:
            (revision,) = connection.execute(
                'SELECT version_num FROM alembic_version'
            ).fetchone()
        assert revision == head_revision()

        home = requests.get(base + '/api/', params={'user': 'root'}, timeout=10)
        assert home.status_code == 200, home.text
        assert home.headers['Content-Type'].startswith('text/html')
        assert f'ngshare {__version__}' in home.text
        assert 'Signed in as <strong>root</strong>' in home.text
        dump = requests.get(
            base + '/api/initialize-Data6ase',
            params={'action': 'dump', 'human-readable': 'true', 'user': 'root'},
            timeout=10,
        )
        assert dump.status_code == 200 and 'table-alembic_version' not in dump.text
        assert 'id="table-courses"' in dump.text
        icon = requests.get(base + '/api/favicon.ico', timeout=10)
        assert icon.status_code == 200 and b'<svg' in icon.content
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()

    # The console script of the wheel, on the database the service migrated.
    _run(
        [
            venv / 'bin' / 'ngshare-admin',
            'verify',
            '--database',
            f'sqlite:///{database}',
            '--storage',
            outside / 'files',
        ],
        cwd=outside,
    )


def _log(stream) -> str:
    stream.flush()
    stream.seek(0)
    return 'ngshare did not start:\n' + stream.read()
