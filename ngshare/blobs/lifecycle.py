"""A blob's life after it is stored: the locks, the reference check, removal.

Every path that deletes blobs (a failed request's clean-up, the release
after a commit, the housekeeping sweep, ``ngshare-admin gc``) follows one
rule, kept here so that it is written once: a blob is deleted only in a
write transaction holding the exclusive blob lock, after checking inside it
that no row refers to the blob. A request storing the same content takes the
shared lock first (:func:`lock_blob` with ``shared=True``), so it either
committed its reference before that check, or stores the blob again after
the delete. On SQLite the write transaction's database lock is the blob
lock; on PostgreSQL it is an advisory lock per key, across replicas.

These functions take a session (or a session factory and a store), never a
request's Context or an actor: maintenance code has no caller to name. This
module imports nothing from ``operations``, ``gc``, ``admin`` or ``cli``, so
the request path and the admin tool both build on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Column, exists, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from ..database.models import Base, ReleasedBlob
from .store import BlobStore

log = logging.getLogger('ngshare.operations')


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == 'postgresql'


def lock_blob(session: Session, key: str, *, shared: bool) -> None:
    """Take the blob lock on ``key`` until the transaction ends: shared to
    store (or refer to) the blob, exclusive to delete it. Serialises blob
    writers and deleters across PostgreSQL replicas; nothing to do on SQLite
    (the write transaction holds the database lock)."""
    if not _is_postgresql(session):
        return
    function = 'pg_advisory_xact_lock_shared' if shared else 'pg_advisory_xact_lock'
    session.execute(text(f'SELECT {function}(hashtextextended(:key, 0))'), {'key': key})


def try_lock_blob(session: Session, key: str) -> bool:
    """Take the exclusive blob lock if nobody holds it; whether it was taken.

    For the sweep of released blobs, which must never wait for a lock while
    it holds others. On SQLite the caller's write lock is the blob lock.
    """
    if not _is_postgresql(session):
        return True
    return bool(
        session.scalar(
            text('SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))'),
            {'key': key},
        )
    )


def reference_columns() -> list[Column]:
    """The columns that refer to blobs: ``actual_name`` in every table of the
    models (``files``, and any table that keeps blobs alive besides it)."""
    return [
        table.c.actual_name
        for table in Base.metadata.sorted_tables
        if 'actual_name' in table.c
    ]


def is_referenced(session: Session, key: str) -> bool:
    """Whether some row refers to blob ``key`` (in the caller's transaction)."""
    return bool(
        session.scalar(
            select(or_(*(exists().where(c == key) for c in reference_columns())))
        )
    )


def is_released(session: Session, key: str) -> bool:
    """Whether ``key`` is recorded as released (and not swept yet)."""
    return bool(session.scalar(select(exists().where(ReleasedBlob.key == key))))


def remove_unreferenced(
    writer: sessionmaker,
    store: BlobStore,
    keys: Iterable[str],
    *,
    unless_released: bool = False,
) -> None:
    """Delete those of ``keys`` that no row refers to any more (and, with
    ``unless_released``, that are not waiting out the grace period).

    Runs in a write transaction of its own, opened with ``writer``: on
    SQLite that holds the write lock, on PostgreSQL the exclusive blob lock
    is taken per key. Never raises: a failure is logged, and what is left
    behind is garbage ``ngshare-admin gc`` removes.
    """
    keys = list(dict.fromkeys(keys))
    if not keys:
        return
    try:
        with writer() as session:
            session.execute(select(1))  # take the write lock first (SQLite)
            for key in keys:
                lock_blob(session, key, shared=False)
                if is_referenced(session, key):
                    continue
                if unless_released and is_released(session, key):
                    continue
                store.delete(key)
            session.commit()
    except Exception:
        log.exception('Could not remove unreferenced blobs (ngshare-admin gc will)')


__all__ = [
    'is_referenced',
    'is_released',
    'lock_blob',
    'reference_columns',
    'remove_unreferenced',
    'try_lock_blob',
]
