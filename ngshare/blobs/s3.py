"""The blob store as an S3-compatible bucket (``--storage s3://BUCKET/PREFIX``).

Each blob is one object, at ``PREFIX/<key>`` for the very keys the folder
uses (``sha256/ab/cd/<sha256>``, or a 0.6.0 UUID name), so that moving a
deployment between a folder and a bucket copies keys unchanged. The same
guarantees as the folder, by the means an object store has:

* **whole or nothing**: a blob is written with one PUT of the whole body
  (with its Content-MD5, which the store checks): the object appears
  complete or not at all, and a failed or killed upload leaves nothing;
* **streamed reads**: :meth:`S3Store.open` returns the GET's body, read
  from the socket in the pieces the caller asks for, never whole;
* the blob locks and the rule "delete only after checking, under the
  exclusive lock, that no row refers to it" are the database's
  (:mod:`.lifecycle`) and apply unchanged.

Everything about the connection (credentials, region, endpoint, IAM role or
web identity) comes from boto3's own chain (``AWS_*`` variables, shared
config, instance or pod metadata); ngshare reads no variable itself, and
only ``--s3-endpoint-url`` and ``--s3-path-style`` override it. Timeouts
and retries are bounded (:mod:`.s3_client`, where the client is made) so
that an unreachable store answers in bounded time.
Refusals are :class:`~.store.ObjectStoreFailure` (503, or 507 for a quota),
a missing object on reading ``FileNotFoundError``, as for the folder.

boto3 (``pip install "ngshare[s3]>=1.0.0.dev0"``) is imported on first
use only, by :mod:`.s3_client`, so a deployment on a folder needs none of
it: reading its errors (:mod:`.s3_errors`) and wrapping its streams
(:mod:`.s3_streams`) need no import of it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..paths import is_legal_path
from .s3_client import SCHEME, make_client, parse_location
from .s3_errors import (
    CONFLICT_CODES,
    NOT_FOUND_CODES,
    PRECONDITION_CODES,
    UNSUPPORTED_CODES,
    error_code,
    unusable,
)
from .s3_streams import ObjectReader, Source, SourceError
from .store import (
    PROBE_PREFIX,
    BlobStoreFailure,
    ObjectStoreFailure,
    StorageError,
    StoredFile,
)

# ``put_stream``: one PUT up to this size, else a multipart upload of parts
# this size, one at a time: the memory an upload holds.
STREAM_PART_SIZE = 8 * 1024 * 1024


class S3Store:
    """A :class:`~.store.BlobStore` keeping each blob as an object in a bucket.

    Thread-safe (one boto3 client, created on first use, shared by the
    worker threads). Constructing one contacts nothing; :meth:`check_usable`
    does, at start-up.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = '',
        *,
        endpoint_url: str | None = None,
        path_style: bool = False,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip('/')
        self.endpoint_url = endpoint_url or None
        self.path_style = path_style
        self._client = None
        self._client_lock = threading.Lock()
        self._conditional_puts = True

    @classmethod
    def from_location(
        cls, location: str, *, endpoint_url: str | None = None, path_style: bool = False
    ) -> S3Store:
        bucket, prefix = parse_location(location)
        return cls(bucket, prefix, endpoint_url=endpoint_url, path_style=path_style)

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``, as messages show it."""
        return (
            f'{SCHEME}{self.bucket}/{self.prefix}'
            if self.prefix
            else f'{SCHEME}{self.bucket}'
        )

    # -- the client ---------------------------------------------------------

    @property
    def client(self):
        """The boto3 S3 client (credentials, region and endpoint from
        boto3's chain; bounded timeouts and retries)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self):
        client, self._conditional_puts = make_client(
            self.location, endpoint_url=self.endpoint_url, path_style=self.path_style
        )
        return client

    @property
    def endpoint(self) -> str:
        """The endpoint boto3 resolved (``--s3-endpoint-url``,
        ``$AWS_ENDPOINT_URL``, or AWS's for the region)."""
        return self.endpoint_url or self.client.meta.endpoint_url

    def _endpoint_known(self) -> str | None:
        """The endpoint, if known without creating a client."""
        if self.endpoint_url or self._client is None:
            return self.endpoint_url
        return self._client.meta.endpoint_url

    def object_key(self, key: str) -> str:
        """The object of blob ``key``. Keys are checked as the folder checks
        paths: some stores (a filer behind the gateway) normalise ``..``,
        which would leave the prefix."""
        if not is_legal_path(key):
            raise ValueError(f'illegal blob key {key!r}')
        return f'{self.prefix}/{key}' if self.prefix else key

    def _inside(self, key: str) -> str:
        """The object of any key :meth:`iter_files` may list."""
        parts = key.split('/')
        if not key or any(part in ('', '.', '..') for part in parts):
            raise ValueError(f'illegal blob key {key!r}')
        return f'{self.prefix}/{key}' if self.prefix else key

    def _failure(
        self, error: BaseException, action: str, key: str
    ) -> ObjectStoreFailure:
        code, message, status = error_code(error)
        return ObjectStoreFailure(
            action=action,
            relative=key,
            location=self.location,
            code=code,
            message=message,
            endpoint=self._endpoint_known(),
            status=status,
        )

    @contextlib.contextmanager
    def _failures(self, action: str, key: str):
        """The client's errors as :class:`~.store.ObjectStoreFailure`."""
        try:
            yield
        except SourceError as error:
            raise error.error from None
        except (StorageError, BlobStoreFailure, FileNotFoundError):
            raise  # keys are checked (ValueError) before this block
        except Exception as error:
            raise self._failure(error, action, key) from error

    # -- the BlobStore interface ---------------------------------------------

    def put(self, key: str, content: bytes, *, md5_hex: str | None = None) -> bool:
        """Store ``content`` under ``key``; whether this call created it.

        Whole or nothing: one PUT of the whole body with its Content-MD5, so
        the object exists complete (the store checked the digest) or not
        at all; a failed or killed upload leaves no object. An object
        already there is not sent again (a HEAD first); the PUT itself is
        conditional (``If-None-Match: *``) where the store supports it,
        else plain (the same key always has the same content).
        """
        name = self.object_key(key)
        with self._failures('write', key):
            if self._head(name) is not None:
                return False
            return self._put_new(name, content, md5_hex)

    def _put_new(self, name: str, content: bytes, md5_hex: str | None) -> bool:
        """PUT unless an object is there; whether this call created it.

        Conditional (``If-None-Match: *``: the store answers 412 if the key
        exists, 409 if another conditional write to it is in flight). A
        store that answers "not implemented" is remembered and then asked
        with a HEAD first and a plain PUT, which a writer racing in the same
        instant could still overwrite.
        """
        options: dict[str, Any] = {
            'Bucket': self.bucket,
            'Key': name,
            'Body': content,
            'ContentLength': len(content),
            'ContentMD5': base64.b64encode(
                bytes.fromhex(md5_hex) if md5_hex else hashlib.md5(content).digest()  # noqa: S324
            ).decode(),
            'ContentType': 'application/octet-stream',
        }
        if self._conditional_puts:
            try:
                self.client.put_object(**options, IfNoneMatch='*')
            except Exception as error:
                code = error_code(error)[0]
                if code in PRECONDITION_CODES or code in CONFLICT_CODES:
                    return False
                if code not in UNSUPPORTED_CODES:
                    raise
                self._conditional_puts = False
            else:
                return True
        if self._head(name) is not None:
            return False
        self.client.put_object(**options)
        return True

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store what ``stream`` yields under ``key``, replacing any object
        there (the move between stores), holding one part in memory.

        Whole or nothing: up to :data:`STREAM_PART_SIZE` one PUT, beyond a
        multipart upload, which S3 makes an object only when it completes
        (boto3 aborts it on a failure; one cut off by a killed process stays
        an invisible incomplete upload, which a bucket lifecycle rule
        ``AbortIncompleteMultipartUpload`` removes). An object already there
        is unchanged until the new one is complete. The store's refusals
        are :class:`~.store.ObjectStoreFailure`; what reading ``stream``
        raises is raised as it is.
        """
        from boto3.s3.transfer import TransferConfig

        name = self.object_key(key)
        settings = TransferConfig(
            multipart_threshold=STREAM_PART_SIZE,
            multipart_chunksize=STREAM_PART_SIZE,
            use_threads=False,
            preferred_transfer_client='classic',
        )
        with self._failures('write', key):
            self.client.upload_fileobj(
                Source(stream),
                self.bucket,
                name,
                ExtraArgs={'ContentType': 'application/octet-stream'},
                Config=settings,
            )

    def open(self, key: str) -> BinaryIO:
        """The blob, streamed: each ``read(n)`` takes up to ``n`` bytes from
        the store. A missing object raises ``FileNotFoundError``."""
        name = self.object_key(key)
        with self._failures('read', key):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=name)
            except Exception as error:
                if error_code(error)[0] in NOT_FOUND_CODES:
                    raise FileNotFoundError(
                        errno.ENOENT, 'no such object', f'{self.location}/{key}'
                    ) from None
                raise
        return ObjectReader(  # type: ignore[return-value]
            answer['Body'], lambda error: self._failure(error, 'read', key)
        )

    def exists(self, key: str) -> bool:
        """Whether the object is there; a store that cannot tell raises
        :class:`~.store.ObjectStoreFailure` (the folder cannot fail so)."""
        name = self.object_key(key)
        with self._failures('read', key):
            return self._head(name) is not None

    def delete(self, key: str) -> None:
        """Remove the object (deleting a missing one succeeds, as on S3)."""
        name = self._inside(key)
        with self._failures('delete', key):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def stat(self, key: str) -> StoredFile | None:
        """Size and LastModified of the object at ``key``, or None."""
        name = self._inside(key)
        with self._failures('read', key):
            head = self._head(name)
        if head is None:
            return None
        return StoredFile(
            key, int(head['ContentLength']), head['LastModified'].timestamp()
        )

    def iter_files(self) -> Iterator[StoredFile]:
        """Every object under the prefix, keys relative to it, in the
        store's listing order (by key, stable); folder markers (keys ending
        in ``/``) are not objects ngshare wrote and are skipped."""
        start = f'{self.prefix}/' if self.prefix else ''
        with self._failures('list', start or '/'):
            pages = self.client.get_paginator('list_objects_v2').paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get('Contents', ()):
                    key = item['Key'][len(start) :]
                    if not key or key.endswith('/'):
                        continue
                    yield StoredFile(
                        key, int(item['Size']), item['LastModified'].timestamp()
                    )

    def create_once(self, name: str, content: bytes) -> bytes:
        """Store a small object under ``name`` unless one is there; what is
        stored.

        A conditional PUT (``If-None-Match: *``, honoured by AWS S3, Ceph
        RGW, MinIO and SeaweedFS): of two replicas starting together
        exactly one creates it and both read the winner's content. On a
        store without conditional writes: a HEAD, then a plain PUT and a
        read back, which two processes starting in the same instant could
        both win (each may then read its own content back: replicas would
        disagree on the secret until restarted; set ``NGSHARE_COOKIE_SECRET``
        on such a store).
        """
        object_name = self.object_key(name)
        with self._failures('write', name):
            self._put_new(object_name, content, None)
        with self._failures('read', name):
            answer = self.client.get_object(Bucket=self.bucket, Key=object_name)
            with contextlib.closing(answer['Body']) as body:
                return body.read()

    def _head(self, name: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)
        except Exception as error:
            if error_code(error)[0] in NOT_FOUND_CODES:
                return None
            raise

    # -- start-up --------------------------------------------------------------

    def check_usable(self) -> None:
        """Prove that the bucket is reachable and that blobs can be written,
        read and deleted under the prefix: a probe object is put, read back
        and deleted. Else raise :class:`~.store.StorageError` with one line
        saying what to fix (the endpoint, the credentials, the bucket, the
        permissions, boto3 itself)."""
        client = self.client
        probe = self.object_key(f'{PROBE_PREFIX}{secrets.token_hex(8)}')
        action = 'write'
        try:
            client.put_object(Bucket=self.bucket, Key=probe, Body=b'')
            action = 'read'
            client.get_object(Bucket=self.bucket, Key=probe)['Body'].close()
            action = 'delete'
            client.delete_object(Bucket=self.bucket, Key=probe)
        except Exception as error:
            if action == 'read':
                with contextlib.suppress(Exception):
                    client.delete_object(Bucket=self.bucket, Key=probe)
            raise StorageError(self._unusable(error, action)) from None

    def check_readable(self) -> None:
        """Prove, writing nothing, that the bucket is reachable and listable
        under the prefix (``ngshare-admin verify``, ``gc`` without
        ``--delete``, the source of a move: read-only credentials do);
        else :class:`~.store.StorageError` with the lines of
        :meth:`check_usable`."""
        client = self.client
        start = f'{self.prefix}/' if self.prefix else ''
        try:
            client.list_objects_v2(Bucket=self.bucket, Prefix=start, MaxKeys=1)
        except Exception as error:
            raise StorageError(self._unusable(error, 'list')) from None

    def _unusable(self, error: BaseException, action: str) -> str:
        where = f'object storage {self.location} at {self.endpoint}'
        return unusable(error, action, where=where, bucket=self.bucket)


__all__ = ['S3Store', 'parse_location']
