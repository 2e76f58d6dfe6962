"""nbgrader submit: upload the student's copy, keep it in the local cache.

ngshare judges the submission against the student's due date (their
extension included) with its own clock, and says so in its answer: a late
submission is accepted with a warning naming the due date in the student's
local time and how late it is; with the assignment's ``refuse`` policy a
submission after the cut-off is refused (403, the server's message, which
names the deadline), and ``nbgrader submit`` exits with status 1.
"""

from __future__ import annotations

import os
import shutil

from nbgrader.exchange.abc import ExchangeSubmit as ABCExchangeSubmit
from nbgrader.utils import find_all_notebooks, ignore_patterns

from .client import NgshareError
from .deadlines import from_wire, how_late, local_text
from .exchange import Exchange

#: How ngshare's refusal of a late submission begins; the instant follows.
CLOSED_PREFIX = 'Deadline passed: submissions closed at'


def closed_locally(error: NgshareError) -> str:
    """The deadline of a refusal in the student's local time (or '')."""
    message = error.message or ''
    if error.status != 403 or not message.startswith(CLOSED_PREFIX):
        return ''
    closed = from_wire(message[len(CLOSED_PREFIX) :].strip())
    return f' ({local_text(closed)} your time)' if closed else ''


class ExchangeSubmit(Exchange, ABCExchangeSubmit):
    def init_src(self):
        coursedir = self.coursedir
        if self.path_includes_course:
            root = os.path.join(coursedir.course_id, coursedir.assignment_id)
        else:
            root = coursedir.assignment_id
        self.src_path = os.path.abspath(os.path.join(self.assignment_dir, root))
        coursedir.assignment_id = os.path.split(self.src_path)[-1]
        if not os.path.isdir(self.src_path):
            self.fail(f'Assignment not found at: {self.src_path}')

    def init_dest(self):
        self.course_id = self.require_course()
        student_id = self.coursedir.student_id
        if student_id not in ('', '*') and student_id != self.username:
            self.fail(
                f'Cannot submit as {student_id!r}: ngshare records every'
                ' submission under the name of the signed-in user'
                f' ({self.username!r}).'
            )
        self.cache_path = os.path.join(self.cache, self.course_id)

    def check_filename_diff(self, what: str) -> None:
        """Compare the notebooks with the released ones, as nbgrader does."""
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        body = self.call(
            what,
            lambda: self.client.get(
                'assignment', course_id, assignment_id, list_only='true'
            ),
        )
        released = sorted(
            f['path'] for f in body.get('files', []) if f['path'].endswith('.ipynb')
        )
        submitted = find_all_notebooks(self.src_path)
        release_diff = [
            f'{name}: {"FOUND" if name in submitted else "MISSING"}'
            for name in released
        ]
        submitted_diff = [
            f'{name}: {"OK" if name in released else "EXTRA"}' for name in submitted
        ]
        missing = any(name not in submitted for name in released)
        extra = any(name not in released for name in submitted)
        if not (missing or extra):
            return
        diff = 'Expected:\n\t{}\nSubmitted:\n\t{}'.format(
            '\n\t'.join(release_diff), '\n\t'.join(submitted_diff)
        )
        if missing and self.strict:
            self.fail(
                f'Assignment {assignment_id} not submitted. There are missing'
                f' notebooks for the submission:\n{diff}'
            )
        self.log.warning(
            'Possible missing notebooks and/or extra notebooks submitted for'
            ' assignment %s:\n%s',
            assignment_id,
            diff,
        )

    def copy_files(self):
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        what = self.what('submit assignment', course_id, assignment_id)
        self.log.info('Source: %s', self.src_path)
        self.log.info('Destination: %s', self.client.url)
        # check_filename_diff's GET also tells which upload encodings the
        # server takes, so that the upload is raw parts for a server that
        # offers them and the documented base64 JSON for any other.
        self.check_filename_diff(what)
        files = self.encode_tree(self.src_path, what)
        try:
            body = self.client.upload(
                'POST', ('submission', course_id, assignment_id), files
            )
        except NgshareError as exc:
            self.fail(f'Cannot {what}: {exc}{closed_locally(exc)}')
        timestamp = body.get('timestamp')
        if not isinstance(timestamp, str) or not timestamp:
            self.fail(f'Cannot {what}: ngshare answered without a timestamp')
        self.timestamp = timestamp

        # The local copy, as nbgrader's exchange keeps it: what was sent.
        cache_path = os.path.join(
            self.cache_path, f'{self.username}+{assignment_id}+{timestamp}'
        )
        os.makedirs(self.cache_path, exist_ok=True)
        if os.path.isdir(cache_path):
            shutil.rmtree(cache_path)
        shutil.copytree(
            self.src_path,
            cache_path,
            ignore=ignore_patterns(
                exclude=self.coursedir.ignore,
                include=self.coursedir.include,
                max_file_size=self.coursedir.max_file_size,
            ),
        )
        with open(os.path.join(cache_path, 'timestamp.txt'), 'w') as handle:
            handle.write(timestamp)
        self.log.info('Submitted as: %s %s %s', course_id, assignment_id, timestamp)
        if body.get('late'):
            self.log.warning(
                'This submission of %s is %s: it was due %s',
                assignment_id,
                how_late(body),
                local_text(from_wire(body.get('due'))),
            )
