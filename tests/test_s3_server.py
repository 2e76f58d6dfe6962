"""The service on a bucket: ``python -m ngshare --storage s3://BUCKET/PREFIX``.

Real ngshare processes on a real S3-compatible store (SeaweedFS,
:mod:`_seaweedfs`), never a mock of the client:

* the whole API round trip (release, fetch, submit, collect, feedback) on
  PostgreSQL and a bucket leaves its blobs in the bucket under their sha256
  keys, and **nothing on local disk**: the process runs with its working
  directory, ``HOME`` and ``TMPDIR`` in one empty folder, which stays empty;
* start-up on a store that cannot work is one ``ngshare: error:`` line
  (unreachable endpoint, missing bucket), before the database is touched;
  a 0.6.0 database is not upgraded onto a bucket (it must be upgraded on
  its folder and its files moved first);
* two replicas on one PostgreSQL and one bucket share the login cookie
  secret (the object ``ngshare_cookie_secret``): a browser logged in through
  one is logged in at the other;
* the store killed (by PID) while a large download streams: the client
  sees a broken answer, never a complete one, and the server still answers
  ``/healthz``; then an upload: a JSON 503 ``Storage unavailable``, no row,
  the server still serving;
* the shared in-process server on a bucket is emptied between tests.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import sqlite3
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from _api import err, files_of, ok, tree
from _ports import free_port
from _seaweedfs import start_seaweedfs
from _servers import start_server
from _transfer import FormBody

from ngshare.blobs.store import blob_key
from ngshare.config import COOKIE_SECRET_NAME, Config
from ngshare.startup import StartupError, prepare_database

COURSE = 'S3 101'
ADMIN = 'root'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
PERSON = {'first_name': 'L', 'last_name': 'S', 'email': 'l@example.org'}
FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'ngshare-0.6.0'
PATIENCE = 60.0
# The download outgrows every buffer between the store and the client (the
# sockets' and the gateway's, a few MiB each), so that killing the store
# after the first MiB leaves most of it unsent.
BIG = 32 * 1000 * 1000


def wait_for(condition, what: str) -> None:
    """Poll ``condition`` (a bounded loop) until it holds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'still waiting for {what} after {PATIENCE}s')
        time.sleep(0.02)


def error_line(done) -> str:
    """The one ``ngshare: error:`` line of a failed start, no traceback."""
    shown = f'rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}'
    assert done.returncode == 1, shown
    assert 'Traceback' not in done.output, shown
    lines = [line for line in done.stderr.splitlines() if line.startswith('ngshare:')]
    assert len(lines) == 1 and lines[0].startswith('ngshare: error: '), shown
    return lines[0]


def make_course(server, course: str = COURSE) -> None:
    ok(
        server.post(
            ('course', course),
            user=ADMIN,
            data={'instructors': json.dumps([INSTRUCTOR])},
        )
    )
    ok(server.post(('student', course, STUDENT), user=INSTRUCTOR, data=PERSON))


def release(server, name: str, files: dict[str, bytes]):
    return server.post(
        ('assignment', COURSE, name), user=INSTRUCTOR, data={'files': tree(files)}
    )


def assignment_names(server) -> list[str]:
    return ok(server.get(('assignments', COURSE), user=INSTRUCTOR))['assignments']


def healthy(server) -> None:
    resp = requests.get(server.base + '/healthz', timeout=10)
    assert resp.status_code == 200, resp.text


# --------------------------------------------------------------------------
# the round trip, with nothing on local disk


