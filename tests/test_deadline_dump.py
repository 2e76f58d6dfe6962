"""The debug dump shows deadlines (issue 16): the assignments' due date,
late policy and grace period, each submission's due date, and the
extensions table, in the JSON dump and on the human-readable page alike.

A real stand-alone server, on SQLite and on PostgreSQL; the deadline is set
through the API (``POST /deadline``, ``POST /extension``) and the
submissions made after it, so the dump shows what the service stored.

The dump shows the history of those actions too (issue 17): its own table,
every entry with its fields, in the JSON dump and on the page; setting a
deadline or an extension is no action of the history.
"""

from __future__ import annotations

import datetime
import html
import json
import re

import pytest
from _api import ok, tree

from ngshare.timestamps import format_timestamp, utc_now

pytestmark = pytest.mark.both_databases

DUMP = 'initialize-Data6ase'
COURSE = 'Due 101'
ASSIGNMENT = 'ps1'
INSTRUCTOR = 'kevin'
STUDENTS = ('eric', 'lawrence')


def in_a_day(hours: int = 0) -> datetime.datetime:
    """A whole second a day (and ``hours``) from now, naive UTC."""
    later = utc_now() + datetime.timedelta(days=1, hours=hours)
    return later.replace(microsecond=0)


def iso(instant: datetime.datetime) -> str:
    return instant.isoformat() + '+00:00'


def set_up(server) -> dict:
    """A course whose ps1 has a due date, the refusing policy with grace,
    an extension for eric, and a submission of each student."""
    ok(
        server.post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([INSTRUCTOR])},
        )
    )
    for student in STUDENTS:
        ok(
            server.post(
                ('student', COURSE, student),
                user=INSTRUCTOR,
                data={'first_name': student, 'last_name': 'L', 'email': ''},
            )
        )
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user=INSTRUCTOR,
            data={'files': tree({'ps1.ipynb': b'question'})},
        )
    )
    due, extended = in_a_day(), in_a_day(hours=5)
    ok(
        server.post(
            ('deadline', COURSE, ASSIGNMENT),
            user=INSTRUCTOR,
            data={'due': iso(due), 'late_policy': 'refuse', 'grace_seconds': '900'},
        )
    )
    ok(
        server.post(
            ('extension', COURSE, ASSIGNMENT, 'eric'),
            user=INSTRUCTOR,
            data={'due': iso(extended)},
        )
    )
    for student in STUDENTS:
        ok(
            server.post(
                ('submission', COURSE, ASSIGNMENT),
                user=student,
                data={'files': tree({'ps1.ipynb': student.encode()})},
            )
        )
    return {'due': due, 'extended': extended}


def dump(server, **params):
    return server.request('GET', DUMP, user='root', params={'action': 'dump', **params})


def test_json_dump_shows_deadlines(vngshare_server):
    when = set_up(vngshare_server)
    tables = ok(dump(vngshare_server))
    [assignment] = tables['assignments']
    assert assignment['due'] == format_timestamp(when['due'])
    assert (assignment['late_policy'], assignment['grace_seconds']) == ('refuse', 900)
    due_of = {row['student_id']: row['due'] for row in tables['submissions']}
    assert due_of == {
        'eric': format_timestamp(when['extended']),
        'lawrence': format_timestamp(when['due']),
    }
    [extension] = tables['extensions']
    assert extension == {
        '_id': extension['_id'],
        'assignment_id': assignment['_id'],
        'student_id': 'eric',
        'due': format_timestamp(when['extended']),
    }
    history = tables['history']
    assert [
        (row['action'], row['user'], row['assignment'], row['student'])
        for row in history
    ] == EXPECTED_HISTORY
    stamps = {row['student_id']: row['timestamp'] for row in tables['submissions']}
    for row in history:
        assert row['course'] == COURSE
        assert row['deleted_item'] is None  # the course is not deleted
        assert set(row) == HISTORY_COLUMNS
        assert row['timestamp'] == (
            stamps[row['student']] if row['action'] == 'submit' else None
        )
        if row['action'] in ('release', 'submit'):
            assert row['files'] == 1 and row['bytes'] > 0


# What set_up did, in order (the deadline and the extension not included).
EXPECTED_HISTORY = [
    ('create_course', 'root', None, None),
    ('add_instructor', 'root', None, INSTRUCTOR),
    *[('add_student', INSTRUCTOR, None, student) for student in STUDENTS],
    ('release', INSTRUCTOR, ASSIGNMENT, None),
    *[('submit', student, ASSIGNMENT, student) for student in STUDENTS],
]
HISTORY_COLUMNS = {
    '_id',
    'time',
    'action',
    'user',
    'course',
    'assignment',
    'student',
    'timestamp',
    'files',
    'bytes',
    'deleted_item',
}


def cells(page: str, column: str) -> list[str]:
    """The texts of the page's cells of ``column``, in page order."""
    found = re.findall(
        rf'<td[^>]*data-column="{re.escape(column)}"[^>]*>(.*?)</td>', page
    )
    return [html.unescape(text) for text in found]


def section(page: str, table: str) -> str:
    start = page.index(f'<section id="table-{table}">')
    return page[start : page.index('</section>', start)]


def test_readable_dump_shows_deadlines(vngshare_server):
    when = set_up(vngshare_server)
    resp = dump(vngshare_server, **{'human-readable': 'true'})
    assert resp.status_code == 200, resp.text[:500]
    page = resp.text
    assert '<a href="#table-extensions">extensions' in page
    assignments = section(page, 'assignments')
    assert cells(assignments, 'due') == [format_timestamp(when['due'])]
    assert cells(assignments, 'late_policy') == ['refuse']
    assert cells(assignments, 'grace_seconds') == ['900']
    assert sorted(cells(section(page, 'submissions'), 'due')) == sorted(
        format_timestamp(when[key]) for key in ('due', 'extended')
    )
    extensions = section(page, 'extensions')
    assert '(1 row)' in extensions
    assert cells(extensions, 'student_id') == ['eric']
    assert cells(extensions, 'due') == [format_timestamp(when['extended'])]
    assert '<a href="#table-history">history' in page
    history = section(page, 'history')
    assert f'({len(EXPECTED_HISTORY)} rows)' in history
    assert cells(history, 'action') == [entry[0] for entry in EXPECTED_HISTORY]
    assert cells(history, 'user') == [entry[1] for entry in EXPECTED_HISTORY]


def test_readable_dump_of_no_deadline_shows_the_defaults(vngshare_server):
    ok(
        vngshare_server.post(
            ('course', COURSE), user='root', data={'instructors': '[]'}
        )
    )
    ok(
        vngshare_server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user='root',
            data={'files': tree({'ps1.ipynb': b'question'})},
        )
    )
    page = dump(vngshare_server, **{'human-readable': 'true'}).text
    assignments = section(page, 'assignments')
    assert '<td class="null" data-column="due">null</td>' in assignments
    assert cells(assignments, 'late_policy') == ['accept']
    assert cells(assignments, 'grace_seconds') == ['0']
    assert 'No rows.' in section(page, 'extensions')


def test_clear_removes_deadlines_with_everything_else(vngshare_server):
    """The debug ``clear`` deletes courses and users: the extensions (which
    refer to both) go with their assignments instead of blocking it."""
    set_up(vngshare_server)
    ok(vngshare_server.request('GET', DUMP, user='root', params={'action': 'clear'}))
    tables = ok(dump(vngshare_server))
    assert tables['extensions'] == tables['submissions'] == []
    assert tables['assignments'] == tables['users'] == []
