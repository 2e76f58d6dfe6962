"""Work the service does on its own, besides answering requests.

At start-up (before serving) and then once an hour, deleted courses and
assignments older than the retention period are purged; their blobs are
released like those of any write (recorded in the purge's transaction,
removed after ``--released-blob-grace``). At the same times, with
``--history-retention-days``, history entries older than that go. Right
after start-up and then every half grace period (at most every 5 minutes,
at least every second) the released blobs whose grace is over are swept:
removed unless something refers to them again.

Several replicas may do all this at the same time: purging locks the
expired items' rows (so the second replica finds nothing left, and a
restore in flight commits first), sweeping locks the records it takes and
skips those another sweep holds, and blob removal takes the same locks as
every request.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy.orm import sessionmaker
from tornado.ioloop import IOLoop, PeriodicCallback

from .blobs.lifecycle import remove_unreferenced
from .blobs.store import BlobStore
from .operations.deleted import purge_expired
from .operations.history import expire
from .operations.released import release_in, sweep_released
from .runtime import Runtime
from .timestamps import utc_now

log = logging.getLogger('ngshare.housekeeping')

PURGE_INTERVAL_SECONDS = 3600
# Who the history names for the purges the service does on its own.
SERVICE_ACTOR = 'ngshare'
# Upper bound of the time between two sweeps of released blobs.
SWEEP_INTERVAL_SECONDS = 300


def purge_deleted(
    writer: sessionmaker,
    store: BlobStore,
    *,
    retention_days: int,
    grace_seconds: int,
    now: datetime.datetime | None = None,
    by: str = SERVICE_ACTOR,
) -> int:
    """Purge items deleted over ``retention_days`` ago; return how many blobs
    were released (removed after ``grace_seconds``, or at once with 0).

    Takes what it uses, not a Runtime: ``ngshare-admin deleted purge`` runs
    it with no service around.
    """
    days = retention_days
    cutoff = (now or utc_now()) - datetime.timedelta(days=days)
    with writer() as session:
        keys = purge_expired(session, cutoff, by=by)
        deferred = release_in(session, keys, grace_seconds=grace_seconds)
        session.commit()
    if not deferred:
        remove_unreferenced(writer, store, keys)
    if keys:
        log.info('Purged deleted items older than %d days (%d blobs)', days, len(keys))
    return len(keys)


def purge_for(runtime: Runtime, now: datetime.datetime | None = None) -> int:
    """:func:`purge_deleted` with the service's configuration, then the
    history's retention (:func:`expire_history`)."""
    freed = purge_deleted(
        runtime.writer,
        runtime.store,
        retention_days=runtime.config.deleted_retention_days,
        grace_seconds=runtime.config.released_blob_grace_seconds,
        now=now,
    )
    expire_history(runtime.writer, runtime.config.history_retention_days, now=now)
    return freed


def expire_history(
    writer: sessionmaker, retention_days: int, now: datetime.datetime | None = None
) -> int:
    """Remove history entries older than ``retention_days`` (0: none go);
    return how many went."""
    if retention_days <= 0:
        return 0
    cutoff = (now or utc_now()) - datetime.timedelta(days=retention_days)
    with writer() as session:
        removed = expire(session, cutoff)
        session.commit()
    if removed:
        log.info(
            'Removed %d history entries older than %d days', removed, retention_days
        )
    return removed


def sweep_interval(grace_seconds: int) -> float:
    """Seconds between sweeps: half the grace, within [1, 300] (300 with a
    grace of 0, when only records of an earlier configuration, or of
    ``ngshare-admin deleted purge``, can exist)."""
    if grace_seconds <= 0:
        return SWEEP_INTERVAL_SECONDS
    return max(1.0, min(grace_seconds / 2, SWEEP_INTERVAL_SECONDS))


def sweep(runtime: Runtime) -> int:
    """One sweep of released blobs, logged when it removed any."""
    removed = sweep_released(
        runtime.writer,
        runtime.store,
        grace_seconds=runtime.config.released_blob_grace_seconds,
        reader=runtime.reader,
    )
    if removed:
        log.info(
            'Removed %d released blobs (released over %d seconds ago)',
            removed,
            runtime.config.released_blob_grace_seconds,
        )
    return removed


class Housekeeping:
    """The running timers; :meth:`stop` stops them all."""

    def __init__(self, callbacks: list[PeriodicCallback]) -> None:
        self.callbacks = callbacks

    def stop(self) -> None:
        for callback in self.callbacks:
            callback.stop()


def start_housekeeping(runtime: Runtime) -> Housekeeping:
    """Start the periodic purge and sweep, and a first sweep at once."""

    async def purge() -> None:
        try:
            await IOLoop.current().run_in_executor(runtime.writes, purge_for, runtime)
        except Exception:
            log.exception('Purging deleted items failed; will retry')

    async def sweep_now() -> None:
        try:
            await IOLoop.current().run_in_executor(runtime.writes, sweep, runtime)
        except Exception:
            log.exception('Removing released blobs failed; will retry')

    interval = sweep_interval(runtime.config.released_blob_grace_seconds)
    callbacks = [
        PeriodicCallback(purge, PURGE_INTERVAL_SECONDS * 1000),
        PeriodicCallback(sweep_now, interval * 1000),
    ]
    for callback in callbacks:
        callback.start()
    IOLoop.current().add_callback(sweep_now)
    return Housekeeping(callbacks)
