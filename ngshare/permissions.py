"""Who may do what: the documentation's role annotations, in one place.

Each rule is a named function that reads like the annotation it implements:
"(admins)", "(instructors only)", "(instructors+students)", "students
restricted to their own", and the debug actions' "(admins, or anyone in
debug mode)". Admins may do everything an instructor of any course may do.
The ``may_*`` predicates answer yes or no (a page shows a button or not);
the ``require_*`` rules raise 403 ``Permission denied``, whose reason, in
0.6.0's words, is shown in debug mode only (see :mod:`.errors`).

Operations and handlers call these and write no role test of their own, so
a rule changes here or nowhere. The caller is an :class:`~.actor.Actor`,
defined in a leaf module: deciding who calls (:mod:`.auth`) needs no ORM.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .actor import Actor
from .database.models import INSTRUCTOR, STUDENT, Course, RosterEntry
from .database.prepared import prepared
from .errors import permission_denied
from .names import can_exist

# The reasons of refusals (debug mode only), as 0.6.0 worded them.
NOT_ADMIN = 'not admin'
NOT_INSTRUCTOR = 'not course instructor'
NOT_MEMBER = 'not related to course'
NOT_AN_INSTRUCTOR_ENTRY = 'cannot modify instructors'
NOT_OWN_ENTRY = 'cannot modify other instructors'


def _role_of(session: Session, course: Course, user_id: str) -> str | None:
    if not can_exist(user_id):
        # No row has this name (NUL, a lone surrogate): PostgreSQL would
        # refuse the query itself.
        return None
    statement = prepared(
        'role',
        lambda: select(RosterEntry.role).where(
            RosterEntry.course_id == bindparam('course'),
            RosterEntry.user_id == bindparam('user'),
        ),
    )
    return session.scalar(statement, {'course': course._id, 'user': user_id})


def role_in(session: Session, actor: Actor, course: Course) -> str | None:
    """The caller's role in ``course``: 'instructor', 'student' or None."""
    return _role_of(session, course, actor.name)


# The course roles of the API documentation.


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


def require_member(session: Session, actor: Actor, course: Course) -> str | None:
    """(instructors+students); the caller's role (None for an admin)."""
    if actor.is_admin:
        return None
    role = role_in(session, actor, course)
    if role is None:
        raise permission_denied(NOT_MEMBER)
    return role


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


def require_admin_or_own_instructor_entry(
    session: Session, actor: Actor, course: Course, user_id: str
) -> None:
    """(admins) add or update an instructor; (instructors) their own entry only.

    An instructor may neither make someone an instructor nor change another
    instructor's entry. The reasons, in 0.6.0's order: the caller is no
    instructor, the target is no instructor, the target is someone else.
    """
    if actor.is_admin:
        return
    if role_in(session, actor, course) != INSTRUCTOR:
        raise permission_denied(NOT_INSTRUCTOR)
    if _role_of(session, course, user_id) != INSTRUCTOR:
        raise permission_denied(NOT_AN_INSTRUCTOR_ENTRY)
    if actor.name != user_id:
        raise permission_denied(NOT_OWN_ENTRY)


# The debug actions of ``initialize-Data6ase`` (and the welcome page's
# buttons for them). Their refusals carry no reason, as in 0.6.0.


def may_dump(actor: Actor | None, debug: bool) -> bool:
    """Dump the database: (admins), or anyone signed in in debug mode."""
    return actor is not None and (actor.is_admin or debug)


def may_change_data(actor: Actor | None, debug: bool) -> bool:
    """Clear the database or load sample data: anyone signed in, debug mode only."""
    return actor is not None and debug


def require_may_dump(actor: Actor | None, debug: bool) -> None:
    """(admins, or anyone in debug mode)"""
    if not may_dump(actor, debug):
        raise permission_denied()


def require_may_change_data(actor: Actor | None, debug: bool) -> None:
    """(debug mode only)"""
    if not may_change_data(actor, debug):
        raise permission_denied()
