"""Every write is serializable: a request that loses a race either succeeds
as if it ran after the winner or answers the documented 4xx, never a merge
and never a 500; readers see one consistent snapshot.

Real processes throughout: two stand-alone ngshare replicas on one fresh
PostgreSQL database (or one process on a SQLite file), requests released
together by a barrier. The races:

* concurrent feedback uploads for one submission, alternating replicas:
  afterwards both replicas answer exactly one upload's tree, whole (on
  PostgreSQL's READ COMMITTED without row locks the trees merged);
* ``release_assignment --force`` (delete + post) against fetches: every
  fetch answers the old tree whole, the new tree whole, or 404 in between,
  and each one answered has exactly one ``fetch`` entry in the history,
  whose files and bytes are those of the version it got (the recorder reads
  and records in one snapshot);
* a write whose every attempt fails with a serialization failure (a real
  PostgreSQL error, raised by a trigger the test installs) answers the
  documented 409 once its bounded retries are spent, and logs why; one
  that succeeds on its third attempt has one history entry, the refused
  ones none;
* a SQLite database that cannot grow (``RLIMIT_FSIZE``) answers 507
  ``Storage full``, not a 409 after retries.
"""

from __future__ import annotations

import collections
import os
import resource

from _api import err, files_of, ok, tree
from _mounts import tmpfs
from _races import history_of
from _replicas import (
    ASSIGNMENT,
    COURSE,
    TEACHER,
    WAIT,
    assert_no_server_errors,
    race,
    setup_course,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

STUDENT = 'student0'
# (round, uploads in that round): 10 rounds of 2 to 8 concurrent uploads.
FEEDBACK_ROUNDS = [(r, 2 + (r * 3) % 7) for r in range(10)]


def feedback_tree(round_: int, upload: int) -> dict[str, bytes]:
    """A tree no other upload shares a path with: a merge shows."""
    return {
        f'feedback-{upload}/report.html': f'round {round_} upload {upload}\n'.encode()
        + os.urandom(64),
        f'feedback-{upload}/notes/{round_}.txt': f'notes {round_}.{upload}'.encode(),
    }


def submit_once(server) -> str:
    answer = ok(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=STUDENT,
            data={'files': tree({'answer.ipynb': b'{"cells": []}'})},
        )
    )
    return answer['timestamp']


def feedback_of(server, stamp: str) -> dict[str, bytes]:
    return files_of(
        ok(
            server.get(
                ('feedback', COURSE, ASSIGNMENT, STUDENT),
                user=STUDENT,
                params={'timestamp': stamp},
            )
        )
    )


def race_feedback(servers) -> int:
    """The rounds of concurrent feedback uploads; returns how many ran."""
    setup_course(servers[0], [STUDENT])
    stamp = submit_once(servers[-1])
    raced = fetched = 0
    for round_, uploads in FEEDBACK_ROUNDS:
        trees = [feedback_tree(round_, i) for i in range(uploads)]

        def upload(i, trees=trees, round_=round_):
            return servers[(i + round_) % len(servers)].post(
                ('feedback', COURSE, ASSIGNMENT, STUDENT),
                user=TEACHER,
                data={'timestamp': stamp, 'files': tree(trees[i])},
                timeout=WAIT,
            )

        for resp in race(uploads, upload):
            # Replacing feedback is last-wins: every upload succeeds.
            ok(resp)
        raced += uploads
        answers = [feedback_of(server, stamp) for server in servers]
        fetched += len(servers)
        assert all(answer == answers[0] for answer in answers), answers
        assert answers[0] in trees, sorted(answers[0])
    # One entry per upload acknowledged, per download answered.
    actions = collections.Counter(
        entry['action'] for entry in history_of(servers, COURSE)
    )
    assert (actions['release_feedback'], actions['fetch_feedback']) == (raced, fetched)
    assert_no_server_errors(servers)
    return raced


def test_feedback_race_across_replicas(replicas):
    assert race_feedback(replicas) == sum(n for _r, n in FEEDBACK_ROUNDS)


def test_feedback_race_on_sqlite(start_ngshare):
    race_feedback([start_ngshare(hub_mode=False)])


