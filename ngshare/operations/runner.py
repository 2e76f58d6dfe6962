"""Running one operation as one transaction, in a worker thread.

A request either commits everything it did or leaves nothing behind: on any
failure its transaction rolls back and the blobs it created are removed
again (unless a committed row meanwhile refers to the same content). A write
that loses a race on a unique constraint is retried, so that its second run
sees the winner and answers the documented 409 (or, for an update, simply
succeeds). A blob store that refuses (full, read-only, gone) answers 507
``Storage full`` or 503 ``Storage unavailable``, logged once for the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..errors import ApiError
from ..gc import is_referenced
from ..permissions import Actor
from ..runtime import Runtime
from ..storage import BlobStoreFailure
from .context import Context
from .trees import lock_blob

log = logging.getLogger('ngshare.operations')

WRITE_ATTEMPTS = 3

STORAGE_FULL = 'Storage full'
STORAGE_UNAVAILABLE = 'Storage unavailable'


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
) -> dict:
    attempts = WRITE_ATTEMPTS if write else 1
    factory = runtime.writer if write else runtime.reader
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
                )
                result = operation(ctx, *args)
                session.commit()
        except (IntegrityError, OperationalError) as error:
            _forget(runtime, ctx)
            if attempt == attempts:
                log.warning('Giving up after %d attempts: %s', attempts, error)
                raise ApiError(
                    409, 'Request conflicts with a concurrent change'
                ) from error
            log.info('Retrying after a concurrent change: %s', error.orig)
            continue
        except BlobStoreFailure as failure:
            _forget(runtime, ctx)
            raise storage_api_error(failure) from None
        except BaseException:
            _forget(runtime, ctx)
            raise
        remove_unreferenced_blobs(runtime, actor, ctx.released_blobs)
        return result
    raise AssertionError('unreachable')


def _forget(runtime: Runtime, ctx: Context | None) -> None:
    """Undo the blob writes of a unit of work that did not commit."""
    if ctx is not None:
        remove_unreferenced_blobs(runtime, ctx.actor, ctx.created_blobs)


def remove_unreferenced_blobs(runtime: Runtime, actor: Actor, keys: list[str]) -> None:
    """Delete those of ``keys`` that no file row refers to any more.

    Runs in a write transaction of its own: on SQLite that holds the write
    lock, on PostgreSQL an exclusive advisory lock per blob, so a concurrent
    request that stores the same content either committed its reference
    before this check, or re-creates the blob after this delete.
    """
    if not keys:
        return
    try:
        with runtime.writer() as session:
            cleaner = Context(session=session, store=runtime.store, actor=actor)
            session.execute(select(1))  # take the write lock first (SQLite)
            for key in dict.fromkeys(keys):
                lock_blob(cleaner, key, shared=False)
                if not is_referenced(session, key):
                    runtime.store.delete(key)
            session.commit()
    except Exception:
        log.exception('Could not remove the blobs of a failed request')
