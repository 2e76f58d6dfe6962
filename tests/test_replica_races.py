"""Every write endpoint raced against itself, across two replicas.

For each write endpoint, groups of requests aimed at the same target leave a
barrier together (``race``) and go alternately to the two servers of
``pair``: two real replicas on one PostgreSQL database, or one SQLite
process given twice. Afterwards the invariants are read back through the
API of both servers:

* a create or delete has exactly one winner; every loser answers the
  documented 409 or 404, letter for letter;
* a replace or update leaves exactly one request's content, whole: never
  fields or files of two requests mixed;
* what was acknowledged is what is listed (N acknowledged submissions, N
  listed, each byte-exact), and a delete keeps exactly one restorable item;
* the course's history, as the admin reads it from both servers, has
  exactly one entry per acknowledged action (per person it concerns), with
  the files, bytes and timestamps of the request that won: none from a
  refused request or a rolled-back attempt, no duplicate from a retried
  transaction, none missing;
* no request anywhere answered a 5xx.

Rounds: 3 of each group of 8 (see ROUNDS and GROUP).
"""

from __future__ import annotations

import collections
import json

from _api import err, files_of, ok, tree
from _races import (
    deleted_items,
    history_of,
    new_course,
    one_winner,
    recorded,
    sizes,
)
from _replicas import TEACHER, WAIT, assert_no_server_errors, race

ROUNDS = 3
GROUP = 8


def person(i, tag=''):
    """Form fields of a roster entry that say which request wrote them."""
    return {
        'first_name': f'F{tag}{i}',
        'last_name': f'L{tag}{i}',
        'email': f'{tag}{i}@x',
    }


def whole_person(entry) -> str:
    """The request tag of an entry; asserts all three fields carry it."""
    tag = entry['first_name'][1:]
    assert entry['last_name'] == f'L{tag}' and entry['email'] == f'{tag}@x', entry
    return tag


def test_course_create_and_delete(pair):
    names = [f'Course {r}' for r in range(ROUNDS)]
    winning_teams = []
    for name in names:
        teams = [[f'{name} t{i}', f'{name} co{i}'] for i in range(GROUP)]
        results = race(
            GROUP,
            lambda i, name=name, teams=teams: pair[i % 2].post(
                ('course', name),
                user='root',
                data={'instructors': json.dumps(teams[i])},
                timeout=WAIT,
            ),
        )
        winner = one_winner(results, 409, 'Course already exists')
        winning_teams.append(teams[winner])
        for server in pair:
            listed = ok(server.get(('instructors', name), user='root'))
            assert [e['username'] for e in listed['instructors']] == teams[winner]
    for server in pair:
        assert ok(server.get('courses', user='root'))['courses'] == names
    for name in names:
        results = race(
            GROUP,
            lambda i, name=name: pair[i % 2].delete(
                ('course', name), user='root', timeout=WAIT
            ),
        )
        one_winner(results, 404, 'Course not found')
        for server in pair:
            err(server.get(('assignments', name), user='root'), 404, 'Course not found')
    for server in pair:
        assert ok(server.get('courses', user='root'))['courses'] == []
    # One delete won each round: one kept item per course, not one per racer.
    kept = sorted(item['what'] for item in deleted_items(pair[0]))
    assert kept == names
    # The history of each (deleted) course: the winner's create with its
    # instructors, and one delete, whatever the number of racers.
    for name, team in zip(names, winning_teams):
        entries = history_of(pair, name)
        actions = [entry['action'] for entry in entries]
        assert actions == ['create_course', *['add_instructor'] * 2, 'delete_course']
        assert {entry['user'] for entry in entries} == {'root'}
        assert sorted(e['student_id'] for e in entries[1:3]) == sorted(team)
        assert entries[0]['student_id'] is None and entries[-1]['student_id'] is None
    assert_no_server_errors(pair)


