"""Submission timestamps in the documented format.

The API answers ``%Y-%m-%d %H:%M:%S.%f UTC``. Clients send timestamps back
as they received them, and older servers (0.6.0) omitted the zone, so both
forms are accepted, with or without the fractional part. Internally a
timestamp is a naive ``datetime`` in UTC, as 0.6.0 stored it.
"""

from __future__ import annotations

import datetime

from .errors import ApiError, bad_request

_FORMATS = ('%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S')
_UTC_SUFFIX = ' UTC'


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def format_timestamp(value: datetime.datetime) -> str:
    """``%Y-%m-%d %H:%M:%S.%f UTC``: the same text as that ``strftime``
    (microseconds always written), for a tenth of its cost (every listed
    submission is formatted)."""
    return value.isoformat(' ', 'microseconds') + _UTC_SUFFIX


def parsed_or_none(text: str | None) -> datetime.datetime | None:
    """The instant ``text`` names, or None when it is absent or malformed
    (for shortcuts that leave the refusal to the long way)."""
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ApiError:
        return None


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse a client's ``timestamp`` or raise 400 ``Time format incorrect``."""
    value = text.strip()
    if value.endswith(_UTC_SUFFIX):
        value = value[: -len(_UTC_SUFFIX)]
    for fmt in _FORMATS:
        try:
            return datetime.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise bad_request('Time format incorrect')
