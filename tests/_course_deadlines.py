"""The deadline phases of the e2e course: due dates, extensions, lateness.

Played after the ten phases of :mod:`_course_scenario` by ``ngshare.exchange``
only (ngshare_exchange 0.5.3 knows nothing of deadlines; its course stays as
it is), on a second assignment (``ps2``, the same material as ``ps1``) so
that the first one's phases are untouched; what they share is in
:mod:`_course_deadline_material`:

* the instructor sets a due date in nbgrader's gradebook (``nbgrader db
  assignment add --duedate``) an hour ahead and releases: ngshare has
  it; grace gets an extension (``ngshare-course-management set_extension``,
  typed in the instructor's local time); every student's ``nbgrader list``
  shows their due date in their own local time (``TZ``);
* lawrence and eric submit on time; the instructor moves the due date a
  few seconds ahead (on ngshare and in the gradebook); once it has passed, eric
  submits again (late: warned) and grace (on time by her extension); each
  one's ``nbgrader list`` tells them whether their latest submission was
  late and by how much, as ngshare judged it, and the instructor's ``list
  --inbound`` tells it of every submission;
* the instructor collects and autogrades: the gradebook's lateness of each
  student is ngshare's ``seconds_late``; ``collect --before-duedate`` takes
  eric's on-time submission instead, and autograde agrees again;
* with the ``refuse`` policy a late submission fails (exit status, ngshare's
  message naming the deadline) and nothing new reaches ngshare.

The only wait is for the moved due date to pass, a few seconds: the on-time
steps never race a clock, however slow the machine.
"""

from __future__ import annotations

import time

from _course_deadline_material import (
    ASSIGNMENT2,
    EXTENSION,
    FIRST_DUE_AHEAD,
    MOVED_AHEAD,
    NOTEBOOK2,
    STUDENTS,
    UTC,
    ZONES,
    Deadlines,
    cached_submissions,
    deadlines_of,
    in_zone,
    listed_line,
    parse_stamp,
    server_entries,
    shown_locally,
    spoken_seconds,
    start_deadlines,
    utc_now,
    verdict,
    wire,
)
from _course_harness import Course, User, checksums
from _course_material import (
    COURSE,
    DATA,
    DATA_FILE,
    ERIC,
    GRACE,
    KEVIN,
    LAWRENCE,
    POINTS,
    RIGHT_ANSWER,
    WRONG_ANSWER,
    answer,
    gradebook,
    source_notebook,
)

__all__ = ['DEADLINE_PHASES']

# --------------------------------------------------------------------------
# phase 11: the due date from the gradebook to the students


