"""Courses and rosters, called as operations (no HTTP): the answers, the
documented refusals with their exact messages, and who may do what.

The callers: ``root`` (admin), ``ins`` (instructor of ``c``), ``stu`` and
``other`` (students of ``c``), ``out`` (in no course). The HTTP-level
authentication (tokens, the Hub) stays in the HTTP tests."""

from __future__ import annotations

import json

import pytest
from _operations import ADMIN, INSTRUCTOR, OTHER_STUDENT, OUTSIDER, PERSON, STUDENT

from ngshare.database.models import Course, RosterEntry, User
from ngshare.operations.courses import create_course, delete_course, list_courses
from ngshare.operations.roster import (
    add_students,
    get_instructor,
    get_student,
    list_instructors,
    list_students,
    remove_instructor,
    remove_student,
    set_instructor,
    set_student,
)

DENIED = (403, 'Permission denied')


def person(username: str, **fields) -> dict:
    return {'username': username, **PERSON, **fields}


def unnamed(username: str) -> dict:
    """An entry created without names (the instructors of create_course)."""
    return {'username': username, 'first_name': None, 'last_name': None, 'email': None}


# Courses


def test_create_course_with_instructors_lists_it_for_them(ops):
    assert ops.write(ADMIN, create_course, 'c', json.dumps(['b', 'a', 'b'])) == {}
    assert ops.read(ADMIN, list_courses) == {'courses': ['c']}
    assert ops.read('a', list_courses) == {'courses': ['c']}
    assert ops.read('b', list_courses) == {'courses': ['c']}
    assert ops.read(OUTSIDER, list_courses) == {'courses': []}
    # A name given twice is one roster entry; both are instructors.
    assert ops.count(RosterEntry) == 2
    names = [e['username'] for e in ops.read('a', list_instructors, 'c')['instructors']]
    assert sorted(names) == ['a', 'b']


def test_list_courses_admin_sees_all_others_their_own(ops):
    ops.course('c1', instructors=['x'], students=[])
    ops.course('c2', instructors=['y'], students=['x'])
    ops.course('c0', instructors=['z'], students=[])
    assert ops.read(ADMIN, list_courses) == {'courses': ['c0', 'c1', 'c2']}
    assert ops.read('x', list_courses) == {'courses': ['c1', 'c2']}
    assert ops.read('y', list_courses) == {'courses': ['c2']}


def test_create_course_refusals(ops):
    ops.course('c', students=[])
    assert ops.answers(INSTRUCTOR, create_course, 'd', None, write=True) == DENIED
    assert ops.answers(ADMIN, create_course, 'c', None, write=True) == (
        409,
        'Course already exists',
    )
    for bad in ('not json', '"ins"', '[1]', '[""]', '["a\\u0000"]'):
        assert ops.answers(ADMIN, create_course, 'd', bad, write=True) == (
            400,
            'Instructors cannot be JSON decoded',
        ), bad
    assert ops.answers(ADMIN, create_course, 'a\nb', None, write=True) == (
        400,
        'Illegal name',
    )
    assert ops.count(Course) == 1


def test_create_course_new_instructor_with_control_character_is_illegal(ops):
    answer = ops.answers(ADMIN, create_course, 'd', json.dumps(['a\tb']), write=True)
    assert answer == (400, 'Illegal name')
    assert ops.count(Course) == 0
    assert ops.count(User) == 0


@pytest.mark.parametrize('who', [INSTRUCTOR, STUDENT, OUTSIDER])
def test_delete_course_is_for_admins(course_ops, who):
    assert course_ops.answers(who, delete_course, 'c', write=True) == DENIED
    assert course_ops.read(ADMIN, list_courses) == {'courses': ['c']}


def test_delete_course_removes_it_and_its_roster(course_ops):
    assert course_ops.write(ADMIN, delete_course, 'c') == {}
    assert course_ops.read(ADMIN, list_courses) == {'courses': []}
    assert course_ops.read(INSTRUCTOR, list_courses) == {'courses': []}
    assert course_ops.count(RosterEntry) == 0
    assert course_ops.answers(ADMIN, delete_course, 'c', write=True) == (
        404,
        'Course not found',
    )


# Instructors


def test_set_instructor_admin_adds_and_updates(course_ops):
    course_ops.write(ADMIN, set_instructor, 'c', 'i2', dict(PERSON))
    assert course_ops.read(STUDENT, get_instructor, 'c', 'i2') == person('i2')
    course_ops.write(ADMIN, set_instructor, 'c', 'i2', {**PERSON, 'email': 'n@x'})
    assert course_ops.read(INSTRUCTOR, get_instructor, 'c', 'i2')['email'] == 'n@x'
    assert course_ops.count(RosterEntry, RosterEntry.user_id == 'i2') == 1


def test_set_instructor_makes_a_student_an_instructor(course_ops):
    course_ops.write(ADMIN, set_instructor, 'c', STUDENT, dict(PERSON))
    students = course_ops.read(INSTRUCTOR, list_students, 'c')['students']
    assert [s['username'] for s in students] == [OTHER_STUDENT]
    assert course_ops.answers(INSTRUCTOR, get_student, 'c', STUDENT) == (
        404,
        'Student not found',
    )
    assert course_ops.read(STUDENT, get_instructor, 'c', STUDENT) == person(STUDENT)


