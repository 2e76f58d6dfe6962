"""Moving a deployment between a folder and a bucket: ``ngshare-admin storage
copy``, against real ngshare processes and a real SeaweedFS.

The documented sequence (docs/object-storage.md) on the deployment 0.6.0
wrote: upgrade it on its folder, copy while the service runs, stop, copy
again (only what is new), start on the bucket, every file downloads intact;
and back to a folder. Then what makes it safe to run: a copy killed in the
middle of a blob leaves no partial object and a new run finishes the job;
objects lost or damaged at the destination are copied again; blobs missing
or corrupt in the source are reported and never copied.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from _api import files_of, ok, tree
from _doc_blocks import DOCS, run_blocks
from _fixture060 import (
    FIXTURE,
    assert_downloads_as_060,
    copy_deployment,
    fixture_rows,
    sqlite_url,
)
from _servers import ngshare_env
from sqlalchemy import text

from ngshare import storage_move
from ngshare.blobs import open_store
from ngshare.blobs.folder import FolderStore
from ngshare.blobs.s3 import STREAM_PART_SIZE
from ngshare.blobs.store import blob_key
from ngshare.database.engine import make_engine

BIG = 3 * 1024 * 1024 + 17  # several pieces of the copy's 1 MiB reads
GUIDE = DOCS / 'object-storage.md'


@pytest.fixture
def bucket(s3_storage, monkeypatch):
    """A fresh bucket, with this process's boto3 pointed at its store."""
    for name, value in s3_storage.env.items():
        monkeypatch.setenv(name, value)
    return s3_storage


def storage_copy(admin_main, url: str, source, target, *more: str):
    return admin_main(
        'storage',
        'copy',
        '--database',
        url,
        '--from',
        str(source),
        '--to',
        str(target),
        *more,
    )


def blobs(count: int) -> str:
    return f'{count} blob{"" if count == 1 else "s"}'


def files_in(folder) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob('*'))
        if path.is_file()
    }


def test_060_deployment_moves_to_a_bucket_and_back(
    start_ngshare, bucket, tmp_path, admin_main
):
    """The sequence of docs/object-storage.md, its blocks run as written."""
    db, folder = copy_deployment(tmp_path / 'deployment')
    url = sqlite_url(db)
    page = {
        **bucket.env,
        'NGSHARE_DATABASE': url,
        'NGSHARE_STORAGE': str(folder),
        'NGSHARE_BUCKET': bucket.url,
    }
    referenced = sorted(name for name, _md5, _size in fixture_rows())
    # Upgraded on its folder: the service does it as it starts there.
    server = start_ngshare(hub_mode=False, database_url=url, storage=folder)

    # Copy while the service runs: every referenced blob, under its 0.6.0
    # name; not the file 0.6.0 left behind, nor anything but blobs.
    first = run_blocks(GUIDE, ['move-copy'], page)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout == ''
    assert 'copied 21 blobs' in first.stderr, first.stderr
    assert bucket.keys() == referenced
    for name in referenced:
        assert bucket.read(name) == (FIXTURE / 'files' / name).read_bytes()

    # Meanwhile an instructor releases something new (content-addressed).
    ok(
        server.post(
            ('course', 'Moving'), user='root', data={'instructors': '["kevin"]'}
        )
    )
    new = {'late.ipynb': b'released during the move', 'big.bin': os.urandom(BIG)}
    ok(
        server.post(
            ('assignment', 'Moving', 'a1'), user='kevin', data={'files': tree(new)}
        )
    )
    new_keys = sorted(blob_key(content) for content in new.values())

    # Stop, copy again: only the new blobs; the others are trusted by size.
    server.stop()
    second = run_blocks(GUIDE, ['move-copy-stopped'], page)
    assert second.returncode == 0, second.stdout + second.stderr
    assert 'copied 2 blobs' in second.stderr, second.stderr
    assert '21 blobs already at the destination (21 by their size, unread)' in (
        second.stderr
    )
    assert bucket.keys() == sorted(referenced + new_keys)

    # Start on the bucket: every file downloads as 0.6.0 served it.
    moved = start_ngshare(
        hub_mode=False, database_url=url, storage=bucket.url, env=bucket.env
    )
    assert assert_downloads_as_060(moved) >= 21
    got = ok(moved.get(('assignment', 'Moving', 'a1'), user='kevin'))
    assert files_of(got) == new
    checked = run_blocks(GUIDE, ['move-verify'], page)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'verified 23 files (23 blobs): all intact' in checked.stderr
    moved.stop()

    # And back to a (new) folder, created by the copy.
    back = tmp_path / 'back' / 'files'
    returned = storage_copy(admin_main, url, bucket.url, back)
    assert returned.returncode == 0, returned.output
    assert 'copied 23 blobs' in returned.stderr
    assert files_in(back) == {key: bucket.read(key) for key in list(bucket.keys())}
    again = admin_main('verify', '--database', url, '--storage', str(back))
    assert again.returncode == 0 and 'all intact' in again.stderr, again.output


