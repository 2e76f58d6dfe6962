"""Two (or more) ngshare replicas on one PostgreSQL database: fixtures and
helpers shared by the replica test modules.

``start_replicas(n=2, args=())`` starts n real stand-alone ngshare processes
on one fresh PostgreSQL database and one shared storage folder (or one
bucket), as replicas behind a load balancer would run; ``replicas`` is two
of them. ``race(n, action)`` runs ``action(i)`` in n threads released
together by a barrier.
Import with ``from _replicas import *`` (the fixtures) and by name.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from _api import ok, tree

__all__ = [
    'ASSIGNMENT',
    'COURSE',
    'TEACHER',
    'WAIT',
    'assert_no_server_errors',
    'race',
    'replicas',
    'roster_of',
    'setup_course',
    'start_replicas',
]

WAIT = 120  # upper bound for any single request or wait, in seconds

COURSE = 'Replicated 101'
ASSIGNMENT = 'Lab 1'
TEACHER = 'teacher'


@pytest.fixture
def start_replicas(start_ngshare, postgres_url, tmp_path):
    """``start_replicas(n=2, args=(), storage=None, env=None)``: n
    stand-alone ngshare processes on one fresh PostgreSQL database and one
    shared storage folder, or the store ``storage`` names (e.g. a bucket's
    ``s3://`` URL, with its ``env``)."""

    def start(n=2, args=(), storage=None, env=None):
        return [
            start_ngshare(
                hub_mode=False,
                database_url=postgres_url,
                storage=storage or tmp_path / 'shared-files',
                args=args,
                env=env,
            )
            for _ in range(n)
        ]

    return start


@pytest.fixture
def replicas(start_replicas):
    return start_replicas()


def race(n, action):
    """Run ``action(i)`` in n threads released together; return results."""
    barrier = threading.Barrier(n, timeout=WAIT)

    def run(i):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def roster_of(students):
    return [
        {'username': s, 'first_name': s, 'last_name': 'R', 'email': f'{s}@example.org'}
        for s in students
    ]


def setup_course(server, students, assignment_files=None):
    ok(
        server.post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([TEACHER])},
        )
    )
    status = ok(
        server.post(
            ('students', COURSE),
            user=TEACHER,
            data={'students': json.dumps(roster_of(students))},
        )
    )['status']
    assert all(entry['success'] for entry in status), status
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user=TEACHER,
            data={'files': tree(assignment_files or {'Lab 1.ipynb': b'{}'})},
        )
    )


def assert_no_server_errors(servers):
    """Neither replica logged a 5xx answer (besides every answer the tests
    check themselves; a request is logged just after its answer is sent, so
    the very last one may not be in the log yet)."""
    for server in servers:
        access = [
            line for line in server.log_text().splitlines() if 'ngshare.access]' in line
        ]
        failed = [line for line in access if line.split('] ', 1)[1].startswith('5')]
        assert not failed, failed
