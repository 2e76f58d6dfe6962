"""What every request handler shares: built once at start-up."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from .auth import Authenticator
from .blobs.store import BlobStore
from .config import Config
from .encoded_cache import EncodedCache


@dataclasses.dataclass
class Runtime:
    config: Config
    engine: Engine
    reader: sessionmaker
    writer: sessionmaker
    store: BlobStore
    authenticator: Authenticator
    # Bounded pool for database work, base64, hashing and disk I/O, so the
    # event loop never blocks on them.
    pool: ThreadPoolExecutor
    # Where write transactions run: on SQLite one thread (see
    # writer_pool_for), elsewhere (None) the pool.
    write_pool: ThreadPoolExecutor | None = None
    # The downloads that record their history entry (database/engine.py's
    # ``make_recorder_factory``); None: the writer (tests' runtimes).
    recorder: sessionmaker | None = None
    # The base64 texts of small blobs sent lately (--download-cache-size),
    # reused by the next answers that send them; disabled unless given.
    encoded_cache: EncodedCache = dataclasses.field(
        default_factory=lambda: EncodedCache(0)
    )

    @property
    def writes(self) -> ThreadPoolExecutor:
        """The executor of write transactions."""
        return self.write_pool or self.pool

    def shutdown(self) -> None:
        """Stop the executors, after the work they have started."""
        for executor in (self.pool, self.write_pool):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)


def writer_pool_for(engine: Engine) -> ThreadPoolExecutor | None:
    """One writer thread per process on SQLite, none elsewhere.

    SQLite has one write lock per database. Writers that each take it from
    a thread of their own poll for it (the busy handler sleeps and tries
    again, longer each time), so under load some wait far longer than
    others and the order they get it in is chance. Run by one thread, the
    write transactions queue in the order they were submitted and each
    starts the moment the previous one commits; everything slow about an
    upload (decoding, hashing, writing blobs) happens before, in the pool
    (:mod:`ngshare.operations.uploads`). Other processes on the same file
    (``ngshare-admin``) still meet the busy timeout. PostgreSQL's writers
    lock rows, not the database, and run in the pool side by side.
    """
    if engine.dialect.name != 'sqlite':
        return None
    return ThreadPoolExecutor(1, thread_name_prefix='ngshare-writer')
