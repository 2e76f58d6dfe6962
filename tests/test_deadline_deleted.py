"""Deadlines survive a mistaken delete (issue 16).

A deleted assignment or course is kept with its due date, late policy,
grace period, its students' extensions and each submission's due date (the
one that applied when it was made), and a restore puts every one of them
back exactly, on SQLite and on PostgreSQL. Items kept before deadlines
existed (their payload has none of these keys) restore with the defaults.
The extensions rows themselves go with their assignment (the database's
ON DELETE CASCADE), kept or not, and a purge leaves nothing of them.

The operations run through the service's own runner on a runtime built by
the service's path (``build_runtime`` over the real command line), on a
SQLite file or a fresh PostgreSQL database; restores run as
``ngshare-admin deleted restore`` runs them. Deadlines are written as rows
(the API that sets them is tested with it), so that these tests depend on
nothing but the schema and what deleting and restoring do with it. One
test goes end to end: the deadline set and read through the API of a real
server, the delete through the API, the restore by ``ngshare-admin`` run as
a process.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import pytest
from _admin import ngshare_admin
from _api import err, ok, tree
from _operations import ADMIN, INSTRUCTOR, OTHER_STUDENT, STUDENT, Ops, files_json
from sqlalchemy import delete, select, update

from ngshare.cli import config_from
from ngshare.database.engine import make_engine
from ngshare.database.models import (
    Assignment,
    Course,
    DeletedItem,
    Extension,
    Submission,
    User,
)
from ngshare.deadlines import format_instant, parse_instant
from ngshare.flags import build_parser
from ngshare.operations.assignments import delete_assignment, release_assignment
from ngshare.operations.courses import delete_course
from ngshare.operations.deleted import list_deleted, purge_expired, restore
from ngshare.operations.submissions import submit
from ngshare.startup import build_runtime
from ngshare.timestamps import utc_now

pytestmark = pytest.mark.both_databases

DUE = datetime.datetime(2031, 5, 6, 7, 8, 9, 123456)
STUDENT_EXTENSION = datetime.datetime(2031, 5, 8, 12, 0, 0)
OTHER_EXTENSION = datetime.datetime(2031, 6, 1, 0, 0, 0, 1)
# A submission made under an extension, and one made before any due date.
SUBMITTED_UNDER = {STUDENT: STUDENT_EXTENSION, OTHER_STUDENT: None}
# Someone with an extension who is on no roster: restoring must make their
# users row again, nothing else does.
GHOST = 'ghost'
GHOST_EXTENSION = datetime.datetime(2031, 7, 1, 9, 30, 0)
ADMIN_TOOL = 'ngshare-admin'


@pytest.fixture
def ops(ngshare_database_url, tmp_path) -> Iterator[Ops]:
    """``python -m ngshare --vngshare --admins root`` up to serving, on a
    SQLite file (``sqlite``) or a fresh PostgreSQL database
    (``postgresql``), with course ``c``: instructor ``ins``, students
    ``stu`` and ``other``."""
    database = ngshare_database_url or f'sqlite:///{tmp_path / "ngshare.db"}'
    args = build_parser().parse_args(
        [
            '--vngshare',
            '--admins',
            ADMIN,
            '--database',
            database,
            '--storage',
            str(tmp_path / 'files'),
        ]
    )
    runtime = build_runtime(config_from(args, {}))
    ops = Ops(runtime, None)
    ops.course()
    yield ops
    runtime.shutdown()
    runtime.engine.dispose()


def release_and_submit(ops: Ops, assignment: str) -> None:
    ops.write(INSTRUCTOR, release_assignment, 'c', assignment, files_json({'q': b'q'}))
    for student in (STUDENT, OTHER_STUDENT):
        ops.write(student, submit, 'c', assignment, files_json({'a': student.encode()}))


def assignment_row(session, assignment: str):
    return session.scalar(
        select(Assignment)
        .join(Course, Course._id == Assignment.course_id)
        .where(Course.id == 'c', Assignment.id == assignment)
    )


def set_deadline(ops: Ops, assignment: str) -> None:
    """Due date, refusing policy with grace, three extensions (one of a
    student on no roster), and the due date each submission was made under."""
    with ops.runtime.writer() as session:
        row = assignment_row(session, assignment)
        row.due, row.late_policy, row.grace_seconds = DUE, 'refuse', 900
        if session.get(User, GHOST) is None:
            session.add(User(id=GHOST))
            session.flush()  # no relationship tells the ORM the order
        for student, due in (
            (STUDENT, STUDENT_EXTENSION),
            (OTHER_STUDENT, OTHER_EXTENSION),
            (GHOST, GHOST_EXTENSION),
        ):
            session.add(Extension(assignment_id=row._id, student_id=student, due=due))
        for student, due in SUBMITTED_UNDER.items():
            session.execute(
                update(Submission)
                .where(
                    Submission.assignment_id == row._id,
                    Submission.student_id == student,
                )
                .values(due=due)
            )
        session.commit()


def deadline_of(ops: Ops, assignment: str) -> dict:
    """Everything of the assignment's deadline, as stored."""
    with ops.runtime.reader() as session:
        row = assignment_row(session, assignment)
        assert row is not None, assignment
        extensions = session.execute(
            select(Extension.student_id, Extension.due)
            .where(Extension.assignment_id == row._id)
            .order_by(Extension.student_id)
        ).all()
        submissions = session.execute(
            select(Submission.student_id, Submission.timestamp, Submission.due)
            .where(Submission.assignment_id == row._id)
            .order_by(Submission.student_id)
        ).all()
        return {
            'due': row.due,
            'late_policy': row.late_policy,
            'grace_seconds': row.grace_seconds,
            'extensions': [tuple(extension) for extension in extensions],
            'submissions': [tuple(submission) for submission in submissions],
        }


