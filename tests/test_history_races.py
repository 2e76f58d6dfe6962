"""The downloads that are actions (fetch, collect, feedback fetch), raced
against writes to the same course on two servers: each acknowledged one has
exactly one history entry, which says what that download got.

A download that records its action runs as a "recorder" (one snapshot for
its reads, then its one INSERT; on SQLite a writer): ``pair`` (two real
replicas on one PostgreSQL database and a shared folder, or one SQLite
process given twice) serves students' fetches and feedback
fetches and the instructor's collects while, in the same moment, students
submit, the instructor replaces feedback, enrols students and releases
assignments. Afterwards the course's history, read by the admin from both
servers, is compared entry for entry with the acknowledged requests: the
same multiset of (action, user, student, assignment, timestamp, files,
bytes), so an entry missing, duplicated by a retried transaction, or
describing another version of the files than the one answered, shows.
A feedback fetch that answers no files (a submission not yet graded) is no
action and has no entry.
"""

from __future__ import annotations

import collections
import json

import pytest
from _api import files_of, ok, tree
from _races import history_of, new_course, sizes, submit
from _replicas import TEACHER, WAIT, assert_no_server_errors, race, roster_of

STUDENTS = ['s0', 's1', 's2', 's3']
COURSE, ASSIGNMENT = 'History races', 'Lab'
STEPS = 6  # requests (or pairs of them) of each thread
LAB = {'lab.ipynb': b'{"cells": []}', 'data/input.csv': b'a,b\n1,2\n'}


@pytest.fixture(params=['sqlite', 'postgresql'])
def pair(request, start_ngshare):
    """As ``_races.pair``, without its bucket variant: what a history entry
    says comes from the database alone, and the store's downloads are
    raced in test_replica_races.py."""
    if request.param == 'sqlite':
        server = start_ngshare(hub_mode=False)
        return [server, server]
    return request.getfixturevalue('start_replicas')()


def feedback_tree(student: str, version: int) -> dict[str, bytes]:
    """Its size names the version: the entry of a fetch says which it got."""
    return {
        f'{student}/report.html': b'<p>' + b'+' * version + b'</p>',
        'grade.txt': b'%d' % version,
    }


def entry_key(action, user, student, timestamp, files):
    return (action, user, student, ASSIGNMENT, timestamp, *sizes(files))


