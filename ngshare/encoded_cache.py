"""The base64 texts of small blobs, kept for the next answer that sends them.

A release is fetched by every student of a course, often within minutes:
without this, each fetch reads the same blobs from the store and
base64-encodes them again (a third of a fetch's time). A blob key always
names the same content (the sha256 of the content; a file 0.6.0 wrote keeps
its name, and nothing writes under it again), so an entry can never be
stale: a changed file is another key, and nothing has to be invalidated.

The memory is bounded by bytes, not by entries: a byte-bounded LRU whose
entries are the encoded pieces of whole blobs (as
:mod:`ngshare.handlers.downloads` writes them). An answer that streams a
blob not yet cached collects its pieces to cache them only under a
*reservation* of their size, taken before the first piece is kept: entries
plus reservations never exceed the limit, whatever the number of answers
missing at once, and two answers never collect the same blob. A file larger
than a quarter of the limit is never cached (it would evict most of the rest
for one entry), so large downloads stream as before and hold nothing here.

Thread-safe (one lock); the downloads use it from the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ['ENTRY_OVERHEAD', 'EncodedCache', 'Fill']

# What an entry costs beyond its pieces (the key, the tuple, the bytes
# objects' headers, the dictionary's slot), charged so that many tiny files
# cannot hold more memory than the limit says.
ENTRY_OVERHEAD = 512


class EncodedCache:
    """At most ``limit`` bytes of encoded blobs; ``limit`` 0 disables it."""

    def __init__(self, limit: int):
        self.limit = max(0, int(limit))
        self._lock = threading.Lock()
        # key -> (pieces, encoded length); least recently used first.
        self._entries: OrderedDict[str, tuple[tuple[bytes, ...], int]] = OrderedDict()
        self._filling: set[str] = set()
        self._held = 0
        self._reserved = 0

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    @staticmethod
    def cost(length: int) -> int:
        """The bytes an entry of ``length`` encoded bytes is charged."""
        return length + ENTRY_OVERHEAD

    def cacheable(self, length: int) -> bool:
        """Whether a blob of ``length`` encoded bytes may be cached at all."""
        return self.enabled and self.cost(length) <= self.limit // 4

    def get(self, key: str) -> tuple[tuple[bytes, ...], int] | None:
        """The pieces of ``key`` and their total length, now the most
        recently used; None when not cached."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` is cached (its place in the LRU order unchanged)."""
        with self._lock:
            return key in self._entries

    def usage(self) -> tuple[int, int, int]:
        """``(bytes held by entries, bytes reserved, number of entries)``."""
        with self._lock:
            return self._held, self._reserved, len(self._entries)

    def clear(self) -> None:
        """Drop every entry (reservations of fills under way stay theirs)."""
        with self._lock:
            self._entries.clear()
            self._held = 0

    def reserve(self, key: str, length: int) -> Fill | None:
        """Room to collect the ``length`` encoded bytes of ``key``, or None:
        not cacheable, already cached, being collected by another answer, or
        no room while other reservations hold it. Least recently used
        entries are evicted to make the room."""
        if not self.cacheable(length):
            return None
        charge = self.cost(length)
        with self._lock:
            if key in self._entries or key in self._filling:
                return None
            if self._reserved + charge > self.limit:
                return None
            while self._held + self._reserved + charge > self.limit:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._held -= self.cost(evicted)
            self._reserved += charge
            self._filling.add(key)
        return Fill(self, key, length)

    def _settle(self, key: str, length: int, pieces: tuple | None) -> None:
        """End a reservation: its pieces become an entry, or are dropped."""
        charge = self.cost(length)
        with self._lock:
            self._reserved -= charge
            self._filling.discard(key)
            if pieces is not None:
                self._entries[key] = (pieces, length)
                self._held += charge


class Fill:
    """The pieces of one blob collected under a reservation of its length.

    :meth:`commit` caches them if they are exactly the length reserved (the
    whole blob, read to its end); anything else, or :meth:`release`, drops
    them and frees the reservation. Either may be called any number of
    times: only the first counts.
    """

    def __init__(self, cache: EncodedCache, key: str, length: int):
        self.cache = cache
        self.key = key
        self.length = length
        self._pieces: list[bytes] | None = []
        self._collected = 0

    @property
    def open(self) -> bool:
        return self._pieces is not None

    def add(self, piece: bytes) -> None:
        """Keep ``piece``; more than the reservation ends the fill."""
        if self._pieces is None:
            return
        self._collected += len(piece)
        if self._collected > self.length:
            self.release()
            return
        self._pieces.append(piece)

    def commit(self) -> bool:
        """Cache the pieces if they are the whole blob; whether they were."""
        pieces, self._pieces = self._pieces, None
        if pieces is None:
            return False
        whole = self._collected == self.length
        self.cache._settle(self.key, self.length, tuple(pieces) if whole else None)
        return whole

    def release(self) -> None:
        """Drop what was collected, free the reservation."""
        if self._pieces is None:
            return
        self._pieces = None
        self.cache._settle(self.key, self.length, None)
