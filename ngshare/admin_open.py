"""Opening a deployment for ``ngshare-admin``: its database and its store.

Every subcommand starts here, so that they refuse alike, with one line,
before changing anything: a database that is missing (never created by
maintenance), of a newer ngshare, or not upgraded; a storage folder that is
missing or not a folder; a bucket that cannot be reached, listed or (for a
command that writes) written.
"""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import Engine

from .blobs import is_s3_location, open_store
from .blobs.store import BlobStore, StorageError
from .database import opening
from .database.revisions import SchemaStatus

EXIT_PROBLEMS = 1
EXIT_ERROR = 2


class AdminError(Exception):
    """The command cannot run; reported as one line."""


# --------------------------------------------------------------------------
# opening the deployment


def open_database(
    url: str,
    *,
    need_current: bool,
    read_only: bool = False,
    upgrade_storage: str | None = None,
) -> tuple[Engine, SchemaStatus]:
    """The engine of ``url`` and its schema status, opened as the service
    opens it (:mod:`ngshare.database.opening`), except that a missing
    SQLite file is refused rather than created. ``need_current`` refuses an
    outdated schema; a ``read_only`` engine is a plain one: the service's
    engine would, for one, switch a SQLite file to WAL journaling."""
    try:
        return opening.open_database(
            url,
            missing_file=opening.MUST_EXIST,
            pool_size=1,
            plain=read_only,
            upgrade_storage=upgrade_storage,
            outdated=_upgrade_first if need_current else None,
        )
    except opening.DatabaseOpenError as error:
        raise AdminError(str(error)) from None


def _upgrade_first(status: SchemaStatus) -> str:
    return (
        f'the database is at revision {status.describe_current()}, this '
        f'ngshare needs {status.head}: upgrade it first (start ngshare, or '
        'run `ngshare-admin upgrade`)'
    )


def open_storage(
    args: argparse.Namespace, location: str | None = None, *, writes: bool = False
) -> BlobStore:
    """The store at ``location`` (default ``--storage``), checked before
    anything else is done: a folder must exist (maintenance never creates
    one); a bucket must be reachable and listable, and writable when the
    command ``writes`` (a read-only identity may verify)."""
    path = args.storage if location is None else location
    if not is_s3_location(path):
        if os.path.exists(path) and not os.path.isdir(path):
            raise AdminError(f'storage folder {path!r} is not a folder')
        if not os.path.isdir(path):
            raise AdminError(f'storage folder {path!r} does not exist')
    try:
        store = open_store(
            path,
            endpoint_url=getattr(args, 's3_endpoint_url', None),
            path_style=getattr(args, 's3_path_style', False),
        )
        if writes:
            store.check_usable()
        else:
            store.check_readable()
    except (StorageError, ValueError) as error:
        raise AdminError(str(error)) from None
    return store


def note(message: str) -> None:
    """A summary line, on standard error."""
    print(f'ngshare-admin: {message}', file=sys.stderr)


__all__ = [
    'EXIT_ERROR',
    'EXIT_PROBLEMS',
    'AdminError',
    'note',
    'open_database',
    'open_storage',
]
