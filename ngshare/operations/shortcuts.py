"""One statement for the lists that every student asks for, most of the time.

``nbgrader list`` asks for a course's assignments and for the caller's own
submissions, for every student, over and over. Answered step by step, such
a list costs three or four statements (the course, the caller's role, the
assignment, whether the student is known) before the one that reads the
list. When the list is not empty, everything those steps check is implied
by one statement that joins them: the course and assignment exist (the
rows join), the caller may read it (the roster condition), and the student
is known (they have submissions). So that statement is tried first; when it
finds nothing (an empty list, or any refusal), the caller goes the long way,
which gives exactly the answer and message it always gave.

Each function returns the rows, or None for "go the long way". Names that
cannot exist (:func:`ngshare.names.can_exist`) always go the long way. With
a ``limit``, more rows than that are "the long way" too: the event loop
answers these lists itself on SQLite (:mod:`.quick`), only when they are
small.
"""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from ..actor import Actor
from ..database.models import (
    INSTRUCTOR,
    STUDENT,
    Assignment,
    Course,
    Extension,
    File,
    RosterEntry,
    Submission,
)
from ..database.prepared import prepared
from ..deadlines import lateness
from ..names import can_exist
from ..timestamps import format_timestamp
from .trees import list_tree

__all__ = [
    'answer_of_files',
    'assignment_list_columns',
    'assignment_rows',
    'feedback_files',
    'student_submissions',
    'submission_files',
]


def _member_of_course(*roles_allowed) -> object:
    """The caller (``:actor``) has a roster entry in the course joined."""
    return exists().where(
        RosterEntry.course_id == Course._id,
        RosterEntry.user_id == bindparam('actor'),
        *roles_allowed,
    )


def _bounded(result, limit: int | None) -> list | None:
    """The rows of ``result``, or None when there are none or more than
    ``limit`` (only ``limit`` + 1 are ever fetched)."""
    rows = result.all() if limit is None else result.fetchmany(limit + 1)
    if not rows or (limit is not None and len(rows) > limit):
        return None
    return rows


def assignment_list_columns() -> tuple:
    """What a course's assignment list answers of each assignment: its
    name and deadline, and the caller's (``:actor``) extension to it."""
    extension = (
        select(Extension.due)
        .where(
            Extension.assignment_id == Assignment._id,
            Extension.student_id == bindparam('actor'),
        )
        .scalar_subquery()
        .label('extension')
    )
    return (
        Assignment.id,
        Assignment.due,
        Assignment.late_policy,
        Assignment.grace_seconds,
        extension,
    )


def assignment_rows(
    session: Session, actor: Actor, course_id: str, limit: int | None = None
) -> list | None:
    """``list_assignments``: the rows of :func:`assignment_list_columns`,
    for a member (or an admin)."""
    if not (can_exist(course_id) and can_exist(actor.name)):
        return None

    def build():
        query = (
            select(*assignment_list_columns())
            .join(Course, Course._id == Assignment.course_id)
            .where(Course.id == bindparam('course'))
            .order_by(Assignment._id)
        )
        return query if actor.is_admin else query.where(_member_of_course())

    statement = prepared(('assignment rows', actor.is_admin), build)
    values = {'course': course_id, 'actor': actor.name}
    return _bounded(session.execute(statement, values), limit)


def student_submissions(
    session: Session,
    actor: Actor,
    course_id: str,
    assignment_id: str,
    student_id: str,
    limit: int | None = None,
) -> list | None:
    """``list_student_submissions``: the rows, for an admin, an instructor,
    or the student themself."""
    values = _values(actor, course_id, assignment_id, student_id)
    if values is None:
        return None
    kind = _reader_kind(actor, student_id)

    def build():
        # The columns an answer needs, not entities: no unit of work to fill.
        query = _of_student(
            select(Submission.student_id, Submission.timestamp, Submission.due)
        )
        return _readable_by(query.order_by(Submission.timestamp, Submission._id), kind)

    statement = prepared(('student submissions', kind), build)
    return _bounded(session.execute(statement, values), limit)


