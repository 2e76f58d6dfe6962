"""A mistaken delete is not a disaster: deleted items are kept and restorable.

``nbgrader release_assignment --force`` deletes the assignment with every
submission before posting it again. The API answers as documented, but the
rows and files are kept for the retention period and ``ngshare-admin deleted``
lists, restores and purges them. Everything runs against a real server and
the real admin command on the same SQLite file and storage. The purge (and
the sweep after it) runs on a folder and on a bucket (``both_storages``: a
real SeaweedFS, the admin command given the service's ``--storage s3://...``
and AWS variables); a restore on a bucket is in test_storage_move.py (a
deleted assignment moved to a bucket, restored there, downloaded).
"""

from __future__ import annotations

import datetime
import sqlite3
import time

import pytest
from _admin import aws_env, ngshare_admin
from _api import err, files_of, ok, tree

from ngshare.blobs import open_store
from ngshare.config import Config
from ngshare.database.engine import make_engine, make_session_factories
from ngshare.housekeeping import sweep
from ngshare.runtime import Runtime

COURSE = 'NBG 101'
ASSIGNMENT = 'ps1'


def stored_blobs(server) -> set[bytes]:
    """The contents of the blobs the server stored (folder or bucket)."""
    keys = server.blob_keys()
    return {server.blobs.read(key) for key in keys if key.startswith('sha256/')}


def released_records(server) -> set[str]:
    path = server.database_url.removeprefix('sqlite:///')
    with sqlite3.connect(path) as connection:
        return {key for (key,) in connection.execute('SELECT key FROM released_blobs')}


def sweep_now(server) -> None:
    """The service's sweep, as if the grace period were over."""
    engine = make_engine(server.database_url)
    try:
        reader, writer = make_session_factories(engine)
        config = Config(
            database_url=server.database_url,
            storage_path=str(server.storage),
            released_blob_grace_seconds=0,
        )
        runtime = Runtime(
            config=config,
            engine=engine,
            reader=reader,
            writer=writer,
            store=open_store(str(server.storage)),
            authenticator=None,
            pool=None,
        )
        with pytest.MonkeyPatch.context() as environment:
            for name, value in aws_env(server).items():
                environment.setenv(name, value)  # boto3 reads them in-process
            assert sweep(runtime) > 0
    finally:
        engine.dispose()


def set_up_course(server) -> dict:
    """A course with two students who submitted (one twice) and feedback."""
    ok(server.post(('course', COURSE), user='root', data={'instructors': '["kevin"]'}))
    for student in ('lawrence', 'eric'):
        ok(
            server.post(
                ('student', COURSE, student),
                user='kevin',
                data={'first_name': student, 'last_name': 'L', 'email': f'{student}@x'},
            )
        )
    release(server, {'task.ipynb': b'original task', 'data/in.csv': b'a,b\n'})
    answers = {}
    for student, body in (('lawrence', b'L1'), ('eric', b'E1'), ('eric', b'E2')):
        content = body + b' answer of ' + student.encode()
        stamp = ok(
            server.post(
                ('submission', COURSE, ASSIGNMENT),
                user=student,
                data={'files': tree({'task.ipynb': content})},
            )
        )['timestamp']
        answers[(student, stamp)] = content
    lawrence_stamp = next(s for (who, s) in answers if who == 'lawrence')
    ok(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': lawrence_stamp, 'files': tree({'fb.html': b'10/10'})},
        )
    )
    return answers


def release(server, files, name=ASSIGNMENT):
    ok(
        server.post(
            ('assignment', COURSE, name), user='kevin', data={'files': tree(files)}
        )
    )


def submissions_of(server, name=ASSIGNMENT) -> list[dict]:
    return ok(server.get(('submissions', COURSE, name), user='kevin'))['submissions']


def listed_items(server) -> list[list[str]]:
    done = ngshare_admin(server, 'deleted', 'list')
    assert done.returncode == 0, done.stderr
    return [line.split('\t') for line in done.stdout.splitlines()]


def test_release_force_then_restore_the_submissions(start_ngshare):
    server = start_ngshare(hub_mode=False)
    answers = set_up_course(server)

    # What `nbgrader release_assignment --force` does: delete, post again.
    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    release(server, {'task.ipynb': b'corrected task'})
    assert submissions_of(server) == []
    # The documented API behaviour holds, but the files are still stored.
    assert set(answers.values()) <= stored_blobs(server)

    items = listed_items(server)
    assert len(items) == 1
    item_id, kind, what = items[0][:3]
    assert (kind, what) == ('assignment', f'{COURSE} / {ASSIGNMENT}')
    assert items[0][-1] == '3 submissions'

    done = ngshare_admin(server, 'deleted', 'restore', item_id, '--submissions-only')
    assert done.returncode == 0, done.stderr
    assert 'added 3 submissions' in done.stderr

    restored = submissions_of(server)
    assert sorted((s['student_id'], s['timestamp']) for s in restored) == sorted(
        answers
    )
    for (student, stamp), content in answers.items():
        got = ok(
            server.get(
                ('submission', COURSE, ASSIGNMENT, student),
                user='kevin',
                params={'timestamp': stamp},
            )
        )
        assert files_of(got) == {'task.ipynb': content}
    lawrence_stamp = next(s for (who, s) in answers if who == 'lawrence')
    feedback = ok(
        server.get(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='lawrence',
            params={'timestamp': lawrence_stamp},
        )
    )
    assert files_of(feedback) == {'fb.html': b'10/10'}
    # The live assignment keeps its new files; the item is used up.
    current = ok(server.get(('assignment', COURSE, ASSIGNMENT), user='eric'))
    assert files_of(current) == {'task.ipynb': b'corrected task'}
    assert listed_items(server) == []


