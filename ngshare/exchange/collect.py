"""nbgrader collect: download the latest submissions into ``submitted/``.

A submission that cannot be downloaded or written (ngshare's refusal, a
tree with a file that is also a folder or a path leaving the destination,
the file system's refusal) is skipped with an error naming the student and
why, nothing of it is left in ``submitted/``, the other students are
collected, and the step then fails (nbgrader exits 1) listing the skipped
submissions. Running collect again retries exactly those.

Deadlines are ngshare's: ``--before-duedate`` takes each student's latest
submission ngshare judged on time (``late`` false), else their latest
(against a server that does not judge, the gradebook's due date decides, as
in nbgrader's own exchange). Then the gradebook is made to agree with the
due date ngshare applied to each collected submission (an assignment
without a due date gets ngshare's, a student with another due date an
``extension``), so that ``nbgrader autograde`` finds ngshare's lateness.
"""

from __future__ import annotations

import os
from collections import defaultdict

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.utils import parse_utc

from .client import NgshareError
from .deadlines import from_wire, judged_submissions
from .exchange import Exchange, UnsafeTree, describe_os_error
from .gradebook import agree_with_server


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
        for entry in judged_submissions(body):
            by_student[entry['student_id']].append(
                {
                    'student_id': entry['student_id'],
                    'timestamp_text': entry['timestamp'],
                    'timestamp': parse_utc(entry['timestamp']),
                    'late': entry.get('late'),
                    'due': from_wire(entry.get('due')),
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
            if self.before_duedate:
                on_time = [r for r in records if self.on_time(r, duedate)]
                if on_time:
                    chosen = on_time[0]
            self.src_records.append(chosen)
        self.src_records.sort(key=lambda r: r['student_id'])

    @staticmethod
    def on_time(record: dict, duedate) -> bool:
        """ngshare's judgement, or else the gradebook's due date's."""
        if record['late'] is not None:
            return not record['late']
        return duedate is None or record['timestamp'] <= duedate

    def init_dest(self):
        pass

    def record_deadlines(self, collected: list[dict]) -> None:
        """Make the gradebook agree with the due dates ngshare applied to
        the submissions just collected (those it applied one to)."""
        dues = {r['student_id']: r['due'] for r in collected if r['due'] is not None}
        if not dues:
            return
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id

        def assignment_due():
            body = self.client.get('deadline', course_id, assignment_id)
            return from_wire(body.get('due'))

        try:
            changes = agree_with_server(
                self.coursedir.db_url, course_id, assignment_id, dues, assignment_due
            )
        except Exception as exc:  # noqa: BLE001 (ngshare's or the gradebook's)
            self.log.warning(
                "Cannot record ngshare's due dates of '%s' in the gradebook: %s"
                ' (autograde then judges lateness by the gradebook alone)',
                assignment_id,
                exc,
            )
            return
        for change in changes:
            self.log.info("Gradebook, assignment '%s': %s", assignment_id, change)

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
        skipped: list[tuple[str, str]] = []
        collected: list[dict] = []
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
            problem = self.collect_one(record, dest_path)
            if problem is not None:
                self.log.error(
                    'Skipping the submission of %r (%s) to %r of course %r: %s',
                    student_id,
                    record['timestamp_text'],
                    assignment_id,
                    course_id,
                    problem,
                )
                skipped.append((student_id, problem))
            else:
                collected.append(record)
        self.record_deadlines(collected)
        if skipped:
            names = ', '.join(f'{student!r} ({reason})' for student, reason in skipped)
            total = len(self.src_records)
            others = 'the others were' if len(skipped) < total else 'none was'
            self.fail(
                f'Cannot collect {len(skipped)} of {total} submissions to'
                f' assignment {assignment_id!r} of course {course_id!r};'
                f' {others} collected. Skipped: {names}'
            )

    def collect_one(self, record: dict, dest_path: str) -> str | None:
        """Download one submission into ``dest_path``; None, or why not.

        Any failure of this one submission (ngshare's refusal or a network
        error, a tree that cannot be written safely, the file system's
        refusal) is returned as a reason instead of stopping the collect:
        one student's submission must not keep the class from being
        collected. ``staged`` leaves ``dest_path`` as it was.
        """
        course_id, assignment_id = self.course_id, self.coursedir.assignment_id
        student_id, stamp = record['student_id'], record['timestamp_text']
        try:
            body = self.client.get(
                'submission', course_id, assignment_id, student_id, timestamp=stamp
            )
        except NgshareError as exc:
            return f'cannot download it: {exc}'
        temp = None
        try:
            with self.staged(dest_path) as temp:
                self.decode_files(body.get('files'), temp)
                with open(os.path.join(temp, 'timestamp.txt'), 'w') as handle:
                    handle.write(body.get('timestamp') or stamp)
        except UnsafeTree as exc:
            return str(exc)
        except OSError as exc:
            return describe_os_error(exc, temp or dest_path)
        return None