def test_instructor_add_and_remove(pair):
    course = 'Staffing'
    new_course(pair[0], course)
    for r in range(ROUNDS):
        helper = f'helper{r}'
        results = race(
            GROUP,
            lambda i, helper=helper, r=r: pair[i % 2].post(
                ('instructor', course, helper),
                user='root',
                data=person(i, f'r{r}-'),
                timeout=WAIT,
            ),
        )
        for resp in results:
            ok(resp)
        listings = [
            ok(server.get(('instructors', course), user=TEACHER))['instructors']
            for server in pair
        ]
        assert listings[0] == listings[1]
        assert [e['username'] for e in listings[0]] == [TEACHER, helper]
        assert whole_person(listings[0][1]).startswith(f'r{r}-')
        results = race(
            GROUP,
            lambda i, helper=helper: pair[i % 2].delete(
                ('instructor', course, helper), user='root', timeout=WAIT
            ),
        )
        one_winner(results, 404, 'Instructor not found')
        for server in pair:
            listed = ok(server.get(('instructors', course), user=TEACHER))
            assert [e['username'] for e in listed['instructors']] == [TEACHER]
            err(
                server.get(('instructor', course, helper), user=TEACHER),
                404,
                'Instructor not found',
            )
    # Distinct instructors added together: every acknowledged one is listed.
    staff = [f'staff{i}' for i in range(GROUP)]
    for resp in race(
        GROUP,
        lambda i: pair[i % 2].post(
            ('instructor', course, staff[i]), user='root', data=person(i), timeout=WAIT
        ),
    ):
        ok(resp)
    for server in pair:
        listed = ok(server.get(('instructors', course), user=TEACHER))['instructors']
        assert sorted(e['username'] for e in listed) == sorted([TEACHER, *staff])
    # One add per round, the request that enrolled the helper (the others,
    # all acknowledged, updated their entry: no action of the course); one
    # remove per round.
    entries = history_of(pair, course)
    expected = collections.Counter(
        {('create_course', None): 1, ('add_instructor', TEACHER): 1}
    )
    for r in range(ROUNDS):
        expected[('add_instructor', f'helper{r}')] = 1
        expected[('remove_instructor', f'helper{r}')] = 1
    expected.update(('add_instructor', name) for name in staff)
    assert recorded(entries, 'action', 'student_id') == expected
    assert {entry['user'] for entry in entries} == {'root'}
    assert_no_server_errors(pair)


def test_student_add_and_remove(pair):
    course = 'Enrolment'
    new_course(pair[0], course)
    for r in range(ROUNDS):
        learner = f'learner{r}'
        # Half through POST /student, half through POST /students.
        results = race(
            GROUP,
            lambda i, learner=learner, r=r: (
                pair[i % 2].post(
                    ('student', course, learner),
                    user=TEACHER,
                    data=person(i, f'r{r}-'),
                    timeout=WAIT,
                )
                if i % 2
                else pair[i % 2].post(
                    ('students', course),
                    user=TEACHER,
                    data={
                        'students': json.dumps(
                            [{'username': learner, **person(i, f'r{r}-')}]
                        )
                    },
                    timeout=WAIT,
                )
            ),
        )
        for resp in results:
            answer = ok(resp)
            assert answer.get('status', [{'success': True}])[0]['success'], answer
        listings = [
            ok(server.get(('student', course, learner), user=TEACHER))
            for server in pair
        ]
        assert listings[0] == listings[1]
        assert whole_person(listings[0]).startswith(f'r{r}-')
        results = race(
            GROUP,
            lambda i, learner=learner: pair[i % 2].delete(
                ('student', course, learner), user=TEACHER, timeout=WAIT
            ),
        )
        one_winner(results, 404, 'Student not found')
        for server in pair:
            err(
                server.get(('student', course, learner), user=TEACHER),
                404,
                'Student not found',
            )
            assert ok(server.get(('students', course), user=TEACHER))['students'] == []
    # Each round: one add (of GROUP acknowledged, through either endpoint,
    # one enrolled the learner, the others updated them), one remove.
    entries = history_of(pair, course)
    expected = collections.Counter(
        {('create_course', 'root', None): 1, ('add_instructor', 'root', TEACHER): 1}
    )
    for r in range(ROUNDS):
        expected[('add_student', TEACHER, f'learner{r}')] = 1
        expected[('remove_student', TEACHER, f'learner{r}')] = 1
    assert recorded(entries, 'action', 'user', 'student_id') == expected
    assert_no_server_errors(pair)