def feedback_files(
    session: Session,
    actor: Actor,
    course_id: str,
    assignment_id: str,
    student_id: str,
    when: datetime.datetime,
    limit: int | None = None,
) -> list | None:
    """``get_feedback``: the feedback's file rows (with the submission's
    timestamp) of the submission at ``when``, for an admin, an instructor,
    or the student themself."""
    values = _values(actor, course_id, assignment_id, student_id, when=when)
    if values is None:
        return None
    kind = _reader_kind(actor, student_id)

    def build():
        query = _of_student(
            select(*_FILE_COLUMNS).join(Submission, Submission._id == File.feedback_id)
        )
        query = query.where(Submission.timestamp == bindparam('when'))
        return _readable_by(query.order_by(File._id), kind)

    statement = prepared(('feedback files', kind), build)
    return _bounded(session.execute(statement, values), limit)


def submission_files(
    session: Session,
    actor: Actor,
    course_id: str,
    assignment_id: str,
    student_id: str,
    when: datetime.datetime | None,
    limit: int | None = None,
) -> list | None:
    """``get_submission`` (collect): the file rows (with the submission's
    timestamp) of the submission at ``when``, or of the latest one when it
    is None, for an instructor or an admin."""
    values = _values(actor, course_id, assignment_id, student_id, when=when)
    if values is None:
        return None
    kind = 'admin' if actor.is_admin else 'other'
    at = 'latest' if when is None else 'at'

    def build():
        chosen = _of_student(select(Submission._id))
        if at == 'at':
            chosen = chosen.where(Submission.timestamp == bindparam('when'))
        chosen = chosen.order_by(Submission.timestamp.desc(), Submission._id.desc())
        chosen = _readable_by(chosen.limit(1), kind).scalar_subquery()
        return (
            select(*_FILE_COLUMNS)
            .join(Submission, Submission._id == File.submission_id)
            .where(Submission._id == chosen)
            .order_by(File._id)
        )

    statement = prepared(('submission files', kind, at), build)
    return _bounded(session.execute(statement, values), limit)


def answer_of_files(rows, *, with_lateness: bool = False) -> dict:
    """The answer (``timestamp``, ``files``) of the rows of
    :func:`submission_files` or :func:`feedback_files`; a collect's answer
    also says how late the submission was."""
    first = rows[0]
    answer = {'timestamp': format_timestamp(first.timestamp)}
    if with_lateness:
        answer.update(lateness(first.timestamp, first.due))
    answer['files'] = list_tree(rows)
    return answer


# What an answer needs of a file (as trees.list_tree reads it), and the
# submission's timestamp and due date.
_FILE_COLUMNS = (
    File.filename,
    File.checksum,
    File.actual_name,
    File.size,
    Submission.timestamp,
    Submission.due,
)


def _values(actor: Actor, course_id, assignment_id, student_id, **more) -> dict | None:
    """The bound values of a student's shortcut; None when a name cannot
    exist (the long way answers it without a query)."""
    names = (course_id, assignment_id, student_id, actor.name)
    if not all(can_exist(name) for name in names):
        return None
    values = {
        'course': course_id,
        'assignment': assignment_id,
        'student': student_id,
        'actor': actor.name,
    }
    values.update((name, value) for name, value in more.items() if value is not None)
    return values


def _of_student(query):
    """``query`` (which reads ``submissions``) limited to ``:student``'s
    submissions to ``:assignment`` of ``:course``."""
    return (
        query.join(Assignment, Assignment._id == Submission.assignment_id)
        .join(Course, Course._id == Assignment.course_id)
        .where(
            Course.id == bindparam('course'),
            Assignment.id == bindparam('assignment'),
            Submission.student_id == bindparam('student'),
        )
    )


def _reader_kind(actor: Actor, student_id: str) -> str:
    """Who reads a student's things: ``admin``; ``self`` (a student reads
    their own, an instructor anyone's); ``other`` (only an instructor)."""
    if actor.is_admin:
        return 'admin'
    return 'self' if actor.name == student_id else 'other'


def _readable_by(query, kind: str):
    """``query`` limited to a caller of ``kind`` allowed to read it, as
    :func:`ngshare.permissions.require_self_or_instructor` decides."""
    if kind == 'admin':
        return query
    if kind == 'self':
        roles = RosterEntry.role.in_([INSTRUCTOR, STUDENT])
    else:
        roles = RosterEntry.role == INSTRUCTOR
    return query.where(_member_of_course(roles))
