"""Courses: list, create, delete."""

from __future__ import annotations

from sqlalchemy import select

from ..database.models import INSTRUCTOR, Course, RosterEntry
from ..errors import bad_request, conflict
from ..jsonfields import parse_field
from ..names import is_storable, require_new_name
from ..permissions import require_admin
from .context import Context
from .deleted import keep_deleted_course
from .history import forget_course, hide_course, record, record_many
from .lookup import DELETE, course_exists, ensure_user, files_of_course, find_course
from .trees import release_blobs


def list_courses(ctx: Context) -> dict:
    """Admins: every course. Others: the courses they teach or take."""
    query = select(Course.id)
    if not ctx.actor.is_admin:
        query = query.join(RosterEntry).where(RosterEntry.user_id == ctx.actor.name)
    return {'courses': sorted(set(ctx.session.scalars(query)))}


def create_course(ctx: Context, course_id: str, instructors_json: str | None) -> dict:
    require_admin(ctx.actor)
    instructors = _parse_instructors(instructors_json)
    if course_exists(ctx.session, course_id):
        raise conflict('Course already exists')
    require_new_name(course_id)
    course = Course(id=course_id)
    ctx.session.add(course)
    names = list(dict.fromkeys(instructors))
    # New users are created in name order, whatever the request's order: two
    # courses created at once with the same new instructors never wait for
    # each other's users in a cycle (a deadlock on PostgreSQL).
    for name in sorted(names):
        ensure_user(ctx.session, name)
    for name in names:
        course.roster.append(RosterEntry(user_id=name, role=INSTRUCTOR))
    ctx.session.flush()
    record(ctx, 'create_course', course_id)
    record_many(ctx, 'add_instructor', course_id, names)
    return {}


def _parse_instructors(instructors_json: str | None) -> list[str]:
    if instructors_json is None:
        return []
    instructors = parse_field(instructors_json, 'Instructors cannot be JSON decoded')
    if not isinstance(instructors, list) or not all(
        isinstance(name, str) and name and is_storable(name) for name in instructors
    ):
        raise bad_request('Instructors cannot be JSON decoded')
    return instructors


def delete_course(ctx: Context, course_id: str) -> dict:
    """Remove the course with everything in it.

    The course row is locked first (by admins only, who may delete): every
    write in the course in flight commits before the course is read (and
    kept restorable) whole, later ones find it gone (404).
    """
    lock = DELETE if ctx.actor.is_admin else None
    course = find_course(ctx.session, course_id, lock=lock)
    require_admin(ctx.actor)
    if ctx.keep_deleted:
        item = keep_deleted_course(ctx, course)
        hide_course(ctx.session, course_id, item._id)
    else:
        # Nothing is kept to purge later: its history goes now.
        release_blobs(ctx, files_of_course(ctx.session, course))
        forget_course(ctx.session, course_id)
    ctx.session.delete(course)
    record(ctx, 'delete_course', course_id)
    return {}
