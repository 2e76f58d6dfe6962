"""Several ngshare replicas on one PostgreSQL database and one storage folder.

Two real processes (stand-alone mode) share a fresh PostgreSQL database and
a storage folder, as replicas behind a load balancer would; requests go to
them alternately from many threads, released together with barriers. What
one replica wrote must be visible, identically and byte-exact, from the
other; every uniqueness rule must hold across processes (the loser of a race
answers the documented 409); no request may fail with a 500.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _api import err, files_of, ok, tree
from _replicas import (
    ASSIGNMENT,
    COURSE,
    TEACHER,
    WAIT,
    assert_no_server_errors,
    race,
    roster_of,
    setup_course,
)
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from ngshare.database import migrate
from ngshare.database.models import Base


def test_submissions_across_replicas(replicas):
    students = [f'student{i:02d}' for i in range(30)]
    setup_course(replicas[0], students)
    jobs = [(s, k) for k in range(2) for s in students]
    contents = {
        (s, k): f'{s} submission {k}\n'.encode() + os.urandom(256) for s, k in jobs
    }
    start = threading.Barrier(16, timeout=WAIT)

    def submit(index):
        job = jobs[index]
        if index < 16:
            start.wait()  # the first wave leaves together
        server = replicas[index % 2]
        resp = server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=job[0],
            data={'files': tree({'answer.txt': contents[job]}, checksums=True)},
            timeout=WAIT,
        )
        return index, resp

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(submit, range(len(jobs))))

    stamps = {}
    written_by = {}
    for index, resp in results:
        stamps[jobs[index]] = ok(resp)['timestamp']
        written_by[jobs[index]] = index % 2

    listings = [
        ok(server.get(('submissions', COURSE, ASSIGNMENT), user=TEACHER))['submissions']
        for server in replicas
    ]
    assert listings[0] == listings[1]
    listed = [(entry['student_id'], entry['timestamp']) for entry in listings[0]]
    assert len(listed) == len(jobs)
    assert collections.Counter(listed) == collections.Counter(
        (student, stamps[(student, k)]) for student, k in jobs
    )
    for student in students[:3]:
        own = [
            ok(server.get(('submissions', COURSE, ASSIGNMENT, student), user=student))
            for server in replicas
        ]
        assert own[0] == own[1]
        assert sorted(e['timestamp'] for e in own[0]['submissions']) == sorted(
            stamps[(student, k)] for k in range(2)
        )

    # Each submission downloads byte-exact from the replica that did not
    # receive it.
    for job, stamp in stamps.items():
        other = replicas[1 - written_by[job]]
        body = ok(
            other.get(
                ('submission', COURSE, ASSIGNMENT, job[0]),
                user=TEACHER,
                params={'timestamp': stamp},
            )
        )
        assert body['timestamp'] == stamp
        assert files_of(body) == {'answer.txt': contents[job]}
    assert_no_server_errors(replicas)


def test_course_creation_race_across_replicas(replicas):
    names = [f'Race {r}' for r in range(3)]
    for name in names:
        results = race(
            10,
            lambda i, name=name: replicas[i % 2].post(
                ('course', name), user='root', timeout=WAIT
            ),
        )
        results.sort(key=lambda resp: resp.status_code)
        ok(results[0])
        for resp in results[1:]:
            err(resp, 409, 'Course already exists')
    for server in replicas:
        assert ok(server.get('courses', user='root'))['courses'] == names
    assert_no_server_errors(replicas)


def test_roster_race_across_replicas(replicas):
    ok(
        replicas[0].post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([TEACHER])},
        )
    )
    students = [f'student{i:02d}' for i in range(20)]

    def add(i):
        server = replicas[i % 2]
        if i % 4 == 3:
            # One student at a time, through the single-student endpoint.
            return [
                server.post(
                    ('student', COURSE, student),
                    user=TEACHER,
                    data=roster_of([student])[0],
                    timeout=WAIT,
                )
                for student in students[i % 5 :: 5]
            ]
        order = students if i % 4 == 0 else list(reversed(students))
        return [
            server.post(
                ('students', COURSE),
                user=TEACHER,
                data={'students': json.dumps(roster_of(order))},
                timeout=WAIT,
            )
        ]

    results = [resp for batch in race(8, add) for resp in batch]
    for resp in results:
        answer = ok(resp)
        if 'status' in answer:
            assert all(entry['success'] for entry in answer['status']), answer
    listings = [
        ok(server.get(('students', COURSE), user=TEACHER))['students']
        for server in replicas
    ]
    assert listings[0] == listings[1]
    assert sorted(entry['username'] for entry in listings[0]) == students
    for entry in listings[0]:
        name = entry['username']
        assert entry == {
            'username': name,
            'first_name': name,
            'last_name': 'R',
            'email': f'{name}@example.org',
        }
    assert_no_server_errors(replicas)


def test_release_race_across_replicas(replicas):
    ok(
        replicas[0].post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([TEACHER])},
        )
    )
    for round_ in range(3):
        name = f'Release {round_}'
        trees = [
            {'a.ipynb': f'release {i} of {name}'.encode(), 'data/b.txt': b'shared'}
            for i in range(6)
        ]
        results = race(
            6,
            lambda i, name=name, trees=trees: replicas[i % 2].post(
                ('assignment', COURSE, name),
                user=TEACHER,
                data={'files': tree(trees[i])},
                timeout=WAIT,
            ),
        )
        winners = [i for i, resp in enumerate(results) if resp.status_code == 200]
        assert len(winners) == 1, [resp.text for resp in results]
        for i, resp in enumerate(results):
            if i != winners[0]:
                err(resp, 409, 'Assignment already exists')
        for server in replicas:
            body = ok(server.get(('assignment', COURSE, name), user=TEACHER))
            assert files_of(body) == trees[winners[0]]
    assert_no_server_errors(replicas)


def test_identical_content_with_concurrent_delete(start_replicas):
    """Uploads of the same bytes on both replicas race the delete of an
    assignment that holds those bytes; every surviving reference must still
    download byte-exact.

    Without a retention period the delete removes the blobs no row refers
    to any more, right after it commits, while the uploads find those very
    blobs already stored and commit references to them. Whether the race
    is lost depends on timing here; the next test forces the dangerous
    interleaving.
    """
    replicas = start_replicas(
        args=['--deleted-retention-days', '0', '--released-blob-grace', '0']
    )
    students = [f'student{i}' for i in range(8)]
    racers = 10
    uploads = 3  # by each racer but the deleter
    for round_ in range(3):
        shared = {
            f'part{j:02d}.bin': f'round {round_} part {j}\n'.encode() + os.urandom(512)
            for j in range(20)
        }
        course = f'Blobs {round_}'
        ok(
            replicas[0].post(
                ('course', course),
                user='root',
                data={'instructors': json.dumps([TEACHER])},
            )
        )
        ok(
            replicas[1].post(
                ('students', course),
                user=TEACHER,
                data={'students': json.dumps(roster_of(students))},
            )
        )
        for name in ('Doomed', 'Target'):
            ok(
                replicas[name == 'Target'].post(
                    ('assignment', course, name),
                    user=TEACHER,
                    data={'files': tree(shared if name == 'Doomed' else {})},
                )
            )

        def act(i, course=course, shared=shared):
            server = replicas[i % 2]
            if i == 0:
                return [
                    server.delete(
                        ('assignment', course, 'Doomed'), user=TEACHER, timeout=WAIT
                    )
                ]
            # One upload after the other, so that some are on their way
            # while the deleter looks at the blobs, whenever that is.
            if i % 3 == 0:
                return [
                    server.post(
                        ('assignment', course, f'Copy {i}-{k}'),
                        user=TEACHER,
                        data={'files': tree(shared)},
                        timeout=WAIT,
                    )
                    for k in range(uploads)
                ]
            return [
                server.post(
                    ('submission', course, 'Target'),
                    user=students[i % len(students)],
                    data={'files': tree(shared)},
                    timeout=WAIT,
                )
                for _ in range(uploads)
            ]

        for batch in race(racers, act):
            for resp in batch:
                ok(resp)
        copies = [f'Copy {i}-{k}' for i in range(3, racers, 3) for k in range(uploads)]
        submitted = uploads * len([i for i in range(1, racers) if i % 3])
        for server in replicas:
            err(
                server.get(('assignment', course, 'Doomed'), user=TEACHER),
                404,
                'Assignment not found',
            )
            for name in copies:
                body = ok(server.get(('assignment', course, name), user=TEACHER))
                assert files_of(body) == shared, name
            listed = ok(server.get(('submissions', course, 'Target'), user=TEACHER))
            assert len(listed['submissions']) == submitted
            for entry in listed['submissions']:
                body = ok(
                    server.get(
                        ('submission', course, 'Target', entry['student_id']),
                        user=TEACHER,
                        params={'timestamp': entry['timestamp']},
                    )
                )
                assert files_of(body) == shared, entry
    assert_no_server_errors(replicas)


class Database:
    """Direct access to the replicas' PostgreSQL database, for the tests to
    hold locks and watch the service's sessions wait."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool)

    def count(self, query: str) -> int:
        with self.engine.connect() as connection:
            return connection.execute(text(query)).scalar_one()

    def wait_until(self, condition, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            assert time.monotonic() < deadline, f'gave up waiting: {what}'
            time.sleep(0.05)

    def sessions_waiting_for_a_lock(self) -> int:
        return self.count(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ' AND datname = current_database() AND pid <> pg_backend_pid()'
        )

    def advisory_locks_awaited(self) -> int:
        return self.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            ' AND NOT granted AND database ='
            ' (SELECT oid FROM pg_database WHERE datname = current_database())'
        )


