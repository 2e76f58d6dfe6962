"""The debug actions of the welcome page: dump, clear, init.

``clear`` and ``init`` answer ``done`` and ``init`` loads the sample data of
ngshare 0.6.0, so that scripts and test suites written against 0.6.0's
debug mode (its own test suite among them) run unchanged.
"""

from __future__ import annotations

import datetime

from sqlalchemy import delete, select, text

from ..blobs.store import blob_key
from ..database.models import (
    INSTRUCTOR,
    STUDENT,
    Assignment,
    Base,
    Course,
    File,
    HistoryEntry,
    RosterEntry,
    Submission,
    User,
)
from ..filetree import TreeFile, md5_hex
from ..timestamps import format_timestamp, utc_now
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
    """Remove everything but the calling user. The history goes too: its
    rows name courses rather than refer to them, so no cascade takes them.

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
    ctx.session.execute(delete(HistoryEntry))
    ctx.session.execute(delete(User).where(User.id != ctx.actor.name))
    return {'message': DONE}


# ngshare 0.6.0's sample data (its ``init_db``), which its own test suite and
# scripts written against it expect: who is in which course, the
# assignments, lawrence's two submissions to ``challenge`` (the first with
# feedback), and the file names and contents. Names and emails of the
# roster are unset (null), as there.
SAMPLE_COURSES = {
    'course1': {
        'instructors': ['kevin'],
        'students': ['lawrence'],
        'assignments': {'challenge': {'file2': b'22222'}},
    },
    'course2': {
        'instructors': ['abigail'],
        'students': ['eric'],
        'assignments': {
            'assignment2a': {'file0': b'00000'},
            'assignment2b': {'file1': b'11111'},
        },
    },
}
# (course, assignment, student): submissions, oldest first, as
# (timestamp or None for "now", files, feedback files).
SAMPLE_SUBMISSIONS = {
    ('course1', 'challenge', 'lawrence'): [
        (datetime.datetime(2020, 1, 1), {'file3': b'33333'}, {'file5': b'55555'}),
        (None, {'file4': b'44444'}, {}),
    ],
}
DONE = 'done'


def init(ctx: Context) -> dict:
    """Load 0.6.0's sample data; courses that already exist are left alone."""
    created = {}
    for course_id, sample in SAMPLE_COURSES.items():
        if ctx.session.scalar(select(Course).where(Course.id == course_id)):
            continue
        course = Course(id=course_id)
        ctx.session.add(course)
        ctx.session.flush()
        for role, key in ((INSTRUCTOR, 'instructors'), (STUDENT, 'students')):
            for name in sample[key]:
                ensure_user(ctx.session, name)
                course.roster.append(RosterEntry(user_id=name, role=role))
        for assignment_id, files in sample['assignments'].items():
            assignment = Assignment(id=assignment_id, course_id=course._id)
            assignment.files = _tree(ctx, files)
            ctx.session.add(assignment)
            created[course_id, assignment_id] = assignment
    ctx.session.flush()
    for (course_id, assignment_id, student), rows in SAMPLE_SUBMISSIONS.items():
        assignment = created.get((course_id, assignment_id))
        if assignment is None:
            continue
        for timestamp, files, feedback in rows:
            submission = Submission(
                assignment_id=assignment._id,
                student_id=student,
                timestamp=timestamp or utc_now(),
            )
            submission.files = _tree(ctx, files)
            submission.feedback = _tree(ctx, feedback)
            ctx.session.add(submission)
    ctx.session.flush()
    return {'message': DONE}


def _tree(ctx: Context, files: dict[str, bytes]) -> list[File]:
    return store_tree(
        ctx,
        [
            TreeFile(path, content, md5_hex(content), blob_key(content))
            for path, content in files.items()
        ],
    )
