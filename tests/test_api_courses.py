"""Course APIs: GET /courses, POST and DELETE /course/<course_id>."""

from __future__ import annotations

import json

import pytest
from _api import err, files_of, ok, tree

pytestmark = pytest.mark.both_databases

ADMIN = 'root'


def create_course(server, course, instructors=None):
    data = {} if instructors is None else {'instructors': json.dumps(instructors)}
    ok(server.post(('course', course), user=ADMIN, data=data))


def add_student(server, course, student, *, by):
    ok(
        server.post(
            ('student', course, student),
            user=by,
            data={
                'first_name': student + '-first',
                'last_name': student + '-last',
                'email': student + '@example.org',
            },
        )
    )


def courses_of(server, user):
    return ok(server.get('courses', user=user))['courses']


# GET /courses


def test_courses_visible_by_role_and_sorted(shared_server):
    server = shared_server
    # Created out of order, so that a server answering in insertion order fails.
    create_course(server, 'zeta', ['kevin'])
    create_course(server, 'alpha', ['eric'])
    create_course(server, 'mid', ['kevin'])
    create_course(server, 'beta')
    add_student(server, 'zeta', 'lawrence', by='kevin')
    add_student(server, 'alpha', 'lawrence', by='eric')

    assert courses_of(server, ADMIN) == ['alpha', 'beta', 'mid', 'zeta']
    assert courses_of(server, 'kevin') == ['mid', 'zeta']
    assert courses_of(server, 'eric') == ['alpha']
    assert courses_of(server, 'lawrence') == ['alpha', 'zeta']
    assert courses_of(server, 'stranger') == []


def test_courses_empty_server(shared_server):
    assert courses_of(shared_server, ADMIN) == []
    assert courses_of(shared_server, 'kevin') == []


def test_removed_student_no_longer_sees_course(shared_server):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    add_student(server, 'c1', 'lawrence', by='kevin')
    assert courses_of(server, 'lawrence') == ['c1']
    ok(server.delete(('student', 'c1', 'lawrence'), user='kevin'))
    assert courses_of(server, 'lawrence') == []


# POST /course/<course_id>


def test_create_course_without_instructors(shared_server):
    server = shared_server
    ok(server.post(('course', 'NBG 101'), user=ADMIN))
    assert courses_of(server, ADMIN) == ['NBG 101']
    assert ok(server.get(('instructors', 'NBG 101'), user=ADMIN))['instructors'] == []
    assert ok(server.get(('students', 'NBG 101'), user=ADMIN))['students'] == []
    assert ok(server.get(('assignments', 'NBG 101'), user=ADMIN))['assignments'] == []


def test_create_course_with_instructors(shared_server):
    server = shared_server
    create_course(server, 'NBG 101', ['kevin', 'eric'])
    instructors = ok(server.get(('instructors', 'NBG 101'), user=ADMIN))['instructors']
    assert sorted(i['username'] for i in instructors) == ['eric', 'kevin']
    for entry in instructors:
        assert entry['first_name'] is None
        assert entry['last_name'] is None
        assert entry['email'] is None
    assert courses_of(server, 'kevin') == ['NBG 101']
    assert courses_of(server, 'eric') == ['NBG 101']
    # They really are instructors: they may do instructor-only things.
    ok(
        server.post(
            ('assignment', 'NBG 101', 'a1'),
            user='kevin',
            data={'files': tree({'a.txt': b'x'})},
        )
    )
    assert ok(server.get(('students', 'NBG 101'), user='eric'))['students'] == []


def test_create_course_with_empty_instructor_list(shared_server):
    server = shared_server
    create_course(server, 'c1', [])
    assert courses_of(server, ADMIN) == ['c1']
    assert ok(server.get(('instructors', 'c1'), user=ADMIN))['instructors'] == []


def test_create_existing_course_conflicts(shared_server):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    err(server.post(('course', 'c1'), user=ADMIN), 409, 'Course already exists')
    err(
        server.post(
            ('course', 'c1'), user=ADMIN, data={'instructors': json.dumps(['eric'])}
        ),
        409,
        'Course already exists',
    )
    # The existing course is untouched: eric did not become an instructor.
    instructors = ok(server.get(('instructors', 'c1'), user=ADMIN))['instructors']
    assert [i['username'] for i in instructors] == ['kevin']
    assert courses_of(server, ADMIN) == ['c1']


@pytest.mark.parametrize(
    'instructors',
    ['not json', '["kevin"', '', '"kevin"', '{"kevin": 1}', '42', 'null', 'true'],
    ids=['garbage', 'truncated', 'empty', 'string', 'object', 'number', 'null', 'bool'],
)
def test_create_course_bad_instructors(shared_server, instructors):
    server = shared_server
    err(
        server.post(('course', 'c1'), user=ADMIN, data={'instructors': instructors}),
        400,
        'Instructors cannot be JSON decoded',
    )
    assert courses_of(server, ADMIN) == []


