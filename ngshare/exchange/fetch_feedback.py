"""nbgrader fetch_feedback: download feedback on the student's submissions.

Feedback lands where nbgrader's own exchange puts it:
``<assignment>/feedback/<timestamp>/<notebook>.html``. The submissions are
asked of ngshare (not only looked up in the local cache), so feedback can be
fetched on a new server or after the cache was cleared.
"""

from __future__ import annotations

import os

from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCExchangeFetchFeedback

from .exchange import Exchange


class ExchangeFetchFeedback(Exchange, ABCExchangeFetchFeedback):
    def init_src(self):
        self.course_id = course_id = self.require_course()
        student_id = self.coursedir.student_id
        if student_id not in ('', '*'):
            if '*' in student_id or '+' in student_id:
                self.fail(
                    f"The student ID should contain no '*' nor '+'; got {student_id}"
                )
            self.student_id = student_id
        else:
            self.student_id = self.username
        assignment_id = self.coursedir.assignment_id
        if assignment_id in ('', '*'):
            body = self.call(
                self.what('list the assignments', course_id),
                lambda: self.client.get('assignments', course_id),
            )
            assignments = body.get('assignments', [])
        else:
            assignments = [assignment_id]
        self.submissions = []
        for name in assignments:
            body = self.call(
                self.what('list your submissions to assignment', course_id, name),
                lambda name=name: self.client.get(
                    'submissions', course_id, name, self.student_id
                ),
            )
            for entry in body.get('submissions', []):
                self.submissions.append((name, entry['timestamp']))

    def init_dest(self):
        pass

    def copy_files(self):
        course_id = self.course_id
        self.log.info('Source: %s', self.client.url)
        if not self.submissions:
            self.log.warning(
                'No submissions of %s in course %s: no feedback to fetch',
                self.coursedir.assignment_id or 'any assignment',
                course_id,
            )
        found = 0
        for assignment_id, timestamp in self.submissions:
            what = self.what(
                f'fetch feedback on your submission of {timestamp} to assignment',
                course_id,
                assignment_id,
            )
            body = self.call(
                what,
                lambda a=assignment_id, t=timestamp: self.client.get(
                    'feedback', course_id, a, self.student_id, timestamp=t
                ),
            )
            files = body.get('files') or []
            if not files:
                self.log.warning(
                    "Could not find feedback for '%s/%s' submitted at %s",
                    course_id,
                    assignment_id,
                    timestamp,
                )
                continue
            dest = os.path.join(
                os.path.abspath(self.local_assignment_dir(course_id, assignment_id)),
                'feedback',
                timestamp,
            )
            with self.staged(dest) as temp:
                written = self.decode_or_fail(files, temp, what, skip_ignored=False)
            for path in written:
                self.log.info('Fetched feedback: %s', os.path.join(dest, path))
            found += 1
        if self.submissions and not found:
            self.log.warning('No feedback available yet')
