"""The blob store contract, on a folder and on a real S3-compatible bucket.

Every test talks to a real store: a temporary folder, or a bucket of the
session's SeaweedFS (``tests/_seaweedfs.py``) through boto3, never a mock.
The contract tests run on both stores, so that the bucket keeps the
folder's guarantees (created or not, missing is ``FileNotFoundError``,
keys relative to the prefix, create-once); the S3-only tests prove the
layout of the objects, streamed reads, the start-up check's one-line
refusals, and bounded failures when the store is gone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest
from _ports import free_port
from _seaweedfs import READONLY_ACCESS_KEY, READONLY_SECRET_KEY, start_seaweedfs

from ngshare.blobs import FolderStore, open_store
from ngshare.blobs.store import (
    BlobStoreFailure,
    ObjectStoreFailure,
    StorageError,
    blob_key,
)
from ngshare.handlers.downloads import DOWNLOAD_CHUNK
from ngshare.operations.runner import storage_api_error

pytest.importorskip('boto3')

MB = 1024 * 1024
# What a reader may hold beyond the piece it returned: http.client's
# socket buffer (8 KiB) and a little slack, far below one piece.
READ_AHEAD_LIMIT = 64 * 1024


@pytest.fixture
def aws_env(s3_storage, monkeypatch):
    """boto3 in this process pointed at the session's SeaweedFS, the way
    ngshare finds it: through the standard AWS variables."""
    for name, value in s3_storage.env.items():
        monkeypatch.setenv(name, value)
    return s3_storage


def make_store(kind: str, request, tmp_path):
    if kind == 'folder':
        made = open_store(str(tmp_path / 'storage'))
        assert isinstance(made, FolderStore)
    else:
        storage = request.getfixturevalue('aws_env')
        url = storage.url if kind == 's3' else f's3://{storage.bucket}'
        made = open_store(url)
        assert made.location == url
    made.check_usable()
    made.check_readable()
    return made


@pytest.fixture(params=['folder', 's3', 's3-no-prefix'])
def store(request, tmp_path):
    """The same contract on each kind of store (the bucket with and without
    a prefix)."""
    return make_store(request.param, request, tmp_path)


@pytest.fixture(params=['folder', 's3'])
def either_store(request, tmp_path):
    return make_store(request.param, request, tmp_path)


def read_all(store, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def test_contract(store):
    content = b'print("hello")\n' * 100
    key = blob_key(content)
    empty_key = blob_key(b'')
    legacy = str(uuid.uuid4())  # a 0.6.0 deployment's flat name

    assert not store.exists(key)
    assert store.stat(key) is None
    assert store.put(key, content) is True
    assert store.put(key, content) is False  # stored once
    assert store.put(empty_key, b'') is True
    assert store.put(legacy, b'old') is True
    assert store.exists(key)
    assert store.stat(key).size == len(content)
    assert read_all(store, key) == content
    assert read_all(store, empty_key) == b''
    assert read_all(store, legacy) == b'old'
    listed = {item.key: item.size for item in store.iter_files()}
    # Nothing else: the start-up probe left nothing behind.
    assert listed == {key: len(content), empty_key: 0, legacy: 3}

    store.delete(key)
    store.delete(key)  # deleting what is not there is no error
    assert not store.exists(key)
    with pytest.raises(FileNotFoundError):
        store.open(key)
    for illegal in ('../outside', '/absolute', 'a//b', ''):
        with pytest.raises(ValueError):
            store.put(illegal, b'x')


def test_create_once_keeps_the_first_content(store):
    assert store.create_once('ngshare_cookie_secret', b'first') == b'first'
    assert store.create_once('ngshare_cookie_secret', b'second') == b'first'
    assert [f.key for f in store.iter_files()] == ['ngshare_cookie_secret']


class Source:
    """A stream of ``size`` random bytes that records the reads asked of
    it, and breaks after ``fail_after`` bytes if told to."""

    def __init__(self, size: int, fail_after: int | None = None):
        self.content = os.urandom(size)
        self.position = 0
        self.fail_after = fail_after
        self.largest_read = 0

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size > 0, 'the whole source was asked for'
        self.largest_read = max(self.largest_read, size)
        if self.fail_after is not None and self.position >= self.fail_after:
            raise OSError('the source broke')
        piece = self.content[self.position : self.position + size]
        self.position += len(piece)
        return piece


def test_put_stream_is_whole_or_nothing_with_bounded_pieces(either_store):
    """The move's write: a blob larger than one part (a multipart upload on
    a bucket) is stored from pieces; a source that breaks half-way leaves
    the old content under the key, its error raised as it is."""
    key = str(uuid.uuid4())
    assert either_store.put(key, b'old') is True
    broken = Source(17 * MB, fail_after=9 * MB)
    with pytest.raises(OSError, match='the source broke') as caught:
        either_store.put_stream(key, broken)
    assert not isinstance(caught.value, BlobStoreFailure)
    assert read_all(either_store, key) == b'old'
    assert [f.key for f in either_store.iter_files()] == [key]  # no leftovers
    if not isinstance(either_store, FolderStore):  # the multipart upload aborted
        uploads = either_store.client.list_multipart_uploads(Bucket=either_store.bucket)
        assert not uploads.get('Uploads')

    source = Source(17 * MB)
    either_store.put_stream(key, source)
    assert read_all(either_store, key) == source.content
    assert source.largest_read <= 8 * MB
    assert [f.key for f in either_store.iter_files()] == [key]


def test_objects_are_the_folder_keys_under_the_prefix(aws_env, tmp_path):
    """The same keys as a folder, under the prefix: a move copies keys as
    they are. The stat comes from the object (its LastModified)."""
    folder, bucket = FolderStore(tmp_path), open_store(aws_env.url)
    legacy = str(uuid.uuid4())
    contents = {blob_key(b'a'): b'a', blob_key(b'b'): b'b', legacy: b'c'}
    for key, content in contents.items():
        folder.put(key, content)
        bucket.put(key, content)
    assert aws_env.keys() == sorted(contents)
    assert [f.key for f in bucket.iter_files()] == sorted(contents)
    assert [f.key for f in folder.iter_files()] == sorted(contents)
    assert all(aws_env.read(key) == content for key, content in contents.items())
    stat = bucket.stat(legacy)
    head = aws_env.client.head_object(Bucket=aws_env.bucket, Key=f'ngshare/{legacy}')
    assert (stat.size, stat.mtime) == (1, head['LastModified'].timestamp())


def test_downloads_are_streamed_in_pieces(aws_env):
    """A 20 MB blob read as a download reads it: every piece comes from the
    socket when asked for, so the reader never holds more than one piece
    (measured in bytes taken from the connection, not RSS)."""
    content = os.urandom(20 * MB)
    key = blob_key(content)
    store = open_store(aws_env.url)
    assert store.put(key, content)
    digest, pieces = hashlib.sha256(), 0
    with store.open(key) as stream:
        # The connection under botocore's StreamingBody: what has been read
        # from the socket so far.
        raw = stream._body._raw_stream
        consumed = 0
        while piece := stream.read(DOWNLOAD_CHUNK):
            assert len(piece) <= DOWNLOAD_CHUNK
            consumed += len(piece)
            assert raw.tell() - consumed <= READ_AHEAD_LIMIT
            digest.update(piece)
            pieces += 1
    assert consumed == len(content)
    assert pieces == -(-len(content) // DOWNLOAD_CHUNK)
    assert f'sha256/{digest.hexdigest()[:2]}' == key[:9] and key.endswith(
        digest.hexdigest()
    )


# --------------------------------------------------------------------------
# start-up: one line for each way a bucket is unusable


def unusable(url: str) -> str:
    with pytest.raises(StorageError) as caught:
        open_store(url).check_usable()
    message = str(caught.value)
    assert '\n' not in message
    return message


def test_check_usable_refusals(aws_env, monkeypatch):
    good = aws_env.url
    assert 'bucket' in unusable('s3://no-such-bucket-here/x')
    assert 'does not exist' in unusable('s3://no-such-bucket-here/x')
    with pytest.raises(StorageError, match='does not exist'):
        open_store('s3://no-such-bucket-here/x').check_readable()

    with monkeypatch.context() as env:
        env.setenv('AWS_SECRET_ACCESS_KEY', 'not-the-secret')
        message = unusable(good)
        assert 'SignatureDoesNotMatch' in message
        assert 'AWS_SECRET_ACCESS_KEY' in message

    with monkeypatch.context() as env:
        env.setenv('AWS_ACCESS_KEY_ID', 'no-such-key')
        assert 'InvalidAccessKeyId' in unusable(good)

    with monkeypatch.context() as env:
        env.setenv('AWS_ACCESS_KEY_ID', READONLY_ACCESS_KEY)
        env.setenv('AWS_SECRET_ACCESS_KEY', READONLY_SECRET_KEY)
        message = unusable(good)
        assert 'not allowed to write' in message and 'AccessDenied' in message
        open_store(good).check_readable()  # what read-only maintenance needs

    with monkeypatch.context() as env:
        env.delenv('AWS_ACCESS_KEY_ID')
        env.delenv('AWS_SECRET_ACCESS_KEY')
        assert 'no credentials' in unusable(good)

    with monkeypatch.context() as env:
        closed = f'http://127.0.0.1:{free_port()}'  # nothing listens there
        env.setenv('AWS_ENDPOINT_URL', closed)
        message = unusable(good)
        assert 'cannot reach' in message and closed in message

    with monkeypatch.context() as env:
        env.setitem(sys.modules, 'boto3', None)  # as if not installed
        assert 'pip install "ngshare[s3]>=1.0.0.dev0"' in unusable(good)

    assert aws_env.keys() == []  # no refused probe left anything behind
    open_store(good).check_usable()


def test_a_folder_deployment_never_imports_boto3(tmp_path):
    """Without the s3 extra the service works as before: nothing imports
    boto3 until a bucket is used."""
    script = (
        'import sys\n'
        'import ngshare.admin, ngshare.app, ngshare.startup\n'
        'from ngshare.blobs import open_store\n'
        f'open_store({str(tmp_path)!r}).check_usable()\n'
        'loaded = sorted(m for m in sys.modules if m.split(".")[0] in'
        ' ("boto3", "botocore", "s3transfer"))\n'
        'assert not loaded, loaded\n'
    )
    subprocess.run([sys.executable, '-c', script], check=True, timeout=60)


def test_malformed_locations_are_one_line_refusals():
    for url in ('s3://', 's3:///prefix', 's3://bucket/../up'):
        with pytest.raises(StorageError) as caught:
            open_store(url)
        assert '\n' not in str(caught.value)


# --------------------------------------------------------------------------
# a store that is gone


def test_unreachable_store_fails_each_call_in_bounded_attempts(aws_env, monkeypatch):
    """Every call fails as a storage refusal (503, the bucket named) after
    the configured attempts, never hangs or escapes as a bare error."""
    monkeypatch.setenv('AWS_ENDPOINT_URL', f'http://127.0.0.1:{free_port()}')
    store = open_store(aws_env.url)
    attempts = []
    store.client.meta.events.register('before-send.s3', lambda **_: attempts.append(1))
    key = blob_key(b'x')
    for call in (
        lambda: store.put(key, b'x'),
        lambda: store.open(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: list(store.iter_files()),
    ):
        attempts.clear()
        with pytest.raises(ObjectStoreFailure) as caught:
            call()
        assert len(attempts) == 3
        failure = caught.value
        assert isinstance(failure, BlobStoreFailure) and isinstance(failure, OSError)
        assert not failure.full
        assert aws_env.url in failure.advice() and '\n' not in failure.advice()
        assert storage_api_error(failure).status_code == 503


def test_quota_refusals_are_storage_full():
    failure = ObjectStoreFailure(
        action='write',
        relative='sha256/ab/cd/abcd',
        location='s3://b/p',
        code='QuotaExceeded',
        message='over quota',
    )
    assert failure.full and failure.advice().startswith('Storage full:')
    assert storage_api_error(failure).status_code == 507


def test_store_killed_mid_download_is_an_error_not_a_short_blob(tmp_path, monkeypatch):
    """A download cut off by the store fails (an OSError the handlers and
    ``verify`` catch), never ends early as if the blob were shorter."""
    server = start_seaweedfs(tmp_path / 'seaweedfs')
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        store = open_store(f's3://{server.create_bucket()}/p')
        content = os.urandom(20 * MB)
        key = blob_key(content)
        store.put(key, content)
        stream = store.open(key)
        received = len(stream.read(DOWNLOAD_CHUNK))
        server.kill()
        with pytest.raises(ObjectStoreFailure) as caught:
            while piece := stream.read(DOWNLOAD_CHUNK):
                received += len(piece)
        assert received < len(content)
        assert caught.value.action == 'read'
        stream.close()
    finally:
        server.stop()
