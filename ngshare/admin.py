"""``ngshare-admin``: maintenance of an ngshare database and storage folder.

Subcommands (each takes the service's ``--database`` and ``--storage`` flags,
with the same defaults):

``gc``
    Report the orphaned files of the storage folder: files no ``files`` row
    refers to, older than ``--grace-seconds`` (default one hour). With
    ``--delete`` remove them. Files the service released within that time
    are left to the service (reported apart). Safe while the service runs
    (see :mod:`ngshare.gc`).
``verify``
    Check that every ``files`` row's blob exists and matches its checksum
    (and size, and for content-addressed blobs its name).
``upgrade``
    Upgrade the database to the schema of this version, as the service does
    at start-up; for deployments that start the service with
    ``--no-upgrade-db``.
``deleted list`` / ``deleted restore ID`` / ``deleted purge``
    The deleted courses and assignments the service keeps for
    ``--deleted-retention-days``: list them, put one back (``--as NAME`` under
    another name; ``--submissions-only`` to add a deleted assignment's
    submissions to the live assignment of the same name, the repair after
    ``nbgrader release_assignment --force``), or purge the expired ones now
    (their files are released: the service removes them after its
    ``--released-blob-grace``).

Output meant for scripts (the orphaned or removed files, the bad blobs) goes
to standard output, one per line; summaries go to standard error. Exit
status: 0 success; 1 ``verify`` found bad blobs or ``gc --delete`` could not
remove a file; 2 the command could not run (one ``ngshare-admin: error:``
line; argparse's usage errors too).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from . import config as defaults
from . import gc
from .config import Config
from .database import migrate, revisions
from .database.engine import make_engine, make_session_factories
from .database.urls import DatabaseURLError, check_database_url
from .housekeeping import purge_deleted
from .operations import deleted
from .operations.context import Context
from .permissions import Actor
from .runtime import Runtime
from .storage import BlobStore
from .version import __version__

EXIT_PROBLEMS = 1
EXIT_ERROR = 2


class AdminError(Exception):
    """The command cannot run; reported as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ngshare-admin',
        description='Maintenance of an ngshare database and storage folder.',
    )
    parser.add_argument('--version', action='version', version=__version__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--database',
        metavar='PATH_TO_DATABASE',
        default=defaults.DEFAULT_DATABASE,
        help=f'SQLAlchemy database URL (default: {defaults.DEFAULT_DATABASE})',
    )
    common.add_argument(
        '--storage',
        metavar='PATH_TO_STORAGE',
        default=defaults.DEFAULT_STORAGE,
        help=f'folder of the stored files (default: {defaults.DEFAULT_STORAGE})',
    )
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    collect = commands.add_parser(
        'gc',
        parents=[common],
        help='report (with --delete: remove) files no row refers to',
        description='List the files of the storage folder that no files row '
        'refers to and that are older than the grace period; with --delete '
        'remove them. Without --delete nothing is changed.',
    )
    collect.add_argument(
        '--delete',
        action='store_true',
        help='remove the orphaned files (default: only report them)',
    )
    collect.add_argument(
        '--grace-seconds',
        metavar='SECONDS',
        type=_non_negative,
        default=gc.DEFAULT_GRACE_SECONDS,
        help='leave alone files modified less than this long ago, which a '
        f'request in flight may still refer to (default: {gc.DEFAULT_GRACE_SECONDS})',
    )
    commands.add_parser(
        'verify',
        parents=[common],
        help='check that every stored file exists and matches its checksum',
        description='Read every blob a files row refers to and check it against '
        'the row; list the bad ones and exit 1 if there are any.',
    )
    commands.add_parser(
        'upgrade',
        parents=[common],
        help='upgrade the database schema (what ngshare does at start-up)',
        description='Upgrade the database to the schema of this ngshare, as the '
        'service does at start-up unless --no-upgrade-db is given. Back up the '
        'database first.',
    )
    deleted = commands.add_parser(
        'deleted',
        help='list, restore or purge deleted courses and assignments',
        description='Deleted courses and assignments are kept, with their '
        'submissions and feedback, for the retention period of the service '
        '(--deleted-retention-days, default 30).',
    )
    actions = deleted.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    actions.add_parser('list', parents=[common], help='list the kept items')
    restore = actions.add_parser(
        'restore', parents=[common], help='put a kept item back'
    )
    restore.add_argument('item', metavar='ID', type=int, help='as shown by list')
    restore.add_argument(
        '--as', dest='as_name', metavar='NAME', help='restore under another name'
    )
    restore.add_argument(
        '--submissions-only',
        action='store_true',
        help="add a deleted assignment's submissions (and feedback) to the live "
        'assignment of the same name (or --as NAME)',
    )
    purge = actions.add_parser(
        'purge', parents=[common], help='forget expired items and free their files'
    )
    purge.add_argument(
        '--older-than-days',
        metavar='DAYS',
        type=_non_negative,
        default=30,
        help='purge items deleted longer ago than this (default: 30)',
    )
    return parser


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f'not a number of seconds: {text!r}')
    return value


