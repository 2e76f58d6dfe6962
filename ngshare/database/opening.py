"""Opening a deployment's database safely: one path for the service and the
admin tool.

``python -m ngshare`` (:mod:`ngshare.startup`) and ``ngshare-admin``
(:mod:`ngshare.admin`) open a database the same way, in this order, so that
a database is never touched before it is known to be safe to use:

1. the URL is checked (:func:`~ngshare.database.urls.check_database_url`);
2. a SQLite file's folder is created (the service) or the file must exist
   (the admin tool: connecting would create an empty database);
3. the recorded revision is read without changing anything, and a
   revision this ngshare does not know (a newer one upgraded the database)
   is refused;
4. the schema is upgraded, or an outdated one refused with the caller's
   message, or (``ngshare-admin verify``) any known revision accepted. A
   database of ngshare 0.x (:data:`FOLDER_REVISIONS`) is never upgraded
   onto a bucket: see :func:`refuse_folder_revision`.

What the caller says about a failure differs between the two tools, so the
foreseen failures are :class:`DatabaseOpenError` (the line to show) and
SQLAlchemy's own errors (a database that cannot be reached) are left to
the caller, which words them as it always has.
"""

from __future__ import annotations

import os
from typing import Callable

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from ..blobs import is_s3_location
from . import migrate, revisions
from .engine import make_engine
from .revisions import SchemaStatus
from .urls import DatabaseURLError, check_database_url, sqlite_file

__all__ = [
    'CREATE_FOLDER',
    'FOLDER_REVISIONS',
    'DatabaseOpenError',
    'MUST_EXIST',
    'open_database',
    'refuse_folder_revision',
]

# What to do about a SQLite file that is not there yet.
CREATE_FOLDER = 'create folder'
MUST_EXIST = 'must exist'


# The revisions ngshare 0.x wrote (0.5's first schema, 0.6.0's file sizes).
# Their deployments keep files in a folder, under flat UUID names, and the
# revision after them (the normalised schema) is the first that
# ``ngshare-admin storage copy`` reads.
FOLDER_REVISIONS = frozenset({'aa00db20c10a', '1921a169739b'})


class DatabaseOpenError(Exception):
    """The database cannot be used; the message is the line to show."""


def refuse_folder_revision(status: SchemaStatus, storage: str) -> None:
    """Refuse to upgrade a 0.x database onto a bucket.

    A 0.x deployment's files are in its storage folder: upgraded straight
    onto a bucket, the service would start and answer for files the bucket
    does not hold (and 0.6.0's size migration reads the folder). The right
    order is the documented move: upgrade on the folder, then copy its
    files to the bucket with ``ngshare-admin storage copy`` (which checks
    each against its rows), then start on the bucket.
    """
    if status.current not in FOLDER_REVISIONS or not is_s3_location(storage):
        return
    raise DatabaseOpenError(
        f'the database is at revision {status.current}, written by ngshare 0.x,'
        f' whose files are in a storage folder, not in {storage}: upgrade it on'
        ' that folder first (start ngshare, or `ngshare-admin upgrade`, with'
        ' --storage FOLDER), then copy the files with `ngshare-admin storage copy'
        f' --from FOLDER --to {storage}` and start on the bucket (see'
        ' docs/object-storage.md); the database was not changed'
    )


def open_database(
    database_url: str,
    *,
    missing_file: str,
    pool_size: int,
    upgrade_storage: str | None = None,
    outdated: Callable[[SchemaStatus], str] | None = None,
    plain: bool = False,
) -> tuple[Engine, SchemaStatus]:
    """The engine of ``database_url`` and its schema status before opening.

    ``upgrade_storage`` (the storage folder, which some migrations read)
    upgrades the schema; otherwise ``outdated`` gives the refusal of a
    schema that is not the current one (None: any known revision will do).
    A ``plain`` engine has none of the service's tuning (the service's
    would switch a SQLite file to WAL journaling), for reading only.
    Raises :class:`DatabaseOpenError`, or SQLAlchemy's errors; the engine is
    disposed of when anything fails.
    """
    try:
        database_url = check_database_url(database_url)
    except DatabaseURLError as error:
        raise DatabaseOpenError(str(error)) from None
    path = sqlite_file(database_url)
    if path is not None and missing_file == MUST_EXIST and not os.path.isfile(path):
        raise DatabaseOpenError(f'database file {path!r} does not exist')
    if path is not None and missing_file == CREATE_FOLDER:
        _create_folder(os.path.dirname(os.path.abspath(path)))
    try:
        if plain:
            engine = create_engine(database_url, poolclass=NullPool)
        else:
            engine = make_engine(database_url, pool_size=pool_size)
    except ImportError as error:
        raise DatabaseOpenError(f'cannot use database: {error}') from None
    try:
        try:
            status = revisions.inspect_schema(database_url)
            if not status.known:
                raise DatabaseOpenError(status.newer_message())
            if upgrade_storage is not None:
                refuse_folder_revision(status, upgrade_storage)
                # Only a folder holds files a migration may read.
                folder = None if is_s3_location(upgrade_storage) else upgrade_storage
                migrate.upgrade(engine, folder)
            elif outdated is not None and not status.is_current:
                raise DatabaseOpenError(outdated(status))
            with engine.connect() as connection:
                connection.execute(text('SELECT 1'))
        except BaseException:
            engine.dispose()
            raise
    except migrate.MigrationError as error:
        raise DatabaseOpenError(str(error)) from None
    except AlembicCommandError as error:
        # E.g. a newer ngshare upgraded the database since it was inspected.
        raise DatabaseOpenError(f'cannot upgrade the database: {error}') from None
    return engine, status


def _create_folder(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DatabaseOpenError(
            f'cannot create database folder {directory!r}: '
            f'{_first_non_folder(directory)!r} is not a folder'
        ) from None
    except OSError as error:
        raise DatabaseOpenError(
            f'cannot create database folder {directory!r}: {error.strerror}'
        ) from None


def _first_non_folder(path: str) -> str:
    """The first of ``path`` and its parents that exists but is no folder."""
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path
