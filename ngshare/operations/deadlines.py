"""Deadlines: an assignment's due date and late policy, students' extensions.

The rules (what a due date, an extension and a policy mean) are
:mod:`ngshare.deadlines`; here they are read and written, and the answers
built that the listings reuse (:func:`deadline_answer`).

Locks (PostgreSQL, READ COMMITTED; see :mod:`.lookup`):

* :func:`set_deadline` locks the assignment's row for its update
  (:data:`~.lookup.EXCLUSIVE`, ``FOR NO KEY UPDATE``, as the ``UPDATE``
  would): submissions (``KEEP``) go on meanwhile, an extension waits.
* :func:`set_extension` and :func:`remove_extension` read the assignment
  ``FOR SHARE`` (:data:`SHARE`), which waits for a deadline change in
  flight: an extension is validated against the committed due date, never
  one being replaced. Extensions of different students do not wait for
  each other; two of the same student meet at the unique constraint
  (assignment, student), where the upsert makes the later one replace the
  earlier.
"""

from __future__ import annotations

import datetime
from types import MappingProxyType

from sqlalchemy import bindparam, delete, select

from ..database.models import (
    ACCEPT_LATE,
    INSTRUCTOR,
    STUDENT,
    Assignment,
    Extension,
)
from ..deadlines import (
    cutoff,
    effective_due,
    format_instant,
    parse_grace_seconds,
    parse_instant,
    parse_late_policy,
    require_future,
)
from ..errors import bad_request, not_found
from ..names import can_exist
from ..permissions import require_instructor, require_member, role_in
from ..timestamps import utc_now
from .context import Context
from .lookup import (
    EXCLUSIVE,
    KEEP,
    Lock,
    find_assignment,
    find_course,
    roster_entry,
    upsert_insert,
)

# ``FOR SHARE``: conflicts with the deadline's update (and a delete), not
# with another holder, nor with submissions' ``KEEP``.
SHARE: Lock = MappingProxyType({'read': True})

DEADLINE_FIELDS = ('due', 'late_policy', 'grace_seconds')
SUPPLY_DUE = 'Please supply due date'
NO_DUE_DATE = 'Assignment has no due date'
EARLIER_EXTENSION = 'Extension is earlier than the due date'
EXTENSION_NOT_FOUND = 'Extension not found'
STUDENT_NOT_FOUND = 'Student not found'


# Answers


def deadline_answer(
    due: datetime.datetime | None,
    late_policy: str,
    grace_seconds: int,
    extension_due: datetime.datetime | None = None,
) -> dict:
    """``{"due", "late_policy", "grace_seconds", "cutoff"}`` of an
    assignment, for a student with ``extension_due`` their own."""
    mine = effective_due(due, extension_due)
    return {
        'due': format_instant(mine),
        'late_policy': late_policy,
        'grace_seconds': grace_seconds,
        'cutoff': format_instant(cutoff(mine, late_policy, grace_seconds)),
    }


def extension_answer(assignment: Assignment, student_id: str, due) -> dict:
    """One extension: its date, and the cutoff it gives the student (None
    while the assignment has no due date or accepts late submissions)."""
    mine = effective_due(assignment.due, due)
    return {
        'student_id': student_id,
        'due': format_instant(due),
        'cutoff': format_instant(
            cutoff(mine, assignment.late_policy, assignment.grace_seconds)
        ),
    }


def _instructor_view(ctx: Context, assignment: Assignment) -> dict:
    rows = ctx.session.execute(
        select(Extension.student_id, Extension.due).where(
            Extension.assignment_id == assignment._id
        )
    ).all()
    # Sorted here, by code point: the same order on every database
    # (PostgreSQL's collation may differ from SQLite's).
    extensions = [
        extension_answer(assignment, student_id, due)
        for student_id, due in sorted(rows, key=lambda row: row[0])
    ]
    answer = deadline_answer(
        assignment.due, assignment.late_policy, assignment.grace_seconds
    )
    return {**answer, 'extensions': extensions}


def _extension_of(ctx: Context, assignment: Assignment, student_id: str):
    return ctx.session.scalar(
        select(Extension.due).where(
            Extension.assignment_id == bindparam('assignment'),
            Extension.student_id == bindparam('student'),
        ),
        {'assignment': assignment._id, 'student': student_id},
    )