def release_with_due_date(course: Course) -> None:
    kevin = course[KEVIN.name]
    root = course.course_dir
    source = root / 'source' / ASSIGNMENT2
    release = root / 'release' / ASSIGNMENT2

    with course.step('generate_assignment ps2', kevin):
        (source / 'data').mkdir(parents=True)
        (source / NOTEBOOK2).write_text(source_notebook(), 'utf-8')
        (source / DATA_FILE).write_bytes(DATA)
        kevin.run('nbgrader', 'generate_assignment', ASSIGNMENT2, cwd=root)
        released = checksums(release)
        assert set(released) == {NOTEBOOK2, DATA_FILE}, released

    with course.step('due date in the gradebook', kevin):
        due = (utc_now() + FIRST_DUE_AHEAD).replace(microsecond=0)
        state = start_deadlines(course, Deadlines(due, due + EXTENSION, released))
        # as nbgrader's docs write it, an instant with its zone
        kevin.run(
            'nbgrader',
            'db',
            'assignment',
            'add',
            ASSIGNMENT2,
            f'--duedate={due:%Y-%m-%d %H:%M:%S} UTC',
            cwd=root,
        )
        with gradebook(root) as gb:
            assert gb.find_assignment(ASSIGNMENT2).duedate == due

    with course.step('release_assignment sends the due date', kevin):
        kevin.run('nbgrader', 'release_assignment', ASSIGNMENT2, cwd=root)
        body = kevin.api_ok(
            'GET', 'assignment', COURSE, ASSIGNMENT2, params={'list_only': 'true'}
        )
        assert {f['path']: f['checksum'] for f in body['files']} == released
        body = kevin.api_ok('GET', 'deadline', COURSE, ASSIGNMENT2)
        assert body == {
            'success': True,
            'due': wire(due),
            'late_policy': 'accept',
            'grace_seconds': 0,
            'cutoff': None,
            'extensions': [],
        }, body

    with course.step('set_extension in local time', kevin):
        # no offset: the instructor's local time (TZ), as they read a clock
        typed = state.extended.replace(tzinfo=UTC).astimezone(ZONES[kevin.name][1])
        ran = kevin.run(
            'ngshare-course-management',
            'set_extension',
            COURSE,
            ASSIGNMENT2,
            GRACE.name,
            typed.strftime('%Y-%m-%dT%H:%M:%S'),
            cwd=root,
            env=in_zone(kevin),
        )
        until = wire(state.extended)
        local = shown_locally(kevin.name, state.extended)
        assert f'{GRACE.name} an extension of {ASSIGNMENT2}' in ran.stdout
        assert f'until {until} ({local})' in ran.stdout, ran.stdout
        body = kevin.api_ok('GET', 'deadline', COURSE, ASSIGNMENT2)
        assert body['due'] == wire(due), body
        assert body['extensions'] == [
            {'student_id': GRACE.name, 'due': wire(state.extended), 'cutoff': None}
        ], body

    def list_and_fetch(student: User) -> None:
        mine = state.due_of(student.name)
        body = student.api_ok('GET', 'deadline', COURSE, ASSIGNMENT2)
        assert (body['due'], body['extended']) == (
            wire(mine),
            student.name == GRACE.name,
        ), body
        ran = student.run('nbgrader', 'list', env=in_zone(student))
        line = listed_line(ran.output, f'{COURSE} {ASSIGNMENT2}')
        local = shown_locally(student.name, mine)
        assert line.endswith(f'{COURSE} {ASSIGNMENT2}, due {local}'), line
        student.run(
            'nbgrader',
            'fetch_assignment',
            ASSIGNMENT2,
            '--course',
            COURSE,
            env=in_zone(student),
        )
        assert checksums(student.home / ASSIGNMENT2) == released

    course.each(
        'list shows the due date, fetch',
        [course[name] for name in STUDENTS],
        list_and_fetch,
    )


# --------------------------------------------------------------------------
# phase 12: on time, late, extended


def submit(course: Course, student: User, source: str) -> tuple[str, dict]:
    """Submit ``source`` as ``student``; the timestamp and ngshare's entry."""
    state = deadlines_of(course)
    answer(student.home / ASSIGNMENT2 / NOTEBOOK2, source)
    files = checksums(student.home / ASSIGNMENT2)
    before = set(cached_submissions(student))
    ran = student.run(
        'nbgrader', 'submit', ASSIGNMENT2, '--course', COURSE, env=in_zone(student)
    )
    (timestamp,) = set(cached_submissions(student)) - before
    assert f'Submitted as: {COURSE} {ASSIGNMENT2} {timestamp}' in ran.output
    entries = {e['timestamp']: e for e in server_entries(student, student.name)}
    entry = entries[timestamp]
    mine = state.due_of(student.name)
    assert entry['due'] == wire(mine), entry
    # ngshare's judgement is its clock against the due date that applied
    late_by = max(0.0, (parse_stamp(timestamp) - mine).total_seconds())
    assert entry['seconds_late'] == late_by, (entry, late_by)
    assert entry['late'] is (late_by > 0), entry
    if entry['late']:
        local = shown_locally(student.name, mine)
        warning = f'{spoken_seconds(late_by)}: it was due {local}'
        assert warning in ran.output, ran.output
    else:
        assert 'late: it was due' not in ran.output, ran.output
    state.submissions.setdefault(student.name, []).append((timestamp, entry, files))
    return timestamp, entry


