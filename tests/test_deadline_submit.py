"""Deadlines where submissions happen: submit, the lists, collect.

What the server decides at submit time (the due date that applies to the
student, their extension included; late or not, by how much; a refusal
after the cut-off of a ``refuse`` policy) and what every answer says of it
afterwards. A due date in the past cannot be set through the API (400), so
the tests that need one move it there in the database itself, as time
would.
"""

from __future__ import annotations

import datetime
import json

import pytest
from _api import err, ok, tree
from sqlalchemy import text

pytestmark = [pytest.mark.both_databases]

ADMIN = 'root'
COURSE = 'NBG 101'
ASSIGNMENT = 'Assignment 1'
HOUR = datetime.timedelta(hours=1)
# The server and the tests share one clock; allow for the requests' time.
SLACK = 5.0


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


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def iso(instant):
    return None if instant is None else instant.isoformat() + '+00:00'


def set_deadline(server, due, policy='accept', grace=0):
    """The assignment's deadline, written as the database holds it (a due
    date in the past is what the clock makes of a future one)."""
    with server.runtime.engine.begin() as connection:
        connection.execute(
            text(
                'UPDATE assignments SET due = :due, late_policy = :policy,'
                ' grace_seconds = :grace WHERE id = :name'
            ),
            {'due': due, 'policy': policy, 'grace': grace, 'name': ASSIGNMENT},
        )


def give_extension(server, student, due):
    with server.runtime.engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO extensions (assignment_id, student_id, due)'
                ' SELECT _id, :student, :due FROM assignments WHERE id = :name'
            ),
            {'student': student, 'due': due, 'name': ASSIGNMENT},
        )


def submit(server, user):
    return server.post(
        ('submission', COURSE, ASSIGNMENT),
        user=user,
        data={'files': tree({'a.ipynb': user.encode()})},
    )


def listed(server, *student, user='kevin'):
    return ok(server.get(('submissions', COURSE, ASSIGNMENT, *student), user=user))


def collect(server, student, **params):
    return ok(
        server.get(
            ('submission', COURSE, ASSIGNMENT, student), user='kevin', params=params
        )
    )


def assert_late_by(fields, due, at_least):
    assert fields['due'] == iso(due)
    assert fields['late'] is True
    assert at_least <= fields['seconds_late'] <= at_least + SLACK


def test_no_due_date_no_lateness(shared_server):
    server = shared_server
    setup(server)
    answer = ok(submit(server, 'lawrence'))
    assert answer['due'] is None
    assert answer['late'] is False
    assert answer['seconds_late'] == 0
    body = listed(server)
    # The documented entries keep exactly their two keys.
    assert body['submissions'] == [
        {'student_id': 'lawrence', 'timestamp': answer['timestamp']}
    ]
    assert body['lateness'] == [{'due': None, 'late': False, 'seconds_late': 0}]


def test_on_time_submission(shared_server):
    server = shared_server
    setup(server)
    due = (utc_now() + HOUR).replace(microsecond=0)
    set_deadline(server, due, 'refuse')
    answer = ok(submit(server, 'lawrence'))
    assert (answer['due'], answer['late'], answer['seconds_late']) == (
        iso(due),
        False,
        0,
    )
    assert collect(server, 'lawrence')['late'] is False


def test_late_submission_accepted_and_said_everywhere(shared_server):
    server = shared_server
    setup(server)
    due = utc_now() - HOUR
    set_deadline(server, due)
    answer = ok(submit(server, 'lawrence'))
    assert_late_by(answer, due, 3600)
    for body in (listed(server), listed(server, 'lawrence', user='lawrence')):
        assert body['submissions'][0]['timestamp'] == answer['timestamp']
        assert body['lateness'] == [
            {key: answer[key] for key in ('due', 'late', 'seconds_late')}
        ]
    collected = collect(server, 'lawrence')
    assert collected['timestamp'] == answer['timestamp']
    assert collected['seconds_late'] == answer['seconds_late']
    listed_only = collect(server, 'lawrence', list_only='true')
    assert listed_only['late'] is True


