"""nbgrader release_feedback: upload ``feedback/<student>/<assignment>``."""

from __future__ import annotations

import glob
import os
import re
from collections import defaultdict

from nbgrader.exchange.abc import (
    ExchangeReleaseFeedback as ABCExchangeReleaseFeedback,
)

from .client import NgshareError
from .exchange import Exchange
from .uploads import upload_file


class ExchangeReleaseFeedback(Exchange, ABCExchangeReleaseFeedback):
    def init_src(self):
        student_id = self.coursedir.student_id or '*'
        self.src_path = self.coursedir.format_path(
            self.coursedir.feedback_directory, student_id, self.coursedir.assignment_id
        )

    def init_dest(self):
        self.course_id = self.require_course()

    def staged_feedback(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """``{(student, timestamp): [(notebook_id, html path)]}`` to upload."""
        coursedir = self.coursedir
        exclude = set(filter(None, (coursedir.student_id_exclude or '').split(',')))
        pattern = re.escape(os.path.sep).join(
            [
                coursedir.format_path(
                    coursedir.feedback_directory,
                    '(?P<student_id>.*)',
                    coursedir.assignment_id,
                    escape=True,
                ),
                '(?P<notebook_id>.*).html',
            ]
        )
        staged = defaultdict(list)
        for html in sorted(glob.glob(os.path.join(self.src_path, '*.html'))):
            match = re.match(pattern, html)
            if match is None:
                self.log.error("Could not match '%s' with regexp '%s'", html, pattern)
                continue
            student_id, notebook_id = match.group('student_id', 'notebook_id')
            if student_id in exclude:
                self.log.debug("Skipping student '%s'", student_id)
                continue
            stamp_file = os.path.join(os.path.dirname(html), 'timestamp.txt')
            try:
                with open(stamp_file) as handle:
                    timestamp = handle.read().strip()
            except OSError:
                self.fail(
                    f'Cannot release feedback {html}: {stamp_file} is missing'
                    ' (run nbgrader generate_feedback again)'
                )
            staged[(student_id, timestamp)].append((notebook_id, html))
        return staged

    def copy_files(self):
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        staged = self.staged_feedback()
        if not staged:
            self.log.warning(
                'No feedback to release for %s %s in %s',
                course_id,
                assignment_id,
                self.src_path,
            )
        failures = []
        for (student_id, timestamp), notebooks in sorted(staged.items()):
            files = []
            for notebook_id, html in notebooks:
                with open(html, 'rb') as handle:
                    files.append(upload_file(f'{notebook_id}.html', handle.read()))
            self.log.info(
                "Releasing feedback for student '%s' on assignment '%s/%s' (%s)",
                student_id,
                course_id,
                assignment_id,
                timestamp,
            )
            # Each upload's encoding follows the previous answer: the first
            # is the documented base64 JSON (nothing answered yet), the others
            # raw parts when the server offers them.
            try:
                self.client.upload(
                    'POST',
                    ('feedback', course_id, assignment_id, student_id),
                    files,
                    timestamp=timestamp,
                )
            except NgshareError as exc:
                self.log.error(
                    'Cannot release feedback for %s (%s): %s',
                    student_id,
                    timestamp,
                    exc,
                )
                failures.append(f'{student_id} ({exc})')
                if exc.status is None:  # unreachable: no point going on
                    break
        if failures:
            self.fail(
                f'Cannot release feedback on assignment {assignment_id!r} of'
                f' course {course_id!r} for: {", ".join(failures)}'
            )
