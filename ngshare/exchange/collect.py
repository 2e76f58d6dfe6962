"""nbgrader collect: download the latest submissions into ``submitted/``."""

from __future__ import annotations

import os
from collections import defaultdict

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.utils import parse_utc

from .exchange import Exchange


class ExchangeCollect(Exchange, ABCExchangeCollect):
    def init_src(self):
        course_id = self.course_id = self.require_course()
        assignment_id = self.coursedir.assignment_id
        what = self.what('list the submissions to assignment', course_id, assignment_id)
        student_id = self.coursedir.student_id
        segments = ['submissions', course_id, assignment_id]
        if student_id not in ('', '*'):
            segments.append(student_id)
        body = self.call(what, lambda: self.client.get(*segments))
        by_student = defaultdict(list)
        for entry in body.get('submissions', []):
            by_student[entry['student_id']].append(
                {
                    'student_id': entry['student_id'],
                    'timestamp_text': entry['timestamp'],
                    'timestamp': parse_utc(entry['timestamp']),
                }
            )

        with Gradebook(self.coursedir.db_url, course_id) as gb:
            try:
                duedate = gb.find_assignment(assignment_id).duedate
            except MissingEntry:
                duedate = None
        self.src_records = []
        for records in by_student.values():
            records.sort(key=lambda r: r['timestamp'], reverse=True)
            chosen = records[0]
            if duedate is not None and self.before_duedate:
                on_time = [r for r in records if r['timestamp'] <= duedate]
                if on_time:
                    chosen = on_time[0]
            self.src_records.append(chosen)
        self.src_records.sort(key=lambda r: r['student_id'])

    def init_dest(self):
        pass

    def copy_files(self):
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        if not self.src_records:
            self.log.warning(
                "No submissions of '%s' for course '%s' to collect",
                assignment_id,
                course_id,
            )
        else:
            self.log.info(
                "Processing %d submissions of '%s' for course '%s'",
                len(self.src_records),
                assignment_id,
                course_id,
            )
        for record in self.src_records:
            student_id = record['student_id']
            dest_path = self.coursedir.format_path(
                self.coursedir.submitted_directory, student_id, assignment_id
            )
            copy = updating = False
            if os.path.isdir(dest_path):
                existing = self.coursedir.get_existing_timestamp(dest_path)
                new = record['timestamp']
                newer = self.update and (existing is None or new > existing)
                other = self.before_duedate and existing != new
                copy = updating = newer or other
            else:
                copy = True
            if not copy:
                if self.update:
                    self.log.info(
                        'No newer submission to collect: %s %s',
                        student_id,
                        assignment_id,
                    )
                else:
                    self.log.info(
                        'Submission already exists, use --update to update: %s %s',
                        student_id,
                        assignment_id,
                    )
                continue
            self.log.info(
                '%s submission: %s %s',
                'Updating' if updating else 'Collecting',
                student_id,
                assignment_id,
            )
            what = self.what(
                f'collect the submission of {student_id!r} to assignment',
                course_id,
                assignment_id,
            )
            stamp = record['timestamp_text']
            body = self.call(
                what,
                lambda student_id=student_id, stamp=stamp: self.client.get(
                    'submission',
                    course_id,
                    assignment_id,
                    student_id,
                    timestamp=stamp,
                ),
            )
            with self.staged(dest_path) as temp:
                self.decode_files(body.get('files'), temp, what)
                with open(os.path.join(temp, 'timestamp.txt'), 'w') as handle:
                    handle.write(body.get('timestamp') or stamp)
