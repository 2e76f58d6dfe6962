"""The history of a course: recording its actions and reading them back.

Every exchange action writes its entry with :func:`record` in the action's
own transaction (one INSERT), so the history never disagrees with the data:
a request that rolls back (a refusal, a lost race, a failure) leaves no
entry, and one that commits always has its entry, once, however often the
runner retried it (each attempt rolls back before the next). The page read
(:func:`read_history`) costs the same few statements whatever the course's
size: the course, the caller's role, and one index range of ``history``.
"""

from __future__ import annotations

import dataclasses
import datetime

from sqlalchemy import delete, insert, select, update

from ..database.models import (
    HISTORY_ACTIONS,
    INSTRUCTOR,
    STUDENT,
    Course,
    HistoryEntry,
    RosterEntry,
)
from ..deadlines import format_instant, parse_instant
from ..errors import ApiError, bad_request, not_found, permission_denied
from ..names import can_exist
from ..permissions import NOT_INSTRUCTOR, NOT_MEMBER, require_instructor, role_in
from ..timestamps import format_timestamp, parse_timestamp, utc_now
from .context import Context
from .lookup import course_exists, find_course

HISTORY = HistoryEntry.__table__

DEFAULT_PAGE = 100
MAX_PAGE = 1000
NEWEST, OLDEST = 'newest', 'oldest'


# How many files an action moved and their bytes (None: a size unknown).
Moved = tuple[int, 'int | None']


def uploaded(tree) -> Moved:
    """What an upload moves: its tree's files (``TreeFile``s)."""
    return len(tree), sum(len(item.content) for item in tree)


def downloaded(files) -> Moved:
    """What a download moves: its answer's files (``FileRef``s), with the
    sizes recorded at upload (unknown for some files of 0.6.0)."""
    sizes = [ref.size for ref in files]
    return len(files), None if None in sizes else sum(sizes)


def record(
    ctx: Context,
    action: str,
    course: str,
    *,
    student: str | None = None,
    **details,
) -> None:
    """Add the entry of an action of the caller (``details``: the
    ``assignment``, the submission's ``timestamp``, what it ``moved``)."""
    write_entries(ctx.session, ctx.actor.name, action, course, [student], **details)


def record_download(
    ctx: Context, action: str, course: str, assignment: str, student: str, answer
) -> None:
    """The entry of a download of ``student``'s submission (``collect``,
    ``fetch_feedback``) from its ``answer``: its timestamp and files."""
    record(
        ctx,
        action,
        course,
        assignment=assignment,
        student=student,
        timestamp=parse_timestamp(answer['timestamp']),
        moved=downloaded(answer['files']),
    )


def record_many(ctx: Context, action: str, course: str, students: list) -> None:
    """One entry per student of ``students`` in one statement, whatever
    their number (a bulk add)."""
    write_entries(ctx.session, ctx.actor.name, action, course, students)


def write_entries(
    session,
    user: str,
    action: str,
    course: str,
    students: list,
    *,
    assignment: str | None = None,
    timestamp: datetime.datetime | None = None,
    moved: Moved | None = None,
) -> None:
    """The entries of ``user``'s action, one per name of ``students`` (None:
    no student), in ``session``'s transaction: the tools' own actions
    (restore, purge) are recorded with this directly."""
    if not students:
        return
    files, total = (None, None) if moved is None else moved
    common = {
        'time': utc_now(),
        'action': action,
        'user': user,
        'course': course,
        'assignment': assignment,
        'timestamp': timestamp,
        'files': files,
        'bytes': total,
    }
    session.execute(insert(HISTORY), [{**common, 'student': name} for name in students])


def hide_course(session, course: str, item_id: int) -> None:
    """Mark the entries of ``course``, deleted and kept as the deleted item
    ``item_id``, as that item's: from now on only admins see them (a new
    course of the same name starts with an empty history for its members)."""
    session.execute(
        update(HISTORY)
        .where(HISTORY.c.course == course, HISTORY.c.deleted_item.is_(None))
        .values(deleted_item=item_id)
    )


