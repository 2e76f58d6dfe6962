"""GET /history/<course_id>, and the entries the exchange actions record.

One small course is played through the real API (:func:`play`) and its
whole history compared with what each step must have written: every action
exactly once, with its user, assignment, student, submission timestamp and
the files and bytes it carried, and nothing for the reads that are not
actions (listings, ``list_only``, an instructor's own download, feedback
that is not there yet). The same played course then serves the filters,
the paging, and each role's view; refused requests, a deleted course and
the 400s of the query parameters have tests of their own. Every test runs
on SQLite and on PostgreSQL, on the shared server (no process of its own).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json

import pytest
from _api import err, ok, tree

pytestmark = [pytest.mark.both_databases]

ADMIN = 'root'
COURSE = 'History 101'
PS1, PS2 = 'ps 1', 'ps2'
# The fields of an entry that the expected lists name, in this order.
KEY = ('action', 'user', 'assignment_id', 'student_id')

RELEASED = {'ps1.ipynb': b'{"cells": []}', 'data/table.csv': b'a,b\n1,2\n'}
DRAFT = {'ps1.ipynb': b'draft'}
FINAL = {'ps1.ipynb': b'final answer', 'notes/readme.txt': b'n'}
ERIC_WORK = {'ps1.ipynb': b'eric'}
FEEDBACK = {'feedback/ps1.html': b'<p>good</p>'}


def person(name):
    return {'first_name': name, 'last_name': name, 'email': name + '@example.org'}


def moved(files: dict[str, bytes]) -> tuple[int, int]:
    """(files, bytes) of a tree, as the history must count them."""
    return len(files), sum(len(content) for content in files.values())


def history(server, user=ADMIN, course=COURSE, **params) -> dict:
    return ok(server.get(('history', course), user=user, params=params))


def whole(server, user=ADMIN, **params) -> list[dict]:
    """Every entry the caller sees, oldest first (one page: limit 1000)."""
    answer = history(server, user, order='oldest', limit='1000', **params)
    assert answer['next'] is None
    return answer['history']


def keys(entries) -> list[tuple]:
    return [tuple(entry[name] for name in KEY) for entry in entries]


@dataclasses.dataclass
class Played:
    """What :func:`play` did: the expected entries (:data:`KEY` tuples),
    the submissions' timestamps, and (files, bytes) per entry index."""

    expected: list[tuple]
    stamps: dict[str, str]
    carried: dict[int, tuple[int, int]]
    timestamps: dict[int, str]


