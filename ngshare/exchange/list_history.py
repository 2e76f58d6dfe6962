"""The history part of ``nbgrader list --cached``: when a submission was
collected and when its feedback was released (and fetched).

The question a student asks at every deadline, "I submitted, why is it not
collected?", is answered where they already look. Each cached submission
gains three keys beside the ones nbgrader's JupyterLab extension reads
(which keep their meaning): ``collected``, ``feedback_released`` and
``feedback_fetched``, each the ``time`` (ISO 8601, UTC) of the latest
``collect``, ``release_feedback`` or ``fetch_feedback`` entry of ngshare's
history for that submission (its student and timestamp), or None. Its log
line gains ``, collected <local time>, feedback released <local time>``.

The data is ``GET /history/<course>?assignment_id=<a>&order=oldest``: one
request per assignment listed (its pages followed up to a bound; a student
is answered only the entries that concern them). History is an addition,
never a reason for the list to fail: an older server without ``/history``
(a 404, JSON or not), a refusal or a network error leave the keys None.
The instructors' ``--inbound`` view is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nbgrader.utils import parse_utc

from .client import NgshareError
from .deadlines import from_wire, local_text

__all__ = ['FIELDS', 'HistoryListing', 'latest_times', 'submission_key']

#: The history actions a submission's list entry tells, and their keys.
FIELDS = {
    'collect': 'collected',
    'release_feedback': 'feedback_released',
    'fetch_feedback': 'feedback_fetched',
}

#: The largest page the server gives, and how many pages one assignment may
#: take: a student's entries for one assignment are a handful, so the bound
#: is never reached but by a server that keeps answering ``next``.
PAGE_SIZE = 1000
MAX_PAGES = 10

#: What the log line says, in this order (``feedback_fetched`` is in the
#: data only: ``(feedback already fetched)`` already says it).
SHOWN = (('collected', 'collected'), ('feedback_released', 'feedback released'))


def submission_key(student_id: object, timestamp: object) -> tuple | None:
    """``(student, instant)`` naming one submission, whichever way its
    timestamp was written (with or without ``UTC``, as 0.6.0 answered;
    microseconds or not), so that the cache's folder name and the history's
    entry meet; None for what names no submission."""
    if not isinstance(student_id, str) or not isinstance(timestamp, str):
        return None
    text = timestamp.strip()
    try:
        return student_id, parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        return student_id, text


def latest_times(entries: Iterable[object]) -> dict[tuple, dict[str, str]]:
    """``{submission_key: {field: time}}`` of history entries given oldest
    first: the last one of each action wins. Entries that are not what the
    API documents (no dict, another action, no readable time) are skipped,
    so that a list never fails on them."""
    found: dict[tuple, dict[str, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        field = FIELDS.get(entry.get('action'))
        key = submission_key(entry.get('student_id'), entry.get('timestamp'))
        when = entry.get('time')
        if field is None or key is None or from_wire(when) is None:
            continue
        found.setdefault(key, {})[field] = when
    return found


class HistoryListing:
    """What :class:`ExchangeList` adds from the history (a mixin of it: uses
    its ``client`` and ``log``)."""

    def with_history(self, submissions: list[dict]) -> list[dict]:
        """``submissions`` (``--cached`` entries), each with the keys of
        :data:`FIELDS`; one history request per course and assignment."""
        students: dict[tuple[str, str], set[str]] = {}
        for info in submissions:
            where = (info['course_id'], info['assignment_id'])
            students.setdefault(where, set()).add(info['student_id'])
        found = {
            where: self.assignment_history(*where, names)
            for where, names in students.items()
        }
        for info in submissions:
            times = found[info['course_id'], info['assignment_id']].get(
                submission_key(info['student_id'], info['timestamp']), {}
            )
            info.update({field: times.get(field) for field in FIELDS.values()})
        return submissions

    def assignment_history(
        self, course_id: str, assignment_id: str, students: set[str]
    ) -> dict[tuple, dict[str, str]]:
        """:func:`latest_times` of one assignment's history ({} when the
        server cannot say). With one student listed, only their entries are
        asked for (an instructor's cache of one student reads no others)."""
        params = {
            'assignment_id': assignment_id,
            'order': 'oldest',
            'limit': str(PAGE_SIZE),
        }
        if len(students) == 1:
            params['student_id'] = next(iter(students))
        entries: list = []
        for _ in range(MAX_PAGES):
            try:
                body = self.client.get('history', course_id, **params)
            except NgshareError as exc:
                # 404: a server without /history, or a course it does not
                # know (a cache of another server); 403: not a member. Said
                # aloud only when something else went wrong (the network).
                expected = exc.status in (403, 404)
                self.log.log(
                    logging.DEBUG if expected else logging.WARNING,
                    'Cannot read the history of %r of course %r: %s',
                    assignment_id,
                    course_id,
                    exc,
                )
                return {}
            page = body.get('history')
            entries += page if isinstance(page, list) else []
            cursor = body.get('next')
            if not isinstance(cursor, str) or not cursor:
                break
            params['cursor'] = cursor
        else:
            self.log.warning(
                'The history of %r of course %r is longer than %d entries:'
                ' collect and feedback times are read from its first ones',
                assignment_id,
                course_id,
                PAGE_SIZE * MAX_PAGES,
            )
        return latest_times(entries)

    @staticmethod
    def history_text(info: dict) -> str:
        """``, collected ..., feedback released ...`` in local time (``TZ``);
        ``''`` for what the history does not tell (and ``--inbound``)."""
        text = ''
        for field, words in SHOWN:
            when = from_wire(info.get(field))
            if when is not None:
                text += f', {words} {local_text(when)}'
        return text