def bring_back(session, item_id: int, course: str) -> None:
    """The restore of the deleted item ``item_id``: its entries are the
    course's again, under the name it is restored as."""
    session.execute(
        update(HISTORY)
        .where(HISTORY.c.deleted_item == item_id)
        .values(deleted_item=None, course=course)
    )


def forget_deleted(session, item_id: int) -> None:
    """The purge of the deleted item ``item_id``: its entries go with it."""
    session.execute(delete(HISTORY).where(HISTORY.c.deleted_item == item_id))


def forget_course(session, course: str) -> None:
    """A course deleted without being kept: its history goes at once (the
    entries of earlier deletions of that name stay with their items)."""
    session.execute(
        delete(HISTORY).where(
            HISTORY.c.course == course, HISTORY.c.deleted_item.is_(None)
        )
    )


def expire(session, older_than: datetime.datetime) -> int:
    """Remove every entry older than ``older_than`` (the retention)."""
    result = session.execute(delete(HISTORY).where(HISTORY.c.time < older_than))
    return result.rowcount


# Reading


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """The filters and page of a history request, checked."""

    assignment: str | None = None
    student: str | None = None
    action: str | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    order: str = NEWEST
    limit: int = DEFAULT_PAGE
    cursor: int | None = None


def read_history(ctx: Context, course_id: str, arguments: dict) -> dict:
    """One page of the course's history, as the caller may see it; the
    request's ``arguments`` (filters and page, strings or None) are checked
    after the course and the caller, as every endpoint checks its fields.

    Instructors of the course and admins see every entry; a student only
    those that concern them (``student`` is their name). An admin may also
    read what remains of a deleted course's history, until it is purged;
    the members of a new course of that name do not see it.
    """
    own = None
    if ctx.actor.is_admin:
        if not (
            _course_has_history(ctx, course_id) or course_exists(ctx.session, course_id)
        ):
            raise not_found('Course not found')
    else:
        course = find_course(ctx.session, course_id)
        role = role_in(ctx.session, ctx.actor, course)
        if role == STUDENT:
            own = ctx.actor.name
        elif role != INSTRUCTOR:
            raise permission_denied(NOT_MEMBER)
    query = parse_query(arguments)
    if own is not None:
        if query.student not in (None, own):
            # Their own entries, filtered by someone else's name: none.
            return {'history': [], 'next': None}
        query = dataclasses.replace(query, student=own)
    statement = _page_statement(course_id, query)
    if not ctx.actor.is_admin:
        statement = statement.where(HISTORY.c.deleted_item.is_(None))
    rows = ctx.session.execute(statement).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {
        'history': [describe(row) for row in rows],
        'next': str(rows[-1]._id) if more else None,
    }


def _course_has_history(ctx: Context, course_id: str) -> bool:
    if not can_exist(course_id):
        return False
    return (
        ctx.session.scalar(
            select(HISTORY.c._id).where(HISTORY.c.course == course_id).limit(1)
        )
        is not None
    )


def _page_statement(course_id: str, query: HistoryQuery):
    """One index range of ``history``: the filters, the cursor, the order,
    and one row more than the page (to know whether there is a next)."""
    conditions = [HISTORY.c.course == course_id]
    for column, value in (
        (HISTORY.c.assignment, query.assignment),
        (HISTORY.c.student, query.student),
        (HISTORY.c.action, query.action),
    ):
        if value is not None:
            conditions.append(column == value)
    if query.since is not None:
        conditions.append(HISTORY.c.time >= query.since)
    if query.until is not None:
        conditions.append(HISTORY.c.time < query.until)
    newest = query.order == NEWEST
    if query.cursor is not None:
        conditions.append(
            HISTORY.c._id < query.cursor if newest else HISTORY.c._id > query.cursor
        )
    order = HISTORY.c._id.desc() if newest else HISTORY.c._id.asc()
    return select(HISTORY).where(*conditions).order_by(order).limit(query.limit + 1)


