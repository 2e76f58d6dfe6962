"""Released blobs: removed only after a grace period, never under a download.

A download reads its file rows in one snapshot and then streams the blobs
one after the other, after that read transaction has closed (see
``handlers/downloads.py``). If the blobs were removed as soon as a write
dropped their last row (replaced feedback, an assignment deleted without
retention, a purge), a download that had already read the old rows, on this
replica or another, would find them gone half way through its answer.

So a write that releases blobs records their keys in ``released_blobs``, in
its own transaction, with the time (:func:`hold_released`); a later release
of the same key moves its time on. The record is as durable as the commit
that dropped the rows: a crash right after it loses nothing. The sweep
(:func:`sweep_released`, run by housekeeping on every replica) removes,
once the grace period is over, the blobs that no row refers to again, and
forgets the records. ``--released-blob-grace 0`` records nothing: the
runner removes the blobs right after the commit, as before.

Sweeping is safe with any number of sweepers and writers at once:

* the sweep locks the expired records it takes (``FOR UPDATE SKIP LOCKED``
  on PostgreSQL, so two replicas sweeping at once share the work, each
  record taken by one; on SQLite the write lock serialises everything), so
  a release that moves a record's time on waits for the sweep to commit and
  then records the key afresh;
* a blob is deleted only under the exclusive blob lock, after checking in
  it that no row refers to the blob (the rule of
  :mod:`ngshare.blobs.lifecycle`). The sweep only *tries* that lock: a
  request holding it is storing the same content, so the blob is about to
  be referenced again, and the record is left for the next sweep. A sweep
  therefore never waits for a lock while it holds one, and cannot deadlock
  with a request.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from ..blobs.lifecycle import is_referenced, try_lock_blob
from ..blobs.store import BlobStore
from ..database.models import ReleasedBlob
from ..timestamps import utc_now
from .lookup import upsert_insert

log = logging.getLogger('ngshare.operations')

# Records taken per sweep transaction (each taken key is locked meanwhile).
SWEEP_BATCH = 100
# Keys recorded per INSERT statement (well under SQLite's variable limit).
RECORD_BATCH = 500


def hold_released(
    session: Session, keys: Iterable[str], *, now: datetime.datetime
) -> None:
    """Record ``keys`` as released at ``now``, in the caller's transaction.

    An upsert (``INSERT ... ON CONFLICT DO UPDATE``): a key released again
    gets the later time. Keys are written in sorted order, so that two
    writers (and a sweep, which takes its records in the same order) never
    wait for each other in a cycle.
    """
    keys = sorted(set(keys))
    for start in range(0, len(keys), RECORD_BATCH):
        rows = [
            {'key': key, 'released_at': now}
            for key in keys[start : start + RECORD_BATCH]
        ]
        insert = upsert_insert(session, ReleasedBlob.__table__)
        if insert is None:  # pragma: no cover - SQLite and PostgreSQL have it
            for row in rows:
                session.merge(ReleasedBlob(**row))
            continue
        insert = insert.values(rows)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=['key'],
                set_={'released_at': insert.excluded.released_at},
            )
        )


def release_in(
    session: Session,
    keys: list[str],
    *,
    grace_seconds: int,
    now: datetime.datetime | None = None,
) -> bool:
    """Record ``keys`` as released in ``session``'s transaction, unless the
    grace period is 0; whether they were (else the caller removes them, with
    :func:`ngshare.blobs.lifecycle.remove_unreferenced`, once the
    transaction commits)."""
    if grace_seconds <= 0:
        return False
    if keys:
        hold_released(session, keys, now=now or utc_now())
    return True


def sweep_released(
    writer: sessionmaker,
    store: BlobStore,
    *,
    grace_seconds: int,
    reader: sessionmaker | None = None,
    now: datetime.datetime | None = None,
) -> int:
    """Remove the blobs released over ``grace_seconds`` ago that no row
    refers to, and forget their records; return how many were removed.

    Records of blobs referenced again (the same content uploaded since) are
    simply forgotten. A blob that cannot be removed (the storage refusing)
    keeps its record, so the next sweep tries again.
    """
    cutoff = (now or utc_now()) - datetime.timedelta(seconds=grace_seconds)
    expired = exists().where(ReleasedBlob.released_at <= cutoff)
    if reader is not None:
        # A cheap look first: most sweeps find nothing, and on SQLite a write
        # transaction would take the write lock.
        with reader() as session:
            if not session.scalar(select(expired)):
                return 0
    removed = 0
    after = ''
    while True:
        with writer() as session:
            keys = session.scalars(
                select(ReleasedBlob.key)
                .where(ReleasedBlob.released_at <= cutoff, ReleasedBlob.key > after)
                .order_by(ReleasedBlob.key)
                .limit(SWEEP_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not keys:
                return removed
            for key in keys:
                if not try_lock_blob(session, key):
                    continue  # being stored again: next sweep forgets it
                if not is_referenced(session, key):
                    try:
                        store.delete(key)
                    except (OSError, ValueError) as error:
                        log.warning('Cannot remove released blob %s: %s', key, error)
                        continue
                    removed += 1
                session.execute(delete(ReleasedBlob).where(ReleasedBlob.key == key))
            session.commit()
        after = keys[-1]
        if len(keys) < SWEEP_BATCH:
            return removed


__all__ = ['hold_released', 'release_in', 'sweep_released']
