"""Course rosters: instructors and students with their names and emails.

Every roster write locks the course row (:data:`~.lookup.EXCLUSIVE`) before
it reads the roster: the checks "is this user an instructor?" (before adding
them as a student) and "is the caller an instructor?" (before they update
their own entry) then hold until commit, so adding a user as instructor and
as student at once ends as one of the two orders would, never as a student
who was made instructor meanwhile. Submissions and other writes in the
course do not wait for it (they take :data:`~.lookup.KEEP`).
"""

from __future__ import annotations

from sqlalchemy import select

from ..database.models import INSTRUCTOR, STUDENT, RosterEntry
from ..errors import bad_request, conflict, not_found
from ..jsonfields import parse_field
from ..names import is_storable
from ..permissions import (
    require_admin,
    require_admin_or_own_instructor_entry,
    require_instructor,
    require_member,
    require_self_or_instructor,
)
from .context import Context
from .history import record, record_many
from .lookup import (
    EXCLUSIVE,
    NAMES_PER_STATEMENT,
    ensure_user,
    ensure_users,
    find_course,
    roster_entry,
    roster_of,
    upsert_insert,
)

_PERSON_FIELDS = ('first_name', 'last_name', 'email')
SUPPLY_STUDENTS = 'Please supply students'


def describe(entry: RosterEntry) -> dict:
    return {
        'username': entry.user_id,
        'first_name': entry.first_name,
        'last_name': entry.last_name,
        'email': entry.email,
    }


def _require_fields(fields: dict, email_message: str) -> None:
    messages = {
        'first_name': 'Please supply first name',
        'last_name': 'Please supply last name',
        'email': email_message,
    }
    for name in _PERSON_FIELDS:
        if fields.get(name) is None:
            raise bad_request(messages[name])


def _enrol(ctx: Context, course, user_id: str, role: str, fields: dict) -> None:
    """Create or update the user's one roster entry of ``course``.

    One ``INSERT ... ON CONFLICT (course, user) DO UPDATE``: when another
    transaction (another request, another replica) enrols the same person
    at the same time, this one waits for it and then updates the entry,
    instead of failing on the unique constraint.
    """
    values = {'role': role, **{name: fields[name] for name in _PERSON_FIELDS}}
    ensure_user(ctx.session, user_id)
    insert = upsert_insert(ctx.session, RosterEntry.__table__)
    if insert is not None:
        ctx.session.execute(
            insert.values(
                course_id=course._id, user_id=user_id, **values
            ).on_conflict_do_update(
                index_elements=['course_id', 'user_id'], set_=values
            )
        )
        return
    entry = roster_entry(ctx.session, course, user_id)
    if entry is None:
        entry = RosterEntry(course_id=course._id, user_id=user_id)
        ctx.session.add(entry)
    for name, value in values.items():
        setattr(entry, name, value)
    ctx.session.flush()


# Instructors


def set_instructor(ctx: Context, course_id: str, user_id: str, fields: dict) -> dict:
    """(admins) add or update; (instructors) update their own entry.

    An instructor who was a student of the course stops being one. Only a
    change of role is recorded in the history (an instructor updating their
    names is no action of the course); the course row's lock keeps the
    role read here true until the commit.
    """
    course = find_course(ctx.session, course_id, lock=EXCLUSIVE)
    require_admin_or_own_instructor_entry(ctx.session, ctx.actor, course, user_id)
    _require_fields(fields, 'Please supply email name')
    # An instructor may only update their own entry: already an instructor.
    previous = _role_of(ctx, course, user_id) if ctx.actor.is_admin else INSTRUCTOR
    _enrol(ctx, course, user_id, INSTRUCTOR, fields)
    if previous == STUDENT:
        record(ctx, 'remove_student', course_id, student=user_id)
    if previous != INSTRUCTOR:
        record(ctx, 'add_instructor', course_id, student=user_id)
    return {}


def _role_of(ctx: Context, course, user_id: str) -> str | None:
    entry = roster_entry(ctx.session, course, user_id)
    return None if entry is None else entry.role


