"""A throw-away PostgreSQL 15 server for the tests, and fresh databases on it.

The server is real (the service's PostgreSQL support is only as good as the
tests run against it): it runs from a temporary data directory, listens on
127.0.0.1 only, on a free port, and accepts only password (SCRAM)
authentication, as a production server would. ``initdb`` and ``postgres``
refuse to run as root, so when the tests run as root they run as the
``postgres`` system user. The server is stopped by the PID it wrote, so
teardown touches nothing but the process these fixtures started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from _components import unavailable
from _ports import free_port

PG_BIN = os.environ.get('NGSHARE_TEST_PG_BIN', '/usr/lib/postgresql/15/bin')
PG_SYSTEM_USER = 'postgres'
SUPERUSER = 'ngshare_test'
# A password the URL has to encode: '%' breaks ConfigParser interpolation if
# a URL ever reaches it, '@' and ':' break naive URL parsing.
SPECIAL_PASSWORD_CHARS = '%@:/'

__all__ = [
    'PostgresServer',
    'postgres_server',
    'postgres_special_password_url',
    'postgres_url',
]


@dataclasses.dataclass
class PostgresServer:
    """A running server; ``password`` belongs to the superuser ``user``."""

    host: str
    port: int
    user: str
    password: str
    data_dir: str
    pid: int

    def url(
        self,
        database: str,
        user: str | None = None,
        password: str | None = None,
        driver: str = 'postgresql+psycopg',
    ) -> str:
        """A SQLAlchemy URL, with user and password percent-encoded."""
        user = self.user if user is None else user
        password = self.password if password is None else password
        quote = urllib.parse.quote
        return (
            f'{driver}://{quote(user, safe="")}:{quote(password, safe="")}'
            f'@{self.host}:{self.port}/{quote(database, safe="")}'
        )

    def execute(self, *statements) -> None:
        """Run statements as superuser outside a transaction (CREATE DATABASE
        cannot run inside one)."""
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname='postgres',
            autocommit=True,
        ) as connection:
            for statement in statements:
                connection.execute(statement)

    def create_database(self, owner: str | None = None) -> str:
        from psycopg import sql

        name = f'test_{secrets.token_hex(6)}'
        statement = sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name))
        if owner is not None:
            statement += sql.SQL(' OWNER {}').format(sql.Identifier(owner))
        self.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        # FORCE: a test that failed may have left connections open.
        self.execute(
            sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(
                sql.Identifier(name)
            )
        )

    def create_role(self, name: str, password: str) -> None:
        """A login role with ``password`` (passed as a literal, since a
        utility statement cannot take parameters)."""
        from psycopg import sql

        self.execute(
            sql.SQL('CREATE ROLE {} LOGIN PASSWORD {}').format(
                sql.Identifier(name), sql.Literal(password)
            )
        )

    def drop_role(self, name: str) -> None:
        from psycopg import sql

        self.execute(sql.SQL('DROP ROLE IF EXISTS {}').format(sql.Identifier(name)))


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ['runuser', '-u', PG_SYSTEM_USER, '--', *argv]


def _run(argv: list[str], cwd: str) -> subprocess.CompletedProcess:
    # cwd: the server user must be able to enter it (the tests' own working
    # directory may be private to root).
    return subprocess.run(
        _as_server_user(argv), check=True, capture_output=True, text=True, cwd=cwd
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(pid: int, timeout: float = 30) -> None:
    """Stop the postmaster ``pid``: fast shutdown, then kill if it hangs."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)


def _start_server(base: str) -> PostgresServer:
    data_dir = os.path.join(base, 'data')
    password = secrets.token_urlsafe(18)
    pwfile = os.path.join(base, 'pwfile')
    with open(pwfile, 'w') as f:
        f.write(password + '\n')
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_SYSTEM_USER)
        for path in (base, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(base, 0o700)
    _run(
        [
            os.path.join(PG_BIN, 'initdb'),
            '--pgdata',
            data_dir,
            '--username',
            SUPERUSER,
            '--pwfile',
            pwfile,
            '--auth',
            'scram-sha-256',
            '--encoding',
            'UTF8',
            '--no-locale',
            '--no-sync',
        ],
        cwd=base,
    )
    os.unlink(pwfile)
    # Password logins over TCP from loopback, and nothing else.
    with open(os.path.join(data_dir, 'pg_hba.conf'), 'w') as f:
        f.write('host all all 127.0.0.1/32 scram-sha-256\n')
    last_error = ''
    for _attempt in range(5):
        port = free_port()
        try:
            _run(
                [
                    os.path.join(PG_BIN, 'pg_ctl'),
                    'start',
                    '--wait',
                    '--timeout',
                    '60',
                    '--pgdata',
                    data_dir,
                    '--log',
                    os.path.join(base, 'server.log'),
                    '--options',
                    f'-c listen_addresses=127.0.0.1 -c port={port}'
                    f" -c unix_socket_directories='{base}' -c fsync=off"
                    ' -c max_connections=200',
                ],
                cwd=base,
            )
        except subprocess.CalledProcessError as error:
            # Most likely someone took the port between probe and start.
            last_error = error.stderr
            continue
        with open(os.path.join(data_dir, 'postmaster.pid')) as f:
            pid = int(f.readline())
        return PostgresServer('127.0.0.1', port, SUPERUSER, password, data_dir, pid)
    with contextlib.suppress(OSError), open(os.path.join(base, 'server.log')) as f:
        last_error += f.read()
    raise RuntimeError(f'PostgreSQL did not start: {last_error}')


@pytest.fixture(scope='session')
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for the whole test session."""
    missing = [
        name
        for name in ('initdb', 'pg_ctl', 'postgres')
        if not os.access(os.path.join(PG_BIN, name), os.X_OK)
    ]
    if missing:
        unavailable(
            f'PostgreSQL 15 binaries {missing} not found in {PG_BIN} (Debian '
            'package postgresql; testing/run-tests installs it as root)'
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            unavailable(f'running as root and there is no {PG_SYSTEM_USER!r} user')
        if shutil.which('runuser') is None:
            unavailable('running as root and runuser is not available')
    pytest.importorskip('psycopg')
    base = tempfile.mkdtemp(prefix='ngshare-pg-')
    try:
        server = _start_server(base)
        try:
            yield server
        finally:
            _stop(server.pid)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database (superuser), dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_special_password_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database owned by a non-superuser role whose password
    contains ``%``, ``@``, ``:`` and ``/`` (percent-encoded in the URL)."""
    role = f'role_{secrets.token_hex(4)}'
    password = f'p{SPECIAL_PASSWORD_CHARS}{secrets.token_hex(4)}%41'
    postgres_server.create_role(role, password)
    try:
        name = postgres_server.create_database(owner=role)
        try:
            yield postgres_server.url(name, user=role, password=password)
        finally:
            postgres_server.drop_database(name)
    finally:
        postgres_server.drop_role(role)
