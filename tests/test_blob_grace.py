"""A download in flight never loses its files: released blobs wait out a grace.

A download reads its file rows, then streams the blobs one by one after its
read transaction closed. A write that drops those rows meanwhile (feedback
replaced, an assignment deleted with ``--deleted-retention-days 0``) records
their blobs in ``released_blobs``; the housekeeping sweep removes them only
after ``--released-blob-grace``.

The download tests are deterministic: the reader's socket has a small
receive buffer and reads a little of an answer whose first file is far larger
than every buffer between server and client, so the server is still writing
that first file when the write commits, and opens the second only after it.
With a grace of 0 (the control) that second blob is gone and the answer is
cut off; with a grace it completes byte-exact, and afterwards a bounded poll
sees the old blobs and their records go. On PostgreSQL the reader and the
writer are two replicas on one database and storage folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import socket
import time
import urllib.parse
from pathlib import Path

import pytest
from _api import files_of, ok, seed_course, tree
from _replicas import race
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ngshare.blobs.folder import FolderStore
from ngshare.blobs.store import blob_key as store_key
from ngshare.config import Config
from ngshare.database.engine import make_engine, make_session_factories
from ngshare.housekeeping import sweep
from ngshare.runtime import Runtime

pytestmark = pytest.mark.both_databases

COURSE = 'Grace 101'
TEACHER = 'kevin'
STUDENT = 'lawrence'
# Far more than the sender's socket buffer (tcp_wmem max: 4 MiB) plus the
# reader's small receive buffer plus one download piece (1 MiB of base64).
BIG = 12 * 1024 * 1024
RECEIVE_BUFFER = 64 * 1024
GRACE = 2
POLL_ROUNDS = 200  # of 0.1 s: a bound, never a timing assertion


def blob_key(content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'


def released_keys(database_url: str) -> set[str]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text('SELECT key FROM released_blobs')))
    finally:
        engine.dispose()


def wait_until(condition, what: str) -> None:
    for _ in range(POLL_ROUNDS):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f'gave up waiting for {what}')


@pytest.fixture
def servers(start_ngshare, ngshare_database_url, tmp_path):
    """``servers(grace)``: (reader, writer): two replicas on PostgreSQL, one
    process on SQLite (one process per SQLite file)."""

    def start(grace: int, retention: int = 30):
        args = [
            '--released-blob-grace',
            str(grace),
            '--deleted-retention-days',
            str(retention),
        ]
        if ngshare_database_url is None:
            server = start_ngshare(hub_mode=False, args=args)
            return server, server
        storage = tmp_path / 'shared-files'
        return tuple(
            start_ngshare(
                hub_mode=False,
                database_url=ngshare_database_url,
                storage=storage,
                args=args,
            )
            for _ in range(2)
        )

    return start


class SlowDownload:
    """A GET whose answer is read only as far as the test says."""

    def __init__(self, server, path: tuple[str, ...], params: dict):
        self.connection = http.client.HTTPConnection('127.0.0.1', server.port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting, so that the window never grows (no autotuning).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(120)
        sock.connect(('127.0.0.1', server.port))
        self.connection.sock = sock
        url = server.prefix + '/'.join(urllib.parse.quote(s, safe='') for s in path)
        self.connection.request('GET', url + '?' + urllib.parse.urlencode(params))
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.head = self.response.read(RECEIVE_BUFFER)

    def rest(self) -> dict:
        """The whole answer, parsed; raises if it was cut off."""
        try:
            return json.loads(self.head + self.response.read())
        finally:
            self.connection.close()


def submit_with_feedback(server, feedback: dict[str, bytes]) -> str:
    stamp = ok(
        server.post(
            ('submission', COURSE, 'ps1'),
            user=STUDENT,
            data={'files': tree({'answer.txt': b'my answer'})},
        )
    )['timestamp']
    ok(
        server.post(
            ('feedback', COURSE, 'ps1', STUDENT),
            user=TEACHER,
            data={'timestamp': stamp, 'files': tree(feedback)},
        )
    )
    return stamp


def old_tree() -> dict[str, bytes]:
    # Large first, so that the second is opened only after the write.
    return {'big.bin': os.urandom(BIG), 'report.html': b'<p>old</p>' + os.urandom(64)}


def start_feedback_download(reader, stamp: str) -> SlowDownload:
    return SlowDownload(
        reader,
        ('feedback', COURSE, 'ps1', STUDENT),
        {'timestamp': stamp, 'user': STUDENT},
    )


def replace_feedback(writer, stamp: str) -> dict[str, bytes]:
    new = {'report.html': b'<p>new</p>' + os.urandom(64)}
    ok(
        writer.post(
            ('feedback', COURSE, 'ps1', STUDENT),
            user=TEACHER,
            data={'timestamp': stamp, 'files': tree(new)},
        )
    )
    return new


def test_without_grace_the_download_is_cut_off(servers):
    """The control: with ``--released-blob-grace 0`` the replacement removes
    the old blobs at once and the download in flight breaks. This is what
    proves that the next tests stall the download where they mean to."""
    reader, writer = servers(0)
    seed_course(writer, COURSE, TEACHER, STUDENT)
    stamp = submit_with_feedback(writer, old_tree())
    download = start_feedback_download(reader, stamp)
    replace_feedback(writer, stamp)
    with pytest.raises((http.client.IncompleteRead, ValueError)):
        download.rest()


def test_download_survives_a_feedback_replacement(servers, ngshare_database_url):
    reader, writer = servers(GRACE)
    seed_course(writer, COURSE, TEACHER, STUDENT)
    old = old_tree()
    stamp = submit_with_feedback(writer, old)
    download = start_feedback_download(reader, stamp)
    new = replace_feedback(writer, stamp)
    database_url = writer.database_url
    old_keys = {blob_key(content) for content in old.values()}
    # Recorded in the replacement's own transaction, the blobs still there.
    assert old_keys <= released_keys(database_url)

    assert files_of(download.rest()) == old  # byte-exact, the old feedback whole

    for server in {reader, writer}:
        answer = ok(
            server.get(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=STUDENT,
                params={'timestamp': stamp},
            )
        )
        assert files_of(answer) == new
    storage = Path(writer.storage)
    # The sweep removes the files inside its transaction and commits the
    # rows' deletion after: wait for both, the end state it must reach.
    wait_until(
        lambda: (
            not any((storage / key).exists() for key in old_keys)
            and not released_keys(database_url)
        ),
        'the sweep to remove the old feedback and its released_blobs rows',
    )
    assert (storage / blob_key(next(iter(new.values())))).is_file()


def test_download_survives_a_delete_without_retention(servers):
    reader, writer = servers(GRACE, retention=0)
    seed_course(writer, COURSE, TEACHER, STUDENT)
    old = old_tree()
    ok(
        writer.post(
            ('assignment', COURSE, 'doomed'),
            user=TEACHER,
            data={'files': tree(old)},
        )
    )
    download = SlowDownload(reader, ('assignment', COURSE, 'doomed'), {'user': STUDENT})
    ok(writer.delete(('assignment', COURSE, 'doomed'), user=TEACHER))
    assert files_of(download.rest()) == old

    storage = Path(writer.storage)
    old_keys = {blob_key(content) for content in old.values()}
    wait_until(
        lambda: (
            not any((storage / key).exists() for key in old_keys)
            and not released_keys(writer.database_url)
        ),
        'the sweep to remove the deleted assignment and its released_blobs rows',
    )


def sweeper(database_url: str, storage: Path) -> Runtime:
    """A runtime of its own (engine, sessions) that sweeps at once."""
    engine = make_engine(database_url)
    reader, writer = make_session_factories(engine)
    return Runtime(
        config=Config(
            database_url=database_url,
            storage_path=str(storage),
            released_blob_grace_seconds=0,
        ),
        engine=engine,
        reader=reader,
        writer=writer,
        store=FolderStore(storage),
        authenticator=None,
        pool=None,
    )


def test_two_sweeps_at_once_remove_each_blob_once(servers):
    """Feedback of several submissions replaced, some old contents uploaded
    again; two sweepers race (each its own engine, as two replicas): every
    unreferenced blob is removed by exactly one of them, the re-referenced
    ones stay and download byte-exact, and no record is left."""
    _reader, writer = servers(600)  # the service's own sweep finds nothing due
    seed_course(writer, COURSE, TEACHER, STUDENT)
    storage = Path(writer.storage)
    runtimes = [sweeper(writer.database_url, storage) for _ in range(2)]
    try:
        rounds, submissions, files = 3, 3, 8
        stamps = [
            submit_with_feedback(
                writer, {f'f{j}': os.urandom(256) for j in range(files)}
            )
            for _ in range(submissions)
        ]
        current = {}
        for stamp in stamps:
            answer = ok(
                writer.get(
                    ('feedback', COURSE, 'ps1', STUDENT),
                    user=TEACHER,
                    params={'timestamp': stamp},
                )
            )
            current[stamp] = files_of(answer)
        for _ in range(rounds):
            released = set()
            for stamp in stamps:
                old = current[stamp]
                # Keep two of the old contents (moved to other names).
                new = {f'kept{j}': old[f'f{j}'] for j in range(2)}
                new.update({f'f{j}': os.urandom(256) for j in range(files)})
                released |= {blob_key(c) for c in old.values()}
                ok(
                    writer.post(
                        ('feedback', COURSE, 'ps1', STUDENT),
                        user=TEACHER,
                        data={'timestamp': stamp, 'files': tree(new)},
                    )
                )
                current[stamp] = new
            live = {blob_key(c) for tree_ in current.values() for c in tree_.values()}
            assert released <= released_keys(writer.database_url)
            removed = race(2, lambda i: sweep(runtimes[i]))
            assert sum(removed) == len(released - live), removed
            assert not released_keys(writer.database_url)
            for key in released - live:
                assert not (storage / key).exists()
            for stamp, expected in current.items():
                answer = ok(
                    writer.get(
                        ('feedback', COURSE, 'ps1', STUDENT),
                        user=STUDENT,
                        params={'timestamp': stamp},
                    )
                )
                assert files_of(answer) == expected
        # A record still inside the grace is neither swept nor forgotten.
        patient = dataclasses.replace(
            runtimes[0],
            config=dataclasses.replace(
                runtimes[0].config, released_blob_grace_seconds=600
            ),
        )
        replace_feedback(writer, stamps[0])
        waiting = released_keys(writer.database_url)
        assert len(waiting) == files + 2
        assert sweep(patient) == 0
        assert released_keys(writer.database_url) == waiting
        assert all((storage / key).is_file() for key in waiting)
    finally:
        for runtime in runtimes:
            runtime.engine.dispose()


def test_sweeping_replicas_remove_every_released_blob(servers):
    """Both replicas' housekeeping sweeps (grace 1 s): every blob released is
    removed once (the replicas' logs add up), the current feedback stays."""
    reader, writer = servers(1)
    seed_course(writer, COURSE, TEACHER, STUDENT)
    stamp = submit_with_feedback(writer, {'a': os.urandom(128)})
    released = set()
    latest = {}
    for round_ in range(6):
        answer = ok(
            reader.get(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=TEACHER,
                params={'timestamp': stamp},
            )
        )
        released |= {blob_key(c) for c in files_of(answer).values()}
        latest = {f'r{round_}-{j}': os.urandom(128) for j in range(4)}
        server = (reader, writer)[round_ % 2]
        ok(
            server.post(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=TEACHER,
                data={'timestamp': stamp, 'files': tree(latest)},
            )
        )
    storage = Path(writer.storage)
    wait_until(
        lambda: (
            not released_keys(writer.database_url)
            and not any((storage / key).exists() for key in released)
        ),
        'both sweeps to remove the released blobs',
    )
    total = 0
    for server in {reader, writer}:
        for line in server.log_text().splitlines():
            if 'Removed ' in line and ' released blobs' in line:
                total += int(line.split('Removed ', 1)[1].split()[0])
    assert total == len(released)
    for server in {reader, writer}:
        answer = ok(
            server.get(
                ('feedback', COURSE, 'ps1', STUDENT),
                user=STUDENT,
                params={'timestamp': stamp},
            )
        )
        assert files_of(answer) == latest


def test_blob_key_is_the_stores(tmp_path):
    """The helper above names blobs as the store does."""
    assert store_key(b'abc') == blob_key(b'abc')