def the_deadline(ops: Ops, assignment: str) -> dict:
    """:func:`set_deadline`'s deadline, as it must read back."""
    stored = deadline_of(ops, assignment)
    assert stored['due'] == DUE
    assert (stored['late_policy'], stored['grace_seconds']) == ('refuse', 900)
    assert stored['extensions'] == [
        (GHOST, GHOST_EXTENSION),
        (OTHER_STUDENT, OTHER_EXTENSION),
        (STUDENT, STUDENT_EXTENSION),
    ]
    assert [(who, due) for who, _when, due in stored['submissions']] == [
        (OTHER_STUDENT, None),
        (STUDENT, STUDENT_EXTENSION),
    ]
    return stored


def defaults_of(stored: dict) -> dict:
    """What an assignment without any deadline reads back as."""
    return {
        **stored,
        'due': None,
        'late_policy': 'accept',
        'grace_seconds': 0,
        'extensions': [],
        'submissions': [(who, when, None) for who, when, _due in stored['submissions']],
    }


def only_item(ops: Ops) -> int:
    with ops.runtime.reader() as session:
        [item] = list_deleted(session)
    return item['id']


def restored(ops: Ops, item_id: int, **options) -> str:
    """Restore as ``ngshare-admin deleted restore`` does."""
    with ops.unit(ADMIN_TOOL) as ctx:
        message = restore(ctx, item_id, **options)
        ctx.session.commit()
    return message


def forget_ghost(ops: Ops) -> None:
    """The users row of the student on no roster, removed once nothing
    refers to it (as a clean-up of users might)."""
    with ops.runtime.writer() as session:
        session.execute(delete(User).where(User.id == GHOST))
        session.commit()


def payload_of(ops: Ops, item_id: int) -> dict:
    with ops.runtime.reader() as session:
        return json.loads(session.get(DeletedItem, item_id).payload)


def rewrite_payload(ops: Ops, item_id: int, change) -> None:
    with ops.runtime.writer() as session:
        item = session.get(DeletedItem, item_id)
        payload = json.loads(item.payload)
        change(payload)
        item.payload = json.dumps(payload)
        session.commit()


def as_before_deadlines(assignment: dict) -> None:
    """An assignment's payload as ngshare wrote it before deadlines: no
    policy, grace, extensions or submissions' due (``due``, always null
    then, was there)."""
    for key in ('late_policy', 'grace_seconds', 'extensions'):
        del assignment[key]
    assignment['due'] = None
    for submission in assignment['submissions']:
        del submission['due']


