"""Who may read and change deadlines: every deadline endpoint (and a release
with deadline fields) for every role, under the Hub (Hub tokens only).

One Hub-managed ngshare serves the module; every case builds a world of its
own (names carrying the case number), so cases cannot see each other's
writes. Roles, for the course ``C`` of a world:

* ``admin``: ``root`` (``--admins root``);
* ``instructor``: an instructor of ``C``;
* ``student``: a student of ``C``, who has an extension;
* ``other_student``: a student of another course only;
* ``outsider``: a user on no roster;
* ``anonymous``: no credentials;
* ``service``: the token of a Hub service ngshare does not trust;
* ``trusted_service``: a service of ``--trusted-services``, on no roster.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable

import pytest
from _api import err, ok, tree
from _servers import HubStub, start_server
from hubstub import service_token_for

ROLES = (
    'admin',
    'instructor',
    'student',
    'other_student',
    'outsider',
    'anonymous',
    'service',
    'trusted_service',
)
INSTRUCTORS = frozenset({'admin', 'instructor'})
MEMBERS = INSTRUCTORS | {'student'}
TRUSTED = 'deadline-helper'

DUE = '2099-06-01T17:00:00+00:00'
LATER = '2099-06-08T17:00:00+00:00'
MOVED = '2099-06-03T09:00:00+00:00'
LATEST = '2099-07-01T00:00:00+00:00'

_counter = itertools.count(1)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('deadline-permissions')
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
    return {'first_name': name, 'last_name': name, 'email': f'{name}@x'}


class World:
    """Course C (``instructor``; ``student`` with an extension) with
    assignment A (due DUE, refusing after 60 s); course O with
    ``other_student``."""

    def __init__(self, server):
        self.server = server
        n = next(_counter)
        self.course = f'due {n}'
        self.assignment = 'A 1'
        self.users = {
            'admin': 'root',
            'instructor': f'instr-{n}',
            'student': f'stud-{n}',
            'other_student': f'out-{n}',
            'outsider': f'nobody-{n}',
        }
        u = self.users
        self.admin_post(
            ('course', self.course), {'instructors': json.dumps([u['instructor']])}
        )
        self.admin_post(
            ('course', f'other {n}'), {'instructors': json.dumps([f'oi-{n}'])}
        )
        self.admin_post(('student', self.course, u['student']), person('s'))
        self.admin_post(('student', f'other {n}', u['other_student']), person('o'))
        self.admin_post(
            ('assignment', self.course, self.assignment),
            {
                'files': tree({'a.ipynb': b'{}'}),
                'due': DUE,
                'late_policy': 'refuse',
                'grace_seconds': '60',
            },
        )
        self.admin_post(
            ('extension', self.course, self.assignment, u['student']), {'due': LATER}
        )

    def admin_post(self, path, data):
        return ok(self.server.post(path, user='root', data=data))

    def request(self, role, method, path, data=None):
        if role == 'anonymous':
            return self.server.request(method, path, data=data)
        if role == 'service':
            token = service_token_for(self.users['instructor'])
            return self.server.request(method, path, token=token, data=data)
        if role == 'trusted_service':
            token = service_token_for(TRUSTED)
            return self.server.request(method, path, token=token, data=data)
        return self.server.request(method, path, user=self.users[role], data=data)

    def deadline_of(self, assignment=None):
        """The instructors' view of an assignment's deadline (as admin), or
        the refusal's JSON."""
        path = ('deadline', self.course, assignment or self.assignment)
        return self.server.get(path, user='root').json()


def _instructor_view(world, answer):
    assert answer['due'] == DUE
    assert answer['extensions'] == [
        {
            'student_id': world.users['student'],
            'due': LATER,
            'cutoff': '2099-06-08T17:01:00+00:00',
        }
    ]


def _student_view(world, answer):
    assert answer == {
        'success': True,
        'due': LATER,
        'late_policy': 'refuse',
        'grace_seconds': 60,
        'cutoff': '2099-06-08T17:01:00+00:00',
        'extended': True,
    }


@dataclasses.dataclass
class Endpoint:
    name: str
    method: str
    path: Callable[[World], tuple]
    allowed: frozenset
    data: dict | None = None
    # Checks a 200 answer, given the caller's role.
    check: Callable[[World, str, dict], None] | None = None
    # A state probe: what a refused request must leave unchanged.
    state: Callable[[World], object] = World.deadline_of


def _check_get(world, role, answer):
    if role == 'student':
        _student_view(world, answer)
    else:
        _instructor_view(world, answer)


def _check_moved(world, role, answer):
    assert (answer['due'], answer['late_policy'], answer['cutoff']) == (
        MOVED,
        'accept',
        None,
    )


def _check_extended(world, role, answer):
    assert (answer['student_id'], answer['due']) == (world.users['student'], LATEST)


def _check_removed(world, role, answer):
    assert answer == {'success': True}
    assert world.deadline_of()['extensions'] == []


ENDPOINTS = [
    Endpoint(
        'GET deadline',
        'GET',
        lambda w: ('deadline', w.course, w.assignment),
        MEMBERS,
        check=_check_get,
    ),
    Endpoint(
        'POST deadline',
        'POST',
        lambda w: ('deadline', w.course, w.assignment),
        INSTRUCTORS,
        data={'due': MOVED, 'late_policy': 'accept'},
        check=_check_moved,
    ),
    Endpoint(
        'POST extension',
        'POST',
        lambda w: ('extension', w.course, w.assignment, w.users['student']),
        INSTRUCTORS,
        data={'due': LATEST},
        check=_check_extended,
    ),
    Endpoint(
        'DELETE extension',
        'DELETE',
        lambda w: ('extension', w.course, w.assignment, w.users['student']),
        INSTRUCTORS,
        check=_check_removed,
    ),
    Endpoint(
        'POST assignment with a due date',
        'POST',
        lambda w: ('assignment', w.course, 'A 2'),
        INSTRUCTORS,
        data={'files': tree({'b.ipynb': b'{}'}), 'due': MOVED},
        state=lambda w: w.deadline_of('A 2'),
    ),
]


@pytest.mark.parametrize('role', ROLES)
@pytest.mark.parametrize('endpoint', ENDPOINTS, ids=lambda e: e.name)
def test_deadline_permission(server, endpoint, role):
    world = World(server)
    before = endpoint.state(world)
    resp = world.request(role, endpoint.method, endpoint.path(world), endpoint.data)
    if role == 'anonymous':
        if endpoint.method == 'GET':
            assert resp.status_code == 302, resp.text
            assert resp.json() == {'success': False, 'message': 'Login required'}
        else:
            err(resp, 401, 'Login required')
    elif role == 'service':
        err(resp, 403, 'Invalid token')
    elif role in endpoint.allowed:
        answer = ok(resp)
        if endpoint.check:
            endpoint.check(world, role, answer)
    else:
        err(resp, 403, 'Permission denied')
    after = endpoint.state(world)
    if role in endpoint.allowed and endpoint.method != 'GET':
        assert after != before, 'an allowed write changed nothing'
    else:
        assert after == before, 'a refused request changed the state'


def test_a_student_sees_only_their_own_extension(server):
    world = World(server)
    classmate = f'mate-{world.course}'
    world.admin_post(('student', world.course, classmate), person('m'))
    answer = ok(
        server.get(('deadline', world.course, world.assignment), user=classmate)
    )
    assert 'extensions' not in answer
    assert (answer['due'], answer['extended']) == (DUE, False)
