"""A replica killed (SIGKILL) in the middle of a large upload.

Two real replicas share one PostgreSQL database and one storage folder.
Replica A receives a large submission or release (three 6 MiB files, a
27 MB form body, generated while it is sent) and is killed with ``kill -9``
at one of two deterministic moments:

* ``body``: half of the body has been sent and the server's resident memory
  shows it has received at least a quarter of it; nothing is stored yet.
* ``transaction``: the whole body has arrived, its three blobs are written
  (before the transaction, ``operations/uploads.py``) and A is inside its
  write transaction: the test holds an exclusive advisory lock on the third
  file's blob key (the lock the transaction takes on each blob before it
  refers to it, ``blobs/lifecycle.py: lock_blob``), and kills A once
  PostgreSQL shows A's backend waiting for it. The three files are named
  and ordered by their keys, so the third is locked last whether files are
  stored in tree, path or key order.

Afterwards: replica B answered every request before, during and after the
kill; the killed request is not there at all (through B's API and in the
rows); every submission or assignment row has all its file rows;
``ngshare-admin gc`` reports exactly the blobs the killed request left (and
nothing any row refers to) and ``--delete`` removes them; PostgreSQL keeps
no session, lock or open transaction of the killed process; and a new
process on the same database and storage starts without any manual step,
serves the same data, and accepts the retried upload whole.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from _api import err, files_of, md5, ok, tree
from _pgsessions import Postgres
from _replicas import (
    ASSIGNMENT,
    COURSE,
    TEACHER,
    WAIT,
    assert_no_server_errors,
    setup_course,
)
from _servers import run_ngshare
from _transfer import BLOCK, MIB, FormBody, proc_status_kb
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ngshare import admin as admin_module

pytestmark = pytest.mark.skipif(
    not Path('/proc/net/tcp').exists(), reason='reads /proc/<pid> and /proc/net/tcp'
)
pytest.importorskip('psycopg')

STUDENT = 'alice'
OTHER = 'bob'
RELEASED = 'Lab 2'
FILE_SIZE = 6 * MIB
SEEDS = (11, 12, 13)
POLL = 0.05  # seconds between two looks at something that must happen


def wait_for(condition, what: str):
    """Poll ``condition`` until it is true (and return it), at most WAIT s."""
    deadline = time.monotonic() + WAIT
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'still waiting for {what} after {WAIT}s')
        time.sleep(POLL)


def content_key(size: int, seed: int) -> str:
    """The blob key of a FormBody file: generated exactly as FormBody does."""
    generator, digest, left = random.Random(seed), hashlib.sha256(), size
    while left:
        block = generator.randbytes(min(BLOCK, left))
        left -= len(block)
        digest.update(block)
    hexdigest = digest.hexdigest()
    return f'sha256/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest}'


def big_upload() -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Three files, named and ordered by blob key; and their keys in order."""
    keyed = sorted((content_key(FILE_SIZE, seed), seed) for seed in SEEDS)
    files = {
        f'data/part{i}.bin': (FILE_SIZE, seed) for i, (_, seed) in enumerate(keyed)
    }
    return files, [key for key, _ in keyed]


# --------------------------------------------------------------------------
# the surviving replica's traffic, and the checks


class Traffic:
    """Reads and writes to one replica, round after round, until stopped;
    every answer is kept with the time it arrived."""

    def __init__(self, server):
        self.server = server
        self.answers: list[tuple[float, requests.Response]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        server, round_ = self.server, 0
        while not self._stop.is_set():
            try:
                for resp in (
                    server.get(('assignments', COURSE), user=STUDENT, timeout=WAIT),
                    server.get(
                        ('submissions', COURSE, ASSIGNMENT), user=TEACHER, timeout=WAIT
                    ),
                    server.post(
                        ('course', f'Side {round_}'), user='root', timeout=WAIT
                    ),
                ):
                    self.answers.append((time.monotonic(), resp))
            except requests.RequestException as error:
                self.failures.append(repr(error))
            round_ += 1
            self._stop.wait(POLL)

    def answered_since(self, moment: float) -> int:
        return sum(1 for when, _ in list(self.answers) if when > moment)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT)
        assert not self._thread.is_alive()
        assert not self.failures, self.failures
        for _, resp in self.answers:
            ok(resp)