KILLED_COPY = """
import os, sys

from ngshare import storage_move

read = storage_move.HashingReader.read


def read_then_die(self, size=-1):
    # A piece of the big blob is on its way to the destination: die (no
    # clean-up, no exception handler runs).
    if self.length >= storage_move.CHUNK:
        os._exit(86)
    return read(self, size)


storage_move.HashingReader.read = read_then_die

from ngshare.admin import main

main(sys.argv[1:])
"""


def test_a_killed_copy_leaves_no_partial_object_and_resumes(
    start_ngshare, bucket, tmp_path, admin_main
):
    server = start_ngshare(hub_mode=False)
    url, folder = server.database_url, server.storage
    ok(server.post(('course', 'C'), user='root', data={'instructors': '["kevin"]'}))
    contents = {f'small{i}.txt': f'file {i}'.encode() for i in range(6)}
    contents['big.bin'] = os.urandom(BIG)
    ok(
        server.post(
            ('assignment', 'C', 'a'), user='kevin', data={'files': tree(contents)}
        )
    )
    # A deleted assignment stays restorable: its blob must move too.
    ok(
        server.post(
            ('assignment', 'C', 'old'),
            user='kevin',
            data={'files': tree({'kept.txt': b'only in a deleted item'})},
        )
    )
    ok(server.delete(('assignment', 'C', 'old'), user='kevin'))
    server.stop()
    keys = sorted(
        {blob_key(c) for c in contents.values()} | {blob_key(b'only in a deleted item')}
    )
    big = blob_key(contents['big.bin'])

    wrapper = tmp_path / 'killed_copy.py'
    wrapper.write_text(KILLED_COPY)
    killed = subprocess.run(
        [
            sys.executable,
            str(wrapper),
            'storage',
            'copy',
            '--jobs',
            '1',
            '--database',
            url,
            '--from',
            str(folder),
            '--to',
            bucket.url,
        ],
        env=ngshare_env(bucket.env),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == 86, killed.stdout + killed.stderr
    # Killed half way through the big blob: nothing under its key, and
    # every object there is a whole blob.
    there = bucket.keys()
    assert big not in there and len(there) < len(keys)
    for key in there:
        assert hashlib.sha256(bucket.read(key)).hexdigest() == key.rsplit('/', 1)[-1]

    resumed = storage_copy(admin_main, url, folder, bucket.url)
    assert resumed.returncode == 0, resumed.output
    assert f'copied {blobs(len(keys) - len(there))} (' in resumed.stderr, resumed.output
    assert f'; {blobs(len(there))} already at the destination and intact' in (
        resumed.stderr
    )
    assert bucket.keys() == keys

    # Lost and damaged objects at the destination: a run puts them right;
    # damage of the same size is missed only when told to trust sizes.
    lost, damaged = keys[0], big
    bucket.client.delete_object(Bucket=bucket.bucket, Key=f'{bucket.prefix}/{lost}')
    bucket.client.put_object(
        Bucket=bucket.bucket, Key=f'{bucket.prefix}/{damaged}', Body=os.urandom(BIG)
    )
    trusting = storage_copy(admin_main, url, folder, bucket.url, '--trust-existing')
    assert trusting.returncode == 0, trusting.output
    assert 'copied 1 blob (' in trusting.stderr, trusting.output
    assert bucket.read(damaged) != contents['big.bin']
    full = storage_copy(admin_main, url, folder, bucket.url)
    assert full.returncode == 0, full.output
    assert 'copied 1 blob (3145745 bytes), replacing 1 bad copies' in full.stderr
    assert bucket.read(damaged) == contents['big.bin']

    # The deleted assignment comes back on the bucket, with its file.
    moved = start_ngshare(
        hub_mode=False, database_url=url, storage=bucket.url, env=bucket.env
    )
    listed = admin_main('deleted', 'list', '--database', url, '--storage', bucket.url)
    item = listed.stdout.split('\t', 1)[0]
    restored = admin_main(
        'deleted', 'restore', item, '--database', url, '--storage', bucket.url
    )
    assert restored.returncode == 0, restored.output
    answer = ok(moved.get(('assignment', 'C', 'old'), user='kevin'))
    assert files_of(answer) == {'kept.txt': b'only in a deleted item'}


def test_blobs_missing_or_corrupt_in_the_source_are_reported(
    bucket, tmp_path, admin_main
):
    db, folder = copy_deployment(tmp_path / 'deployment')
    url = sqlite_url(db)
    upgraded = admin_main('upgrade', '--database', url, '--storage', str(folder))
    assert upgraded.returncode == 0, upgraded.output
    rows = fixture_rows(db)
    changed, missing = rows[0][0], rows[-1][0]
    with open(folder / changed, 'ab') as stream:
        stream.write(b'\n')
    (folder / missing).unlink()
    # A content-addressed blob whose bytes are not the ones it is named by.
    misnamed = blob_key(b'what the row stored')
    (folder / misnamed).parent.mkdir(parents=True)
    (folder / misnamed).write_bytes(b'what the disk holds')
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO files (filename, checksum, actual_name, size,'
                ' assignment_id) SELECT :key, :md5, :key, 19, MIN(_id) FROM assignments'
            ),
            {'key': misnamed, 'md5': hashlib.md5(b'what the row stored').hexdigest()},
        )
        # A name that would leave the store: refused, never looked up.
        connection.execute(
            text(
                'INSERT INTO files (filename, checksum, actual_name, size,'
                " assignment_id) SELECT 'x', 'x', '../outside', 1, MIN(_id)"
                ' FROM assignments'
            )
        )
    engine.dispose()

    done = storage_copy(admin_main, url, folder, bucket.url)

    assert done.returncode == 1, done.output
    reasons = dict(line.split(': ', 1) for line in done.stdout.splitlines())
    assert set(reasons) == {changed, missing, misnamed, '../outside'}, done.output
    assert reasons[missing] == 'missing from the source'
    assert reasons[changed].startswith('corrupt in the source: md5')
    assert 'sha256' in reasons[misnamed]
    assert reasons['../outside'] == 'illegal blob name in the database'
    assert '4 blobs missing or corrupt in the source' in done.stderr
    # What is bad is not copied; all the rest is.
    good = sorted({name for name, _md5, _size in rows} - {changed, missing})
    assert bucket.keys() == good
    # The same refusals on the way back, from the bucket.
    back = storage_copy(admin_main, url, bucket.url, tmp_path / 'back')
    assert back.returncode == 1, back.output
    assert set(line.split(': ', 1)[0] for line in back.stdout.splitlines()) == {
        changed,
        missing,
        misnamed,
        '../outside',
    }


