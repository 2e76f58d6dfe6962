"""Feedback on a submission: upload (replacing the old) and download."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select

from ..database.models import File
from ..database.prepared import prepared
from ..permissions import require_instructor, require_self_or_instructor
from ..timestamps import format_timestamp, parsed_or_none
from .context import Context
from .lookup import (
    EXCLUSIVE,
    KEEP,
    find_assignment,
    find_course,
    find_student_submission,
)
from .shortcuts import feedback_files
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
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    submission = _submission_at(
        ctx, course, assignment_id, student_id, timestamp, write=True
    )
    tree = upload_tree(ctx, files)
    old = ctx.session.scalars(
        prepared(
            'feedback keys',
            lambda: select(File.actual_name).where(
                File.feedback_id == bindparam('submission')
            ),
        ),
        {'submission': submission._id},
    ).all()
    if old:
        release_blobs(ctx, old)
        ctx.session.execute(
            delete(File).where(File.feedback_id == submission._id),
            execution_options={'synchronize_session': False},
        )
    insert_tree(ctx, tree, feedback_id=submission._id)
    return {}


def get_feedback(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    student_id: str,
    timestamp: str | None,
) -> dict:
    when = parsed_or_none(timestamp)
    rows = when and feedback_files(
        ctx.session, ctx.actor, course_id, assignment_id, student_id, when
    )
    if rows:
        return {
            'timestamp': format_timestamp(rows[0].timestamp),
            'files': list_tree(rows),
        }
    course = find_course(ctx.session, course_id)
    require_self_or_instructor(ctx.session, ctx.actor, course, student_id)
    submission = _submission_at(ctx, course, assignment_id, student_id, timestamp)
    return {
        'timestamp': format_timestamp(submission.timestamp),
        'files': list_tree(submission.feedback),
    }