def test_release_force_against_fetches(replicas):
    """Delete + post (``release_assignment --force``) on one replica while
    students fetch from both: never the old assignment with the new files,
    never a part of a tree."""
    setup_course(replicas[0], [STUDENT], {'round-0/a.ipynb': b'0', 'round-0/b': b'0'})
    releases = 6
    fetchers = 5
    fetches = 12  # by each fetcher, each round
    # Of a size of their own: a fetch's history entry says which it got.
    trees = [
        {
            f'round-{r}/{name}': f'{r} {name}'.encode() + b'#' * r
            for name in ('a.ipynb', 'b', 'c')
        }
        for r in range(releases + 1)
    ]
    trees[0] = {'round-0/a.ipynb': b'0', 'round-0/b': b'0'}
    seen = {'ok': 0, 'missing': 0}
    fetched = collections.Counter()  # (files, bytes) of each fetch answered
    for r in range(1, releases + 1):

        def act(i, r=r):
            if i == 0:
                server = replicas[r % 2]
                ok(server.delete(('assignment', COURSE, ASSIGNMENT), user=TEACHER))
                ok(
                    server.post(
                        ('assignment', COURSE, ASSIGNMENT),
                        user=TEACHER,
                        data={'files': tree(trees[r])},
                    )
                )
                return []
            return [
                replicas[(i + k) % 2].get(
                    ('assignment', COURSE, ASSIGNMENT), user=STUDENT, timeout=WAIT
                )
                for k in range(fetches)
            ]

        for resp in (resp for batch in race(1 + fetchers, act) for resp in batch):
            if resp.status_code == 404:
                err(resp, 404, 'Assignment not found')
                seen['missing'] += 1
                continue
            answer = files_of(ok(resp))
            assert answer in (trees[r - 1], trees[r]), sorted(answer)
            seen['ok'] += 1
            fetched[(len(answer), sum(map(len, answer.values())))] += 1
    assert seen['ok'] > 0
    entries = history_of(replicas, COURSE)
    fetches = [e for e in entries if e['action'] == 'fetch']
    assert {(e['user'], e['student_id'], e['assignment_id']) for e in fetches} == {
        (STUDENT, STUDENT, ASSIGNMENT)
    }
    assert collections.Counter((e['files'], e['bytes']) for e in fetches) == fetched
    actions = collections.Counter(e['action'] for e in entries)
    assert (actions['release'], actions['unrelease']) == (1 + releases, releases)
    assert_no_server_errors(replicas)


def server_error_codes(server) -> list[str]:
    """The 5xx statuses the server answered, in order, from its access log."""
    codes = [
        line.split('] ', 1)[1].split(' ', 1)[0]
        for line in server.log_text().splitlines()
        if 'ngshare.access]' in line
    ]
    return [code for code in codes if code.startswith('5')]


