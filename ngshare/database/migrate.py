"""Bring a database to the schema this version of ngshare expects.

The service calls :func:`upgrade` at start-up (unless ``--no-upgrade-db``, in
which case it refuses to start on any revision but the current one; see
:mod:`ngshare.database.revisions`). The Alembic
scripts ship inside the package and are located from this file, so no
``alembic.ini`` is needed at run time, and the database URL never passes
through Alembic's ConfigParser (where a ``%`` of a URL-encoded password would
be taken for interpolation): the open connection is handed to ``env.py``
through ``Config.attributes``.

Two hazards shape how the migration connection is prepared:

* SQLite batch migrations drop and re-create tables. With foreign keys
  enforced, dropping a parent table deletes the rows of every child table
  that cascades from it. The pragma that turns enforcement off is ignored
  inside a transaction, so it is issued on the raw connection before the
  transaction begins, and ``PRAGMA foreign_key_check`` afterwards makes sure
  the migration did not leave dangling references behind.
* Several replicas on one PostgreSQL database start at the same moment. A
  transaction-level advisory lock makes them migrate one after the other;
  the later ones find the database at head and do nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from .engine import WRITE_OPTION

log = logging.getLogger('ngshare.migrate')

SCRIPT_LOCATION = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'alembic'
)

# Key of the PostgreSQL advisory lock that serialises migrations: the bytes
# of "ngshare" read as a big-endian integer, so that it is recognisable in
# pg_locks and unlikely to collide with another application's key.
ADVISORY_LOCK_KEY = int.from_bytes(b'ngshare', 'big')

# Tables that only an ngshare database has (of any version). Finding one of
# them without an ``alembic_version`` row means we do not know what schema
# the database is at, and guessing could destroy data.
NGSHARE_TABLES = frozenset(
    {
        'users',
        'courses',
        'assignments',
        'submissions',
        'files',
        'roster',
        'instructor_assoc_table',
        'student_assoc_table',
        'assignment_files_assoc_table',
        'submission_files_assoc_table',
        'feedback_files_assoc_table',
    }
)


# Alembic's ``op`` and ``context`` are process-wide proxies: two threads of
# one process must never run migrations at the same time.
_alembic_lock = threading.Lock()


class MigrationError(RuntimeError):
    """The database cannot be migrated safely; the message says why."""


def alembic_config(
    connection: Connection | None = None, storage_path: str | None = None
) -> Config:
    """An Alembic configuration for the scripts shipped in the package.

    ``connection`` and ``storage_path`` travel in ``attributes`` so that no
    URL or path is ever parsed by ConfigParser.
    """
    config = Config()
    # ConfigParser interpolates '%', which a site-packages path may contain.
    config.set_main_option('script_location', SCRIPT_LOCATION.replace('%', '%%'))
    config.attributes['connection'] = connection
    config.attributes['storage_path'] = storage_path
    return config


def head_revision() -> str:
    """The revision this version of ngshare needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships scripts
        raise MigrationError('ngshare ships no database migrations')
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the revision this version needs."""
    return current_revision(engine) == head_revision()


def upgrade(
    engine: Engine, storage_path: str | None, *, revision: str = 'head'
) -> None:
    """Upgrade the database to ``revision`` (normally head), atomically.

    ``storage_path`` is the folder holding the stored files; some revisions
    read it (for file sizes). With None those values stay unknown (NULL).
    """
    with _alembic_lock, migration_connection(engine) as connection:
        _refuse_unversioned(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(alembic_config(connection, storage_path), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        log.info('Database migrated from %s to %s', before or 'empty', after)


def downgrade(engine: Engine, revision: str, storage_path: str | None = None) -> None:
    """Downgrade the database to ``revision``, atomically (for going back to
    an older ngshare; the service itself never downgrades)."""
    with _alembic_lock, migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection, storage_path), revision)


@contextlib.contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, prepared for running migrations.

    Everything done inside commits together or not at all. On SQLite foreign
    keys are not enforced inside, and are checked before the commit; on
    PostgreSQL the migration advisory lock is held until the end.
    """
    backend = engine.dialect.name
    with engine.connect() as connection:
        # On SQLite, BEGIN IMMEDIATE (see engine.py): a second process
        # migrating the same file waits for the first instead of failing.
        connection.execution_options(**{WRITE_OPTION: True})
        raw = None
        if backend == 'sqlite':
            # The raw driver connection, because any statement through
            # SQLAlchemy would first begin the transaction in which the
            # pragma is silently ignored.
            raw = connection.connection.driver_connection
            enforced = raw.execute('PRAGMA foreign_keys').fetchone()[0]
            raw.execute('PRAGMA foreign_keys=OFF')
        try:
            with connection.begin():
                if backend == 'postgresql':
                    connection.execute(
                        text('SELECT pg_advisory_xact_lock(:key)'),
                        {'key': ADVISORY_LOCK_KEY},
                    )
                yield connection
                if backend == 'sqlite':
                    _check_foreign_keys(connection)
        finally:
            if raw is not None:
                raw.execute(f'PRAGMA foreign_keys={"ON" if enforced else "OFF"}')


def _check_foreign_keys(connection: Connection) -> None:
    """Fail (and so roll back) if the migration left dangling references."""
    problems = connection.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if problems:
        sample = ', '.join(
            f'{table} row {rowid} -> {parent}'
            for table, rowid, parent, _ in problems[:5]
        )
        raise MigrationError(
            f'Migration rolled back: it would leave {len(problems)} rows with '
            f'dangling foreign keys ({sample})'
        )


def _refuse_unversioned(connection: Connection) -> None:
    """Refuse a database that has ngshare tables but no recorded revision."""
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    found = NGSHARE_TABLES.intersection(inspect(connection).get_table_names())
    if found:
        raise MigrationError(
            'The database has ngshare tables ('
            + ', '.join(sorted(found))
            + ') but no alembic_version row, so its schema version is unknown;'
            ' restore it from a backup or stamp its revision with alembic'
        )


__all__ = [
    'MigrationError',
    'current_revision',
    'downgrade',
    'head_revision',
    'is_current',
    'upgrade',
]