def test_deleted_assignment_restores_its_deadline_exactly(ops):
    release_and_submit(ops, 'a')
    set_deadline(ops, 'a')
    before = the_deadline(ops, 'a')

    ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    # The extensions went with the assignment; the payload holds them, in
    # the payload's timestamp format.
    assert ops.count(Extension) == 0
    item_id = only_item(ops)
    payload = payload_of(ops, item_id)
    assert payload['due'] == '2031-05-06 07:08:09.123456 UTC'
    assert (payload['late_policy'], payload['grace_seconds']) == ('refuse', 900)
    assert payload['extensions'] == [
        {'student_id': GHOST, 'due': '2031-07-01 09:30:00.000000 UTC'},
        {'student_id': OTHER_STUDENT, 'due': '2031-06-01 00:00:00.000001 UTC'},
        {'student_id': STUDENT, 'due': '2031-05-08 12:00:00.000000 UTC'},
    ]
    assert sorted((s['student_id'], s['due']) for s in payload['submissions']) == [
        (OTHER_STUDENT, None),
        (STUDENT, '2031-05-08 12:00:00.000000 UTC'),
    ]
    forget_ghost(ops)

    assert restored(ops, item_id) == "restored assignment 'a' of 'c' with 2 submissions"
    assert deadline_of(ops, 'a') == before


def test_deleted_course_restores_every_deadline_exactly(ops):
    release_and_submit(ops, 'a')
    release_and_submit(ops, 'b')
    set_deadline(ops, 'a')
    before = the_deadline(ops, 'a')
    plain = deadline_of(ops, 'b')
    assert plain == defaults_of(plain)

    ops.write(ADMIN, delete_course, 'c')
    assert ops.count(Extension) == 0
    forget_ghost(ops)

    assert restored(ops, only_item(ops)) == "restored course 'c' with 2 assignments"
    assert deadline_of(ops, 'a') == before
    assert deadline_of(ops, 'b') == plain


def test_submissions_only_restores_the_lost_extensions_and_keeps_the_new_deadline(
    ops,
):
    """After ``release_assignment --force`` (delete, release again): the
    re-released assignment keeps its own due date, policy and the
    extensions given since; the submissions come back with the due date
    they were made under, and the extensions it lost come back."""
    release_and_submit(ops, 'a')
    set_deadline(ops, 'a')
    before = the_deadline(ops, 'a')
    ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    ops.write(INSTRUCTOR, release_assignment, 'c', 'a', files_json({'q': b'v2'}))
    later = datetime.datetime(2032, 1, 1)
    with ops.runtime.writer() as session:
        row = assignment_row(session, 'a')
        row.due = later
        session.add(Extension(assignment_id=row._id, student_id=STUDENT, due=later))
        session.commit()

    message = restored(ops, only_item(ops), submissions_only=True)

    assert message == "added 2 submissions to assignment 'a' of 'c'"
    assert deadline_of(ops, 'a') == {
        **before,
        'due': later,
        'late_policy': 'accept',
        'grace_seconds': 0,
        'extensions': [
            (GHOST, GHOST_EXTENSION),
            (OTHER_STUDENT, OTHER_EXTENSION),
            (STUDENT, later),
        ],
    }


def test_items_kept_before_deadlines_restore_with_the_defaults(ops):
    release_and_submit(ops, 'a')
    set_deadline(ops, 'a')
    before = the_deadline(ops, 'a')
    ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    rewrite_payload(ops, only_item(ops), as_before_deadlines)
    forget_ghost(ops)

    restored(ops, only_item(ops))
    assert deadline_of(ops, 'a') == defaults_of(before)

    # A course kept then, with its assignment.
    with ops.runtime.writer() as session:
        session.execute(delete(Extension))
        session.commit()
    set_deadline(ops, 'a')
    before = the_deadline(ops, 'a')
    ops.write(ADMIN, delete_course, 'c')
    rewrite_payload(
        ops,
        only_item(ops),
        lambda course: [as_before_deadlines(a) for a in course['assignments']],
    )
    restored(ops, only_item(ops))
    assert deadline_of(ops, 'a') == defaults_of(before)


def delete_unkept(ops: Ops, who: str, operation, *args) -> None:
    """Delete as the service does with ``--deleted-retention-days 0``."""
    with ops.unit(who) as ctx:
        ctx.keep_deleted = False
        operation(ctx, *args)
        ctx.session.commit()


