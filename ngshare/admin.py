"""``ngshare-admin``: maintenance of an ngshare database and its storage.

Subcommands (each takes the service's ``--database`` and ``--storage`` flags,
with the same defaults; ``--storage`` is a folder or ``s3://BUCKET/PREFIX``,
reached with the service's ``--s3-endpoint-url`` / ``--s3-path-style`` and
boto3's own ``AWS_*`` configuration):

``gc``
    Report the orphaned files of the store: files no ``files`` row
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
``storage copy --from PATH_OR_URL --to PATH_OR_URL``
    Copy every blob the database refers to from one store to the other,
    checked and resumable: moving a deployment between a folder and a bucket
    (see :mod:`ngshare.storage_move`).

Output meant for scripts (the orphaned or removed files, the bad blobs, the
blobs a copy could not take) goes to standard output, one per line;
summaries go to standard error. Exit status: 0 success; 1 ``verify`` found
bad blobs, ``gc --delete`` could not remove a file, or ``storage copy``
found blobs missing or corrupt in the source; 2 the command could not run
(one ``ngshare-admin: error:`` line; argparse's usage errors too).

The flags are in :mod:`ngshare.admin_flags`; the database is opened by the
service's own path (:mod:`ngshare.database.opening`), and maintenance runs
on a session factory and the blob store, as the service's housekeeping
does, with no service (``Runtime``) around.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import config as defaults
from . import gc
from .actor import Actor
from .admin_copy import run_storage
from .admin_flags import build_parser
from .admin_open import (
    EXIT_ERROR,
    EXIT_PROBLEMS,
    AdminError,
    note,
    open_database,
    open_storage,
)
from .blobs.store import BlobStore
from .database import migrate
from .database.engine import make_session_factories
from .housekeeping import purge_deleted
from .operations import deleted
from .operations.context import Context

# --------------------------------------------------------------------------
# the commands


def run_gc(args: argparse.Namespace) -> int:
    store = open_storage(args, writes=args.delete)
    engine, _status = open_database(args.database, need_current=True)
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
            f'{orphaned} orphaned in {store.location}'
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
    store = open_storage(args)
    engine, status = open_database(args.database, need_current=False, read_only=True)
    if status.current is None:
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
    # Some migrations read the stored files; a 0.x database is never
    # upgraded onto a bucket (ngshare.database.opening says what to do).
    open_storage(args)
    engine, status = open_database(
        args.database, need_current=False, upgrade_storage=args.storage
    )
    try:
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if status.current == after:
        note(f'the database is already at revision {after}')
    else:
        note(
            f'upgraded the database from revision {status.current or "none"} to {after}'
        )
    return 0


def run_deleted(args: argparse.Namespace) -> int:
    # Only the purge removes blobs; a restore reads that its blobs are there.
    store = open_storage(args, writes=args.action == 'purge')
    engine, _status = open_database(args.database, need_current=True)
    reader, writer = make_session_factories(engine)
    try:
        if args.action == 'list':
            list_deleted(reader)
        elif args.action == 'restore':
            restore_deleted(writer, store, args)
        else:
            freed = purge_deleted(
                writer,
                store,
                retention_days=int(args.older_than_days),
                grace_seconds=defaults.DEFAULT_RELEASED_BLOB_GRACE,
                by=ADMIN_ACTOR.name,
            )
            note(f'purged expired deleted items ({freed} stored files released)')
    finally:
        engine.dispose()
    return 0


def list_deleted(reader) -> None:
    with reader() as session:
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


def restore_deleted(writer, store: BlobStore, args: argparse.Namespace) -> None:
    with writer() as session:
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
            # A course or assignment of the same name was created meanwhile
            # (the unique constraints caught it): run again, the restore
            # then says what is in the way.
            raise AdminError(
                f'item {args.item} conflicts with a concurrent change;'
                ' nothing was restored, run the command again'
            ) from None
    note(message)


COMMANDS = {
    'gc': run_gc,
    'verify': run_verify,
    'upgrade': run_upgrade,
    'deleted': run_deleted,
    'storage': run_storage,
}
ADMIN_ACTOR = Actor(name='ngshare-admin')


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
