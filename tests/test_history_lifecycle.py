"""How long the history lasts (issue 17): retention, deleted courses, the
deleted-items tools.

* **retention**: with ``--history-retention-days N`` the service's
  housekeeping (``purge_for``, at start-up and hourly) removes the entries
  older than N days and keeps the others; 0, the default, keeps them all;
* **a deleted course** keeps its history, readable by an admin, until the
  deleted-items purge removes the course: then its entries from before the
  deletion go, the ``delete_course`` and ``purge`` entries remain, and a
  course created since under the same name keeps its own; a course deleted
  without being kept loses its history at once;
* **the admin tool**: ``ngshare-admin deleted restore`` and ``purge`` are
  recorded under the tool's name, the service's own purge as ``ngshare``.

The shared in-process server (``shared_server``, SQLite and PostgreSQL)
serves every test; the housekeeping is called with its runtime and a
``now`` of the test's choosing, or entries are dated back in the database,
so nothing waits for a clock. The history is read through the API.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from _api import err, ok, tree
from sqlalchemy import create_engine, select, update
from sqlalchemy.pool import NullPool

from ngshare import cli
from ngshare.database.models import HistoryEntry
from ngshare.housekeeping import expire_history, purge_for
from ngshare.timestamps import utc_now

pytestmark = pytest.mark.both_databases

HISTORY = HistoryEntry.__table__
ADMIN, TOOL, SERVICE = 'root', 'ngshare-admin', 'ngshare'
PERSON = {'first_name': 'F', 'last_name': 'L', 'email': 'x@example.org'}
DAY = datetime.timedelta(days=1)


def history(server, course: str, user: str = ADMIN) -> list[tuple]:
    """(action, user, assignment, student) of the course's entries, oldest
    first, as ``user`` reads them."""
    answer = ok(
        server.get(
            ('history', course), user=user, params={'order': 'oldest', 'limit': 1000}
        )
    )
    assert answer['next'] is None
    return [
        (e['action'], e['user'], e['assignment_id'], e['student_id'])
        for e in answer['history']
    ]


def set_up(server, course: str, instructor='kevin', student='lawrence') -> list:
    """A course with a student and a released ``ps1``; its entries."""
    ok(
        server.post(
            ('course', course),
            user=ADMIN,
            data={'instructors': json.dumps([instructor])},
        )
    )
    ok(server.post(('student', course, student), user=instructor, data=PERSON))
    ok(
        server.post(
            ('assignment', course, 'ps1'),
            user=instructor,
            data={'files': tree({'task.ipynb': b'task'})},
        )
    )
    return [
        ('create_course', ADMIN, None, None),
        ('add_instructor', ADMIN, None, instructor),
        ('add_student', instructor, None, student),
        ('release', instructor, 'ps1', None),
    ]


def date_back(server, actions: set[str], by: datetime.timedelta) -> None:
    """Move the entries of ``actions`` ``by`` into the past (as if written
    then), row by row: the same statement on both databases."""
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            rows = connection.execute(
                select(HISTORY.c._id, HISTORY.c.time).where(
                    HISTORY.c.action.in_(actions)
                )
            ).all()
            assert rows, actions
            for _id, time in rows:
                connection.execute(
                    update(HISTORY).where(HISTORY.c._id == _id).values(time=time - by)
                )
    finally:
        engine.dispose()


def configured(server, **settings):
    """The server's runtime with other settings (as other flags would)."""
    runtime = server.runtime
    return dataclasses.replace(
        runtime, config=dataclasses.replace(runtime.config, **settings)
    )


