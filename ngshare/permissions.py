"""Who may do what: the documentation's role annotations, in one place.

Each check reads like the annotation it implements: "(admins)",
"(instructors only)", "(instructors+students)", "students restricted to
their own". Admins may do everything an instructor of any course may do.
Each refusal names its reason in 0.6.0's words, shown in debug mode only
(see :mod:`.errors`).
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from .database.models import INSTRUCTOR, STUDENT, Course, RosterEntry
from .errors import permission_denied

# The reasons of refusals (debug mode only), as 0.6.0 worded them.
NOT_ADMIN = 'not admin'
NOT_INSTRUCTOR = 'not course instructor'
NOT_MEMBER = 'not related to course'


@dataclasses.dataclass(frozen=True)
class Actor:
    """The authenticated caller of a request."""

    name: str
    is_admin: bool = False


def role_in(session: Session, actor: Actor, course: Course) -> str | None:
    """The caller's role in ``course``: 'instructor', 'student' or None."""
    return session.scalar(
        select(RosterEntry.role).where(
            RosterEntry.course_id == course._id, RosterEntry.user_id == actor.name
        )
    )


def require_admin(actor: Actor) -> None:
    """(admins)"""
    if not actor.is_admin:
        raise permission_denied(NOT_ADMIN)


def require_instructor(session: Session, actor: Actor, course: Course) -> None:
    """(instructors only)"""
    if actor.is_admin:
        return
    if role_in(session, actor, course) != INSTRUCTOR:
        raise permission_denied(NOT_INSTRUCTOR)


def require_member(session: Session, actor: Actor, course: Course) -> None:
    """(instructors+students)"""
    if actor.is_admin:
        return
    if role_in(session, actor, course) is None:
        raise permission_denied(NOT_MEMBER)


def require_self_or_instructor(
    session: Session, actor: Actor, course: Course, student_id: str
) -> None:
    """(instructors+students, students restricted to their own)"""
    if actor.is_admin:
        return
    role = role_in(session, actor, course)
    if role == INSTRUCTOR or (role == STUDENT and actor.name == student_id):
        return
    raise permission_denied(NOT_INSTRUCTOR)
