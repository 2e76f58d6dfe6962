"""Storage garbage collection and verification, for ``ngshare-admin``.

The store (a folder, or a bucket under a prefix) holds one file (object) per
blob: ``sha256/ab/cd/<sha256>`` for files written by this version, flat UUID
names for files written by ngshare 0.6.0. The service removes a blob when
the last row referring to it goes, but some files outlive their rows: 0.6.0
never removed the files of a deleted assignment, the 0.6.0 migration
deletes rows that belong to nothing, and a crash can leave a blob or a
temporary file (a start-up probe) behind. This module finds them
(:func:`take_inventory`: a store's listing and a set of keys in, a list
out), removes them safely (:func:`delete_orphans`), and checks that every
row's blob is intact (:func:`verify_blobs`). It goes through the
:class:`~ngshare.blobs.store.BlobStore` interface only, so a folder and a
bucket are treated alike.

Removal is safe against a running service on the same database and folder:

* a file is a candidate only if no row refers to it (no ``actual_name`` of
  ``files``, or of any other table of the models that keeps blobs alive) and
  it is older than a grace period, so the blob of a request in flight (written
  before its row commits) and temporary files being written are left alone;
* a blob the service released (its last row dropped) less than the grace
  period ago is left alone too, and reported apart: a download may still be
  streaming it, and the service removes it itself once its own
  ``--released-blob-grace`` is over (see :mod:`ngshare.operations.released`);
* each candidate is removed in a write transaction holding the lock the
  service takes for blob deletions (on SQLite the database write lock, on
  PostgreSQL an exclusive advisory lock per blob; see
  :func:`ngshare.blobs.lifecycle.lock_blob`), after checking again inside it
  that no row refers to the file and that it is still old. A request storing
  the same content either committed its row before that check (the file is
  kept) or stores the blob again after the removal.

Never touched: folders (empty shard folders are harmless, and removing one
could race a request creating a blob in it), the login cookie secret
``ngshare_cookie_secret`` (a file of the storage folder with PostgreSQL, an
object under the bucket's prefix shared by every replica), the SQLite
database files when they live in the storage folder, and in a folder
anything that is not a regular file or a symbolic link.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterable

from sqlalchemy import Engine, exists, inspect, select, text, union
from sqlalchemy.orm import sessionmaker

from .blobs.folder import FolderStore
from .blobs.lifecycle import is_referenced, lock_blob, reference_columns
from .blobs.store import BlobStore, StoredFile
from .config import COOKIE_SECRET_NAME
from .database.engine import make_session_factories
from .database.models import ReleasedBlob
from .database.urls import sqlite_file

DEFAULT_GRACE_SECONDS = 3600
# Candidates removed per write transaction: on SQLite the service waits for
# the write lock meanwhile, so it is released every so often.
DELETE_BATCH = 100
HASH_CHUNK = 1024 * 1024
# How far the modification times of one file may differ between a listing
# and a stat (S3: ListObjects has milliseconds, HeadObject whole seconds).
MTIME_SLACK = 1.0


@dataclasses.dataclass
class Inventory:
    """What :func:`take_inventory` found in the store."""

    # Unreferenced and older than the grace period: garbage.
    orphans: list[StoredFile] = dataclasses.field(default_factory=list)
    # Unreferenced but younger than the grace period: left alone this time
    # (a request may be about to commit a row referring to it).
    recent: list[StoredFile] = dataclasses.field(default_factory=list)
    # Unreferenced, but released by the service less than the grace period
    # ago: a download may still read them; the service removes them itself.
    released: list[StoredFile] = dataclasses.field(default_factory=list)
    # Files some row refers to.
    referenced: int = 0
    # Files ngshare keeps in the store that are not blobs (cookie secret,
    # SQLite database files in a storage folder): never reported, never
    # removed.
    protected: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class GarbageCollection:
    """The outcome of :func:`collect_garbage`."""

    inventory: Inventory
    deleted: list[StoredFile] = dataclasses.field(default_factory=list)
    # Candidates found referenced, renewed or gone when checked again under
    # the lock.
    kept: list[StoredFile] = dataclasses.field(default_factory=list)
    # Candidates that could not be removed, with the reason.
    failed: list[tuple[StoredFile, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BadBlob:
    """A ``files`` row whose blob is missing or does not match the row."""

    file_id: int
    key: str
    reason: str


@dataclasses.dataclass
class Verification:
    """The outcome of :func:`verify_blobs`."""

    rows: int = 0
    blobs: int = 0
    problems: list[BadBlob] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------
# finding garbage


def take_inventory(
    store: BlobStore | str | os.PathLike[str],
    referenced: Collection[str],
    *,
    now: float,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    protected_paths: Iterable[str | os.PathLike[str]] = (),
    released: Collection[str] = (),
) -> Inventory:
    """Sort what ``store`` holds (a store, or a folder's path) into
    referenced, protected, released, recent and orphaned files.

    ``referenced`` holds the keys rows refer to, ``released`` those released
    less than the grace period ago; ``protected_paths`` are local files never
    to report (the SQLite database, which only a storage folder can hold).
    A file is recent if modified less than ``grace_seconds`` before ``now``
    (or in the future). The listing is the store's ``iter_files``: in a
    folder, folders are walked, not followed through symbolic links, and
    never reported themselves.
    """
    if not hasattr(store, 'iter_files'):
        store = FolderStore(store)
    root = store.root if isinstance(store, FolderStore) else None
    protected = {os.path.realpath(path) for path in protected_paths}
    inventory = Inventory()
    for found in store.iter_files():
        key = found.key
        if key in referenced:
            inventory.referenced += 1
        elif key.rsplit('/', 1)[-1] == COOKIE_SECRET_NAME or (
            root is not None and os.path.realpath(root / key) in protected
        ):
            inventory.protected.append(key)
        elif key in released:
            inventory.released.append(found)
        elif now - found.mtime < grace_seconds:
            inventory.recent.append(found)
        else:
            inventory.orphans.append(found)
    return inventory


def referenced_keys(engine: Engine) -> set[str]:
    """The keys of all blobs some row refers to."""
    with engine.connect() as connection:
        return set(
            connection.scalars(
                union(*(select(column) for column in reference_columns()))
            )
        )


def released_since(connection, cutoff: float) -> set[str]:
    """The keys the service released at or after ``cutoff`` (a Unix time)."""
    return set(
        connection.scalars(
            select(ReleasedBlob.key).where(ReleasedBlob.released_at >= _utc(cutoff))
        )
    )


def _utc(moment: float) -> datetime.datetime:
    """A Unix time as the naive UTC datetime the schema stores."""
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).replace(
        tzinfo=None
    )


def database_files(database_url: str) -> list[str]:
    """The files of a SQLite database (journal and WAL files included); none
    for other databases."""
    database = sqlite_file(database_url)
    if database is None:
        return []
    path = os.path.abspath(database)
    return [path] + [path + suffix for suffix in ('-journal', '-wal', '-shm')]


# --------------------------------------------------------------------------
# removing garbage


def delete_orphans(
    writer: sessionmaker,
    store: BlobStore,
    candidates: Iterable[StoredFile],
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> GarbageCollection:
    """Remove ``candidates`` that are still garbage; the result lists the
    deleted, kept and failed ones (its inventory is empty).

    ``writer`` makes write sessions (``BEGIN IMMEDIATE`` on SQLite, READ
    COMMITTED on PostgreSQL: the check after each lock is a fresh statement,
    so it sees a reference committed while it waited). Each candidate is
    checked again under the blob lock: still unreferenced, still the same
    file, still older than the grace period, not released within it.
    """
    result = GarbageCollection(Inventory())
    candidates = list(candidates)
    for start in range(0, len(candidates), DELETE_BATCH):
        with writer() as session:
            session.execute(select(1))  # take the write lock first (SQLite)
            for candidate in candidates[start : start + DELETE_BATCH]:
                lock_blob(session, candidate.key, shared=False)
                cutoff = clock() - grace_seconds
                if not _still_garbage(session, store, candidate, cutoff):
                    result.kept.append(candidate)
                    continue
                try:
                    store.delete(candidate.key)
                except OSError as error:
                    result.failed.append((candidate, error.strerror or str(error)))
                else:
                    result.deleted.append(candidate)
            session.commit()
    return result


def _still_garbage(
    session, store: BlobStore, candidate: StoredFile, cutoff: float
) -> bool:
    if is_referenced(session, candidate.key):
        return False
    if session.scalar(
        select(
            exists().where(
                ReleasedBlob.key == candidate.key,
                ReleasedBlob.released_at >= _utc(cutoff),
            )
        )
    ):
        return False
    current = store.stat(candidate.key)
    if current is None:
        return False
    # Still the file the scan saw: an object store's listing and its HEAD
    # may round the modification time differently (milliseconds against
    # seconds), hence the slack; a file stored again since is young anyway.
    return (
        current.size == candidate.size
        and abs(current.mtime - candidate.mtime) < MTIME_SLACK
        and current.mtime <= cutoff
    )


def collect_garbage(
    engine: Engine,
    store: BlobStore,
    *,
    delete: bool,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    protected_paths: Iterable[str | os.PathLike[str]] = (),
    clock: Callable[[], float] = time.time,
) -> GarbageCollection:
    """Find the orphans of ``store`` and, with ``delete``, remove them.

    The database must be at the schema of the models (the caller checks).
    """
    referenced = referenced_keys(engine)
    now = clock()
    with engine.connect() as connection:
        released = released_since(connection, now - grace_seconds)
    inventory = take_inventory(
        store,
        referenced,
        now=now,
        grace_seconds=grace_seconds,
        protected_paths=protected_paths,
        released=released,
    )
    result = GarbageCollection(inventory)
    if delete and inventory.orphans:
        _reader, writer = make_session_factories(engine)
        removal = delete_orphans(
            writer, store, inventory.orphans, grace_seconds=grace_seconds, clock=clock
        )
        result.deleted, result.kept, result.failed = (
            removal.deleted,
            removal.kept,
            removal.failed,
        )
    return result


# --------------------------------------------------------------------------
# verifying blobs


def verify_blobs(engine: Engine, store: BlobStore) -> Verification:
    """Check that every ``files`` row's blob exists and matches the row.

    The md5 of the content must equal the row's ``checksum``, its length the
    row's ``size`` (where known), and a content-addressed blob's sha256 its
    name. Works on every schema revision (0.6.0's included): it reads only
    the ``files`` columns all of them have. Each blob is read once however
    many rows share it.
    """
    with engine.connect() as connection:
        columns = {c['name'] for c in inspect(connection).get_columns('files')}
        size = 'size' if 'size' in columns else 'NULL'
        query = f'SELECT _id, actual_name, checksum, {size} FROM files ORDER BY _id'  # noqa: S608
        rows = connection.execute(text(query)).all()
    result = Verification(rows=len(rows))
    digests: dict[str, tuple[int, str, str] | str] = {}
    for file_id, key, checksum, recorded_size in rows:
        if key not in digests:
            digests[key] = _digest(store, key)
        digest = digests[key]
        if isinstance(digest, str):
            result.problems.append(BadBlob(file_id, key, digest))
            continue
        length, md5, sha256 = digest
        if md5 != checksum:
            reason = f'md5 {md5} does not match the checksum {checksum}'
        elif recorded_size is not None and recorded_size != length:
            reason = f'{length} bytes, the row records {recorded_size}'
        elif key.startswith('sha256/') and key.rsplit('/', 1)[-1] != sha256:
            reason = f'content has sha256 {sha256}, not the one it is named by'
        else:
            continue
        result.problems.append(BadBlob(file_id, key, reason))
    result.blobs = len(digests)
    return result


def _digest(store: BlobStore, key: str | None) -> tuple[int, str, str] | str:
    """(length, md5, sha256) of a blob, or why it cannot be read."""
    md5 = hashlib.md5()  # noqa: S324 (the checksum the API documents)
    sha256 = hashlib.sha256()
    length = 0
    try:
        with store.open(key or '') as stream:
            while chunk := stream.read(HASH_CHUNK):
                md5.update(chunk)
                sha256.update(chunk)
                length += len(chunk)
    except ValueError:
        return 'illegal blob name'
    except FileNotFoundError:
        return 'missing'
    except OSError as error:
        if error.errno == errno.EISDIR:
            return 'not a file'
        return f'unreadable: {error.strerror or error}'
    return length, md5.hexdigest(), sha256.hexdigest()


__all__ = [
    'COOKIE_SECRET_NAME',
    'DEFAULT_GRACE_SECONDS',
    'BadBlob',
    'GarbageCollection',
    'Inventory',
    'StoredFile',
    'Verification',
    'collect_garbage',
    'database_files',
    'delete_orphans',
    'referenced_keys',
    'released_since',
    'take_inventory',
    'verify_blobs',
]