def submit_by_the_deadline(course: Course) -> None:
    state = deadlines_of(course)
    lawrence, eric, grace = (course[name] for name in STUDENTS)
    first = {LAWRENCE.name: RIGHT_ANSWER, ERIC.name: WRONG_ANSWER}

    def on_time(student: User) -> None:
        _, entry = submit(course, student, first[student.name])
        assert entry['late'] is False, (
            f'{entry}: the on-time steps took longer than the due date allowed'
        )

    def list_tells_the_truth(student: User) -> None:
        # their due date, and how ngshare judged their latest submission
        ran = student.run('nbgrader', 'list', env=in_zone(student))
        line = listed_line(ran.output, f'{COURSE} {ASSIGNMENT2}')
        mine = shown_locally(student.name, state.due_of(student.name))
        assert f'due {mine}' in line, line
        timestamp, entry, _ = state.submissions[student.name][-1]
        stamp = shown_locally(student.name, parse_stamp(timestamp))
        assert f'submitted {stamp}, {verdict(entry)}' in line, line

    course.each('submit before the due date', [lawrence, eric], on_time)
    # while the due date comes closer
    course.each('list: on time', [lawrence, eric], list_tells_the_truth)

    with course.step('the due date moves closer', course[KEVIN.name]):
        # as set_due_date does (its own tests show it): on ngshare, and in
        # the gradebook, which autograde reads. The on-time submissions keep
        # the due date that applied to them.
        kevin = course[KEVIN.name]
        moved = (utc_now() + MOVED_AHEAD).replace(microsecond=0)
        body = kevin.api_ok(
            'POST', 'deadline', COURSE, ASSIGNMENT2, data={'due': wire(moved)}
        )
        assert body['due'] == wire(moved), body
        with gradebook(course.course_dir) as gb:
            gb.update_or_create_assignment(ASSIGNMENT2, duedate=moved)
        state.due = moved

    # the one wait of the course: until ngshare's clock (this machine's)
    # has passed the due date
    left = (state.due - utc_now()).total_seconds()
    if left > 0:
        time.sleep(left + 0.2)

    def after_due(student: User) -> None:
        _, entry = submit(course, student, RIGHT_ANSWER)
        assert entry['late'] is (student.name == ERIC.name), entry

    course.each('submit after the due date', [eric, grace], after_due)
    course.each('list: late, and extended', [eric, grace], list_tells_the_truth)


# --------------------------------------------------------------------------
# phase 13: collect and autograde agree with ngshare


def collected_stamp(course: Course, name: str) -> str:
    folder = course.course_dir / 'submitted' / name / ASSIGNMENT2
    return (folder / 'timestamp.txt').read_text().strip()


def check_collected(course: Course, chosen: dict[str, int]) -> None:
    """``submitted/`` has, per student, their submission number ``chosen``."""
    state = deadlines_of(course)
    for name, index in chosen.items():
        timestamp, _, files = state.submissions[name][index]
        assert collected_stamp(course, name) == timestamp, name
        found = checksums(course.course_dir / 'submitted' / name / ASSIGNMENT2)
        assert found.pop('timestamp.txt')
        assert found == files, name


def check_graded(course: Course, chosen: dict[str, int], scores: dict) -> None:
    """The gradebook's lateness is ngshare's ``seconds_late``."""
    state = deadlines_of(course)
    with gradebook(course.course_dir) as gb:
        assert gb.find_assignment(ASSIGNMENT2).duedate == state.due
        for name, index in chosen.items():
            timestamp, entry, _ = state.submissions[name][index]
            graded = gb.find_submission(ASSIGNMENT2, name)
            assert graded.timestamp == parse_stamp(timestamp), name
            late_by = graded.total_seconds_late
            assert (name, late_by) == (name, entry['seconds_late'])
            assert (name, graded.score, graded.max_score) == (
                name,
                scores[name],
                POINTS,
            )


