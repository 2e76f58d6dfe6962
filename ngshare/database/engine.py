"""Engines and sessions, tuned per database.

SQLite runs in WAL mode with foreign keys enforced and a busy timeout, and
write transactions start with ``BEGIN IMMEDIATE``: a writer takes the write
lock before it reads, so two writers queue behind each other instead of one
failing with "database is locked" when it upgrades its read snapshot. A
reader's deferred ``BEGIN`` reads one WAL snapshot throughout.

On PostgreSQL the isolation levels are set here, whatever the server's
default (``default_transaction_isolation``):

* writers run at READ COMMITTED and serialize on row locks that the
  operations take on the parent rows they read before writing
  (:mod:`ngshare.operations.lookup`): after waiting for a lock, each
  statement sees what the winner committed. SERIALIZABLE was measured and
  refused: with 60 concurrent submissions of distinct students, SSI's
  predicate locks on the small btree pages aborted 98 attempts and 23
  requests ran out of retries. The blob clean-up also needs READ COMMITTED:
  it checks for references *after* taking its advisory lock, which an
  older snapshot would not see.
* readers run REPEATABLE READ, READ ONLY: every statement of a request sees
  one snapshot (a fetch during ``release --force`` never finds the old
  assignment with the new files), and such transactions never fail with a
  serialization error.
* recorders, the downloads that are actions of the history (fetch, collect,
  fetch feedback), read as readers do, in one REPEATABLE READ snapshot, and
  write only their history entry: an INSERT, which no concurrent
  transaction can make fail with a serialization error. On SQLite they are
  writers (``BEGIN IMMEDIATE``): a read snapshot could not be upgraded to
  write once another writer had committed.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A replica that dies, or freezes, or whose network goes, must not hold its
# row and advisory locks for long: TCP keepalives let the server notice a
# vanished client within about a minute (instead of two hours), and a
# session left idle inside a transaction is ended after five minutes (no
# operation waits that long between two statements). Settings the database
# URL gives itself win (libpq parameter names).
POSTGRESQL_CONNECT_ARGS = {
    'keepalives': 1,
    'keepalives_idle': 30,
    'keepalives_interval': 10,
    'keepalives_count': 3,
    'options': '-c idle_in_transaction_session_timeout=300000',
}
# Execution option that marks a connection as one that will write.
WRITE_OPTION = 'ngshare_write'


def make_engine(database_url: str, *, pool_size: int = 8) -> Engine:
    """Create the engine for ``database_url`` with the settings it needs."""
    url = make_url(database_url)
    if url.get_backend_name() == 'sqlite':
        engine = create_engine(
            url,
            connect_args={
                'check_same_thread': False,
                'timeout': SQLITE_BUSY_TIMEOUT_MS / 1000,
            },
        )
        _tune_sqlite(engine)
        return engine
    if url.get_backend_name() == 'postgresql':
        connect_args = {
            name: value
            for name, value in POSTGRESQL_CONNECT_ARGS.items()
            if name not in url.query
        }
    else:
        connect_args = {}
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    if url.get_backend_name() == 'postgresql':
        _tune_postgresql(engine)
    return engine


def _tune_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection, _record):
        # PostgreSQL 14 and later: a backend waiting on a lock (or running a
        # long statement) also checks every 10 s that its client is still
        # there, so a killed replica's session ends and frees its locks.
        if dbapi_connection.info.server_version < 140000:
            return
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute('SET client_connection_check_interval = 10000')
        finally:
            dbapi_connection.autocommit = autocommit


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute(f'PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}')
        if engine.url.database not in (None, '', ':memory:'):
            cursor.execute('PRAGMA journal_mode=WAL')
            cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(connection):
        # Sent on the driver's connection: every transaction, reads too,
        # begins here, and through ``exec_driver_sql`` that costs a whole
        # statement execution of SQLAlchemy's. A refusal (the busy timeout
        # spent) is wrapped as that would have wrapped it, so the callers'
        # handling (503, the CLI's messages) is unchanged.
        if connection.get_execution_options().get(WRITE_OPTION):
            statement = 'BEGIN IMMEDIATE'
        else:
            statement = 'BEGIN'
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(statement)
        except sqlite3.Error as error:
            raise DBAPIError.instance(statement, (), error, sqlite3.Error) from error
        finally:
            cursor.close()


def make_session_factories(engine: Engine) -> tuple[sessionmaker, sessionmaker]:
    """Return (reader, writer) session factories bound to ``engine``."""
    reader_options: dict = {}
    writer_options: dict = {WRITE_OPTION: True}
    if engine.dialect.name == 'postgresql':
        reader_options.update(
            isolation_level='REPEATABLE READ', postgresql_readonly=True
        )
        writer_options.update(isolation_level='READ COMMITTED')
    reader = sessionmaker(
        engine.execution_options(**reader_options), expire_on_commit=False
    )
    writer = sessionmaker(
        engine.execution_options(**writer_options), expire_on_commit=False
    )
    return reader, writer


def make_recorder_factory(engine: Engine) -> sessionmaker:
    """The session factory of the downloads that write their history entry."""
    options: dict = {WRITE_OPTION: True}
    if engine.dialect.name == 'postgresql':
        options.update(isolation_level='REPEATABLE READ')
    return sessionmaker(engine.execution_options(**options), expire_on_commit=False)


__all__ = [
    'Session',
    'make_engine',
    'make_recorder_factory',
    'make_session_factories',
]