def test_refused_after_the_cutoff_and_nothing_stored(shared_server):
    server = shared_server
    setup(server)
    due = (utc_now() - HOUR).replace(microsecond=0)
    set_deadline(server, due, 'refuse', grace=600)
    closes = due + datetime.timedelta(seconds=600)
    before = server.blob_keys()
    err(
        submit(server, 'lawrence'),
        403,
        f'Deadline passed: submissions closed at {iso(closes)}',
    )
    assert listed(server)['submissions'] == []
    # The refused upload's blob was written before the transaction: gone.
    assert server.blob_keys() == before


def test_grace_period_accepts_late(shared_server):
    server = shared_server
    setup(server)
    due = utc_now() - datetime.timedelta(minutes=10)
    set_deadline(server, due, 'refuse', grace=3600)
    answer = ok(submit(server, 'lawrence'))
    assert_late_by(answer, due, 600)


@pytest.mark.parametrize('user', ['kevin', ADMIN])
def test_instructors_and_admins_are_never_refused(shared_server, user):
    server = shared_server
    setup(server)
    due = utc_now() - HOUR
    set_deadline(server, due, 'refuse')
    answer = ok(submit(server, user))
    assert_late_by(answer, due, 3600)


def test_extension_moves_one_students_due_date(shared_server):
    server = shared_server
    setup(server)
    due = (utc_now() - HOUR).replace(microsecond=0)
    later = (utc_now() + HOUR).replace(microsecond=0)
    set_deadline(server, due, 'refuse')
    give_extension(server, 'lawrence', later)
    answer = ok(submit(server, 'lawrence'))
    assert (answer['due'], answer['late']) == (iso(later), False)
    err(
        submit(server, 'eric'),
        403,
        f'Deadline passed: submissions closed at {iso(due)}',
    )
    deadlines = ok(server.get(('assignments', COURSE), user='lawrence'))['deadlines']
    assert deadlines[ASSIGNMENT]['due'] == iso(later)
    others = ok(server.get(('assignments', COURSE), user='eric'))['deadlines']
    assert others[ASSIGNMENT]['due'] == iso(due)
    assert others[ASSIGNMENT]['cutoff'] == iso(due)


def test_extension_earlier_than_a_moved_due_date_does_not_shorten(shared_server):
    server = shared_server
    setup(server)
    due = utc_now() - HOUR
    give_extension(server, 'lawrence', due - HOUR)
    set_deadline(server, due)
    answer = ok(submit(server, 'lawrence'))
    assert_late_by(answer, due, 3600)


def test_lateness_is_frozen_at_submit_time(shared_server):
    server = shared_server
    setup(server)
    due = utc_now() - HOUR
    set_deadline(server, due)
    answer = ok(submit(server, 'lawrence'))
    set_deadline(server, utc_now() + HOUR)
    lateness = listed(server)['lateness'][0]
    assert lateness['late'] is True
    assert lateness['seconds_late'] == answer['seconds_late']


def test_assignment_list_carries_every_deadline(shared_server):
    server = shared_server
    setup(server)
    ok(
        server.post(
            ('assignment', COURSE, 'second'),
            user='kevin',
            data={'files': tree({'b.ipynb': b'{}'})},
        )
    )
    due = (utc_now() + HOUR).replace(microsecond=0)
    set_deadline(server, due, 'refuse', grace=60)
    for user in ('kevin', 'lawrence', ADMIN):
        body = ok(server.get(('assignments', COURSE), user=user))
        assert body['assignments'] == [ASSIGNMENT, 'second']
        assert body['deadlines'] == {
            ASSIGNMENT: {
                'due': iso(due),
                'late_policy': 'refuse',
                'grace_seconds': 60,
                'cutoff': iso(due + datetime.timedelta(seconds=60)),
            },
            'second': {
                'due': None,
                'late_policy': 'accept',
                'grace_seconds': 0,
                'cutoff': None,
            },
        }
