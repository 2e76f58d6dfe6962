"""Submission APIs: /submissions and /submission."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from _api import err, files_of, md5, ok, tree

pytestmark = [pytest.mark.both_databases, pytest.mark.both_storages]

ADMIN = 'root'
COURSE = 'NBG 101'
ASSIGNMENT = 'Assignment 1'
TIMESTAMP_FORMAT = '%Y-%m-%d %H:%M:%S.%f UTC'
TIMESTAMP_PATTERN = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC')
# The server and the tests share one clock; allow for rounding only.
SLACK = datetime.timedelta(milliseconds=5)


def person(name):
    return {'first_name': name, 'last_name': name, 'email': name + '@example.org'}


def setup(server, *, students=('lawrence', 'eric')):
    """kevin teaches COURSE with ``students`` and released ASSIGNMENT."""
    ok(
        server.post(
            ('course', COURSE), user=ADMIN, data={'instructors': json.dumps(['kevin'])}
        )
    )
    for student in students:
        ok(
            server.post(
                ('student', COURSE, student), user='kevin', data=person(student)
            )
        )
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user='kevin',
            data={'files': tree({'task.ipynb': b'{"task": 1}'})},
        )
    )


def submit(server, user, files, assignment=ASSIGNMENT):
    answer = ok(
        server.post(
            ('submission', COURSE, assignment), user=user, data={'files': tree(files)}
        )
    )
    assert set(answer) == {'success', 'timestamp', 'due', 'late', 'seconds_late'}
    return answer['timestamp']


def parse(stamp):
    assert TIMESTAMP_PATTERN.fullmatch(stamp), stamp
    return datetime.datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc
    )


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def listed(server, *path, user='kevin'):
    return ok(server.get(('submissions', COURSE, ASSIGNMENT, *path), user=user))[
        'submissions'
    ]


def collect(server, student, *, user='kevin', **params):
    return ok(
        server.get(
            ('submission', COURSE, ASSIGNMENT, student), user=user, params=params
        )
    )


# POST /submission


def test_submit_timestamp_is_now_in_utc(shared_server):
    server = shared_server
    setup(server)
    before = now()
    stamp = submit(server, 'lawrence', {'a.ipynb': b'answer'})
    after = now()
    assert before - SLACK <= parse(stamp) <= after + SLACK


def test_submit_and_collect(shared_server):
    server = shared_server
    setup(server)
    files = {'task.ipynb': b'{"answer": 42}', 'extra/notes.txt': b'notes'}
    stamp = submit(server, 'lawrence', files)
    answer = collect(server, 'lawrence')
    assert answer['timestamp'] == stamp
    assert files_of(answer) == files
    assert [f['path'] for f in answer['files']] == ['task.ipynb', 'extra/notes.txt']
    assert set(answer) == {
        'success',
        'timestamp',
        'due',
        'late',
        'seconds_late',
        'files',
    }


def test_instructor_may_submit(shared_server):
    server = shared_server
    setup(server)
    stamp = submit(server, 'kevin', {'a': b'test run'})
    assert listed(server) == [{'student_id': 'kevin', 'timestamp': stamp}]
    answer = collect(server, 'kevin')
    assert answer['timestamp'] == stamp
    assert files_of(answer) == {'a': b'test run'}


@pytest.mark.parametrize(
    ('user', 'removed'),
    [('stranger', False), ('lawrence', True)],
    ids=['unrelated-user', 'removed-student'],
)
def test_cannot_submit(shared_server, user, removed):
    """A user outside the course, and a student removed from it."""
    server = shared_server
    setup(server)
    if removed:
        ok(server.delete(('student', COURSE, user), user='kevin'))
    err(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=user,
            data={'files': tree({'a': b'a'})},
        ),
        403,
        'Permission denied',
    )
    assert listed(server) == []


@pytest.mark.parametrize(
    ('data', 'message'),
    [
        ({}, 'Please supply files'),
        ({'files': 'nope'}, 'Files cannot be JSON decoded'),
        ({'files': '[{"path": "a"}]'}, 'Files cannot be JSON decoded'),
        (
            {'files': '[{"path": "a", "content": "***"}]'},
            'Content cannot be base64 decoded',
        ),
        ({'files': '[{"path": "../a", "content": "YQ=="}]'}, 'Illegal path'),
    ],
)
def test_submit_bad_files(shared_server, data, message):
    server = shared_server
    setup(server)
    err(
        server.post(('submission', COURSE, ASSIGNMENT), user='lawrence', data=data),
        400,
        message,
    )
    assert listed(server) == []
    assert listed(server, 'lawrence') == []


@pytest.mark.parametrize(
    ('course', 'assignment', 'message'),
    [
        (COURSE, 'nope', 'Assignment not found'),
        ('nope', ASSIGNMENT, 'Course not found'),
    ],
    ids=['assignment', 'course'],
)
def test_submit_missing_assignment_or_course(
    shared_server, course, assignment, message
):
    server = shared_server
    setup(server)
    err(
        server.post(
            ('submission', course, assignment),
            user='lawrence',
            data={'files': tree({'a': b'a'})},
        ),
        404,
        message,
    )
    assert listed(server) == []


def test_two_quick_submissions_are_distinct(shared_server):
    server = shared_server
    setup(server)
    first = submit(server, 'lawrence', {'a.txt': b'first'})
    second = submit(server, 'lawrence', {'a.txt': b'second', 'b.txt': b'more'})
    assert first != second
    assert parse(first) < parse(second)
    assert files_of(collect(server, 'lawrence', timestamp=first)) == {'a.txt': b'first'}
    assert files_of(collect(server, 'lawrence', timestamp=second)) == {
        'a.txt': b'second',
        'b.txt': b'more',
    }
    assert listed(server, 'lawrence') == [
        {'student_id': 'lawrence', 'timestamp': first},
        {'student_id': 'lawrence', 'timestamp': second},
    ]


def test_many_rapid_submissions_keep_distinct_timestamps(shared_server):
    server = shared_server
    setup(server)
    stamps = [submit(server, 'lawrence', {'n': str(i).encode()}) for i in range(10)]
    assert len(set(stamps)) == 10
    assert [parse(s) for s in stamps] == sorted(parse(s) for s in stamps)
    for i, stamp in enumerate(stamps):
        answer = collect(server, 'lawrence', timestamp=stamp)
        assert answer['timestamp'] == stamp
        assert files_of(answer) == {'n': str(i).encode()}


# GET /submissions


def test_list_all_submissions(shared_server):
    server = shared_server
    setup(server)
    assert listed(server) == []
    s1 = submit(server, 'lawrence', {'a': b'1'})
    s2 = submit(server, 'eric', {'a': b'2'})
    s3 = submit(server, 'lawrence', {'a': b'3'})
    expected = [
        {'student_id': 'lawrence', 'timestamp': s1},
        {'student_id': 'eric', 'timestamp': s2},
        {'student_id': 'lawrence', 'timestamp': s3},
    ]
    assert listed(server) == expected
    assert listed(server, user=ADMIN) == expected


def test_list_all_submissions_is_per_assignment(shared_server):
    server = shared_server
    setup(server)
    ok(
        server.post(
            ('assignment', COURSE, 'other'),
            user='kevin',
            data={'files': tree({'x': b'x'})},
        )
    )
    stamp = submit(server, 'lawrence', {'a': b'1'})
    submit(server, 'eric', {'a': b'2'}, assignment='other')
    assert listed(server) == [{'student_id': 'lawrence', 'timestamp': stamp}]


# GET /submissions/<student>


def test_list_student_submissions(shared_server):
    server = shared_server
    setup(server)
    s1 = submit(server, 'lawrence', {'a': b'1'})
    submit(server, 'eric', {'a': b'2'})
    s3 = submit(server, 'lawrence', {'a': b'3'})
    expected = [
        {'student_id': 'lawrence', 'timestamp': s1},
        {'student_id': 'lawrence', 'timestamp': s3},
    ]
    assert listed(server, 'lawrence', user='lawrence') == expected
    assert listed(server, 'lawrence', user='kevin') == expected
    err(
        server.get(('submissions', COURSE, ASSIGNMENT, 'lawrence'), user='eric'),
        403,
        'Permission denied',
    )
    err(
        server.get(('submissions', COURSE, ASSIGNMENT, 'lawrence'), user='stranger'),
        403,
        'Permission denied',
    )


def test_list_student_without_submissions(shared_server):
    server = shared_server
    setup(server)
    assert listed(server, 'eric', user='eric') == []
    assert listed(server, 'eric', user='kevin') == []


def test_removed_student_submissions_stay_visible_to_instructors(shared_server):
    server = shared_server
    setup(server)
    stamp = submit(server, 'lawrence', {'a': b'kept'})
    ok(server.delete(('student', COURSE, 'lawrence'), user='kevin'))
    entry = {'student_id': 'lawrence', 'timestamp': stamp}
    assert listed(server) == [entry]
    assert listed(server, 'lawrence') == [entry]
    answer = collect(server, 'lawrence')
    assert answer['timestamp'] == stamp
    assert files_of(answer) == {'a': b'kept'}
    # The removed student lost access.
    err(
        server.get(('submissions', COURSE, ASSIGNMENT, 'lawrence'), user='lawrence'),
        403,
        'Permission denied',
    )


def test_removed_student_without_submission_is_not_found(shared_server):
    server = shared_server
    setup(server)
    ok(server.delete(('student', COURSE, 'eric'), user='kevin'))
    err(
        server.get(('submissions', COURSE, ASSIGNMENT, 'eric'), user='kevin'),
        404,
        'Student not found',
    )
    err(
        server.get(('submission', COURSE, ASSIGNMENT, 'eric'), user='kevin'),
        404,
        'Student not found',
    )


# GET /submission


def test_collect_latest_and_by_timestamp(shared_server):
    server = shared_server
    setup(server)
    first = submit(server, 'lawrence', {'a.txt': b'v1'})
    second = submit(server, 'lawrence', {'a.txt': b'v2'})
    submit(server, 'eric', {'a.txt': b'eric'})

    latest = collect(server, 'lawrence')
    assert latest['timestamp'] == second
    assert files_of(latest) == {'a.txt': b'v2'}

    for stamp, content in ((first, b'v1'), (second, b'v2')):
        exact = collect(server, 'lawrence', timestamp=stamp)
        assert exact['timestamp'] == stamp
        assert files_of(exact) == {'a.txt': content}
        bare = collect(server, 'lawrence', timestamp=stamp[: -len(' UTC')])
        assert bare['timestamp'] == stamp
        assert files_of(bare) == {'a.txt': content}


def test_collect_list_only(shared_server):
    server = shared_server
    setup(server)
    stamp = submit(server, 'lawrence', {'a.txt': b'v1', 'b/c.txt': b'c'})
    answer = collect(server, 'lawrence', list_only='true')
    assert answer['timestamp'] == stamp
    assert answer['files'] == [
        {'path': 'a.txt', 'checksum': md5(b'v1')},
        {'path': 'b/c.txt', 'checksum': md5(b'c')},
    ]
    answer = collect(server, 'lawrence', list_only='true', timestamp=stamp)
    assert [set(f) for f in answer['files']] == [{'path', 'checksum'}] * 2


def test_collect_submission_not_found(shared_server):
    server = shared_server
    setup(server)
    # Enrolled, but never submitted.
    err(
        server.get(('submission', COURSE, ASSIGNMENT, 'eric'), user='kevin'),
        404,
        'Submission not found',
    )
    stamp = submit(server, 'lawrence', {'a': b'a'})
    moved = (parse(stamp) + datetime.timedelta(microseconds=1)).strftime(
        TIMESTAMP_FORMAT
    )
    for other in (
        moved,
        '2020-01-30 10:30:47.524219 UTC',
        '2020-01-30 10:30:47',
        '2020-01-30 10:30:47 UTC',
    ):
        err(
            server.get(
                ('submission', COURSE, ASSIGNMENT, 'lawrence'),
                user='kevin',
                params={'timestamp': other},
            ),
            404,
            'Submission not found',
        )
    # eric's timestamp is not lawrence's submission.
    err(
        server.get(
            ('submission', COURSE, ASSIGNMENT, 'eric'),
            user='kevin',
            params={'timestamp': stamp},
        ),
        404,
        'Submission not found',
    )


@pytest.mark.parametrize(
    'stamp',
    [
        'yesterday',
        '2020-01-30',
        '2020-13-01 10:30:47.524219 UTC',
        '2020-01-30T10:30:47.524219',
        '2020-01-30 10:30:47.524219 PST',
        '30/01/2020 10:30:47',
    ],
)
def test_collect_time_format_incorrect(shared_server, stamp):
    server = shared_server
    setup(server)
    submit(server, 'lawrence', {'a': b'a'})
    err(
        server.get(
            ('submission', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            params={'timestamp': stamp},
        ),
        400,
        'Time format incorrect',
    )


# Reads refused: not found, forbidden


@pytest.mark.parametrize(
    ('path', 'message'),
    [
        (('submissions', COURSE, 'nope'), 'Assignment not found'),
        (('submissions', 'nope', ASSIGNMENT), 'Course not found'),
        (('submissions', COURSE, ASSIGNMENT, 'nobody'), 'Student not found'),
        (('submissions', COURSE, 'nope', 'lawrence'), 'Assignment not found'),
        (('submission', COURSE, ASSIGNMENT, 'nobody'), 'Student not found'),
        (('submission', COURSE, 'nope', 'lawrence'), 'Assignment not found'),
        (('submission', 'nope', ASSIGNMENT, 'lawrence'), 'Course not found'),
    ],
    ids=[
        'list-all-assignment',
        'list-all-course',
        'list-student-student',
        'list-student-assignment',
        'collect-student',
        'collect-assignment',
        'collect-course',
    ],
)
def test_read_not_found(shared_server, path, message):
    """GET /submissions and /submission name what is missing: the course,
    the assignment or the student."""
    server = shared_server
    setup(server)
    err(server.get(path, user='kevin'), 404, message)


@pytest.mark.parametrize(
    ('user', 'path'),
    [
        ('lawrence', ('submissions', COURSE, ASSIGNMENT)),
        # Collecting is for instructors only, even the student's own submission.
        ('lawrence', ('submission', COURSE, ASSIGNMENT, 'lawrence')),
        ('eric', ('submission', COURSE, ASSIGNMENT, 'lawrence')),
    ],
    ids=['student-lists-all', 'student-collects-own', 'student-collects-other'],
)
def test_students_cannot_list_all_or_collect(shared_server, user, path):
    server = shared_server
    setup(server)
    submit(server, 'lawrence', {'a': b'a'})
    err(server.get(path, user=user), 403, 'Permission denied')