def test_bulk_student_adds_leave_one_request_whole(pair):
    """Bulk adds of the same people with different values: afterwards every
    entry carries the values of one and the same request (the one that
    committed last), in whatever order the requests listed the people."""
    course = 'Bulk'
    new_course(pair[0], course)
    people = [f'pupil{k:02d}' for k in range(12)]
    for r in range(ROUNDS):

        def add(i, r=r):
            order = people if i % 2 else list(reversed(people))
            students = [{'username': p, **person(i, f'r{r}-')} for p in order]
            return pair[i % 2].post(
                ('students', course),
                user=TEACHER,
                data={'students': json.dumps(students)},
                timeout=WAIT,
            )

        for resp in race(GROUP, add):
            assert all(entry['success'] for entry in ok(resp)['status'])
        listings = [
            ok(server.get(('students', course), user=TEACHER))['students']
            for server in pair
        ]
        assert listings[0] == listings[1]
        assert sorted(e['username'] for e in listings[0]) == people
        tags = {whole_person(entry) for entry in listings[0]}
        assert len(tags) == 1 and tags.pop().startswith(f'r{r}-'), listings[0]
    # One add_student per person, by the request that enrolled them first
    # (docs/api.md: "one entry per student it adds"); every other request,
    # of every round, only updated them.
    entries = history_of(pair, course)
    expected = collections.Counter(
        {('create_course', None): 1, ('add_instructor', TEACHER): 1}
    )
    expected.update({('add_student', p): 1 for p in people})
    assert recorded(entries, 'action', 'student_id') == expected
    # All twelve by one request (written together, at one time).
    assert len({e['time'] for e in entries if e['action'] == 'add_student'}) == 1
    assert_no_server_errors(pair)


def test_release_and_delete_assignment(pair):
    course = 'Releases'
    new_course(pair[0], course, students=['student0'])
    names = [f'Lab {r}' for r in range(ROUNDS)]
    released = {}
    for name in names:
        # Of different sizes: the entry says which release won.
        trees = [
            {
                f'part{k}.txt': f'{name} release {i} part {k}'.encode() + b'.' * i
                for k in range(5)
            }
            for i in range(GROUP)
        ]
        results = race(
            GROUP,
            lambda i, name=name, trees=trees: pair[i % 2].post(
                ('assignment', course, name),
                user=TEACHER,
                data={'files': tree(trees[i])},
                timeout=WAIT,
            ),
        )
        winner = one_winner(results, 409, 'Assignment already exists')
        released[name] = sizes(trees[winner])
        for server in pair:
            body = ok(server.get(('assignment', course, name), user='student0'))
            assert files_of(body) == trees[winner]
        results = race(
            GROUP,
            lambda i, name=name: pair[i % 2].delete(
                ('assignment', course, name), user=TEACHER, timeout=WAIT
            ),
        )
        one_winner(results, 404, 'Assignment not found')
        for server in pair:
            err(
                server.get(('assignment', course, name), user='student0'),
                404,
                'Assignment not found',
            )
    for server in pair:
        assert (
            ok(server.get(('assignments', course), user=TEACHER))['assignments'] == []
        )
    kept = sorted(item['what'] for item in deleted_items(pair[0]))
    assert kept == [f'{course} / {name}' for name in names]
    # Per assignment: the winner's release, the student's two fetches of
    # it (none for the 404s), one unrelease, in that order.
    entries = history_of(pair, course)
    assert [e['action'] for e in entries[:3]] == [
        'create_course',
        'add_instructor',
        'add_student',
    ]
    for k, name in enumerate(names):
        files, total = released[name]
        assert [
            (e['action'], e['user'], e['assignment_id'], e['files'], e['bytes'])
            for e in entries[3 + 4 * k : 7 + 4 * k]
        ] == [
            ('release', TEACHER, name, files, total),
            ('fetch', 'student0', name, files, total),
            ('fetch', 'student0', name, files, total),
            ('unrelease', TEACHER, name, None, None),
        ]
    assert len(entries) == 3 + 4 * len(names)
    assert_no_server_errors(pair)


