"""nbgrader fetch_assignment: download a released assignment from ngshare."""

from __future__ import annotations

import os

from nbgrader.exchange.abc import (
    ExchangeFetchAssignment as ABCExchangeFetchAssignment,
)

from .exchange import Exchange


class ExchangeFetchAssignment(Exchange, ABCExchangeFetchAssignment):
    def init_src(self):
        self.course_id = self.require_course()
        if not self.coursedir.assignment_id:
            self.fail('No assignment specified.')

    def init_dest(self):
        assignment_id = self.coursedir.assignment_id
        self.dest_path = os.path.abspath(
            self.local_assignment_dir(self.course_id, assignment_id)
        )
        if os.path.isdir(self.dest_path) and not self.replace_missing_files:
            root = os.path.relpath(self.dest_path, os.path.abspath(self.assignment_dir))
            self.fail(
                f'You already have a copy of the assignment in this directory: {root}'
            )

    def copy_files(self):
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        what = self.what('fetch assignment', course_id, assignment_id)
        self.log.info('Source: %s', self.client.url)
        self.log.info('Destination: %s', self.dest_path)
        body = self.call(
            what, lambda: self.client.get('assignment', course_id, assignment_id)
        )
        files = body.get('files')
        if os.path.isdir(self.dest_path):
            self.decode_or_fail(files, self.dest_path, what, only_missing=True)
        else:
            with self.staged(self.dest_path) as temp:
                self.decode_or_fail(files, temp, what)
        self.log.info('Fetched as: %s %s', course_id, assignment_id)
