"""``ngshare-course-management history`` against a real ngshare.

A small course is played through the API (two releases, two fetches, a
submission, its collect, feedback released and fetched), then the command
runs as the instructor, a student and an outsider, in this process as the
other subcommand tests run it. What it prints is compared with what the API
answers the same person: the CSV (read back with the csv module) row for
row, the table column for column in the local time of ``TZ``. A roster of a
thousand students makes the history longer than the command's page, so the
command must follow the cursor to list it all; printing into a pipe whose
reader has gone (``| head``) stops quietly. A web server that repeats its
cursor shows that the paging is bounded.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import http.server
import io
import json
import os
import threading
import time

import pytest
from _api import tree
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import (
    ASSIGNMENT,
    COURSE,
    Site,
    run_course_management,
)
from _servers import free_port

from ngshare.exchange.course_history import ACTIONS, CSV_FIELDS, PAGE

pytestmark = pytest.mark.timeout(300)

ZONE = 'IST-05:30'
OFFSET = datetime.timedelta(hours=5, minutes=30)
SUBMITTED = b'my answer'
FEEDBACK = b'<p>well done</p>'
# More students than one page of the command, added in one request.
MANY = [f'p{n:04d}' for n in range(PAGE + 1)]


@pytest.fixture
def local_zone(monkeypatch):
    monkeypatch.setenv('TZ', ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def history(person, *argv: str, **kwargs):
    return run_course_management(person, 'history', *argv, env={'TZ': ZONE}, **kwargs)


def ok(done) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == '', done.stderr
    return done.stdout


def failed(done, needle: str, status: int = 1) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == status, output
    assert 'Traceback' not in output, output
    assert needle in done.stderr, f'{needle!r} not in:\n{output}'


def api_history(site, as_user: str, **filters: str) -> list[dict]:
    """Every entry the API answers ``as_user``, oldest first (all pages)."""
    entries, cursor = [], None
    for _ in range(20):
        params = {**filters, 'order': 'oldest', 'limit': '1000'}
        if cursor is not None:
            params['cursor'] = cursor
        body = site.api('GET', 'history', COURSE, as_user=as_user, params=params)
        assert body['success'], body
        entries += body['history']
        cursor = body['next']
        if cursor is None:
            return entries
    raise AssertionError('the API kept answering a next page')


def rows(entries: list[dict]) -> list[dict]:
    """Entries as the CSV must hold them: every field a text, '' for null."""
    return [
        {
            field: '' if entry[field] is None else str(entry[field])
            for field in CSV_FIELDS
        }
        for entry in entries
    ]


def read_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text, newline=''))
    found = list(reader)
    assert tuple(reader.fieldnames) == CSV_FIELDS
    return found


def play(site) -> str:
    """The course's life through the API; the submission's timestamp."""

    def call(method, *segments, as_user, **kwargs):
        body = site.api(method, *segments, as_user=as_user, **kwargs)
        assert body['success'], body
        return body

    for assignment in (ASSIGNMENT, 'ps2'):
        files = tree({f'{assignment}.ipynb': b'{}'})
        call(
            'POST',
            'assignment',
            COURSE,
            assignment,
            as_user='kevin',
            data={'files': files},
        )
    for student in ('lawrence', 'eric'):
        call('GET', 'assignment', COURSE, ASSIGNMENT, as_user=student)
    files = tree({f'{ASSIGNMENT}.ipynb': SUBMITTED})
    body = call(
        'POST',
        'submission',
        COURSE,
        ASSIGNMENT,
        as_user='lawrence',
        data={'files': files},
    )
    stamp = body['timestamp']
    call('GET', 'submission', COURSE, ASSIGNMENT, 'lawrence', as_user='kevin')
    call(
        'POST',
        'feedback',
        COURSE,
        ASSIGNMENT,
        'lawrence',
        as_user='kevin',
        data={'timestamp': stamp, 'files': tree({f'{ASSIGNMENT}.html': FEEDBACK})},
    )
    call(
        'GET',
        'feedback',
        COURSE,
        ASSIGNMENT,
        'lawrence',
        as_user='lawrence',
        params={'timestamp': stamp},
    )
    return stamp


def check_table(text: str, entries: list[dict]) -> None:
    """A heading row, then one row per entry, each cell under its heading;
    times in the local time of ZONE (IST, UTC+05:30), to the second."""
    lines = text.splitlines()
    assert len(lines) == 1 + len(entries), text
    heading = lines[0]
    assert heading.split() == [
        'TIME',
        'ACTION',
        'USER',
        'ASSIGNMENT',
        'STUDENT',
        'TIMESTAMP',
        'FILES',
        'BYTES',
    ]
    for line, entry in zip(lines[1:], entries):
        utc = datetime.datetime.fromisoformat(entry['time']).replace(tzinfo=None)
        local = f'{utc + OFFSET:%Y-%m-%d %H:%M:%S} IST'
        left = {
            'TIME': local,
            'ACTION': entry['action'],
            'USER': entry['user'],
            'ASSIGNMENT': entry['assignment_id'] or '-',
            'STUDENT': entry['student_id'] or '-',
            'TIMESTAMP': entry['timestamp'] or '-',
        }
        for name, cell in left.items():
            start = heading.index(name)
            assert line[start:].startswith(f'{cell}  ') or line[start:] == cell, (
                name,
                line,
            )
        for name, field in (('FILES', 'files'), ('BYTES', 'bytes')):
            end = heading.index(name) + len(name)
            value = '-' if entry[field] is None else str(entry[field])
            assert line[:end].endswith(f' {value}'), (name, line)


def test_history_of_a_course(exchange_site, local_zone):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    stamp = play(site)
    everything = api_history(site, 'kevin')

    # The instructor: every entry, oldest first, the API's fields.
    listed = read_csv(ok(history(kevin, COURSE, '--csv')))
    assert listed == rows(everything)
    assert [row['action'] for row in listed] == [
        'create_course',
        'add_instructor',
        'add_student',
        'add_student',
        'release',
        'release',
        'fetch',
        'fetch',
        'submit',
        'collect',
        'release_feedback',
        'fetch_feedback',
    ]
    submit = next(row for row in listed if row['action'] == 'submit')
    assert (submit['user'], submit['student_id'], submit['timestamp']) == (
        'lawrence',
        'lawrence',
        stamp,
    )
    assert (submit['files'], submit['bytes']) == ('1', str(len(SUBMITTED)))
    check_table(ok(history(kevin, COURSE)), everything)

    # The filters narrow it, as the API does.
    only_ps1 = read_csv(ok(history(kevin, COURSE, '--assignment', ASSIGNMENT, '--csv')))
    assert only_ps1 == rows(api_history(site, 'kevin', assignment_id=ASSIGNMENT))
    assert len(only_ps1) == 7
    assert {row['assignment_id'] for row in only_ps1} == {ASSIGNMENT}
    eric = read_csv(ok(history(kevin, COURSE, '--student', 'eric', '--csv')))
    assert [(row['action'], row['student_id']) for row in eric] == [
        ('add_student', 'eric'),
        ('fetch', 'eric'),
    ]
    feedback = read_csv(
        ok(
            history(
                kevin,
                COURSE,
                '--student',
                'lawrence',
                '--action',
                'fetch_feedback',
                '--csv',
            )
        )
    )
    assert [(row['user'], row['timestamp'], row['bytes']) for row in feedback] == [
        ('lawrence', stamp, str(len(FEEDBACK)))
    ]
    # --since in local time without an offset: from the submission on.
    since = datetime.datetime.fromisoformat(submit['time']).replace(tzinfo=None)
    local = f'{since + OFFSET:%Y-%m-%dT%H:%M:%S.%f}'
    later = read_csv(ok(history(kevin, COURSE, '--since', local, '--csv')))
    assert later == rows(api_history(site, 'kevin', since=submit['time']))
    earlier = read_csv(ok(history(kevin, COURSE, '--until', local, '--csv')))
    assert earlier == rows(api_history(site, 'kevin', until=submit['time']))
    assert submit in later and submit not in earlier
    assert sorted(earlier + later, key=lambda row: int(row['id'])) == listed
    last = read_csv(ok(history(kevin, COURSE, '--last', '3', '--csv')))
    assert last == listed[-3:]

    # A student: only their own entries, whatever they ask.
    own = read_csv(ok(history(lawrence, COURSE, '--csv')))
    assert own == rows(api_history(site, 'lawrence'))
    assert own == [row for row in listed if row['student_id'] == 'lawrence']
    assert [row['action'] for row in own] == [
        'add_student',
        'fetch',
        'submit',
        'collect',
        'release_feedback',
        'fetch_feedback',
    ]
    assert read_csv(ok(history(lawrence, COURSE, '--student', 'eric', '--csv'))) == []
    assert ok(history(lawrence, COURSE, '--student', 'eric')) == (
        f'No entries in the history of {COURSE}\n'
    )

    # Refusals: the server's message, as the other subcommands print it.
    failed(
        history(site['mallory'], COURSE),
        f'history ({COURSE}) failed: Permission denied',
    )
    failed(history(kevin, 'NOPE'), 'history (NOPE) failed: Course not found')
    failed(
        history(kevin, COURSE, '--action', 'cheat'),
        f'history ({COURSE}) failed: Unknown action',
    )
    failed(history(kevin, COURSE, '--since', 'last week'), 'cannot read the date')
    failed(history(kevin, COURSE, '--last', '0'), 'positive whole number', status=2)

    # Longer than one page of the command: all of it, each entry once.
    body = site.api(
        'POST',
        'students',
        COURSE,
        as_user='kevin',
        data={
            'students': json.dumps(
                [
                    {'username': n, 'first_name': '', 'last_name': '', 'email': ''}
                    for n in MANY
                ]
            )
        },
    )
    assert body['success'] and all(s['success'] for s in body['status']), body
    everything = api_history(site, 'kevin')
    assert len(everything) == len(listed) + len(MANY) > PAGE
    listed = read_csv(ok(history(kevin, COURSE, '--csv')))
    assert listed == rows(everything)
    ids = [int(row['id']) for row in listed]
    assert ids == sorted(set(ids))
    assert read_csv(
        ok(history(kevin, COURSE, '--last', str(PAGE + 5), '--csv'))
    ) == rows(everything[-(PAGE + 5) :])

    # Its reader gone (``| head``): it stops quietly, with success.
    status, err = into_closed_pipe(kevin, COURSE, '--csv')
    assert (status, err) == (0, '')


def into_closed_pipe(person, *argv: str) -> tuple[int, str]:
    """``history argv`` in this process, its standard output a pipe whose
    reader has gone; its status and standard error. The pipe's buffered
    rest must flush quietly afterwards, as the interpreter's exit does."""
    from ngshare.exchange.course_management import main

    read_end, write_end = os.pipe()
    os.close(read_end)
    err = io.StringIO()
    with open(write_end, 'w', encoding='utf-8') as out:
        into, messages = (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        )
        with person.acting(), into, messages:
            status = main(['--url', person.site.url, 'history', *argv])
        out.flush()
    return status, err.getvalue()


class _Repeating(http.server.BaseHTTPRequestHandler):
    """A server that is no ngshare: every page says there is a next one,
    always the same."""

    requests = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests += 1
        page = {
            'success': True,
            'history': [{'id': '7', 'action': 'fetch'}],
            'next': '7',
        }
        body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_repeating_cursor_stops(tmp_path):
    server = http.server.HTTPServer(('127.0.0.1', free_port()), _Repeating)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f'http://127.0.0.1:{server.server_port}/services/ngshare'
    try:
        done = history(Site(None, tmp_path, url)['kevin'], COURSE)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    failed(
        done,
        f'ngshare answered the same page of the history of {COURSE} twice'
        ' (cursor 7); stopped after 2 entries',
    )
    assert _Repeating.requests == 2
    assert done.stdout == ''


def test_actions_are_the_servers():
    """The help text names the actions the server records, all of them."""
    from ngshare.database.models import HISTORY_ACTIONS

    assert ACTIONS == HISTORY_ACTIONS
