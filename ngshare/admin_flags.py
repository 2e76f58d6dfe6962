"""The command line of ``ngshare-admin``, as an argparse parser.

Apart from :mod:`ngshare.admin` (what the commands do) as :mod:`ngshare.flags`
is apart from :mod:`ngshare.cli`: every flag, default and help text here is
documented in docs/cli.md (tests/test_docs.py compares them). Each
subcommand takes the service's ``--database`` and ``--storage`` flags, with
the same defaults.
"""

from __future__ import annotations

import argparse

from . import config as defaults
from . import gc
from .version import __version__

__all__ = ['build_parser']


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
    return parser


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f'not a number of seconds: {text!r}')
    return value
