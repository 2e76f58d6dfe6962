"""Simultaneous requests against one stand-alone server on a real SQLite file.

Concurrency is real: threads with their own connections, started together
with barriers. Nothing here relies on wall-clock thresholds; where an order
matters it is forced with events.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from _api import err, files_of, ok, tree

pytestmark = pytest.mark.both_databases

WAIT = 120  # upper bound for any single wait, in seconds

COURSE = 'Conc 101'
ASSIGNMENT = 'Lab 1'
TEACHER = 'teacher'


def setup_course(server, students):
    ok(
        server.request(
            'POST',
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([TEACHER])},
        )
    )
    roster = [
        {'username': s, 'first_name': s, 'last_name': 'X', 'email': f'{s}@example.org'}
        for s in students
    ]
    status = ok(
        server.request(
            'POST',
            ('students', COURSE),
            user=TEACHER,
            data={'students': json.dumps(roster)},
        )
    )['status']
    assert all(entry['success'] for entry in status), status
    ok(
        server.request(
            'POST',
            ('assignment', COURSE, ASSIGNMENT),
            user=TEACHER,
            data={'files': tree({'Lab 1.ipynb': b'{"cells": []}'})},
        )
    )


def test_simultaneous_submissions(vngshare_server):
    server = vngshare_server
    students = [f'student{i}' for i in range(10)]
    setup_course(server, students)
    jobs = [(s, k) for k in range(4) for s in students]
    contents = {
        (s, k): f'{s} submission {k}\n'.encode() + os.urandom(64) for s, k in jobs
    }
    first_wave = set(jobs[:20])  # as many as the pool has threads
    start = threading.Barrier(len(first_wave), timeout=WAIT)

    def submit(job):
        student, k = job
        if job in first_wave:
            start.wait()  # the first wave leaves together
        resp = server.request(
            'POST',
            ('submission', COURSE, ASSIGNMENT),
            user=student,
            data={'files': tree({'answer.txt': contents[job]}, checksums=True)},
            timeout=WAIT,
        )
        return job, resp

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(submit, jobs))

    stamps: dict[tuple[str, int], str] = {}
    for job, resp in results:
        stamps[job] = ok(resp)['timestamp']

    listed = ok(
        server.request('GET', ('submissions', COURSE, ASSIGNMENT), user=TEACHER)
    )['submissions']
    assert len(listed) == 40, listed
    per_student = collections.defaultdict(list)
    for entry in listed:
        per_student[entry['student_id']].append(entry['timestamp'])
    assert sorted(per_student) == students
    for student in students:
        mine = per_student[student]
        assert len(set(mine)) == 4, (student, mine)
        assert set(mine) == {stamps[(student, k)] for k in range(4)}

    # Every submission holds exactly what its student sent with it.
    for (student, k), stamp in stamps.items():
        body = ok(
            server.request(
                'GET',
                ('submission', COURSE, ASSIGNMENT, student),
                user=TEACHER,
                params={'timestamp': stamp},
            )
        )
        assert body['timestamp'] == stamp
        assert files_of(body) == {'answer.txt': contents[(student, k)]}


def race(n, action):
    """Run ``action(i)`` in n threads released together; return results."""
    barrier = threading.Barrier(n, timeout=WAIT)

    def run(i):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_simultaneous_course_creation(vngshare_server):
    server = vngshare_server
    names = [f'Race {r}' for r in range(5)]
    for name in names:
        results = race(
            2,
            lambda _i, name=name: server.request('POST', ('course', name), user='root'),
        )
        results.sort(key=lambda resp: resp.status_code)
        ok(results[0])
        err(results[1], 409, 'Course already exists')
    courses = ok(server.request('GET', 'courses', user='root'))['courses']
    assert courses == names


def test_simultaneous_release(vngshare_server):
    server = vngshare_server
    setup_course(server, ['student0'])
    trees = [
        {'a.txt': b'first release'},
        {'a.txt': b'second release', 'sub/b.txt': b'more'},
    ]
    names = [f'Twice {r}' for r in range(5)]
    for name in names:
        results = race(
            2,
            lambda i, name=name: server.request(
                'POST',
                ('assignment', COURSE, name),
                user=TEACHER,
                data={'files': tree(trees[i])},
            ),
        )
        statuses = sorted(resp.status_code for resp in results)
        assert statuses == [200, 409], [r.text for r in results]
        winner = next(i for i, resp in enumerate(results) if resp.status_code == 200)
        err(results[1 - winner], 409, 'Assignment already exists')
        body = ok(server.request('GET', ('assignment', COURSE, name), user=TEACHER))
        assert files_of(body) == trees[winner]
    listed = ok(server.request('GET', ('assignments', COURSE), user=TEACHER))
    assert sorted(listed['assignments']) == sorted([ASSIGNMENT, *names])


class HeldBody:
    """A request body sent in two halves: the second only after ``release``.

    It has a length, so it goes out with ``Content-Length``; ``halfway`` is
    set once the first half has been handed to the socket.
    """

    CHUNK = 1 << 16

    def __init__(self, body: bytes, release: threading.Event):
        self.body = body
        self.release = release
        self.halfway = threading.Event()

    def __len__(self):
        return len(self.body)

    def __iter__(self):
        half = len(self.body) // 2
        for start in range(0, half, self.CHUNK):
            yield self.body[start : min(start + self.CHUNK, half)]
        self.halfway.set()
        if not self.release.wait(WAIT):
            raise RuntimeError('upload never released')
        for start in range(half, len(self.body), self.CHUNK):
            yield self.body[start : start + self.CHUNK]


def test_healthz_answers_during_large_uploads(vngshare_server):
    server = vngshare_server
    students = [f'student{i}' for i in range(10)]
    setup_course(server, students)
    release = threading.Event()
    uploads = {}
    for student in students:
        content = student.encode() + os.urandom(5 * 1024 * 1024)
        form = urllib.parse.urlencode(
            {'user': student, 'files': tree({'big.bin': content})}
        ).encode()
        uploads[student] = (hashlib.md5(content).hexdigest(), HeldBody(form, release))

    def upload(student):
        return requests.post(
            server.url(('submission', COURSE, ASSIGNMENT)),
            data=uploads[student][1],
            headers={'Content-Type': 'application/x-www-form-urlencoded'},
            timeout=WAIT,
        )

    pool = ThreadPoolExecutor(len(students))
    try:
        futures = {s: pool.submit(upload, s) for s in students}
        for student in students:
            assert uploads[student][1].halfway.wait(WAIT), student
        # All ten uploads are half sent and cannot finish before release.
        health = requests.get(server.base + '/healthz', timeout=WAIT)
        assert health.status_code == 200
        assert health.json() == {'success': True}
        courses = ok(server.request('GET', 'courses', user='root', timeout=WAIT))
        assert courses['courses'] == [COURSE]
        assert not any(f.done() for f in futures.values())
    finally:
        release.set()
        pool.shutdown(wait=True)

    for student in students:
        ok(futures[student].result())
        body = ok(
            server.request(
                'GET',
                ('submission', COURSE, ASSIGNMENT, student),
                user=TEACHER,
                params={'list_only': 'true'},
            )
        )
        assert [(f['path'], f['checksum']) for f in body['files']] == [
            ('big.bin', uploads[student][0])
        ]
        assert 'content' not in body['files'][0]
