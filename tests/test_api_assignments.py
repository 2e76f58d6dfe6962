"""Assignment APIs: /assignments and /assignment."""

from __future__ import annotations

import json
import os

import pytest
from _api import b64, err, files_of, md5, ok, tree

pytestmark = [pytest.mark.both_databases, pytest.mark.both_storages]

ADMIN = 'root'
COURSE = 'NBG 101'
ASSIGNMENT = 'Assignment 1'


def person(name):
    return {'first_name': name, 'last_name': name, 'email': name + '@example.org'}


def setup(server, course=COURSE, *, students=('lawrence', 'eric'), release=None):
    """A course taught by kevin with ``students``; optionally released files."""
    ok(
        server.post(
            ('course', course), user=ADMIN, data={'instructors': json.dumps(['kevin'])}
        )
    )
    for student in students:
        ok(
            server.post(
                ('student', course, student), user='kevin', data=person(student)
            )
        )
    if release is not None:
        release_assignment(server, ASSIGNMENT, release, course=course)


def release_assignment(server, name, files, *, course=COURSE, user='kevin'):
    return ok(
        server.post(
            ('assignment', course, name), user=user, data={'files': tree(files)}
        )
    )


def snapshot(server):
    """Everything the server stored, folder or bucket: key -> content."""
    return server.blobs.contents()


def assignment_names(server, course=COURSE, user='kevin'):
    return ok(server.get(('assignments', course), user=user))['assignments']


# GET /assignments


def test_assignments_listed_in_release_order(shared_server):
    server = shared_server
    setup(server)
    assert assignment_names(server) == []
    for name in ['zeta', 'Alpha', 'mid 2', 'ä']:
        release_assignment(server, name, {'a.txt': name.encode()})
    assert assignment_names(server) == ['zeta', 'Alpha', 'mid 2', 'ä']
    assert assignment_names(server, user='lawrence') == ['zeta', 'Alpha', 'mid 2', 'ä']
    assert assignment_names(server, user=ADMIN) == ['zeta', 'Alpha', 'mid 2', 'ä']


def test_assignments_are_per_course(shared_server):
    server = shared_server
    setup(server)
    setup(server, 'other', students=())
    release_assignment(server, 'a1', {'x': b'1'})
    release_assignment(server, 'b1', {'x': b'2'}, course='other')
    release_assignment(server, 'a1', {'x': b'3'}, course='other')
    assert assignment_names(server) == ['a1']
    assert assignment_names(server, 'other') == ['b1', 'a1']
    assert files_of(ok(server.get(('assignment', COURSE, 'a1'), user='lawrence'))) == {
        'x': b'1'
    }
    assert files_of(ok(server.get(('assignment', 'other', 'a1'), user='kevin'))) == {
        'x': b'3'
    }


# GET /assignment


def test_fetch_assignment(shared_server):
    server = shared_server
    files = {
        'Problem 1.ipynb': b'{"cells": []}',
        'data/input.csv': b'a,b\n1,2\n',
        'empty.txt': b'',
    }
    setup(server, release=files)
    for user in ('lawrence', 'kevin', ADMIN):
        answer = ok(server.get(('assignment', COURSE, ASSIGNMENT), user=user))
        assert answer['files'] == [
            {'path': path, 'checksum': md5(content), 'content': b64(content)}
            for path, content in files.items()
        ]
        assert files_of(answer) == files
        assert set(answer) == {'success', 'files'}


def test_fetch_assignment_list_only(shared_server):
    server = shared_server
    files = {'b.txt': b'bee', 'a/c.txt': b'sea'}
    setup(server, release=files)
    answer = ok(
        server.get(
            ('assignment', COURSE, ASSIGNMENT),
            user='lawrence',
            params={'list_only': 'true'},
        )
    )
    assert answer['files'] == [
        {'path': 'b.txt', 'checksum': md5(b'bee')},
        {'path': 'a/c.txt', 'checksum': md5(b'sea')},
    ]
    answer = ok(
        server.get(
            ('assignment', COURSE, ASSIGNMENT),
            user='lawrence',
            params={'list_only': 'false'},
        )
    )
    assert files_of(answer) == files


def test_fetch_missing_assignment(shared_server):
    server = shared_server
    setup(server, release={'a': b'a'})
    err(
        server.get(('assignment', COURSE, 'nope'), user='kevin'),
        404,
        'Assignment not found',
    )
    err(
        server.get(('assignment', COURSE, 'assignment 1'), user='kevin'),
        404,
        'Assignment not found',
    )
    err(
        server.get(('assignment', 'nope', ASSIGNMENT), user='kevin'),
        404,
        'Course not found',
    )


def test_unrelated_user_cannot_fetch(shared_server):
    server = shared_server
    setup(server, release={'a': b'a'})
    err(
        server.get(('assignment', COURSE, ASSIGNMENT), user='stranger'),
        403,
        'Permission denied',
    )
    err(server.get(('assignments', COURSE), user='stranger'), 403, 'Permission denied')