def test_instructor_may_update_only_their_own_entry(course_ops):
    course_ops.write(ADMIN, set_instructor, 'c', 'i2', dict(PERSON))
    mine = {**PERSON, 'first_name': 'Me'}
    assert course_ops.write(INSTRUCTOR, set_instructor, 'c', INSTRUCTOR, mine) == {}
    assert course_ops.read(ADMIN, get_instructor, 'c', INSTRUCTOR)['first_name'] == 'Me'
    # Not another instructor, not a new one, not a student.
    for target in ('i2', 'newbie', STUDENT):
        assert (
            course_ops.answers(
                INSTRUCTOR, set_instructor, 'c', target, dict(PERSON), write=True
            )
            == DENIED
        ), target
    assert course_ops.read(ADMIN, get_instructor, 'c', 'i2') == person('i2')


@pytest.mark.parametrize('who', [STUDENT, OUTSIDER])
def test_set_instructor_refused_to_non_instructors(course_ops, who):
    answer = course_ops.answers(who, set_instructor, 'c', who, dict(PERSON), write=True)
    assert answer == DENIED


@pytest.mark.parametrize(
    ('missing', 'message'),
    [
        ('first_name', 'Please supply first name'),
        ('last_name', 'Please supply last name'),
        ('email', 'Please supply email name'),
    ],
)
def test_set_instructor_needs_every_field(course_ops, missing, message):
    fields = {**PERSON, missing: None}
    answer = course_ops.answers(ADMIN, set_instructor, 'c', 'i2', fields, write=True)
    assert answer == (400, message)
    assert course_ops.count(RosterEntry, RosterEntry.user_id == 'i2') == 0


def test_instructor_lookups(course_ops):
    # Created with the course: no name or email yet.
    listed = course_ops.read(OTHER_STUDENT, list_instructors, 'c')
    assert listed == {
        'instructors': [
            {
                'username': INSTRUCTOR,
                'first_name': None,
                'last_name': None,
                'email': None,
            }
        ]
    }
    assert course_ops.answers(OUTSIDER, list_instructors, 'c') == DENIED
    assert course_ops.answers(OUTSIDER, get_instructor, 'c', INSTRUCTOR) == DENIED
    # A student is no instructor.
    assert course_ops.answers(ADMIN, get_instructor, 'c', STUDENT) == (
        404,
        'Instructor not found',
    )
    assert course_ops.answers(ADMIN, list_instructors, 'nope') == (
        404,
        'Course not found',
    )


def test_remove_instructor(course_ops):
    assert (
        course_ops.answers(INSTRUCTOR, remove_instructor, 'c', INSTRUCTOR, write=True)
        == DENIED
    )
    assert course_ops.answers(ADMIN, remove_instructor, 'c', STUDENT, write=True) == (
        404,
        'Instructor not found',
    )
    assert course_ops.write(ADMIN, remove_instructor, 'c', INSTRUCTOR) == {}
    assert course_ops.read(ADMIN, list_instructors, 'c') == {'instructors': []}
    assert course_ops.read(INSTRUCTOR, list_courses) == {'courses': []}
    # Still a user: only the roster entry went.
    assert course_ops.count(User, User.id == INSTRUCTOR) == 1


# Students


def test_set_student_adds_and_updates(course_ops):
    course_ops.write(INSTRUCTOR, set_student, 'c', 'new', dict(PERSON))
    course_ops.write(INSTRUCTOR, set_student, 'c', 'new', {**PERSON, 'last_name': 'N'})
    assert course_ops.read('new', get_student, 'c', 'new') == person(
        'new', last_name='N'
    )
    assert course_ops.read('new', list_courses) == {'courses': ['c']}


def test_set_student_refusals(course_ops):
    assert course_ops.answers(
        INSTRUCTOR, set_student, 'c', INSTRUCTOR, dict(PERSON), write=True
    ) == (409, 'Cannot add instructor as student')
    for who in (STUDENT, OUTSIDER):
        assert (
            course_ops.answers(who, set_student, 'c', 'x', dict(PERSON), write=True)
            == DENIED
        )
    assert course_ops.answers(
        INSTRUCTOR, set_student, 'c', 'x', {**PERSON, 'email': None}, write=True
    ) == (400, 'Please supply email')
    assert course_ops.answers(
        INSTRUCTOR, set_student, 'nope', 'x', dict(PERSON), write=True
    ) == (404, 'Course not found')
    assert course_ops.count(User, User.id == 'x') == 0


@pytest.mark.parametrize(
    ('who', 'target', 'expected'),
    [
        (ADMIN, STUDENT, 200),
        (INSTRUCTOR, STUDENT, 200),
        (STUDENT, STUDENT, 200),
        (OTHER_STUDENT, STUDENT, 403),
        (OUTSIDER, STUDENT, 403),
        (INSTRUCTOR, OUTSIDER, 404),
    ],
)
def test_get_student_permissions(course_ops, who, target, expected):
    status, answer = course_ops.answers(who, get_student, 'c', target)
    assert status == expected
    if expected == 200:
        assert answer == person(target)
    elif expected == 403:
        assert answer == 'Permission denied'
    else:
        assert answer == 'Student not found'


