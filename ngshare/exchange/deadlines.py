"""Due dates on the plugin's side: reading ngshare's instants, showing them.

ngshare writes every instant as ISO 8601 in UTC with its offset
(``2026-12-01T17:00:00+00:00``) and nbgrader's gradebook keeps due dates as
naive UTC ``datetime`` values; students read them in their own local time.
These pure functions convert between the three, so that release, list,
submit, collect and ``ngshare-course-management`` say the same instant the
same way. Nothing here talks to the server or the gradebook.
"""

from __future__ import annotations

import datetime

from dateutil.parser import isoparse

__all__ = [
    'DateError',
    'from_wire',
    'how_late',
    'human_duration',
    'judged_submissions',
    'local_text',
    'now_utc',
    'parse_user_date',
    'to_wire',
]

_UTC = datetime.timezone.utc

# The units of a duration told to a person, largest first.
_UNITS = (('day', 86400), ('hour', 3600), ('minute', 60), ('second', 1))


class DateError(ValueError):
    """A date a person typed that cannot be read; the message says why."""


def now_utc() -> datetime.datetime:
    """The current instant as naive UTC, as the gradebook keeps due dates."""
    return datetime.datetime.now(_UTC).replace(tzinfo=None)


def from_wire(text: object) -> datetime.datetime | None:
    """The naive UTC instant of one of ngshare's ISO texts (None for none,
    and for anything that is not one, so that a list never fails on it)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed
    return parsed.astimezone(_UTC).replace(tzinfo=None)


def to_wire(instant: datetime.datetime) -> str:
    """A naive UTC instant as ngshare writes it (``...+00:00``)."""
    return instant.replace(tzinfo=_UTC).isoformat()


def local_text(instant: datetime.datetime | None) -> str:
    """A naive UTC instant in this machine's local time, to the second, with
    the zone (``2026-12-01 18:00:00 CET``); ``TZ`` decides the zone."""
    if instant is None:
        return 'none'
    local = instant.replace(tzinfo=_UTC).astimezone()
    zone = local.strftime('%Z') or local.strftime('UTC%z')
    return f'{local:%Y-%m-%d %H:%M:%S} {zone}'


def human_duration(seconds: float) -> str:
    """``3 minutes 12 seconds``: the two largest units, whole seconds."""
    left = int(seconds)
    if left < 1:
        return 'less than a second'
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f'{count} {name}{"" if count == 1 else "s"}')
        elif parts:
            break  # "1 hour 5 seconds" would hide the minutes: stop here
        if len(parts) == 2:
            break
    return ' '.join(parts)


def how_late(entry: dict) -> str:
    """``on time`` or ``3 minutes 12 seconds late``, from an answer's
    ``late`` and ``seconds_late`` (a server that does not judge: ``''``)."""
    late = entry.get('late')
    if late is None:
        return ''
    if not late:
        return 'on time'
    return f'{human_duration(float(entry.get("seconds_late") or 0))} late'


def parse_user_date(text: str) -> datetime.datetime:
    """A date a person typed (ISO 8601) as naive UTC.

    Without an offset it is this machine's local time (``TZ``), as the
    person reads their clock; ``Z`` or ``+01:00`` say the zone themselves.
    """
    value = text.strip()
    try:
        parsed = isoparse(value)
    except (ValueError, OverflowError):
        raise DateError(
            f'cannot read the date {text!r}: write it in ISO 8601, e.g.'
            ' 2026-12-01T17:00 (local time) or 2026-12-01T17:00:00+01:00'
        ) from None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # naive: the local time of this machine
        return parsed.astimezone(_UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise DateError(f'cannot read the date {text!r}: out of range') from None


def judged_submissions(body: dict) -> list[dict]:
    """The entries of a ``GET /submissions`` answer, each with the
    ``due``, ``late`` and ``seconds_late`` that ngshare answers beside it
    (its ``lateness`` list, in the same order: the entries themselves keep
    the two documented keys). Entries of an older server, without that
    list, come back as they are; anything that is no entry is left out."""
    entries = body.get('submissions')
    if not isinstance(entries, list):
        return []
    judged = body.get('lateness')
    if not isinstance(judged, list) or len(judged) != len(entries):
        judged = [{}] * len(entries)
    return [
        {**(late if isinstance(late, dict) else {}), **entry}
        for entry, late in zip(entries, judged)
        if isinstance(entry, dict)
    ]
