"""One stand-alone ngshare per test worker, database and storage, reset before
each test.

Starting ``python -m ngshare`` costs about a second (imports, migrations, a
PostgreSQL database made for it), paid by every test that asks for a fresh
process. The API tests ask only for an empty server: there a fresh process
is not the point, so they share this one. It is the real service, built by
the code ``python -m ngshare --vngshare`` runs (:func:`ngshare.cli.config_from`
and :func:`ngshare.startup.start`: the same checks, migrations, handlers and
worker pool), serving on a free loopback port from an event loop of its own
in a thread of the test process. Before each test it is emptied: every row
of every table deleted (identities restarted), every blob removed (from the
folder, or from the bucket prefix), so that a test sees what a fresh server
would show. Start-up, replicas, signals,
limits set by flags and the end-to-end courses keep their own processes
(:mod:`_servers`).

Fixture
-------
``shared_server``
    The server, emptied, as an :class:`~_servers.ApiClient` with
    ``storage`` (a Path, or the ``s3://`` URL), ``blobs`` and
    ``blob_keys()`` (:mod:`_storages`), ``database_url``, ``runtime`` and
    ``log_text()``. Tests and modules marked ``both_databases`` run it on
    SQLite and on PostgreSQL (ids ``sqlite``, ``postgresql``), those marked
    ``both_storages`` on a folder and on a bucket of the session's
    SeaweedFS (ids ``folder``, ``s3``; see
    :func:`_servers.pytest_generate_tests`).

On a bucket, the process's environment holds the store's ``AWS_*``
variables only while the server starts: boto3 reads them when the store
makes its client, and no other test (or child process) sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from _ports import free_port
from _servers import VNGSHARE_PREFIX, ApiClient
from _storages import STORAGES, storage_view

__all__ = ['SharedServer', 'shared_server']

START_TIMEOUT = 30.0
LOG_FORMAT = '[%(levelname)1.1s %(asctime)s %(name)s] %(message)s'
# What the service logs, as ``python -m ngshare`` shows it on stderr.
SERVICE_LOGGERS = ('ngshare', 'tornado')


class SharedServer(ApiClient):
    """ngshare ``--vngshare`` on its own event loop, in a thread of this process."""

    hub_mode = False
    debug = True
    hub = None

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        storage: str | None = None,
        env: Mapping[str, str] | None = None,
    ):
        from ngshare.cli import config_from
        from ngshare.flags import build_parser

        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.storage = storage or workdir / 'files'
        self.blobs = storage_view(self.storage, env)
        self.database_url = database_url
        self.port = free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.prefix = VNGSHARE_PREFIX
        self.api = self.base + self.prefix
        self.log_path = workdir / 'ngshare.log'
        self._log_handler = logging.FileHandler(self.log_path, encoding='utf-8')
        self._log_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        for name in SERVICE_LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self._log_handler)
            logger.setLevel(logging.INFO)
        argv = ['--vngshare', '--host', '127.0.0.1', '--port', str(self.port)]
        argv += ['--database', database_url, '--storage', str(self.storage)]
        argv += ['--admins', 'root']
        self.config = config_from(build_parser().parse_args(argv), {})
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._serve, name=f'ngshare-{self.port}', daemon=True
        )
        with _environment(env or {}):
            self._thread.start()
            if not self._started.wait(START_TIMEOUT):
                raise AssertionError(f'ngshare did not start within {START_TIMEOUT}s')
        if self._failure is not None:
            raise AssertionError(f'ngshare did not start: {self._failure!r}')

    def _serve(self) -> None:
        from ngshare.startup import start

        asyncio.set_event_loop(self._loop)

        async def begin():
            return start(self.config)

        try:
            self.runtime, self._http, _bound = self._loop.run_until_complete(begin())
        except BaseException as failure:  # reported by __init__
            self._failure = failure
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def log_text(self) -> str:
        self._log_handler.flush()
        return self.log_path.read_text('utf-8', errors='replace')

    def describe(self) -> str:
        return f'in-process ngshare on {self.base}\n--- log ---\n{self.log_text()}'

    def blob_keys(self) -> list[str]:
        """What the server stored (folder or bucket), see :mod:`_storages`."""
        return self.blobs.keys()

    def empty(self) -> None:
        """Leave no row and no blob: what a server started now would hold.

        The login cookie secret is kept (the running app signs with it).
        """
        from ngshare.database.models import Base

        tables = list(reversed(Base.metadata.sorted_tables))
        engine = self.runtime.engine
        with engine.begin() as connection:
            if engine.dialect.name == 'postgresql':
                names = ', '.join(f'"{table.name}"' for table in tables)
                connection.exec_driver_sql(f'TRUNCATE {names} RESTART IDENTITY CASCADE')
            else:
                for table in tables:
                    connection.execute(table.delete())
                sequences = connection.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
                ).first()
                if sequences:
                    connection.exec_driver_sql('DELETE FROM sqlite_sequence')
        self.blobs.clear()
        self._log_handler.flush()
        self.log_path.write_text('')

    def stop(self) -> None:
        async def finish():
            self._http.stop()

        if self._failure is None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(finish(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self.runtime.shutdown()
            self.runtime.engine.dispose()
        for name in SERVICE_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_handler)
        self._log_handler.close()


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` in ``os.environ`` for the duration, then as it was."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _started(workdir: Path, url: str, storage: str, request) -> Iterator[SharedServer]:
    """A shared server on ``url`` and ``storage`` (a kind of :data:`STORAGES`)."""
    location, env = None, None
    if storage == 's3':
        s3_server = request.getfixturevalue('s3_server')
        location, env = f's3://{s3_server.create_bucket()}/shared', s3_server.env
    server = SharedServer(workdir, url, location, env)
    try:
        yield server
    finally:
        server.stop()


def _session_server(database: str, storage: str):
    """The session fixture of one (database, storage) shared server."""

    @pytest.fixture(scope='session', name=f'_shared_{database}_{storage}_server')
    def fixture(request, tmp_path_factory) -> Iterator[SharedServer]:
        workdir = tmp_path_factory.mktemp(f'shared-ngshare-{database}-{storage}')
        if database == 'postgresql':
            # Asked for first, so that it stops after the server does.
            postgres = request.getfixturevalue('postgres_server')
            url = postgres.url(postgres.create_database())
        else:
            url = f'sqlite:///{workdir / "ngshare.db"}'
        yield from _started(workdir, url, storage, request)

    return fixture


_shared_sqlite_folder_server = _session_server('sqlite', 'folder')
_shared_sqlite_s3_server = _session_server('sqlite', 's3')
_shared_postgresql_folder_server = _session_server('postgresql', 'folder')
_shared_postgresql_s3_server = _session_server('postgresql', 's3')


@pytest.fixture
def shared_server(request, ngshare_storage) -> SharedServer:
    """The worker's shared stand-alone ngshare on this test's database and
    storage, emptied.

    Each (database, storage) server starts the first time a test asks for it.
    """
    database = getattr(request, 'param', 'sqlite')
    assert database in ('sqlite', 'postgresql'), database
    assert ngshare_storage.kind in STORAGES, ngshare_storage
    server = request.getfixturevalue(
        f'_shared_{database}_{ngshare_storage.kind}_server'
    )
    server.empty()
    return server
