"""Blobs: the store interface (:mod:`.store`), its local-folder
implementation (:mod:`.folder`), and their life after storing
(:mod:`.lifecycle`). :func:`open_store` picks the implementation from the
``--storage`` value."""

from __future__ import annotations

from .folder import FolderStore
from .store import BlobStore


def open_store(location: str) -> BlobStore:
    """The blob store ``--storage`` names: today always a local folder.

    Where a second implementation comes (object storage), this is the one
    place that tells the two apart (e.g. by a ``s3://`` prefix).
    """
    return FolderStore(location)


__all__ = ['BlobStore', 'FolderStore', 'open_store']