@pytest.mark.parametrize('user', ['kevin', 'lawrence', 'stranger'])
def test_create_course_needs_admin(shared_server, user):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    add_student(server, 'c1', 'lawrence', by='kevin')
    err(
        server.post(
            ('course', 'c2'), user=user, data={'instructors': json.dumps([user])}
        ),
        403,
        'Permission denied',
    )
    assert courses_of(server, ADMIN) == ['c1']
    assert 'c2' not in courses_of(server, user)


# DELETE /course/<course_id>


def test_delete_course(shared_server):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    create_course(server, 'c2', ['kevin'])
    add_student(server, 'c1', 'lawrence', by='kevin')
    ok(
        server.post(
            ('assignment', 'c1', 'a1'),
            user='kevin',
            data={'files': tree({'a.txt': b'hello'})},
        )
    )

    ok(server.delete(('course', 'c1'), user=ADMIN))

    assert courses_of(server, ADMIN) == ['c2']
    assert courses_of(server, 'kevin') == ['c2']
    assert courses_of(server, 'lawrence') == []
    err(server.get(('assignments', 'c1'), user=ADMIN), 404, 'Course not found')
    err(server.get(('assignment', 'c1', 'a1'), user=ADMIN), 404, 'Course not found')
    err(server.get(('students', 'c1'), user=ADMIN), 404, 'Course not found')
    err(server.delete(('course', 'c1'), user=ADMIN), 404, 'Course not found')


def test_recreated_course_starts_empty(shared_server):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    add_student(server, 'c1', 'lawrence', by='kevin')
    ok(
        server.post(
            ('assignment', 'c1', 'a1'),
            user='kevin',
            data={'files': tree({'a.txt': b'old'})},
        )
    )
    ok(server.delete(('course', 'c1'), user=ADMIN))

    create_course(server, 'c1', ['eric'])
    instructors = ok(server.get(('instructors', 'c1'), user=ADMIN))['instructors']
    assert [i['username'] for i in instructors] == ['eric']
    assert ok(server.get(('students', 'c1'), user=ADMIN))['students'] == []
    assert ok(server.get(('assignments', 'c1'), user=ADMIN))['assignments'] == []
    err(server.get(('assignment', 'c1', 'a1'), user=ADMIN), 404, 'Assignment not found')
    # Same name again: the old assignment does not block a new release.
    ok(
        server.post(
            ('assignment', 'c1', 'a1'),
            user='eric',
            data={'files': tree({'b.txt': b'new'})},
        )
    )
    answer = ok(server.get(('assignment', 'c1', 'a1'), user='eric'))
    assert files_of(answer) == {'b.txt': b'new'}


def test_delete_missing_course(shared_server):
    err(shared_server.delete(('course', 'nope'), user=ADMIN), 404, 'Course not found')


def test_delete_missing_course_as_non_admin_is_not_found(shared_server):
    # behaviour.md: "course exists (404)" is checked before the permission.
    err(
        shared_server.delete(('course', 'nope'), user='kevin'),
        404,
        'Course not found',
    )


@pytest.mark.parametrize('user', ['kevin', 'lawrence', 'stranger'])
def test_delete_course_needs_admin(shared_server, user):
    server = shared_server
    create_course(server, 'c1', ['kevin'])
    add_student(server, 'c1', 'lawrence', by='kevin')
    err(server.delete(('course', 'c1'), user=user), 403, 'Permission denied')
    assert courses_of(server, ADMIN) == ['c1']
    assert [
        s['username']
        for s in ok(server.get(('students', 'c1'), user='kevin'))['students']
    ] == ['lawrence']


# Names


@pytest.mark.parametrize(
    'name',
    ['NBG 101', '100%', '100%25', 'a+b', 'x/y', 'zoë', '课程 1', 'a?b#c&d=e'],
)
def test_course_names_round_trip(shared_server, name):
    server = shared_server
    create_course(server, name, ['zoë'])
    assert courses_of(server, ADMIN) == [name]
    assert courses_of(server, 'zoë') == [name]
    add_student(server, name, '学生 1', by='zoë')
    assert courses_of(server, '学生 1') == [name]
    ok(
        server.post(
            ('assignment', name, name),
            user='zoë',
            data={'files': tree({'f': name.encode()})},
        )
    )
    assert ok(server.get(('assignments', name), user='学生 1'))['assignments'] == [name]
    answer = ok(server.get(('assignment', name, name), user='学生 1'))
    assert files_of(answer) == {'f': name.encode()}
    err(server.post(('course', name), user=ADMIN), 409, 'Course already exists')
    ok(server.delete(('course', name), user=ADMIN))
    assert courses_of(server, ADMIN) == []


def test_similar_names_are_distinct_courses(shared_server):
    server = shared_server
    # '+' is a plus, not a space; '%20' sent raw is a name, not a space.
    for name in ['a b', 'a+b', 'a%20b', 'A b', 'x/y', 'x']:
        create_course(server, name, [])
    assert courses_of(server, ADMIN) == sorted(
        ['a b', 'a+b', 'a%20b', 'A b', 'x/y', 'x']
    )
    ok(server.delete(('course', 'a+b'), user=ADMIN))
    ok(server.delete(('course', 'x/y'), user=ADMIN))
    assert courses_of(server, ADMIN) == sorted(['a b', 'a%20b', 'A b', 'x'])