def play(server) -> Played:
    """A small course, each step's expected entry beside it (none for the
    steps that are not actions)."""
    expected, carried, timestamps, stamps = [], {}, {}, {}

    def entry(action, user, assignment=None, student=None, files=None, stamp=None):
        if files is not None:
            carried[len(expected)] = moved(files)
        if stamp is not None:
            timestamps[len(expected)] = stamp
        expected.append((action, user, assignment, student))

    data = {'instructors': json.dumps(['kevin', 'ian'])}
    ok(server.post(('course', COURSE), user=ADMIN, data=data))
    entry('create_course', ADMIN)
    # The initial instructors, in one statement: in the request's order.
    entry('add_instructor', ADMIN, student='kevin')
    entry('add_instructor', ADMIN, student='ian')

    ok(server.post(('student', COURSE, 'lawrence'), user='kevin', data=person('l')))
    entry('add_student', 'kevin', student='lawrence')
    bulk = [{'username': name, **person(name)} for name in ('zoë', 'eric', 'kevin')]
    answer = ok(
        server.post(
            ('students', COURSE), user='kevin', data={'students': json.dumps(bulk)}
        )
    )
    assert [s['success'] for s in answer['status']] == [True, True, False]
    # Enrolled in name order; the instructor refused has no entry.
    entry('add_student', 'kevin', student='eric')
    entry('add_student', 'kevin', student='zoë')

    files = {'files': tree(RELEASED)}
    ok(server.post(('assignment', COURSE, PS1), user='kevin', data=files))
    entry('release', 'kevin', PS1, files=RELEASED)

    path = ('assignment', COURSE, PS1)
    ok(server.get(path, user='lawrence'))
    entry('fetch', 'lawrence', PS1, 'lawrence', files=RELEASED)
    # Looks, not fetches: a listing, an instructor's and an admin's download.
    ok(server.get(path, user='lawrence', params={'list_only': 'true'}))
    ok(server.get(path, user='kevin'))
    ok(server.get(path, user=ADMIN))
    ok(server.get(('assignments', COURSE), user='lawrence'))

    for name, work in (('draft', DRAFT), ('final', FINAL), ('eric', ERIC_WORK)):
        student = 'eric' if name == 'eric' else 'lawrence'
        stamp = ok(
            server.post(
                ('submission', COURSE, PS1), user=student, data={'files': tree(work)}
            )
        )['timestamp']
        stamps[name] = stamp
        entry('submit', student, PS1, student, files=work, stamp=stamp)

    # Listings are not collects.
    ok(server.get(('submissions', COURSE, PS1), user='kevin'))
    ok(server.get(('submissions', COURSE, PS1, 'lawrence'), user='kevin'))
    one = ('submission', COURSE, PS1, 'lawrence')
    ok(server.get(one, user='kevin', params={'list_only': 'true'}))
    # The latest by default, or the one named.
    ok(server.get(one, user='kevin'))
    entry('collect', 'kevin', PS1, 'lawrence', files=FINAL, stamp=stamps['final'])
    ok(server.get(one, user='kevin', params={'timestamp': stamps['draft']}))
    entry('collect', 'kevin', PS1, 'lawrence', files=DRAFT, stamp=stamps['draft'])

    feedback = ('feedback', COURSE, PS1, 'lawrence')
    data = {'timestamp': stamps['final'], 'files': tree(FEEDBACK)}
    ok(server.post(feedback, user='kevin', data=data))
    entry('release_feedback', 'kevin', PS1, 'lawrence', FEEDBACK, stamps['final'])
    at = {'timestamp': stamps['final']}
    ok(server.get(feedback, user='lawrence', params={**at, 'list_only': 'true'}))
    answer = ok(server.get(feedback, user='lawrence', params=at))
    assert len(answer['files']) == 1
    entry('fetch_feedback', 'lawrence', PS1, 'lawrence', FEEDBACK, stamps['final'])
    # The instructor's and the admin's look at it are no fetches.
    for reader in ('kevin', ADMIN):
        assert len(ok(server.get(feedback, user=reader, params=at))['files']) == 1
    # No feedback for eric yet: nothing was fetched.
    nothing = ok(
        server.get(
            ('feedback', COURSE, PS1, 'eric'),
            user='eric',
            params={'timestamp': stamps['eric']},
        )
    )
    assert nothing['files'] == []

    ok(server.post(('assignment', COURSE, PS2), user='kevin', data=files))
    entry('release', 'kevin', PS2, files=RELEASED)
    ok(server.delete(('assignment', COURSE, PS2), user='kevin'))
    entry('unrelease', 'kevin', PS2)
    ok(server.delete(('student', COURSE, 'zoë'), user='kevin'))
    entry('remove_student', 'kevin', student='zoë')
    ok(server.delete(('instructor', COURSE, 'ian'), user=ADMIN))
    entry('remove_instructor', ADMIN, student='ian')
    return Played(expected, stamps, carried, timestamps)


def instant(text: str) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(text)
    assert value.utcoffset() == datetime.timedelta(0), text
    return value


# 1. Every action, once, with the right fields; 6. a deleted course.


