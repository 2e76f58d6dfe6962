"""Work the service does on its own, besides answering requests.

At start-up (before serving) and then once an hour, deleted courses and
assignments older than the retention period are purged; their blobs are
released like those of any write (recorded in the purge's transaction,
removed after ``--released-blob-grace``). Right after start-up and then
every half grace period (at most every 5 minutes, at least every second)
the released blobs whose grace is over are swept: removed unless something
refers to them again.

Several replicas may do all this at the same time: purging locks the
expired items' rows (so the second replica finds nothing left, and a
restore in flight commits first), sweeping locks the records it takes and
skips those another sweep holds, and blob removal takes the same locks as
every request.
"""

from __future__ import annotations

import datetime
import logging

from tornado.ioloop import IOLoop, PeriodicCallback

from .operations.deleted import purge_expired
from .operations.released import sweep_released
from .operations.runner import release_in, remove_unreferenced_blobs
from .permissions import Actor
from .runtime import Runtime
from .timestamps import utc_now

log = logging.getLogger('ngshare.housekeeping')

PURGE_INTERVAL_SECONDS = 3600
# Upper bound of the time between two sweeps of released blobs.
SWEEP_INTERVAL_SECONDS = 300
SERVICE_ACTOR = Actor(name='ngshare housekeeping')


def purge_deleted(runtime: Runtime, now: datetime.datetime | None = None) -> int:
    """Purge items past the retention period; return how many blobs were
    released (removed after the grace period, or at once with a grace of 0)."""
    days = runtime.config.deleted_retention_days
    cutoff = (now or utc_now()) - datetime.timedelta(days=days)
    with runtime.writer() as session:
        keys = purge_expired(session, cutoff)
        deferred = release_in(runtime, session, keys)
        session.commit()
    if not deferred:
        remove_unreferenced_blobs(runtime, SERVICE_ACTOR, keys)
    if keys:
        log.info('Purged deleted items older than %d days (%d blobs)', days, len(keys))
    return len(keys)


def sweep_interval(grace_seconds: int) -> float:
    """Seconds between sweeps: half the grace, within [1, 300] (300 with a
    grace of 0, when only records of an earlier configuration, or of
    ``ngshare-admin deleted purge``, can exist)."""
    if grace_seconds <= 0:
        return SWEEP_INTERVAL_SECONDS
    return max(1.0, min(grace_seconds / 2, SWEEP_INTERVAL_SECONDS))


def sweep(runtime: Runtime) -> int:
    """One sweep of released blobs, logged when it removed any."""
    removed = sweep_released(runtime)
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
            await IOLoop.current().run_in_executor(runtime.pool, purge_deleted, runtime)
        except Exception:
            log.exception('Purging deleted items failed; will retry')

    async def sweep_now() -> None:
        try:
            await IOLoop.current().run_in_executor(runtime.pool, sweep, runtime)
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