@pytest.fixture
def admin(capsys):
    """``admin(*args, url=, storage=, process=False)``: ``ngshare-admin
    args`` on the replicas' database and storage; its stdout lines. As a
    process (as an administrator runs it) or, faster, in this one."""

    def run(*args: str, url: str, storage: Path, process: bool = False) -> list[str]:
        argv = [*args, '--database', url, '--storage', str(storage)]
        if process:
            done = run_ngshare(argv, module='ngshare.admin')
            assert done.returncode == 0, done.output
            return done.stdout.splitlines()
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit:
            admin_module.main(argv)
        out, errors = capsys.readouterr()
        assert exit.value.code == 0, out + errors
        return out.splitlines()

    return run


def present(storage: Path, keys: list[str]) -> set[str]:
    return {key for key in keys if (storage / key).is_file()}


def rows_per_owner(url: str) -> tuple[list[tuple], list[tuple], set[str]]:
    """(student, file rows) per submission, (name, file rows) per
    assignment, and the referenced blob keys, read directly from the
    database."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            submissions = connection.execute(
                text(
                    'SELECT s.student_id, count(f._id) FROM submissions s'
                    ' LEFT JOIN files f ON f.submission_id = s._id'
                    ' GROUP BY s._id, s.student_id ORDER BY s._id'
                )
            ).all()
            assignments = connection.execute(
                text(
                    'SELECT a.id, count(f._id) FROM assignments a'
                    ' LEFT JOIN files f ON f.assignment_id = a._id'
                    ' GROUP BY a._id, a.id ORDER BY a._id'
                )
            ).all()
            referenced = set(connection.scalars(text('SELECT actual_name FROM files')))
    finally:
        engine.dispose()
    return [tuple(r) for r in submissions], [tuple(r) for r in assignments], referenced


def check_data(server, kind: str, acknowledged: dict, body: FormBody | None) -> None:
    """What ``server`` answers: the acknowledged submissions, byte-exact, and
    the big upload whole if ``body`` (else not at all)."""
    listed = ok(server.get(('submissions', COURSE, ASSIGNMENT), user=TEACHER))
    stamps = [(e['student_id'], e['timestamp']) for e in listed['submissions']]
    assert sorted(stamps) == sorted(acknowledged), (stamps, list(acknowledged))
    for (student, stamp), content in acknowledged.items():
        answer = server.get(
            ('submission', COURSE, ASSIGNMENT, student),
            user=TEACHER,
            params={'timestamp': stamp},
            timeout=WAIT,
        )
        files = files_of(ok(answer))
        if content is None:  # the big upload: compare by md5
            assert {p: md5(c) for p, c in files.items()} == body.md5
        else:
            assert files == content
    names = ok(server.get(('assignments', COURSE), user=TEACHER))['assignments']
    if kind == 'release':
        if body is None:
            assert names == [ASSIGNMENT]
            err(
                server.get(('assignment', COURSE, RELEASED), user=TEACHER),
                404,
                'Assignment not found',
            )
        else:
            assert names == [ASSIGNMENT, RELEASED]
            answer = server.get(('assignment', COURSE, RELEASED), user=TEACHER)
            files = files_of(ok(answer))
            assert {p: md5(c) for p, c in files.items()} == body.md5


def send(pool, server, path, body: FormBody):
    return pool.submit(
        requests.post,
        server.url(path),
        data=body,
        headers=body.headers(),
        timeout=(30, WAIT),
    )


# --------------------------------------------------------------------------


@pytest.mark.parametrize('phase', ['body', 'transaction'])
@pytest.mark.parametrize('kind', ['submission', 'release'])
def test_replica_killed_mid_upload(
    kind, phase, start_replicas, start_ngshare, postgres_url, admin
):
    """SIGKILL replica A during a 27 MB upload (see the module docstring):
    B never fails, nothing half-written stays, gc cleans up, A restarts."""
    a, b = start_replicas()
    storage = a.storage
    setup_course(a, [STUDENT, OTHER])
    small = {'answer.txt': b'small answer\n' + os.urandom(64)}
    stamp = ok(
        a.post(
            ('submission', COURSE, ASSIGNMENT),
            user=STUDENT,
            data={'files': tree(small)},
        )
    )['timestamp']
    acknowledged = {(STUDENT, stamp): small}
    files, keys = big_upload()
    user = STUDENT if kind == 'submission' else TEACHER
    path = (
        ('submission', COURSE, ASSIGNMENT)
        if kind == 'submission'
        else ('assignment', COURSE, RELEASED)
    )
    body = FormBody(files, user=user)
    pg = Postgres(postgres_url)
    traffic = Traffic(b)
    pool = ThreadPoolExecutor(1)
    locked = keys[-1]
    try:
        if phase == 'body':
            body.pause_at(body.length // 2)
            resident = proc_status_kb(a.proc.pid)['VmRSS'] * 1024
            sending = send(pool, a, path, body)
            wait_for(lambda: body.paused.is_set() or sending.done(), 'the pause')
            assert not sending.done(), sending.result().text
            wait_for(
                lambda: (
                    proc_status_kb(a.proc.pid)['VmRSS'] * 1024 - resident
                    >= body.length // 4
                ),
                'replica A to receive a quarter of the body',
            )
            assert present(storage, keys) == set()
        else:
            pg.lock(locked)
            sending = send(pool, a, path, body)

            def waiting():
                assert not sending.done(), sending.result().text
                return pg.waiting_for_advisory_lock() & pg.backends_of(a)

            waiter = wait_for(waiting, "replica A to wait for the last blob's lock")
            in_transaction = pg.rows(
                'SELECT xact_start FROM pg_stat_activity WHERE pid = ANY(%s)',
                [sorted(waiter)],
            )
            assert in_transaction and all(row[0] is not None for row in in_transaction)
            # Every blob was written before the transaction began.
            assert present(storage, keys) == set(keys)
        # B answers while A holds the upload.
        moment = time.monotonic()
        wait_for(lambda: traffic.answered_since(moment) >= 3, 'B to answer')

        backends = pg.backends_of(a)
        assert backends, 'replica A has no database connection'
        killed_at = time.monotonic()
        os.kill(a.proc.pid, signal.SIGKILL)
        assert a.proc.wait(timeout=WAIT) == -signal.SIGKILL
        body.resume.set()
        with pytest.raises(requests.ConnectionError):
            sending.result(timeout=WAIT)
        left = present(storage, keys)
        if phase == 'transaction':
            # A's backend is still waiting for the lock; once it has it, it
            # finds its client gone and ends, rolling back.
            pg.unlock(locked)
        wait_for(lambda: pg.gone(backends), "the end of A's database sessions")
        # B answers during and after the kill, reads and writes.
        wait_for(lambda: traffic.answered_since(killed_at) >= 6, 'B to answer')
        other = {'answer.txt': b'after the crash\n' + os.urandom(64)}
        later = ok(
            b.post(
                ('submission', COURSE, ASSIGNMENT),
                user=OTHER,
                data={'files': tree(other)},
                timeout=WAIT,
            )
        )['timestamp']
        acknowledged[(OTHER, later)] = other
        traffic.stop()
        pg.assert_clean([b])
    finally:
        body.resume.set()
        traffic._stop.set()
        pool.shutdown(wait=True)
        pg.close()

    # Nothing of the killed request: not through B, not in the rows.
    check_data(b, kind, acknowledged, None)
    submissions, assignments, referenced = rows_per_owner(postgres_url)
    assert submissions == [(STUDENT, 1), (OTHER, 1)]
    assert assignments == [(ASSIGNMENT, 1)]
    assert not referenced & set(keys)
    assert left == (set() if phase == 'body' else set(keys))

    # gc reports exactly what the killed request left, and removes it.
    where = {'url': postgres_url, 'storage': storage}
    orphans = admin('gc', '--grace-seconds', '0', **where, process=True)
    assert set(orphans) == left
    assert not left & referenced
    removed = admin('gc', '--delete', '--grace-seconds', '0', **where)
    assert set(removed) == left
    assert present(storage, keys) == set()

    # A new process on the same database and storage: no manual step, the
    # same data, and the retried upload goes in whole.
    again = start_ngshare(hub_mode=False, database_url=postgres_url, storage=storage)
    check_data(again, kind, acknowledged, None)
    retry = FormBody(files, user=user)
    answer = ok(
        requests.post(
            again.url(path), data=retry, headers=retry.headers(), timeout=WAIT
        )
    )
    if kind == 'submission':
        acknowledged[(STUDENT, answer['timestamp'])] = None
    for server in (again, b):
        check_data(server, kind, acknowledged, retry)
    submissions, assignments, _ = rows_per_owner(postgres_url)
    expect_submissions = [(STUDENT, 1), (OTHER, 1)]
    expect_assignments = [(ASSIGNMENT, 1)]
    if kind == 'submission':
        expect_submissions.append((STUDENT, len(keys)))
    else:
        expect_assignments.append((RELEASED, len(keys)))
    assert submissions == expect_submissions
    assert assignments == expect_assignments
    # Every blob is referenced again, and every referenced one is intact.
    assert admin('gc', '--grace-seconds', '0', **where) == []
    admin('verify', **where)
    assert_no_server_errors([a, b, again])
