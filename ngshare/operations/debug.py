"""The debug actions of the welcome page: dump, clear, init."""

from __future__ import annotations

import datetime

from sqlalchemy import delete, select, text

from ..database.models import (
    INSTRUCTOR,
    STUDENT,
    Assignment,
    Base,
    Course,
    File,
    RosterEntry,
    User,
)
from ..filetree import TreeFile, md5_hex
from ..timestamps import format_timestamp
from .context import Context
from .lookup import ensure_user
from .trees import release_blobs, store_tree


def dump(ctx: Context) -> dict:
    """Every row of every table, as JSON-ready lists."""
    tables = {}
    for table in Base.metadata.sorted_tables:
        rows = ctx.session.execute(select(table).order_by(*table.primary_key))
        tables[table.name] = [
            {key: _jsonable(value) for key, value in row._mapping.items()}
            for row in rows
        ]
    return tables


def _jsonable(value):
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    return value


def clear(ctx: Context) -> dict:
    """Remove everything but the calling user.

    On PostgreSQL the courses table is locked first (``EXCLUSIVE`` mode:
    plain reads go on, but every write, all of which lock a course row or
    insert one, waits), so the blobs released are exactly those of the rows
    deleted, and no row is added meanwhile that would then be removed
    without its blobs.
    """
    if ctx.session.get_bind().dialect.name == 'postgresql':
        ctx.session.execute(text('LOCK TABLE courses IN EXCLUSIVE MODE'))
    release_blobs(ctx, ctx.session.scalars(select(File.actual_name)))
    ctx.session.execute(delete(Course))
    ctx.session.execute(delete(User).where(User.id != ctx.actor.name))
    return {'message': 'Database cleared'}


SAMPLE_COURSES = {
    'course1': {'instructors': ['kevin', 'abigail'], 'students': ['lawrence', 'eric']},
    'course2': {'instructors': ['eric'], 'students': ['kevin', 'lawrence']},
}


def init(ctx: Context) -> dict:
    """Load a small sample: two courses with rosters and an assignment each."""

    for course_id, people in SAMPLE_COURSES.items():
        if ctx.session.scalar(select(Course).where(Course.id == course_id)):
            continue
        course = Course(id=course_id)
        ctx.session.add(course)
        ctx.session.flush()
        for role, key in ((INSTRUCTOR, 'instructors'), (STUDENT, 'students')):
            for name in people[key]:
                ensure_user(ctx.session, name)
                course.roster.append(
                    RosterEntry(
                        user_id=name,
                        role=role,
                        first_name=f'{name} first name',
                        last_name=f'{name} last name',
                        email=f'{name}@example.edu',
                    )
                )
        content = f'Welcome to {course_id}\n'.encode()
        assignment = Assignment(id='challenge', course_id=course._id)
        assignment.files = store_tree(
            ctx, [TreeFile('README.txt', content, md5_hex(content))]
        )
        ctx.session.add(assignment)
    ctx.session.flush()
    return {'message': 'Database initialized with sample data'}
