"""Fixtures and checks shared by the race modules (test_replica_races*.py).

``pair`` is two servers that share one database: on PostgreSQL two real
replicas (``start_replicas``) sharing a storage folder (id ``postgresql``)
or, sharing no folder at all, one bucket of a real S3-compatible store
(``postgresql-s3``); on SQLite one process given twice, so that the same
test bodies exercise the replicas' code paths and, on SQLite, the same code
under SQLite's writer lock. ``make_pair(args=...)`` starts such a
pair with extra flags. Requests alternate between the two (``pair[i % 2]``).

The checks here are the invariants every race test states: exactly one
winner and the documented answer for every loser (``one_winner``), the
admin command's view of the kept deleted items (``deleted_items``), and the
course's history as the admin reads it from every server (``history_of``;
``recorded`` and ``sizes`` to compare it with the acknowledged requests).
"""

from __future__ import annotations

import collections
import json

import pytest
import requests
from _admin import ngshare_admin
from _api import err, files_of, ok, tree
from _replicas import TEACHER, WAIT, roster_of

__all__ = [
    'assert_none_broken',
    'deleted_items',
    'fetch_until',
    'history_of',
    'make_pair',
    'new_course',
    'one_winner',
    'pair',
    'recorded',
    'sizes',
    'submit',
    'tree_of',
]

FETCH_LIMIT = 60  # fetches by one thread in one round, at most
HISTORY_PAGE = 200  # entries per page of history_of: a few pages per course
HISTORY_PAGES = 50  # pages history_of follows, at most


@pytest.fixture(params=['sqlite', 'postgresql', 'postgresql-s3'])
def make_pair(request, start_ngshare):
    """``make_pair(args=())``: [server, server] sharing one database."""

    def make(args=()):
        if request.param == 'sqlite':
            server = start_ngshare(hub_mode=False, args=args)
            return [server, server]
        start_replicas = request.getfixturevalue('start_replicas')
        if request.param == 'postgresql-s3':
            bucket = request.getfixturevalue('s3_storage')
            return start_replicas(args=args, storage=bucket.url, env=bucket.env)
        return start_replicas(args=args)

    return make


@pytest.fixture
def pair(make_pair):
    return make_pair()


def new_course(server, name, students=(), instructors=(TEACHER,)):
    """Create course ``name`` (as root) with its instructors and students."""
    ok(
        server.post(
            ('course', name),
            user='root',
            data={'instructors': json.dumps(list(instructors))},
            timeout=WAIT,
        )
    )
    if students:
        status = ok(
            server.post(
                ('students', name),
                user=instructors[0],
                data={'students': json.dumps(roster_of(students))},
                timeout=WAIT,
            )
        )['status']
        assert all(entry['success'] for entry in status), status


def one_winner(results, status, message) -> int:
    """Exactly one 200 among ``results``; every other is ``status message``.

    Returns the index of the winner.
    """
    winners = [i for i, resp in enumerate(results) if resp.status_code == 200]
    assert len(winners) == 1, [(r.status_code, r.text[:200]) for r in results]
    for i, resp in enumerate(results):
        if i != winners[0]:
            err(resp, status, message)
    return winners[0]


def deleted_items(server) -> list[dict]:
    """The kept deleted items, as ``ngshare-admin deleted list`` prints them:
    ``{'id', 'kind', 'what', 'submissions'}`` each."""
    done = ngshare_admin(server, 'deleted', 'list')
    assert done.returncode == 0, done.stderr
    items = []
    for line in done.stdout.splitlines():
        fields = line.split('\t')
        items.append(
            {
                'id': fields[0],
                'kind': fields[1],
                'what': fields[2],
                'submissions': int(fields[-1].split()[0]),
            }
        )
    return items


def submit(server, course, assignment, student, files):
    return server.post(
        ('submission', course, assignment),
        user=student,
        data={'files': tree(files)},
        timeout=WAIT,
    )


def fetch_until(event, fetch):
    """Call ``fetch()`` until ``event`` is set (and once after), at most
    FETCH_LIMIT times; return the answers. An answer broken off (the
    connection closed mid-answer) is returned as the exception's text."""
    answers = []
    while len(answers) < FETCH_LIMIT:
        finished = event.is_set()
        try:
            answers.append(fetch())
        except requests.RequestException as error:
            answers.append(f'broken answer: {error!r}')
        if finished:
            break
    return answers


def assert_none_broken(pair, answers):
    """No answer was broken off; else say why, from the servers' logs."""
    broken = [a for a in answers if isinstance(a, str)]
    if broken:
        why = [
            line
            for server in pair
            for line in server.log_text().splitlines()
            if ' ERROR ' in line or line.startswith(('[E', 'RuntimeError', 'OSError'))
        ]
        raise AssertionError(
            f'{len(broken)} broken answers: {broken[:2]}; log: {why[-6:]}'
        )


def tree_of(resp):
    """The files of a 200 tree answer (asserting whole, checked, no duplicate)."""
    return files_of(ok(resp))


def history_of(servers, course) -> list[dict]:
    """The whole history of ``course`` as the admin reads it, oldest first,
    following ``next`` page by page; every server of ``servers`` must answer
    the same entries, each once (distinct ids, in increasing order)."""
    readings = []
    for server in servers:
        entries, cursor = [], None
        for _page in range(HISTORY_PAGES):
            params = {'order': 'oldest', 'limit': HISTORY_PAGE}
            if cursor is not None:
                params['cursor'] = cursor
            answer = ok(
                server.get(
                    ('history', course), user='root', params=params, timeout=WAIT
                )
            )
            entries += answer['history']
            cursor = answer['next']
            if cursor is None:
                break
        else:
            raise AssertionError(f'more than {HISTORY_PAGES} pages of history')
        readings.append(entries)
    assert all(reading == readings[0] for reading in readings), 'servers differ'
    ids = [int(entry['id']) for entry in readings[0]]
    assert ids == sorted(set(ids)), ids
    return readings[0]


def recorded(entries, *fields) -> collections.Counter:
    """How many history entries there are of each value of ``fields``
    (e.g. ``'action', 'student_id'``)."""
    return collections.Counter(tuple(entry[f] for f in fields) for entry in entries)


def sizes(files: dict[str, bytes]) -> tuple[int, int]:
    """The (files, bytes) a history entry records for a tree."""
    return len(files), sum(len(content) for content in files.values())