def test_downloads_recorded_once_during_writes(pair):
    new_course(pair[0], COURSE, students=STUDENTS)
    ok(
        pair[1].post(
            ('assignment', COURSE, ASSIGNMENT), user=TEACHER, data={'files': tree(LAB)}
        )
    )
    stamps, versions = {}, {}
    for i, student in enumerate(STUDENTS):
        answer = ok(submit(pair[i % 2], COURSE, ASSIGNMENT, student, {'a.txt': b'1'}))
        stamps[student] = answer['timestamp']
        versions[student] = [feedback_tree(student, 0)]
        ok(
            pair[i % 2].post(
                ('feedback', COURSE, ASSIGNMENT, student),
                user=TEACHER,
                data={
                    'timestamp': stamps[student],
                    'files': tree(versions[student][0]),
                },
                timeout=WAIT,
            )
        )
    for k in range(1, STEPS + 1):
        for student in STUDENTS:
            versions[student].append(feedback_tree(student, k))
    before = len(history_of(pair, COURSE))

    def feedback_get(server, student, submitted):
        return server.get(
            ('feedback', COURSE, ASSIGNMENT, student),
            user=student,
            params={'timestamp': ok(submitted)['timestamp']},
            timeout=WAIT,
        )

    def student_acts(i: int) -> list:
        """Fetch the assignment and the feedback; midway, submit again and
        fetch the new submission's (empty) feedback too."""
        student, done = STUDENTS[i], []
        for k in range(STEPS):
            server = pair[(i + k) % 2]
            if k == STEPS // 2:
                sent = {'b.txt': b'2' * (i + 1)}
                resp = submit(server, COURSE, ASSIGNMENT, student, sent)
                done.append(('submit', student, resp, sent))
                done.append(
                    ('fetch_feedback', student, feedback_get(server, student, resp))
                )
            done.append(
                (
                    'fetch',
                    student,
                    server.get(
                        ('assignment', COURSE, ASSIGNMENT), user=student, timeout=WAIT
                    ),
                )
            )
            done.append(
                (
                    'fetch_feedback',
                    student,
                    server.get(
                        ('feedback', COURSE, ASSIGNMENT, student),
                        user=student,
                        params={'timestamp': stamps[student]},
                        timeout=WAIT,
                    ),
                )
            )
        return done

    def collector(i: int) -> list:
        done = []
        for k in range(2 * STEPS):
            student = STUDENTS[(i + k) % len(STUDENTS)]
            resp = pair[k % 2].get(
                ('submission', COURSE, ASSIGNMENT, student), user=TEACHER, timeout=WAIT
            )
            done.append(('collect', student, resp))
        return done

    def grader(i: int) -> list:
        """Replace each student's feedback, version after version."""
        done = []
        for k in range(1, STEPS + 1):
            for j, student in enumerate(STUDENTS):
                files = versions[student][k]
                resp = pair[(k + j) % 2].post(
                    ('feedback', COURSE, ASSIGNMENT, student),
                    user=TEACHER,
                    data={'timestamp': stamps[student], 'files': tree(files)},
                    timeout=WAIT,
                )
                done.append(('release_feedback', student, resp, files))
        return done

    def registrar(i: int) -> list:
        """Other writes to the course: enrolments and releases."""
        done = []
        for k in range(STEPS):
            server = pair[k % 2]
            late = f'late{k}'
            resp = server.post(
                ('students', COURSE),
                user=TEACHER,
                data={'students': json.dumps(roster_of([late]))},
                timeout=WAIT,
            )
            done.append(('add_student', late, resp))
            files = {'extra.txt': b'e' * (k + 1)}
            resp = server.post(
                ('assignment', COURSE, f'Extra {k}'),
                user=TEACHER,
                data={'files': tree(files)},
                timeout=WAIT,
            )
            done.append(('release', f'Extra {k}', resp, files))
        return done

    roles = [student_acts] * len(STUDENTS) + [collector, collector, grader, registrar]
    results = race(len(roles), lambda i: roles[i](i))

    expected = collections.Counter()
    for done in results:
        for action, who, resp, *sent in done:
            answer = ok(resp)
            if action == 'fetch':
                files = files_of(answer)
                assert files == LAB
                expected[entry_key('fetch', who, who, None, files)] += 1
            elif action == 'fetch_feedback':
                files = files_of(answer)
                if files:  # else: nothing fetched, no action
                    assert files in versions[who], sorted(files)
                    expected[
                        entry_key(action, who, who, answer['timestamp'], files)
                    ] += 1
            elif action == 'collect':
                files = files_of(answer)
                key = entry_key(action, TEACHER, who, answer['timestamp'], files)
                expected[key] += 1
            elif action == 'submit':
                key = entry_key(action, who, who, answer['timestamp'], sent[0])
                expected[key] += 1
            elif action == 'release_feedback':
                key = entry_key(action, TEACHER, who, stamps[who], sent[0])
                expected[key] += 1
            elif action == 'add_student':
                expected[('add_student', TEACHER, who, None, None, None, None)] += 1
            else:
                expected[('release', TEACHER, None, who, None, *sizes(sent[0]))] += 1
    # Every new submission's feedback fetch answered no files: not recorded.
    assert sum(n for key, n in expected.items() if key[0] == 'fetch_feedback') == (
        len(STUDENTS) * STEPS
    )
    entries = history_of(pair, COURSE)[before:]
    fields = ('action', 'user', 'student_id', 'assignment_id', 'timestamp')
    got = collections.Counter(
        (*(e[f] for f in fields), e['files'], e['bytes']) for e in entries
    )
    assert got == expected
    assert_no_server_errors(pair)
