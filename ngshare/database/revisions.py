"""Where a database's schema stands relative to this version of ngshare.

Start-up and ``ngshare-admin`` look before they touch: a database at a
revision this ngshare does not know was written by a newer ngshare, and
neither upgrading it nor using it can be safe. :func:`inspect_schema` reads
the recorded revision through a plain connection without the engine's
tuning, so that refusing a database leaves it exactly as it was (the
service's engine would switch a SQLite file to WAL journaling on connect).
"""

from __future__ import annotations

import dataclasses
import functools

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from ..version import __version__
from . import migrate


@dataclasses.dataclass(frozen=True)
class SchemaStatus:
    """The revision a database is at (None: never migrated) and ours."""

    current: str | None
    head: str
    known: bool

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def describe_current(self) -> str:
        return self.current if self.current is not None else 'none (empty database)'

    def newer_message(self) -> str:
        """Why a database of a newer ngshare is refused, and what to do."""
        return (
            f'the database is at revision {self.current}, which this ngshare '
            f'({__version__}, schema {self.head}) does not know: a newer ngshare '
            'has upgraded it. Run that newer version, or restore the backup taken '
            'before the upgrade; the database was not changed'
        )

    def outdated_message(self) -> str:
        """Why --no-upgrade-db refuses an old database, and what to do."""
        return (
            f'the database is at revision {self.describe_current()}, this ngshare '
            f'needs {self.head}: start without --no-upgrade-db, or run '
            '`ngshare-admin upgrade` with the same --database and --storage after '
            'a backup (see docs/upgrading.md)'
        )


@functools.lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision of the migration chain this ngshare ships."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return frozenset(script.revision for script in script.walk_revisions())


def status_of(current: str | None) -> SchemaStatus:
    return SchemaStatus(
        current=current,
        head=migrate.head_revision(),
        known=current is None or current in known_revisions(),
    )


def inspect_schema(database_url: str) -> SchemaStatus:
    """The schema status of the database at ``database_url``, read without
    changing anything. Raises :class:`~ngshare.database.migrate.MigrationError`
    if ``alembic_version`` records more than one revision (our chain is
    linear), and SQLAlchemy errors if the database cannot be reached."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise migrate.MigrationError(
            'the database records several schema revisions ('
            + ', '.join(sorted(heads))
            + ') in alembic_version; this ngshare expects one'
        )
    return status_of(heads[0] if heads else None)


__all__ = ['SchemaStatus', 'inspect_schema', 'known_revisions', 'status_of']