def test_every_action_recorded_once_then_course_deleted(shared_server):
    from ngshare.housekeeping import purge_for
    from ngshare.timestamps import utc_now

    server = shared_server
    played = play(server)
    entries = whole(server)
    assert keys(entries) == played.expected
    ids = [int(entry['id']) for entry in entries]
    assert ids == sorted(set(ids)), ids
    times = [instant(entry['time']) for entry in entries]
    assert times == sorted(times)
    for index, entry in enumerate(entries):
        assert set(entry) == {*KEY, 'id', 'timestamp', 'time', 'files', 'bytes'}
        files, size = played.carried.get(index, (None, None))
        assert (entry['files'], entry['bytes']) == (files, size), entry
        assert entry['timestamp'] == played.timestamps.get(index), entry
    # The default answer: newest first, the same entries.
    assert history(server)['history'] == entries[::-1]

    ok(server.delete(('course', COURSE), user=ADMIN))
    for user in ('kevin', 'lawrence'):
        err(server.get(('history', COURSE), user=user), 404, 'Course not found')
    after = whole(server)
    assert after[:-1] == entries
    assert keys(after[-1:]) == [('delete_course', ADMIN, None, None)]

    # The service's housekeeping purges it (as if the retention were over):
    # what the course did goes, its deletion and the purges remain.
    runtime = server.runtime
    later = utc_now() + datetime.timedelta(days=runtime.config.deleted_retention_days)
    purge = runtime.writes.submit(purge_for, runtime, later + datetime.timedelta(1))
    purge.result(timeout=60)
    # One purge per deleted item: the unreleased ps2, and the course.
    remaining = whole(server)
    assert remaining[0] == after[-1]
    assert len(remaining) == 3
    assert set(keys(remaining[1:])) == {
        ('purge', 'ngshare', None, None),
        ('purge', 'ngshare', PS2, None),
    }


# 2. A refused or failed request records nothing.


def at(kind: str, *names: str) -> tuple[str, ...]:
    """The path of ``kind`` in the course: ``at('student', 'eric')``."""
    return (kind, COURSE, *names)


def refusals(stamp: str) -> dict[tuple, list[tuple]]:
    """{(status, message): [(method, path, caller, fields), ...]} of requests
    refused after :func:`test_refused_requests_record_nothing`'s set-up."""
    wrong = stamp.replace(stamp[:4], str(int(stamp[:4]) - 1), 1)
    released = {'files': tree(RELEASED)}
    given = {'timestamp': stamp, 'files': tree(FEEDBACK)}
    malformed = json.dumps([{'username': 'eric'}, {'username': 'x'}])
    one, feedback = at('submission', PS1, 'lawrence'), at('feedback', PS1, 'lawrence')
    return {
        (409, 'Course already exists'): [('POST', ('course', COURSE), ADMIN, {})],
        (404, 'Course not found'): [('DELETE', ('course', 'Other'), ADMIN, {})],
        (403, 'Permission denied'): [
            ('POST', ('course', 'Other'), 'kevin', {}),
            ('DELETE', ('course', COURSE), 'kevin', {}),
            ('POST', at('student', 'eric'), 'lawrence', person('e')),
            ('POST', at('instructor', 'ian'), 'kevin', person('i')),
            ('POST', at('assignment', 'ps9'), 'lawrence', released),
            ('DELETE', at('assignment', PS1), 'lawrence', {}),
            ('GET', at('assignment', PS1), 'eric', {}),
            ('POST', at('submission', PS1), 'eric', released),
            ('GET', one, 'lawrence', {}),
            ('POST', feedback, 'lawrence', given),
            ('GET', feedback, 'eric', {'timestamp': stamp}),
        ],
        (409, 'Cannot add instructor as student'): [
            ('POST', at('student', 'kevin'), 'kevin', person('k')),
        ],
        (400, 'Please supply last name'): [
            ('POST', at('student', 'eric'), 'kevin', {'first_name': 'e'}),
        ],
        (400, 'Incorrect request format'): [
            ('POST', ('students', COURSE), 'kevin', {'students': malformed}),
        ],
        (400, 'Students cannot be JSON decoded'): [
            ('POST', ('students', COURSE), 'kevin', {'students': '[{'}),
        ],
        (404, 'Student not found'): [
            ('DELETE', at('student', 'nobody'), 'kevin', {}),
            ('GET', at('submission', PS1, 'eric'), 'kevin', {}),
        ],
        (404, 'Instructor not found'): [
            ('DELETE', at('instructor', 'nobody'), ADMIN, {}),
        ],
        (409, 'Assignment already exists'): [
            ('POST', at('assignment', PS1), 'kevin', released),
        ],
        (400, 'Files cannot be JSON decoded'): [
            ('POST', at('assignment', 'ps9'), 'kevin', {'files': '[{'}),
            ('POST', at('submission', PS1), 'lawrence', {'files': 'x'}),
        ],
        (404, 'Assignment not found'): [
            ('DELETE', at('assignment', 'ps9'), 'kevin', {}),
            ('GET', at('assignment', 'ps9'), 'lawrence', {}),
            ('POST', at('submission', 'ps9'), 'lawrence', released),
        ],
        (404, 'Submission not found'): [
            ('GET', one, 'kevin', {'timestamp': wrong}),
            ('POST', feedback, 'kevin', {**given, 'timestamp': wrong}),
            ('GET', feedback, 'lawrence', {'timestamp': wrong}),
        ],
    }