def describe(row) -> dict:
    """An entry as the API answers it (docs/api.md, "History")."""
    return {
        'id': str(row._id),
        'action': row.action,
        'user': row.user,
        'assignment_id': row.assignment,
        'student_id': row.student,
        'timestamp': None if row.timestamp is None else format_timestamp(row.timestamp),
        'time': format_instant(row.time),
        'files': row.files,
        'bytes': row.bytes,
    }


# The history page: admins and instructors.

# The most course names the form suggests (a datalist; any name may be typed).
MAX_SUGGESTED_COURSES = 1000
# The refusals shown on the page with the form; any other is the 403 page.
SHOWN_WITH_FORM = (400, 404)


def read_history_page(ctx: Context, course_id: str | None, arguments: dict) -> dict:
    """What the history page (``handlers/history_page.py``) shows: the
    course names to suggest and, with a course, one page of its history
    (``entries``, ``next``) or the refusal of its filters (``error``, a 400
    or 404 shown with the form); one read transaction. Admins and the
    instructors of the course may look.

    An instructor is checked before the history is read, so that a student
    of the course is refused instead of shown their own entries.
    """
    courses = _courses_of(ctx)
    if not ctx.actor.is_admin and not courses:
        # Instructor of nothing: nothing this page could show.
        raise permission_denied(NOT_INSTRUCTOR)
    answer = {'courses': courses, 'entries': None, 'next': None, 'error': None}
    if course_id is None:
        return answer
    try:
        if not ctx.actor.is_admin:
            require_instructor(
                ctx.session, ctx.actor, find_course(ctx.session, course_id)
            )
        page = read_history(ctx, course_id, arguments)
    except ApiError as error:
        if error.status_code not in SHOWN_WITH_FORM:
            raise
        answer['error'] = error
        return answer
    answer['entries'], answer['next'] = page['history'], page['next']
    return answer


def _courses_of(ctx: Context) -> list[str]:
    """Admins: every course; others: the courses they teach."""
    query = select(Course.id).order_by(Course.id).limit(MAX_SUGGESTED_COURSES)
    if not ctx.actor.is_admin:
        query = query.join(RosterEntry).where(
            RosterEntry.user_id == ctx.actor.name, RosterEntry.role == INSTRUCTOR
        )
    return list(ctx.session.scalars(query))


# The query parameters, checked (every refusal a 400 naming what is wrong).


def parse_query(arguments: dict) -> HistoryQuery:
    """A :class:`HistoryQuery` of the request's parameters (strings or None;
    an empty one, as a form sends an unfilled field, is no filter)."""
    arguments = {name: value or None for name, value in arguments.items()}
    names = {}
    for parameter in ('assignment_id', 'student_id'):
        value = arguments.get(parameter)
        if value is not None and not can_exist(value):
            raise bad_request(f'Invalid {parameter}')
        names[parameter] = value
    action = arguments.get('action')
    if action is not None and action not in HISTORY_ACTIONS:
        raise bad_request('Unknown action')
    instants = {}
    for parameter in ('since', 'until'):
        value = arguments.get(parameter)
        instants[parameter] = None
        if value is not None:
            try:
                instants[parameter] = parse_instant(value)
            except ApiError:  # its message speaks of due dates
                raise bad_request(f'Invalid {parameter}') from None
    order = arguments.get('order') or NEWEST
    if order not in (NEWEST, OLDEST):
        raise bad_request('Invalid order')
    return HistoryQuery(
        assignment=names['assignment_id'],
        student=names['student_id'],
        action=action,
        since=instants['since'],
        until=instants['until'],
        order=order,
        limit=_whole_number(arguments.get('limit'), 'limit', DEFAULT_PAGE, MAX_PAGE),
        # The largest id an INTEGER column holds (PostgreSQL's int4).
        cursor=_whole_number(arguments.get('cursor'), 'cursor', None, 2**31 - 1),
    )


def _whole_number(text: str | None, name: str, default, largest: int):
    if text is None:
        return default
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(largest)):
        raise bad_request(f'Invalid {name}')
    number = int(value)
    if number > largest or (name == 'limit' and number < 1):
        raise bad_request(f'Invalid {name}')
    return number