def test_blob_kept_for_an_upload_stalled_before_commit(start_replicas, postgres_url):
    """The dangerous interleaving, forced: an upload on one replica has found
    its content already stored (another assignment's blob) but not yet
    committed its reference, when a delete on the other replica releases
    that other assignment and looks for blobs nobody refers to any more.

    The test stalls the upload between the two steps by holding a row lock
    its INSERT needs. The deleter must then wait for the upload's blob lock
    rather than remove the blob; once the upload commits, its submission
    downloads byte-exact from both replicas.
    """
    uploader, deleter = start_replicas(
        args=['--deleted-retention-days', '0', '--released-blob-grace', '0']
    )
    content = {'shared.bin': b'shared content\n' + os.urandom(4096)}
    ok(
        uploader.post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([TEACHER])},
        )
    )
    ok(
        uploader.post(
            ('students', COURSE),
            user=TEACHER,
            data={'students': json.dumps(roster_of(['student0']))},
        )
    )
    ok(
        deleter.post(
            ('assignment', COURSE, 'Doomed'),
            user=TEACHER,
            data={'files': tree(content)},
        )
    )
    ok(
        deleter.post(
            ('assignment', COURSE, 'Target'), user=TEACHER, data={'files': '[]'}
        )
    )
    database = Database(postgres_url)
    pool = ThreadPoolExecutor(2)
    try:
        with database.engine.connect() as holder:
            # The submission's foreign key check needs a share lock on the
            # Target row: the upload stores its blobs, then waits here.
            holder.execute(
                text(
                    'SELECT a._id FROM assignments a JOIN courses c'
                    ' ON a.course_id = c._id WHERE c.id = :course AND a.id = :name'
                    ' FOR UPDATE OF a'
                ),
                {'course': COURSE, 'name': 'Target'},
            ).scalar_one()
            upload = pool.submit(
                uploader.post,
                ('submission', COURSE, 'Target'),
                user='student0',
                data={'files': tree(content)},
                timeout=WAIT,
            )
            database.wait_until(
                lambda: database.sessions_waiting_for_a_lock() >= 1 or upload.done(),
                'the upload to wait for the Target row',
            )
            assert not upload.done(), upload.result().text
            removal = pool.submit(
                deleter.delete, ('assignment', COURSE, 'Doomed'), user=TEACHER
            )
            # Either the deleter waits for the upload's blob lock, or (the
            # bug this test is for) it has already removed the blob.
            database.wait_until(
                lambda: database.advisory_locks_awaited() >= 1 or removal.done(),
                'the delete to finish or to wait for the blob lock',
            )
            holder.rollback()
        ok(upload.result(timeout=WAIT))
        ok(removal.result(timeout=WAIT))
    finally:
        pool.shutdown(wait=True)
        database.engine.dispose()
    for server in (uploader, deleter):
        err(
            server.get(('assignment', COURSE, 'Doomed'), user=TEACHER),
            404,
            'Assignment not found',
        )
        body = ok(
            server.get(('submission', COURSE, 'Target', 'student0'), user=TEACHER)
        )
        assert files_of(body) == content
    assert_no_server_errors([uploader, deleter])


def test_replicas_start_together_on_an_empty_database(start_ngshare, postgres_url):
    """Both replicas migrate the same empty database at start-up: one
    migrates under the advisory lock, the other then finds it at head."""
    barrier = threading.Barrier(2, timeout=WAIT)

    def start(_i):
        barrier.wait()
        return start_ngshare(hub_mode=False, database_url=postgres_url)

    with ThreadPoolExecutor(2) as pool:
        replicas = list(pool.map(start, range(2)))
    for server in replicas:
        assert server.running, server.describe()
    # One of them migrated; the other waited for it and had nothing to do.
    migrated = [
        line
        for server in replicas
        for line in server.log_text().splitlines()
        if 'Database migrated from empty' in line
    ]
    assert len(migrated) == 1, migrated
    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()
    ok(replicas[0].post(('course', COURSE), user='root'))
    assert ok(replicas[1].get('courses', user='root'))['courses'] == [COURSE]
    assert_no_server_errors(replicas)
