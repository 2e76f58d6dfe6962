"""Finding the objects a request names, with the documented 404s.

Every lookup by a client-supplied name goes through here, and a name that
cannot exist (:func:`ngshare.names.can_exist`: NUL, a lone surrogate) is
answered as absent without a query, so SQLite and PostgreSQL answer alike.

Write operations pass ``lock=``: the row found is locked until commit, so
that what the operation reads next, and then writes, cannot change under
it. This is how every write is serializable on PostgreSQL, whose writers
run at READ COMMITTED (see :mod:`ngshare.database.engine`): a second writer
waits at the lock, and once it has it, every later statement sees what the
first committed (a row deleted meanwhile is simply not found: the
documented 404). Locks are taken in one order, course, then assignment,
then submission, so two writers never wait for each other in a cycle.

* :data:`KEEP` (``FOR KEY SHARE``): the row is not deleted meanwhile;
  taken by writes that add to or replace what hangs off it. Many holders
  at once, so concurrent submissions never queue behind each other.
* :data:`EXCLUSIVE` (``FOR NO KEY UPDATE``): one such writer at a time, but
  still compatible with :data:`KEEP`: a course's roster changes, one
  submission's feedback replacement.
* :data:`DELETE` (``FOR UPDATE``): waits for every holder of the others,
  then reads what it is about to delete (and keep restorable) whole.

On SQLite ``BEGIN IMMEDIATE`` already makes writers run one at a time, and
SQLAlchemy emits no ``FOR`` clause there.

A submission, a feedback upload and a release first try one Core statement
that finds the parents, checks the caller's role and takes the same locks,
in the same order, as the steps below (:func:`write_target`,
:func:`locking`): one statement instead of three or four, without the ORM.
When it finds nothing (an unknown name, a refusal, a row deleted while it
waited) they go the long way, which gives every refusal its exact answer
and precedence.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from types import MappingProxyType

from sqlalchemy import Select, Table, and_, bindparam, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..database.models import (
    STUDENT,
    Assignment,
    Course,
    File,
    RosterEntry,
    Submission,
    User,
)
from ..database.prepared import prepared as cached_statement
from ..errors import ApiError, bad_request, not_found
from ..names import ILLEGAL_NAME, can_exist, is_legal_new_name
from ..timestamps import parse_timestamp, parsed_or_none

Lock = Mapping[str, bool]  # keyword arguments of ``with_for_update``
KEEP: Lock = MappingProxyType({'read': True, 'key_share': True})
EXCLUSIVE: Lock = MappingProxyType({'key_share': True})
DELETE: Lock = MappingProxyType({})


def locked(query, lock: Lock | None):
    """``query`` taking the row lock ``lock`` (None: no lock) on what it
    finds, and refreshing an object the session already holds."""
    if lock is None:
        return query
    return query.with_for_update(**lock).execution_options(populate_existing=True)


def prepared(name: str, lock: Lock | None, build: Callable[[], Select]) -> Select:
    """``build()`` taking ``lock``, built once per process
    (:mod:`ngshare.database.prepared`); the locks are this module's
    constants, so their identity names them."""
    return cached_statement((name, id(lock)), lambda: locked(build(), lock))


# PostgreSQL's clause for each lock (as ``with_for_update`` renders it).
_LOCK_CLAUSES = {
    id(KEEP): 'FOR KEY SHARE',
    id(EXCLUSIVE): 'FOR NO KEY UPDATE',
    id(DELETE): 'FOR UPDATE',
}
COURSES, ASSIGNMENTS, ROSTER = (
    Course.__table__,
    Assignment.__table__,
    RosterEntry.__table__,
)


def locking(query: Select, *locks: tuple[Lock, tuple[Table, ...]]) -> Select:
    """``query`` taking, on PostgreSQL, each ``(lock, tables)``'s lock on
    the rows it finds of those tables (``FOR KEY SHARE OF courses, ...``).
    PostgreSQL locks them in the order of the clauses, as the long way's
    statements do one by one (after a wait it looks at the row's newest
    version; a row deleted meanwhile is not found), so pass them in this
    module's order: course, assignment, submission."""
    clauses = [
        f'{_LOCK_CLAUSES[id(lock)]} OF {", ".join(t.name for t in tables)}'
        for lock, tables in locks
    ]
    return query.suffix_with(' '.join(clauses), dialect='postgresql')


