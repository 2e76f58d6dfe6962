"""Deadlines: what a due date, an extension and a late policy mean.

Pure functions, shared by the operations and their answers, so that every
answer and the refusal of a late submission apply the same rules:

* Instants are naive ``datetime`` values in UTC inside (as the schema stores
  them) and ISO 8601 texts with an offset on the wire, always written in UTC
  (``2026-12-01T17:00:00+00:00``). A client's text must say its offset (or
  ``Z``): a due date without one would mean a different instant on every
  machine that reads it.
* A student's due date is the assignment's, or their extension when it is
  later; an assignment without a due date has none, extensions included.
* With the ``refuse`` policy, submissions close ``grace_seconds`` after a
  student's due date; with ``accept`` (the default) they never close.
* A submission is late by the time between its due date (the one that
  applied when it was made, :attr:`Submission.due`) and its timestamp.
"""

from __future__ import annotations

import datetime

from .database.models import ACCEPT_LATE, REFUSE_LATE
from .errors import bad_request

LATE_POLICIES = (ACCEPT_LATE, REFUSE_LATE)

# A grace period of at most a year, and instants far enough from the end of
# the calendar that a due date plus its grace is still a date.
MAX_GRACE_SECONDS = 366 * 24 * 3600
_LATEST = datetime.datetime(9000, 1, 1)

_UTC_SUFFIX = ' UTC'


def parse_instant(text: str) -> datetime.datetime:
    """The naive UTC instant of a client's ISO 8601 ``text``, or 400.

    ngshare's own timestamp format (``... UTC``) is accepted too, so that a
    client may send back a timestamp it received.
    """
    value = text.strip()
    if value.endswith(_UTC_SUFFIX):
        value = value[: -len(_UTC_SUFFIX)] + '+00:00'
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise bad_request('Due date cannot be parsed') from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise bad_request('Due date needs a UTC offset')
    try:
        instant = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise bad_request('Due date cannot be parsed') from None
    if instant >= _LATEST:
        raise bad_request('Due date is too far in the future')
    return instant


def require_future(instant: datetime.datetime, now: datetime.datetime) -> None:
    """400 for a due date (or an extension) that has passed already."""
    if instant <= now:
        raise bad_request('Due date is in the past')


def parse_late_policy(text: str) -> str:
    value = text.strip()
    if value not in LATE_POLICIES:
        raise bad_request('Invalid late policy')
    return value


def parse_grace_seconds(text: str) -> int:
    """A whole number of seconds from 0 to :data:`MAX_GRACE_SECONDS`, or 400."""
    value = text.strip()
    # Its length first: ``int`` refuses texts of thousands of digits.
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > len(str(MAX_GRACE_SECONDS))
        or int(value) > MAX_GRACE_SECONDS
    ):
        raise bad_request('Invalid grace period')
    return int(value)


def format_instant(instant: datetime.datetime | None) -> str | None:
    """``2026-12-01T17:00:00+00:00`` (microseconds only when there are any)."""
    if instant is None:
        return None
    return instant.isoformat() + '+00:00'


def effective_due(
    due: datetime.datetime | None, extension: datetime.datetime | None
) -> datetime.datetime | None:
    """A student's due date: the assignment's, or their later extension."""
    if due is None:
        return None
    if extension is None or extension <= due:
        return due
    return extension


def cutoff(
    due: datetime.datetime | None, late_policy: str, grace_seconds: int
) -> datetime.datetime | None:
    """When submissions close for a due date, or None when they never do."""
    if due is None or late_policy != REFUSE_LATE:
        return None
    return due + datetime.timedelta(seconds=grace_seconds)


def seconds_late(timestamp: datetime.datetime, due: datetime.datetime | None) -> float:
    """How late a submission made at ``timestamp`` was, 0 when on time."""
    if due is None or timestamp <= due:
        return 0.0
    return (timestamp - due).total_seconds()


def lateness(timestamp: datetime.datetime, due: datetime.datetime | None) -> dict:
    """The fields of an answer that describe a submission's lateness."""
    late_by = seconds_late(timestamp, due)
    return {'due': format_instant(due), 'late': late_by > 0, 'seconds_late': late_by}


def closed_message(closed_at: datetime.datetime) -> str:
    """The refusal of a late submission: it names the deadline."""
    return f'Deadline passed: submissions closed at {format_instant(closed_at)}'