# --------------------------------------------------------------------------
# opening the deployment


def open_database(
    url: str, *, need_current: bool, read_only: bool = False
) -> tuple[Engine, str | None]:
    """The engine of ``url`` and its revision, after checking that this
    ngshare knows the schema (and, with ``need_current``, that it is the
    current one). Nothing is changed before the checks pass. A ``read_only``
    engine is a plain one: the service's engine would, for one, switch a
    SQLite file to WAL journaling."""
    try:
        url = check_database_url(url)
    except DatabaseURLError as error:
        raise AdminError(str(error)) from None
    parsed = make_url(url)
    if (
        parsed.get_backend_name() == 'sqlite'
        and parsed.database not in (None, '', ':memory:')
        and not os.path.isfile(parsed.database)
    ):
        # Connecting would create an empty database file there.
        raise AdminError(f'database file {parsed.database!r} does not exist')
    try:
        status = revisions.inspect_schema(url)
    except migrate.MigrationError as error:
        raise AdminError(str(error)) from None
    except ImportError as error:
        raise AdminError(f'cannot use database: {error}') from None
    if not status.known:
        raise AdminError(status.newer_message())
    if need_current and not status.is_current:
        raise AdminError(
            f'the database is at revision {status.describe_current()}, this '
            f'ngshare needs {status.head}: upgrade it first (start ngshare, or '
            'run `ngshare-admin upgrade`)'
        )
    if read_only:
        return create_engine(url, poolclass=NullPool), status.current
    return make_engine(url, pool_size=1), status.current


def open_storage(path: str) -> BlobStore:
    if os.path.exists(path) and not os.path.isdir(path):
        raise AdminError(f'storage folder {path!r} is not a folder')
    if not os.path.isdir(path):
        raise AdminError(f'storage folder {path!r} does not exist')
    return BlobStore(path)


# --------------------------------------------------------------------------
# the commands


def run_gc(args: argparse.Namespace) -> int:
    store = open_storage(args.storage)
    engine, _revision = open_database(args.database, need_current=True)
    try:
        result = gc.collect_garbage(
            engine,
            store,
            delete=args.delete,
            grace_seconds=args.grace_seconds,
            protected_paths=gc.database_files(args.database),
        )
    finally:
        engine.dispose()
    inventory = result.inventory
    listed = result.deleted if args.delete else inventory.orphans
    for stored in listed:
        print(stored.key)
    orphaned = _files(inventory.orphans)
    if args.delete:
        note(f'removed {_files(result.deleted)} of {orphaned} orphaned')
        if result.kept:
            note(f'kept {_files(result.kept)}: referenced or changed since the scan')
        for stored, reason in result.failed:
            note(f'cannot remove {stored.key}: {reason}')
    else:
        note(
            f'{orphaned} orphaned in {args.storage}'
            + (' (dry run: run with --delete to remove)' if inventory.orphans else '')
        )
    note(f'{inventory.referenced} referenced files in use')
    if inventory.recent:
        note(
            f'left alone {_files(inventory.recent)} not referenced but younger than '
            f'{args.grace_seconds:g} seconds'
        )
    if inventory.released:
        note(
            f'left alone {_files(inventory.released)} released by the service less '
            f'than {args.grace_seconds:g} seconds ago (it removes them itself)'
        )
    return EXIT_PROBLEMS if result.failed else 0


