"""Feedback on a submission: upload (replacing the old) and download."""

from __future__ import annotations

from ..errors import bad_request
from ..permissions import require_instructor, require_self_or_instructor
from ..timestamps import format_timestamp, parse_timestamp
from .context import Context
from .lookup import (
    EXCLUSIVE,
    KEEP,
    find_assignment,
    find_course,
    find_submission,
    require_student_found,
)
from .trees import list_tree, release_blobs, store_tree, upload_tree
from .uploads import PreparedUpload


def _submission_at(
    ctx: Context, course, assignment_id, student_id, timestamp, *, write=False
):
    assignment = find_assignment(
        ctx.session, course, assignment_id, lock=KEEP if write else None
    )
    require_student_found(ctx.session, course, assignment, student_id)
    if timestamp is None:
        raise bad_request('Please supply timestamp')
    when = parse_timestamp(timestamp)
    return find_submission(
        ctx.session, assignment, student_id, when, lock=EXCLUSIVE if write else None
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
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    submission = _submission_at(
        ctx, course, assignment_id, student_id, timestamp, write=True
    )
    tree = upload_tree(ctx, files)
    release_blobs(ctx, [row.actual_name for row in submission.feedback])
    submission.feedback = store_tree(ctx, tree)
    ctx.session.flush()
    return {}


def get_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    course = find_course(ctx.session, course_id)
    require_self_or_instructor(ctx.session, ctx.actor, course, student_id)
    submission = _submission_at(ctx, course, assignment_id, student_id, timestamp)
    return {
        'timestamp': format_timestamp(submission.timestamp),
        'files': list_tree(submission.feedback),
    }
