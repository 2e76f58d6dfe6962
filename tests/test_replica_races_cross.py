"""Different operations on the same target raced across two replicas: the
pairs that meet at a deadline.

Same set-up as test_replica_races.py (``pair``: two PostgreSQL replicas, or
one SQLite process twice; ``race`` releases the requests together). Every
outcome must be one that some serial order of the requests gives:

* delete assignment vs submit: a submission is acknowledged and then gone
  with the assignment (and kept in the restorable item), or refused 404;
  never listed under the re-created assignment;
* remove student vs submit: what was acknowledged stays visible to the
  instructor; the student is removed afterwards;
* release --force (DELETE then POST) vs fetch: each fetch is the old tree
  whole, the new tree whole, or 404; never a mix, never empty;
* feedback upload vs fetch: each fetch is one upload's tree whole (no files
  before the first upload);
* add instructor vs add the same user as student: in either order the user
  ends up an instructor (an instructor added later converts the student;
  a student added later is refused 409 Cannot add instructor as student);
* restore of a deleted course vs re-creating its name: exactly one wins,
  whole.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from _admin import ngshare_admin
from _api import err, ok, tree
from _races import (
    assert_none_broken,
    deleted_items,
    fetch_until,
    new_course,
    submit,
    tree_of,
)
from _replicas import TEACHER, WAIT, assert_no_server_errors, race, roster_of
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool


def test_delete_assignment_vs_submit(pair):
    course = 'Deadline'
    students = [f'student{i}' for i in range(8)]
    new_course(pair[0], course, students=students)
    acknowledged = {}
    for r in range(4):
        name = f'Final {r}'
        ok(
            pair[r % 2].post(
                ('assignment', course, name), user=TEACHER, data={'files': '[]'}
            )
        )

        def act(i, name=name, r=r):
            if i == 0:
                return pair[r % 2].delete(('assignment', course, name), user=TEACHER)
            return submit(pair[i % 2], course, name, students[i], {'a.txt': b'%d' % i})

        results = race(8, act)
        ok(results[0])
        for resp in results[1:]:
            if resp.status_code != 200:
                err(resp, 404, 'Assignment not found')
        acknowledged[name] = sum(resp.status_code == 200 for resp in results[1:])
        # Released again: nothing acknowledged before shows up under it.
        ok(
            pair[0].post(
                ('assignment', course, name), user=TEACHER, data={'files': '[]'}
            )
        )
        for server in pair:
            listed = ok(server.get(('submissions', course, name), user=TEACHER))
            assert listed['submissions'] == []
    # Each acknowledged submission went with its assignment into the kept
    # item, so that `deleted restore --submissions-only` can bring it back.
    kept = {item['what']: item['submissions'] for item in deleted_items(pair[0])}
    assert kept == {f'{course} / {name}': n for name, n in acknowledged.items()}
    assert_no_server_errors(pair)


def test_remove_student_vs_submit(pair):
    course, assignment = 'Dropping', 'Last lab'
    leavers = [f'leaver{r}' for r in range(4)]
    new_course(pair[0], course, students=leavers)
    ok(
        pair[1].post(
            ('assignment', course, assignment), user=TEACHER, data={'files': '[]'}
        )
    )
    for r, leaver in enumerate(leavers):

        def act(i, leaver=leaver, r=r):
            if i == 0:
                return pair[r % 2].delete(('student', course, leaver), user=TEACHER)
            return submit(pair[i % 2], course, assignment, leaver, {'x': b'%d' % i})

        results = race(6, act)
        ok(results[0])
        stamps = []
        for resp in results[1:]:
            if resp.status_code == 200:
                stamps.append(ok(resp)['timestamp'])
            else:
                err(resp, 403, 'Permission denied')
        for server in pair:
            students = ok(server.get(('students', course), user=TEACHER))['students']
            assert leaver not in [entry['username'] for entry in students]
            if stamps:
                listed = ok(
                    server.get(
                        ('submissions', course, assignment, leaver), user=TEACHER
                    )
                )['submissions']
                assert sorted(e['timestamp'] for e in listed) == sorted(stamps)
            else:
                err(
                    server.get(
                        ('submissions', course, assignment, leaver), user=TEACHER
                    ),
                    404,
                    'Student not found',
                )
    assert_no_server_errors(pair)


@pytest.mark.parametrize('retention', ['30', '0'])
def test_release_force_vs_fetch(make_pair, retention):
    """``nbgrader release_assignment --force`` (DELETE, then POST) while
    students fetch; with and without keeping deleted files."""
    pair = make_pair(args=['--deleted-retention-days', retention])
    course, name = 'Forced', 'Problem set'
    new_course(pair[0], course, students=['s0', 's1'])
    for r in range(2):
        old = {f'q{k}.ipynb': f'old {r} q{k}'.encode() for k in range(10)}
        new = {f'q{k}.ipynb': f'new {r} q{k}'.encode() for k in range(0, 12, 2)}
        if r:
            ok(pair[0].delete(('assignment', course, name), user=TEACHER))
        ok(
            pair[0].post(
                ('assignment', course, name), user=TEACHER, data={'files': tree(old)}
            )
        )
        released = threading.Event()

        def act(i, old=old, new=new, released=released):
            server = pair[i % 2]
            if i == 0:
                try:
                    gone = server.delete(('assignment', course, name), user=TEACHER)
                    again = server.post(
                        ('assignment', course, name),
                        user=TEACHER,
                        data={'files': tree(new)},
                    )
                finally:
                    released.set()
                return [gone, again]
            return fetch_until(
                released,
                lambda: server.get(('assignment', course, name), user=f's{i % 2}'),
            )

        results = race(6, act)
        ok(results[0][0])
        ok(results[0][1])
        assert_none_broken(pair, [a for answers in results[1:] for a in answers])
        seen = collections.Counter()
        for answers in results[1:]:
            for resp in answers:
                if resp.status_code == 404:
                    err(resp, 404, 'Assignment not found')
                    seen['404'] += 1
                    continue
                files = tree_of(resp)
                assert files in (old, new), sorted(files)
                seen['old' if files == old else 'new'] += 1
        # Each fetcher stops at FETCH_LIMIT fetches, so whether it lived to
        # see the new release depends on the machine's speed; what every
        # fetch saw is checked above, and the outcome through both servers:
        for server in pair:
            assert tree_of(server.get(('assignment', course, name), user='s0')) == new
    assert_no_server_errors(pair)


def test_feedback_upload_vs_fetch(pair):
    course, name = 'Returned', 'Homework'
    new_course(pair[0], course, students=['pupil'])
    ok(pair[0].post(('assignment', course, name), user=TEACHER, data={'files': '[]'}))
    for r in range(2):
        stamp = submit(pair[1], course, name, 'pupil', {'a.txt': b'%d' % r})
        stamp = ok(stamp)['timestamp']
        versions = {
            (u, v): {
                f'grader{u}-v{v}.html': f'round {r} grader {u} v{v}'.encode(),
                'grade.txt': b'%d%d' % (u, v),
            }
            for u in range(2)
            for v in range(4)
        }
        uploaded = threading.Event()
        uploads_left = [2]
        lock = threading.Lock()

        def act(
            i,
            stamp=stamp,
            versions=versions,
            uploaded=uploaded,
            uploads_left=uploads_left,
            lock=lock,
        ):
            server = pair[i % 2]
            if i < 2:
                try:
                    return [
                        server.post(
                            ('feedback', course, name, 'pupil'),
                            user=TEACHER,
                            data={'timestamp': stamp, 'files': tree(versions[(i, v)])},
                            timeout=WAIT,
                        )
                        for v in range(4)
                    ]
                finally:
                    with lock:
                        uploads_left[0] -= 1
                        if not uploads_left[0]:
                            uploaded.set()
            return fetch_until(
                uploaded,
                lambda: server.get(
                    ('feedback', course, name, 'pupil'),
                    user='pupil' if i % 2 else TEACHER,
                    params={'timestamp': stamp},
                    timeout=WAIT,
                ),
            )

        results = race(8, act)
        for resp in results[0] + results[1]:
            ok(resp)
        assert_none_broken(pair, [a for answers in results[2:] for a in answers])
        trees = list(versions.values())
        for answers in results[2:]:
            was_given = False
            for resp in answers:
                files = tree_of(resp)
                assert files in trees or (files == {} and not was_given), sorted(files)
                was_given = was_given or bool(files)
        finals = [
            tree_of(
                server.get(
                    ('feedback', course, name, 'pupil'),
                    user='pupil',
                    params={'timestamp': stamp},
                )
            )
            for server in pair
        ]
        assert finals[0] == finals[1]
        assert finals[0] in (versions[(0, 3)], versions[(1, 3)]), sorted(finals[0])
    assert_no_server_errors(pair)


def test_add_instructor_vs_add_same_user_as_student(pair):
    course = 'Roles'
    new_course(pair[0], course)
    for r in range(8):
        user = f'ta{r}'

        def act(i, user=user, r=r):
            server = pair[i % 2]
            if i == 0:
                fields = {'first_name': 'T', 'last_name': 'A', 'email': 't@x'}
                return server.post(
                    ('instructor', course, user), user='root', data=fields
                )
            if i == 1:
                return server.post(
                    ('student', course, user), user=TEACHER, data=roster_of([user])[0]
                )
            return server.post(
                ('students', course),
                user=TEACHER,
                data={'students': json.dumps(roster_of([user, f'peer{r}-{i}']))},
            )

        results = race(4, act)
        ok(results[0])
        if results[1].status_code != 200:
            err(results[1], 409, 'Cannot add instructor as student')
        for resp in results[2:]:
            status = ok(resp)['status']
            assert status[0] in (
                {'username': user, 'success': True},
                {
                    'username': user,
                    'success': False,
                    'message': 'Cannot add instructor as student',
                },
            ), status
            assert status[1]['success'], status
        for server in pair:
            instructors = ok(server.get(('instructors', course), user=TEACHER))
            students = ok(server.get(('students', course), user=TEACHER))
            assert user in [e['username'] for e in instructors['instructors']]
            assert user not in [e['username'] for e in students['students']]
            err(
                server.get(('student', course, user), user=TEACHER),
                404,
                'Student not found',
            )
    assert_no_server_errors(pair)


class Gate:
    """Holds back every INSERT into ``courses`` on PostgreSQL (a table lock
    in SHARE mode, which reads pass) until ``open()``, so that a restore and
    the creations are all in flight, past their checks, when it opens; the
    waiters are then let through together. On SQLite, where one writer at a
    time runs whole anyway, it does nothing."""

    def __init__(self, database_url):
        self.engine = None
        if database_url.startswith('postgresql'):
            self.engine = create_engine(database_url, poolclass=NullPool)
            self.holder = self.engine.connect()
            self.holder.execute(text('LOCK TABLE courses IN SHARE MODE'))

    def wait_for(self, waiters, what):
        if self.engine is None:
            return
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ' AND datname = current_database() AND pid <> pg_backend_pid()'
        )
        for _ in range(int(WAIT / 0.05)):
            with self.engine.connect() as probe:
                if probe.execute(query).scalar_one() >= waiters:
                    return
            time.sleep(0.05)
        raise AssertionError(f'gave up waiting for {what}')

    def open(self):
        if self.engine is not None:
            self.holder.rollback()
            self.holder.close()
            self.engine.dispose()
            self.engine = None


def test_restore_vs_recreate_course(pair):
    """``ngshare-admin deleted restore`` of a course while the same name is
    created through both replicas: exactly one wins, whole."""
    outcomes = collections.Counter()
    for r in range(2):
        name = f'Phoenix {r}'
        new_course(pair[0], name, students=['kid'])
        ok(
            pair[0].post(
                ('assignment', name, 'Old'), user=TEACHER, data={'files': '[]'}
            )
        )
        ok(submit(pair[1], name, 'Old', 'kid', {'k.txt': b'kid'}))
        ok(pair[1].delete(('course', name), user='root'))
        (item,) = [i for i in deleted_items(pair[0]) if i['what'] == name]
        gate = Gate(pair[0].database_url)
        pool = ThreadPoolExecutor(1)
        try:
            restore = pool.submit(
                ngshare_admin, pair[0], 'deleted', 'restore', item['id']
            )
            gate.wait_for(1, 'the restore to wait for the gate')
            creating = ThreadPoolExecutor(1).submit(
                race,
                4,
                lambda i, name=name: pair[i % 2].post(
                    ('course', name),
                    user='root',
                    data={'instructors': json.dumps(['newcomer'])},
                    timeout=WAIT,
                ),
            )
            gate.wait_for(5, 'the creations to wait for the gate')
        finally:
            gate.open()
            pool.shutdown(wait=True)
        done = restore.result()
        created = creating.result(timeout=WAIT)
        wins = [resp for resp in created if resp.status_code == 200]
        for resp in created:
            if resp.status_code != 200:
                err(resp, 409, 'Course already exists')
        listed = {i['what'] for i in deleted_items(pair[0])}
        if done.returncode == 0:
            outcomes['restore'] += 1
            assert not wins, done.stderr
            assert name not in listed
            expected = ([TEACHER], ['kid'], ['Old'])
        else:
            outcomes['create'] += 1
            # Refused as if it ran after the creation (the name is taken), or
            # as a conflict to run again; either way nothing was restored.
            assert done.returncode == 2, done.stderr
            assert done.stderr.strip().splitlines()[-1] in (
                f'ngshare-admin: error: a course named {name!r} exists;'
                ' restore it --as another name',
                f'ngshare-admin: error: item {item["id"]} conflicts with a'
                ' concurrent change; nothing was restored, run the command again',
            ), done.stderr
            assert len(wins) == 1, [resp.text for resp in created]
            assert name in listed  # still restorable, --as another name
            expected = (['newcomer'], [], [])
        for server in pair:
            instructors = ok(server.get(('instructors', name), user='root'))
            students = ok(server.get(('students', name), user='root'))
            assignments = ok(server.get(('assignments', name), user='root'))
            assert (
                [e['username'] for e in instructors['instructors']],
                [e['username'] for e in students['students']],
                assignments['assignments'],
            ) == expected
    print('restore vs re-create outcomes:', dict(outcomes))
    assert_no_server_errors(pair)