def test_submissions_of_one_student_together(pair):
    """One student's submissions sent together (a retried request, two
    tabs): all acknowledged with distinct timestamps, all listed, each
    byte-exact from both servers."""
    course, assignment = 'Submitting', 'Essay'
    students = [f'writer{r}' for r in range(ROUNDS)]
    new_course(pair[0], course, students=students)
    ok(
        pair[1].post(
            ('assignment', course, assignment), user=TEACHER, data={'files': '[]'}
        )
    )
    acknowledged = collections.Counter()
    contents = {}
    submitted = collections.Counter()  # (student, timestamp, files, bytes)
    for student in students:
        trees = [
            {'essay.txt': f'{student} draft {i}\n'.encode(), 'notes/n.txt': b'%d' % i}
            for i in range(GROUP)
        ]
        results = race(
            GROUP,
            lambda i, student=student, trees=trees: pair[i % 2].post(
                ('submission', course, assignment),
                user=student,
                data={'files': tree(trees[i], checksums=True)},
                timeout=WAIT,
            ),
        )
        stamps = [ok(resp)['timestamp'] for resp in results]
        assert len(set(stamps)) == GROUP, stamps
        for i, stamp in enumerate(stamps):
            acknowledged[(student, stamp)] += 1
            contents[(student, stamp)] = (trees[i], i % 2)
            submitted[(student, stamp, *sizes(trees[i]))] += 1
    for server in pair:
        listed = ok(server.get(('submissions', course, assignment), user=TEACHER))
        assert (
            collections.Counter(
                (e['student_id'], e['timestamp']) for e in listed['submissions']
            )
            == acknowledged
        )
    for (student, stamp), (files, written_by) in contents.items():
        body = ok(
            pair[1 - written_by].get(
                ('submission', course, assignment, student),
                user=TEACHER,
                params={'timestamp': stamp},
            )
        )
        assert files_of(body) == files
    # One submit entry per acknowledged submission, with its timestamp and
    # sizes, by the student; one collect per download, by the instructor.
    entries = history_of(pair, course)
    fields = ('user', 'student_id', 'timestamp', 'files', 'bytes')
    of = {
        action: recorded([e for e in entries if e['action'] == action], *fields)
        for action in ('submit', 'collect')
    }
    assert of['submit'] == collections.Counter(
        {(key[0], *key): n for key, n in submitted.items()}
    )
    assert of['collect'] == collections.Counter(
        {(TEACHER, *key): n for key, n in submitted.items()}
    )
    assert recorded(entries, 'action') == collections.Counter(
        {
            ('create_course',): 1,
            ('add_instructor',): 1,
            ('add_student',): ROUNDS,
            ('release',): 1,
            ('submit',): ROUNDS * GROUP,
            ('collect',): ROUNDS * GROUP,
        }
    )
    assert_no_server_errors(pair)


def test_feedback_uploads_on_one_submission(pair):
    """Feedback uploads for one submission sent together: all answer 200
    (each replaces the one before), and afterwards the feedback is exactly
    one upload's tree, the same from both servers, never a merge."""
    course, assignment = 'Grading', 'Quiz'
    new_course(pair[0], course, students=['pupil'])
    ok(
        pair[0].post(
            ('assignment', course, assignment), user=TEACHER, data={'files': '[]'}
        )
    )
    expected = collections.Counter()  # (action, user, timestamp, files, bytes)
    for r in range(ROUNDS):
        stamp = ok(
            pair[1].post(
                ('submission', course, assignment),
                user='pupil',
                data={'files': tree({'answer.txt': b'%d' % r})},
            )
        )['timestamp']
        trees = [
            {
                f'feedback-{i}.html': f'round {r} grader {i}'.encode() + b'!' * i,
                'grade.txt': b'%d' % i,
            }
            for i in range(GROUP)
        ]
        results = race(
            GROUP,
            lambda i, stamp=stamp, trees=trees: pair[i % 2].post(
                ('feedback', course, assignment, 'pupil'),
                user=TEACHER,
                data={'timestamp': stamp, 'files': tree(trees[i])},
                timeout=WAIT,
            ),
        )
        for resp in results:
            ok(resp)
        answers = [
            ok(
                server.get(
                    ('feedback', course, assignment, 'pupil'),
                    user=who,
                    params={'timestamp': stamp},
                )
            )
            for server in pair
            for who in ('pupil', TEACHER)
        ]
        for answer in answers:
            paths = [entry['path'] for entry in answer['files']]
            assert paths in [list(t) for t in trees], f'uploads merged: {paths}'
        got = [files_of(answer) for answer in answers]
        assert all(g == got[0] for g in got), got
        assert got[0] in trees, sorted(got[0])
        expected[('submit', 'pupil', stamp, 1, len(b'%d' % r))] += 1
        for files in trees:
            expected[('release_feedback', TEACHER, stamp, *sizes(files))] += 1
        # The pupil's two downloads: the one tree they got (the teacher's
        # looks are no fetches).
        expected[('fetch_feedback', 'pupil', stamp, *sizes(got[0]))] += len(pair)
    entries = history_of(pair, course)
    assert [e['action'] for e in entries[:4]] == [
        'create_course',
        'add_instructor',
        'add_student',
        'release',
    ]
    graded = entries[4:]
    assert {(e['student_id'], e['assignment_id']) for e in graded} == {
        ('pupil', assignment)
    }
    assert recorded(graded, 'action', 'user', 'timestamp', 'files', 'bytes') == expected
    assert_no_server_errors(pair)
