"""Assignments: list, fetch, release, delete."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, insert, select

from ..database.models import INSTRUCTOR, STUDENT, Assignment
from ..database.prepared import prepared
from ..errors import conflict
from ..names import can_exist, require_new_name
from ..permissions import require_instructor, require_member
from .context import Context
from .deadlines import deadline_answer, deadline_columns
from .deleted import keep_deleted_assignment
from .history import downloaded, record, uploaded
from .lookup import (
    ASSIGNMENTS,
    COURSES,
    DELETE,
    KEEP,
    assignment_exists,
    caller_on_roster,
    files_of_assignments,
    find_assignment,
    find_course,
    locking,
)
from .shortcuts import assignment_list_columns, assignment_rows
from .trees import insert_tree, list_tree, release_blobs, upload_tree
from .uploads import PreparedUpload


def _listed(rows) -> dict:
    """The answer of the rows of :func:`.shortcuts.assignment_list_columns`:
    the names, and each one's deadline as it applies to the caller."""
    return {
        'assignments': [row.id for row in rows],
        'deadlines': {
            row.id: deadline_answer(
                row.due, row.late_policy, row.grace_seconds, row.extension
            )
            for row in rows
        },
    }


def listed_assignments(
    ctx: Context, course_id: str, limit: int | None = None
) -> dict | None:
    """``list_assignments``'s answer when one statement gives it (see
    :mod:`.shortcuts`; at most ``limit`` assignments), else None."""
    rows = assignment_rows(ctx.session, ctx.actor, course_id, limit)
    return None if rows is None else _listed(rows)


def list_assignments(ctx: Context, course_id: str) -> dict:
    answer = listed_assignments(ctx, course_id)
    if answer is not None:
        return answer
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    statement = prepared(
        'assignments of a course',
        lambda: (
            select(*assignment_list_columns())
            .where(Assignment.course_id == bindparam('course'))
            .order_by(Assignment._id)
        ),
    )
    rows = ctx.session.execute(
        statement, {'course': course._id, 'actor': ctx.actor.name}
    )
    return _listed(rows.all())


def get_assignment(ctx: Context, course_id: str, assignment_id: str) -> dict:
    """The released files (``list_only``: a look, not a fetch)."""
    return {'files': _released_files(ctx, course_id, assignment_id)[0]}


def fetch_assignment(ctx: Context, course_id: str, assignment_id: str) -> dict:
    """The released files, downloaded: a student's download is recorded as
    their ``fetch`` (an instructor's or an admin's look at them is not)."""
    files, role = _released_files(ctx, course_id, assignment_id)
    if role == STUDENT:
        record(
            ctx,
            'fetch',
            course_id,
            assignment=assignment_id,
            student=ctx.actor.name,
            moved=downloaded(files),
        )
    return {'files': files}


def _released_files(ctx: Context, course_id: str, assignment_id: str):
    """(the files of the assignment, the caller's role: None for an admin)."""
    course = find_course(ctx.session, course_id)
    role = require_member(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    return list_tree(assignment.files), role


def release_assignment(
    ctx: Context,
    course_id: str,
    assignment_id: str,
    files: PreparedUpload | str | None,
    deadline: dict | None = None,
) -> dict:
    """Release an assignment, with the optional deadline fields
    ``deadline`` (``due``, ``late_policy``, ``grace_seconds``; checked after
    every documented error, see :func:`.deadlines.deadline_columns`)."""
    # The course stays until this commits; a concurrent release of the same
    # name is caught by the unique constraint (the loser's retry answers 409).
    target = _release_target(ctx, course_id, assignment_id)
    if target is None:
        # A refusal (or a race lost to a delete): the long way answers it.
        course = find_course(ctx.session, course_id, lock=KEEP)
        require_instructor(ctx.session, ctx.actor, course)
        target = course._id, assignment_exists(ctx.session, course, assignment_id)
    course_pk, exists_already = target
    if exists_already:
        raise conflict('Assignment already exists')
    require_new_name(assignment_id)
    tree = upload_tree(ctx, files)
    assignment_pk = ctx.session.execute(
        prepared(
            'insert assignment',
            lambda: insert(ASSIGNMENTS).returning(ASSIGNMENTS.c._id),
        ),
        {
            'id': assignment_id,
            'course_id': course_pk,
            **deadline_columns(deadline or {}),
        },
    ).scalar_one()
    insert_tree(ctx, tree, assignment_id=assignment_pk)
    record(ctx, 'release', course_id, assignment=assignment_id, moved=uploaded(tree))
    return {}


def _release_target(
    ctx: Context, course_id: str, assignment_id: str
) -> tuple[int, bool] | None:
    """(course pk, whether the assignment exists) in one Core statement
    that takes the long way's lock (the course ``KEEP``), when the caller
    may release; None otherwise (see :mod:`.lookup`)."""
    names = (course_id, assignment_id, ctx.actor.name)
    if not all(can_exist(name) for name in names):
        return None
    admin = ctx.actor.is_admin

    def build():
        named = exists().where(
            ASSIGNMENTS.c.course_id == COURSES.c._id,
            ASSIGNMENTS.c.id == bindparam('assignment'),
        )
        query = select(COURSES.c._id, named).where(COURSES.c.id == bindparam('course'))
        if not admin:
            query = query.where(caller_on_roster(INSTRUCTOR))
        return locking(query, (KEEP, (COURSES,)))

    row = ctx.session.execute(
        prepared(('release target', admin), build),
        {'course': course_id, 'assignment': assignment_id, 'actor': ctx.actor.name},
    ).first()
    return None if row is None else (row[0], bool(row[1]))


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
    record(ctx, 'unrelease', course_id, assignment=assignment_id)
    return {}
