"""Running one operation as one transaction, in a worker thread.

A request either commits everything it did or leaves nothing behind: on any
failure its transaction rolls back and the blobs it created are removed
again (unless a committed row meanwhile refers to the same content). The
blobs a committed write released (replaced feedback, a deleted item) are
recorded in that same transaction and removed only after the grace period
(:mod:`.released`), so that downloads that already read the old rows, on
any replica, complete; with a grace of 0 they are removed after the commit.

A write that loses a race to a concurrent one is run again, up to
:data:`WRITE_ATTEMPTS` times with a short jittered pause, so that its next
run sees the winner and answers the documented 4xx (or, for an update or a
replacement, simply succeeds after it). That covers a unique constraint
(SQLSTATE 23xxx), a serialization failure (40001) and a deadlock (40P01);
a write that loses every attempt answers 409 ``Request conflicts with a
concurrent change``. A PostgreSQL server that cannot be reached (or dropped
the session) is tried again the same way and then answers 503 ``Database
unavailable``; a database that is full (SQLite's "database or disk is
full", PostgreSQL's 53100) answers 507 ``Storage full`` at once, as a full
blob store does, and any other refusal (a SQLite I/O error, or its busy
timeout spent) 503 ``Database unavailable`` at once. Each of these is
logged with its code (SQLSTATE or SQLite error name), the operation and the
attempts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ..actor import Actor
from ..blobs.lifecycle import remove_unreferenced
from ..blobs.store import BlobStoreFailure
from ..errors import ApiError
from ..runtime import Runtime
from .context import Context
from .released import release_in
from .uploads import created_by

log = logging.getLogger('ngshare.operations')

WRITE_ATTEMPTS = 3
# The pause before attempt n+1 is uniform in [0, RETRY_PAUSE * 2**(n-1)]
# seconds: a few milliseconds, so that the racers do not meet again at once.
RETRY_PAUSE = 0.02

STORAGE_FULL = 'Storage full'
STORAGE_UNAVAILABLE = 'Storage unavailable'
CONFLICT = 'Request conflicts with a concurrent change'
DATABASE_UNAVAILABLE = 'Database unavailable'

# SQLSTATEs of a transaction that lost to a concurrent one.
CONFLICT_STATES = ('40001', '40P01')
# SQLSTATEs (and classes) after which a fresh attempt may succeed.
RETRYABLE_STATES = ('57P01', '57P02', '57P03')
RETRYABLE_CLASSES = ('08',)
# Out of room, on PostgreSQL (disk_full) and SQLite.
FULL_STATES = ('53100',)
SQLITE_FULL = 'database or disk is full'


def database_failure(error: DBAPIError) -> tuple[str, str]:
    """(kind, code) of a database error: kind is 'conflict', 'full',
    'unavailable' (try again) or 'refused' (no use trying again), code the
    SQLSTATE or SQLite error name that says why, for the log."""
    original = error.orig
    sqlstate = getattr(original, 'sqlstate', None)
    if sqlstate:
        code = f'SQLSTATE {sqlstate}'
    else:
        code = getattr(original, 'sqlite_errorname', None) or type(original).__name__
    if isinstance(error, IntegrityError) or sqlstate in CONFLICT_STATES:
        return 'conflict', code
    if sqlstate in FULL_STATES or SQLITE_FULL in str(original):
        return 'full', code
    if type(original).__module__.startswith('sqlite3'):
        # Busy after the whole busy timeout, an I/O error: no use retrying.
        return 'refused', code
    if isinstance(error, OperationalError) and (
        sqlstate is None
        or sqlstate in RETRYABLE_STATES
        or sqlstate[:2] in RETRYABLE_CLASSES
    ):
        return 'unavailable', code
    return 'refused', code


def storage_api_error(failure: BlobStoreFailure) -> ApiError:
    """The documented answer to a storage refusal, logged for the admin.

    507 when more room would help (ENOSPC, EDQUOT, EFBIG), else 503: the
    client may try again later, and the admin reads one ERROR line naming
    the errno, the blob relative to the storage folder, and what to do.
    """
    log.error('%s (the request was refused)', failure.advice())
    if failure.full:
        return ApiError(507, STORAGE_FULL)
    return ApiError(503, STORAGE_UNAVAILABLE)


def run_operation(
    runtime: Runtime,
    actor: Actor,
    operation: Callable[..., dict],
    args: tuple,
    *,
    write: bool,
    recording: bool = False,
) -> dict:
    """``operation(ctx, *args)`` in one transaction: a ``write``'s, a
    read's, or with ``recording`` a download's that writes its history
    entry (:func:`ngshare.database.engine.make_recorder_factory`)."""
    # A read is not retried: a conflict cannot happen in its snapshot, and
    # the blobs it lists stay stored for the grace period.
    write = write or recording
    attempts = WRITE_ATTEMPTS if write else 1
    if recording:
        factory = runtime.recorder or runtime.writer
    else:
        factory = runtime.writer if write else runtime.reader
    name = getattr(operation, '__name__', repr(operation))
    for attempt in range(1, attempts + 1):
        ctx = None
        try:
            with factory() as session:
                ctx = Context(
                    session=session,
                    store=runtime.store,
                    actor=actor,
                    max_file_size=runtime.config.max_file_size,
                    keep_deleted=runtime.config.deleted_retention_days > 0,
                    # Blobs written before the transaction (.uploads) are
                    # removed with the unit of work's own if it fails.
                    created_blobs=created_by(args),
                )
                result = operation(ctx, *args)
                deferred = release_in(
                    session,
                    ctx.released_blobs,
                    grace_seconds=runtime.config.released_blob_grace_seconds,
                )
                session.commit()
        except (IntegrityError, OperationalError) as error:
            _forget(runtime, ctx)
            kind, code = database_failure(error)
            detail = str(error.orig).strip().splitlines()[0] if error.orig else error
            if kind == 'full':
                log.error(
                    'The database is full (%s: %s) in %s; the request was refused.'
                    ' Give the database more room.',
                    code,
                    detail,
                    name,
                )
                raise ApiError(507, STORAGE_FULL) from None
            if kind == 'refused' or (kind == 'unavailable' and not write):
                log.error('Database failure in %s (%s: %s)', name, code, detail)
                raise ApiError(503, DATABASE_UNAVAILABLE) from None
            if attempt == attempts:
                log.warning(
                    'Giving up on %s after %d attempts: %s (%s)',
                    name,
                    attempts,
                    code,
                    detail,
                )
                if kind == 'conflict':
                    raise ApiError(409, CONFLICT) from None
                raise ApiError(503, DATABASE_UNAVAILABLE) from None
            log.info(
                'Retrying %s (attempt %d of %d failed: %s, %s)',
                name,
                attempt,
                attempts,
                code,
                detail,
            )
            time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** (attempt - 1)))  # noqa: S311
            continue
        except BlobStoreFailure as failure:
            _forget(runtime, ctx)
            raise storage_api_error(failure) from None
        except BaseException:
            _forget(runtime, ctx)
            raise
        if not deferred:
            remove_unreferenced(runtime.writer, runtime.store, ctx.released_blobs)
        return result
    raise AssertionError('unreachable')


# The most rows a read answered on the event loop may have (run_quick).
QUICK_ROWS = 100


def quick_reads(runtime: Runtime) -> bool:
    """Whether small reads are answered on the event loop: on SQLite only.

    A student's list answered in one statement costs about 0.15 ms on a
    local SQLite file, less than its trip to the worker pool and back
    (about as much again, on the event loop and the worker both). A
    PostgreSQL server is a network round trip away: never on the loop.
    """
    return runtime.engine.dialect.name == 'sqlite'


def run_quick(runtime: Runtime, actor: Actor, quick: Callable, args: tuple):
    """``quick(ctx, *args, limit=QUICK_ROWS)`` in a read transaction of its
    own, on the calling thread: its answer, or None for "run the operation
    in the worker pool" (a refusal, an empty or a longer list, and any
    database failure, which the operation then answers as documented).

    Bounded, so that the event loop is never held long: one statement that
    fetches at most :data:`QUICK_ROWS` + 1 rows. It reads through a plain
    Connection, not a Session: the shortcuts select columns, not entities,
    and a Session would double the cost of the whole read.
    """
    try:
        with runtime.engine.connect() as connection:
            ctx = Context(session=connection, store=runtime.store, actor=actor)
            return quick(ctx, *args, limit=QUICK_ROWS)
    except DBAPIError:
        return None


def _forget(runtime: Runtime, ctx: Context | None) -> None:
    """Undo the blob writes of a unit of work that did not commit.

    Removed at once: no committed row ever referred to them, so no download
    can be reading them (one recorded as released since is left to the
    sweep: a row referred to it meanwhile).
    """
    if ctx is not None:
        remove_unreferenced(
            runtime.writer, runtime.store, ctx.created_blobs, unless_released=True
        )
