"""The deadline part of ``nbgrader list``: due dates and lateness.

Added keys only, beside the ones nbgrader's JupyterLab extension and
formgrader read (which keep their meaning):

* released (student view): ``due_date`` (ISO 8601, UTC, or None: the
  student's own, extension included), ``late_policy`` (``accept``,
  ``refuse``, None from a server without deadlines), ``cutoff`` (when
  submissions close, or None) from the answer to ``GET /assignments``
  the listing asks anyway; and ``submissions``, the student's submissions
  as ngshare judged them (``timestamp``, ``due_date``, ``late``,
  ``seconds_late``), asked for (one request) only for an assignment with a
  due date or one this machine's cache says was submitted;
* inbound and cached submissions: ``due_date``, ``late``, ``seconds_late``
  from the server (one request per assignment for the cached view).

Log lines keep their beginning and gain the due date in the student's local
time and how late a submission was.
"""

from __future__ import annotations

import glob
import os

from nbgrader.utils import parse_utc

from .client import NgshareError
from .deadlines import from_wire, how_late, judged_submissions, local_text

__all__ = ['DeadlineListing', 'lateness_fields']

#: Refusals that mean "nothing submitted here", not a failure of the list.
NOTHING_HERE = (
    'Student not found',
    'Assignment not found',
    'Course not found',
    'Submission not found',
)


def lateness_fields(entry: dict | None) -> dict:
    """``due_date``, ``late``, ``seconds_late`` of one of ngshare's
    submission entries (None each when the server did not say)."""
    entry = entry or {}
    return {
        'due_date': entry.get('due'),
        'late': entry.get('late'),
        'seconds_late': entry.get('seconds_late'),
    }


def _local_timestamp(timestamp: str) -> str:
    try:
        return local_text(parse_utc(timestamp))
    except (ValueError, OverflowError, TypeError):
        return timestamp


class DeadlineListing:
    """What :class:`ExchangeList` adds for deadlines (a mixin of it: uses its
    ``client``, ``call``, ``what``, ``cache`` and ``username``)."""

    # -- released assignments ------------------------------------------

    def remember_deadlines(self, course_id: str, body: dict) -> None:
        """Keep the ``deadlines`` of a ``GET /assignments`` answer."""
        deadlines = body.get('deadlines')
        if not hasattr(self, '_deadlines'):
            self._deadlines = {}
        self._deadlines[course_id] = deadlines if isinstance(deadlines, dict) else {}

    def deadline_fields(self, course_id: str, assignment_id: str) -> dict:
        deadline = getattr(self, '_deadlines', {}).get(course_id, {}).get(assignment_id)
        deadline = deadline if isinstance(deadline, dict) else {}
        fields = {
            'due_date': deadline.get('due'),
            'late_policy': deadline.get('late_policy'),
            'cutoff': deadline.get('cutoff'),
        }
        ask = fields['due_date'] is not None or self.submitted_from_here(
            course_id, assignment_id
        )
        fields['submissions'] = (
            self.own_submissions(course_id, assignment_id) if ask else []
        )
        return fields

    def submitted_from_here(self, course_id: str, assignment_id: str) -> bool:
        pattern = os.path.join(
            glob.escape(os.path.join(self.cache, course_id)),
            glob.escape(f'{self.username}+{assignment_id}+') + '*',
        )
        return bool(glob.glob(pattern))

    def own_submissions(self, course_id: str, assignment_id: str) -> list[dict]:
        entries = self.submission_entries(course_id, assignment_id, self.username)
        return [
            {'timestamp': entry.get('timestamp'), **lateness_fields(entry)}
            for entry in entries
        ]

    def submission_entries(
        self, course_id: str, assignment_id: str, student_id: str
    ) -> list[dict]:
        """``GET /submissions/<c>/<a>/<s>``; [] when there is nothing."""
        try:
            body = self.client.get('submissions', course_id, assignment_id, student_id)
        except NgshareError as exc:
            if exc.message in NOTHING_HERE:
                return []
            self.fail(
                'Cannot '
                + self.what(
                    f'list the submissions of {student_id!r} to assignment',
                    course_id,
                    assignment_id,
                )
                + f': {exc}'
            )
        return judged_submissions(body)

    # -- submissions ----------------------------------------------------

    def cached_lateness(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str
    ) -> dict:
        """The server's judgement of a cached submission (one request per
        assignment and student)."""
        if not hasattr(self, '_judged'):
            self._judged = {}
        key = (course_id, assignment_id, student_id)
        if key not in self._judged:
            self._judged[key] = {
                entry.get('timestamp'): entry for entry in self.submission_entries(*key)
            }
        return lateness_fields(self._judged[key].get(timestamp))

    # -- log lines --------------------------------------------------------

    @staticmethod
    def released_text(info: dict) -> str:
        """``, due ...; submitted ..., on time`` for a released assignment."""
        text = ''
        due = from_wire(info.get('due_date'))
        if due is not None:
            text += f', due {local_text(due)}'
            cutoff = from_wire(info.get('cutoff'))
            if cutoff is not None:
                text += f' (submissions close {local_text(cutoff)})'
        submissions = info.get('submissions') or []
        if submissions:
            latest = submissions[-1]
            text += f'; submitted {_local_timestamp(latest.get("timestamp") or "")}'
            judged = how_late(latest)
            if judged:
                text += f', {judged}'
        return text

    @staticmethod
    def submission_text(info: dict) -> str:
        """``, 3 minutes late`` (or ``, on time``) when there was a due date."""
        if info.get('due_date') is None:
            return ''
        judged = how_late(info)
        return f', {judged}' if judged else ''
