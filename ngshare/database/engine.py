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
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
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
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


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
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql('BEGIN IMMEDIATE')
        else:
            connection.exec_driver_sql('BEGIN')


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


__all__ = ['Session', 'make_engine', 'make_session_factories']
