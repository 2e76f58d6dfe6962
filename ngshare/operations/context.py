"""The unit of work an operation runs in."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..actor import Actor
from ..blobs.store import BlobStore


@dataclasses.dataclass
class Context:
    # A Session; for the one-statement reads on the event loop a Connection
    # (``runner.run_quick``), through which only Core statements run.
    session: Session | Connection
    store: BlobStore
    actor: Actor
    # Largest decoded size of one uploaded file, in bytes (None: no limit).
    max_file_size: int | None = None
    # Whether deleted courses and assignments are kept restorable.
    keep_deleted: bool = True
    # Blobs this unit of work created; removed again if it does not commit.
    created_blobs: list[str] = dataclasses.field(default_factory=list)
    # Blobs whose rows this unit of work deletes: recorded as released in
    # its transaction and removed after the grace period (at once after the
    # commit with a grace of 0), unless a row then refers to the same content.
    released_blobs: list[str] = dataclasses.field(default_factory=list)
