"""``ngshare-admin storage copy``: moving a deployment between stores.

The command around :mod:`ngshare.storage_move`: both stores and the
database opened and checked first, every blob the database refers to
copied and checked, the problems listed one a line on standard output, the
counts on standard error. A blob missing from the source is a problem only
if rows still refer to it once the copy is done: while the service runs,
a blob may go with its rows between the scan and its copy.
"""

from __future__ import annotations

import argparse
import os

from . import storage_move
from .admin_open import EXIT_PROBLEMS, AdminError, note, open_database, open_storage
from .blobs import is_s3_location, open_store
from .blobs.store import BlobStore, StorageError

PROGRESS_EVERY = 1000


def run_storage(args: argparse.Namespace) -> int:
    """``storage copy``: every referenced blob from ``--from`` to ``--to``."""
    if os.path.abspath(args.source) == os.path.abspath(args.target) or (
        args.source.rstrip('/') == args.target.rstrip('/')
    ):
        raise AdminError('--from and --to name the same store')
    engine, _status = open_database(args.database, need_current=True, read_only=True)
    try:
        source = open_storage(args, args.source)
        target = _open_destination(args)
        expected = storage_move.expected_blobs(engine)
        note(
            f'copying {_blobs(len(expected))} from {source.location} to '
            f'{target.location} ({args.jobs} at a time)'
        )
        try:
            report = storage_move.copy_blobs(
                source,
                target,
                expected.values(),
                jobs=args.jobs,
                trust_existing=args.trust_existing,
                progress=_progress(len(expected)),
            )
        except storage_move.DestinationFailure as error:
            raise AdminError(str(error)) from None
        missing = [o.key for o in report.of(storage_move.MISSING)]
        still = storage_move.referenced_now(engine, missing) if missing else set()
    finally:
        engine.dispose()
    problems = [
        o for o in report.problems if o.status != storage_move.MISSING or o.key in still
    ]
    for outcome in problems:
        print(f'{outcome.key}: {outcome.reason}')
    _copy_summary(report, len(missing) - len(still), problems)
    return EXIT_PROBLEMS if problems else 0


def _open_destination(args: argparse.Namespace) -> BlobStore:
    """The destination, created (a folder) and proved writable."""
    if is_s3_location(args.target):
        return open_storage(args, args.target, writes=True)
    store = open_store(args.target)
    try:
        store.check_usable()
    except StorageError as error:
        raise AdminError(str(error)) from None
    return store


def _progress(total: int):
    step = max(PROGRESS_EVERY, total // 20)

    def tell(done: int) -> None:
        if done % step == 0 and done < total:
            note(f'{done} of {_blobs(total)} done')

    return tell


def _copy_summary(report, gone: int, problems) -> None:
    copied = report.of(storage_move.COPIED, storage_move.REPLACED)
    replaced = report.of(storage_move.REPLACED)
    there = report.of(storage_move.PRESENT, storage_move.TRUSTED)
    trusted = report.of(storage_move.TRUSTED)
    size = sum(o.size for o in copied)
    note(
        f'copied {_blobs(len(copied))} ({size} bytes)'
        + (f', replacing {len(replaced)} bad copies' if replaced else '')
        + f'; {_blobs(len(there))} already at the destination'
        + (f' ({len(trusted)} by their size, unread)' if trusted else ' and intact')
    )
    if gone:
        note(f'{_blobs(gone)} deleted with their rows meanwhile (no longer needed)')
    if problems:
        note(
            f'{_blobs(len(problems))} missing or corrupt in the source: the '
            'destination lacks them (listed above)'
        )


def _blobs(count: int) -> str:
    return f'{count} blob{"" if count == 1 else "s"}'


__all__ = ['run_storage']
