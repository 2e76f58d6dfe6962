"""The nbgrader course of the end-to-end tests, phase by phase.

:func:`run_course` plays the ten :data:`PHASES` in order against a
:class:`~_course_harness.Deployment`: the same for ngshare stand-alone
behind the Hub stand-in and for ngshare under a real JupyterHub, with either
plugin; ``ngshare.exchange`` then plays the deadline phases of
:mod:`_course_deadlines` (:func:`course_phases`). The client exits 0 on
many failures, so every step checks its effects: files on disk in
nbgrader's layout and their checksums, the gradebook, the exported grades,
and ngshare's state through its API. Every refusal is checked where a user
sees it: the client's output shows ngshare's answer, the same request
through the API gets that answer, and the API shows nothing changed. A
failure names its phase, its step and its user (see
:meth:`~_course_harness.Course.play`).

The phases up to the first submission are here; the ones from submitting
on are in :mod:`_course_grading`; the cast and the notebook are in
:mod:`_course_material`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _course_clients import NEW_CLIENT, Client, check_client_installed
from _course_deadlines import DEADLINE_PHASES
from _course_grading import (
    collect_and_grade,
    refusals_after_grading,
    release_feedback,
    students_fetch_feedback,
    students_submit,
)
from _course_harness import Course, Deployment, User, checksums
from _course_material import (
    ABIGAIL,
    ANSWERS,
    ASSIGNMENT,
    BOGUS_TOKEN,
    COURSE,
    DATA,
    DATA_FILE,
    ERIC,
    ERIC_UPDATED,
    GRACE,
    KEVIN,
    LAWRENCE,
    MALLORY,
    NOTEBOOK,
    OSCAR,
    gradebook_students,
    new_course,
    person_tuple,
    roster,
    source_notebook,
)

__all__ = [
    'PHASES',
    'PHASE_IDS',
    'course_phases',
    'phase_ids',
    'phase_params',
    'run_course',
    'start_course',
]


def start_course(deployment: Deployment, root: Path) -> Course:
    """The course on ``deployment``, nothing played yet (see ``Course.play``).

    Fails (not skips) when the client is not installed.
    """
    check_client_installed(deployment.client)
    return new_course(deployment, root)


def run_course(deployment: Deployment, root: Path) -> Course:
    """Play the whole course; raise at the first failure, naming its phase."""
    course = start_course(deployment, root)
    course.play(course_phases(deployment.client))
    return course


def set_up_course(course: Course) -> None:
    admin, kevin = course[course.deployment.admin], course[KEVIN.name]

    with course.step('create_course', admin):
        ran = admin.run('ngshare-course-management', 'create_course', COURSE, 'kevin')
        assert f'Successfully created {COURSE}' in ran.stdout
        assert COURSE in kevin.api_ok('GET', 'courses')['courses']
        body = admin.api_ok('GET', 'instructors', COURSE)
        assert [i['username'] for i in body['instructors']] == [KEVIN.name]

    if course.deployment.client.instructor_names_required:
        with course.step('add_instructor without -f/-l/-e (refused)', admin):
            # The client sends no name fields without -f/-l/-e; the documented
            # API answers 400 "Please supply first name", and the client exits
            # with -1 after printing the message. The same request through
            # the API is refused so, and changes nothing.
            ran = admin.run(
                'ngshare-course-management',
                'add_instructor',
                COURSE,
                ABIGAIL.name,
                expect=255,
            )
            assert 'Please supply first name' in ran.stdout
            admin.api_refused(
                400,
                'Please supply first name',
                'POST',
                'instructor',
                COURSE,
                ABIGAIL.name,
            )
            body = admin.api_ok('GET', 'instructors', COURSE)
            assert ABIGAIL.name not in [i['username'] for i in body['instructors']]
    else:
        # ngshare.exchange keeps the stored names (none for someone new).
        with course.step('add_instructor without -f/-l/-e', admin):
            ran = admin.run(
                'ngshare-course-management', 'add_instructor', COURSE, ABIGAIL.name
            )
            line = f'Successfully added {ABIGAIL.name} as an instructor'
            assert line in ran.stdout
            body = admin.api_ok('GET', 'instructors', COURSE)
            found = {
                i['username']: (i['first_name'], i['last_name'], i['email'])
                for i in body['instructors']
            }
            assert found[ABIGAIL.name] == ('', '', ''), found

    with course.step('add_instructor -f -l -e', admin):
        for person in (KEVIN, ABIGAIL):  # update kevin, add abigail
            ran = admin.run(
                'ngshare-course-management',
                'add_instructor',
                COURSE,
                person.name,
                '-f',
                person.first_name,
                '-l',
                person.last_name,
                '-e',
                person.email,
            )
            assert f'Successfully added {person.name} as an instructor' in ran.stdout
        body = admin.api_ok('GET', 'instructors', COURSE)
        found = {
            i['username']: (i['first_name'], i['last_name'], i['email'])
            for i in body['instructors']
        }
        assert found == {p.name: person_tuple(p) for p in (KEVIN, ABIGAIL)}


def manage_roster(course: Course) -> None:
    kevin = course[KEVIN.name]

    with course.step('add_student -f -l -e', kevin):
        for person in (LAWRENCE, ERIC):
            ran = kevin.run(
                'ngshare-course-management',
                'add_student',
                COURSE,
                person.name,
                '-f',
                person.first_name,
                '-l',
                person.last_name,
                '-e',
                person.email,
                cwd=course.course_dir,
            )
            assert f'Successfully added/updated {person.name}' in ran.stdout
        expected = {p.name: person_tuple(p) for p in (LAWRENCE, ERIC)}
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected

    with course.step('add_students from CSV', kevin):
        csv_path = kevin.home / 'students.csv'
        csv_path.write_text(
            'student_id,first_name,last_name,email\n'
            f'{GRACE.name},{GRACE.first_name},{GRACE.last_name},{GRACE.email}\n'
            f'{MALLORY.name},,,\n'
            f'{ERIC.name},{ERIC_UPDATED.first_name},{ERIC_UPDATED.last_name},'
            f'{ERIC_UPDATED.email}\n'
        )
        ran = kevin.run(
            'ngshare-course-management',
            'add_students',
            COURSE,
            str(csv_path),
            cwd=course.course_dir,
        )
        for name in (GRACE.name, MALLORY.name, ERIC.name):
            assert f'{name} was successfully added to {COURSE}' in ran.stdout
        expected = {
            p.name: person_tuple(p) for p in (LAWRENCE, ERIC_UPDATED, GRACE, MALLORY)
        }
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected

    with course.step('remove_students', kevin):
        kevin.run(
            'ngshare-course-management',
            'remove_students',
            COURSE,
            MALLORY.name,
            cwd=course.course_dir,
        )
        expected = {p.name: person_tuple(p) for p in (LAWRENCE, ERIC_UPDATED, GRACE)}
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected


def release_assignment(course: Course) -> None:
    kevin = course[KEVIN.name]
    source = course.course_dir / 'source' / ASSIGNMENT
    release = course.course_dir / 'release' / ASSIGNMENT

    with course.step('generate_assignment', kevin):
        (source / 'data').mkdir(parents=True)
        (source / NOTEBOOK).write_text(source_notebook(), 'utf-8')
        (source / DATA_FILE).write_bytes(DATA)
        kevin.run('nbgrader', 'generate_assignment', ASSIGNMENT, cwd=course.course_dir)
        released = checksums(release)
        assert set(released) == {NOTEBOOK, DATA_FILE}, released
        assert (release / DATA_FILE).read_bytes() == DATA
        text = (release / NOTEBOOK).read_text('utf-8')
        assert 'BEGIN SOLUTION' not in text and 'csv.DictReader' not in text
        assert 'raise NotImplementedError' in text
        course.released = released

    with course.step('release_assignment', kevin):
        kevin.run('nbgrader', 'release_assignment', ASSIGNMENT, cwd=course.course_dir)
        assert kevin.api_ok('GET', 'assignments', COURSE)['assignments'] == [ASSIGNMENT]
        body = kevin.api_ok(
            'GET', 'assignment', COURSE, ASSIGNMENT, params={'list_only': 'true'}
        )
        on_server = {f['path']: f['checksum'] for f in body['files']}
        assert on_server == course.released


def students_fetch(course: Course) -> None:
    students = [course[name] for name in ANSWERS]

    def fetch(student: User) -> None:
        ran = student.run('nbgrader', 'list')
        assert f'{COURSE} {ASSIGNMENT}' in ran.output
        student.run('nbgrader', 'fetch_assignment', ASSIGNMENT, '--course', COURSE)
        fetched = checksums(student.home / ASSIGNMENT)
        assert fetched == course.released

    course.each('list and fetch_assignment', students, fetch)


def refusals_before_grading(course: Course) -> None:
    kevin = course[KEVIN.name]

    # An unenrolled student and a removed one: nbgrader shows them nothing,
    # ngshare refused the fetch with 403 (the client says so), and the API
    # refuses them the assignment.
    def cannot_fetch(student: User) -> None:
        ran = student.run('nbgrader', 'list')
        assert f'{COURSE} {ASSIGNMENT}' not in ran.output
        assert student.api_ok('GET', 'courses')['courses'] == []
        ran = student.run(
            'nbgrader',
            'fetch_assignment',
            ASSIGNMENT,
            '--course',
            COURSE,
            expect=course.deployment.client.failure_status,
        )
        course.assert_client_refused(
            ran, 403, f'assignment/{COURSE}/{ASSIGNMENT}', 'Permission denied'
        )
        assert not (student.home / ASSIGNMENT).exists()
        student.api_refused(
            403, 'Permission denied', 'GET', 'assignment', COURSE, ASSIGNMENT
        )

    course.each(
        'fetch_assignment refused',
        [course[OSCAR.name], course[MALLORY.name]],
        cannot_fetch,
    )

    # A bogus token: the client lists nothing, ngshare refuses it (nobody
    # is identified: the refusal is "Invalid token", not a permission).
    lawrence = course[LAWRENCE.name]
    with course.step('bogus token', lawrence):
        ran = lawrence.run(
            'nbgrader',
            'list',
            env=lawrence.env(JUPYTERHUB_API_TOKEN=BOGUS_TOKEN),
            expect=course.deployment.client.failure_status,
        )
        assert f'{COURSE} {ASSIGNMENT}' not in ran.output
        assert 'Invalid token' in ran.output
        course.assert_client_refused(ran, 403, 'courses', 'Invalid token')
        lawrence.api_refused(403, 'Invalid token', 'GET', 'courses', token=BOGUS_TOKEN)
        lawrence.api_refused(
            403,
            'Invalid token',
            'POST',
            'submission',
            COURSE,
            ASSIGNMENT,
            token=BOGUS_TOKEN,
            data={'files': '[]'},
        )

    if course.deployment.hub:
        # Under the Hub the user parameter is ignored: lawrence's token with
        # user=kevin is still lawrence. The real client sends user from
        # $JUPYTERHUB_USER, so a spoofed one there changes nothing either:
        # refused like lawrence, and the roster is as it was.
        with course.step('spoofed user parameter', lawrence):
            lawrence.api_refused(
                403,
                'Permission denied',
                'GET',
                'submissions',
                COURSE,
                ASSIGNMENT,
                params={'user': KEVIN.name},
            )
            oscar = {
                'first_name': 'Oscar',
                'last_name': 'Spoof',
                'email': 'oscar@example.org',
            }
            ran = lawrence.run(
                'ngshare-course-management',
                'add_student',
                COURSE,
                OSCAR.name,
                '-f',
                oscar['first_name'],
                '-l',
                oscar['last_name'],
                '-e',
                oscar['email'],
                '--no-gb',
                env=lawrence.env(JUPYTERHUB_USER=KEVIN.name, USER=KEVIN.name),
                expect=course.deployment.client.management_failure_status,
            )
            assert 'Permission denied' in ran.output
            lawrence.api_refused(
                403,
                'Permission denied',
                'POST',
                'student',
                COURSE,
                OSCAR.name,
                data={'user': KEVIN.name, **oscar},
            )
            assert OSCAR.name not in roster(kevin)


#: The course, in order: each phase builds on the ones before it.
PHASES = [
    ('set up the course', set_up_course),
    ('manage the roster', manage_roster),
    ('release the assignment', release_assignment),
    ('students fetch', students_fetch),
    ('refusals before grading', refusals_before_grading),
    ('students submit', students_submit),
    ('collect and grade', collect_and_grade),
    ('release feedback', release_feedback),
    ('students fetch feedback', students_fetch_feedback),
    ('refusals after grading', refusals_after_grading),
]


def course_phases(client: Client) -> list:
    """The phases ``client`` plays: ngshare.exchange also plays the
    deadline phases (:mod:`_course_deadlines`); ngshare_exchange 0.5.3
    knows nothing of deadlines and plays :data:`PHASES` exactly."""
    if client is NEW_CLIENT:
        return PHASES + DEADLINE_PHASES
    return list(PHASES)


def phase_ids(phases: list) -> list[str]:
    """Test ids of ``phases``, in order: ``01-set-up-the-course``..."""
    return [
        f'{number:02d}-{title.replace(" ", "-")}'
        for number, (title, _) in enumerate(phases, 1)
    ]


#: Test ids of the phases every client plays.
PHASE_IDS = phase_ids(PHASES)


def phase_params(clients: dict[str, Client]) -> list:
    """``(client name, (client name, phase title))`` for each phase each
    client plays, with the ids ``CLIENT-NN-title``
    (``ngshare.exchange-11-release-with-a-due-date``).

    For a test parametrized, at module scope, over a module-scoped fixture
    of the client (``indirect``) and ``phase``: a phase's value names its
    client, so that pytest keeps each client's phases together on one
    deployment (and never takes the same phase of both clients for one).
    """
    return [
        pytest.param(name, (name, title), id=f'{name}-{test_id}')
        for name, client in clients.items()
        for (title, _), test_id in zip(
            course_phases(client), phase_ids(course_phases(client)), strict=True
        )
    ]
