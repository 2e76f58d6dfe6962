"""Submissions: submit, list, collect."""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, func, insert, select

from ..database.models import Submission
from ..database.prepared import prepared
from ..names import can_exist
from ..permissions import require_instructor, require_member, require_self_or_instructor
from ..timestamps import format_timestamp, parsed_or_none, utc_now
from .context import Context
from .lookup import (
    ASSIGNMENTS,
    COURSES,
    KEEP,
    ensure_user,
    find_assignment,
    find_course,
    find_student_submission,
    locking,
    require_student_found,
    write_target,
)
from .shortcuts import answer_of_files, student_submissions, submission_files
from .trees import insert_tree, list_tree, upload_tree
from .uploads import PreparedUpload

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)


def _describe(submission: Submission) -> dict:
    return {
        'student_id': submission.student_id,
        'timestamp': format_timestamp(submission.timestamp),
    }


def _ordered(query):
    return query.order_by(Submission.timestamp, Submission._id)


def list_submissions(ctx: Context, course_id: str, assignment_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    rows = ctx.session.scalars(
        _ordered(select(Submission).where(Submission.assignment_id == assignment._id))
    )
    return {'submissions': [_describe(row) for row in rows]}


def listed_student_submissions(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    limit: int | None = None,
) -> dict | None:
    """``list_student_submissions``'s answer when one statement gives it
    (see :mod:`.shortcuts`; at most ``limit`` submissions), else None."""
    rows = student_submissions(
        ctx.session, ctx.actor, course_id, assignment_id, student_id, limit
    )
    return None if rows is None else {'submissions': [_describe(r) for r in rows]}


def list_student_submissions(
    ctx: Context, course_id: str, assignment_id: str, student_id: str
) -> dict:
    answer = listed_student_submissions(ctx, course_id, assignment_id, student_id)
    if answer is not None:
        return answer
    course = find_course(ctx.session, course_id)
    require_self_or_instructor(ctx.session, ctx.actor, course, student_id)
    assignment = find_assignment(ctx.session, course, assignment_id)
    require_student_found(ctx.session, course, assignment, student_id)
    statement = prepared(
        'submissions of a student',
        lambda: _ordered(
            select(Submission).where(
                Submission.assignment_id == bindparam('assignment'),
                Submission.student_id == bindparam('student'),
            )
        ),
    )
    rows = ctx.session.scalars(
        statement, {'assignment': assignment._id, 'student': student_id}
    )
    return {'submissions': [_describe(row) for row in rows]}


def submit(
    ctx: Context, course_id: str, assignment_id: str, files: PreparedUpload | str | None
) -> dict:
    # Course and assignment stay until this commits (a delete in flight
    # commits first, and this answers 404); submissions never queue behind
    # each other, their timestamps are kept apart by the unique constraint.
    target = _submit_target(ctx, course_id, assignment_id)
    if target is None:
        # A refusal (or a race lost to a delete): the long way answers it.
        course = find_course(ctx.session, course_id, lock=KEEP)
        require_member(ctx.session, ctx.actor, course)
        assignment = find_assignment(ctx.session, course, assignment_id, lock=KEEP)
        target = assignment._id, _latest_timestamp(ctx, assignment._id)
    assignment_pk, latest = target
    tree = upload_tree(ctx, files)
    if ctx.actor.is_admin:
        # A member has a users row already (their roster entry refers to
        # it); an admin may submit without one.
        ensure_user(ctx.session, ctx.actor.name)
    timestamp = _next_timestamp(latest)
    submission_pk = ctx.session.execute(
        prepared(
            'insert submission',
            lambda: insert(_SUBMISSIONS).returning(_SUBMISSIONS.c._id),
        ),
        {
            'assignment_id': assignment_pk,
            'student_id': ctx.actor.name,
            'timestamp': timestamp,
        },
    ).scalar_one()
    insert_tree(ctx, tree, submission_id=submission_pk)
    return {'timestamp': format_timestamp(timestamp)}


_SUBMISSIONS = Submission.__table__


def _latest_of_caller(assignment_pk):
    """The latest timestamp of the caller (``:actor``) in the assignment."""
    return select(func.max(_SUBMISSIONS.c.timestamp)).where(
        _SUBMISSIONS.c.assignment_id == assignment_pk,
        _SUBMISSIONS.c.student_id == bindparam('actor'),
    )


def _submit_target(
    ctx: Context, course_id: str, assignment_id: str
) -> tuple[int, datetime.datetime | None] | None:
    """(assignment pk, the caller's latest timestamp there) in one Core
    statement that takes the long way's locks (both rows ``KEEP``), when
    the caller may submit; None otherwise (see :mod:`.lookup`)."""
    names = (course_id, assignment_id, ctx.actor.name)
    if not all(can_exist(name) for name in names):
        return None
    admin = ctx.actor.is_admin

    def build():
        assignment = ASSIGNMENTS.c._id
        latest = _latest_of_caller(assignment).scalar_subquery()
        query = write_target(assignment, latest, admin=admin)
        return locking(query, (KEEP, (COURSES, ASSIGNMENTS)))

    row = ctx.session.execute(
        prepared(('submit target', admin), build),
        {'course': course_id, 'assignment': assignment_id, 'actor': ctx.actor.name},
    ).first()
    return None if row is None else (row[0], row[1])


def _latest_timestamp(ctx: Context, assignment_pk: int) -> datetime.datetime | None:
    statement = prepared(
        'latest timestamp',
        lambda: _latest_of_caller(bindparam('assignment')),
    )
    return ctx.session.scalar(
        statement, {'assignment': assignment_pk, 'actor': ctx.actor.name}
    )


def _next_timestamp(latest: datetime.datetime | None) -> datetime.datetime:
    """Now, or just after the caller's ``latest`` submission if that is later.

    Keeps one student's timestamps distinct and increasing even when two
    submissions land in the same microsecond or the clock steps back. A
    concurrent duplicate is still caught by the unique constraint.
    """
    now = utc_now()
    if latest is not None and latest >= now:
        return latest + _ONE_MICROSECOND
    return now


def collected_submission(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
    limit: int | None = None,
) -> dict | None:
    """``get_submission``'s answer when one statement gives it (see
    :mod:`.shortcuts`; at most ``limit`` files), else None."""
    when = parsed_or_none(timestamp)
    if timestamp is not None and when is None:
        return None
    rows = submission_files(
        ctx.session, ctx.actor, course_id, assignment_id, student_id, when, limit
    )
    if rows is None:
        return None
    return answer_of_files(rows)


def get_submission(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    answer = collected_submission(ctx, course_id, assignment_id, student_id, timestamp)
    if answer is not None:
        return answer
    course = find_course(ctx.session, course_id)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    submission = find_student_submission(
        ctx.session, course, assignment, student_id, timestamp, required=False
    )
    return {
        'timestamp': format_timestamp(submission.timestamp),
        'files': list_tree(submission.files),
    }
