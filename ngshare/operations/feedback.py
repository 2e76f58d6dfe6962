"""Feedback on a submission: upload (replacing the old) and download."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, delete

from ..database.models import INSTRUCTOR, File, Submission
from ..database.prepared import prepared
from ..names import can_exist
from ..permissions import require_instructor, require_self_or_instructor
from ..timestamps import format_timestamp, parsed_or_none
from .context import Context
from .history import record, record_download, uploaded
from .lookup import (
    ASSIGNMENTS,
    COURSES,
    EXCLUSIVE,
    KEEP,
    find_assignment,
    find_course,
    find_student_submission,
    locking,
    write_target,
)
from .shortcuts import answer_of_files, feedback_files
from .trees import insert_tree, list_tree, release_blobs, upload_tree
from .uploads import PreparedUpload


def _submission_at(
    ctx: Context, course, assignment_id, student_id, timestamp, *, write=False
):
    assignment = find_assignment(
        ctx.session, course, assignment_id, lock=KEEP if write else None
    )
    return find_student_submission(
        ctx.session,
        course,
        assignment,
        student_id,
        timestamp,
        required=True,
        lock=EXCLUSIVE if write else None,
    )


def upload_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
    files: PreparedUpload | str | None,
) -> dict:
    # Two uploads for one submission queue on its row: the second reads the
    # feedback the first committed and replaces it whole (last wins).
    submission_pk = _feedback_target(
        ctx, course_id, assignment_id, student_id, timestamp
    )
    if submission_pk is None:
        # A refusal (or a race lost to a delete): the long way answers it.
        course = find_course(ctx.session, course_id, lock=KEEP)
        require_instructor(ctx.session, ctx.actor, course)
        submission_pk = _submission_at(
            ctx, course, assignment_id, student_id, timestamp, write=True
        )._id
    tree = upload_tree(ctx, files)
    # The old feedback's rows go, and their blobs are released, in one
    # statement (none: nothing deleted, nothing released).
    old = ctx.session.scalars(
        prepared(
            'delete feedback',
            lambda: (
                delete(_FILES)
                .where(_FILES.c.feedback_id == bindparam('submission'))
                .returning(_FILES.c.actual_name)
            ),
        ),
        {'submission': submission_pk},
    ).all()
    release_blobs(ctx, old)
    insert_tree(ctx, tree, feedback_id=submission_pk)
    record(
        ctx,
        'release_feedback',
        course_id,
        assignment=assignment_id,
        student=student_id,
        timestamp=parsed_or_none(timestamp),
        moved=uploaded(tree),
    )
    return {}


_FILES = File.__table__
_SUBMISSIONS = Submission.__table__


def _feedback_target(
    ctx: Context, course_id, assignment_id, student_id, timestamp
) -> int | None:
    """The pk of the student's submission at ``timestamp``, in one Core
    statement that takes the long way's locks (course and assignment
    ``KEEP``, the submission ``EXCLUSIVE``), when the caller may upload its
    feedback; None otherwise (see :mod:`.lookup`)."""
    when = parsed_or_none(timestamp)
    names = (course_id, assignment_id, student_id, ctx.actor.name)
    if when is None or not all(can_exist(name) for name in names):
        return None
    admin = ctx.actor.is_admin

    def build():
        query = write_target(_SUBMISSIONS.c._id, admin=admin, role=INSTRUCTOR).join(
            _SUBMISSIONS,
            and_(
                _SUBMISSIONS.c.assignment_id == ASSIGNMENTS.c._id,
                _SUBMISSIONS.c.student_id == bindparam('student'),
                _SUBMISSIONS.c.timestamp == bindparam('when'),
            ),
        )
        return locking(
            query, (KEEP, (COURSES, ASSIGNMENTS)), (EXCLUSIVE, (_SUBMISSIONS,))
        )

    values = {
        'course': course_id,
        'assignment': assignment_id,
        'student': student_id,
        'when': when,
        'actor': ctx.actor.name,
    }
    return ctx.session.scalar(prepared(('feedback target', admin), build), values)


def fetched_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
    limit: int | None = None,
) -> dict | None:
    """``get_feedback``'s answer when one statement gives it (see
    :mod:`.shortcuts`; at most ``limit`` files), else None."""
    when = parsed_or_none(timestamp)
    rows = when and feedback_files(
        ctx.session, ctx.actor, course_id, assignment_id, student_id, when, limit
    )
    if not rows:
        return None
    return answer_of_files(rows)


def get_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    answer = fetched_feedback(ctx, course_id, assignment_id, student_id, timestamp)
    if answer is not None:
        return answer
    course = find_course(ctx.session, course_id)
    require_self_or_instructor(ctx.session, ctx.actor, course, student_id)
    submission = _submission_at(ctx, course, assignment_id, student_id, timestamp)
    return {
        'timestamp': format_timestamp(submission.timestamp),
        'files': list_tree(submission.feedback),
    }


def fetch_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    """:func:`get_feedback`, downloaded: recorded as the student's
    ``fetch_feedback`` when there was feedback to fetch (``nbgrader
    fetch_feedback`` asks for every submission, most of which may have none
    yet); an instructor's look at it is not, as for :func:`fetch_assignment`."""
    answer = get_feedback(ctx, course_id, assignment_id, student_id, timestamp)
    if answer['files'] and ctx.actor.name == student_id:
        record_download(
            ctx, 'fetch_feedback', course_id, assignment_id, student_id, answer
        )
    return answer
