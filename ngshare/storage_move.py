"""Moving a deployment's blobs between stores: ``ngshare-admin storage copy``.

An administrator moves an existing deployment from its storage folder to a
bucket (or back) without a long stop: copy while the service runs, stop it,
copy again (only what is new), restart on the new ``--storage``. This
module does the copying; :mod:`ngshare.admin` the command around it. It is a
maintenance tool: nothing on the request path imports it.

What is copied is what the database refers to (every ``actual_name`` the
lifecycle counts as a reference: files rows and the blobs of deleted items
kept restorable), under the same keys, the flat UUID names of 0.6.0
included. Garbage, temporary files, the cookie secret and the SQLite files
are not blobs and stay behind.

Each blob is checked as it streams through, in pieces (memory bounded per
blob, whatever its size): a content-addressed key
(``sha256/ab/cd/<sha256>``) against the sha256 it is named by, a 0.6.0 name
against the md5 its rows record (else their size). A blob whose source
does not match is not left at the destination, and is reported, with the
missing ones; the command then exits non-zero, since the move would lose
data the source has lost already.

Resumable: a blob already at the destination is read and checked, and
skipped if intact (replaced if not); with ``trust_existing`` (the second
pass, during the stop) an object of the right size is skipped unread.
Writes are whole or nothing (the store's ``put_stream``: a temporary file
renamed into place, one PUT or a multipart upload that becomes an object
only when complete), so a run killed half way leaves no partial object
under a blob's key, and running the command again finishes the job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import BinaryIO

from sqlalchemy import Engine, select, text, union

from .blobs.lifecycle import reference_columns
from .blobs.store import BlobStore, BlobStoreFailure

CHUNK = 1024 * 1024
DEFAULT_JOBS = 4
SHA256_PREFIX = 'sha256/'

# What became of one blob.
COPIED = 'copied'  # was not at the destination; copied and checked
REPLACED = 'replaced'  # the destination held other bytes; copied again
PRESENT = 'present'  # at the destination already, read and intact
TRUSTED = 'trusted'  # at the destination already with the right size
MISSING = 'missing'  # not in the source
CORRUPT = 'corrupt'  # in the source, but not the content its rows name
UNREADABLE = 'unreadable'  # the source refused to read it


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the database says a blob must be: its key and, for a 0.6.0
    name, the md5 checksums and sizes its rows record (usually one each)."""

    key: str
    md5s: frozenset[str] = frozenset()
    sizes: frozenset[int] = frozenset()

    def problem(self, length: int, md5: str, sha256: str) -> str | None:
        """Why content of this length and digests is not this blob, or None."""
        if self.key.startswith(SHA256_PREFIX):
            named = self.key.rsplit('/', 1)[-1]
            if sha256 != named:
                return f'content has sha256 {sha256}, not the one it is named by'
            return None
        if self.md5s and self.md5s != {md5}:
            return f'md5 {md5}, the rows record {", ".join(sorted(self.md5s))}'
        if not self.md5s and self.sizes and self.sizes != {length}:
            recorded = ', '.join(str(size) for size in sorted(self.sizes))
            return f'{length} bytes, the rows record {recorded}'
        return None

    @property
    def checkable(self) -> bool:
        """Whether content can be checked against this blob at all (not for
        a 0.6.0 name whose rows record neither checksum nor size)."""
        return self.key.startswith(SHA256_PREFIX) or bool(self.md5s or self.sizes)

    def size_matches(self, size: int) -> bool:
        """Whether a stored object of ``size`` bytes may be this blob
        (unknown when no row records a size: then it must be read)."""
        return bool(self.sizes) and self.sizes == {size}


@dataclasses.dataclass(frozen=True)
class Outcome:
    key: str
    status: str
    size: int = 0
    reason: str = ''


