"""One stand-alone ngshare per test worker and database, reset before each test.

Starting ``python -m ngshare`` costs about a second (imports, migrations, a
PostgreSQL database made for it), paid by every test that asks for a fresh
process. The API tests ask only for an empty server: there a fresh process
is not the point, so they share this one. It is the real service, built by
the code ``python -m ngshare --vngshare`` runs (:func:`ngshare.cli.config_from`
and :func:`ngshare.startup.start`: the same checks, migrations, handlers and
worker pool), serving on a free loopback port from an event loop of its own
in a thread of the test process. Before each test it is emptied: every row
of every table deleted (identities restarted), every blob removed, so that
a test sees what a fresh server would show. Start-up, replicas, signals,
limits set by flags and the end-to-end courses keep their own processes
(:mod:`_servers`).

Fixture
-------
``shared_server``
    The server, emptied, as an :class:`~_servers.ApiClient` with
    ``storage`` (Path), ``database_url``, ``runtime`` and ``log_text()``.
    Tests and modules marked ``both_databases`` run it on SQLite and on
    PostgreSQL (ids ``sqlite``, ``postgresql``; see
    :func:`_servers.pytest_generate_tests`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ports import free_port
from _servers import VNGSHARE_PREFIX, ApiClient

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

    def __init__(self, workdir: Path, database_url: str):
        from ngshare.cli import config_from
        from ngshare.flags import build_parser

        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.storage = workdir / 'files'
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

    def empty(self) -> None:
        """Leave no row and no blob: what a server started now would hold.

        The login cookie secret is kept (the running app signs with it).
        """
        from ngshare.config import COOKIE_SECRET_NAME
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
        for child in self.storage.iterdir():
            if child.name == COOKIE_SECRET_NAME:
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        self._log_handler.flush()
        self.log_path.write_text('')

    def stop(self) -> None:
        async def finish():
            self._http.stop()

        if self._failure is None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(finish(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self.runtime.pool.shutdown(wait=True, cancel_futures=True)
            self.runtime.engine.dispose()
        for name in SERVICE_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_handler)
        self._log_handler.close()


def _started(workdir: Path, url: str) -> Iterator[SharedServer]:
    server = SharedServer(workdir, url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='session')
def _shared_sqlite_server(tmp_path_factory) -> Iterator[SharedServer]:
    workdir = tmp_path_factory.mktemp('shared-ngshare-sqlite')
    yield from _started(workdir, f'sqlite:///{workdir / "ngshare.db"}')


@pytest.fixture(scope='session')
def _shared_postgresql_server(
    tmp_path_factory, postgres_server
) -> Iterator[SharedServer]:
    # Depends on postgres_server, so that it stops before the database does.
    workdir = tmp_path_factory.mktemp('shared-ngshare-postgresql')
    yield from _started(workdir, postgres_server.url(postgres_server.create_database()))


@pytest.fixture
def shared_server(request) -> SharedServer:
    """The worker's shared stand-alone ngshare on this test's database, emptied.

    Each database's server starts the first time a test asks for it.
    """
    database = getattr(request, 'param', 'sqlite')
    assert database in ('sqlite', 'postgresql'), database
    server = request.getfixturevalue(f'_shared_{database}_server')
    server.empty()
    return server
