"""Deadline writes raced across two replicas on one PostgreSQL database.

Requests leave a barrier together (``race``) and go alternately to the two
replicas. What must hold afterwards, read back through both:

* extensions for one student: every request succeeds (an upsert on the
  unique (assignment, student), never a 409 or a second row), and the one
  extension left is one request's date;
* deadline changes: every request succeeds and the deadline left is one
  request's due date, policy and grace, whole, never a mix;
* an extension against a deadline change: the outcome of one of the two
  serial orders (the extension is checked against the committed due date);
* removals of one extension, with grants of it among them: every grant
  succeeds, of the removals at most one per extension that existed wins
  and the others answer 404 ``Extension not found``, and what is left
  is what the last write to commit says (none, or one grant's date).

No request anywhere answers a 5xx.
"""

from __future__ import annotations

import pytest
from _api import err, ok, tree
from _races import new_course
from _replicas import TEACHER, WAIT, assert_no_server_errors, race

ROUNDS = 3
GROUP = 8
COURSE = 'Due races'
STUDENT = 'sam'
DUE = '2099-06-01T17:00:00+00:00'


def instant(day: int, hour: int = 12) -> str:
    return f'2099-07-{day:02d}T{hour:02d}:00:00+00:00'


def release(server, name, **fields):
    ok(
        server.post(
            ('assignment', COURSE, name),
            user=TEACHER,
            data={'files': tree({'a.ipynb': b'{}'}), **fields},
            timeout=WAIT,
        )
    )


def deadline(server, name):
    return ok(server.get(('deadline', COURSE, name), user=TEACHER, timeout=WAIT))


def test_extensions_for_one_student(replicas):
    new_course(replicas[0], COURSE, students=[STUDENT])
    for r in range(ROUNDS):
        name = f'ext {r}'
        release(replicas[0], name, due=DUE)
        dates = [instant(i + 1, r) for i in range(GROUP)]
        results = race(
            GROUP,
            lambda i, name=name, dates=dates: replicas[i % 2].post(
                ('extension', COURSE, name, STUDENT),
                user=TEACHER,
                data={'due': dates[i]},
                timeout=WAIT,
            ),
        )
        for i, resp in enumerate(results):
            assert ok(resp)['due'] == dates[i]
        listed = [deadline(server, name)['extensions'] for server in replicas]
        assert listed[0] == listed[1]
        (only,) = listed[0]
        assert only['student_id'] == STUDENT and only['due'] in dates
        mine = ok(
            replicas[1].get(('deadline', COURSE, name), user=STUDENT, timeout=WAIT)
        )
        assert (mine['due'], mine['extended']) == (only['due'], True)
    assert_no_server_errors(replicas)


def test_deadline_changes(replicas):
    new_course(replicas[0], COURSE, students=[STUDENT])
    for r in range(ROUNDS):
        name = f'deadline {r}'
        release(replicas[0], name)
        wanted = [
            (instant(i + 1), 'refuse' if i % 2 else 'accept', str(60 * i))
            for i in range(GROUP)
        ]
        results = race(
            GROUP,
            lambda i, name=name, wanted=wanted: replicas[i % 2].post(
                ('deadline', COURSE, name),
                user=TEACHER,
                data=dict(zip(('due', 'late_policy', 'grace_seconds'), wanted[i])),
                timeout=WAIT,
            ),
        )
        for resp in results:
            ok(resp)
        answers = [deadline(server, name) for server in replicas]
        assert answers[0] == answers[1]
        final = answers[0]
        left = (final['due'], final['late_policy'], str(final['grace_seconds']))
        assert left in wanted
    assert_no_server_errors(replicas)


@pytest.mark.parametrize(
    'moved, refusal',
    [
        (instant(20), 'Extension is earlier than the due date'),
        ('', 'Assignment has no due date'),
    ],
    ids=['due date moved past it', 'due date removed'],
)
def test_extension_against_a_deadline_change(replicas, moved, refusal):
    """The due date moves past the extension's date (or is removed) while
    the extension is given: either the extension came first (200, kept,
    overtaken or ignored) or it was checked against the new due date
    (400), never against a due date that was being replaced."""
    new_course(replicas[0], COURSE, students=[STUDENT])
    extension = instant(10)
    for r in range(ROUNDS * 2):
        name = f'mixed {r}'
        release(replicas[0], name, due=DUE)
        requests = [
            lambda name=name: replicas[0].post(
                ('extension', COURSE, name, STUDENT),
                user=TEACHER,
                data={'due': extension},
                timeout=WAIT,
            ),
            lambda name=name: replicas[1].post(
                ('deadline', COURSE, name),
                user=TEACHER,
                data={'due': moved},
                timeout=WAIT,
            ),
        ]
        given, changed = race(2, lambda i, requests=requests: requests[i]())
        new_due = moved or None
        assert ok(changed)['due'] == new_due
        final = deadline(replicas[0], name)
        assert final['due'] == new_due
        if given.status_code == 200:
            assert final['extensions'] == [
                {'student_id': STUDENT, 'due': extension, 'cutoff': None}
            ]
        else:
            err(given, 400, refusal)
            assert final['extensions'] == []
    assert_no_server_errors(replicas)


def test_extension_removals_and_grants(replicas):
    new_course(replicas[0], COURSE, students=[STUDENT])
    for r in range(ROUNDS):
        name = f'removed {r}'
        release(replicas[0], name, due=DUE)
        ok(
            replicas[0].post(
                ('extension', COURSE, name, STUDENT),
                user=TEACHER,
                data={'due': instant(1, r)},
                timeout=WAIT,
            )
        )
        # Even requests remove, odd ones grant a date of their own.
        dates = {i: instant(i + 2, r) for i in range(1, GROUP, 2)}

        def action(i, name=name, dates=dates):
            path = ('extension', COURSE, name, STUDENT)
            if i in dates:
                return replicas[i % 2].post(
                    path, user=TEACHER, data={'due': dates[i]}, timeout=WAIT
                )
            return replicas[i % 2].delete(path, user=TEACHER, timeout=WAIT)

        results = race(GROUP, action)
        removed = 0
        for i, resp in enumerate(results):
            if i in dates:
                assert ok(resp)['due'] == dates[i]
            elif resp.status_code == 200:
                removed += 1
            else:
                err(resp, 404, 'Extension not found')
        # Each removal that won removed the first extension or a grant's.
        assert 1 <= removed <= 1 + len(dates)
        listed = [deadline(server, name)['extensions'] for server in replicas]
        assert listed[0] == listed[1]
        assert len(listed[0]) <= 1
        if listed[0]:
            assert listed[0][0]['due'] in dates.values()
    assert_no_server_errors(replicas)