def test_restore_under_a_taken_name_asks_for_another(start_ngshare):
    server = start_ngshare(hub_mode=False)
    answers = set_up_course(server)
    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    release(server, {'task.ipynb': b'new'})
    item_id = listed_items(server)[0][0]

    refused = ngshare_admin(server, 'deleted', 'restore', item_id)
    assert refused.returncode == 2
    assert '--as' in refused.stderr and '--submissions-only' in refused.stderr
    assert submissions_of(server) == []

    done = ngshare_admin(server, 'deleted', 'restore', item_id, '--as', 'ps1 (old)')
    assert done.returncode == 0, done.stderr
    old = ok(server.get(('assignment', COURSE, 'ps1 (old)'), user='eric'))
    assert files_of(old) == {'task.ipynb': b'original task', 'data/in.csv': b'a,b\n'}
    assert len(submissions_of(server, 'ps1 (old)')) == len(answers)
    assert submissions_of(server) == []


def test_deleted_course_comes_back_whole(start_ngshare):
    server = start_ngshare(hub_mode=False)
    answers = set_up_course(server)
    before = ok(server.get(('students', COURSE), user='kevin'))['students']
    ok(server.delete(('course', COURSE), user='root'))
    assert ok(server.get(('courses',), user='root'))['courses'] == []
    err(server.get(('assignments', COURSE), user='kevin'), 404, 'Course not found')

    item_id, kind = listed_items(server)[0][:2]
    assert kind == 'course'
    done = ngshare_admin(server, 'deleted', 'restore', item_id)
    assert done.returncode == 0, done.stderr

    assert ok(server.get(('students', COURSE), user='kevin'))['students'] == before
    assert ok(server.get(('courses',), user='lawrence'))['courses'] == [COURSE]
    assert len(submissions_of(server)) == len(answers)


@pytest.mark.both_storages
def test_purge_frees_only_what_nothing_else_uses(start_ngshare, ngshare_storage):
    server = start_ngshare(hub_mode=False)
    answers = set_up_course(server)
    # A second assignment shares the data file's content with the first.
    release(server, {'other.csv': b'a,b\n'}, name='ps2')
    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    assert set(answers.values()) <= stored_blobs(server)

    kept = ngshare_admin(server, 'deleted', 'purge')  # default: older than 30 days
    assert kept.returncode == 0, kept.stderr
    assert len(listed_items(server)) == 1

    done = ngshare_admin(server, 'deleted', 'purge', '--older-than-days', '0')
    assert done.returncode == 0, done.stderr
    assert listed_items(server) == []
    # Released, not removed yet: a download under way may still read them.
    assert set(answers.values()) <= stored_blobs(server)
    assert released_records(server)
    # Once the grace is over, the sweep removes what nothing else uses.
    sweep_now(server)
    assert released_records(server) == set()
    remaining = stored_blobs(server)
    assert not set(answers.values()) & remaining
    assert b'original task' not in remaining
    assert b'a,b\n' in remaining  # still used by ps2
    other = ok(server.get(('assignment', COURSE, 'ps2'), user='eric'))
    assert files_of(other) == {'other.csv': b'a,b\n'}


def test_the_service_purges_expired_items_by_itself(start_ngshare, tmp_path):
    workdir = tmp_path / 'deployment'
    server = start_ngshare(
        hub_mode=False, workdir=workdir, args=['--deleted-retention-days', '30']
    )
    answers = set_up_course(server)
    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    database_path = server.database_url.removeprefix('sqlite:///')
    server.stop()

    # Not yet expired: a restart keeps it.
    server = start_ngshare(
        hub_mode=False, workdir=workdir, args=['--deleted-retention-days', '30']
    )
    assert len(listed_items(server)) == 1
    assert set(answers.values()) <= stored_blobs(server)
    server.stop()

    # Expired: the service purges it when it starts (and hourly).
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    long_ago = now - datetime.timedelta(days=31)
    with sqlite3.connect(database_path) as connection:
        connection.execute(
            'UPDATE deleted_items SET deleted_at = ?',
            (long_ago.strftime('%Y-%m-%d %H:%M:%S.%f'),),
        )
    server = start_ngshare(
        hub_mode=False,
        workdir=workdir,
        args=['--deleted-retention-days', '30', '--released-blob-grace', '1'],
    )
    # The purge runs at start-up, before the server answers; the files go
    # once the grace is over (the sweep runs every second here).
    assert listed_items(server) == []
    # The sweep removes a blob's file, then its record, in that order: wait
    # for both.
    for _ in range(200):  # a bound, not a timing assertion
        if not set(answers.values()) & stored_blobs(server) and not released_records(
            server
        ):
            break
        time.sleep(0.1)
    assert not set(answers.values()) & stored_blobs(server)
    assert released_records(server) == set()
