"""What a test server stores its blobs in: a folder or a bucket, seen alike.

Tests marked ``both_storages`` run the server fixtures on a folder and on a
bucket of the session's SeaweedFS (:mod:`_seaweedfs`), so what they check
of the stored files must not assume a folder. A server's ``blobs`` is a
view of its store, :class:`FolderView` or :class:`BucketView`, with the
same few reads: ``keys()`` (every stored object but the login cookie
secret, relative to the store, sorted: blobs and any temporary file, so a
half-written upload shows), ``read(key)``, ``contents()`` (key -> bytes),
``sizes()`` (key -> size) and ``clear()`` (what the shared server's
``empty()`` does). Views read through the file system or boto3 directly,
never through ngshare's own store code, so a bug there cannot hide itself.

:class:`StorageChoice` is the value of the ``ngshare_storage`` fixture
(:mod:`_servers`): the kind (``folder`` or ``s3``) and, for a bucket, the
``--storage`` and environment of a server started in a given folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from ngshare.config import COOKIE_SECRET_NAME

__all__ = [
    'STORAGES',
    'BucketView',
    'FolderView',
    'StorageChoice',
    'storage_view',
]

#: The ids of the two storage kinds, in the order tests run them.
STORAGES = ('folder', 's3')


class FolderView:
    """The files of a storage folder."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.location = str(self.root)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob('*')
            if path.is_file() and path.name != COOKIE_SECRET_NAME
        )

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def sizes(self) -> dict[str, int]:
        return {key: (self.root / key).stat().st_size for key in self.keys()}

    def contents(self) -> dict[str, bytes]:
        return {key: self.read(key) for key in self.keys()}

    def clear(self) -> None:
        """Remove everything but the cookie secret."""
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.name == COOKIE_SECRET_NAME:
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


class BucketView:
    """The objects under a prefix of a bucket, read with boto3."""

    def __init__(self, location: str, env: Mapping[str, str]):
        assert location.startswith('s3://'), location
        self.location = location
        bucket, _, prefix = location[len('s3://') :].partition('/')
        self.bucket = bucket
        self.prefix = prefix.strip('/')
        self.env = dict(env)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from _seaweedfs import boto3_client

            self._client = boto3_client(
                self.env['AWS_ENDPOINT_URL'],
                aws_access_key_id=self.env['AWS_ACCESS_KEY_ID'],
                aws_secret_access_key=self.env['AWS_SECRET_ACCESS_KEY'],
            )
        return self._client

    def _start(self) -> str:
        return f'{self.prefix}/' if self.prefix else ''

    def _objects(self) -> dict[str, int]:
        start = self._start()
        found = {}
        paginator = self.client.get_paginator('list_objects_v2')
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get('Contents', ()):
                found[item['Key'][len(start) :]] = int(item['Size'])
        return found

    def keys(self) -> list[str]:
        return sorted(key for key in self._objects() if key != COOKIE_SECRET_NAME)

    def read(self, key: str) -> bytes:
        answer = self.client.get_object(Bucket=self.bucket, Key=self._start() + key)
        with contextlib.closing(answer['Body']) as body:
            return body.read()

    def sizes(self) -> dict[str, int]:
        objects = self._objects()
        return {
            key: objects[key] for key in sorted(objects) if key != COOKIE_SECRET_NAME
        }

    def contents(self) -> dict[str, bytes]:
        return {key: self.read(key) for key in self.keys()}

    def clear(self) -> None:
        """Delete every object under the prefix but the cookie secret."""
        keys = self.keys()
        for start in range(0, len(keys), 1000):
            batch = [{'Key': self._start() + key} for key in keys[start : start + 1000]]
            self.client.delete_objects(
                Bucket=self.bucket, Delete={'Objects': batch, 'Quiet': True}
            )


def storage_view(storage: str | os.PathLike[str], env: Mapping[str, str] | None = None):
    """The view of ``--storage`` (a folder, or ``s3://`` with the AWS ``env``
    a server was started with)."""
    if str(storage).startswith('s3://'):
        return BucketView(str(storage), env or {})
    return FolderView(storage)


class StorageChoice:
    """Which storage the server fixtures use: ``kind`` is ``folder`` or ``s3``.

    For ``s3``, every server gets a prefix of its own in one bucket (made
    when first needed, by ``bucket()``: the caller decides how long it lives),
    derived from its working directory, so that a server restarted in the
    same directory finds its blobs again, and the blobs of two servers of
    one test never mix (as two folders would not).
    """

    def __init__(self, kind: str, bucket=None, env: Mapping[str, str] | None = None):
        assert kind in STORAGES, kind
        self.kind = kind
        self._bucket = bucket
        self._env = dict(env or {})

    @property
    def is_s3(self) -> bool:
        return self.kind == 's3'

    def options(self, workdir: str | os.PathLike[str]) -> dict:
        """``storage`` and ``env`` for :func:`_servers.start_server` in
        ``workdir``; nothing for a folder (the default ``workdir/files``)."""
        if not self.is_s3:
            return {}
        tag = hashlib.sha256(str(Path(workdir).resolve()).encode()).hexdigest()[:12]
        return {
            'storage': f's3://{self._bucket()}/ngshare-{tag}',
            'env': dict(self._env),
        }

    def __repr__(self) -> str:
        return f'StorageChoice({self.kind!r})'