def test_round_trip_on_a_bucket_writes_nothing_locally(
    tmp_path, s3_storage, postgres_url
):
    empty = tmp_path / 'empty'
    empty.mkdir()
    env = {**s3_storage.env, 'HOME': str(empty), 'TMPDIR': str(empty)}
    server = start_server(
        tmp_path / 'logs',
        hub_mode=False,
        database_url=postgres_url,
        storage=s3_storage.url,
        env=env,
        cwd=empty,
    )
    try:
        make_course(server)
        task = {'ps1.ipynb': b'{"cells": []}', 'data/table.bin': os.urandom(300_000)}
        ok(release(server, 'ps1', task))
        fetched = ok(server.get(('assignment', COURSE, 'ps1'), user=STUDENT))
        assert files_of(fetched) == task
        answer = {'ps1.ipynb': b'{"cells": ["answer"]}'}
        stamp = ok(
            server.post(
                ('submission', COURSE, 'ps1'),
                user=STUDENT,
                data={'files': tree(answer)},
            )
        )['timestamp']
        collected = ok(
            server.get(('submission', COURSE, 'ps1', STUDENT), user=INSTRUCTOR)
        )
        assert files_of(collected) == answer
        feedback = {'ps1.html': b'<p>well done</p>'}
        ok(
            server.post(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=INSTRUCTOR,
                data={'timestamp': stamp, 'files': tree(feedback)},
            )
        )
        given = ok(
            server.get(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=STUDENT,
                params={'timestamp': stamp},
            )
        )
        assert files_of(given) == feedback
        healthy(server)
    finally:
        server.stop()
    uploaded = [*task.values(), *answer.values(), *feedback.values()]
    # The blobs under their sha256 keys, and the cookie secret every replica
    # of this PostgreSQL database shares: nothing else.
    assert s3_storage.keys() == sorted(
        {blob_key(content) for content in uploaded} | {COOKIE_SECRET_NAME}
    )
    for content in uploaded:
        assert s3_storage.read(blob_key(content)) == content
    assert len(bytes.fromhex(s3_storage.read(COOKIE_SECRET_NAME).decode())) == 32
    assert sorted(empty.rglob('*')) == []
    assert 'Traceback' not in server.log_text(), server.describe()


# --------------------------------------------------------------------------
# start-up: one line, before the database is touched


@pytest.mark.parametrize('case', ['unreachable', 'missing-bucket'])
def test_unusable_store_is_one_line(tmp_path, s3_storage, case):
    # Each refusal's wording is the store's (tests/test_s3_store.py, with a
    # refused key too); here: one line, the flags reach the store, and the
    # database is not touched.
    args, storage = [], s3_storage.url
    if case == 'unreachable':
        args = ['--s3-endpoint-url', f'http://127.0.0.1:{free_port()}']
        expected = 'cannot reach the object store'
    else:
        storage = 's3://no-such-bucket-here/ngshare'
        expected = "bucket 'no-such-bucket-here' does not exist"
    workdir = tmp_path / 'ngshare'
    done = start_server(
        workdir,
        hub_mode=False,
        storage=storage,
        env=s3_storage.env,
        args=args,
        expect_fail=True,
    )
    line = error_line(done)
    assert line.startswith(f'ngshare: error: object storage {storage} at '), line
    assert expected in line, line
    assert not (workdir / 'ngshare.db').exists(), 'the database was touched'
    assert s3_storage.keys() == []


def test_a_0_6_0_database_is_not_upgraded_onto_a_bucket(tmp_path):
    # The check needs no store: the database's revision decides.
    database = tmp_path / 'ngshare.db'
    shutil.copyfile(FIXTURE / 'ngshare.db', database)
    before = database.read_bytes()
    storage = 's3://bucket/ngshare'
    config = Config(database_url=f'sqlite:///{database}', storage_path=storage)
    with pytest.raises(StartupError) as refused:
        prepare_database(config)
    line = str(refused.value)
    assert '\n' not in line
    assert 'written by ngshare 0.x' in line, line
    assert f'`ngshare-admin storage copy --from FOLDER --to {storage}`' in line
    assert 'docs/object-storage.md' in line, line
    assert database.read_bytes() == before
    with sqlite3.connect(f'file:{database}?mode=ro', uri=True) as connection:
        revisions = connection.execute('SELECT version_num FROM alembic_version')
        assert revisions.fetchall() == [('1921a169739b',)]


# --------------------------------------------------------------------------
# replicas share the cookie secret through the bucket


