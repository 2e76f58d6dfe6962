"""Roster APIs: /instructor, /instructors, /student, /students."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
from _api import err, ok, tree

pytestmark = pytest.mark.both_databases

ADMIN = 'root'
COURSE = 'NBG 101'


def person(name, **overrides):
    fields = {
        'first_name': name + '-first',
        'last_name': name + '-last',
        'email': name + '@example.org',
    }
    fields.update(overrides)
    return fields


def setup(server, course=COURSE, *, instructor='kevin', students=('lawrence', 'eric')):
    """As admin: a course taught by ``instructor``; it enrols ``students``."""
    ok(
        server.post(
            ('course', course),
            user=ADMIN,
            data={'instructors': json.dumps([instructor])},
        )
    )
    for student in students:
        ok(
            server.post(
                ('student', course, student), user=instructor, data=person(student)
            )
        )


def students_of(server, course=COURSE):
    return ok(server.get(('students', course), user=ADMIN))['students']


def student_names(server, course=COURSE):
    return [s['username'] for s in students_of(server, course)]


def instructors_of(server, course=COURSE):
    return ok(server.get(('instructors', course), user=ADMIN))['instructors']


def instructor_names(server, course=COURSE):
    return [i['username'] for i in instructors_of(server, course)]


def without_success(answer):
    return {k: v for k, v in answer.items() if k != 'success'}


@dataclasses.dataclass(frozen=True)
class Role:
    """One side of the roster, for the tests that run on both sides: its
    endpoint, who manages it, whom a test adds, what its answers say, and
    who is on it after ``setup(server)`` and ``setup(server, students=())``."""

    endpoint: str
    manager: str
    newcomer: str
    not_found: str
    field_missing: dict[str, str]
    names: Callable[..., list[str]]
    after_setup: list[str]
    without_students: list[str]


ROLES = {
    'instructor': Role(
        endpoint='instructor',
        manager=ADMIN,
        newcomer='eric',
        not_found='Instructor not found',
        field_missing={
            'first_name': 'Please supply first name',
            'last_name': 'Please supply last name',
            'email': 'Please supply email name',
        },
        names=instructor_names,
        after_setup=['kevin'],
        without_students=['kevin'],
    ),
    'student': Role(
        endpoint='student',
        manager='kevin',
        newcomer='lawrence',
        not_found='Student not found',
        field_missing={
            'first_name': 'Please supply first name',
            'last_name': 'Please supply last name',
            'email': 'Please supply email',
        },
        names=student_names,
        after_setup=['lawrence', 'eric'],
        without_students=[],
    ),
}
OTHER = {'instructor': 'student', 'student': 'instructor'}


# Instructors


def test_add_instructor_and_get(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    expected = {'username': 'eric', **person('eric')}
    answer = ok(server.get(('instructor', COURSE, 'eric'), user='kevin'))
    assert without_success(answer) == expected
    assert expected in instructors_of(server)
    assert sorted(instructor_names(server)) == ['eric', 'kevin']
    # eric is now an instructor for real.
    assert ok(server.get(('students', COURSE), user='eric'))['students'] == []
    assert ok(server.get('courses', user='eric'))['courses'] == [COURSE]


def test_instructor_fields_null_when_unset(shared_server):
    server = shared_server
    setup(server, students=())
    answer = ok(server.get(('instructor', COURSE, 'kevin'), user='kevin'))
    assert without_success(answer) == {
        'username': 'kevin',
        'first_name': None,
        'last_name': None,
        'email': None,
    }
    assert instructors_of(server) == [
        {'username': 'kevin', 'first_name': None, 'last_name': None, 'email': None}
    ]


def test_update_instructor(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'kevin'), user=ADMIN, data=person('kevin')))
    new = person('kevin', first_name='Kev', last_name='In', email='k@new.example')
    ok(server.post(('instructor', COURSE, 'kevin'), user=ADMIN, data=new))
    answer = ok(server.get(('instructor', COURSE, 'kevin'), user=ADMIN))
    assert without_success(answer) == {'username': 'kevin', **new}
    assert instructors_of(server) == [{'username': 'kevin', **new}]


def test_empty_strings_are_values(shared_server):
    server = shared_server
    setup(server, students=())
    fields = {'first_name': '', 'last_name': '', 'email': ''}
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=fields))
    answer = ok(server.get(('instructor', COURSE, 'eric'), user=ADMIN))
    assert without_success(answer) == {'username': 'eric', **fields}


def test_instructor_updates_own_entry(shared_server):
    server = shared_server
    setup(server, students=())
    new = person('kevin', first_name='Kévin', email='kevin@uni.example')
    ok(server.post(('instructor', COURSE, 'kevin'), user='kevin', data=new))
    answer = ok(server.get(('instructor', COURSE, 'kevin'), user='kevin'))
    assert without_success(answer) == {'username': 'kevin', **new}


def test_instructor_cannot_update_another_instructor(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    err(
        server.post(
            ('instructor', COURSE, 'eric'), user='kevin', data=person('x', email='x@x')
        ),
        403,
        'Permission denied',
    )
    answer = ok(server.get(('instructor', COURSE, 'eric'), user=ADMIN))
    assert without_success(answer) == {'username': 'eric', **person('eric')}


def test_instructor_cannot_add_instructor(shared_server):
    server = shared_server
    setup(server, students=())
    err(
        server.post(('instructor', COURSE, 'newbie'), user='kevin', data=person('n')),
        403,
        'Permission denied',
    )
    assert instructor_names(server) == ['kevin']


@pytest.mark.parametrize(
    ('missing', 'message'),
    [
        (('first_name', 'last_name', 'email'), 'Please supply first name'),
        (('last_name', 'email'), 'Please supply last name'),
    ],
)
def test_add_instructor_missing_fields_order(shared_server, missing, message):
    server = shared_server
    setup(server, students=())
    fields = {k: v for k, v in person('eric').items() if k not in missing}
    err(
        server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=fields),
        400,
        message,
    )


def test_update_instructor_missing_field_keeps_old_values(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'kevin'), user=ADMIN, data=person('kevin')))
    err(
        server.post(
            ('instructor', COURSE, 'kevin'),
            user='kevin',
            data={'first_name': 'changed', 'last_name': 'changed'},
        ),
        400,
        'Please supply email name',
    )
    answer = ok(server.get(('instructor', COURSE, 'kevin'), user=ADMIN))
    assert without_success(answer) == {'username': 'kevin', **person('kevin')}


def test_student_promoted_to_instructor(shared_server):
    server = shared_server
    setup(server)
    ok(
        server.post(
            ('instructor', COURSE, 'lawrence'),
            user=ADMIN,
            data=person('lawrence', first_name='Prof'),
        )
    )
    assert student_names(server) == ['eric']
    err(
        server.get(('student', COURSE, 'lawrence'), user=ADMIN),
        404,
        'Student not found',
    )
    answer = ok(server.get(('instructor', COURSE, 'lawrence'), user='lawrence'))
    assert answer['first_name'] == 'Prof'
    assert sorted(instructor_names(server)) == ['kevin', 'lawrence']
    assert ok(server.get('courses', user='lawrence'))['courses'] == [COURSE]
    # Now with instructor rights: may list the students.
    listed = ok(server.get(('students', COURSE), user='lawrence'))['students']
    assert [s['username'] for s in listed] == ['eric']


def test_student_may_read_instructors(shared_server):
    server = shared_server
    setup(server)
    ok(server.post(('instructor', COURSE, 'kevin'), user='kevin', data=person('kevin')))
    answer = ok(server.get(('instructor', COURSE, 'kevin'), user='lawrence'))
    assert without_success(answer) == {'username': 'kevin', **person('kevin')}
    listed = ok(server.get(('instructors', COURSE), user='lawrence'))['instructors']
    assert listed == [{'username': 'kevin', **person('kevin')}]


def test_delete_instructor(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    ok(server.delete(('instructor', COURSE, 'eric'), user=ADMIN))
    assert instructor_names(server) == ['kevin']
    err(
        server.get(('instructor', COURSE, 'eric'), user=ADMIN),
        404,
        'Instructor not found',
    )
    err(
        server.delete(('instructor', COURSE, 'eric'), user=ADMIN),
        404,
        'Instructor not found',
    )
    # eric lost the instructor role.
    err(server.get(('students', COURSE), user='eric'), 403, 'Permission denied')
    assert ok(server.get('courses', user='eric'))['courses'] == []


def test_delete_instructor_keeps_submissions(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    ok(
        server.post(
            ('assignment', COURSE, 'a1'),
            user='kevin',
            data={'files': tree({'a.txt': b'task'})},
        )
    )
    stamp = ok(
        server.post(
            ('submission', COURSE, 'a1'),
            user='eric',
            data={'files': tree({'a.txt': b'answer'})},
        )
    )['timestamp']
    ok(server.delete(('instructor', COURSE, 'eric'), user=ADMIN))
    listed = ok(server.get(('submissions', COURSE, 'a1'), user='kevin'))['submissions']
    assert listed == [{'student_id': 'eric', 'timestamp': stamp}]


def test_instructor_cannot_delete_instructor(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('instructor', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    err(
        server.delete(('instructor', COURSE, 'eric'), user='kevin'),
        403,
        'Permission denied',
    )
    err(
        server.delete(('instructor', COURSE, 'kevin'), user='kevin'),
        403,
        'Permission denied',
    )
    assert sorted(instructor_names(server)) == ['eric', 'kevin']


# Students


def test_add_student_and_get(shared_server):
    server = shared_server
    setup(server, students=())
    ok(
        server.post(
            ('student', COURSE, 'lawrence'), user='kevin', data=person('lawrence')
        )
    )
    expected = {'username': 'lawrence', **person('lawrence')}
    assert (
        without_success(ok(server.get(('student', COURSE, 'lawrence'), user='kevin')))
        == expected
    )
    assert (
        without_success(
            ok(server.get(('student', COURSE, 'lawrence'), user='lawrence'))
        )
        == expected
    )
    assert students_of(server) == [expected]
    assert ok(server.get('courses', user='lawrence'))['courses'] == [COURSE]


def test_admin_may_add_student(shared_server):
    server = shared_server
    setup(server, students=())
    ok(server.post(('student', COURSE, 'eric'), user=ADMIN, data=person('eric')))
    assert student_names(server) == ['eric']


def test_update_student(shared_server):
    server = shared_server
    setup(server)
    new = person('lawrence', first_name='Larry', last_name='Law', email='l@new.example')
    ok(server.post(('student', COURSE, 'lawrence'), user='kevin', data=new))
    assert without_success(
        ok(server.get(('student', COURSE, 'lawrence'), user='kevin'))
    ) == {'username': 'lawrence', **new}
    assert student_names(server) == ['lawrence', 'eric']
    assert {'username': 'lawrence', **new} in students_of(server)


def test_add_instructor_as_student_conflicts(shared_server):
    server = shared_server
    setup(server, students=())
    err(
        server.post(('student', COURSE, 'kevin'), user='kevin', data=person('kevin')),
        409,
        'Cannot add instructor as student',
    )
    err(
        server.post(('student', COURSE, 'kevin'), user=ADMIN, data=person('kevin')),
        409,
        'Cannot add instructor as student',
    )
    assert student_names(server) == []
    assert instructor_names(server) == ['kevin']
    # Still an instructor.
    assert ok(server.get(('students', COURSE), user='kevin'))['students'] == []


def test_student_cannot_read_other_student(shared_server):
    server = shared_server
    setup(server)
    err(
        server.get(('student', COURSE, 'eric'), user='lawrence'),
        403,
        'Permission denied',
    )
    err(server.get(('students', COURSE), user='lawrence'), 403, 'Permission denied')


def test_delete_student(shared_server):
    server = shared_server
    setup(server)
    ok(server.delete(('student', COURSE, 'lawrence'), user='kevin'))
    assert student_names(server) == ['eric']
    err(
        server.get(('student', COURSE, 'lawrence'), user='kevin'),
        404,
        'Student not found',
    )
    err(
        server.delete(('student', COURSE, 'lawrence'), user='kevin'),
        404,
        'Student not found',
    )
    # The removed student loses access to the course.
    err(server.get(('assignments', COURSE), user='lawrence'), 403, 'Permission denied')
    err(
        server.get(('student', COURSE, 'lawrence'), user='lawrence'),
        403,
        'Permission denied',
    )
    assert ok(server.get('courses', user='lawrence'))['courses'] == []


def test_student_cannot_manage_students(shared_server):
    server = shared_server
    setup(server)
    err(
        server.post(
            ('student', COURSE, 'newbie'), user='lawrence', data=person('newbie')
        ),
        403,
        'Permission denied',
    )
    err(
        server.delete(('student', COURSE, 'eric'), user='lawrence'),
        403,
        'Permission denied',
    )
    err(
        server.post(
            ('students', COURSE),
            user='lawrence',
            data={'students': json.dumps([{'username': 'x', **person('x')}])},
        ),
        403,
        'Permission denied',
    )
    assert student_names(server) == ['lawrence', 'eric']


def test_readding_removed_student(shared_server):
    server = shared_server
    setup(server)
    ok(server.delete(('student', COURSE, 'lawrence'), user='kevin'))
    ok(
        server.post(
            ('student', COURSE, 'lawrence'),
            user='kevin',
            data=person('lawrence', first_name='Again'),
        )
    )
    answer = ok(server.get(('student', COURSE, 'lawrence'), user='lawrence'))
    assert answer['first_name'] == 'Again'
    assert sorted(student_names(server)) == ['eric', 'lawrence']


# Instructors and students alike


@pytest.mark.parametrize('missing', ['first_name', 'last_name', 'email'])
@pytest.mark.parametrize('side', list(ROLES))
def test_add_missing_field(shared_server, side, missing):
    role = ROLES[side]
    server = shared_server
    setup(server, students=())
    fields = person(role.newcomer)
    del fields[missing]
    path = (role.endpoint, COURSE, role.newcomer)
    err(
        server.post(path, user=role.manager, data=fields),
        400,
        role.field_missing[missing],
    )
    err(server.get(path, user=role.manager), 404, role.not_found)
    assert role.names(server) == role.without_students


@pytest.mark.parametrize(
    ('side', 'who'),
    [
        ('instructor', 'nobody'),
        ('instructor', 'lawrence'),  # a student is not an instructor
        ('student', 'nobody'),
        ('student', 'kevin'),  # an instructor is not a student
    ],
)
def test_get_not_found(shared_server, side, who):
    role = ROLES[side]
    server = shared_server
    setup(server)
    err(
        server.get((role.endpoint, COURSE, who), user=role.manager), 404, role.not_found
    )


@pytest.mark.parametrize(
    ('side', 'who'), [('instructor', 'lawrence'), ('student', 'kevin')]
)
def test_delete_from_the_other_side_is_not_found(shared_server, side, who):
    """DELETE /instructor of a student, DELETE /student of an instructor:
    404, and the other side keeps its member."""
    role, other = ROLES[side], ROLES[OTHER[side]]
    server = shared_server
    setup(server)
    err(server.delete((role.endpoint, COURSE, who), user=ADMIN), 404, role.not_found)
    assert other.names(server) == other.after_setup


# Bulk students


def entry(name, **overrides):
    return {'username': name, **person(name, **overrides)}


def test_add_students_bulk(shared_server):
    server = shared_server
    setup(server, students=('eric',))
    ok(server.post(('instructor', COURSE, 'abby'), user=ADMIN, data=person('abby')))
    payload = [
        entry('zed'),
        entry('kevin'),
        entry('eric', first_name='Erica'),
        entry('abby'),
        entry('amy'),
    ]
    answer = ok(
        server.post(
            ('students', COURSE), user='kevin', data={'students': json.dumps(payload)}
        )
    )
    assert answer['status'] == [
        {'username': 'zed', 'success': True},
        {
            'username': 'kevin',
            'success': False,
            'message': 'Cannot add instructor as student',
        },
        {'username': 'eric', 'success': True},
        {
            'username': 'abby',
            'success': False,
            'message': 'Cannot add instructor as student',
        },
        {'username': 'amy', 'success': True},
    ]
    students = {s['username']: s for s in students_of(server)}
    assert set(students) == {'eric', 'zed', 'amy'}
    assert students['zed'] == entry('zed')
    assert students['eric'] == entry('eric', first_name='Erica')
    assert students['amy'] == entry('amy')
    assert sorted(instructor_names(server)) == ['abby', 'kevin']
    assert ok(server.get('courses', user='zed'))['courses'] == [COURSE]


@pytest.mark.parametrize(
    'data', [{'students': '[]'}, None], ids=['empty-list', 'missing']
)
def test_add_students_none_given(shared_server, data):
    server = shared_server
    setup(server)
    # As documented and as 0.6.0 answered: nobody to add is a 400.
    err(
        server.post(('students', COURSE), user='kevin', data=data),
        400,
        'Please supply students',
    )
    assert student_names(server) == ['lawrence', 'eric']


@pytest.mark.parametrize('students', ['not json', '[{"username": "x"', ''])
def test_add_students_not_json(shared_server, students):
    server = shared_server
    setup(server, students=())
    err(
        server.post(('students', COURSE), user='kevin', data={'students': students}),
        400,
        'Students cannot be JSON decoded',
    )
    assert student_names(server) == []


@pytest.mark.parametrize(
    'students',
    [
        [entry('good'), {'username': 'bad', 'first_name': 'a', 'last_name': 'b'}],
        [entry('good'), {'first_name': 'a', 'last_name': 'b', 'email': 'c'}],
        [entry('good'), {'username': 'bad', 'last_name': 'b', 'email': 'c'}],
        [entry('good'), {'username': 'bad', 'first_name': 'a', 'email': 'c'}],
        [entry('good'), 'bad'],
        [entry('good'), ['bad', 'a', 'b', 'c']],
        [entry('good'), 42],
        [entry('good'), None],
        ['bad', entry('good')],
    ],
    ids=[
        'no-email',
        'no-username',
        'no-first',
        'no-last',
        'string',
        'list',
        'number',
        'null',
        'string-first',
    ],
)
def test_add_students_incorrect_format(shared_server, students):
    server = shared_server
    setup(server, students=())
    err(
        server.post(
            ('students', COURSE), user='kevin', data={'students': json.dumps(students)}
        ),
        400,
        'Incorrect request format',
    )
    # Nothing added, not even the well-formed entry.
    assert student_names(server) == []
    err(server.get(('student', COURSE, 'good'), user='kevin'), 404, 'Student not found')


def test_list_students_order_and_fields(shared_server):
    server = shared_server
    setup(server, students=('zoë', 'adam', 'lawrence'))
    ok(
        server.post(
            ('students', COURSE),
            user='kevin',
            data={'students': json.dumps([entry('bea')])},
        )
    )
    listed = ok(server.get(('students', COURSE), user='kevin'))['students']
    assert {s['username'] for s in listed} == {'zoë', 'adam', 'lawrence', 'bea'}
    for student in listed:
        assert student == entry(student['username'])


# Missing course


@pytest.mark.parametrize(
    ('method', 'path', 'data'),
    [
        ('POST', ('instructor', 'nope', 'kevin'), person('kevin')),
        ('GET', ('instructor', 'nope', 'kevin'), None),
        ('DELETE', ('instructor', 'nope', 'kevin'), None),
        ('GET', ('instructors', 'nope'), None),
        ('POST', ('student', 'nope', 'lawrence'), person('lawrence')),
        ('GET', ('student', 'nope', 'lawrence'), None),
        ('DELETE', ('student', 'nope', 'lawrence'), None),
        ('POST', ('students', 'nope'), {'students': json.dumps([entry('x')])}),
        ('GET', ('students', 'nope'), None),
    ],
)
def test_roster_course_not_found(shared_server, method, path, data):
    server = shared_server
    setup(server)
    err(server.request(method, path, user=ADMIN, data=data), 404, 'Course not found')
    # Checked before the permission, too.
    err(
        server.request(method, path, user='stranger', data=data),
        404,
        'Course not found',
    )
    assert ok(server.get('courses', user=ADMIN))['courses'] == [COURSE]