@dataclasses.dataclass
class CopyReport:
    """The outcome of :func:`copy_blobs`, counted by status."""

    outcomes: list[Outcome] = dataclasses.field(default_factory=list)

    def of(self, *statuses: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def problems(self) -> list[Outcome]:
        return self.of(MISSING, CORRUPT, UNREADABLE)


class DestinationFailure(Exception):
    """The destination refused a write: the copy stops (every blob copied
    so far stays, a new run goes on from there)."""

    def __init__(self, key: str, error: OSError):
        advice = error.advice() if isinstance(error, BlobStoreFailure) else str(error)
        super().__init__(f'cannot write {key} to the destination: {advice}')


# --------------------------------------------------------------------------
# what the database refers to


def expected_blobs(engine: Engine) -> dict[str, Expected]:
    """Every blob the database refers to, by key, with what its rows
    record: ``files`` rows, and the file entries kept in deleted items'
    payloads (whose blobs ``deleted_blobs`` keeps referenced)."""
    md5s: dict[str, set[str]] = {}
    sizes: dict[str, set[int]] = {}

    def record(key, checksum, size) -> None:
        if checksum:
            md5s.setdefault(key, set()).add(checksum)
        if size is not None:
            sizes.setdefault(key, set()).add(int(size))

    with engine.connect() as connection:
        keys = set(
            connection.scalars(
                union(*(select(column) for column in reference_columns()))
            )
        )
        rows = connection.execute(text('SELECT actual_name, checksum, size FROM files'))
        for key, checksum, size in rows:
            record(key, checksum, size)
        payloads = connection.scalars(text('SELECT payload FROM deleted_items'))
        for payload in payloads:
            for entry in _file_entries(json.loads(payload)):
                record(entry['actual_name'], entry.get('checksum'), entry.get('size'))
    return {
        key: Expected(key, frozenset(md5s.get(key, ())), frozenset(sizes.get(key, ())))
        for key in sorted(key for key in keys if key)
    }


def _file_entries(payload) -> Iterator[dict]:
    """The file entries (dicts with an ``actual_name``) of a deleted item."""
    if isinstance(payload, dict):
        if isinstance(payload.get('actual_name'), str):
            yield payload
        for value in payload.values():
            yield from _file_entries(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _file_entries(value)


def referenced_now(engine: Engine, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` that some row still refers to (a blob missing from
    a running service's source may have been deleted with its rows)."""
    current = set(expected_blobs(engine))
    return {key for key in keys if key in current}


# --------------------------------------------------------------------------
# one blob


class HashingReader:
    """A source stream that digests what is read from it, in the reader's
    pieces, and remembers a failure of the source (so that a failed write
    is blamed on the right store, however the writer wraps the error)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.md5 = hashlib.md5()  # noqa: S324 (the checksum 0.6.0 rows record)
        self.sha256 = hashlib.sha256()
        self.length = 0
        self.failure: OSError | None = None

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes; everything left for ``read()`` (as a file
        does: a writer asks so only for what it knows is small)."""
        if size is None or size < 0:
            return b''.join(iter(lambda: self.read(CHUNK), b''))
        try:
            chunk = self._stream.read(size)
        except OSError as error:
            self.failure = error
            raise
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.length += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def digests(self) -> tuple[int, str, str]:
        return self.length, self.md5.hexdigest(), self.sha256.hexdigest()


def digest(store: BlobStore, key: str) -> tuple[int, str, str]:
    """(length, md5, sha256) of a stored blob, read in pieces."""
    with store.open(key) as stream:
        reader = HashingReader(stream)
        while reader.read(CHUNK):
            pass
    return reader.digests()


def copy_blob(
    source: BlobStore, target: BlobStore, expected: Expected, *, trust_existing: bool
) -> Outcome:
    """Copy one blob unless the destination holds it intact already.

    Raises :class:`DestinationFailure` if the destination refuses; what
    the source refuses is the outcome (missing, unreadable, corrupt).
    """
    key = expected.key
    try:
        there = _intact_at(target, expected, trust_existing=trust_existing)
    except ValueError:  # a name no store may hold (it would leave the store)
        return Outcome(key, UNREADABLE, reason='illegal blob name in the database')
    except OSError as error:
        raise DestinationFailure(key, error) from error
    if isinstance(there, Outcome):
        return there
    try:
        stream = source.open(key)
    except FileNotFoundError:
        return Outcome(key, MISSING, reason='missing from the source')
    except OSError as error:
        return Outcome(key, UNREADABLE, reason=f'unreadable in the source: {error}')
    reader = HashingReader(stream)
    try:
        with stream:
            target.put_stream(key, reader)
    except OSError as error:
        if reader.failure is not None:
            return Outcome(key, UNREADABLE, reason=f'unreadable in the source: {error}')
        raise DestinationFailure(key, error) from error
    length, md5, sha256 = reader.digests()
    problem = expected.problem(length, md5, sha256)
    if problem:
        # Bad bytes are no copy: leave nothing (a new run tries again).
        try:
            target.delete(key)
        except OSError as error:
            raise DestinationFailure(key, error) from error
        return Outcome(key, CORRUPT, length, f'corrupt in the source: {problem}')
    return Outcome(key, REPLACED if there else COPIED, length)


def _intact_at(target: BlobStore, expected: Expected, *, trust_existing: bool):
    """An outcome if ``target`` holds the blob already (intact, or of the
    right size when trusted); else whether an object (of other bytes) is
    there to replace."""
    there = target.stat(expected.key)
    if there is None:
        return False
    if trust_existing and expected.size_matches(there.size):
        return Outcome(expected.key, TRUSTED, there.size)
    if not expected.checkable:
        return True  # nothing to check it against: copy it again
    try:
        length, md5, sha256 = digest(target, expected.key)
    except FileNotFoundError:
        return False
    if expected.problem(length, md5, sha256):
        return True
    return Outcome(expected.key, PRESENT, length)


# --------------------------------------------------------------------------
# every blob


def copy_blobs(
    source: BlobStore,
    target: BlobStore,
    expected: Iterable[Expected],
    *,
    jobs: int = DEFAULT_JOBS,
    trust_existing: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy every expected blob from ``source`` to ``target``, ``jobs`` at
    a time (each blob streamed, so memory is bounded per job). Raises
    :class:`DestinationFailure` (after the blobs in flight finish) if the
    destination refuses a write; ``progress`` is told the number done."""
    report = CopyReport()
    pending = iter(expected)
    running: set = set()
    failure: DestinationFailure | None = None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while True:
            while failure is None and len(running) < 2 * max(1, jobs):
                item = next(pending, None)
                if item is None:
                    break
                running.add(
                    pool.submit(
                        copy_blob, source, target, item, trust_existing=trust_existing
                    )
                )
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    report.outcomes.append(future.result())
                except DestinationFailure as error:
                    failure = failure or error
                if progress is not None:
                    progress(len(report.outcomes))
    if failure is not None:
        raise failure
    report.outcomes.sort(key=lambda outcome: outcome.key)
    return report


__all__ = [
    'COPIED',
    'CORRUPT',
    'DEFAULT_JOBS',
    'MISSING',
    'PRESENT',
    'REPLACED',
    'TRUSTED',
    'UNREADABLE',
    'CopyReport',
    'DestinationFailure',
    'Expected',
    'Outcome',
    'copy_blob',
    'copy_blobs',
    'expected_blobs',
    'referenced_now',
]
