"""Submissions: submit, list, collect."""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, exists, func, insert, select

from ..database.models import STUDENT, Extension, Submission
from ..database.prepared import prepared
from ..deadlines import closed_message, cutoff, effective_due, lateness
from ..errors import ApiError
from ..names import can_exist
from ..permissions import require_instructor, require_member, require_self_or_instructor
from ..timestamps import format_timestamp, parsed_or_none, utc_now
from .context import Context
from .history import record, record_download, uploaded
from .lookup import (
    ASSIGNMENTS,
    COURSES,
    KEEP,
    ROSTER,
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


def _listed(submissions) -> dict:
    """The answer of a list of submissions (rows or ``Submission`` objects):
    the documented entries, exactly ``student_id`` and ``timestamp`` (as
    0.6.0's own tests require), and beside them, in the same order, how
    late each one was (an addition, see docs/api.md)."""
    entries, late = [], []
    for submission in submissions:
        entries.append(
            {
                'student_id': submission.student_id,
                'timestamp': format_timestamp(submission.timestamp),
            }
        )
        late.append(lateness(submission.timestamp, submission.due))
    return {'submissions': entries, 'lateness': late}


def _ordered(query):
    return query.order_by(Submission.timestamp, Submission._id)


def list_submissions(ctx: Context, course_id: str, assignment_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    rows = ctx.session.scalars(
        _ordered(select(Submission).where(Submission.assignment_id == assignment._id))
    )
    return _listed(rows)


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
    return None if rows is None else _listed(rows)


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
    return _listed(rows)


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
        target = _deadline_target(ctx, assignment._id)
    assignment_pk, latest, due, late_policy, grace_seconds, extension, student = target
    tree = upload_tree(ctx, files)
    if ctx.actor.is_admin:
        # A member has a users row already (their roster entry refers to
        # it); an admin may submit without one.
        ensure_user(ctx.session, ctx.actor.name)
    timestamp = _next_timestamp(latest)
    due = effective_due(due, extension)
    closed_at = cutoff(due, late_policy, grace_seconds)
    if closed_at is not None and student and timestamp > closed_at:
        # Only a student is turned away: instructors submit test copies.
        raise ApiError(403, closed_message(closed_at))
    submission_pk = ctx.session.execute(
        prepared(
            'insert submission',
            lambda: insert(_SUBMISSIONS).returning(_SUBMISSIONS.c._id),
        ),
        {
            'assignment_id': assignment_pk,
            'student_id': ctx.actor.name,
            'timestamp': timestamp,
            'due': due,
        },
    ).scalar_one()
    insert_tree(ctx, tree, submission_id=submission_pk)
    record(
        ctx,
        'submit',
        course_id,
        assignment=assignment_id,
        student=ctx.actor.name,
        timestamp=timestamp,
        moved=uploaded(tree),
    )
    return {'timestamp': format_timestamp(timestamp), **lateness(timestamp, due)}


_SUBMISSIONS = Submission.__table__
_EXTENSIONS = Extension.__table__


def _latest_of_caller(assignment_pk):
    """The latest timestamp of the caller (``:actor``) in the assignment."""
    return select(func.max(_SUBMISSIONS.c.timestamp)).where(
        _SUBMISSIONS.c.assignment_id == assignment_pk,
        _SUBMISSIONS.c.student_id == bindparam('actor'),
    )


def _target_columns() -> tuple:
    """What a submit reads of the assignment selected, for the caller
    (``:actor``): its pk, the caller's latest timestamp there, the deadline
    (due date, late policy, grace), the caller's extension, and whether the
    caller is a student of the course (the only ones a deadline refuses)."""
    assignment = ASSIGNMENTS.c._id
    extension = select(_EXTENSIONS.c.due).where(
        _EXTENSIONS.c.assignment_id == assignment,
        _EXTENSIONS.c.student_id == bindparam('actor'),
    )
    student = exists().where(
        ROSTER.c.course_id == ASSIGNMENTS.c.course_id,
        ROSTER.c.user_id == bindparam('actor'),
        ROSTER.c.role == STUDENT,
    )
    return (
        assignment,
        _latest_of_caller(assignment).scalar_subquery(),
        ASSIGNMENTS.c.due,
        ASSIGNMENTS.c.late_policy,
        ASSIGNMENTS.c.grace_seconds,
        extension.scalar_subquery(),
        student,
    )


def _submit_target(ctx: Context, course_id: str, assignment_id: str) -> tuple | None:
    """The row of :func:`_target_columns` in one Core statement that takes
    the long way's locks (both rows ``KEEP``), when the caller may submit;
    None otherwise (see :mod:`.lookup`)."""
    names = (course_id, assignment_id, ctx.actor.name)
    if not all(can_exist(name) for name in names):
        return None
    admin = ctx.actor.is_admin

    def build():
        query = write_target(*_target_columns(), admin=admin)
        return locking(query, (KEEP, (COURSES, ASSIGNMENTS)))

    row = ctx.session.execute(
        prepared(('submit target', admin), build),
        {'course': course_id, 'assignment': assignment_id, 'actor': ctx.actor.name},
    ).first()
    return None if row is None else tuple(row)


def _deadline_target(ctx: Context, assignment_pk: int) -> tuple:
    """:func:`_target_columns` of an assignment the long way found."""
    statement = prepared(
        'submit target by pk',
        lambda: select(*_target_columns()).where(ASSIGNMENTS.c._id == bindparam('pk')),
    )
    row = ctx.session.execute(
        statement, {'pk': assignment_pk, 'actor': ctx.actor.name}
    ).one()
    return tuple(row)


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
    return answer_of_files(rows, with_lateness=True)


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
        **lateness(submission.timestamp, submission.due),
        'files': list_tree(submission.files),
    }


def collect_submission(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    """:func:`get_submission`, downloaded: recorded as a ``collect``."""
    answer = get_submission(ctx, course_id, assignment_id, student_id, timestamp)
    record_download(ctx, 'collect', course_id, assignment_id, student_id, answer)
    return answer