def admin(admin_main, server, *args: str):
    """``ngshare-admin ARGS`` on the server's database and storage."""
    done = admin_main(
        *args, '--database', server.database_url, '--storage', str(server.storage)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def deleted_ids(admin_main, server) -> list[str]:
    done = admin(admin_main, server, 'deleted', 'list')
    return [line.split('\t')[0] for line in done.stdout.splitlines()]


# --------------------------------------------------------------------------
# Retention


def test_the_retention_flag_reaches_the_configuration():
    def parsed(*flags):
        return cli.config_from(
            cli.build_parser().parse_args(['--vngshare', *flags]), {}
        )

    assert parsed().history_retention_days == 0
    assert parsed('--history-retention-days', '7').history_retention_days == 7
    for wrong in ('-1', 'x', '1.5'):
        with pytest.raises(SystemExit) as refused:
            parsed('--history-retention-days', wrong)
        assert refused.value.code == 2


def test_retention_removes_the_old_entries_and_keeps_the_recent(shared_server):
    server = shared_server
    entries = set_up(server, 'Keep 101')
    other = set_up(server, 'Other 101', instructor='abigail', student='eric')
    # The course and its instructor, two days old; the rest just written.
    date_back(server, {'create_course', 'add_instructor'}, 2 * DAY)

    # 0 (the default) keeps everything, however old.
    purge_for(configured(server, history_retention_days=0), now=utc_now() + 3650 * DAY)
    assert expire_history(server.runtime.writer, 0, now=utc_now() + 3650 * DAY) == 0
    assert history(server, 'Keep 101') == entries

    # One day: the two-day-old entries go, of every course; the recent stay.
    purge_for(configured(server, history_retention_days=1))
    assert history(server, 'Keep 101') == entries[2:]
    assert history(server, 'Other 101') == other[2:]

    # Two days later, the rest is over a day old too. The course itself is
    # untouched, and its next action is recorded as before.
    purge_for(configured(server, history_retention_days=1), now=utc_now() + 2 * DAY)
    assert history(server, 'Keep 101') == history(server, 'Other 101') == []
    assert ok(server.get(('assignments', 'Keep 101'), user='kevin'))['assignments']
    ok(server.post(('student', 'Keep 101', 'nina'), user='kevin', data=PERSON))
    assert history(server, 'Keep 101') == [('add_student', 'kevin', None, 'nina')]


# --------------------------------------------------------------------------
# Deleted courses


def test_a_deleted_course_keeps_its_history_until_the_purge(shared_server):
    server = shared_server
    course = 'Gone 101'
    before = set_up(server, course)
    ok(
        server.post(
            ('submission', course, 'ps1'),
            user='lawrence',
            data={'files': tree({'task.ipynb': b'answer'})},
        )
    )
    ok(server.get(('submission', course, 'ps1', 'lawrence'), user='kevin'))
    before += [
        ('submit', 'lawrence', 'ps1', 'lawrence'),
        ('collect', 'kevin', 'ps1', 'lawrence'),
    ]
    elsewhere = set_up(server, 'Stay 101', instructor='abigail', student='eric')

    ok(server.delete(('course', course), user=ADMIN))
    deleted = [*before, ('delete_course', ADMIN, None, None)]
    assert history(server, course) == deleted
    # The course is gone for its members: 404 as on every endpoint.
    for member in ('kevin', 'lawrence'):
        err(server.get(('history', course), user=member), 404, 'Course not found')

    # A new course of the same name: its entries follow the old ones.
    ok(server.post(('course', course), user=ADMIN, data={'instructors': '["eric"]'}))
    ok(server.post(('student', course, 'nina'), user='eric', data=PERSON))
    new = [
        ('create_course', ADMIN, None, None),
        ('add_instructor', ADMIN, None, 'eric'),
        ('add_student', 'eric', None, 'nina'),
    ]
    assert history(server, course) == deleted + new
    # Its members see only its own, after the entry of the old one's
    # deletion: the old course's students and submissions are not theirs.
    assert history(server, course, user='eric') == deleted[-1:] + new
    assert history(server, course, user='nina') == new[2:]

    # Not expired yet: the hourly purge keeps it.
    purge_for(server.runtime)
    assert history(server, course) == deleted + new
    # Expired (past --deleted-retention-days, 30): purged by the service,
    # and the old course's entries before its deletion with it.
    purge_for(server.runtime, now=utc_now() + 31 * DAY)
    assert history(server, course) == [
        ('delete_course', ADMIN, None, None),
        *new,
        ('purge', SERVICE, None, None),
    ]
    assert history(server, course, user='eric') == history(server, course)
    assert history(server, 'Stay 101') == elsewhere
    # The purge happened once: a second one finds nothing more to do.
    purge_for(server.runtime, now=utc_now() + 31 * DAY)
    assert [entry[0] for entry in history(server, course)].count('purge') == 1


def test_a_course_deleted_without_being_kept_loses_its_history(
    shared_server, monkeypatch
):
    """With --deleted-retention-days 0 nothing is kept to purge later: the
    course's history goes with it, but for the entry of its deletion."""
    server = shared_server
    set_up(server, 'Now 101')
    elsewhere = set_up(server, 'Stay 101', instructor='abigail', student='eric')
    monkeypatch.setattr(
        server.runtime, 'config', configured(server, deleted_retention_days=0).config
    )
    ok(server.delete(('course', 'Now 101'), user=ADMIN))
    assert history(server, 'Now 101') == [('delete_course', ADMIN, None, None)]
    assert history(server, 'Stay 101') == elsewhere


# --------------------------------------------------------------------------
# ngshare-admin deleted restore / purge


def test_the_admin_tool_records_restores_and_purges(shared_server, admin_main):
    server = shared_server
    course = 'Back 101'
    entries = set_up(server, course)
    ok(
        server.post(
            ('assignment', course, 'ps2'),
            user='kevin',
            data={'files': tree({'other.ipynb': b'other'})},
        )
    )
    entries.append(('release', 'kevin', 'ps2', None))

    # An assignment deleted, restored under its own name.
    ok(server.delete(('assignment', course, 'ps1'), user='kevin'))
    [item] = deleted_ids(admin_main, server)
    admin(admin_main, server, 'deleted', 'restore', item)
    entries += [('unrelease', 'kevin', 'ps1', None), ('restore', TOOL, 'ps1', None)]
    assert history(server, course) == entries

    # Restored under another name: the entry names the assignment restored.
    ok(server.delete(('assignment', course, 'ps1'), user='kevin'))
    [item] = deleted_ids(admin_main, server)
    admin(admin_main, server, 'deleted', 'restore', item, '--as', 'ps1 (old)')
    entries += [
        ('unrelease', 'kevin', 'ps1', None),
        ('restore', TOOL, 'ps1 (old)', None),
    ]
    assert history(server, course) == entries

    # The whole course deleted and restored: its history was never lost.
    ok(server.delete(('course', course), user=ADMIN))
    [item] = deleted_ids(admin_main, server)
    admin(admin_main, server, 'deleted', 'restore', item)
    entries += [('delete_course', ADMIN, None, None), ('restore', TOOL, None, None)]
    assert history(server, course) == entries
    assert history(server, course, user='kevin') == entries

    # Deleted again and restored under another name: the history moves with
    # it; the old name keeps only the entry of its deletion.
    ok(server.delete(('course', course), user=ADMIN))
    [item] = deleted_ids(admin_main, server)
    admin(admin_main, server, 'deleted', 'restore', item, '--as', 'Back 102')
    entries.append(('restore', TOOL, None, None))
    assert history(server, 'Back 102', user='kevin') == entries
    assert history(server, course) == [('delete_course', ADMIN, None, None)]
    course = 'Back 102'

    # The tool's purge, under its name.
    ok(server.delete(('assignment', course, 'ps2'), user='kevin'))
    admin(admin_main, server, 'deleted', 'purge', '--older-than-days', '0')
    assert deleted_ids(admin_main, server) == []
    entries += [('unrelease', 'kevin', 'ps2', None), ('purge', TOOL, 'ps2', None)]
    assert history(server, course) == entries