def collect_by_the_deadline(course: Course) -> None:
    kevin = course[KEVIN.name]
    root = course.course_dir
    state = deadlines_of(course)
    latest = {name: len(state.submissions[name]) - 1 for name in STUDENTS}

    with course.step('list --inbound shows lateness', kevin):
        ran = kevin.run('nbgrader', 'list', '--inbound', cwd=root, env=in_zone(kevin))
        for name in STUDENTS:
            for timestamp, entry, _ in state.submissions[name]:
                line = listed_line(ran.output, f'{name} {ASSIGNMENT2} {timestamp}')
                assert line.endswith(f', {verdict(entry)}'), line

    with course.step('collect the latest', kevin):
        kevin.run('nbgrader', 'collect', ASSIGNMENT2, cwd=root)
        check_collected(course, latest)

    with course.step('autograde agrees on lateness', kevin):
        kevin.run('nbgrader', 'autograde', ASSIGNMENT2, cwd=root)
        check_graded(course, latest, dict.fromkeys(STUDENTS, POINTS))
        # grace's extension is what keeps her on time in the gradebook too
        (grace_stamp, _, _) = state.submissions[GRACE.name][-1]
        assert parse_stamp(grace_stamp) > state.due

    with course.step('collect --before-duedate', kevin):
        kevin.run('nbgrader', 'collect', '--before-duedate', ASSIGNMENT2, cwd=root)
        on_time = {**latest, ERIC.name: 0}
        check_collected(course, on_time)

    with course.step('autograde the on-time submission', kevin):
        kevin.run(
            'nbgrader',
            'autograde',
            ASSIGNMENT2,
            '--student',
            ERIC.name,
            '--force',
            cwd=root,
        )
        check_graded(course, {ERIC.name: 0}, {ERIC.name: 0.0})


# --------------------------------------------------------------------------
# phase 14: a refusing policy


def refuse_late_submissions(course: Course) -> None:
    kevin, lawrence = course[KEVIN.name], course[LAWRENCE.name]
    root = course.course_dir
    state = deadlines_of(course)
    closed = f'Deadline passed: submissions closed at {wire(state.due)}'

    with course.step('set_late_policy refuse', kevin):
        ran = kevin.run(
            'ngshare-course-management',
            'set_late_policy',
            COURSE,
            ASSIGNMENT2,
            'refuse',
            cwd=root,
        )
        assert f'of {ASSIGNMENT2} in {COURSE} to refuse' in ran.stdout, ran.stdout
        body = kevin.api_ok('GET', 'deadline', COURSE, ASSIGNMENT2)
        assert (body['late_policy'], body['grace_seconds'], body['cutoff']) == (
            'refuse',
            0,
            wire(state.due),
        ), body
        assert body['extensions'] == [
            {
                'student_id': GRACE.name,
                'due': wire(state.extended),
                'cutoff': wire(state.extended),
            }
        ], body

    with course.step('a late submit is refused', lawrence):
        before = server_entries(lawrence, lawrence.name)
        cached = set(cached_submissions(lawrence))
        answer(lawrence.home / ASSIGNMENT2 / NOTEBOOK2, WRONG_ANSWER)
        ran = lawrence.run(
            'nbgrader',
            'submit',
            ASSIGNMENT2,
            '--course',
            COURSE,
            env=in_zone(lawrence),
            expect=course.deployment.client.failure_status,
        )
        course.assert_client_refused(ran, 403, '', closed)
        assert shown_locally(lawrence.name, state.due) in ran.output
        assert server_entries(lawrence, lawrence.name) == before
        assert set(cached_submissions(lawrence)) == cached
        lawrence.api_refused(
            403,
            closed,
            'POST',
            'submission',
            COURSE,
            ASSIGNMENT2,
            data={'files': '[]'},
        )
        assert server_entries(lawrence, lawrence.name) == before


#: Played after :data:`_course_scenario.PHASES` by ``ngshare.exchange``.
DEADLINE_PHASES = [
    ('release with a due date', release_with_due_date),
    ('submit by the deadline', submit_by_the_deadline),
    ('collect by the deadline', collect_by_the_deadline),
    ('refuse late submissions', refuse_late_submissions),
]
