"""Storing and reading blobs in tests the way ngshare does: the key computed
once from the content (``ngshare.blobs.store.blob_key``), the content read
back through the store's stream."""

from __future__ import annotations

from ngshare.blobs.store import BlobStore, blob_key


def put(store: BlobStore, content: bytes) -> tuple[str, bool]:
    """Store ``content``; its key and whether this call created the blob."""
    key = blob_key(content)
    return key, store.put(key, content)


def read(store: BlobStore, key: str) -> bytes:
    """The whole content of blob ``key``."""
    with store.open(key) as stream:
        return stream.read()