def test_extensions_go_with_their_assignment_kept_or_not(ops):
    """ON DELETE CASCADE: deleting an assignment removes its extensions
    rows, and only its, whether it is kept or not; a purge then leaves
    nothing of them."""
    for name in ('a', 'b'):
        release_and_submit(ops, name)
        set_deadline(ops, name)
    assert ops.count(Extension) == 6

    ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    assert ops.count(Extension) == 3
    the_deadline(ops, 'b')
    with ops.runtime.writer() as session:
        purge_expired(session, utc_now() + datetime.timedelta(days=1), by='ngshare')
        session.commit()
    assert ops.count(DeletedItem) == 0
    assert ops.count(Extension) == 3

    delete_unkept(ops, INSTRUCTOR, delete_assignment, 'c', 'b')
    assert ops.count(DeletedItem) == 0
    assert ops.count(Extension) == 0


def test_deleting_the_course_removes_its_extensions(ops):
    release_and_submit(ops, 'a')
    set_deadline(ops, 'a')
    delete_unkept(ops, ADMIN, delete_course, 'c')
    assert ops.count(DeletedItem) == 0
    assert ops.count(Extension) == 0
    assert ops.count(Submission) == 0


# --- end to end: the API, and ngshare-admin as a process ----------------------

COURSE = 'Due 101'


def api_course_with_deadline(server) -> None:
    """A course whose ps1 has a due date a day away, the refusing policy
    with grace, extensions for both students, and a submission of each."""
    ok(server.post(('course', COURSE), user='root', data={'instructors': '["kevin"]'}))
    for student in ('eric', 'lawrence'):
        ok(
            server.post(
                ('student', COURSE, student),
                user='kevin',
                data={'first_name': student, 'last_name': 'L', 'email': ''},
            )
        )
    ok(
        server.post(
            ('assignment', COURSE, 'ps1'),
            user='kevin',
            data={'files': tree({'q': b'q'})},
        )
    )
    day = (utc_now() + datetime.timedelta(days=1)).replace(microsecond=0)
    ok(
        server.post(
            ('deadline', COURSE, 'ps1'),
            user='kevin',
            data={
                'due': format_instant(day),
                'late_policy': 'refuse',
                'grace_seconds': '900',
            },
        )
    )
    for hours, student in ((2, 'eric'), (7, 'lawrence')):
        extended = day + datetime.timedelta(hours=hours)
        ok(
            server.post(
                ('extension', COURSE, 'ps1', student),
                user='kevin',
                data={'due': format_instant(extended)},
            )
        )
        ok(
            server.post(
                ('submission', COURSE, 'ps1'),
                user=student,
                data={'files': tree({'a': student.encode()})},
            )
        )


def deadline_answers(server) -> tuple[dict, list]:
    """What instructors are told of ps1's deadline, and the due date each
    submission was made under (as stored: the listings' fields are
    tested with them)."""
    deadline = ok(server.get(('deadline', COURSE, 'ps1'), user='kevin'))
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            submissions = connection.execute(
                select(
                    Submission.student_id, Submission.timestamp, Submission.due
                ).order_by(Submission.student_id)
            ).all()
    finally:
        engine.dispose()
    return deadline, [tuple(row) for row in submissions]


def admin_restores_the_only_item(server) -> None:
    listed = ngshare_admin(server, 'deleted', 'list')
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    done = ngshare_admin(server, 'deleted', 'restore', line.split('\t')[0])
    assert done.returncode == 0, done.stderr


def test_api_answers_the_same_deadline_after_a_restore(vngshare_server):
    server = vngshare_server
    api_course_with_deadline(server)
    before = deadline_answers(server)
    deadline, submissions = before
    assert deadline['late_policy'] == 'refuse' and len(deadline['extensions']) == 2
    assert [due for _who, _when, due in submissions] == [
        parse_instant(entry['due']) for entry in deadline['extensions']
    ]

    ok(server.delete(('assignment', COURSE, 'ps1'), user='kevin'))
    err(
        server.get(('deadline', COURSE, 'ps1'), user='kevin'),
        404,
        'Assignment not found',
    )
    admin_restores_the_only_item(server)
    assert deadline_answers(server) == before

    ok(server.delete(('course', COURSE), user='root'))
    admin_restores_the_only_item(server)
    assert deadline_answers(server) == before