# POST /assignment


def test_release_duplicate_conflicts(shared_server):
    server = shared_server
    setup(server, release={'a.txt': b'first'})
    err(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user='kevin',
            data={'files': tree({'a.txt': b'second', 'b.txt': b'new'})},
        ),
        409,
        'Assignment already exists',
    )
    answer = ok(server.get(('assignment', COURSE, ASSIGNMENT), user='lawrence'))
    assert files_of(answer) == {'a.txt': b'first'}
    assert assignment_names(server) == [ASSIGNMENT]


def test_release_empty_tree(shared_server):
    server = shared_server
    setup(server)
    ok(server.post(('assignment', COURSE, 'empty'), user='kevin', data={'files': '[]'}))
    assert (
        ok(server.get(('assignment', COURSE, 'empty'), user='lawrence'))['files'] == []
    )
    assert assignment_names(server) == ['empty']


def test_student_cannot_release(shared_server):
    server = shared_server
    setup(server)
    err(
        server.post(
            ('assignment', COURSE, 'a1'),
            user='lawrence',
            data={'files': tree({'a': b'a'})},
        ),
        403,
        'Permission denied',
    )
    assert assignment_names(server) == []


GOOD = {'path': 'good.txt', 'content': b64(b'good')}


@pytest.mark.parametrize(
    ('data', 'message'),
    [
        ({}, 'Please supply files'),
        ({'files': 'not json'}, 'Files cannot be JSON decoded'),
        ({'files': '[{"path": "a", "content": ""'}, 'Files cannot be JSON decoded'),
        ({'files': '{"path": "a", "content": ""}'}, 'Files cannot be JSON decoded'),
        ({'files': '"a"'}, 'Files cannot be JSON decoded'),
        ({'files': json.dumps([GOOD, 'a'])}, 'Files cannot be JSON decoded'),
        ({'files': json.dumps([GOOD, {'path': 'a'}])}, 'Files cannot be JSON decoded'),
        (
            {'files': json.dumps([GOOD, {'content': 'YQ=='}])},
            'Files cannot be JSON decoded',
        ),
        (
            {'files': json.dumps([GOOD, {'path': 'a', 'content': '!!!'}])},
            'Content cannot be base64 decoded',
        ),
        (
            {'files': json.dumps([GOOD, {'path': 'a', 'content': 'zoë'}])},
            'Content cannot be base64 decoded',
        ),
        (
            {'files': json.dumps([GOOD, {'path': '../a', 'content': 'YQ=='}])},
            'Illegal path',
        ),
        (
            {'files': json.dumps([GOOD, {'path': '/etc/a', 'content': 'YQ=='}])},
            'Illegal path',
        ),
    ],
    ids=[
        'missing',
        'garbage',
        'truncated',
        'object',
        'string',
        'entry-string',
        'no-content',
        'no-path',
        'bad-chars',
        'non-ascii',
        'dotdot',
        'absolute',
    ],
)
def test_release_bad_files(shared_server, data, message):
    server = shared_server
    setup(server)
    before = snapshot(server)
    err(
        server.post(('assignment', COURSE, 'a1'), user='kevin', data=data), 400, message
    )
    err(
        server.get(('assignment', COURSE, 'a1'), user='kevin'),
        404,
        'Assignment not found',
    )
    assert assignment_names(server) == []
    assert snapshot(server) == before


@pytest.mark.parametrize('bad', ['content', 'path', 'checksum'])
def test_release_nothing_half_written(shared_server, bad):
    server = shared_server
    setup(server)
    entries = [
        {'path': f'good{i}.bin', 'content': b64(os.urandom(1000))} for i in range(3)
    ]
    bad_entry = {'path': 'bad.bin', 'content': b64(os.urandom(1000))}
    if bad == 'content':
        bad_entry['content'] = '%%%' + bad_entry['content']
        message = 'Content cannot be base64 decoded'
    elif bad == 'path':
        bad_entry['path'] = 'a/../../bad.bin'
        message = 'Illegal path'
    else:
        bad_entry['checksum'] = md5(b'something else')
        message = 'Checksum mismatch'
    entries.insert(2, bad_entry)
    before = snapshot(server)
    err(
        server.post(
            ('assignment', COURSE, 'a1'),
            user='kevin',
            data={'files': json.dumps(entries)},
        ),
        400,
        message,
    )
    err(
        server.get(('assignment', COURSE, 'a1'), user='lawrence'),
        404,
        'Assignment not found',
    )
    assert snapshot(server) == before
    # The name is still free.
    release_assignment(server, 'a1', {'ok.txt': b'ok'})
    assert files_of(ok(server.get(('assignment', COURSE, 'a1'), user='lawrence'))) == {
        'ok.txt': b'ok'
    }


