"""Deleted courses and assignments: kept, listed, restored, purged.

A DELETE answers as documented (the objects are gone from the API), but the
rows are kept as JSON in ``deleted_items`` and their blobs stay on disk for
the retention period, so that a mistaken ``nbgrader release_assignment
--force`` (which deletes every submission of the assignment) can be undone
by an administrator. After the retention period the items are purged and
their blobs garbage-collected.

An assignment's deadline is part of it: its due date, late policy and grace
period, its students' extensions and each submission's due date (the one
that applied when it was made, so its lateness stays what the server decided
then) are kept and restored with it. Items kept before deadlines existed
have none of these keys and restore with the defaults: no due date, late
submissions accepted, no grace, no extensions, submissions without a due
date. Instants are written as every instant of the payload is, in the
documented timestamp format.
"""

from __future__ import annotations

import datetime
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..database.models import (
    ACCEPT_LATE,
    DELETED_ASSIGNMENT,
    DELETED_COURSE,
    Assignment,
    Course,
    DeletedBlob,
    DeletedItem,
    Extension,
    File,
    RosterEntry,
    Submission,
)
from ..timestamps import format_timestamp, parse_timestamp, utc_now
from .context import Context
from .history import bring_back, forget_deleted, record, write_entries
from .lookup import DELETE, KEEP, ensure_user, locked


class RestoreError(Exception):
    """A deleted item cannot be restored as asked; the message says why."""


# Keeping


def keep_deleted_course(ctx: Context, course: Course) -> DeletedItem:
    payload = {
        'id': course.id,
        'roster': [_roster_payload(entry) for entry in course.roster],
        'assignments': [_assignment_payload(ctx, a) for a in course.assignments],
    }
    return _keep(ctx, DELETED_COURSE, course.id, None, payload)


def keep_deleted_assignment(
    ctx: Context, course: Course, assignment: Assignment
) -> None:
    payload = _assignment_payload(ctx, assignment)
    _keep(ctx, DELETED_ASSIGNMENT, course.id, assignment.id, payload)


def _keep(
    ctx: Context, kind: str, course_name, assignment_name, payload
) -> DeletedItem:
    item = DeletedItem(
        kind=kind,
        course_name=course_name,
        assignment_name=assignment_name,
        deleted_at=utc_now(),
        deleted_by=ctx.actor.name,
        payload=json.dumps(payload),
    )
    item.blobs = [DeletedBlob(actual_name=key) for key in sorted(_blob_keys(payload))]
    ctx.session.add(item)
    ctx.session.flush()  # its id, which the history's entries refer to
    return item


def _roster_payload(entry: RosterEntry) -> dict:
    return {
        'user_id': entry.user_id,
        'role': entry.role,
        'first_name': entry.first_name,
        'last_name': entry.last_name,
        'email': entry.email,
    }


def _files_payload(files: list[File]) -> list[dict]:
    return [
        {
            'filename': row.filename,
            'checksum': row.checksum,
            'actual_name': row.actual_name,
            'size': row.size,
        }
        for row in files
    ]


def _assignment_payload(ctx: Context, assignment: Assignment) -> dict:
    return {
        'id': assignment.id,
        'due': _instant(assignment.due),
        'late_policy': assignment.late_policy,
        'grace_seconds': assignment.grace_seconds,
        'extensions': _extensions_payload(ctx.session, assignment),
        'files': _files_payload(assignment.files),
        'submissions': [
            {
                'student_id': submission.student_id,
                'timestamp': format_timestamp(submission.timestamp),
                'due': _instant(submission.due),
                'files': _files_payload(submission.files),
                'feedback': _files_payload(submission.feedback),
            }
            for submission in assignment.submissions
        ],
    }


def _extensions_payload(session: Session, assignment: Assignment) -> list[dict]:
    """The assignment's extensions, read as plain rows (the database's
    cascade removes them with the assignment)."""
    rows = session.execute(
        select(Extension.student_id, Extension.due)
        .where(Extension.assignment_id == assignment._id)
        .order_by(Extension.student_id)
    )
    return [{'student_id': student, 'due': _instant(due)} for student, due in rows]


