"""The permission matrix of every endpoint and method, under the Hub.

One Hub-managed ngshare serves the module (starting one per case would take
minutes). Every case builds a world of its own: two courses and users whose
names carry the case number, so one case's writes cannot change what
another case sees. Callers are identified by Hub tokens only.

Roles, for the course ``C`` of a world:

* ``admin``: ``root`` (``--admins root``);
* ``instructor``: an instructor of ``C``;
* ``student``: a student of ``C``, the target of "own" endpoints;
* ``classmate``: another student of ``C``;
* ``other_student``: a student of a different course only;
* ``unrelated``: a user known nowhere;
* ``anonymous``: no credentials at all.

The history of a course (``GET /history``, issue 17) is read by every role
and two more callers: the token of a Hub service ngshare does not trust,
and a ``--trusted-services`` service on no roster.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable

import pytest
from _api import err, files_of, ok, tree
from _servers import HubStub, start_server
from hubstub import service_token_for

ROLES = (
    'admin',
    'instructor',
    'student',
    'classmate',
    'other_student',
    'unrelated',
    'anonymous',
)
ADMINS = frozenset({'admin'})
INSTRUCTORS = ADMINS | {'instructor'}
MEMBERS = INSTRUCTORS | {'student', 'classmate'}
OWN = INSTRUCTORS | {'student'}
EVERYONE = frozenset(ROLES) - {'anonymous'}
TRUSTED = 'history-helper'  # a --trusted-services service

_counter = itertools.count(1)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('permissions')
    (workdir / 'hub').mkdir()
    hub = HubStub(workdir / 'hub')
    try:
        started = start_server(
            workdir / 'ngshare',
            hub_mode=True,
            hub=hub,
            args=['--trusted-services', TRUSTED],
        )
        try:
            yield started
        finally:
            started.stop()
    finally:
        hub.stop()


def person(name):
    return {'first_name': name + ' F', 'last_name': name + ' L', 'email': name + '@x'}


class World:
    """Course C (instructors ``instructor``, ``instructor2``; students
    ``student``, ``classmate``) with assignment A, submitted by both
    students, with feedback on ``student``'s submission; course O with
    ``other_student``."""

    def __init__(self, server):
        self.server = server
        n = next(_counter)
        self.course = f'perm {n}'
        self.other_course = f'other {n}'
        self.assignment = 'A 1'
        self.users = {
            'admin': 'root',
            'instructor': f'instr-{n}',
            'student': f'stud-{n}',
            'classmate': f'mate-{n}',
            'other_student': f'out-{n}',
            'unrelated': f'nobody-{n}',
            'anonymous': None,
        }
        self.instructor2 = f'instr2-{n}'
        self.newcomer = f'new-{n}'
        self.anon_name = f'anon-{n}'
        u = self.users
        self.admin_post(
            ('course', self.course),
            {'instructors': json.dumps([u['instructor'], self.instructor2])},
        )
        self.admin_post(
            ('course', self.other_course), {'instructors': json.dumps([f'oinstr-{n}'])}
        )
        for role in ('student', 'classmate'):
            self.admin_post(('student', self.course, u[role]), person(u[role]))
        self.admin_post(
            ('student', self.other_course, u['other_student']),
            person(u['other_student']),
        )
        self.admin_post(
            ('assignment', self.course, self.assignment),
            {'files': tree({'task.ipynb': b'task'})},
        )
        self.stamp = ok(
            server.post(
                ('submission', self.course, self.assignment),
                user=u['student'],
                data={'files': tree({'task.ipynb': b'mine'})},
            )
        )['timestamp']
        ok(
            server.post(
                ('submission', self.course, self.assignment),
                user=u['classmate'],
                data={'files': tree({'task.ipynb': b'theirs'})},
            )
        )
        self.admin_post(
            ('feedback', self.course, self.assignment, u['student']),
            {'timestamp': self.stamp, 'files': tree({'fb.txt': b'old'})},
        )

    def admin_post(self, path, data):
        return ok(self.server.post(path, user='root', data=data))

    def admin_get(self, path, **params):
        return ok(self.server.get(path, user='root', params=params))

    # State probes (read as admin)

    def courses(self):
        return self.admin_get('courses')['courses']

    def instructor_names(self):
        listed = self.admin_get(('instructors', self.course))['instructors']
        return sorted(i['username'] for i in listed)

    def student_names(self):
        listed = self.admin_get(('students', self.course))['students']
        return sorted(s['username'] for s in listed)

    def instructor_entry(self):
        answer = self.admin_get(('instructor', self.course, self.users['instructor']))
        return {k: answer[k] for k in ('first_name', 'last_name', 'email')}

    def assignment_names(self):
        return self.admin_get(('assignments', self.course))['assignments']

    def submissions(self):
        return self.admin_get(('submissions', self.course, self.assignment))[
            'submissions'
        ]

    def submission_count(self):
        """Submissions to A, or None once A is gone."""
        resp = self.server.get(
            ('submissions', self.course, self.assignment), user='root'
        )
        if resp.status_code == 404:
            err(resp, 404, 'Assignment not found')
            return None
        return len(ok(resp)['submissions'])

    def feedback(self):
        answer = self.admin_get(
            ('feedback', self.course, self.assignment, self.users['student']),
            timestamp=self.stamp,
        )
        return files_of(answer)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World, str | None], tuple]
    allowed: frozenset
    data: Callable[[World], dict] | None = None
    params: Callable[[World], dict] | None = None
    # For writes: a probe of the state the request changes when allowed.
    state: Callable[[World], object] | None = None
    # For reads: a check of a successful answer.
    check: Callable[[World, dict], None] | None = None


def _check_person(role):
    def check(world, answer):
        assert answer['username'] == world.users[role]

    return check


def _check_files(expected):
    def check(world, answer):
        assert files_of(answer) == expected

    return check


def _check_own_submissions(world, answer):
    assert answer['submissions'] == [
        {'student_id': world.users['student'], 'timestamp': world.stamp}
    ]


def _check_all_submissions(world, answer):
    assert {s['student_id'] for s in answer['submissions']} == {
        world.users['student'],
        world.users['classmate'],
    }


def _check_instructors(world, answer):
    names = sorted(i['username'] for i in answer['instructors'])
    assert names == sorted([world.users['instructor'], world.instructor2])


def _check_students(world, answer):
    names = sorted(s['username'] for s in answer['students'])
    assert names == sorted([world.users['student'], world.users['classmate']])


def _check_assignments(world, answer):
    assert answer['assignments'] == [world.assignment]


def _self_or_anon(world, caller):
    return caller if caller is not None else world.anon_name


ENDPOINTS = [
    Endpoint('GET courses', 'GET', lambda w, c: ('courses',), EVERYONE),
    Endpoint(
        'POST course',
        'POST',
        lambda w, c: ('course', w.course + ' new'),
        ADMINS,
        data=lambda w: {'instructors': json.dumps([w.users['instructor']])},
        state=lambda w: w.courses(),
    ),
    Endpoint(
        'DELETE course',
        'DELETE',
        lambda w, c: ('course', w.course),
        ADMINS,
        state=lambda w: w.courses(),
    ),
    Endpoint(
        'POST instructor (the instructor)',
        'POST',
        lambda w, c: ('instructor', w.course, w.users['instructor']),
        INSTRUCTORS,
        data=lambda w: person('changed'),
        state=lambda w: w.instructor_entry(),
    ),
    Endpoint(
        'POST instructor (the caller)',
        'POST',
        lambda w, c: ('instructor', w.course, _self_or_anon(w, c)),
        INSTRUCTORS,
        data=lambda w: person('self'),
        state=lambda w: (w.instructor_names(), w.instructor_entry()),
    ),
    Endpoint(
        'GET instructor',
        'GET',
        lambda w, c: ('instructor', w.course, w.users['instructor']),
        MEMBERS,
        check=_check_person('instructor'),
    ),
    Endpoint(
        'DELETE instructor',
        'DELETE',
        lambda w, c: ('instructor', w.course, w.instructor2),
        ADMINS,
        state=lambda w: w.instructor_names(),
    ),
    Endpoint(
        'GET instructors',
        'GET',
        lambda w, c: ('instructors', w.course),
        MEMBERS,
        check=_check_instructors,
    ),
    Endpoint(
        'POST student',
        'POST',
        lambda w, c: ('student', w.course, w.newcomer),
        INSTRUCTORS,
        data=lambda w: person(w.newcomer),
        state=lambda w: w.student_names(),
    ),
    Endpoint(
        'GET student',
        'GET',
        lambda w, c: ('student', w.course, w.users['student']),
        OWN,
        check=_check_person('student'),
    ),
    Endpoint(
        'DELETE student',
        'DELETE',
        lambda w, c: ('student', w.course, w.users['student']),
        INSTRUCTORS,
        state=lambda w: w.student_names(),
    ),
    Endpoint(
        'POST students',
        'POST',
        lambda w, c: ('students', w.course),
        INSTRUCTORS,
        data=lambda w: {
            'students': json.dumps([{'username': w.newcomer, **person(w.newcomer)}])
        },
        state=lambda w: w.student_names(),
    ),
    Endpoint(
        'GET students',
        'GET',
        lambda w, c: ('students', w.course),
        INSTRUCTORS,
        check=_check_students,
    ),
    Endpoint(
        'GET assignments',
        'GET',
        lambda w, c: ('assignments', w.course),
        MEMBERS,
        check=_check_assignments,
    ),
    Endpoint(
        'GET assignment',
        'GET',
        lambda w, c: ('assignment', w.course, w.assignment),
        MEMBERS,
        check=_check_files({'task.ipynb': b'task'}),
    ),
    Endpoint(
        'POST assignment',
        'POST',
        lambda w, c: ('assignment', w.course, 'A 2'),
        INSTRUCTORS,
        data=lambda w: {'files': tree({'new.ipynb': b'new'})},
        state=lambda w: w.assignment_names(),
    ),
    Endpoint(
        'DELETE assignment',
        'DELETE',
        lambda w, c: ('assignment', w.course, w.assignment),
        INSTRUCTORS,
        state=lambda w: (w.assignment_names(), w.submission_count()),
    ),
    Endpoint(
        'GET submissions',
        'GET',
        lambda w, c: ('submissions', w.course, w.assignment),
        INSTRUCTORS,
        check=_check_all_submissions,
    ),
    Endpoint(
        'GET submissions (student)',
        'GET',
        lambda w, c: ('submissions', w.course, w.assignment, w.users['student']),
        OWN,
        check=_check_own_submissions,
    ),
    Endpoint(
        'POST submission',
        'POST',
        lambda w, c: ('submission', w.course, w.assignment),
        MEMBERS,
        data=lambda w: {'files': tree({'task.ipynb': b'another'})},
        state=lambda w: w.submissions(),
    ),
    Endpoint(
        'GET submission',
        'GET',
        lambda w, c: ('submission', w.course, w.assignment, w.users['student']),
        INSTRUCTORS,
        check=_check_files({'task.ipynb': b'mine'}),
    ),
    Endpoint(
        'POST feedback',
        'POST',
        lambda w, c: ('feedback', w.course, w.assignment, w.users['student']),
        INSTRUCTORS,
        data=lambda w: {'timestamp': w.stamp, 'files': tree({'fb.txt': b'new'})},
        state=lambda w: w.feedback(),
    ),
    Endpoint(
        'GET feedback',
        'GET',
        lambda w, c: ('feedback', w.course, w.assignment, w.users['student']),
        OWN,
        params=lambda w: {'timestamp': w.stamp},
        check=_check_files({'fb.txt': b'old'}),
    ),
]


@pytest.mark.parametrize('role', ROLES)
@pytest.mark.parametrize('endpoint', ENDPOINTS, ids=lambda e: e.name)
def test_permission(server, endpoint, role):
    world = World(server)
    caller = world.users[role]
    path = endpoint.path(world, caller)
    data = endpoint.data(world) if endpoint.data else None
    params = endpoint.params(world) if endpoint.params else None
    before = endpoint.state(world) if endpoint.state else None

    resp = server.request(endpoint.method, path, user=caller, data=data, params=params)

    if role == 'anonymous':
        if endpoint.method == 'GET':
            assert resp.status_code == 302, resp.text
            assert '/hub/' in resp.headers['Location']
            assert resp.json() == {'success': False, 'message': 'Login required'}
        else:
            err(resp, 401, 'Login required')
    elif role in endpoint.allowed:
        answer = ok(resp)
        if endpoint.check:
            endpoint.check(world, answer)
    else:
        err(resp, 403, 'Permission denied')

    if endpoint.state:
        after = endpoint.state(world)
        if role in endpoint.allowed:
            assert after != before, 'an allowed write changed nothing'
        else:
            assert after == before, 'a refused request changed the state'


@pytest.mark.parametrize('role', ROLES)
def test_courses_seen_by_role(server, role):
    world = World(server)
    resp = server.get('courses', user=world.users[role])
    if role == 'anonymous':
        assert resp.status_code == 302
        return
    courses = ok(resp)['courses']
    expected = {
        'instructor': [world.course],
        'student': [world.course],
        'classmate': [world.course],
        'other_student': [world.other_course],
        'unrelated': [],
    }
    if role == 'admin':
        assert {world.course, world.other_course} <= set(courses)
        assert courses == sorted(courses)
    else:
        assert courses == expected[role]


@pytest.mark.parametrize('method', ['GET', 'POST', 'DELETE'])
def test_user_parameter_is_ignored_under_the_hub(server, method):
    """Under the Hub, only the token names the caller, never ``user``."""
    world = World(server)
    path = (
        ('students', world.course)
        if method == 'GET'
        else ('student', world.course, world.users['classmate'])
    )
    token = 'tok-' + world.users['unrelated'].encode().hex()
    before = world.student_names()
    if method == 'GET':
        resp = server.request(method, path, token=token, params={'user': 'root'})
    else:
        resp = server.request(
            method, path, token=token, data={'user': 'root', **person('x')}
        )
    err(resp, 403, 'Permission denied')
    assert world.student_names() == before


@pytest.mark.parametrize('method', ['GET', 'POST', 'DELETE'])
def test_user_parameter_alone_is_not_a_login(server, method):
    world = World(server)
    path = ('students', world.course)
    if method == 'GET':
        resp = server.request(method, path, params={'user': 'root'})
        assert resp.status_code == 302
        assert resp.json() == {'success': False, 'message': 'Login required'}
    else:
        resp = server.request(
            method,
            ('student', world.course, world.users['classmate']),
            data={'user': 'root', **person('x')},
        )
        err(resp, 401, 'Login required')
    assert world.student_names() == sorted(
        [world.users['student'], world.users['classmate']]
    )


# --------------------------------------------------------------------------
# GET /history/<course_id>: one world, every caller


def _history(server, world, who, course=None, **params):
    """The history request of ``who`` (a role, ``service`` or
    ``trusted_service``) for the world's course (or ``course``)."""
    path = ('history', course or world.course)
    if who == 'service':  # a Hub service named like the instructor
        token = service_token_for(world.users['instructor'])
        return server.request('GET', path, token=token, params=params)
    if who == 'trusted_service':
        token = service_token_for(TRUSTED)
        return server.request('GET', path, token=token, params=params)
    return server.request('GET', path, user=world.users[who], params=params)