def _student_view(ctx: Context, assignment: Assignment) -> dict:
    extension = _extension_of(ctx, assignment, ctx.actor.name)
    answer = deadline_answer(
        assignment.due, assignment.late_policy, assignment.grace_seconds, extension
    )
    mine = effective_due(assignment.due, extension)
    return {**answer, 'extended': mine is not None and mine != assignment.due}


# Operations


def get_deadline(ctx: Context, course_id: str, assignment_id: str) -> dict:
    """Instructors see the assignment's deadline and every extension, a
    student their own due date (extension included)."""
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id)
    if ctx.actor.is_admin or role_in(ctx.session, ctx.actor, course) == INSTRUCTOR:
        return _instructor_view(ctx, assignment)
    return _student_view(ctx, assignment)


def parse_deadline_fields(fields: dict, now: datetime.datetime) -> dict:
    """The columns that the given ``fields`` (``due``, ``late_policy``,
    ``grace_seconds``; None: not given) set, or 400. An empty ``due``
    means no due date; one in the past is refused."""
    values = {}
    due = fields.get('due')
    if due is not None:
        values['due'] = None
        if due != '':
            values['due'] = parse_instant(due)
            require_future(values['due'], now)
    if fields.get('late_policy') is not None:
        values['late_policy'] = parse_late_policy(fields['late_policy'])
    grace = fields.get('grace_seconds')
    if grace is not None:
        values['grace_seconds'] = parse_grace_seconds(grace)
    return values


def deadline_columns(fields: dict) -> dict:
    """The deadline columns of a new assignment from a release's optional
    ``fields`` (:func:`parse_deadline_fields`; the defaults for those not
    given: no due date, late submissions accepted, no grace)."""
    columns = {'due': None, 'late_policy': ACCEPT_LATE, 'grace_seconds': 0}
    return {**columns, **parse_deadline_fields(fields, utc_now())}


def set_deadline(
    ctx: Context, course_id: str, assignment_id: str, fields: dict
) -> dict:
    """Change the given fields of the assignment's deadline (instructors)."""
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id, lock=EXCLUSIVE)
    values = parse_deadline_fields(fields, utc_now())
    for name, value in values.items():
        setattr(assignment, name, value)
    ctx.session.flush()
    return _instructor_view(ctx, assignment)


def _extension_target(ctx: Context, course_id: str, assignment_id: str):
    """The assignment (read ``FOR SHARE``) after every documented refusal
    but the student's: course, permission, assignment."""
    course = find_course(ctx.session, course_id, lock=KEEP)
    require_instructor(ctx.session, ctx.actor, course)
    assignment = find_assignment(ctx.session, course, assignment_id, lock=SHARE)
    return course, assignment


def set_extension(
    ctx: Context, course_id: str, assignment_id: str, student_id: str, due: str | None
) -> dict:
    """Give a student of the course a later due date (creates or replaces)."""
    course, assignment = _extension_target(ctx, course_id, assignment_id)
    if roster_entry(ctx.session, course, student_id, STUDENT) is None:
        raise not_found(STUDENT_NOT_FOUND)
    if due is None:
        raise bad_request(SUPPLY_DUE)
    instant = parse_instant(due)
    if assignment.due is None:
        raise bad_request(NO_DUE_DATE)
    require_future(instant, utc_now())
    if instant < assignment.due:
        raise bad_request(EARLIER_EXTENSION)
    insert = upsert_insert(ctx.session, Extension.__table__)
    ctx.session.execute(
        insert.values(
            assignment_id=assignment._id, student_id=student_id, due=instant
        ).on_conflict_do_update(
            index_elements=['assignment_id', 'student_id'],
            set_={'due': insert.excluded.due},
        )
    )
    return extension_answer(assignment, student_id, instant)


def remove_extension(
    ctx: Context, course_id: str, assignment_id: str, student_id: str
) -> dict:
    """Remove a student's extension. An extension of someone no longer on
    the roster can still be removed; without one, a name that is no
    student of the course answers ``Student not found``."""
    course, assignment = _extension_target(ctx, course_id, assignment_id)
    if can_exist(student_id):
        removed = ctx.session.execute(
            delete(Extension).where(
                Extension.assignment_id == assignment._id,
                Extension.student_id == student_id,
            )
        )
        if removed.rowcount:
            return {}
    if roster_entry(ctx.session, course, student_id, STUDENT) is None:
        raise not_found(STUDENT_NOT_FOUND)
    raise not_found(EXTENSION_NOT_FOUND)