def _instant(value: datetime.datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _parsed_instant(text: str | None) -> datetime.datetime | None:
    return parse_timestamp(text) if text else None


def _blob_keys(payload) -> set[str]:
    if isinstance(payload, dict):
        keys = {payload['actual_name']} if 'actual_name' in payload else set()
        for value in payload.values():
            keys |= _blob_keys(value)
        return keys
    if isinstance(payload, list):
        return set().union(*(_blob_keys(value) for value in payload))
    return set()


# Listing


def list_deleted(session: Session) -> list[dict]:
    """Every kept item, oldest first, with what it holds."""
    answer = []
    for item in session.scalars(select(DeletedItem).order_by(DeletedItem._id)):
        payload = json.loads(item.payload)
        assignments = (
            payload['assignments'] if item.kind == DELETED_COURSE else [payload]
        )
        answer.append(
            {
                'id': item._id,
                'kind': item.kind,
                'course': item.course_name,
                'assignment': item.assignment_name,
                'deleted_at': format_timestamp(item.deleted_at),
                'deleted_by': item.deleted_by,
                'assignments': len(assignments),
                'submissions': sum(len(a['submissions']) for a in assignments),
            }
        )
    return answer


# Restoring


def restore(
    ctx: Context, item_id: int, *, as_name: str | None = None, submissions_only=False
) -> str:
    """Put a kept item back; return a sentence saying what was restored.

    ``submissions_only`` re-attaches the submissions (with their feedback) of
    a deleted assignment to the live assignment of the same name (or
    ``as_name``): the repair after ``release_assignment --force``.

    The kept item's row is locked first: two restores of one item, or a
    restore and a purge, run one after the other, and the second finds it
    gone. The live course (and assignment) restored into is locked as by a
    submission, so it is not deleted meanwhile; a concurrent re-creation of
    the same name is caught by the unique constraints.
    """
    item = ctx.session.get(
        DeletedItem, item_id, with_for_update=True, populate_existing=True
    )
    if item is None:
        raise RestoreError(f'no deleted item {item_id}')
    missing = [b.actual_name for b in item.blobs if not ctx.store.exists(b.actual_name)]
    if missing:
        raise RestoreError(f'{len(missing)} stored files of item {item_id} are missing')
    payload = json.loads(item.payload)
    if item.kind == DELETED_COURSE:
        if submissions_only:
            raise RestoreError('--submissions-only applies to assignments')
        message = _restore_course(ctx, payload, as_name or item.course_name)
    else:
        course = ctx.session.scalar(
            locked(select(Course).where(Course.id == item.course_name), KEEP)
        )
        if course is None:
            raise RestoreError(
                f'course {item.course_name!r} does not exist; restore the course first'
            )
        name = as_name or item.assignment_name
        if submissions_only:
            message = _restore_submissions_into(ctx, course, name, payload)
        else:
            message = _restore_assignment(ctx, course, name, payload)
    ctx.session.delete(item)
    ctx.session.flush()
    if item.kind == DELETED_COURSE:
        bring_back(ctx.session, item._id, as_name or item.course_name)
        record(ctx, 'restore', as_name or item.course_name)
    else:
        assignment = as_name or item.assignment_name
        record(ctx, 'restore', item.course_name, assignment=assignment)
    return message


def _restore_course(ctx: Context, payload: dict, name: str) -> str:
    if ctx.session.scalar(select(Course).where(Course.id == name)):
        raise RestoreError(
            f'a course named {name!r} exists; restore it --as another name'
        )
    course = Course(id=name)
    ctx.session.add(course)
    for entry in payload['roster']:
        ensure_user(ctx.session, entry['user_id'], check_name=False)
        course.roster.append(RosterEntry(**entry))
    ctx.session.flush()
    for assignment in payload['assignments']:
        _restore_assignment(ctx, course, assignment['id'], assignment)
    return f'restored course {name!r} with {len(payload["assignments"])} assignments'


def _restore_assignment(ctx: Context, course: Course, name: str, payload: dict) -> str:
    taken = ctx.session.scalar(
        select(Assignment).where(
            Assignment.course_id == course._id, Assignment.id == name
        )
    )
    if taken is not None:
        raise RestoreError(
            f'assignment {name!r} exists in {course.id!r}: restore it --as another '
            'name, or use --submissions-only to add its submissions to the existing one'
        )
    assignment = Assignment(
        id=name,
        course_id=course._id,
        due=_parsed_instant(payload.get('due')),
        late_policy=payload.get('late_policy', ACCEPT_LATE),
        grace_seconds=payload.get('grace_seconds', 0),
    )
    assignment.files = _file_rows(payload['files'])
    ctx.session.add(assignment)
    ctx.session.flush()
    _add_extensions(ctx, assignment, payload.get('extensions', []))
    count = _add_submissions(ctx, assignment, payload['submissions'])
    return f'restored assignment {name!r} of {course.id!r} with {count} submissions'


def _restore_submissions_into(ctx: Context, course: Course, name: str, payload) -> str:
    assignment = ctx.session.scalar(
        locked(
            select(Assignment).where(
                Assignment.course_id == course._id, Assignment.id == name
            ),
            KEEP,
        )
    )
    if assignment is None:
        raise RestoreError(f'assignment {name!r} does not exist in {course.id!r}')
    _add_extensions(ctx, assignment, payload.get('extensions', []))
    count = _add_submissions(ctx, assignment, payload['submissions'])
    return f'added {count} submissions to assignment {name!r} of {course.id!r}'


def _add_submissions(ctx: Context, assignment: Assignment, submissions: list) -> int:
    """Add the kept submissions that the assignment does not have yet."""
    added = 0
    for kept in submissions:
        when = parse_timestamp(kept['timestamp'])
        exists = ctx.session.scalar(
            select(func.count(Submission._id)).where(
                Submission.assignment_id == assignment._id,
                Submission.student_id == kept['student_id'],
                Submission.timestamp == when,
            )
        )
        if exists:
            continue
        ensure_user(ctx.session, kept['student_id'], check_name=False)
        submission = Submission(
            assignment_id=assignment._id,
            student_id=kept['student_id'],
            timestamp=when,
            due=_parsed_instant(kept.get('due')),
        )
        submission.files = _file_rows(kept['files'])
        submission.feedback = _file_rows(kept['feedback'])
        ctx.session.add(submission)
        added += 1
    ctx.session.flush()
    return added


def _add_extensions(ctx: Context, assignment: Assignment, extensions: list) -> None:
    """Add the kept extensions of students the assignment has none for.

    A whole restore adds them all. Restoring only the submissions into a
    re-released assignment (``release_assignment --force`` deletes the
    assignment, extensions included) gives back the extensions it lost and
    leaves alone those given since, as it leaves its due date and policy.
    """
    if not extensions:
        return
    granted = set(
        ctx.session.scalars(
            select(Extension.student_id).where(
                Extension.assignment_id == assignment._id
            )
        )
    )
    for kept in extensions:
        if kept['student_id'] in granted:
            continue
        ensure_user(ctx.session, kept['student_id'], check_name=False)
        ctx.session.add(
            Extension(
                assignment_id=assignment._id,
                student_id=kept['student_id'],
                due=parse_timestamp(kept['due']),
            )
        )
    ctx.session.flush()


def _file_rows(files: list[dict]) -> list[File]:
    return [File(**entry) for entry in files]


# Purging


def purge_expired(
    session: Session, older_than: datetime.datetime, *, by: str
) -> list[str]:
    """Forget items deleted before ``older_than``; return their blob keys.

    Each purge is recorded in the history (as done ``by`` the service or the
    admin tool); a course's history before its deletion goes with it.

    The caller removes those blobs once this commits, if nothing else refers
    to them. The items' rows are locked (``FOR UPDATE``), so a restore of one
    of them in flight commits first (and the item is no longer found), and
    of two replicas purging at once the second finds nothing left to purge.
    """
    items = list(
        session.scalars(
            locked(
                select(DeletedItem)
                .where(DeletedItem.deleted_at < older_than)
                .order_by(DeletedItem._id),
                DELETE,
            )
        )
    )
    keys = [blob.actual_name for item in items for blob in item.blobs]
    for item in items:
        session.delete(item)
        if item.kind == DELETED_COURSE:
            forget_deleted(session, item._id)
        write_entries(
            session,
            by,
            'purge',
            item.course_name,
            [None],
            assignment=item.assignment_name,
        )
    session.flush()
    return keys
