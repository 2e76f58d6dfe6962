"""What every request handler shares: built once at start-up."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from .auth import Authenticator
from .blobs.store import BlobStore
from .config import Config


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
