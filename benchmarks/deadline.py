#!/usr/bin/env python3
"""A course at its deadline, against a live ngshare: how fast, how big, any loss?

Runs the life of one assignment of a whole course against a running
stand-alone ngshare (``--vngshare``: the caller is named by the ``user``
parameter), as many students at once as ``--concurrency`` allows:

1. ``course``: the admin creates a course with one instructor;
2. ``roster``: the instructor adds every student in one ``POST students``;
3. ``release``: the instructor releases an assignment (a notebook and data
   files);
4. ``fetch storm``: every student fetches it at once (contents checked);
5. ``deadline rush``: every student submits at once, some of them twice;
   then the **count check**: the server lists exactly the submissions made,
   each student's latest last;
6. ``collect``: the instructor downloads every student's latest submission
   (contents checked against what was submitted);
7. ``feedback release`` and ``feedback fetch``: one feedback per student,
   uploaded by the instructor, fetched by the student (contents checked);
8. ``big upload`` / ``big download``: with ``--big-file-mb``, one student
   submits a file of that size to a second assignment and the instructor
   collects it (md5 checked; neither side holds the file whole: the body
   is generated while it is sent and the answer decoded as it arrives).

For every step it prints the requests, errors, throughput (requests per
second of the step's wall-clock time), latency percentiles (p50, p90, p99,
max) and, with ``--pid`` (the server's process id, on this machine), the
server's resident memory after the step and its peak during the step
(``VmHWM``, reset before each step when ``/proc/PID/clear_refs`` allows).

Exit status 0 when every request succeeded and the count check passed, 1
otherwise. Standard library and ``requests`` only. Example::

    python3 -m ngshare --vngshare --admins root --database sqlite:////tmp/b.db \\
        --storage /tmp/b-files &
    python3 benchmarks/deadline.py --url http://127.0.0.1:12121/api \\
        --students 200 --concurrency 50 --big-file-mb 100 --pid $!

Each run uses a new course (``deadline-<time>``), so runs do not disturb
each other; ``--cleanup`` deletes it at the end (ngshare keeps deleted
courses restorable, and their files, for ``--deleted-retention-days``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import concurrent.futures
import hashlib
import json
import os
import platform
import random
import sys
import threading
import time
import urllib.parse

import requests

MIB = 1024 * 1024
# Big files are generated, encoded and checked in blocks of this many bytes
# (a multiple of 3, so that the blocks' base64 texts concatenate).
BLOCK = 3 * MIB
TIMEOUT = 600


# --------------------------------------------------------------------------
# Measuring


class Step:
    """Requests of one step: latencies, errors, wall-clock time."""

    def __init__(self, name: str):
        self.name = name
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self.memory = ''
        self.note = ''

    def record(self, latency: float, error: str | None = None) -> None:
        with self.lock:
            self.latencies.append(latency)
            if error:
                self.errors.append(error)

    def fail(self, error: str) -> None:
        """A check that failed without a request of its own."""
        with self.lock:
            self.errors.append(error)

    def finish(self) -> None:
        self.elapsed = time.perf_counter() - self.started


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float('nan')
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


class ServerMemory:
    """The server's ``VmRSS`` and ``VmHWM`` from ``/proc/PID/status``."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.resettable = False
        if pid is not None:
            self.resettable = self.reset_peak()

    def status(self) -> dict[str, int]:
        result = {}
        with open(f'/proc/{self.pid}/status') as status:
            for line in status:
                key, _, value = line.partition(':')
                if key in ('VmRSS', 'VmHWM'):
                    result[key] = int(value.split()[0]) * 1024
        return result

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0, own processes)."""
        try:
            with open(f'/proc/{self.pid}/clear_refs', 'w') as clear:
                clear.write('5')
            return True
        except OSError:
            return False

    def describe(self) -> str:
        if self.pid is None:
            return ''
        status = self.status()
        peak = 'peak' if self.resettable else 'peak so far'
        return (
            f'RSS {status["VmRSS"] / MIB:.0f} MiB, '
            f'{peak} {status["VmHWM"] / MIB:.0f} MiB'
        )


# --------------------------------------------------------------------------
# Talking to ngshare


class Client:
    """``requests`` sessions (one per thread) for the API under ``url``."""

    def __init__(self, url: str, token_header: bool = False):
        self.url = url.rstrip('/') + '/'
        self.token_header = token_header
        self.local = threading.local()

    def headers(self, user: str) -> dict[str, str]:
        """With ``--token-header``, the user name as a Hub token too."""
        return {'Authorization': f'token {user}'} if self.token_header else {}

    def session(self) -> requests.Session:
        session = getattr(self.local, 'session', None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def path(self, *segments: str) -> str:
        return self.url + '/'.join(urllib.parse.quote(s, safe='') for s in segments)

    def call(
        self,
        step: Step,
        method: str,
        segments: tuple[str, ...],
        user: str,
        *,
        params: dict | None = None,
        data: dict | None = None,
    ) -> dict | None:
        """One request; its latency and any error go to ``step``.

        Returns the JSON answer when it is a success, else None.
        """
        params = dict(params or {})
        if method == 'GET':
            params['user'] = user
        else:
            data = {**(data or {}), 'user': user}
        started = time.perf_counter()
        error = None
        answer = None
        try:
            resp = self.session().request(
                method,
                self.path(*segments),
                params=params or None,
                data=data,
                headers=self.headers(user),
                timeout=TIMEOUT,
                allow_redirects=False,  # to a login page: an error, not followed
            )
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if resp.status_code != 200 or not (answer or {}).get('success'):
                error = f'{method} {"/".join(segments)} as {user}: {resp.status_code} '
                error += str((answer or {}).get('message', resp.text[:200]))
                answer = None
        except requests.RequestException as exc:
            error = f'{method} {"/".join(segments)} as {user}: {exc}'
        step.record(time.perf_counter() - started, error)
        return answer


def encode_tree(files: dict[str, bytes]) -> str:
    return json.dumps(
        [
            {'path': path, 'content': base64.b64encode(content).decode('ascii')}
            for path, content in files.items()
        ]
    )


def tree_of(answer: dict) -> dict[str, bytes]:
    return {
        entry['path']: base64.b64decode(entry['content']) for entry in answer['files']
    }


def notebook(owner: str, size: int, round_: int = 0) -> bytes:
    """A notebook-like JSON file of about ``size`` bytes, unique per owner."""
    rng = random.Random(f'{owner}/{round_}')
    cells = []
    total = 0
    while total < size:
        source = ''.join(rng.choice('abcdefghij \n') for _ in range(1000))
        cells.append({'cell_type': 'code', 'source': source, 'metadata': {}})
        total += len(source) + 60
    document = {'cells': cells, 'metadata': {'owner': owner, 'round': round_}}
    return json.dumps(document).encode()


# --------------------------------------------------------------------------
# A big file, never whole in memory


class BigFormBody:
    """``files=[{"path", "content"}]&user=...`` form-encoded, made as it is sent."""

    def __init__(self, path: str, size: int, user: str, seed: int = 1):
        self.path, self.size, self.user, self.seed = path, size, user, seed
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.length = sum(len(piece) for piece in self._pieces(record=True))
        self.md5 = self.md5.hexdigest()
        self._pieces_iter = None
        self._buffer = b''
        self._offset = 0

    def _pieces(self, record: bool = False):
        def quote(text: str) -> bytes:
            return urllib.parse.quote_plus(text).encode('ascii')

        yield b'files=' + quote(f'[{{"path": {json.dumps(self.path)}, "content": "')
        rng = random.Random(self.seed)
        left = self.size
        while left:
            block = rng.randbytes(min(BLOCK, left))
            left -= len(block)
            if record:
                self.md5.update(block)
            text = base64.b64encode(block)
            yield (
                text.replace(b'+', b'%2B').replace(b'/', b'%2F').replace(b'=', b'%3D')
            )
        yield quote('"}]') + b'&user=' + quote(self.user)

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self._pieces_iter is None:
            self._pieces_iter = self._pieces()
        if self._offset == len(self._buffer):
            self._buffer = next(self._pieces_iter, b'')
            self._offset = 0
        if size is None or size < 0:
            size = len(self._buffer) - self._offset
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk


def streamed_tree_md5(resp: requests.Response) -> dict[str, tuple[str, int]]:
    """``{path: (md5, size)}`` of a tree answer, decoded as it arrives."""
    marker = b'"content": "'
    skeleton = bytearray()
    searched = 0
    contents = []
    digest = None
    pending = b''
    size = 0
    for data in resp.iter_content(MIB):
        while data:
            if digest is None:
                skeleton += data
                start = skeleton.find(marker, searched)
                if start < 0:
                    searched = max(searched, len(skeleton) - len(marker))
                    break
                cut = searched = start + len(marker)
                data = bytes(skeleton[cut:])
                del skeleton[cut:]
                digest, size, pending = hashlib.md5(usedforsecurity=False), 0, b''
                continue
            end = data.find(b'"')
            pending += data if end < 0 else data[:end]
            # base64 with line breaks (ngshare 0.6.0's encodebytes) has JSON
            # "\n" escapes in it: drop them, keeping a "\" cut off at the end.
            cut_escape = b'\\' if end < 0 and pending.endswith(b'\\') else b''
            pending = pending[: len(pending) - len(cut_escape)].replace(b'\\n', b'')
            usable = len(pending) // 4 * 4 if end < 0 else len(pending)
            decoded = binascii.a2b_base64(pending[:usable])
            digest.update(decoded)
            size += len(decoded)
            pending = pending[usable:] + cut_escape
            if end < 0:
                break
            contents.append((digest.hexdigest(), size))
            digest = None
            data = data[end:]
    answer = json.loads(bytes(skeleton))
    result = {}
    for entry, (md5, length) in zip(answer['files'], contents):
        if entry['checksum'] != md5:
            raise ValueError(f'{entry["path"]}: checksum {entry["checksum"]} != {md5}')
        result[entry['path']] = (md5, length)
    return result


# --------------------------------------------------------------------------
# The scenario


class Deadline:
    def __init__(self, args):
        self.args = args
        self.client = Client(args.url, args.token_header)
        self.memory = ServerMemory(args.pid)
        self.pool = concurrent.futures.ThreadPoolExecutor(args.concurrency)
        self.course = args.course or f'deadline-{time.strftime("%Y%m%d-%H%M%S")}'
        self.assignment = 'ps1'
        self.instructor = args.instructor
        width = len(str(args.students))
        self.students = [f'student{i:0{width}d}' for i in range(1, args.students + 1)]
        # Every k-th student (k = 1 / --resubmit-fraction) submits twice.
        self.twice = set()
        if args.resubmit_fraction > 0:
            every = max(1, round(1 / args.resubmit_fraction))
            self.twice = set(self.students[::every])
        self.steps: list[Step] = []
        self.count_check = None
        self.submitted: dict[str, list[tuple[str, bytes]]] = {}
        self.lock = threading.Lock()

    # running steps

    def step(self, name: str) -> Step:
        if self.memory.resettable:
            self.memory.reset_peak()
        step = Step(name)
        self.steps.append(step)
        return step

    def end(self, step: Step) -> None:
        step.finish()
        step.memory = self.memory.describe()
        print(self.line(step), flush=True)
        for error in step.errors[:5]:
            print(f'    error: {error}', flush=True)
        if len(step.errors) > 5:
            print(f'    ... {len(step.errors) - 5} more errors', flush=True)

    def each(self, step: Step, function, items) -> None:
        futures = [self.pool.submit(function, step, item) for item in items]
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except Exception as exc:  # a bug or a malformed answer
                step.fail(f'{type(exc).__name__}: {exc}')

    @staticmethod
    def header() -> str:
        return (
            f'{"step":<18} {"requests":>8} {"errors":>6} {"req/s":>8} '
            f'{"p50 ms":>8} {"p90 ms":>8} {"p99 ms":>8} {"max ms":>8}  server memory'
        )

    @staticmethod
    def line(step: Step) -> str:
        lat = [1000 * x for x in step.latencies]
        rate = len(lat) / step.elapsed if step.elapsed else float('nan')
        text = (
            f'{step.name:<18} {len(lat):>8} {len(step.errors):>6} {rate:>8.1f} '
            f'{percentile(lat, 0.5):>8.1f} {percentile(lat, 0.9):>8.1f} '
            f'{percentile(lat, 0.99):>8.1f} {max(lat, default=float("nan")):>8.1f}'
            f'  {step.memory}'
        )
        if step.note:
            text += f'  [{step.note}]'
        return text

    # the scenario

    def run(self) -> int:
        args = self.args
        print(describe_machine(args))
        print(self.header())
        self.create_course()
        self.add_roster()
        released = self.release()
        self.fetch_storm(released)
        self.deadline_rush()
        self.check_count()
        self.collect()
        self.feedback()
        if args.big_file_mb > 0:
            self.big_round_trip(int(args.big_file_mb * 1000 * 1000))
        if args.cleanup:
            step = self.step('cleanup')
            self.client.call(step, 'DELETE', ('course', self.course), args.admin)
            self.end(step)
        self.pool.shutdown()
        errors = sum(len(step.errors) for step in self.steps)
        requests_made = sum(len(step.latencies) for step in self.steps)
        print(f'requests: {requests_made}')
        print(f'errors: {errors}')
        print(f'count check: {"passed" if self.count_check else "FAILED"}')
        return 0 if errors == 0 and self.count_check else 1

    def create_course(self) -> None:
        step = self.step('course')
        self.client.call(
            step,
            'POST',
            ('course', self.course),
            self.args.admin,
            data={'instructors': json.dumps([self.instructor])},
        )
        self.end(step)

    def add_roster(self) -> None:
        step = self.step('roster')
        roster = [
            {
                'username': name,
                'first_name': 'Student',
                'last_name': name,
                'email': f'{name}@example.org',
            }
            for name in self.students
        ]
        answer = self.client.call(
            step,
            'POST',
            ('students', self.course),
            self.instructor,
            data={'students': json.dumps(roster)},
        )
        if answer is not None:
            failed = [s for s in answer['status'] if not s['success']]
            if failed or len(answer['status']) != len(roster):
                step.fail(f'roster: {len(failed)} students not added')
        self.end(step)

    def release(self) -> dict[str, bytes]:
        step = self.step('release')
        rng = random.Random(0)
        files = {'ps1.ipynb': notebook('release', self.args.notebook_kb * 1000)}
        for i in range(self.args.data_files):
            files[f'data/table{i}.csv'] = rng.randbytes(self.args.data_kb * 1000)
        self.client.call(
            step,
            'POST',
            ('assignment', self.course, self.assignment),
            self.instructor,
            data={'files': encode_tree(files)},
        )
        self.end(step)
        return files

    def fetch_storm(self, released: dict[str, bytes]) -> None:
        step = self.step('fetch storm')

        def fetch(step, student):
            answer = self.client.call(
                step, 'GET', ('assignment', self.course, self.assignment), student
            )
            if answer is not None and tree_of(answer) != released:
                step.fail(f'{student} fetched other files than released')

        self.each(step, fetch, self.students)
        self.end(step)

    def deadline_rush(self) -> None:
        step = self.step('deadline rush')
        size = self.args.notebook_kb * 1000

        def submit(step, student):
            for round_ in range(2 if student in self.twice else 1):
                files = {'ps1.ipynb': notebook(student, size, round_)}
                answer = self.client.call(
                    step,
                    'POST',
                    ('submission', self.course, self.assignment),
                    student,
                    data={'files': encode_tree(files)},
                )
                if answer is not None:
                    with self.lock:
                        self.submitted.setdefault(student, []).append(
                            (answer['timestamp'], files['ps1.ipynb'])
                        )

        self.each(step, submit, self.students)
        step.note = f'{len(self.twice)} students submitted twice'
        self.end(step)

    def check_count(self) -> None:
        """The server lists exactly the submissions made, none lost."""
        step = self.step('count check')
        answer = self.client.call(
            step,
            'GET',
            ('submissions', self.course, self.assignment),
            self.instructor,
        )
        expected = len(self.students) + len(self.twice)
        if answer is None:
            self.count_check = False
        else:
            listed: dict[str, list[str]] = {}
            for entry in answer['submissions']:
                listed.setdefault(entry['student_id'], []).append(entry['timestamp'])
            made = {
                student: sorted(ts for ts, _content in entries)
                for student, entries in self.submitted.items()
            }
            self.count_check = (
                len(answer['submissions']) == expected
                and {s: sorted(t) for s, t in listed.items()} == made
            )
            step.note = (
                f'{len(answer["submissions"])} listed, {expected} expected: '
                + ('passed' if self.count_check else 'FAILED')
            )
            if not self.count_check:
                step.fail('count check failed')
        self.end(step)

    def collect(self) -> None:
        step = self.step('collect')

        def collect_one(step, student):
            answer = self.client.call(
                step,
                'GET',
                ('submission', self.course, self.assignment, student),
                self.instructor,
            )
            if answer is None:
                return
            timestamp, content = max(self.submitted.get(student, [('', b'')]))
            if answer['timestamp'] != timestamp:
                step.fail(f'{student}: latest {answer["timestamp"]}, not {timestamp}')
            elif tree_of(answer) != {'ps1.ipynb': content}:
                step.fail(f'{student}: collected other files than submitted')

        self.each(step, collect_one, self.students)
        self.end(step)

    def feedback(self) -> None:
        def html(student):
            return (f'<html><body>Feedback for {student}</body></html>' * 500).encode()

        def latest(student):
            return max(self.submitted.get(student, [('', b'')]))[0]

        step = self.step('feedback release')

        def release_one(step, student):
            self.client.call(
                step,
                'POST',
                ('feedback', self.course, self.assignment, student),
                self.instructor,
                data={
                    'timestamp': latest(student),
                    'files': encode_tree({'ps1.html': html(student)}),
                },
            )

        self.each(step, release_one, self.students)
        self.end(step)

        step = self.step('feedback fetch')

        def fetch_one(step, student):
            answer = self.client.call(
                step,
                'GET',
                ('feedback', self.course, self.assignment, student),
                student,
                params={'timestamp': latest(student)},
            )
            if answer is not None and tree_of(answer) != {'ps1.html': html(student)}:
                step.fail(f'{student}: fetched other feedback than released')

        self.each(step, fetch_one, self.students)
        self.end(step)

    def big_round_trip(self, size: int) -> None:
        student = self.students[0]
        step = self.step('big release')
        self.client.call(
            step,
            'POST',
            ('assignment', self.course, 'big'),
            self.instructor,
            data={'files': encode_tree({'README.md': b'Submit big.bin'})},
        )
        self.end(step)

        step = self.step('big upload')
        body = BigFormBody('big.bin', size, student)
        started = time.perf_counter()
        error = None
        try:
            resp = requests.post(
                self.client.path('submission', self.course, 'big'),
                data=body,
                headers={
                    'Content-Type': 'application/x-www-form-urlencoded',
                    **self.client.headers(student),
                },
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if resp.status_code != 200 or not resp.json().get('success'):
                error = f'big upload: {resp.status_code} {resp.text[:200]}'
        except (requests.RequestException, ValueError) as exc:
            error = f'big upload: {exc}'
        step.record(time.perf_counter() - started, error)
        step.note = f'{size / MIB:.1f} MiB file, {body.length / MIB:.1f} MiB body'
        self.end(step)

        step = self.step('big download')
        started = time.perf_counter()
        error = None
        try:
            with requests.get(
                self.client.path('submission', self.course, 'big', student),
                params={'user': self.instructor},
                headers=self.client.headers(self.instructor),
                stream=True,
                timeout=TIMEOUT,
                allow_redirects=False,
            ) as resp:
                if resp.status_code != 200:
                    error = f'big download: {resp.status_code} {resp.text[:200]}'
                else:
                    files = streamed_tree_md5(resp)
                    if files.get('big.bin') != (body.md5, size):
                        error = f'big download: got {files}, sent {body.md5}'
        except (requests.RequestException, ValueError) as exc:
            error = f'big download: {exc}'
        step.record(time.perf_counter() - started, error)
        step.note = f'{size / MIB:.1f} MiB file'
        self.end(step)


def describe_machine(args) -> str:
    try:
        with open('/proc/meminfo') as meminfo:
            total = int(meminfo.readline().split()[1]) * 1024
        memory = f'{total / 1024**3:.1f} GiB RAM'
    except OSError:
        memory = 'RAM unknown'
    return (
        f'# {platform.node()}: {os.cpu_count()} CPUs, {memory}, '
        f'Python {platform.python_version()} ({platform.system()} '
        f'{platform.release()})\n'
        f'# {args.url}: {args.students} students, concurrency {args.concurrency}, '
        f'big file {args.big_file_mb} MB'
        + (f', server pid {args.pid}' if args.pid else '')
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Load an ngshare server like a course at its deadline.'
    )
    parser.add_argument(
        '--url', required=True, help='API URL, e.g. http://127.0.0.1:12121/api'
    )
    parser.add_argument('--students', type=int, default=200)
    parser.add_argument(
        '--concurrency', type=int, default=50, help='requests in flight at once'
    )
    parser.add_argument('--admin', default='root', help='an --admins name')
    parser.add_argument('--instructor', default='instructor')
    parser.add_argument(
        '--course', help='course name (default: deadline-<date>-<time>)'
    )
    parser.add_argument(
        '--big-file-mb',
        type=float,
        default=0,
        help='size of the big file round trip in MB (10^6 bytes); 0: none',
    )
    parser.add_argument(
        '--pid', type=int, help="the server's process id, to report its memory"
    )
    parser.add_argument(
        '--notebook-kb', type=int, default=64, help='size of each notebook (kB)'
    )
    parser.add_argument(
        '--data-files', type=int, default=3, help='data files released with it'
    )
    parser.add_argument('--data-kb', type=int, default=256, help='size of each (kB)')
    parser.add_argument(
        '--resubmit-fraction',
        type=float,
        default=0.2,
        help='share of students who submit twice (default 0.2)',
    )
    parser.add_argument(
        '--cleanup', action='store_true', help='delete the course at the end'
    )
    parser.add_argument(
        '--token-header',
        action='store_true',
        help='also send "Authorization: token <user>" (for ngshare 0.6.0 asking'
        ' a Hub stand-in for the caller, as storage_kinds.py runs it)',
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.students < 1 or args.concurrency < 1:
        build_parser().error('--students and --concurrency must be at least 1')
    return Deadline(args).run()


if __name__ == '__main__':
    sys.exit(main())
