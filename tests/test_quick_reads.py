"""The lists every student polls are answered on the event loop on SQLite.

A student's list (assignments, their submissions), an instructor's collect
and a student's feedback are answered by one statement most of the time
(``ngshare/operations/shortcuts.py``). On SQLite that statement runs on the
event loop itself (``runner.run_quick``): cheaper than the trip to the
worker pool and back. It is bounded (at most ``QUICK_ROWS`` rows); a longer
list, an empty one, a refusal, and PostgreSQL (a network round trip away)
run in the worker pool as before, with the same answer. A full download
(a collect, a student's feedback) writes its history entry (issue 17), so it
is a write transaction and never read on the loop: only its ``list_only``
form is a quick read.

Which thread sent each statement is recorded on the in-process server of
:mod:`_counting_server`, whose event loop is the test's (the main thread).
"""

from __future__ import annotations

import json
import threading

import pytest
from _counting_server import SMALL, assignments_of, populate, students_of
from sqlalchemy import event

from ngshare.operations import runner


class StatementThreads:
    """The thread of each statement an engine sends, but BEGIN."""

    def __init__(self, engine):
        self.engine = engine
        self.seen: list[bool] = []
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.strip().upper().startswith('BEGIN'):
            self.seen.append(threading.current_thread() is threading.main_thread())
            self.statements.append(statement.strip())

    def __enter__(self):
        event.listen(self.engine, 'before_cursor_execute', self)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, 'before_cursor_execute', self)


def _reads(stamps) -> dict[str, tuple[tuple, str, dict, str]]:
    """Name -> (path, caller, query, answer key) of every quick read."""
    course = SMALL['course']
    teacher = SMALL['instructors'][0]
    assignment = assignments_of(SMALL)[0]
    student = students_of(SMALL)[1]
    stamp = stamps[student][0]
    student_path = (course, assignment, student)
    listing = {'list_only': 'true'}
    return {
        'assignments': (('assignments', course), student, {}, 'assignments'),
        'own submissions': (('submissions', *student_path), student, {}, 'submissions'),
        'collect': (('submission', *student_path), teacher, listing, 'files'),
        'feedback': (
            ('feedback', *student_path),
            student,
            {'timestamp': stamp, **listing},
            'files',
        ),
    }


def _downloads(stamps) -> dict[str, tuple[tuple, str, dict]]:
    """The full forms of the quick downloads: actions of the history."""
    return {
        name: (path, user, {k: v for k, v in params.items() if k != 'list_only'})
        for name, (path, user, params, _key) in _reads(stamps).items()
        if 'list_only' in params
    }


async def test_small_reads_run_on_the_event_loop_on_sqlite_only(counting_server):
    stamps = await populate(counting_server, SMALL)
    sqlite = counting_server.runtime.engine.dialect.name == 'sqlite'
    for name, (path, user, params, key) in _reads(stamps).items():
        with StatementThreads(counting_server.runtime.engine) as threads:
            answer = await counting_server.request(
                'GET', path, user=user, params=params
            )
        assert answer[key], name
        if sqlite:
            # One statement, on the loop: the worker pool was not asked.
            assert threads.seen == [True], name
        else:
            assert threads.seen and not any(threads.seen), name
    for name, (path, user, params) in _downloads(stamps).items():
        with StatementThreads(counting_server.runtime.engine) as threads:
            answer = await counting_server.request(
                'GET', path, user=user, params=params
            )
        assert answer['files'], name
        # A write (its history entry), in the pool or on the writer thread.
        assert threads.seen and not any(threads.seen), name
        assert any(
            statement.startswith('INSERT INTO history')
            for statement in threads.statements
        ), name


async def test_a_list_longer_than_the_bound_is_read_in_the_pool(
    counting_server, monkeypatch
):
    """More rows than QUICK_ROWS: the loop reads QUICK_ROWS + 1 of them and
    leaves the list to the worker pool, which answers all of it."""
    stamps = await populate(counting_server, SMALL)
    assert SMALL['submissions'] == 2 and SMALL['files'] == 2
    monkeypatch.setattr(runner, 'QUICK_ROWS', 1)
    sqlite = counting_server.runtime.engine.dialect.name == 'sqlite'
    for name, (path, user, params, key) in _reads(stamps).items():
        if name == 'assignments':
            continue  # one assignment: within the bound
        with StatementThreads(counting_server.runtime.engine) as threads:
            answer = await counting_server.request(
                'GET', path, user=user, params=params
            )
        assert len(answer[key]) == 2, name
        assert not any(threads.seen[1:]), name
        assert threads.seen[0] is sqlite, name


@pytest.mark.parametrize('caller', ['other student', 'outsider', 'unknown course'])
async def test_refusals_are_left_to_the_pool(counting_server, caller):
    """What the one statement does not find (here: refusals) is answered by
    the operation in the pool, with its documented status and message."""
    await populate(counting_server, SMALL)
    course = SMALL['course']
    assignment = assignments_of(SMALL)[0]
    owner, other = students_of(SMALL)[:2]
    user, path = {
        'other student': (other, ('submissions', course, assignment, owner)),
        'outsider': ('nobody', ('assignments', course)),
        'unknown course': (owner, ('assignments', 'No such course')),
    }[caller]
    expected = {
        'other student': (403, 'Permission denied (not course instructor)'),
        'outsider': (403, 'Permission denied (not related to course)'),
        'unknown course': (404, 'Course not found'),
    }[caller]
    with StatementThreads(counting_server.runtime.engine) as threads:
        response = await counting_server.client.fetch(
            counting_server.url(path, {'user': user}), raise_error=False
        )
    answer = json.loads(response.body)
    assert (response.code, answer['message']) == expected
    assert any(not on_loop for on_loop in threads.seen)
