"""The one-statement lookups of submit, feedback upload and release.

Each of these writes first tries one statement that finds the course, the
assignment (and the submission), checks the caller's role and takes the
long way's locks (``ngshare.operations.lookup``); when it finds nothing it
goes the long way, step by step. So for every caller and every target,
allowed or not, the answer must be the long way's, and what the write
leaves (rows, released blobs) the same: each case is run both ways on the
same database, in a transaction rolled back after it, on SQLite and on
PostgreSQL. The short way must also be the one taken whenever the write
gets past its lookups.

On PostgreSQL the locks are shown by forcing the interleaving: a second
connection holds a row lock, the write is seen waiting for it in
``pg_stat_activity`` (or not waiting, for a lock it must not conflict
with), and the holder then deletes the row or lets go.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from _operations import PERSON, files_json
from sqlalchemy import select

from ngshare.cli import config_from
from ngshare.database.models import Assignment, File, Submission
from ngshare.errors import ApiError
from ngshare.flags import build_parser
from ngshare.names import can_exist
from ngshare.operations import assignments, feedback, submissions
from ngshare.operations.context import Context
from ngshare.operations.courses import create_course
from ngshare.operations.roster import remove_student, set_student
from ngshare.operations.runner import run_operation
from ngshare.startup import build_runtime

ADMIN = 'root'
CALLERS = (ADMIN, 'ins', 'stu', 'mate', 'far', 'out', 'x\x00y', '\ud800')
GOOD = files_json({'work.ipynb': b'{"cells": []}', 'notes/n.txt': b'n'})
BAD = 'not a tree'
WAIT = 60  # upper bound of any one wait (never a measured time)


@pytest.fixture(params=['sqlite', 'postgresql'])
def database_url(request, tmp_path):
    if request.param == 'sqlite':
        return f'sqlite:///{tmp_path / "ngshare.db"}'
    return request.getfixturevalue('postgres_url')


@pytest.fixture
def runtime(database_url, tmp_path):
    args = build_parser().parse_args(
        ['--vngshare', '--admins', ADMIN, '--database', database_url]
        + ['--storage', str(tmp_path / 'files')]
    )
    built = build_runtime(config_from(args, {}))
    try:
        yield built
    finally:
        built.shutdown()
        built.engine.dispose()


def write(runtime, who, operation, *args):
    actor = runtime.authenticator.actor(who)
    return run_operation(runtime, actor, operation, args, write=True)


@pytest.fixture
def world(runtime):
    """Course ``c`` (instructor ``ins``, students ``stu`` and ``mate``) and
    course ``d`` (student ``far``), each with assignment ``a``; ``stu`` and
    ``gone`` (a removed student) submitted to ``c``/``a``. The timestamps
    of those two submissions."""
    write(runtime, ADMIN, create_course, 'c', json.dumps(['ins']))
    write(runtime, ADMIN, create_course, 'd', json.dumps(['dins']))
    for course, name in (('c', 'stu'), ('c', 'mate'), ('c', 'gone'), ('d', 'far')):
        write(runtime, ADMIN, set_student, course, name, dict(PERSON))
    for course in ('c', 'd'):
        write(runtime, ADMIN, assignments.release_assignment, course, 'a', GOOD)
    stamps = {
        name: write(runtime, name, submissions.submit, 'c', 'a', GOOD)['timestamp']
        for name in ('stu', 'gone')
    }
    write(
        runtime, ADMIN, feedback.upload_feedback, 'c', 'a', 'stu', stamps['stu'], GOOD
    )
    write(runtime, ADMIN, remove_student, 'c', 'gone')
    return stamps


def outcome(runtime, who, operation, args):
    """(status, message) of a refusal, or (200, what the write did), in a
    transaction rolled back afterwards."""
    with runtime.writer() as session:
        ctx = Context(
            session=session,
            store=runtime.store,
            actor=runtime.authenticator.actor(who),
            max_file_size=runtime.config.max_file_size,
        )
        try:
            answer = operation(ctx, *args)
            return 200, _answered(answer), _left(session), sorted(ctx.released_blobs)
        except ApiError as refusal:
            return refusal.status, refusal.message
        finally:
            session.rollback()


def _answered(answer: dict) -> dict:
    # A new submission's timestamp is the clock's: only its form is the same.
    if 'timestamp' in answer:
        assert answer['timestamp'].endswith(' UTC'), answer
        return {**answer, 'timestamp': 'a timestamp'}
    return answer


def _left(session) -> list:
    """Every file row by its owner's names (keys differ between the two
    runs on PostgreSQL, whose sequences do not roll back)."""
    names = dict(session.execute(select(Assignment._id, Assignment.id)).all())
    owners = {
        row._id: (names[row.assignment_id], row.student_id)
        for row in session.execute(select(Submission)).scalars().all()
    }
    rows = []
    for f in session.scalars(select(File)):
        if f.assignment_id is not None:
            owner = ('assignment', names[f.assignment_id])
        elif f.submission_id is not None:
            owner = ('submission', *owners[f.submission_id])
        else:
            owner = ('feedback', *owners[f.feedback_id])
        rows.append((owner, f.filename, f.checksum, f.actual_name, f.size))
    return sorted(rows) + sorted(owners.values())


def _compare(runtime, monkeypatch, module, target, cases):
    """Each ``(who, operation, args)`` answered the short way (recording
    whether its statement found the target) and the long way: the cases
    whose answers differ, and those where the short way was not taken
    though the long way got past every lookup (or taken though it did not).
    """
    real = getattr(module, target)
    found = []
    monkeypatch.setattr(module, target, lambda *a: found.append(real(*a)) or found[-1])
    short = []
    for who, operation, args in cases:
        found.clear()
        short.append((outcome(runtime, who, operation, args), found[-1] is not None))
    monkeypatch.setattr(module, target, lambda *a: None)
    tree_refusal = outcome(runtime, ADMIN, submissions.submit, ('c', 'a', BAD))
    assert tree_refusal[0] == 400, tree_refusal
    past = {'Illegal name', 'Assignment already exists', tree_refusal[1]}
    differ, missed = [], []
    for (who, operation, args), (answer, took) in zip(cases, short, strict=True):
        reference = outcome(runtime, who, operation, args)
        if answer != reference:
            differ.append((who, args[:-1], answer, reference))
        expected = reference[0] == 200 or reference[1] in past
        # A name that cannot exist always goes the long way.
        expected = expected and all(map(can_exist, (who, *args[:-1])))
        if took != expected:
            missed.append((who, args[:-1], took, reference[:2]))
    assert not differ, '\n'.join(map(repr, differ))
    assert not missed, '\n'.join(map(repr, missed))


def test_submit_answers_as_the_long_way(runtime, world, monkeypatch):
    targets = [('c', 'a'), ('c', 'nope'), ('nope', 'a'), ('d', 'a')]
    targets += [('c\x00', 'a'), ('c', 'a\x00'), ('nope', 'nope')]
    cases = [
        (who, submissions.submit, (*target, tree))
        for who in CALLERS
        for target in targets
        for tree in (GOOD, BAD)
    ]
    _compare(runtime, monkeypatch, submissions, '_submit_target', cases)


def test_feedback_upload_answers_as_the_long_way(runtime, world, monkeypatch):
    mine, theirs = world['stu'], world['gone']
    targets = [
        ('c', 'a', 'stu', mine),
        ('c', 'a', 'gone', theirs),  # removed, but submitted: found
        ('c', 'a', 'stu', None),
        ('c', 'a', 'stu', 'yesterday'),
        ('c', 'a', 'stu', '2001-01-01 00:00:00.000000 UTC'),
        ('c', 'a', 'stu', mine.replace(' UTC', '')),
        ('c', 'a', 'mate', mine),
        ('c', 'a', 'nobody', mine),
        ('c', 'a', 'nobody', None),
        ('c', 'a', 'stu\x00', mine),
        ('c', 'nope', 'stu', mine),
        ('nope', 'a', 'stu', mine),
        ('d', 'a', 'stu', mine),
    ]
    cases = [
        (who, feedback.upload_feedback, (*target, tree))
        for who in CALLERS
        for target in targets
        for tree in (GOOD, BAD)
    ]
    _compare(runtime, monkeypatch, feedback, '_feedback_target', cases)


def test_release_answers_as_the_long_way(runtime, world, monkeypatch):
    targets = [('c', 'new'), ('c', 'a'), ('nope', 'new'), ('d', 'new')]
    targets += [('c', 'tab\there'), ('c', 'a\x00'), ('c\x00', 'new'), ('c', '')]
    cases = [
        (who, assignments.release_assignment, (*target, tree))
        for who in (*CALLERS, 'dins')
        for target in targets
        for tree in (GOOD, BAD)
    ]
    _compare(runtime, monkeypatch, assignments, '_release_target', cases)


# -- the locks, on PostgreSQL ---------------------------------------------------

# What a concurrent write holds, as ngshare's own writes take it: a delete
# (``FOR UPDATE``, then the row deleted), a roster change on the course or
# a feedback upload on the submission (``FOR NO KEY UPDATE``).
ROWS = {
    'course': "FROM courses WHERE id = 'c'",
    'assignment': "FROM assignments WHERE id = 'a' AND course_id = "
    "(SELECT _id FROM courses WHERE id = 'c')",
    'submission': "FROM submissions WHERE student_id = 'stu'",
}


def _upload_feedback(runtime, world):
    return ('ins', feedback.upload_feedback, 'c', 'a', 'stu', world['stu'], GOOD)


def _submit(runtime, world):
    return ('stu', submissions.submit, 'c', 'a', GOOD)


def _release(runtime, world):
    return ('ins', assignments.release_assignment, 'c', 'new', GOOD)


# (write, row held, lock, whether the write waits for it, what the holder
# then does, the write's answer).
LOCK_CASES = [
    (_submit, 'course', 'UPDATE', True, 'delete', (404, 'Course not found')),
    (_submit, 'assignment', 'UPDATE', True, 'delete', (404, 'Assignment not found')),
    (_submit, 'course', 'NO KEY UPDATE', False, 'commit', 200),
    (_submit, 'assignment', 'NO KEY UPDATE', False, 'commit', 200),
    (_upload_feedback, 'course', 'UPDATE', True, 'delete', (404, 'Course not found')),
    (
        _upload_feedback,
        'assignment',
        'UPDATE',
        True,
        'delete',
        (404, 'Assignment not found'),
    ),
    (_upload_feedback, 'submission', 'NO KEY UPDATE', True, 'commit', 200),
    (_upload_feedback, 'course', 'NO KEY UPDATE', False, 'commit', 200),
    (_release, 'course', 'UPDATE', True, 'delete', (404, 'Course not found')),
    (_release, 'course', 'NO KEY UPDATE', False, 'commit', 200),
]


def _committed(runtime, who, operation, *args):
    """The write run once, as the runner runs it but without its retries
    (a deadlock is an error here, not a retry): 200 or (status, message)."""
    with runtime.writer() as session:
        ctx = Context(
            session=session,
            store=runtime.store,
            actor=runtime.authenticator.actor(who),
            max_file_size=runtime.config.max_file_size,
        )
        try:
            operation(ctx, *args)
        except ApiError as refusal:
            return refusal.status, refusal.message
        session.commit()
        return 200


def _waiting(watcher, holder_pid: int) -> bool:
    """Whether another backend of this database waits for a lock."""
    return bool(
        watcher.execute(
            'SELECT count(*) FROM pg_stat_activity WHERE datname ='
            " current_database() AND wait_event_type = 'Lock' AND pid <> %s",
            (holder_pid,),
        ).fetchone()[0]
    )


@pytest.mark.parametrize(
    ('make', 'row', 'lock', 'waits', 'then', 'answer'),
    LOCK_CASES,
    ids=[f'{c[0].__name__[1:]}-{c[1]}-{c[2]}' for c in LOCK_CASES],
)
@pytest.mark.parametrize('database_url', ['postgresql'], indirect=True)
def test_the_short_way_takes_the_long_ways_locks(
    runtime, world, database_url, make, row, lock, waits, then, answer
):
    """A write waits for exactly the locks the long way waits for, takes
    them course first (the holder's cascading delete would otherwise meet
    it in a deadlock), and after a delete answers the long way's 404."""
    conninfo = database_url.replace('postgresql+psycopg://', 'postgresql://')
    with (
        psycopg.connect(conninfo) as holder,
        psycopg.connect(conninfo, autocommit=True) as watcher,
    ):
        holder.execute(f'SELECT 1 {ROWS[row]} FOR {lock}')
        holder_pid = holder.info.backend_pid
        done = []
        writer = threading.Thread(
            target=lambda: done.append(_committed(runtime, *make(runtime, world)))
        )
        writer.start()
        if waits:
            for _ in range(WAIT * 50):
                if _waiting(watcher, holder_pid) or not writer.is_alive():
                    break
                time.sleep(0.02)
            assert writer.is_alive() and _waiting(watcher, holder_pid), done
            if then == 'delete':
                holder.execute(f'DELETE {ROWS[row]}')
            holder.commit()
        writer.join(WAIT)
        assert not writer.is_alive()
        holder.rollback()
    assert done == [answer]