@pytest.mark.parametrize(
    ('who', 'expected'),
    [(ADMIN, 200), (INSTRUCTOR, 200), (STUDENT, 403), (OUTSIDER, 403)],
)
def test_list_students_permissions(course_ops, who, expected):
    status, answer = course_ops.answers(who, list_students, 'c')
    assert status == expected
    if expected == 200:
        # In enrolment order (stu, then other), not by name.
        assert answer == {'students': [person(STUDENT), person(OTHER_STUDENT)]}


def test_remove_student(course_ops):
    assert (
        course_ops.answers(STUDENT, remove_student, 'c', STUDENT, write=True) == DENIED
    )
    assert course_ops.answers(
        INSTRUCTOR, remove_student, 'c', INSTRUCTOR, write=True
    ) == (
        404,
        'Student not found',
    )
    assert course_ops.write(INSTRUCTOR, remove_student, 'c', STUDENT) == {}
    assert course_ops.read(STUDENT, list_courses) == {'courses': []}
    names = [
        s['username'] for s in course_ops.read(ADMIN, list_students, 'c')['students']
    ]
    assert names == [OTHER_STUDENT]


# add_students: bulk semantics


def test_add_students_reports_each_in_request_order(course_ops):
    students = [
        person('zed'),
        person(INSTRUCTOR),
        person('amy', email=None),
        person(STUDENT, first_name='Again'),
    ]
    answer = course_ops.write(INSTRUCTOR, add_students, 'c', json.dumps(students))
    assert answer == {
        'status': [
            {'username': 'zed', 'success': True},
            {
                'username': INSTRUCTOR,
                'success': False,
                'message': 'Cannot add instructor as student',
            },
            {'username': 'amy', 'success': True},
            {'username': STUDENT, 'success': True},
        ]
    }
    # Enrolment order: an update keeps its place; the new ones were
    # written in name order, whatever the request's order.
    listed = course_ops.read(INSTRUCTOR, list_students, 'c')['students']
    assert listed == [
        person(STUDENT, first_name='Again'),
        person(OTHER_STUDENT),
        person('amy', email=None),
        person('zed'),
    ]
    # The refused one stays an instructor, unchanged.
    assert course_ops.read(ADMIN, get_instructor, 'c', INSTRUCTOR) == unnamed(
        INSTRUCTOR
    )


def test_add_students_a_name_twice_ends_with_its_last_values(course_ops):
    students = [person('dup', first_name='One'), person('dup', first_name='Two')]
    answer = course_ops.write(INSTRUCTOR, add_students, 'c', json.dumps(students))
    assert answer['status'] == [{'username': 'dup', 'success': True}] * 2
    assert course_ops.read('dup', get_student, 'c', 'dup')['first_name'] == 'Two'
    assert course_ops.count(RosterEntry, RosterEntry.user_id == 'dup') == 1


@pytest.mark.parametrize(
    ('students_json', 'message'),
    [
        (None, 'Please supply students'),
        ('[]', 'Please supply students'),
        ('{"username"', 'Students cannot be JSON decoded'),
        ('{"username": "a"}', 'Incorrect request format'),
        ('["a"]', 'Incorrect request format'),
        (json.dumps([{'username': 'a'}]), 'Incorrect request format'),
        (json.dumps([person('')]), 'Incorrect request format'),
        (json.dumps([person(7)]), 'Incorrect request format'),
        (json.dumps([person('a', email='x\u0000')]), 'Incorrect request format'),
        # One bad entry refuses the whole request: nobody is added.
        (json.dumps([person('ok'), {'username': 'a'}]), 'Incorrect request format'),
    ],
)
def test_add_students_malformed(course_ops, students_json, message):
    answer = course_ops.answers(
        INSTRUCTOR, add_students, 'c', students_json, write=True
    )
    assert answer == (400, message)
    assert course_ops.count(User, User.id.in_(['ok', 'a'])) == 0


def test_add_students_illegal_new_name_adds_nobody(course_ops):
    students = [person('fine'), person('bad\x01name')]
    answer = course_ops.answers(
        INSTRUCTOR, add_students, 'c', json.dumps(students), write=True
    )
    assert answer == (400, 'Illegal name')
    # One transaction: the legal one before it is not kept either.
    assert course_ops.count(User, User.id == 'fine') == 0


@pytest.mark.parametrize('who', [STUDENT, OUTSIDER])
def test_add_students_is_for_instructors(course_ops, who):
    answer = course_ops.answers(
        who, add_students, 'c', json.dumps([person('x')]), write=True
    )
    assert answer == DENIED
    assert course_ops.count(User, User.id == 'x') == 0


def test_add_students_unknown_course_before_permission(ops):
    # The course is looked up first: an outsider learns only "not found".
    answer = ops.answers(OUTSIDER, add_students, 'nope', None, write=True)
    assert answer == (404, 'Course not found')
