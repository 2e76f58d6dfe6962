"""Real ngshare processes (and a Hub stand-in) for the tests.

Everything here runs real processes on loopback: ngshare is started with
``python -m ngshare`` exactly as an administrator would, and the Hub is
:mod:`hubstub`, a small Tornado app answering ``/hub/api/user``.

Fixtures
--------
``hub``
    A running :class:`HubStub` (``url``, ``api_url``, ``stats()``).
``start_ngshare``
    Factory: ``start_ngshare(*, hub_mode, args=(), env=None,
    expect_fail=False, **options)`` starts ngshare and waits for
    ``/healthz``; see :func:`start_server`. With ``expect_fail=True`` it returns
    a :class:`Finished` (``returncode``, ``stdout``, ``stderr``) instead.
    Every server it started is stopped at teardown.
``ngshare_database_url``
    ``None`` (a fresh SQLite file per server). Tests and modules marked
    ``both_databases`` (``pytestmark = pytest.mark.both_databases``) run
    twice, with ids ``sqlite`` and ``postgresql``: once so, once with the
    URL of a fresh PostgreSQL database (``postgres_url``). Override this
    fixture to run the server fixtures against another database.
``ngshare_storage``
    A :class:`_storages.StorageChoice` (module scope), ``kind`` ``folder``
    (``--storage workdir/files``). Tests and modules marked
    ``both_storages`` run twice, with ids ``folder`` and ``s3``: once so,
    once with every server that ``start_ngshare`` starts without an
    explicit ``storage`` on a prefix of its own in a bucket of the
    session's SeaweedFS (``s3_server``). Crossed with ``both_databases``
    where both marks apply (:data:`BOTH_COMBINATIONS`: not SQLite on a
    bucket). A server's ``blobs`` (and ``blob_keys()``)
    read what it stored, folder or bucket alike (:mod:`_storages`);
    ``storage`` is the ``--storage`` value (a Path, or the ``s3://`` URL).
``vngshare_server``
    Stand-alone server (``--vngshare``, debug on, prefix ``/api/``,
    ``--admins root``).
``hub_server``
    Hub-managed server against ``hub`` (production: debug off, prefix
    ``/services/ngshare/``, ``--admins root``).

Making requests
---------------
``server.request(method, path, user=..., ...)``; ``path`` is relative to the
API prefix, either a tuple of raw segments (each percent-encoded) or a str
used verbatim. See :meth:`NgshareServer.request`.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from _ports import free_port
from _storages import STORAGES, StorageChoice, storage_view

__all__ = [
    'HUB_SERVICE_PREFIX',
    'HUB_SERVICE_TOKEN',
    'REPO_ROOT',
    'Finished',
    'ApiClient',
    'HubStub',
    'NgshareServer',
    'free_port',
    'hub',
    'hub_server',
    'ngshare_database_url',
    'ngshare_env',
    'ngshare_storage',
    'pytest_generate_tests',
    'run_ngshare',
    'start_server',
    'start_ngshare',
    'token_for',
    'vngshare_server',
]

REPO_ROOT = Path(__file__).resolve().parent.parent
HUBSTUB = Path(__file__).resolve().parent / 'hubstub.py'

HUB_SERVICE_PREFIX = '/services/ngshare/'
HUB_SERVICE_TOKEN = 'service-token-of-ngshare'  # noqa: S105 (a test value)
VNGSHARE_PREFIX = '/api/'

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1


def token_for(name: str) -> str:
    """The token that :mod:`hubstub` resolves to user ``name``."""
    return 'tok-' + name.encode('utf-8').hex()


def _stop_process(proc: subprocess.Popen) -> None:
    """Terminate one process we started (by its PID), kill it if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _read(path: Path) -> str:
    try:
        return path.read_text('utf-8', errors='replace')
    except FileNotFoundError:
        return ''


# --------------------------------------------------------------------------
# The Hub stand-in