def run_verify(args: argparse.Namespace) -> int:
    store = open_storage(args.storage)
    engine, revision = open_database(args.database, need_current=False, read_only=True)
    if revision is None:
        engine.dispose()
        raise AdminError('the database is empty: it holds no ngshare schema')
    try:
        result = gc.verify_blobs(engine, store)
    finally:
        engine.dispose()
    for bad in result.problems:
        print(f'{bad.key}: file {bad.file_id}: {bad.reason}')
    if result.ok:
        note(f'verified {result.rows} files ({result.blobs} blobs): all intact')
        return 0
    note(f'{len(result.problems)} of {result.rows} files have a missing or bad blob')
    return EXIT_PROBLEMS


def run_upgrade(args: argparse.Namespace) -> int:
    store = open_storage(args.storage)
    engine, before = open_database(args.database, need_current=False)
    try:
        migrate.upgrade(engine, str(store.root))
        after = migrate.current_revision(engine)
    except migrate.MigrationError as error:
        raise AdminError(str(error)) from None
    except AlembicCommandError as error:
        raise AdminError(f'cannot upgrade the database: {error}') from None
    finally:
        engine.dispose()
    if before == after:
        note(f'the database is already at revision {after}')
    else:
        note(f'upgraded the database from revision {before or "none"} to {after}')
    return 0


def run_deleted(args: argparse.Namespace) -> int:
    store = open_storage(args.storage)
    engine, _revision = open_database(args.database, need_current=True)
    config = Config(
        database_url=args.database,
        storage_path=args.storage,
        deleted_retention_days=int(getattr(args, 'older_than_days', 30)),
    )
    runtime = Runtime(
        config=config,
        engine=engine,
        reader=None,
        writer=make_session_factories(engine)[1],
        store=store,
        authenticator=None,
        pool=None,
    )
    try:
        if args.action == 'list':
            with runtime.writer() as session:
                items = deleted.list_deleted(session)
            for item in items:
                what = item['course'] + (
                    f' / {item["assignment"]}' if item['assignment'] else ''
                )
                print(
                    f'{item["id"]}\t{item["kind"]}\t{what}\t{item["deleted_at"]}'
                    f'\tby {item["deleted_by"]}\t{item["submissions"]} submissions'
                )
            note(f'{len(items)} deleted items kept')
        elif args.action == 'restore':
            with runtime.writer() as session:
                ctx = Context(session=session, store=store, actor=ADMIN_ACTOR)
                try:
                    message = deleted.restore(
                        ctx,
                        args.item,
                        as_name=args.as_name,
                        submissions_only=args.submissions_only,
                    )
                    session.commit()
                except deleted.RestoreError as error:
                    raise AdminError(str(error)) from None
                except IntegrityError:
                    # A course or assignment of the same name was created
                    # meanwhile (the unique constraints caught it): run
                    # again, the restore then says what is in the way.
                    raise AdminError(
                        f'item {args.item} conflicts with a concurrent change;'
                        ' nothing was restored, run the command again'
                    ) from None
            note(message)
        else:
            freed = purge_deleted(runtime)
            note(f'purged expired deleted items ({freed} stored files released)')
    finally:
        engine.dispose()
    return 0


COMMANDS = {
    'gc': run_gc,
    'verify': run_verify,
    'upgrade': run_upgrade,
    'deleted': run_deleted,
}
ADMIN_ACTOR = Actor(name='ngshare-admin')


def note(message: str) -> None:
    print(f'ngshare-admin: {message}', file=sys.stderr)


def _files(files: list[gc.StoredFile]) -> str:
    size = sum(stored.size for stored in files)
    return f'{len(files)} file{"" if len(files) == 1 else "s"} ({size} bytes)'


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='[%(levelname)1.1s %(asctime)s %(name)s] %(message)s',
        stream=sys.stderr,
    )
    logging.getLogger('alembic').setLevel(logging.WARNING)
    try:
        status = COMMANDS[args.command](args)
    except AdminError as error:
        print(f'ngshare-admin: error: {error}', file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except SQLAlchemyError as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        print(
            f'ngshare-admin: error: cannot use the database: {reason}', file=sys.stderr
        )
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status)


if __name__ == '__main__':
    main()