class Database:
    """The replicas' database, for the test to install faults in it."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool)

    def execute(self, *statements: str) -> None:
        with self.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))


def fail_feedback_inserts(database: Database, sqlstate: str, times: int) -> None:
    """The next ``times`` inserts of feedback rows fail with ``sqlstate``.

    A sequence counts the attempts (sequences are not rolled back), so a
    retried request meets the fault again until it is spent.
    """
    database.execute(
        'DROP TRIGGER IF EXISTS inject_fault ON files',
        'DROP SEQUENCE IF EXISTS inject_fault_count',
        'CREATE SEQUENCE inject_fault_count',
        f"""
        CREATE OR REPLACE FUNCTION inject_fault() RETURNS trigger AS $$
        BEGIN
            IF NEW.feedback_id IS NOT NULL
                    AND nextval('inject_fault_count') <= {times} THEN
                RAISE EXCEPTION 'fault injected by the test'
                    USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
        """,
        'CREATE TRIGGER inject_fault BEFORE INSERT ON files'
        ' FOR EACH ROW EXECUTE FUNCTION inject_fault()',
    )


def upload_feedback(server, stamp: str, files: dict[str, bytes]):
    return server.post(
        ('feedback', COURSE, ASSIGNMENT, STUDENT),
        user=TEACHER,
        data={'timestamp': stamp, 'files': tree(files)},
        timeout=WAIT,
    )


def test_retries_spent_answer_409_and_log_why(start_ngshare, postgres_url):
    server = start_ngshare(hub_mode=False, database_url=postgres_url)
    setup_course(server, [STUDENT])
    stamp = submit_once(server)
    database = Database(postgres_url)
    first = {'first.txt': b'first feedback'}
    ok(upload_feedback(server, stamp, first))

    # Two serialization failures, then success: retried, and it succeeds.
    fail_feedback_inserts(database, '40001', times=2)
    second = {'second.txt': b'second feedback'}
    ok(upload_feedback(server, stamp, second))
    assert feedback_of(server, stamp) == second
    assert server.log_text().count('Retrying upload_feedback') == 2

    # Every attempt fails (serialization failures, then deadlocks): the
    # bounded budget is spent, the answer is the documented 409, nothing of
    # the request is kept, and the log names the SQLSTATE, the operation and
    # the attempts.
    for sqlstate in ('40001', '40P01'):
        fail_feedback_inserts(database, sqlstate, times=1000)
        err(
            upload_feedback(server, stamp, {'lost.txt': b'never stored'}),
            409,
            'Request conflicts with a concurrent change',
        )
        assert feedback_of(server, stamp) == second
        giving_up = [
            line
            for line in server.log_text().splitlines()
            if 'Giving up' in line and f'SQLSTATE {sqlstate}' in line
        ]
        assert len(giving_up) == 1, server.log_text()[-3000:]
        assert 'upload_feedback' in giving_up[0]
        assert 'attempts' in giving_up[0]

    # A failure that is not a conflict (the database refuses to extend a
    # file): not retried as a conflict, a 507 that says so.
    fail_feedback_inserts(database, '53100', times=1000)
    err(upload_feedback(server, stamp, {'x.txt': b'x'}), 507, 'Storage full')
    # One that no retry cures (the server is shutting the session down):
    # 503, with a message.
    fail_feedback_inserts(database, '57P01', times=1000)
    err(upload_feedback(server, stamp, {'x.txt': b'x'}), 503, 'Database unavailable')
    database.execute('DROP TRIGGER inject_fault ON files')
    ok(upload_feedback(server, stamp, first))
    assert feedback_of(server, stamp) == first
    assert server_error_codes(server) == ['507', '503']
    # The history: one entry per upload acknowledged (the one retried
    # twice included, once), none of the refused ones.
    uploads = [
        (e['timestamp'], e['files'], e['bytes'])
        for e in history_of([server], COURSE)
        if e['action'] == 'release_feedback'
    ]
    assert uploads == [
        (stamp, 1, len(content))
        for content in (b'first feedback', b'second feedback', b'first feedback')
    ]


DB_LIMIT = 1024 * 1024


def limit_file_size() -> None:
    """In the server's process: no file (the SQLite database, its WAL) may
    grow beyond DB_LIMIT; each blob of the test stays far below it."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (DB_LIMIT, DB_LIMIT))


def fill_database(server) -> list[int]:
    """Submit trees of many small files with long names (many rows, small
    blobs) until the database refuses; return the statuses answered."""
    setup_course(server, [STUDENT])
    statuses = []
    for k in range(40):
        files = {
            f'{k:02d}-{"n" * 180}/{i:04d}.txt': f'{k}.{i}'.encode() for i in range(300)
        }
        resp = server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=STUDENT,
            data={'files': tree(files)},
            timeout=WAIT,
        )
        statuses.append(resp.status_code)
        if resp.status_code != 200:
            break
    # The server goes on answering reads, without the refused submission.
    listed = ok(server.get(('submissions', COURSE, ASSIGNMENT), user=TEACHER))
    assert len(listed['submissions']) == statuses.count(200)
    return statuses


def test_sqlite_database_full_answers_507(start_ngshare, tmp_path):
    """The SQLite database on a full file system (ENOSPC: SQLite's "database
    or disk is full"): 507 ``Storage full`` at once, not a 409 after
    retries."""
    with tmpfs(tmp_path / 'small', '2m') as small:
        server = start_ngshare(
            hub_mode=False, database_url=f'sqlite:///{small / "ngshare.db"}'
        )
        try:
            statuses = fill_database(server)
            assert statuses[-1] == 507, statuses
            assert server.running
            log = server.log_text()
            assert 'SQLITE_FULL' in log and 'database or disk is full' in log
            assert 'Retrying' not in log
            assert server_error_codes(server) == ['507']
        finally:
            server.stop()


def test_sqlite_database_cannot_grow_answers_503(start_ngshare):
    """The SQLite database may not grow (``RLIMIT_FSIZE``; SQLite reports
    the refused write as an I/O error, no errno): 503 ``Database
    unavailable`` at once, logged with SQLite's error name."""
    server = start_ngshare(hub_mode=False, preexec_fn=limit_file_size)
    statuses = fill_database(server)
    assert statuses[-1] == 503, statuses
    assert server.running
    log = server.log_text()
    assert 'Database failure in submit (SQLITE_IOERR' in log
    assert 'Retrying' not in log
    assert server_error_codes(server) == ['503']
