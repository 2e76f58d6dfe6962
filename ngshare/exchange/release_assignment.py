"""nbgrader release_assignment: upload ``release/<assignment>`` to ngshare.

The assignment's due date in nbgrader's gradebook (``nbgrader db assignment
add ps1 --duedate=...``, formgrader's Manage Assignments) goes with it as
``due``, so that ngshare can show it to students and judge submissions: the
instructor sets it where they always have. A due date that has passed is
not sent (ngshare would refuse the release): the assignment is released
without one, with a warning.
"""

from __future__ import annotations

import os

from nbgrader.exchange.abc import (
    ExchangeReleaseAssignment as ABCExchangeReleaseAssignment,
)

from .client import NgshareError
from .deadlines import local_text, now_utc, to_wire
from .exchange import Exchange
from .gradebook import read_duedate


class ExchangeReleaseAssignment(Exchange, ABCExchangeReleaseAssignment):
    def init_src(self):
        coursedir = self.coursedir
        self.src_path = coursedir.format_path(
            coursedir.release_directory, '.', coursedir.assignment_id
        )
        if not os.path.isdir(self.src_path):
            source = coursedir.format_path(
                coursedir.source_directory, '.', coursedir.assignment_id
            )
            if os.path.isdir(source):
                self.fail(
                    f"Assignment found in '{source}' but not '{self.src_path}',"
                    ' run `nbgrader generate_assignment` first.'
                )
            self.fail(f'Assignment not found at: {self.src_path}')

    def init_dest(self):
        self.course_id = self.require_course()

    def due_field(self, course_id: str, assignment_id: str) -> dict[str, str]:
        """``{'due': ISO}`` from the gradebook's due date, or ``{}``."""
        try:
            due = read_duedate(self.coursedir.db_url, course_id, assignment_id)
        except Exception as exc:  # noqa: BLE001 (any gradebook failure)
            self.log.warning(
                'Cannot read the due date of %s from the gradebook (%s):'
                ' releasing it without one',
                assignment_id,
                exc,
            )
            return {}
        if due is None:
            return {}
        if due <= now_utc():
            self.log.warning(
                'The due date of %s in the gradebook, %s, has passed: releasing'
                ' it without a due date (set a later one in the gradebook, or'
                ' with ngshare-course-management set_due_date)',
                assignment_id,
                local_text(due),
            )
            return {}
        self.log.info('Due date: %s', local_text(due))
        return {'due': to_wire(due)}

    def copy_files(self):
        course_id = self.course_id
        assignment_id = self.coursedir.assignment_id
        what = self.what('release assignment', course_id, assignment_id)
        files = self.encode_tree(self.src_path, what)
        fields = self.due_field(course_id, assignment_id)
        self.log.info('Source: %s', self.src_path)
        self.log.info('Destination: %s', self.client.url)
        if self.force:
            try:
                self.client.delete('assignment', course_id, assignment_id)
            except NgshareError as exc:
                if exc.message != 'Assignment not found':
                    self.fail(f'Cannot {what} with --force: {exc}')
            else:
                self.log.warning(
                    'Replaced the released %s %s: its earlier submissions and'
                    ' feedback on ngshare are deleted too (an ngshare admin'
                    ' can restore them: ngshare-admin deleted)',
                    course_id,
                    assignment_id,
                )
        # The encoding follows the latest answer of the server: with --force
        # the DELETE's; without, this POST is the command's first request,
        # so it is the documented base64 JSON, which every server takes.
        try:
            self.client.upload(
                'POST', ('assignment', course_id, assignment_id), files, **fields
            )
        except NgshareError as exc:
            if exc.message == 'Assignment already exists':
                self.fail(
                    f'Cannot {what}: it is already released; add --force to'
                    ' replace it (this deletes its submissions on ngshare)'
                )
            self.fail(f'Cannot {what}: {exc}')
        self.log.info('Released as: %s %s', course_id, assignment_id)