def test_refused_requests_record_nothing(shared_server):
    server = shared_server
    data = {'instructors': json.dumps(['kevin'])}
    ok(server.post(('course', COURSE), user=ADMIN, data=data))
    ok(server.post(('student', COURSE, 'lawrence'), user='kevin', data=person('l')))
    released = {'files': tree(RELEASED)}
    ok(server.post(('assignment', COURSE, PS1), user='kevin', data=released))
    work = {'files': tree(DRAFT)}
    answer = ok(server.post(('submission', COURSE, PS1), user='lawrence', data=work))
    stamp = answer['timestamp']
    feedback = {'timestamp': stamp, 'files': tree(FEEDBACK)}
    ok(server.post(('feedback', COURSE, PS1, 'lawrence'), user='kevin', data=feedback))
    before = whole(server)
    assert len(before) == 6
    for (status, message), requests in refusals(stamp).items():
        for method, path, user, fields in requests:
            where = 'params' if method == 'GET' else 'data'
            answer = server.request(method, path, user=user, **{where: fields})
            err(answer, status, message)
            assert whole(server) == before, (method, path, user)


def test_concurrent_releases_record_the_winner_once(shared_server):
    """Four releases of one assignment at once: one commits (and has its
    entry), the others lose on the unique name and leave none."""
    server = shared_server
    data = {'instructors': json.dumps(['kevin'])}
    ok(server.post(('course', COURSE), user=ADMIN, data=data))
    files = {'files': tree(RELEASED)}

    def release(_):
        return server.post(('assignment', COURSE, PS1), user='kevin', data=files)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(release, range(4)))
    assert sorted(answer.status_code for answer in answers) == [200, 409, 409, 409]
    for answer in answers:
        if answer.status_code == 409:
            err(answer, 409, 'Assignment already exists')
    assert [entry['action'] for entry in whole(server, action='release')] == ['release']