def write_target(*columns, admin: bool, role: str | None = None) -> Select:
    """``SELECT columns`` from the course named ``:course`` joined with its
    assignment ``:assignment``, found only for an ``admin`` or when the
    caller is on the course's roster (:func:`caller_on_roster`). Plain
    tables and columns, no ORM entity: the statement runs as Core."""
    query = (
        select(*columns)
        .select_from(COURSES)
        .join(
            ASSIGNMENTS,
            and_(
                ASSIGNMENTS.c.course_id == COURSES.c._id,
                ASSIGNMENTS.c.id == bindparam('assignment'),
            ),
        )
        .where(COURSES.c.id == bindparam('course'))
    )
    return query if admin else query.where(caller_on_roster(role))


def caller_on_roster(role: str | None = None):
    """The caller (``:actor``) is on the roster of the course selected (in
    ``role``, if given), as the ``require_*`` rules of
    :mod:`ngshare.permissions` decide for a caller who is no admin."""
    entry = exists().where(
        ROSTER.c.course_id == COURSES.c._id, ROSTER.c.user_id == bindparam('actor')
    )
    return entry if role is None else entry.where(ROSTER.c.role == role)


def find_course(
    session: Session, course_id: str, *, lock: Lock | None = None
) -> Course:
    course = None
    if can_exist(course_id):
        statement = prepared(
            'course', lock, lambda: select(Course).where(Course.id == bindparam('name'))
        )
        course = session.scalar(statement, {'name': course_id})
    if course is None:
        raise not_found('Course not found')
    return course


def course_exists(session: Session, course_id: str) -> bool:
    if not can_exist(course_id):
        return False
    return bool(session.scalar(select(exists().where(Course.id == course_id))))


def find_assignment(
    session: Session,
    course: Course,
    assignment_id: str,
    *,
    lock: Lock | None = None,
) -> Assignment:
    assignment = None
    if can_exist(assignment_id):
        statement = prepared(
            'assignment',
            lock,
            lambda: select(Assignment).where(
                Assignment.course_id == bindparam('course'),
                Assignment.id == bindparam('name'),
            ),
        )
        assignment = session.scalar(
            statement, {'course': course._id, 'name': assignment_id}
        )
    if assignment is None:
        raise not_found('Assignment not found')
    return assignment


def assignment_exists(session: Session, course: Course, assignment_id: str) -> bool:
    if not can_exist(assignment_id):
        return False
    return bool(
        session.scalar(
            select(
                exists().where(
                    Assignment.course_id == course._id,
                    Assignment.id == assignment_id,
                )
            )
        )
    )


def roster_entry(
    session: Session, course: Course, user_id: str, role: str | None = None
) -> RosterEntry | None:
    if not can_exist(user_id):
        return None
    values = {'course': course._id, 'user': user_id}
    if role is None:
        statement = prepared('roster entry', None, _roster_entry_query)
    else:
        statement = prepared(
            'roster entry in role',
            None,
            lambda: _roster_entry_query().where(RosterEntry.role == bindparam('role')),
        )
        values['role'] = role
    return session.scalar(statement, values)


def _roster_entry_query() -> Select:
    return select(RosterEntry).where(
        RosterEntry.course_id == bindparam('course'),
        RosterEntry.user_id == bindparam('user'),
    )


def roster_of(session: Session, course: Course, role: str) -> list[RosterEntry]:
    return list(
        session.scalars(
            select(RosterEntry)
            .where(RosterEntry.course_id == course._id, RosterEntry.role == role)
            .order_by(RosterEntry._id)
        )
    )


def require_student_found(
    session: Session, course: Course, assignment: Assignment, student_id: str
) -> None:
    """A student is found while enrolled, or when they submitted to it.

    Removing a student keeps their submissions visible to instructors
    (documented), so a removed student who submitted is still found.
    """
    if roster_entry(session, course, student_id, STUDENT) is not None:
        return
    if not can_exist(student_id):
        raise not_found('Student not found')
    statement = prepared(
        'has submitted',
        None,
        lambda: select(
            exists().where(
                Submission.assignment_id == bindparam('assignment'),
                Submission.student_id == bindparam('student'),
            )
        ),
    )
    submitted = session.scalar(
        statement, {'assignment': assignment._id, 'student': student_id}
    )
    if not submitted:
        raise not_found('Student not found')


def find_submission(
    session: Session,
    assignment: Assignment,
    student_id: str,
    timestamp: datetime.datetime | None,
    *,
    lock: Lock | None = None,
) -> Submission:
    """The submission at ``timestamp``, or the latest one when it is None."""
    if not can_exist(student_id):
        raise not_found('Submission not found')
    values = {'assignment': assignment._id, 'student': student_id}
    if timestamp is None:
        statement = prepared(
            'latest submission',
            lock,
            lambda: (
                _submissions_of_query()
                .order_by(Submission.timestamp.desc(), Submission._id.desc())
                .limit(1)
            ),
        )
    else:
        statement = prepared(
            'submission at',
            lock,
            lambda: (
                _submissions_of_query()
                .where(Submission.timestamp == bindparam('timestamp'))
                .limit(1)
            ),
        )
        values['timestamp'] = timestamp
    submission = session.scalars(statement, values).first()
    if submission is None:
        raise not_found('Submission not found')
    return submission