def browser_login(server, name: str) -> requests.Session:
    """Log ``name`` in through the Hub stand-in's OAuth, as a browser does."""
    browser = requests.Session()
    start = browser.get(server.url('courses'), allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    authorize = urllib.parse.urljoin(server.hub.url, start.headers['Location'])
    back = browser.get(
        authorize, params={'login_as': name}, allow_redirects=False, timeout=30
    )
    assert back.status_code == 302, back.text
    callback = urllib.parse.urljoin(server.base, back.headers['Location'])
    done = browser.get(callback, allow_redirects=False, timeout=30)
    assert done.status_code == 302, (done.status_code, done.text[:500])
    return browser


def test_replicas_share_the_cookie_secret_in_the_bucket(
    tmp_path, hub, s3_storage, postgres_url
):
    def start(n: int):
        return start_server(
            tmp_path / f'replica-{n}',
            hub_mode=True,
            hub=hub,
            database_url=postgres_url,
            storage=s3_storage.url,
            env=s3_storage.env,
        )

    # Started together, as a Deployment's pods are: both race to create the
    # secret, and both must end up with the one that won.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start, n) for n in (1, 2)]
    replicas = [future.result() for future in starting if not future.exception()]
    if len(replicas) < 2:
        for replica in replicas:
            replica.stop()
        next(future.result() for future in starting if future.exception())
    try:
        first, second = replicas
        ok(
            first.post(
                ('course', 'Shared 101'),
                user=ADMIN,
                data={'instructors': json.dumps(['eric'])},
            )
        )
        eric = browser_login(first, 'eric')
        # The cookie the first replica signed is good at the second.
        resp = eric.get(second.url('courses'), allow_redirects=False, timeout=30)
        assert ok(resp)['courses'] == ['Shared 101']
        # Without it, the second asks for a login: the cookie is what counts.
        err(
            requests.get(second.url('courses'), allow_redirects=False, timeout=30),
            302,
            'Login required',
        )
    finally:
        for replica in replicas:
            replica.stop()
    stored = s3_storage.keys()
    assert COOKIE_SECRET_NAME in stored, stored
    for replica in replicas:
        assert not list(replica.workdir.rglob(f'*{COOKIE_SECRET_NAME}*'))


# --------------------------------------------------------------------------
# faults: the store killed under a running server


def test_store_killed_during_a_download_then_an_upload(tmp_path):
    store = start_seaweedfs(tmp_path / 'seaweedfs')
    try:
        bucket = store.create_bucket()
        server = start_server(
            tmp_path / 'ngshare',
            hub_mode=False,
            storage=f's3://{bucket}/ngshare',
            env=store.env,
        )
        try:
            _kill_during_download(server, store)
            _upload_to_a_dead_store(server)
        finally:
            server.stop()
    finally:
        store.kill()
    assert 'Traceback' not in server.log_text(), server.describe()


def _kill_during_download(server, store) -> None:
    make_course(server)
    body = FormBody({'big.bin': (BIG, 7)}, user=INSTRUCTOR)
    resp = requests.post(
        server.url(('assignment', COURSE, 'big')),
        data=body,
        headers=body.headers(),
        timeout=PATIENCE,
    )
    ok(resp)
    ok(release(server, 'small', {'a.txt': b'kept'}))
    complete = 4 * ((BIG + 2) // 3)  # the base64 of the file alone
    with requests.get(
        server.url(('assignment', COURSE, 'big')),
        params={'user': STUDENT},
        stream=True,
        timeout=PATIENCE,
    ) as answer:
        assert answer.status_code == 200
        pieces = answer.iter_content(64 * 1024)
        received = 0
        while received < 1024 * 1024:
            received += len(next(pieces))
        store.kill()
        tail = b''
        broken = False
        try:
            for piece in pieces:
                received += len(piece)
                tail = (tail + piece)[-16:]
        except requests.RequestException:
            broken = True
    # A broken answer (the connection closed mid-body), never one that ends
    # as a complete JSON tree does.
    assert broken, (received, tail)
    assert received < complete, received
    assert not tail.endswith(b'"}]}'), tail
    healthy(server)


def _upload_to_a_dead_store(server) -> None:
    # The body is received whole, then the store cannot take the blob.
    resp = release(server, 'lost', {'lost.bin': os.urandom(100_000)})
    err(resp, 503, 'Storage unavailable')
    assert resp.headers['Content-Type'].startswith('application/json')
    healthy(server)
    # The database still serves: the failed release is not there.
    assert assignment_names(server) == ['big', 'small']
    err(
        server.get(('assignment', COURSE, 'lost'), user=STUDENT),
        404,
        'Assignment not found',
    )
    assert 'Storage unavailable: cannot write' in server.log_text(), server.describe()


# --------------------------------------------------------------------------
# the shared in-process server on a bucket


@pytest.mark.parametrize('ngshare_storage', ['s3'], indirect=True)
def test_shared_server_on_a_bucket_is_emptied(shared_server):
    server = shared_server
    assert str(server.storage).startswith('s3://')
    make_course(server)
    ok(release(server, 'ps1', {'a.txt': b'in the bucket'}))
    assert server.blob_keys() == [blob_key(b'in the bucket')]
    server.empty()
    assert server.blob_keys() == []
    assert ok(server.get('courses', user=ADMIN))['courses'] == []
