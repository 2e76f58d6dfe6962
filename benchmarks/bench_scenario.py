"""The deadline scenario: the life of one assignment of a whole course.

Run against one stand-alone server (the caller named by the ``user``
parameter), as many students at once as ``--concurrency`` allows; every
answer is checked against what was sent (contents, checksums, timestamps).
The steps are listed in ``deadline.py``'s docstring and ``README.md``.

Every body of a step is built before the step's clock starts
(``bench_wire.py``), content still unique per student and round. Answers
are checked without decoding them: base64 texts are compared, and a fetch
storm answer byte for byte with one already checked in full. Each
student's latest submission text is kept for the checks during the run.
"""

from __future__ import annotations

import json
import random
import threading
import time

from bench_big import BigBody, ExpectedTexts, receive_big, send_big
from bench_client import MIB, Client, ServerProcess, StepRunner, step_header
from bench_content import feedback_html, notebook
from bench_wire import (
    FORM,
    MULTIPART,
    form_body,
    md5_hex,
    same_tree,
    tree_text,
    upload_body,
)


class Deadline(StepRunner):
    """One run of the scenario against the server at ``url``, uploading in
    ``encoding``; ``pid`` (same machine) adds its CPU and memory, ``health``
    (a URL) a probe during the rush and the big transfer."""

    def __init__(self, options, *, url, pid=None, course=None, encoding=FORM,
                 health=None):  # fmt: skip
        self.options = options
        self.encoding = encoding
        super().__init__(ServerProcess(pid), health, options.concurrency)
        self.client = Client(url)
        self.course = course or f'deadline-{time.strftime("%Y%m%d-%H%M%S")}'
        self.assignment = 'ps1'
        self.admin, self.instructor = options.admin, options.instructor
        width = len(str(options.students))
        count = options.students
        self.students = [f'student{i:0{width}d}' for i in range(1, count + 1)]
        # Every k-th student (k = 1 / --resubmit-fraction) submits twice.
        self.twice = set()
        if options.resubmit_fraction > 0:
            every = max(1, round(1 / options.resubmit_fraction))
            self.twice = set(self.students[::every])
        self.count_check = None
        # student -> [(timestamp, md5 of the notebook)], in submission order
        self.submitted: dict[str, list[tuple[str, str]]] = {}
        # student -> (timestamp, base64 text) of the latest submission
        self.latest_text: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()

    def upload(self, user: str, files: dict[str, bytes], **fields: str):
        return upload_body(self.encoding, {**fields, 'user': user}, files)

    # the scenario

    def run(self) -> int:
        print(step_header())
        self.create_course()
        self.add_roster()
        released = self.release()
        self.fetch_storm(released)
        self.deadline_rush()
        self.check_count()
        self.listings()
        self.collect()
        self.feedback()
        if self.options.big_file_mb > 0:
            self.big_round_trip(int(self.options.big_file_mb * 1000 * 1000))
        if self.options.cleanup:
            request = self.client.request('DELETE', ('course', self.course), self.admin)
            step = self.step('cleanup')
            self.client.call(step, request)
            self.end(step)
        self.pool.shutdown()
        self.latest_text.clear()  # a hundred MB of text: the report keeps runs
        print(f'requests: {self.requests_made()}')
        print(f'errors: {self.errors()}')
        print(f'count check: {"passed" if self.count_check else "FAILED"}')
        return 0 if self.passed() else 1

    def requests_made(self) -> int:
        return sum(len(step.latencies) for step in self.steps)

    def errors(self) -> int:
        return sum(len(step.errors) for step in self.steps)

    def passed(self) -> bool:
        return self.errors() == 0 and bool(self.count_check)

    def create_course(self) -> None:
        body = form_body(
            {'instructors': json.dumps([self.instructor]), 'user': self.admin}
        )
        request = self.client.request(
            'POST', ('course', self.course), self.admin, body=body
        )
        step = self.step('course')
        self.client.call(step, request)
        self.end(step)

    def add_roster(self) -> None:
        roster = [
            {
                'username': name,
                'first_name': 'Student',
                'last_name': name,
                'email': f'{name}@example.org',
            }
            for name in self.students
        ]
        body = form_body({'students': json.dumps(roster), 'user': self.instructor})
        request = self.client.request(
            'POST', ('students', self.course), self.instructor, body=body
        )
        step = self.step('roster')
        answer = self.client.call(step, request)
        if answer is not None:
            failed = [s for s in answer['status'] if not s['success']]
            if failed or len(answer['status']) != len(roster):
                step.fail(f'roster: {len(failed)} students not added')
        self.end(step)

    def release(self) -> dict[str, bytes]:
        options = self.options
        rng = random.Random(0)
        files = {'ps1.ipynb': notebook('release', options.release_kb * 1000)}
        for i in range(options.data_files):
            files[f'data/table{i}.csv'] = rng.randbytes(options.data_kb * 1000)
        if options.release_mb > 0:
            files['data/large.bin'] = rng.randbytes(int(options.release_mb * 10**6))
        body = self.upload(self.instructor, files)
        segments = ('assignment', self.course, self.assignment)
        request = self.client.request('POST', segments, self.instructor, body=body)
        step = self.step('release')
        self.client.call(step, request)
        formats = (self.client.upload_formats or '').replace(' ', '').split(',')
        if self.encoding == MULTIPART and MULTIPART not in formats:
            # Its answers would be of another format's code path, or errors.
            step.fail(f'the server does not advertise {MULTIPART} uploads')
        self.end(step)
        return files

    def fetch_storm(self, released: dict[str, bytes]) -> None:
        expected = tree_text(released)
        checked = []  # answers (bytes) found to hold exactly the release
        segments = ('assignment', self.course, self.assignment)
        requests = {s: self.client.request('GET', segments, s) for s in self.students}

        def fetch(step, student):
            content = self.client.call(step, requests[student], raw=True)
            if content is None or content in checked:  # bytes compared: memcmp
                return
            answer = json.loads(content)
            if answer.get('success') and same_tree(answer, expected):
                with self.lock:
                    checked[:] = [content]
            else:
                step.fail(f'{student} fetched other files than released')

        step = self.step('fetch storm')
        self.each(step, fetch, self.students)
        self.end(step)

    def deadline_rush(self) -> None:
        size = self.options.notebook_kb * 1000
        segments = ('submission', self.course, self.assignment)
        bodies = {}  # student -> [(request, md5, base64 of its notebook)] per round
        for student in self.students:
            for round_ in range(2 if student in self.twice else 1):
                content = notebook(student, size, round_)
                body = self.upload(student, {'ps1.ipynb': content})
                request = self.client.request('POST', segments, student, body=body)
                text = tree_text({'ps1.ipynb': content})['ps1.ipynb']
                bodies.setdefault(student, []).append((request, md5_hex(content), text))

        def submit(step, student):
            for request, md5, text in bodies[student]:
                answer = self.client.call(step, request)
                if answer is not None:
                    with self.lock:
                        self.submitted.setdefault(student, []).append(
                            (answer['timestamp'], md5)
                        )
                        latest = self.latest_text.get(student, ('', ''))
                        self.latest_text[student] = max(
                            latest, (answer['timestamp'], text)
                        )

        step = self.step('deadline rush')
        with self.probed(step):
            self.each(step, submit, self.students)
        step.note = f'{len(self.twice)} students submitted twice'
        self.end(step)

    def made(self) -> dict[str, list[str]]:
        """Each student's submission timestamps, sorted."""
        return {
            student: sorted(ts for ts, _md5 in entries)
            for student, entries in self.submitted.items()
        }

    def check_count(self) -> None:
        """The server lists exactly the submissions made, none lost."""
        request = self.client.request(
            'GET', ('submissions', self.course, self.assignment), self.instructor
        )
        step = self.step('count check')
        answer = self.client.call(step, request)
        expected = len(self.students) + len(self.twice)
        if answer is None:
            self.count_check = False
        else:
            listed: dict[str, list[str]] = {}
            for entry in answer['submissions']:
                listed.setdefault(entry['student_id'], []).append(entry['timestamp'])
            self.count_check = (
                len(answer['submissions']) == expected
                and {s: sorted(t) for s, t in listed.items()} == self.made()
            )
            step.note = (
                f'{len(answer["submissions"])} listed, {expected} expected: '
                + ('passed' if self.count_check else 'FAILED')
            )
            if not self.count_check:
                step.fail('count check failed')
        self.end(step)

    def listings(self) -> None:
        """Every student lists the course's assignments and their own
        submissions (what ``nbgrader list`` asks)."""
        made = self.made()
        requests = {
            student: (
                self.client.request('GET', ('assignments', self.course), student),
                self.client.request(
                    'GET',
                    ('submissions', self.course, self.assignment, student),
                    student,
                ),
            )
            for student in self.students
        }
        checked = []  # an assignments answer found to list exactly ours

        def list_one(step, student):
            assignments, submissions = requests[student]
            content = self.client.call(step, assignments, raw=True)
            if content is not None and content not in checked:
                answer = json.loads(content)
                if answer.get('assignments') != [self.assignment]:
                    step.fail(f'{student}: assignments {answer.get("assignments")}')
                elif answer.get('success'):
                    checked[:] = [content]
            answer = self.client.call(step, submissions)
            if answer is not None:
                listed = sorted(s['timestamp'] for s in answer['submissions'])
                if listed != made.get(student, []):
                    step.fail(f'{student}: listed {listed}, made {made.get(student)}')

        step = self.step('listings')
        self.each(step, list_one, self.students)
        self.end(step)

    def latest(self, student: str) -> tuple[str, str]:
        return max(self.submitted.get(student, [('', '')]))

    def collect(self) -> None:
        requests = {
            student: self.client.request(
                'GET',
                ('submission', self.course, self.assignment, student),
                self.instructor,
            )
            for student in self.students
        }

        def collect_one(step, student):
            answer = self.client.call(step, requests[student])
            if answer is None:
                return
            timestamp, text = self.latest_text.get(student, ('', ''))
            if answer['timestamp'] != timestamp:
                step.fail(f'{student}: latest {answer["timestamp"]}, not {timestamp}')
            elif not same_tree(answer, {'ps1.ipynb': text}):
                step.fail(f'{student}: collected other files than submitted')

        step = self.step('collect')
        self.each(step, collect_one, self.students)
        self.end(step)

    def feedback(self) -> None:
        bodies = {
            student: self.upload(
                self.instructor,
                {'ps1.html': feedback_html(student)},
                timestamp=self.latest(student)[0],
            )
            for student in self.students
        }

        requests = {
            student: self.client.request(
                'POST',
                ('feedback', self.course, self.assignment, student),
                self.instructor,
                body=body,
            )
            for student, body in bodies.items()
        }

        def release_one(step, student):
            self.client.call(step, requests[student])

        step = self.step('feedback release')
        self.each(step, release_one, self.students)
        self.end(step)

        fetches = {
            student: (
                self.client.request(
                    'GET',
                    ('feedback', self.course, self.assignment, student),
                    student,
                    params={'timestamp': self.latest(student)[0]},
                ),
                tree_text({'ps1.html': feedback_html(student)}),
            )
            for student in self.students
        }

        def fetch_one(step, student):
            request, expected = fetches[student]
            answer = self.client.call(step, request)
            if answer is not None and not same_tree(answer, expected):
                step.fail(f'{student}: fetched other feedback than released')

        step = self.step('feedback fetch')
        self.each(step, fetch_one, self.students)
        self.end(step)

    def big_round_trip(self, size: int) -> None:
        student = self.students[0]
        body = self.upload(self.instructor, {'README.md': b'Submit big.bin'})
        request = self.client.request(
            'POST', ('assignment', self.course, 'big'), self.instructor, body=body
        )
        step = self.step('big release')
        self.client.call(step, request)
        self.end(step)

        big = BigBody(self.encoding, 'big.bin', size, student)
        endpoint = self.client.endpoint
        target = endpoint.target(('submission', self.course, 'big'))
        step = self.step('big upload')
        with self.probed(step):
            error = send_big(endpoint, target, big)
        step.record(time.perf_counter() - step.started, error)
        step.sent(len(big))
        step.note = f'{size / MIB:.1f} MiB file, {len(big) / MIB:.1f} MiB body'
        step.file_size = size
        self.end(step)

        request = self.client.request(
            'GET', ('submission', self.course, 'big', student), self.instructor
        )
        expected = ExpectedTexts(big)
        step = self.step('big download')
        with self.probed(step):
            error = receive_big(endpoint, request, big, expected)
        step.record(time.perf_counter() - step.started, error)
        step.note = f'{size / MIB:.1f} MiB file'
        self.end(step)