def test_roster_updates_are_not_additions(shared_server):
    """Re-posting an enrolled student (or an instructor's own entry)
    updates their details: nobody was added, so no entry. A student made
    an instructor leaves the students: both changes are recorded."""
    server = shared_server
    data = {'instructors': json.dumps(['kevin'])}
    ok(server.post(('course', COURSE), user=ADMIN, data=data))
    ok(server.post(('student', COURSE, 'lawrence'), user='kevin', data=person('l')))
    before = whole(server)
    ok(server.post(('student', COURSE, 'lawrence'), user='kevin', data=person('L')))
    ok(server.post(('instructor', COURSE, 'kevin'), user='kevin', data=person('K')))
    assert whole(server) == before
    bulk = [{'username': name, **person(name)} for name in ('lawrence', 'nina')]
    ok(
        server.post(
            ('students', COURSE), user='kevin', data={'students': json.dumps(bulk)}
        )
    )
    assert keys(whole(server)[len(before) :]) == [
        ('add_student', 'kevin', None, 'nina')
    ]
    promoted = len(whole(server))
    ok(server.post(('instructor', COURSE, 'nina'), user=ADMIN, data=person('N')))
    ok(server.post(('instructor', COURSE, 'nina'), user=ADMIN, data=person('N')))
    assert keys(whole(server)[promoted:]) == [
        ('remove_student', ADMIN, None, 'nina'),
        ('add_instructor', ADMIN, None, 'nina'),
    ]


# 3. Filters; 4. order and paging; 5. each role's view.


def test_filters_paging_and_views(shared_server):
    server = shared_server
    played = play(server)
    entries = whole(server)
    assert keys(entries) == played.expected

    def only(**wanted):
        return [
            entry
            for entry in entries
            if all(entry[name] == value for name, value in wanted.items())
        ]

    for params in (
        {'assignment_id': PS1},
        {'assignment_id': PS2},
        {'student_id': 'lawrence'},
        {'student_id': 'ian'},
        {'action': 'submit'},
        {'action': 'restore'},
        {'assignment_id': PS1, 'student_id': 'lawrence', 'action': 'collect'},
        {'assignment_id': 'nothing'},
    ):
        assert whole(server, **params) == only(**params), params
    assert len(only(assignment_id=PS1, action='submit')) == 3
    # Unfilled fields of a form are no filters.
    empty = dict.fromkeys(('assignment_id', 'student_id', 'action', 'since', 'until'))
    assert whole(server, **{name: '' for name in empty}) == entries
    assert whole(server, assignment_id='nothing') == []

    # since is inclusive, until exclusive; any offset names the same instant.
    times = [instant(entry['time']) for entry in entries]
    middle = len(entries) // 2
    for boundary in (times[1], times[middle], times[-1]):
        text = boundary.isoformat()
        shifted = boundary.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
        later = [e for e, t in zip(entries, times) if t >= boundary]
        earlier = [e for e, t in zip(entries, times) if t < boundary]
        assert later and earlier
        assert whole(server, since=text) == later
        assert whole(server, since=shifted.isoformat()) == later
        assert whole(server, until=text) == earlier
    window = {'since': times[1].isoformat(), 'until': times[-1].isoformat()}
    inside = [e for e, t in zip(entries, times) if times[1] <= t < times[-1]]
    assert whole(server, **window) == inside
    assert whole(server, **window, action='submit', student_id='lawrence') == [
        e for e in inside if e['action'] == 'submit' and e['student_id'] == 'lawrence'
    ]
    assert whole(server, since=times[-1].isoformat(), until=times[1].isoformat()) == []

    # Pages, followed to the end, are the whole history in either order.
    for order, full in (('oldest', entries), ('newest', entries[::-1])):
        for limit, student in ((1, 'eric'), (5, None), (2, 'lawrence')):
            params = {} if student is None else {'student_id': student}
            wanted = [e for e in full if student in (None, e['student_id'])]
            pages = follow(server, ADMIN, order=order, limit=str(limit), **params)
            assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
            assert [e for page in pages for e in page] == wanted, (order, limit)
        # A page that holds exactly the rest has no next.
        answer = history(server, order=order, limit=str(len(full)))
        assert (answer['history'], answer['next']) == (full, None)
        answer = history(server, order=order, limit=str(len(full) - 1))
        assert answer['history'] == full[:-1]
        assert answer['next'] == full[-2]['id']

    # 5. A student sees what concerns them; an instructor and an admin all.
    assert whole(server, 'kevin') == entries
    lawrence = only(student_id='lawrence')
    assert {entry['action'] for entry in lawrence} == {
        'add_student',
        'fetch',
        'submit',
        'collect',
        'release_feedback',
        'fetch_feedback',
    }
    assert whole(server, 'lawrence') == lawrence
    assert whole(server, 'lawrence', student_id='lawrence') == lawrence
    assert whole(server, 'lawrence', student_id='eric') == []
    assert whole(server, 'lawrence', action='release') == []
    assert whole(server, 'lawrence', action='submit') == only(
        student_id='lawrence', action='submit'
    )
    assert keys(whole(server, 'eric')) == [
        ('add_student', 'kevin', None, 'eric'),
        ('submit', 'eric', PS1, 'eric'),
    ]
    pages = follow(server, 'lawrence', order='newest', limit='3')
    assert [e for page in pages for e in page] == lawrence[::-1]
    # Removed members and strangers are refused, whatever they ask;
    # a course that does not exist is a 404 first.
    for user in ('zoë', 'ian', 'stranger'):
        refusal = server.get(('history', COURSE), user=user, params={'limit': '0'})
        err(refusal, 403, 'Permission denied')
    for user in ('kevin', ADMIN):
        missing = server.get(('history', 'No course'), user=user, params={'limit': '0'})
        err(missing, 404, 'Course not found')

    # The default page is 100 entries; limit=1000 is accepted.
    bulk = [{'username': f's{n:03}', **person(f's{n:03}')} for n in range(150)]
    ok(
        server.post(
            ('students', COURSE), user='kevin', data={'students': json.dumps(bulk)}
        )
    )
    answer = history(server)
    assert len(answer['history']) == 100
    assert answer['history'][0]['student_id'] == 's149'
    assert answer['next'] == answer['history'][-1]['id']
    rest = history(server, cursor=answer['next'], limit='1000')
    assert rest['next'] is None
    assert answer['history'] + rest['history'] == whole(server)[::-1]


