"""Feedback APIs: POST and GET /feedback/<course>/<assignment>/<student>."""

from __future__ import annotations

import json
import os

import pytest
from _api import err, files_of, md5, ok, tree

pytestmark = [pytest.mark.both_databases, pytest.mark.both_storages]

ADMIN = 'root'
COURSE = 'NBG 101'
ASSIGNMENT = 'Assignment 1'


def person(name):
    return {'first_name': name, 'last_name': name, 'email': name + '@example.org'}


def setup(server):
    """kevin teaches COURSE to lawrence and eric; both submitted once.

    Returns the timestamps ``{student: timestamp}``.
    """
    ok(
        server.post(
            ('course', COURSE), user=ADMIN, data={'instructors': json.dumps(['kevin'])}
        )
    )
    for student in ('lawrence', 'eric'):
        ok(
            server.post(
                ('student', COURSE, student), user='kevin', data=person(student)
            )
        )
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user='kevin',
            data={'files': tree({'task.ipynb': b'task'})},
        )
    )
    return {
        student: submit(server, student, {'task.ipynb': student.encode()})
        for student in ('lawrence', 'eric')
    }


def submit(server, student, files):
    return ok(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=student,
            data={'files': tree(files)},
        )
    )['timestamp']


def give(server, student, stamp, files, *, user='kevin'):
    return server.post(
        ('feedback', COURSE, ASSIGNMENT, student),
        user=user,
        data={'timestamp': stamp, 'files': tree(files)},
    )


def fetch(server, student, stamp, *, user=None, **params):
    return server.get(
        ('feedback', COURSE, ASSIGNMENT, student),
        user=user or student,
        params={'timestamp': stamp, **params},
    )


# GET before any feedback


def test_no_feedback_yet(shared_server):
    server = shared_server
    stamps = setup(server)
    for user in ('lawrence', 'kevin', ADMIN):
        answer = ok(fetch(server, 'lawrence', stamps['lawrence'], user=user))
        assert answer == {'success': True, 'timestamp': stamps['lawrence'], 'files': []}


# POST then GET


def test_feedback_round_trip(shared_server):
    server = shared_server
    stamps = setup(server)
    files = {'feedback/task.html': b'<p>Well done</p>', 'grade.txt': b'10/10'}
    ok(give(server, 'lawrence', stamps['lawrence'], files))
    for user in ('lawrence', 'kevin', ADMIN):
        answer = ok(fetch(server, 'lawrence', stamps['lawrence'], user=user))
        assert answer['timestamp'] == stamps['lawrence']
        assert files_of(answer) == files
        assert [f['path'] for f in answer['files']] == list(files)
    # eric's submission has no feedback.
    assert ok(fetch(server, 'eric', stamps['eric']))['files'] == []


def test_feedback_timestamp_without_utc_suffix(shared_server):
    server = shared_server
    stamps = setup(server)
    bare = stamps['lawrence'][: -len(' UTC')]
    ok(give(server, 'lawrence', bare, {'fb.txt': b'ok'}))
    answer = ok(fetch(server, 'lawrence', bare))
    assert answer['timestamp'] == stamps['lawrence']
    assert files_of(answer) == {'fb.txt': b'ok'}
    answer = ok(fetch(server, 'lawrence', stamps['lawrence']))
    assert files_of(answer) == {'fb.txt': b'ok'}


def test_feedback_list_only(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'a.html': b'A', 'b/c.txt': b'C'}))
    answer = ok(fetch(server, 'lawrence', stamps['lawrence'], list_only='true'))
    assert answer['timestamp'] == stamps['lawrence']
    assert answer['files'] == [
        {'path': 'a.html', 'checksum': md5(b'A')},
        {'path': 'b/c.txt', 'checksum': md5(b'C')},
    ]