class HubStub:
    """A running ``tests/hubstub.py`` on a free loopback port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.api_url = self.url + '/hub/api'
        self.log_path = Path(workdir) / 'hubstub.log'
        self._log = open(self.log_path, 'wb')  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HUBSTUB),
                '--port',
                str(self.port),
                '--client-secret',
                HUB_SERVICE_TOKEN,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(
                    f'hubstub exited with {self.proc.returncode}:\n'
                    + _read(self.log_path)
                )
            try:
                requests.get(self.url + '/stub/stats', timeout=1)
                return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError('hubstub did not start:\n' + _read(self.log_path))
            time.sleep(POLL_INTERVAL)

    def stats(self) -> dict:
        """``{"user_requests": N, "by_token": {token: n}}`` seen so far."""
        resp = requests.get(self.url + '/stub/stats', timeout=10)
        resp.raise_for_status()
        return resp.json()

    def user_requests(self, token: str | None = None) -> int:
        """``/hub/api/user`` requests seen in total, or for one token."""
        stats = self.stats()
        if token is None:
            return stats['user_requests']
        return stats['by_token'].get(token, 0)

    def stop(self) -> None:
        _stop_process(self.proc)
        self._log.close()


# --------------------------------------------------------------------------
# ngshare


@dataclasses.dataclass
class Finished:
    """A finished ``python -m ngshare`` run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def ngshare_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for an ngshare child process.

    Starts from ours without any ``JUPYTERHUB_*`` / ``NGSHARE_*`` variable,
    makes this checkout importable, then applies ``env``; a value of None
    removes that variable.
    """
    result = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('JUPYTERHUB_', 'NGSHARE_'))
    }
    result['PYTHONPATH'] = os.pathsep.join(
        [str(REPO_ROOT)] + ([result['PYTHONPATH']] if result.get('PYTHONPATH') else [])
    )
    result['PYTHONUNBUFFERED'] = '1'
    for key, value in (env or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def run_ngshare(
    args: Iterable[str] = (),
    *,
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike | None = None,
    module: str = 'ngshare',
    timeout: float = 60,
) -> Finished:
    """Run ``python -m <module> args`` to completion (e.g. ``--help``)."""
    try:
        done = subprocess.run(
            [sys.executable, '-m', module, *args],
            env=ngshare_env(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f'python -m {module} {" ".join(args)} still running after {timeout}s;'
            f' output:\n{exc.stdout!r}\n{exc.stderr!r}'
        ) from None
    return Finished(
        done.returncode,
        done.stdout.decode('utf-8', 'replace'),
        done.stderr.decode('utf-8', 'replace'),
    )


def _flag_value(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + '='):
            value = arg[len(flag) + 1 :]
    return value


class ApiClient:
    """Requests to an ngshare API, as the tests make them.

    Subclasses set ``api`` (``base + prefix``), ``hub_mode`` (who the
    caller is: a Hub token, or the stand-alone ``user`` parameter) and
    ``debug`` (debug mode adds reasons to ``Permission denied``, see
    ``_api.err``).
    """

    api: str
    hub_mode: bool
    debug: bool

    def url(self, path: str | tuple[str, ...] | list[str] = '') -> str:
        """Absolute URL of ``path`` under the API prefix (see :meth:`request`)."""
        if isinstance(path, (tuple, list)):
            path = '/'.join(urllib.parse.quote(seg, safe='') for seg in path)
        return self.api + path

    def request(
        self,
        method: str,
        path: str | tuple[str, ...] | list[str] = '',
        *,
        user: str | None = None,
        token: str | None = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        data: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = False,
        timeout: float = 30,
    ) -> requests.Response:
        """Send one request to the API and return the response.

        ``path`` is relative to the API prefix:

        * a tuple (or list) of **raw** segments, each percent-encoded with
          ``quote(seg, safe='')``, so names with spaces, ``%``, ``/``,
          ``+`` or any Unicode work: ``('course', 'NBG 101')``;
        * a str, appended **verbatim** (already encoded):
          ``'courses'``, ``'course/NBG%20101'``, ``''`` (the welcome page).

        ``data`` is sent form-encoded. ``user`` names the caller: on a
        stand-alone server it becomes the ``user`` query parameter (GET,
        HEAD) or form field (POST, DELETE, ...); on a Hub-mode server it
        becomes ``Authorization: token tok-<hex(name)>`` (the hubstub
        token of that user). ``token`` sends ``Authorization: token
        <token>`` in either mode.
        """
        method = method.upper()
        params_list = _pairs(params)
        data_list = _pairs(data) if data is not None else None
        all_headers = dict(headers or {})
        if token is not None:
            all_headers['Authorization'] = f'token {token}'
        if user is not None:
            if self.hub_mode:
                all_headers.setdefault('Authorization', f'token {token_for(user)}')
            elif method in ('GET', 'HEAD'):
                params_list.append(('user', user))
            else:
                data_list = (data_list or []) + [('user', user)]
        resp = requests.request(
            method,
            self.url(path),
            params=params_list or None,
            data=data_list,
            headers=all_headers,
            allow_redirects=allow_redirects,
            timeout=timeout,
        )
        # For _api.err: debug mode adds the reason to "Permission denied".
        resp.ngshare_debug = self.debug
        return resp

    def get(self, path='', **kwargs) -> requests.Response:
        return self.request('GET', path, **kwargs)

    def post(self, path='', **kwargs) -> requests.Response:
        return self.request('POST', path, **kwargs)

    def delete(self, path='', **kwargs) -> requests.Response:
        return self.request('DELETE', path, **kwargs)


class NgshareServer(ApiClient):
    """One ngshare process started by the tests.

    Attributes: ``command``, ``env`` (of the process), ``base``
    (``http://127.0.0.1:PORT``), ``prefix``, ``api``
    (``base + prefix``), ``port``, ``hub_mode``, ``hub`` (the
    :class:`HubStub` or None), ``debug``, ``database_url``, ``storage``
    (a Path, or an ``s3://`` URL), ``blobs`` (its view,
    :mod:`_storages`), ``workdir``, ``stdout_path``, ``stderr_path``,
    ``log_path`` (= ``stderr_path``, where Tornado logs), ``proc``.
    """

    def __init__(
        self,
        *,
        command: list[str],
        env: dict[str, str],
        workdir: Path,
        port: int,
        prefix: str,
        hub_mode: bool,
        hub: HubStub | None,
        debug: bool,
        database_url: str,
        storage: Path | str,
        preexec_fn=None,
        cwd: str | os.PathLike | None = None,
    ):
        self.command = command
        self.env = env
        self.workdir = workdir
        self.port = port
        self.base = f'http://127.0.0.1:{port}'
        self.prefix = prefix
        self.api = self.base + prefix
        self.hub_mode = hub_mode
        self.hub = hub
        self.debug = debug
        self.database_url = database_url
        self.storage = storage
        self.blobs = storage_view(storage, env)
        self.stdout_path = workdir / 'ngshare.stdout.log'
        self.stderr_path = workdir / 'ngshare.stderr.log'
        self.log_path = self.stderr_path
        self._out = open(self.stdout_path, 'wb')  # noqa: SIM115 (closed in stop)
        self._err = open(self.stderr_path, 'wb')  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=cwd or workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            preexec_fn=preexec_fn,  # noqa: PLW1509 (e.g. resource limits)
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f'ngshare exited with {self.proc.returncode} during start-up'
                    f'\n{self.describe()}'
                )
            try:
                resp = requests.get(self.base + '/healthz', timeout=2)
                if resp.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f'ngshare did not answer /healthz within {START_TIMEOUT}s'
                    f'\n{self.describe()}'
                )
            time.sleep(POLL_INTERVAL)

    def describe(self) -> str:
        """Command line and output so far, for assertion messages."""
        return (
            f'command: {self.command}\n--- stdout ---\n{_read(self.stdout_path)}'
            f'\n--- stderr ---\n{_read(self.stderr_path)}'
        )

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return _read(self.stdout_path) + _read(self.stderr_path)

    def blob_keys(self) -> list[str]:
        """What the server stored (folder or bucket), see :mod:`_storages`."""
        return self.blobs.keys()

    def stop(self) -> None:
        _stop_process(self.proc)
        self._out.close()
        self._err.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


def _pairs(mapping) -> list[tuple[str, Any]]:
    if mapping is None:
        return []
    if isinstance(mapping, Mapping):
        return list(mapping.items())
    return list(mapping)


def start_server(
    workdir: Path,
    *,
    hub_mode: bool,
    hub: HubStub | None = None,
    args: Iterable[str] = (),
    env: Mapping[str, str | None] | None = None,
    expect_fail: bool = False,
    database_url: str | None = None,
    storage: str | os.PathLike | None = None,
    admins: str | None = 'root',
    port: int | None = None,
    module: str = 'ngshare',
    preexec_fn=None,
    cwd: str | os.PathLike | None = None,
) -> NgshareServer | Finished:
    """Start ngshare in ``workdir`` (its cwd; logs, database, files go there).

    * ``hub_mode=False``: ``--vngshare --host 127.0.0.1 --port PORT``
      (the ``--vngshare`` flag is left out when ``module`` is not
      ``ngshare``, e.g. ``ngshare.vngshare``).
    * ``hub_mode=True``: the JupyterHub service environment, pointing at
      ``hub`` (``JUPYTERHUB_API_URL`` and friends), listening on PORT.

    ``--database`` (default: a SQLite file in ``workdir``), ``--storage``
    (default ``workdir/files``) and ``--admins`` (unless None) are always
    passed; ``args`` are appended; ``env`` overrides the environment (None
    removes a variable). ``preexec_fn`` runs in the child before ngshare
    starts (e.g. ``resource.setrlimit``). ``cwd`` is the process's working
    directory if not ``workdir`` (which still receives the logs).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    database_url = database_url or f'sqlite:///{workdir / "ngshare.db"}'
    if storage is None:
        storage_path: Path | str = workdir / 'files'
    elif str(storage).startswith('s3://'):
        storage_path = str(storage)
    else:
        storage_path = Path(storage)
    args = list(args)
    command = [sys.executable, '-m', module]
    child_env: dict[str, str | None] = {}
    if hub_mode:
        assert hub is not None, 'hub_mode needs a hub'
        prefix = HUB_SERVICE_PREFIX
        child_env.update(
            {
                'JUPYTERHUB_API_URL': hub.api_url,
                'JUPYTERHUB_API_TOKEN': HUB_SERVICE_TOKEN,
                'JUPYTERHUB_SERVICE_PREFIX': HUB_SERVICE_PREFIX,
                'JUPYTERHUB_SERVICE_URL': f'http://127.0.0.1:{port}',
                'JUPYTERHUB_BASE_URL': '/',
                'JUPYTERHUB_CLIENT_ID': 'service-ngshare',
                'JUPYTERHUB_OAUTH_CALLBACK_URL': HUB_SERVICE_PREFIX + 'oauth_callback',
                'JUPYTERHUB_SERVICE_NAME': 'ngshare',
            }
        )
    else:
        prefix = VNGSHARE_PREFIX
        if module == 'ngshare':
            command.append('--vngshare')
        command += ['--host', '127.0.0.1', '--port', str(port)]
    command += ['--database', database_url, '--storage', str(storage_path)]
    if admins is not None:
        command += ['--admins', admins]
    command += args
    child_env.update(env or {})
    prefix = _flag_value(args, '--prefix') or child_env.get(
        'JUPYTERHUB_SERVICE_PREFIX', prefix
    )
    if expect_fail:
        try:
            done = subprocess.run(
                command,
                env=ngshare_env(child_env),
                cwd=cwd or workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=START_TIMEOUT + 10,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f'expected start-up to fail, but {command} kept running;'
                f' output:\n{exc.stdout!r}\n{exc.stderr!r}'
            ) from None
        return Finished(
            done.returncode,
            done.stdout.decode('utf-8', 'replace'),
            done.stderr.decode('utf-8', 'replace'),
        )
    return NgshareServer(
        command=command,
        env=ngshare_env(child_env),
        workdir=workdir,
        port=port,
        prefix=prefix,
        hub_mode=hub_mode,
        hub=hub if hub_mode else None,
        debug=not hub_mode or '--debug' in args,
        database_url=database_url,
        storage=storage_path,
        preexec_fn=preexec_fn,
        cwd=cwd,
    )


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def hub(tmp_path):
    """A running Hub stand-in (:class:`HubStub`), stopped at teardown."""
    workdir = tmp_path / 'hubstub'
    workdir.mkdir()
    stub = HubStub(workdir)
    yield stub
    stub.stop()


@pytest.fixture
def start_ngshare(request, tmp_path):
    """Factory starting ngshare servers; all are stopped at teardown.

    ``start_ngshare(*, hub_mode, args=(), env=None, expect_fail=False,
    hub=None, database_url=None, storage=None, admins='root', port=None,
    workdir=None, module='ngshare', preexec_fn=None)``. In Hub mode without ``hub`` the
    ``hub`` fixture is used. Each call gets its own working directory
    under ``tmp_path`` unless ``workdir`` is given (pass the same one to
    restart on the same files). Without ``storage``, the test's
    ``ngshare_storage`` decides: a folder in the working directory, or a
    bucket prefix of the working directory's own (with the AWS variables
    added to ``env``).
    """
    started: list[NgshareServer] = []
    counter = iter(range(1, 1000))

    def start(
        *,
        hub_mode: bool,
        args: Iterable[str] = (),
        env: Mapping[str, str | None] | None = None,
        expect_fail: bool = False,
        hub: HubStub | None = None,
        workdir: str | os.PathLike | None = None,
        **options,
    ):
        if hub_mode and hub is None:
            hub = request.getfixturevalue('hub')
        where = Path(workdir) if workdir else tmp_path / f'ngshare-{next(counter)}'
        if 'storage' not in options:
            chosen = request.getfixturevalue('ngshare_storage').options(where)
            if chosen:
                options['storage'] = chosen['storage']
                env = {**chosen['env'], **(env or {})}
        result = start_server(
            where,
            hub_mode=hub_mode,
            hub=hub,
            args=args,
            env=env,
            expect_fail=expect_fail,
            **options,
        )
        if isinstance(result, NgshareServer):
            started.append(result)
        return result

    yield start
    for server in reversed(started):
        server.stop()


BOTH_DATABASES_MARKER = 'both_databases'
DATABASES = ('sqlite', 'postgresql')


BOTH_STORAGES_MARKER = 'both_storages'
#: The (database, storage) pairs of tests with both marks. SQLite on a bucket
#: is left out: the store's code is the same whatever the database, the
#: database's whatever the store, and a SQLite file needs a volume anyway,
#: so a deployment on a bucket runs on PostgreSQL. Each pair costs the
#: marked modules' whole time; add ('sqlite', 's3') for the full cross.
BOTH_COMBINATIONS = (
    ('sqlite', 'folder'),
    ('postgresql', 'folder'),
    ('postgresql', 's3'),
)


#: The fixtures that tests marked ``both_databases`` run on each database.
DATABASE_FIXTURES = ('ngshare_database_url', 'shared_server')


def pytest_generate_tests(metafunc):
    """Run tests marked ``both_databases`` on SQLite and on PostgreSQL, and
    tests marked ``both_storages`` on a folder and on a bucket.

    Only tests that use ``ngshare_database_url`` (directly or through
    ``vngshare_server`` / ``hub_server``) or ``shared_server``
    (:mod:`_shared_server`) are parametrized by database, and only tests
    that use ``ngshare_storage`` (directly, or through those fixtures) by
    storage; every other test runs once, as before, on a fresh SQLite file
    and a folder. With both marks, the pairs of :data:`BOTH_COMBINATIONS`.
    """
    definition = metafunc.definition
    database = None
    if definition.get_closest_marker(BOTH_DATABASES_MARKER) is not None:
        database = next(
            (name for name in DATABASE_FIXTURES if name in metafunc.fixturenames), None
        )
    storage = (
        definition.get_closest_marker(BOTH_STORAGES_MARKER) is not None
        and 'ngshare_storage' in metafunc.fixturenames
    )
    if database and storage:
        metafunc.parametrize(
            (database, 'ngshare_storage'),
            BOTH_COMBINATIONS,
            indirect=True,
            ids=['-'.join(pair) for pair in BOTH_COMBINATIONS],
        )
    elif database:
        metafunc.parametrize(database, DATABASES, indirect=True, ids=list(DATABASES))
    elif storage:
        metafunc.parametrize(
            'ngshare_storage', STORAGES, indirect=True, ids=list(STORAGES)
        )


@pytest.fixture
def ngshare_database_url(request):
    """Database of the server fixtures; None means a fresh SQLite file.

    Parametrized by :func:`pytest_generate_tests` for tests marked
    ``both_databases``: ``'postgresql'`` gives the URL of a fresh database
    on the session's PostgreSQL server, dropped after the test.
    """
    database = getattr(request, 'param', 'sqlite')
    if database == 'postgresql':
        return request.getfixturevalue('postgres_url')
    assert database == 'sqlite', database
    return None


@pytest.fixture(scope='module')
def ngshare_storage(request) -> Iterator[StorageChoice]:
    """Storage of the server fixtures: a folder, unless parametrized.

    :func:`pytest_generate_tests` parametrizes it for tests marked
    ``both_storages``: ``'s3'`` puts each server on a prefix of its own in
    one bucket per module, made on the session's SeaweedFS when a server
    first needs it and dropped after the module. Module-scoped, so that a
    module's own server fixtures (one server for the module) can follow it.
    """
    kind = getattr(request, 'param', 'folder')
    if kind == 'folder':
        yield StorageChoice('folder')
        return
    assert kind == 's3', kind
    s3_server = request.getfixturevalue('s3_server')
    made: list[str] = []

    def bucket() -> str:
        if not made:
            made.append(s3_server.create_bucket())
        return made[0]

    yield StorageChoice('s3', bucket, s3_server.env)
    for name in made:
        s3_server.delete_bucket(name)


@pytest.fixture
def vngshare_server(
    start_ngshare, ngshare_database_url, ngshare_storage
) -> NgshareServer:
    """Stand-alone ngshare (debug on, prefix /api/, admin ``root``)."""
    return start_ngshare(hub_mode=False, database_url=ngshare_database_url)


@pytest.fixture
def hub_server(
    start_ngshare, hub, ngshare_database_url, ngshare_storage
) -> NgshareServer:
    """ngshare managed by the Hub stand-in (debug off, admin ``root``)."""
    return start_ngshare(hub_mode=True, hub=hub, database_url=ngshare_database_url)
