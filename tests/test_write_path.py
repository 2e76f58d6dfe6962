"""What makes the write path fast, guarded without a clock (issue 15).

Each test runs the in-process server (``shared_server``: the real service,
its real database and store, serving from a thread of this process) and
looks inside it through the functions it calls, counted or held:

* **hashed once**: an upload of N files hashes each file once with md5 (the
  API's checksum) and once with sha256 (the blob key), in both encodings
  and on both stores; the bucket is handed the md5, never hashes again;
* **not serialized**: while a large upload is held inside its preparation
  (decoding, hashing, writing blobs), a small submit by another student is
  answered and listed; the write transaction is not where the work is;
* **one writer queue**: on SQLite every write transaction runs on the one
  writer thread, reads in the pool; on PostgreSQL writes run in the pool;
* **the header**: ``Ngshare-Upload-Formats: multipart`` also on the answers
  that ``test_exchange_uploads.py`` does not check (a path no route serves,
  a method a route does not take).
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from _api import err, files_of, ok, tree
from _uploads import HEADER, Preparations, manifest, paths, raw_parts, seed_course

from ngshare.handlers import base

pytestmark = pytest.mark.timeout(120)

COURSE, ASSIGNMENT = 'Fast 101', 'Rush'
TEACHER, STUDENTS = 'teach', ('early', 'late', 'third')
# An upper bound for any one wait of these tests (never a measured time).
WAIT = 60
WRITER_THREAD = re.compile(r'ngshare-writer_\d+')
POOL_THREAD = re.compile(r'ngshare_\d+')


def seed(server) -> None:
    """COURSE taught by TEACHER, with STUDENTS, and ASSIGNMENT released."""
    seed_course(server, COURSE, TEACHER, STUDENTS, ASSIGNMENT, b'do it')


def listed(server) -> list[str]:
    answer = ok(server.get(('submissions', COURSE, ASSIGNMENT), user=TEACHER))
    return sorted(entry['student_id'] for entry in answer['submissions'])


def submitted(server, student) -> dict[str, bytes]:
    """The latest submission of ``student``, decoded (checksums checked)."""
    return files_of(
        ok(server.get(('submission', COURSE, ASSIGNMENT, student), user=TEACHER))
    )


# -- hashed once -------------------------------------------------------------


class HashCalls:
    """Every md5 and sha256 computed in this process while ``recording``.

    ``hashlib.md5`` and ``hashlib.sha256`` are replaced (``monkeypatch``
    undoes it) by wrappers that note the data and the caller's module, then
    hash with the real function: ngshare's modules (and boto3's) call them
    as ``hashlib.md5(...)``, so every such call in the server counts, on the
    request's threads or any other.
    """

    def __init__(self, monkeypatch):
        self.lock = threading.Lock()
        self.recording = False
        self.calls: list[tuple[str, str, bytes | None]] = []
        for name in ('md5', 'sha256'):
            monkeypatch.setattr(
                hashlib, name, self._counted(name, getattr(hashlib, name))
            )

    def _counted(self, name, real):
        def counted(data=None, **kwargs):
            if self.recording:
                caller = sys._getframe(1).f_globals.get('__name__', '?')
                held = None if data is None else bytes(data)
                with self.lock:
                    self.calls.append((name, caller, held))
            return real(data, **kwargs) if data is not None else real(**kwargs)

        return counted

    def of(self, name: str) -> list[tuple[str, bytes | None]]:
        """``(caller, data)`` of every call of ``name``; data None for a
        hash object made empty (and fed later with ``update``)."""
        return [(caller, data) for n, caller, data in self.calls if n == name]


# Lines per file: the large tree's body is over ngshare.handlers.forms'
# LARGE_BODY (256 KiB), which is parsed in the worker pool another way.
SIZES = {'small': 50, 'large': 5000}


def upload_files(count: int, lines: int) -> dict[str, bytes]:
    """``count`` files of distinct content, none empty."""
    return {
        f'part{i:02d}/file{i}.bin': f'file {i} of the tree\n'.encode() * (lines + i)
        for i in range(count)
    }


@pytest.mark.both_databases
@pytest.mark.both_storages
@pytest.mark.parametrize('size', sorted(SIZES))
@pytest.mark.parametrize('encoding', ['form', 'multipart'])
def test_an_upload_is_hashed_once_per_file(shared_server, monkeypatch, encoding, size):
    seed(shared_server)
    files = upload_files(7, SIZES[size])
    # Both bodies built (and the test's own checksums hashed) beforehand.
    body = {'files': tree(files, checksums=True), 'user': 'early'}
    parts = [('manifest', (None, manifest(files), 'application/json'))]
    parts += [('file', (str(i), c)) for i, c in enumerate(files.values())]
    path = ('submission', COURSE, ASSIGNMENT)
    hashes = HashCalls(monkeypatch)
    hashes.recording = True
    try:
        if encoding == 'form':
            answer = shared_server.request('POST', path, data=body, timeout=WAIT)
        else:
            answer = raw_parts(shared_server, 'POST', path, 'early', parts=parts)
    finally:
        hashes.recording = False
    ok(answer)
    contents = list(files.values())
    for name in ('md5', 'sha256'):
        calls = hashes.of(name)
        # Exactly one call per file, of that file's bytes; nothing else.
        assert sorted(data or b'' for _, data in calls) == sorted(contents), (
            f'{name}: {len(calls)} calls for {len(files)} files, by'
            f' {sorted({caller for caller, _ in calls})}'
        )
    callers = {(name, caller) for name, caller, _ in hashes.calls}
    # The bucket's PUT is given the md5 the tree carries.
    assert ('md5', 'ngshare.blobs.s3') not in callers, callers
    assert submitted(shared_server, 'early') == files
    assert sorted(shared_server.blobs.contents().values()) == sorted(
        [*contents, b'do it']
    )


# -- a small submit is not held up by a large upload ---------------------------

LARGE_PATH = 'held/large.bin'


@pytest.mark.both_databases
def test_a_small_submit_is_not_serialized_behind_a_large_upload(
    shared_server, monkeypatch
):
    seed(shared_server)
    hook = Preparations(monkeypatch)
    entered, released = threading.Event(), threading.Event()
    held_on: list[str] = []
    lock = threading.Lock()

    def hold_the_first():
        # The large upload is the first to be prepared: the small one is
        # sent once this one is held, before anything of it is decoded.
        with lock:
            first = not held_on
            held_on.append(threading.current_thread().name)
        if first:
            entered.set()
            assert released.wait(WAIT), 'the test never released the large upload'

    hook.before = hold_the_first
    large = {LARGE_PATH: bytes(range(256)) * (16 * 1024)}  # 4 MiB
    small = {'answer.txt': b'small and quick'}
    with ThreadPoolExecutor(1) as background:
        pending = background.submit(
            shared_server.post,
            ('submission', COURSE, ASSIGNMENT),
            user='late',
            data={'files': tree(large)},
            timeout=WAIT,
        )
        try:
            assert entered.wait(WAIT), pending.result(0) if pending.done() else None
            # The large upload is inside its preparation now, and stays.
            ok(
                shared_server.post(
                    ('submission', COURSE, ASSIGNMENT),
                    user='early',
                    data={'files': tree(small)},
                    timeout=WAIT,
                )
            )
            assert listed(shared_server) == ['early']
            assert submitted(shared_server, 'early') == small
            assert not pending.done() and not released.is_set()
        finally:
            released.set()
        ok(pending.result(WAIT))
    assert listed(shared_server) == ['early', 'late']
    assert submitted(shared_server, 'late') == large
    # Both prepared in the worker pool, not on the writer thread or the loop.
    assert len(held_on) == 2 and all(POOL_THREAD.fullmatch(t) for t in held_on)
    assert [paths(upload) for upload in hook.prepared] == [list(small), [LARGE_PATH]]


# -- one writer queue ----------------------------------------------------------


class OperationThreads:
    """The thread each operation ran on: ``(name, write, thread name)``,
    noted by a wrapper of ``run_operation`` as the handlers call it.

    A download that records its history entry (``recording``: a collect, a
    fetch) is a write transaction (issue 17), so it counts as a write."""

    def __init__(self, monkeypatch):
        self.runs: list[tuple[str, bool, str]] = []
        real = base.run_operation

        def noted(runtime, actor, operation, args, *, write, recording=False):
            thread = threading.current_thread().name
            self.runs.append((operation.__name__, write or recording, thread))
            return real(
                runtime, actor, operation, args, write=write, recording=recording
            )

        monkeypatch.setattr(base, 'run_operation', noted)

    def threads(self, *, write: bool) -> set[str]:
        return {thread for _, w, thread in self.runs if w is write}


@pytest.mark.both_databases
def test_sqlite_writes_queue_on_one_thread_postgresql_ones_in_the_pool(
    shared_server, monkeypatch
):
    runs = OperationThreads(monkeypatch)
    seed(shared_server)
    with ThreadPoolExecutor(len(STUDENTS) * 2) as clients:
        answers = list(
            clients.map(
                lambda i: shared_server.post(
                    ('submission', COURSE, ASSIGNMENT),
                    user=STUDENTS[i % len(STUDENTS)],
                    data={'files': tree({'n.txt': b'%d' % i})},
                    timeout=WAIT,
                ),
                range(len(STUDENTS) * 2),
            )
        )
    for answer in answers:
        ok(answer)
    assert listed(shared_server) == sorted(STUDENTS * 2)
    submitted(shared_server, STUDENTS[0])
    names = {name for name, _, _ in runs.runs}
    sqlite = shared_server.runtime.engine.dialect.name == 'sqlite'
    # The collect records its history entry: a write, on SQLite on the writer
    # thread like the submits (no longer answered on the event loop).
    assert {'submit', 'list_submissions', 'collect_submission'} <= names, names
    assert ('collect_submission', True) in {(n, w) for n, w, _ in runs.runs}
    writes, reads = runs.threads(write=True), runs.threads(write=False)
    assert reads and all(POOL_THREAD.fullmatch(t) for t in reads), reads
    if sqlite:
        assert len(writes) == 1 and WRITER_THREAD.fullmatch(writes.pop()), runs.runs
    else:
        assert shared_server.runtime.write_pool is None
        assert writes and all(POOL_THREAD.fullmatch(t) for t in writes), writes


# -- the header ----------------------------------------------------------------


def test_the_header_is_on_unrouted_and_refused_methods_too(shared_server):
    answers = {
        'no route (GET)': (shared_server.get('no/such/route', user='root'), 404),
        'no route (POST)': (
            shared_server.post('no/such/route', user='root', data={'x': 'y'}),
            404,
        ),
        'method not allowed': (shared_server.request('PUT', 'courses'), 405),
        'healthz': (requests.get(shared_server.base + '/healthz', timeout=WAIT), 200),
    }
    for case, (answer, status) in answers.items():
        assert answer.status_code == status, (case, answer.text)
        assert answer.headers.get(HEADER) == 'multipart', (case, answer.headers)
    err(answers['no route (GET)'][0], 404, 'Not Found')
