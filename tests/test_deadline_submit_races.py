"""A submit reads the deadline, then writes: raced against extensions.

A student submits after the cut-off of a ``refuse`` policy while, on the
other replica, the instructor grants them an extension. Whatever the order,
the submission is refused under the old due date or accepted under the
extension, never stored half-way: each acknowledged submission is listed
with the lateness its answer gave, each refused one left nothing, and no
request answered a 5xx. Two real replicas on one PostgreSQL database (or
one SQLite process given twice), see :mod:`_races`.
"""

from __future__ import annotations

import datetime

from _api import err, ok
from _races import new_course, submit
from _replicas import TEACHER, WAIT, assert_no_server_errors, race
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

ROUNDS = 3
GROUP = 8


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def iso(instant):
    return instant.isoformat() + '+00:00'


def close_assignment(database_url, course, assignment, due):
    """A ``refuse`` deadline already passed, as the clock would make it."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE assignments SET due = :due, late_policy = 'refuse'"
                    ' WHERE id = :assignment AND course_id ='
                    ' (SELECT _id FROM courses WHERE id = :course)'
                ),
                {'due': due, 'assignment': assignment, 'course': course},
            )
    finally:
        engine.dispose()


def test_submit_races_an_extension(pair):
    for round_number in range(ROUNDS):
        race_round(pair, f'Deadline race {round_number}')
    assert_no_server_errors(pair)


def race_round(pair, course):
    students = [f's{i}' for i in range(GROUP)]
    new_course(pair[0], course, students)
    ok(
        pair[0].post(
            ('assignment', course, 'lab'),
            user=TEACHER,
            data={'files': '[]'},
            timeout=WAIT,
        )
    )
    due = (utc_now() - datetime.timedelta(hours=1)).replace(microsecond=0)
    close_assignment(pair[0].database_url, course, 'lab', due)
    extended = (utc_now() + datetime.timedelta(hours=1)).replace(microsecond=0)

    def action(i):
        student = students[i // 2]
        if i % 2 == 0:
            return submit(
                pair[(i // 2) % 2], course, 'lab', student, {'a.txt': b'late'}
            )
        return pair[(i // 2 + 1) % 2].post(
            ('extension', course, 'lab', student),
            user=TEACHER,
            data={'due': iso(extended)},
            timeout=WAIT,
        )

    results = race(2 * GROUP, action)
    for i, student in enumerate(students):
        submitted, granted = results[2 * i], results[2 * i + 1]
        assert ok(granted)['due'] == iso(extended)
        body = ok(
            pair[i % 2].get(
                ('submissions', course, 'lab', student), user=TEACHER, timeout=WAIT
            )
        )
        if submitted.status_code == 200:
            answer = submitted.json()
            assert (answer['due'], answer['late']) == (iso(extended), False)
            assert [s['timestamp'] for s in body['submissions']] == [
                answer['timestamp']
            ]
            assert body['lateness'] == [
                {'due': iso(extended), 'late': False, 'seconds_late': 0}
            ]
        else:
            err(
                submitted,
                403,
                f'Deadline passed: submissions closed at {iso(due)}',
            )
            assert body['submissions'] == []
        # Once the extension is committed, every submission is on time.
        again = ok(submit(pair[i % 2], course, 'lab', student, {'b.txt': b'x'}))
        assert (again['due'], again['late']) == (iso(extended), False)