def find_student_submission(
    session: Session,
    course: Course,
    assignment: Assignment,
    student_id: str,
    timestamp: str | None,
    *,
    required: bool,
    lock: Lock | None = None,
) -> Submission:
    """A student's submission at the client's ``timestamp`` (the latest when
    it is None and not ``required``), with every refusal of the long way in
    its order: ``Student not found``, ``Please supply timestamp``, ``Time
    format incorrect``, ``Submission not found``.

    The submission is looked for first: when it is there the student is
    known (they submitted), so the long way would find it too, one
    statement later.
    """
    when = parsed_or_none(timestamp)
    if when is not None or (timestamp is None and not required):
        try:
            return find_submission(session, assignment, student_id, when, lock=lock)
        except ApiError:
            pass
    require_student_found(session, course, assignment, student_id)
    if timestamp is None and required:
        raise bad_request('Please supply timestamp')
    when = parse_timestamp(timestamp) if timestamp is not None else None
    return find_submission(session, assignment, student_id, when, lock=lock)


def _submissions_of_query() -> Select:
    return select(Submission).where(
        Submission.assignment_id == bindparam('assignment'),
        Submission.student_id == bindparam('student'),
    )


def files_of_assignments(session: Session, assignment_pks: list[int]) -> list[str]:
    """Blob keys of the assignments' files, submissions and feedback."""
    submissions = select(Submission._id).where(
        Submission.assignment_id.in_(assignment_pks)
    )
    return list(
        session.scalars(
            select(File.actual_name).where(
                or_(
                    File.assignment_id.in_(assignment_pks),
                    File.submission_id.in_(submissions),
                    File.feedback_id.in_(submissions),
                )
            )
        )
    )


def files_of_course(session: Session, course: Course) -> list[str]:
    assignments = session.scalars(
        select(Assignment._id).where(Assignment.course_id == course._id)
    )
    return files_of_assignments(session, list(assignments))


# INSERT constructs with ON CONFLICT clauses, by dialect.
_UPSERT_INSERTS = {'postgresql': postgresql.insert, 'sqlite': sqlite.insert}


def upsert_insert(session: Session, table: Table):
    """An INSERT into ``table`` that can take ``on_conflict_do_nothing`` /
    ``on_conflict_do_update``, or None where the database has no such clause.
    """
    make = _UPSERT_INSERTS.get(session.get_bind().dialect.name)
    return None if make is None else make(table)


def ensure_user(session: Session, user_id: str, *, check_name: bool = True) -> None:
    """Create the users row for ``user_id`` if there is none yet
    (:func:`ensure_users` of one)."""
    ensure_users(session, [user_id], check_name=check_name)


# Names looked up per statement: within every database's limit on bound
# values (SQLite's is 32,766).
NAMES_PER_STATEMENT = 1000


def ensure_users(session: Session, names: list[str], *, check_name=True) -> None:
    """Create the users rows of ``names`` that do not exist yet, in one
    ``INSERT ... ON CONFLICT DO NOTHING`` (of many rows; sorted names keep
    two requests from waiting for each other in a cycle): when another
    transaction (another request, another replica) creates the same user at
    the same time, this one waits for it and carries on instead of failing
    on the primary key and starting over.

    With ``check_name`` (every request), a name that is not a legal new
    name answers 400 ``Illegal name`` unless that user already exists (a
    0.6.0 user with a tab in the name may still be enrolled); restoring
    deleted items passes False, since their users existed before.
    """
    odd = [name for name in names if check_name and not is_legal_new_name(name)]
    if not all(can_exist(name) for name in odd):
        raise bad_request(ILLEGAL_NAME)
    for start in range(0, len(odd), NAMES_PER_STATEMENT):
        chunk = odd[start : start + NAMES_PER_STATEMENT]
        known = session.scalars(select(User.id).where(User.id.in_(chunk))).all()
        if len(set(known)) != len(set(chunk)):
            raise bad_request(ILLEGAL_NAME)
    new = [{'id': name} for name in names if name not in odd]
    if new:
        insert = upsert_insert(session, User.__table__)
        session.execute(insert.on_conflict_do_nothing(), new)