def follow(server, user, **params) -> list[list[dict]]:
    """Every page, by their ``next`` cursors (bounded); the last has none."""
    pages, cursor = [], None
    for _ in range(200):
        extra = {} if cursor is None else {'cursor': cursor}
        answer = history(server, user, **params, **extra)
        pages.append(answer['history'])
        cursor = answer['next']
        if cursor is None:
            return pages
        assert cursor == answer['history'][-1]['id']
    raise AssertionError('the cursors never ended')


# 7. The 400s of the history's own parameters.


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'action': 'download'}, 'Unknown action'),
        ({'since': 'yesterday'}, 'Invalid since'),
        ({'since': '2026-01-01T00:00:00'}, 'Invalid since'),
        ({'until': '2026-13-01T00:00:00Z'}, 'Invalid until'),
        ({'until': '99999-01-01T00:00:00Z'}, 'Invalid until'),
        ({'order': 'sideways'}, 'Invalid order'),
        ({'limit': '0'}, 'Invalid limit'),
        ({'limit': '1001'}, 'Invalid limit'),
        ({'limit': '-5'}, 'Invalid limit'),
        ({'limit': '2.5'}, 'Invalid limit'),
        ({'limit': '١٠'}, 'Invalid limit'),
        ({'cursor': 'abc'}, 'Invalid cursor'),
        ({'cursor': '-1'}, 'Invalid cursor'),
        ({'cursor': '9' * 40}, 'Invalid cursor'),
        # The first refused parameter, in the documented order, decides.
        ({'limit': '0', 'action': 'x', 'since': 'x'}, 'Unknown action'),
        ({'limit': '0', 'until': 'x', 'order': 'x'}, 'Invalid until'),
    ],
)
def test_invalid_parameters(shared_server, params, message):
    server = shared_server
    data = {'instructors': json.dumps(['kevin'])}
    ok(server.post(('course', COURSE), user=ADMIN, data=data))
    for user in ('kevin', ADMIN):
        err(server.get(('history', COURSE), user=user, params=params), 400, message)
