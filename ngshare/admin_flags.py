"""The command line of ``ngshare-admin``, as an argparse parser.

Apart from :mod:`ngshare.admin` (what the commands do) as :mod:`ngshare.flags`
is apart from :mod:`ngshare.cli`: every flag, default and help text here is
documented in docs/cli.md (tests/test_docs.py compares them). Each
subcommand takes the service's ``--database`` and ``--storage`` flags, with
the same defaults, and its object-storage flags
(:func:`ngshare.flags.add_s3_flags`), so that a bucket is reached exactly
as the service reaches it; ``storage copy`` names two stores instead
(``--from``, ``--to``).
"""

from __future__ import annotations

import argparse

from . import config as defaults
from . import gc
from .flags import add_s3_flags
from .storage_move import DEFAULT_JOBS
from .version import __version__

__all__ = ['build_parser']


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ngshare-admin',
        description='Maintenance of an ngshare database and its storage (a '
        'folder or a bucket).',
    )
    parser.add_argument('--version', action='version', version=__version__)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        '--database',
        metavar='PATH_TO_DATABASE',
        default=defaults.DEFAULT_DATABASE,
        help=f'SQLAlchemy database URL (default: {defaults.DEFAULT_DATABASE})',
    )
    common = argparse.ArgumentParser(add_help=False, parents=[database])
    common.add_argument(
        '--storage',
        metavar='PATH_TO_STORAGE',
        default=defaults.DEFAULT_STORAGE,
        help='folder of the stored files, or s3://BUCKET/PREFIX (default: '
        f'{defaults.DEFAULT_STORAGE})',
    )
    add_s3_flags(common)
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
        '(--deleted-retention-days, default '
        f'{defaults.DEFAULT_DELETED_RETENTION_DAYS}).',
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
        default=defaults.DEFAULT_DELETED_RETENTION_DAYS,
        help='purge items deleted longer ago than this (default: '
        f'{defaults.DEFAULT_DELETED_RETENTION_DAYS})',
    )
    _add_storage_commands(commands, database)
    return parser


def _add_storage_commands(commands, database: argparse.ArgumentParser) -> None:
    storage = commands.add_parser(
        'storage',
        help='copy the stored files to another store (a folder or a bucket)',
        description='Move a deployment between a storage folder and a bucket.',
    )
    actions = storage.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    copy = actions.add_parser(
        'copy',
        parents=[database],
        help='copy every stored file the database refers to, checking each',
        description='Copy every blob the database refers to from one store to '
        'the other, checking each against its name or its rows; blobs already '
        'at the destination and intact are skipped, so a new run resumes an '
        'interrupted one. Exit 1 if a blob is missing or corrupt in the source.',
    )
    copy.add_argument(
        '--from',
        dest='source',
        metavar='PATH_OR_URL',
        required=True,
        help='the store the service uses now: a folder or s3://BUCKET/PREFIX',
    )
    copy.add_argument(
        '--to',
        dest='target',
        metavar='PATH_OR_URL',
        required=True,
        help='the new store: a folder (created if needed) or s3://BUCKET/PREFIX',
    )
    copy.add_argument(
        '--trust-existing',
        action='store_true',
        help='skip, unread, a blob already at the destination with the size its '
        'rows record (for the pass during the stop, after a full one)',
    )
    copy.add_argument(
        '--jobs',
        metavar='N',
        type=_positive_int,
        default=DEFAULT_JOBS,
        help=f'blobs copied at once (default: {DEFAULT_JOBS})',
    )
    add_s3_flags(copy)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'not a positive whole number: {text!r}')
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f'not a number of seconds: {text!r}')
    return value
