"""Blobs: the store interface (:mod:`.store`), its two implementations, a
local folder (:mod:`.folder`) and an S3-compatible bucket (:mod:`.s3`,
imported only for an ``s3://`` location, so that boto3 is needed only
there), and their life after storing (:mod:`.lifecycle`). :func:`open_store`
picks the implementation from the ``--storage`` value."""

from __future__ import annotations

from .folder import FolderStore
from .store import BlobStore

S3_SCHEME = 's3://'


def is_s3_location(location: str) -> bool:
    """Whether ``--storage`` names a bucket (``s3://BUCKET/PREFIX``)."""
    return str(location).startswith(S3_SCHEME)


def open_store(
    location: str, *, endpoint_url: str | None = None, path_style: bool = False
) -> BlobStore:
    """The blob store ``--storage`` names: ``s3://BUCKET/PREFIX`` (prefix
    optional) is an :class:`~.s3.S3Store`, anything else a local folder.

    The one place that tells the two apart. Nothing is contacted here (and
    boto3 is not imported): ``check_usable`` does that at start-up.
    ``endpoint_url`` and ``path_style`` apply to a bucket only; without an
    endpoint boto3 reads ``$AWS_ENDPOINT_URL`` or talks to AWS.
    """
    if is_s3_location(location):
        from .s3 import S3Store

        return S3Store.from_location(
            location, endpoint_url=endpoint_url, path_style=path_style
        )
    return FolderStore(location)


__all__ = ['S3_SCHEME', 'BlobStore', 'FolderStore', 'is_s3_location', 'open_store']
