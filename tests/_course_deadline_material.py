"""What the deadline phases of the e2e course use (:mod:`_course_deadlines`).

The second assignment, each user's local time zone (a POSIX ``TZ``, so that
no zone database is needed), how far ahead the due date goes, what the
phases remember for the ones after them (:class:`Deadlines`, per course),
and how an instant and a lateness read where a user sees them, written here
independently of the plugin so that its output is checked, not repeated.
"""

from __future__ import annotations

import dataclasses
import datetime
import weakref
from pathlib import Path

from _course_harness import Course, User
from _course_material import COURSE, ERIC, GRACE, KEVIN, LAWRENCE

ASSIGNMENT2 = 'ps2'
NOTEBOOK2 = f'{ASSIGNMENT2}.ipynb'
UTC = datetime.timezone.utc

# Each user's local time (a POSIX TZ, so that no zone database is needed:
# "ABC+3:30" is 3:30 west of UTC) and the same zone for the checks.
ZONES = {
    KEVIN.name: ('KKT-1', datetime.timezone(datetime.timedelta(hours=1))),
    LAWRENCE.name: ('ABC+3:30', datetime.timezone(-datetime.timedelta(hours=3.5))),
    ERIC.name: ('XYZ-5:45', datetime.timezone(datetime.timedelta(hours=5.75))),
    GRACE.name: ('UTC0', UTC),
}
STUDENTS = (LAWRENCE.name, ERIC.name, GRACE.name)
# The due date goes out an hour ahead, so that the on-time steps are on
# time however slow the machine; once they are done, the instructor moves
# it a few seconds ahead (MOVED_AHEAD) and the course waits for it to pass.
FIRST_DUE_AHEAD = datetime.timedelta(hours=1)
MOVED_AHEAD = datetime.timedelta(seconds=3)
EXTENSION = datetime.timedelta(minutes=30)


@dataclasses.dataclass
class Deadlines:
    """What the deadline phases set and saw, for the phases after them."""

    due: datetime.datetime  # naive UTC, whole seconds
    extended: datetime.datetime  # grace's extension, naive UTC
    released: dict[str, str] = dataclasses.field(default_factory=dict)
    # per student, in order: (timestamp, server's entry, files)
    submissions: dict[str, list[tuple[str, dict, dict]]] = dataclasses.field(
        default_factory=dict
    )

    def due_of(self, name: str) -> datetime.datetime:
        return self.extended if name == GRACE.name else self.due


_STATE: weakref.WeakKeyDictionary[Course, Deadlines] = weakref.WeakKeyDictionary()


def start_deadlines(course: Course, state: Deadlines) -> Deadlines:
    """Remember ``state`` for the later deadline phases of ``course``."""
    _STATE[course] = state
    return state


def deadlines_of(course: Course) -> Deadlines:
    return _STATE[course]


def wire(instant: datetime.datetime | None) -> str | None:
    """An instant as ngshare writes it (``2026-12-01T17:00:00+00:00``)."""
    if instant is None:
        return None
    return instant.replace(tzinfo=UTC).isoformat()


def shown_locally(name: str, instant: datetime.datetime) -> str:
    """``instant`` as ``name`` reads it: their local time, with their zone."""
    spec, zone = ZONES[name]
    local = instant.replace(tzinfo=UTC).astimezone(zone)
    abbreviation = spec.rstrip('+-:0123456789')
    return f'{local:%Y-%m-%d %H:%M:%S} {abbreviation}'


def spoken_seconds(seconds: float) -> str:
    """How late, as a person says it, for less than a minute."""
    whole = int(seconds)
    assert 0 < seconds < 60, f'{seconds}s late: not what the course expects'
    if whole == 0:
        return 'less than a second late'
    return f'{whole} second{"" if whole == 1 else "s"} late'


def verdict(entry: dict) -> str:
    """What a list says of a submission ngshare judged so."""
    return spoken_seconds(entry['seconds_late']) if entry['late'] else 'on time'


def in_zone(user: User, **more: str) -> dict[str, str]:
    return user.env(TZ=ZONES[user.name][0], **more)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC).replace(tzinfo=None)


def parse_stamp(text: str) -> datetime.datetime:
    from nbgrader.utils import parse_utc

    return parse_utc(text)


def cached_submissions(user: User) -> dict[str, Path]:
    cache = user.home / '.local' / 'share' / 'jupyter' / 'nbgrader_cache' / COURSE
    return {
        path.name.split('+', 2)[2]: path
        for path in cache.glob(f'{user.name}+{ASSIGNMENT2}+*')
    }


def judged_entries(body: dict) -> list[dict]:
    """The submissions of a list answer, each with ngshare's judgement
    (``due``, ``late``, ``seconds_late``): in the entries themselves, or in
    ``lateness``, the list beside them in the same order (where the entries
    stay exactly as 0.6.0 answered them)."""
    entries = body['submissions']
    if 'lateness' in body:
        assert len(body['lateness']) == len(entries), body
        entries = [{**e, **j} for e, j in zip(entries, body['lateness'], strict=True)]
    for entry in entries:
        assert {'due', 'late', 'seconds_late'} <= set(entry), body
    return entries


def server_entries(user: User, name: str) -> list[dict]:
    body = user.api_ok('GET', 'submissions', COURSE, ASSIGNMENT2, name)
    return judged_entries(body)


def listed_line(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if prefix in line]
    assert len(lines) == 1, f'expected one line with {prefix!r}: {output}'
    return lines[0]
