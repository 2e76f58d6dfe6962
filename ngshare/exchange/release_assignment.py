"""nbgrader release_assignment: upload ``release/<assignment>`` to ngshare."""

from __future__ import annotations

import os

from nbgrader.exchange.abc import (
    ExchangeReleaseAssignment as ABCExchangeReleaseAssignment,
)

from .client import NgshareError
from .exchange import Exchange


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

    def copy_files(self):
        course_id = self.course_id
        assignment_id = self.coursedir.assignment_id
        what = self.what('release assignment', course_id, assignment_id)
        files = self.encode_tree(self.src_path, what)
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
            self.client.upload('POST', ('assignment', course_id, assignment_id), files)
        except NgshareError as exc:
            if exc.message == 'Assignment already exists':
                self.fail(
                    f'Cannot {what}: it is already released; add --force to'
                    ' replace it (this deletes its submissions on ngshare)'
                )
            self.fail(f'Cannot {what}: {exc}')
        self.log.info('Released as: %s %s', course_id, assignment_id)