def test_feedback_replaces_old_feedback(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'old.html': b'old', 'x': b'1'}))
    ok(give(server, 'lawrence', stamps['lawrence'], {'new.html': b'new', 'x': b'2'}))
    answer = ok(fetch(server, 'lawrence', stamps['lawrence']))
    assert files_of(answer) == {'new.html': b'new', 'x': b'2'}
    ok(give(server, 'lawrence', stamps['lawrence'], {}))
    assert ok(fetch(server, 'lawrence', stamps['lawrence']))['files'] == []


def test_replaced_feedback_leaves_storage(
    start_ngshare, ngshare_database_url, ngshare_storage
):
    # Without the grace for downloads in flight (see test_blob_grace.py, where
    # the files go once it has passed), the old files go at once.
    server = start_ngshare(
        hub_mode=False,
        args=['--released-blob-grace', '0'],
        database_url=ngshare_database_url,
    )
    stamps = setup(server)
    old = os.urandom(4096)
    new = os.urandom(4096)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb.bin': old}))
    assert old in stored_contents(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb.bin': new}))
    assert files_of(ok(fetch(server, 'lawrence', stamps['lawrence']))) == {
        'fb.bin': new
    }
    contents = stored_contents(server)
    assert new in contents
    assert old not in contents


def stored_contents(server):
    """The contents of everything the server stored, folder or bucket."""
    return set(server.blobs.contents().values())


def test_feedback_is_per_submission(shared_server):
    server = shared_server
    stamps = setup(server)
    first = stamps['lawrence']
    second = submit(server, 'lawrence', {'task.ipynb': b'again'})
    ok(give(server, 'lawrence', first, {'fb.txt': b'on first'}))
    assert files_of(ok(fetch(server, 'lawrence', first))) == {'fb.txt': b'on first'}
    answer = ok(fetch(server, 'lawrence', second))
    assert answer == {'success': True, 'timestamp': second, 'files': []}
    ok(give(server, 'lawrence', second, {'fb.txt': b'on second'}))
    assert files_of(ok(fetch(server, 'lawrence', first))) == {'fb.txt': b'on first'}
    assert files_of(ok(fetch(server, 'lawrence', second))) == {'fb.txt': b'on second'}


# Permissions


def test_other_student_cannot_read_feedback(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb.txt': b'private'}))
    err(
        fetch(server, 'lawrence', stamps['lawrence'], user='eric'),
        403,
        'Permission denied',
    )
    err(
        fetch(server, 'lawrence', stamps['lawrence'], user='stranger'),
        403,
        'Permission denied',
    )


def test_students_cannot_give_feedback(shared_server):
    server = shared_server
    stamps = setup(server)
    err(
        give(server, 'lawrence', stamps['lawrence'], {'fb': b'self'}, user='lawrence'),
        403,
        'Permission denied',
    )
    err(
        give(server, 'lawrence', stamps['lawrence'], {'fb': b'peer'}, user='eric'),
        403,
        'Permission denied',
    )
    assert ok(fetch(server, 'lawrence', stamps['lawrence']))['files'] == []


def test_admin_may_give_feedback(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'eric', stamps['eric'], {'fb': b'from root'}, user=ADMIN))
    assert files_of(ok(fetch(server, 'eric', stamps['eric']))) == {'fb': b'from root'}


def test_removed_student_loses_feedback_access(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb': b'x'}))
    ok(server.delete(('student', COURSE, 'lawrence'), user='kevin'))
    err(fetch(server, 'lawrence', stamps['lawrence']), 403, 'Permission denied')
    # Instructors still see it.
    answer = ok(fetch(server, 'lawrence', stamps['lawrence'], user='kevin'))
    assert files_of(answer) == {'fb': b'x'}


# POST errors


def test_post_feedback_missing_timestamp(shared_server):
    server = shared_server
    stamps = setup(server)
    err(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'files': tree({'fb': b'x'})},
        ),
        400,
        'Please supply timestamp',
    )
    assert ok(fetch(server, 'lawrence', stamps['lawrence']))['files'] == []


