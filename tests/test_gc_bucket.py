"""``ngshare-admin gc`` and ``verify`` on a bucket (a real SeaweedFS).

The rules are those of the folder (test_gc.py): what counts as an orphan,
the grace period, what is never touched, the re-check under the blob lock;
here they are shown to hold through the S3 store, whose listing and HEAD
report times differently, whose objects cannot be back-dated (so the
collector's clock is moved on instead), and where the cookie secret is an
object under the prefix that every replica shares. The deleted-items purge
and restore on a bucket are in test_deleted.py.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from _blobs import put, read
from _seaweedfs import READONLY_ACCESS_KEY, READONLY_SECRET_KEY
from sqlalchemy import text

from ngshare import gc
from ngshare.blobs import open_store
from ngshare.database import migrate
from ngshare.database.engine import make_engine

HOUR = 3600
LEGACY = 'a67a6e40-89cc-4293-9bec-5e12ede2c01f.ipynb'


@pytest.fixture
def bucket(s3_storage, monkeypatch):
    """A fresh bucket, with this process's boto3 pointed at its store (the
    ``AWS_*`` variables, as an administrator sets them)."""
    for name, value in s3_storage.env.items():
        monkeypatch.setenv(name, value)
    return s3_storage


@pytest.fixture
def database(tmp_path):
    """A SQLite database at head with an assignment (``_id`` 1)."""
    url = f'sqlite:///{tmp_path / "ngshare.db"}'
    engine = make_engine(url)
    migrate.upgrade(engine, None)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO courses (_id, id) VALUES (1, 'C')"))
        connection.execute(
            text("INSERT INTO assignments (_id, id, course_id) VALUES (1, 'a', 1)")
        )
    yield engine
    engine.dispose()


def add_row(engine, key: str, content: bytes) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO files (filename, checksum, actual_name, size,'
                ' assignment_id) VALUES (:key, :md5, :key, :size, 1)'
            ),
            {'key': key, 'md5': hashlib.md5(content).hexdigest(), 'size': len(content)},
        )


def put_object(bucket, key: str, content: bytes, *, prefix: bool = True) -> None:
    """An object written behind ngshare's back (a leftover, a corruption)."""
    name = f'{bucket.prefix}/{key}' if prefix else key
    bucket.client.put_object(Bucket=bucket.bucket, Key=name, Body=content)


def test_gc_on_a_bucket_follows_the_folder_rules(bucket, database):
    store = open_store(bucket.url)
    kept, _ = put(store, b'kept')
    add_row(database, kept, b'kept')
    orphan, _ = put(store, b'orphan')
    put_object(bucket, LEGACY, b'left by 0.6.0')
    put_object(bucket, '.probe-0123abcd', b'')  # a start-up probe left behind
    put_object(bucket, gc.COOKIE_SECRET_NAME, b'ab' * 32)
    put_object(bucket, 'elsewhere/not-ours', b'x', prefix=False)

    # Everything was just written: within the grace period, nothing goes.
    dry = gc.collect_garbage(database, store, delete=True, grace_seconds=HOUR)
    assert dry.inventory.orphans == [] and dry.deleted == []
    assert {f.key for f in dry.inventory.recent} == {orphan, LEGACY, '.probe-0123abcd'}
    assert dry.inventory.protected == [gc.COOKIE_SECRET_NAME]
    assert dry.inventory.referenced == 1

    # Two hours later (the collector's clock moved on: S3 objects cannot be
    # back-dated), the same objects are garbage and are removed, each after
    # the re-check under the lock (a HEAD, compared with the listing).
    def later() -> float:
        return time.time() + 2 * HOUR

    done = gc.collect_garbage(
        database, store, delete=True, grace_seconds=HOUR, clock=later
    )
    assert {f.key for f in done.deleted} == {orphan, LEGACY, '.probe-0123abcd'}
    assert done.kept == [] and done.failed == []
    assert bucket.keys() == sorted([gc.COOKIE_SECRET_NAME, kept])
    assert read(store, kept) == b'kept'
    # Outside the prefix nothing is ngshare's: never listed, never removed.
    listed = bucket.client.list_objects_v2(Bucket=bucket.bucket, Prefix='elsewhere/')
    assert [item['Key'] for item in listed['Contents']] == ['elsewhere/not-ours']


def test_admin_gc_and_verify_on_a_bucket(bucket, database, admin_main, monkeypatch):
    store = open_store(bucket.url)
    url = str(database.url)
    flags = ['--database', url, '--storage', bucket.url]
    good, _ = put(store, b'good')
    add_row(database, good, b'good')
    changed, _ = put(store, b'original')
    add_row(database, changed, b'original')
    lost, _ = put(store, b'lost')
    add_row(database, lost, b'lost')
    add_row(database, LEGACY, b'legacy')
    put_object(bucket, LEGACY, b'legacy')
    put_object(bucket, 'stray.bin', b'stray')
    put_object(bucket, gc.COOKIE_SECRET_NAME, b'cd' * 32)

    report = admin_main('gc', '--grace-seconds', '0', *flags)
    assert report.returncode == 0, report.output
    assert report.stdout.splitlines() == ['stray.bin']
    assert f'orphaned in {bucket.url}' in report.stderr
    assert 'stray.bin' in list(bucket.keys())
    removal = admin_main('gc', '--delete', '--grace-seconds', '0', *flags)
    assert removal.returncode == 0, removal.output
    assert removal.stdout.splitlines() == ['stray.bin']
    assert bucket.keys() == sorted([gc.COOKIE_SECRET_NAME, good, changed, lost, LEGACY])

    intact = admin_main('verify', *flags)
    assert intact.returncode == 0, intact.output
    assert 'verified 4 files (4 blobs): all intact' in intact.stderr

    # Other bytes under a blob's key, and a blob gone: both named.
    put_object(bucket, changed, b'changed!')
    bucket.client.delete_object(Bucket=bucket.bucket, Key=f'{bucket.prefix}/{lost}')
    broken = admin_main('verify', *flags)
    assert broken.returncode == 1, broken.output
    reasons = dict(line.split(': ', 1) for line in broken.stdout.splitlines())
    assert set(reasons) == {changed, lost}, broken.output
    assert 'md5' in reasons[changed] and reasons[lost].endswith('missing')

    # verify and a dry run only read: a read-only identity may run them;
    # removing needs write access, refused in one line before anything.
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', READONLY_ACCESS_KEY)
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', READONLY_SECRET_KEY)
    assert admin_main('verify', *flags).returncode == 1
    assert admin_main('gc', *flags).returncode == 0
    refused = admin_main('gc', '--delete', *flags)
    assert refused.returncode == 2, refused.output
    assert_one_error(refused, bucket.url)


def test_admin_refuses_a_bucket_it_cannot_use(bucket, database, admin_main):
    url = str(database.url)
    missing = 's3://no-such-bucket-for-ngshare/ngshare'
    for command in (['verify'], ['gc'], ['gc', '--delete'], ['deleted', 'purge']):
        done = admin_main(*command, '--database', url, '--storage', missing)
        assert done.returncode == 2, done.output
        assert_one_error(done, 'no-such-bucket-for-ngshare')


def assert_one_error(done, *fragments: str) -> None:
    errors = [
        line
        for line in done.stderr.splitlines()
        if line.startswith('ngshare-admin: error:')
    ]
    assert len(errors) == 1, done.output
    assert 'Traceback' not in done.output
    for fragment in fragments:
        assert fragment in errors[0], done.output