def get_instructor(ctx: Context, course_id: str, user_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    entry = roster_entry(ctx.session, course, user_id, INSTRUCTOR)
    if entry is None:
        raise not_found('Instructor not found')
    return describe(entry)


def remove_instructor(ctx: Context, course_id: str, user_id: str) -> dict:
    course = find_course(ctx.session, course_id, lock=EXCLUSIVE)
    require_admin(ctx.actor)
    entry = roster_entry(ctx.session, course, user_id, INSTRUCTOR)
    if entry is None:
        raise not_found('Instructor not found')
    ctx.session.delete(entry)
    record(ctx, 'remove_instructor', course_id, student=user_id)
    return {}


def list_instructors(ctx: Context, course_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_member(ctx.session, ctx.actor, course)
    return {
        'instructors': [describe(e) for e in roster_of(ctx.session, course, INSTRUCTOR)]
    }


# Students


def set_student(ctx: Context, course_id: str, user_id: str, fields: dict) -> dict:
    """Add or update a student; only an addition is recorded in the
    history (the course row's lock keeps the role read here true)."""
    course = find_course(ctx.session, course_id, lock=EXCLUSIVE)
    require_instructor(ctx.session, ctx.actor, course)
    previous = _role_of(ctx, course, user_id)
    if previous == INSTRUCTOR:
        raise conflict('Cannot add instructor as student')
    _require_fields(fields, 'Please supply email')
    _enrol(ctx, course, user_id, STUDENT, fields)
    if previous is None:
        record(ctx, 'add_student', course_id, student=user_id)
    return {}


def get_student(ctx: Context, course_id: str, user_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_self_or_instructor(ctx.session, ctx.actor, course, user_id)
    entry = roster_entry(ctx.session, course, user_id, STUDENT)
    if entry is None:
        raise not_found('Student not found')
    return describe(entry)


def remove_student(ctx: Context, course_id: str, user_id: str) -> dict:
    course = find_course(ctx.session, course_id, lock=EXCLUSIVE)
    require_instructor(ctx.session, ctx.actor, course)
    entry = roster_entry(ctx.session, course, user_id, STUDENT)
    if entry is None:
        raise not_found('Student not found')
    ctx.session.delete(entry)
    record(ctx, 'remove_student', course_id, student=user_id)
    return {}


def add_students(ctx: Context, course_id: str, students_json: str | None) -> dict:
    """Add or update many students; report each one, in request order.

    In a handful of statements whatever the number of students (one to find
    the instructors among them, one for their users rows, one for their
    roster entries, with as many rows as there are students), the same
    result as enrolling them one by one with :func:`_enrol`.
    """
    course = find_course(ctx.session, course_id, lock=EXCLUSIVE)
    require_instructor(ctx.session, ctx.actor, course)
    students = _parse_students(students_json)
    # Written in one order, by user name, whatever the order of the
    # request: two requests enrolling the same people then never wait for
    # each other in a cycle (a deadlock on PostgreSQL). A name given twice
    # ends with its last values, as written in turn.
    latest = {student['username']: student for student in students}
    roles = _roles_among(ctx.session, course, sorted(latest))
    instructors = {name for name, role in roles.items() if role == INSTRUCTOR}
    enrolled = [name for name in sorted(latest) if name not in instructors]
    ensure_users(ctx.session, enrolled)
    if enrolled:
        values = ('role', *_PERSON_FIELDS)
        upsert = upsert_insert(ctx.session, RosterEntry.__table__)
        ctx.session.execute(
            upsert.on_conflict_do_update(
                index_elements=['course_id', 'user_id'],
                set_={name: upsert.excluded[name] for name in values},
            ),
            [
                {
                    'course_id': course._id,
                    'user_id': name,
                    'role': STUDENT,
                    **{field: latest[name][field] for field in _PERSON_FIELDS},
                }
                for name in enrolled
            ],
        )
        # The history has the additions; updated students were there.
        added = [name for name in enrolled if name not in roles]
        record_many(ctx, 'add_student', course_id, added)
    return {
        'status': [
            _INSTRUCTOR_REFUSED | {'username': student['username']}
            if student['username'] in instructors
            else {'username': student['username'], 'success': True}
            for student in students
        ]
    }


# The answer for an instructor in a bulk add (keys in the documented order).
_INSTRUCTOR_REFUSED = {
    'username': None,
    'success': False,
    'message': 'Cannot add instructor as student',
}


def _roles_among(session, course, names: list[str]) -> dict[str, str]:
    """``{name: role}`` of those of ``names`` on the roster of ``course``, a
    statement per :data:`NAMES_PER_STATEMENT` names."""
    found: dict[str, str] = {}
    for start in range(0, len(names), NAMES_PER_STATEMENT):
        found.update(
            session.execute(
                select(RosterEntry.user_id, RosterEntry.role).where(
                    RosterEntry.course_id == course._id,
                    RosterEntry.user_id.in_(names[start : start + NAMES_PER_STATEMENT]),
                )
            ).all()
        )
    return found


def _parse_students(students_json: str | None) -> list[dict]:
    """The ``students`` field; nobody to add (missing, or ``[]``) is a 400.

    As documented and as 0.6.0 answered: an empty list is ``Please supply
    students``, not a 200 that adds nobody.
    """
    if students_json is None:
        raise bad_request(SUPPLY_STUDENTS)
    students = parse_field(students_json, 'Students cannot be JSON decoded')
    if not isinstance(students, list):
        raise bad_request('Incorrect request format')
    if not students:
        raise bad_request(SUPPLY_STUDENTS)
    if not all(_is_student_entry(student) for student in students):
        raise bad_request('Incorrect request format')
    return students


def _is_student_entry(student: object) -> bool:
    if not isinstance(student, dict):
        return False
    username = student.get('username')
    if not isinstance(username, str) or not username or not is_storable(username):
        return False
    return all(
        name in student and (student[name] is None or is_storable(student[name]))
        for name in _PERSON_FIELDS
    )


def list_students(ctx: Context, course_id: str) -> dict:
    course = find_course(ctx.session, course_id)
    require_instructor(ctx.session, ctx.actor, course)
    return {'students': [describe(e) for e in roster_of(ctx.session, course, STUDENT)]}