@pytest.mark.parametrize(
    'stamp', ['tomorrow', '2020-01-30', '2020-02-30 10:30:47.5 UTC', '10:30:47']
)
def test_post_feedback_bad_timestamp(shared_server, stamp):
    server = shared_server
    stamps = setup(server)
    err(give(server, 'lawrence', stamp, {'fb': b'x'}), 400, 'Time format incorrect')
    assert ok(fetch(server, 'lawrence', stamps['lawrence']))['files'] == []


def test_post_feedback_missing_files(shared_server):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb': b'kept'}))
    err(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': stamps['lawrence']},
        ),
        400,
        'Please supply files',
    )
    # The old feedback survives a failed replacement.
    assert files_of(ok(fetch(server, 'lawrence', stamps['lawrence']))) == {
        'fb': b'kept'
    }


@pytest.mark.parametrize(
    ('files', 'message'),
    [
        ('garbage', 'Files cannot be JSON decoded'),
        (
            '[{"path": "ok", "content": "YQ=="}, {"path": "x"}]',
            'Files cannot be JSON decoded',
        ),
        (
            '[{"path": "ok", "content": "YQ=="}, {"path": "x", "content": "@@"}]',
            'Content cannot be base64 decoded',
        ),
        (
            '[{"path": "ok", "content": "YQ=="}, {"path": "/x", "content": "YQ=="}]',
            'Illegal path',
        ),
        ('[{"path": "ok", "content": "YQ==", "checksum": "0"}]', 'Checksum mismatch'),
    ],
)
def test_post_feedback_bad_files_keeps_old(shared_server, files, message):
    server = shared_server
    stamps = setup(server)
    ok(give(server, 'lawrence', stamps['lawrence'], {'fb': b'kept'}))
    err(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': stamps['lawrence'], 'files': files},
        ),
        400,
        message,
    )
    assert files_of(ok(fetch(server, 'lawrence', stamps['lawrence']))) == {
        'fb': b'kept'
    }


def test_post_feedback_submission_not_found(shared_server):
    server = shared_server
    stamps = setup(server)
    for stamp in (
        '2020-01-30 10:30:47.524219 UTC',
        '2020-01-30 10:30:47',
        stamps['eric'],
    ):
        err(give(server, 'lawrence', stamp, {'fb': b'x'}), 404, 'Submission not found')
    assert ok(fetch(server, 'eric', stamps['eric']))['files'] == []


def test_post_feedback_not_found_objects(shared_server):
    server = shared_server
    stamps = setup(server)
    stamp = stamps['lawrence']
    err(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'nobody'),
            user='kevin',
            data={'timestamp': stamp, 'files': tree({'a': b'a'})},
        ),
        404,
        'Student not found',
    )
    err(
        server.post(
            ('feedback', COURSE, 'nope', 'lawrence'),
            user='kevin',
            data={'timestamp': stamp, 'files': tree({'a': b'a'})},
        ),
        404,
        'Assignment not found',
    )
    err(
        server.post(
            ('feedback', 'nope', ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': stamp, 'files': tree({'a': b'a'})},
        ),
        404,
        'Course not found',
    )


# GET errors


def test_get_feedback_errors(shared_server):
    server = shared_server
    stamps = setup(server)
    stamp = stamps['lawrence']
    err(
        server.get(('feedback', COURSE, ASSIGNMENT, 'lawrence'), user='lawrence'),
        400,
        'Please supply timestamp',
    )
    err(fetch(server, 'lawrence', 'not a time'), 400, 'Time format incorrect')
    err(
        fetch(server, 'lawrence', '2020-01-30 10:30:47.524219 UTC'),
        404,
        'Submission not found',
    )
    err(fetch(server, 'lawrence', stamps['eric']), 404, 'Submission not found')
    err(fetch(server, 'nobody', stamp, user='kevin'), 404, 'Student not found')
    err(
        server.get(
            ('feedback', COURSE, 'nope', 'lawrence'),
            user='lawrence',
            params={'timestamp': stamp},
        ),
        404,
        'Assignment not found',
    )
    err(
        server.get(
            ('feedback', 'nope', ASSIGNMENT, 'lawrence'),
            user='lawrence',
            params={'timestamp': stamp},
        ),
        404,
        'Course not found',
    )