def test_copy_refuses_what_it_cannot_use(bucket, tmp_path, admin_main):
    db, folder = copy_deployment(tmp_path / 'deployment')
    url = sqlite_url(db)
    nowhere = tmp_path / 'nowhere'
    cases = [
        # The 0.6.0 schema: upgrade it on its folder first.
        ((folder, bucket.url), 'upgrade it first'),
        ((folder, folder), 'same store'),
        ((nowhere, bucket.url), 'does not exist'),
        ((folder, 's3://no-such-bucket-for-ngshare/x'), 'no-such-bucket-for-ngshare'),
    ]
    for index, ((source, target), message) in enumerate(cases):
        if index == 1:
            upgraded = admin_main(
                'upgrade', '--database', url, '--storage', str(folder)
            )
            assert upgraded.returncode == 0, upgraded.output
        done = storage_copy(admin_main, url, source, target)
        assert done.returncode == 2, done.output
        errors = [
            line
            for line in done.stderr.splitlines()
            if line.startswith('ngshare-admin: error:')
        ]
        assert len(errors) == 1 and message in errors[0], done.output
        assert 'Traceback' not in done.output
    # Nothing was written anywhere.
    assert bucket.keys() == [] and not nowhere.exists()


def test_a_060_database_is_upgraded_on_its_folder_not_on_a_bucket(
    bucket, tmp_path, admin_main
):
    """Its files are in its folder: ``upgrade`` refuses to run against a
    bucket, saying what to do, and changes nothing."""
    db, folder = copy_deployment(tmp_path / 'deployment')
    url = sqlite_url(db)
    before = db.read_bytes()
    refused = admin_main('upgrade', '--database', url, '--storage', bucket.url)
    assert refused.returncode == 2, refused.output
    assert 'upgrade it on that folder first' in refused.stderr
    assert 'ngshare-admin storage copy' in refused.stderr
    assert db.read_bytes() == before and bucket.keys() == []
    done = admin_main('upgrade', '--database', url, '--storage', str(folder))
    assert done.returncode == 0, done.output


class MeasuredFolder(FolderStore):
    """A real folder store that records the largest piece any reader of
    its blobs asks for (a measurement, not a stand-in: it reads the file)."""

    largest = 0

    def open(self, key: str):
        stream = super().open(key)
        store = self

        class Measured:
            def read(self, size=-1):
                chunk = stream.read(size)
                store.largest = max(store.largest, len(chunk))
                return chunk

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                stream.close()

        return Measured()


def test_a_big_blob_moves_in_pieces(bucket, tmp_path):
    """20 MiB through the copy, each way: never more than one upload part
    (8 MiB) read at once, and the bytes intact."""
    content = os.urandom(20 * 1024 * 1024 + 1)
    key = blob_key(content)
    source = MeasuredFolder(tmp_path / 'files')
    source.put(key, content)
    expected = storage_move.Expected(key, sizes=frozenset({len(content)}))
    bucket_store = open_store(bucket.url)

    there = storage_move.copy_blob(source, bucket_store, expected, trust_existing=False)
    assert (there.status, there.size) == (storage_move.COPIED, len(content))
    assert 0 < source.largest <= STREAM_PART_SIZE
    assert bucket.read(key) == content

    back = MeasuredFolder(tmp_path / 'back')
    home = storage_move.copy_blob(bucket_store, back, expected, trust_existing=False)
    assert home.status == storage_move.COPIED
    assert back.path_for(key).read_bytes() == content
    # The copy read back at the destination in pieces too.
    again = storage_move.copy_blob(bucket_store, back, expected, trust_existing=False)
    assert again.status == storage_move.PRESENT
    assert 0 < back.largest <= storage_move.CHUNK