def _entries(resp) -> list[tuple]:
    answer = ok(resp)
    assert answer['next'] is None
    return [(e['action'], e['user'], e['student_id']) for e in answer['history']]


def test_history_by_role(server):
    """Instructors of the course and admins read all of it, newest first; a
    student reads the entries that concern them (another student's name as
    the filter: none); everyone else is refused as by every endpoint, and a
    course that does not exist is 404 for all who may ask."""
    world = World(server)
    u = world.users
    root, teacher = u['admin'], u['instructor']
    student, mate = u['student'], u['classmate']
    # What World did to the course, newest first (the course's instructors
    # are recorded after the course, in the order given).
    whole = [
        ('release_feedback', root, student),
        ('submit', mate, mate),
        ('submit', student, student),
        ('release', root, None),
        ('add_student', root, mate),
        ('add_student', root, student),
        ('add_instructor', root, world.instructor2),
        ('add_instructor', root, teacher),
        ('create_course', root, None),
    ]
    assert _entries(_history(server, world, 'admin')) == whole
    assert _entries(_history(server, world, 'instructor')) == whole
    assert _entries(_history(server, world, 'admin', order='oldest')) == whole[::-1]
    own = [entry for entry in whole if entry[2] == student]
    assert len(own) == 3
    assert _entries(_history(server, world, 'student')) == own
    assert _entries(_history(server, world, 'student', student_id=student)) == own
    assert _entries(_history(server, world, 'student', student_id=mate)) == []
    assert _entries(_history(server, world, 'classmate')) == [
        entry for entry in whole if entry[2] == mate
    ]
    # Courses do not mix: the other course's history is its own, and the
    # instructor of one is nobody in the other.
    other = _entries(_history(server, world, 'admin', course=world.other_course))
    assert [action for action, _, _ in other] == [
        'add_student',
        'add_instructor',
        'create_course',
    ]
    err(
        _history(server, world, 'instructor', world.other_course),
        403,
        'Permission denied',
    )
    for who in ('other_student', 'unrelated', 'trusted_service'):
        err(_history(server, world, who), 403, 'Permission denied')
    err(_history(server, world, 'service'), 403, 'Invalid token')
    resp = server.request('GET', ('history', world.course))
    assert resp.status_code == 302, resp.text
    assert '/hub/' in resp.headers['Location']
    assert resp.json() == {'success': False, 'message': 'Login required'}
    for who in ('admin', 'instructor', 'student', 'unrelated', 'trusted_service'):
        err(
            _history(server, world, who, course='no such course'),
            404,
            'Course not found',
        )
    # Reading the history is no action: it stayed as it was.
    assert _entries(_history(server, world, 'admin')) == whole
