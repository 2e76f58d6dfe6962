"""Assignments: list, fetch, release, delete."""

from __future__ import annotations

from sqlalchemy import select

from ..database.models import Assignment
from ..errors import conflict
from ..names import require_new_name
from ..permissions import require_instructor, require_member
from .context import Context
from .deleted import keep_deleted_assignment
from .lookup import (
    DELETE,
    KEEP,
    assignment_exists,
    files_of_assignments,
    find_assignment,
    find_course,
)
from .shortcuts import assignment_names
from .trees import list_tree, release_blobs, store_tree, upload_tree
from .uploads import PreparedUpload


def list_assignments(ctx: Context, course_id: str) -> dict:
    names = assignment_names(ctx.session, ctx.actor, course_id)
    if names is not None:
        return {'assignments': names}
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    names = ctx.session.scalars(
        select(Assignment.id)
        .where(Assignment.course_id == course._id)
        .order_by(Assignment._id)
    )
    return {'assignments': list(names)}


def get_assignment(ctx: Context, course_id: str, assignment_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    return {'files': list_tree(assignment.files)}


def release_assignment(
    ctx: Context, course_id: str, assignment_id: str, files: PreparedUpload | str | None
) -> dict:
    # The course stays until this commits; a concurrent release of the same
    # name is caught by the unique constraint (the loser's retry answers 409).
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    if assignment_exists(ctx.session, course, assignment_id):
        raise conflict('Assignment already exists')
    require_new_name(assignment_id)
    tree = upload_tree(ctx, files)
    assignment = Assignment(id=assignment_id, course_id=course._id)
    assignment.files = store_tree(ctx, tree)
    ctx.session.add(assignment)
    ctx.session.flush()
    return {}


def delete_assignment(ctx: Context, course_id: str, assignment_id: str) -> dict:
    """Remove the assignment with all its submissions and feedback.

    The assignment's row is locked first: submissions and feedback uploads
    in flight commit before it is read (and kept restorable) whole, later
    ones find it gone (404), and of two deletes the second answers 404.
    """
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id, lock=DELETE)
    if ctx.keep_deleted:
        keep_deleted_assignment(ctx, course, assignment)
    else:
        release_blobs(ctx, files_of_assignments(ctx.session, [assignment._id]))
    ctx.session.delete(assignment)
    return {}