def test_release_missing_course(shared_server):
    server = shared_server
    setup(server)
    err(
        server.post(
            ('assignment', 'nope', 'a1'), user=ADMIN, data={'files': tree({'a': b'a'})}
        ),
        404,
        'Course not found',
    )


# DELETE /assignment


def test_delete_assignment(shared_server):
    server = shared_server
    setup(server, release={'a.txt': b'a'})
    release_assignment(server, 'other', {'o.txt': b'o'})
    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    assert assignment_names(server) == ['other']
    err(
        server.get(('assignment', COURSE, ASSIGNMENT), user='lawrence'),
        404,
        'Assignment not found',
    )
    err(
        server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'),
        404,
        'Assignment not found',
    )
    err(
        server.get(('submissions', COURSE, ASSIGNMENT), user='kevin'),
        404,
        'Assignment not found',
    )
    assert files_of(ok(server.get(('assignment', COURSE, 'other'), user='eric'))) == {
        'o.txt': b'o'
    }


def test_delete_assignment_removes_submissions_and_feedback(shared_server):
    server = shared_server
    setup(server, release={'a.txt': b'task v1'})
    stamp = ok(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user='lawrence',
            data={'files': tree({'a.txt': b'answer'})},
        )
    )['timestamp']
    ok(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': stamp, 'files': tree({'fb.html': b'good'})},
        )
    )

    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    release_assignment(server, ASSIGNMENT, {'a.txt': b'task v2'})

    answer = ok(server.get(('assignment', COURSE, ASSIGNMENT), user='lawrence'))
    assert files_of(answer) == {'a.txt': b'task v2'}
    assert (
        ok(server.get(('submissions', COURSE, ASSIGNMENT), user='kevin'))['submissions']
        == []
    )
    assert (
        ok(
            server.get(('submissions', COURSE, ASSIGNMENT, 'lawrence'), user='lawrence')
        )['submissions']
        == []
    )
    err(
        server.get(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='lawrence',
            params={'timestamp': stamp},
        ),
        404,
        'Submission not found',
    )
    err(
        server.get(('submission', COURSE, ASSIGNMENT, 'lawrence'), user='kevin'),
        404,
        'Submission not found',
    )
    err(
        server.get(
            ('submission', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            params={'timestamp': stamp},
        ),
        404,
        'Submission not found',
    )


def test_delete_assignment_without_retention_removes_its_files(
    start_ngshare, ngshare_database_url, ngshare_storage
):
    # With a retention period (the default) deleted files are kept to be
    # restorable: see test_deleted.py. Without one, and without the grace
    # for downloads in flight (test_blob_grace.py), they go at once.
    server = start_ngshare(
        hub_mode=False,
        args=['--deleted-retention-days', '0', '--released-blob-grace', '0'],
        database_url=ngshare_database_url,
    )
    setup(server)
    task = os.urandom(4096)
    answer = os.urandom(4096)
    feedback = os.urandom(4096)
    release_assignment(server, ASSIGNMENT, {'task.bin': task})
    stamp = ok(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user='lawrence',
            data={'files': tree({'task.bin': answer})},
        )
    )['timestamp']
    ok(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            data={'timestamp': stamp, 'files': tree({'fb.bin': feedback})},
        )
    )
    stored = set(snapshot(server).values())
    assert {task, answer, feedback} <= stored

    ok(server.delete(('assignment', COURSE, ASSIGNMENT), user='kevin'))
    stored = set(snapshot(server).values())
    assert task not in stored
    assert answer not in stored
    assert feedback not in stored


def test_delete_assignment_keeps_shared_content(shared_server):
    server = shared_server
    setup(server)
    shared = os.urandom(2048)
    release_assignment(server, 'a1', {'x.bin': shared})
    release_assignment(server, 'a2', {'y.bin': shared, 'z.txt': b'z'})
    ok(server.delete(('assignment', COURSE, 'a1'), user='kevin'))
    answer = ok(server.get(('assignment', COURSE, 'a2'), user='lawrence'))
    assert files_of(answer) == {'y.bin': shared, 'z.txt': b'z'}


def test_student_cannot_delete_assignment(shared_server):
    server = shared_server
    setup(server, release={'a': b'a'})
    err(
        server.delete(('assignment', COURSE, ASSIGNMENT), user='lawrence'),
        403,
        'Permission denied',
    )
    assert assignment_names(server) == [ASSIGNMENT]


def test_delete_missing(shared_server):
    server = shared_server
    setup(server)
    err(
        server.delete(('assignment', COURSE, 'nope'), user='kevin'),
        404,
        'Assignment not found',
    )
    err(
        server.delete(('assignment', 'nope', 'nope'), user='kevin'),
        404,
        'Course not found',
    )


def test_assignments_missing_course(shared_server):
    err(
        shared_server.get(('assignments', 'nope'), user=ADMIN),
        404,
        'Course not found',
    )
