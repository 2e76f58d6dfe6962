"""Submissions: submit, list, collect."""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, func, select

from ..database.models import Submission
from ..database.prepared import prepared
from ..permissions import require_instructor, require_member, require_self_or_instructor
from ..timestamps import format_timestamp, parsed_or_none, utc_now
from .context import Context
from .lookup import (
    KEEP,
    ensure_user,
    find_assignment,
    find_course,
    find_student_submission,
    require_student_found,
)
from .shortcuts import student_submissions, submission_files
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


def list_student_submissions(
    ctx: Context, course_id: str, assignment_id: str, student_id: str
) -> dict:
    rows = student_submissions(
        ctx.session, ctx.actor, course_id, assignment_id, student_id
    )
    if rows is not None:
        return {'submissions': [_describe(row) for row in rows]}
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
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_member(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id, lock=KEEP)
    tree = upload_tree(ctx, files)
    if ctx.actor.is_admin:
        # A member has a users row already (their roster entry refers to
        # it); an admin may submit without one.
        ensure_user(ctx.session, ctx.actor.name)
    submission = Submission(
        assignment_id=assignment._id,
        student_id=ctx.actor.name,
        timestamp=_next_timestamp(ctx, assignment._id),
    )
    ctx.session.add(submission)
    ctx.session.flush()
    insert_tree(ctx, tree, submission_id=submission._id)
    return {'timestamp': format_timestamp(submission.timestamp)}


def _next_timestamp(ctx: Context, assignment_pk: int) -> datetime.datetime:
    """Now, or just after the caller's latest submission if that is later.

    Keeps one student's timestamps distinct and increasing even when two
    submissions land in the same microsecond or the clock steps back. A
    concurrent duplicate is still caught by the unique constraint.
    """
    now = utc_now()
    statement = prepared(
        'latest timestamp',
        lambda: select(func.max(Submission.timestamp)).where(
            Submission.assignment_id == bindparam('assignment'),
            Submission.student_id == bindparam('student'),
        ),
    )
    latest = ctx.session.scalar(
        statement, {'assignment': assignment_pk, 'student': ctx.actor.name}
    )
    if latest is not None and latest >= now:
        return latest + _ONE_MICROSECOND
    return now


def get_submission(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    when = parsed_or_none(timestamp)
    if timestamp is None or when is not None:
        rows = submission_files(
            ctx.session, ctx.actor, course_id, assignment_id, student_id, when
        )
        if rows:
            return {
                'timestamp': format_timestamp(rows[0].timestamp),
                'files': list_tree(rows),
            }
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
