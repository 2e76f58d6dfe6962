"""Work the service does on its own, besides answering requests.

At start-up (before serving) and then once an hour, deleted courses and
assignments older than the retention period are purged and their blobs
removed, unless something else still refers to the same content. Several
replicas may do this at the same time: purging locks the expired items'
rows (so the second replica finds nothing left, and a restore in flight
commits first), and blob removal takes the same locks as every request.
"""

from __future__ import annotations

import datetime
import logging

from tornado.ioloop import IOLoop, PeriodicCallback

from .operations.deleted import purge_expired
from .operations.runner import remove_unreferenced_blobs
from .permissions import Actor
from .runtime import Runtime
from .timestamps import utc_now

log = logging.getLogger('ngshare.housekeeping')

PURGE_INTERVAL_SECONDS = 3600
SERVICE_ACTOR = Actor(name='ngshare housekeeping')


def purge_deleted(runtime: Runtime, now: datetime.datetime | None = None) -> int:
    """Purge items past the retention period; return how many blobs were freed."""
    days = runtime.config.deleted_retention_days
    cutoff = (now or utc_now()) - datetime.timedelta(days=days)
    with runtime.writer() as session:
        keys = purge_expired(session, cutoff)
        session.commit()
    remove_unreferenced_blobs(runtime, SERVICE_ACTOR, keys)
    if keys:
        log.info('Purged deleted items older than %d days (%d blobs)', days, len(keys))
    return len(keys)


def start_housekeeping(runtime: Runtime) -> PeriodicCallback:
    async def purge() -> None:
        try:
            await IOLoop.current().run_in_executor(runtime.pool, purge_deleted, runtime)
        except Exception:
            log.exception('Purging deleted items failed; will retry')

    callback = PeriodicCallback(purge, PURGE_INTERVAL_SECONDS * 1000)
    callback.start()
    return callback
