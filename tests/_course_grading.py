"""The nbgrader course of the end-to-end tests, from submitting to feedback.

Phases 6 to 10 of :data:`_course_scenario.PHASES`: the students edit and
submit (grace twice), the instructor lists and collects the latest
submissions (a student may not), autogrades and exports the grades, makes
and releases feedback for the latest submission only, the students fetch it,
and a student may read nobody else's work. Each checks nbgrader's files,
the gradebook and ngshare's API.
"""

from __future__ import annotations

import csv

from _course_harness import Course, User, checksums, md5
from _course_material import (
    ANSWERS,
    ASSIGNMENT,
    COURSE,
    DATA_FILE,
    ERIC,
    EXPECTED_SCORE,
    KEVIN,
    LAWRENCE,
    MALLORY,
    NOTEBOOK,
    POINTS,
    answer,
    cache_dirs,
    gradebook,
    score_in,
)

__all__ = [
    'collect_and_grade',
    'refusals_after_grading',
    'release_feedback',
    'students_fetch_feedback',
    'students_submit',
]


def students_submit(course: Course) -> None:
    kevin = course[KEVIN.name]

    def work(student: User) -> None:
        notebook = student.home / ASSIGNMENT / NOTEBOOK
        course.submitted[student.name] = []
        for source in ANSWERS[student.name]:
            answer(notebook, source)
            files = checksums(student.home / ASSIGNMENT)
            before = set(cache_dirs(student))
            student.run('nbgrader', 'submit', ASSIGNMENT, '--course', COURSE)
            ran = student.last
            new = set(cache_dirs(student)) - before
            assert len(new) == 1, f'expected one new cached submission, got {new}'
            (timestamp,) = new
            assert f'Submitted as: {COURSE} {ASSIGNMENT} {timestamp}' in ran.output
            cached = cache_dirs(student)[timestamp]
            assert (cached / 'timestamp.txt').read_text() == timestamp
            course.submitted[student.name].append(files)
            # On the server: the student sees their own submissions, the
            # instructor the files, exactly as submitted.
            body = student.api_ok(
                'GET', 'submissions', COURSE, ASSIGNMENT, student.name
            )
            stamps = [s['timestamp'] for s in body['submissions']]
            assert stamps[-1] == timestamp, stamps
            body = kevin.api_ok(
                'GET',
                'submission',
                COURSE,
                ASSIGNMENT,
                student.name,
                params={'timestamp': timestamp, 'list_only': 'true'},
            )
            assert {f['path']: f['checksum'] for f in body['files']} == files
        course.timestamps[student.name] = stamps
        assert len(stamps) == len(ANSWERS[student.name])

    course.each('edit and submit', [course[name] for name in ANSWERS], work)


def collect_and_grade(course: Course) -> None:
    kevin = course[KEVIN.name]
    lawrence = course[LAWRENCE.name]
    root = course.course_dir

    with course.step('list --inbound', kevin):
        ran = kevin.run('nbgrader', 'list', '--inbound', cwd=root)
        for name, stamps in course.timestamps.items():
            for stamp in stamps:
                line = f'{COURSE} {name} {ASSIGNMENT} {stamp} (no feedback available)'
                assert line in ran.output, line

    with course.step('collect refused to a student', lawrence):
        # ngshare refused the listing (the client says so, and the API
        # refuses it to lawrence too); nothing was collected.
        ran = lawrence.run(
            'nbgrader',
            'collect',
            ASSIGNMENT,
            '--course',
            COURSE,
            expect=course.deployment.client.failure_status,
        )
        course.assert_client_refused(
            ran, 403, f'submissions/{COURSE}/{ASSIGNMENT}', 'Permission denied'
        )
        assert not (lawrence.home / 'submitted').exists()
        lawrence.api_refused(
            403, 'Permission denied', 'GET', 'submissions', COURSE, ASSIGNMENT
        )

    with course.step('collect', kevin):
        kevin.run('nbgrader', 'collect', ASSIGNMENT, cwd=root)
        submitted = root / 'submitted'
        assert sorted(p.name for p in submitted.iterdir()) == sorted(ANSWERS)
        for name in ANSWERS:
            folder = submitted / name / ASSIGNMENT
            # the latest submission, with its timestamp
            latest = course.timestamps[name][-1]
            assert (folder / 'timestamp.txt').read_text().strip() == latest, name
            files = checksums(folder)
            assert files.pop('timestamp.txt')
            assert files == course.submitted[name][-1], name

    with course.step('autograde', kevin):
        kevin.run('nbgrader', 'autograde', ASSIGNMENT, cwd=root)
        for name in ANSWERS:
            assert (root / 'autograded' / name / ASSIGNMENT / NOTEBOOK).is_file()
            assert (root / 'autograded' / name / ASSIGNMENT / DATA_FILE).is_file()
        with gradebook(root) as gb:
            for name, score in EXPECTED_SCORE.items():
                submission = gb.find_submission(ASSIGNMENT, name)
                assert (name, submission.score, submission.max_score) == (
                    name,
                    score,
                    POINTS,
                )

    with course.step('export', kevin):
        kevin.run('nbgrader', 'export', cwd=root)
        with open(root / 'grades.csv', newline='') as handle:
            rows = {row['student_id']: row for row in csv.DictReader(handle)}
        for name, score in EXPECTED_SCORE.items():
            row = rows[name]
            assert row['assignment'] == ASSIGNMENT
            assert (name, float(row['score']), float(row['max_score'])) == (
                name,
                score,
                POINTS,
            )
            from nbgrader.utils import parse_utc

            assert parse_utc(row['timestamp']) == parse_utc(
                course.timestamps[name][-1]
            ), (name, row['timestamp'])


def release_feedback(course: Course) -> None:
    kevin = course[KEVIN.name]
    root = course.course_dir

    with course.step('generate_feedback', kevin):
        kevin.run('nbgrader', 'generate_feedback', ASSIGNMENT, cwd=root)
        for name, score in EXPECTED_SCORE.items():
            html = (
                root / 'feedback' / name / ASSIGNMENT / f'{ASSIGNMENT}.html'
            ).read_text('utf-8')
            assert score_in(html) == f'{score} / {POINTS}', name

    with course.step('release_feedback', kevin):
        kevin.run('nbgrader', 'release_feedback', ASSIGNMENT, cwd=root)
        for name in ANSWERS:
            local = md5(root / 'feedback' / name / ASSIGNMENT / f'{ASSIGNMENT}.html')
            *earlier, latest = course.timestamps[name]
            body = kevin.api_ok(
                'GET',
                'feedback',
                COURSE,
                ASSIGNMENT,
                name,
                params={'timestamp': latest, 'list_only': 'true'},
            )
            assert body['files'] == [{'path': f'{ASSIGNMENT}.html', 'checksum': local}]
            for stamp in earlier:
                body = kevin.api_ok(
                    'GET',
                    'feedback',
                    COURSE,
                    ASSIGNMENT,
                    name,
                    params={'timestamp': stamp, 'list_only': 'true'},
                )
                assert body['files'] == [], (name, stamp)
        ran = kevin.run('nbgrader', 'list', '--inbound', cwd=root)
        for name, stamps in course.timestamps.items():
            *earlier, latest = stamps
            ready = (
                f'{COURSE} {name} {ASSIGNMENT} {latest} (feedback ready to be fetched)'
            )
            assert ready in ran.output, ready
            for stamp in earlier:
                none = f'{COURSE} {name} {ASSIGNMENT} {stamp} (no feedback available)'
                assert none in ran.output, none


def students_fetch_feedback(course: Course) -> None:
    root = course.course_dir

    def fetch(student: User) -> None:
        student.run('nbgrader', 'fetch_feedback', ASSIGNMENT, '--course', COURSE)
        feedback = student.home / ASSIGNMENT / 'feedback'
        *earlier, latest = course.timestamps[student.name]
        html_path = feedback / latest / f'{ASSIGNMENT}.html'
        assert html_path.is_file(), sorted(str(p) for p in feedback.rglob('*'))
        instructor_copy = root / 'feedback' / student.name / ASSIGNMENT
        assert md5(html_path) == md5(instructor_copy / f'{ASSIGNMENT}.html')
        score = EXPECTED_SCORE[student.name]
        assert score_in(html_path.read_text('utf-8')) == f'{score} / {POINTS}'
        # Feedback only for the latest submission: nothing for earlier ones.
        found = sorted(
            p.relative_to(feedback).as_posix() for p in feedback.rglob('*.html')
        )
        assert found == [f'{latest}/{ASSIGNMENT}.html'], found
        ran = student.run('nbgrader', 'list', '--cached')
        line = (
            f'{COURSE} {student.name} {ASSIGNMENT} {latest} (feedback already fetched)'
        )
        assert line in ran.output, line

    course.each('fetch_feedback', [course[name] for name in ANSWERS], fetch)


def refusals_after_grading(course: Course) -> None:
    lawrence = course[LAWRENCE.name]
    eric_stamp = course.timestamps[ERIC.name][-1]

    with course.step("reading another student's work", lawrence):
        for segments, params in (
            (('submissions', COURSE, ASSIGNMENT), None),
            (('submissions', COURSE, ASSIGNMENT, ERIC.name), None),
            (('submission', COURSE, ASSIGNMENT, ERIC.name), None),
            (('submission', COURSE, ASSIGNMENT, ERIC.name), {'timestamp': eric_stamp}),
            (('feedback', COURSE, ASSIGNMENT, ERIC.name), {'timestamp': eric_stamp}),
        ):
            lawrence.api_refused(
                403, 'Permission denied', 'GET', *segments, params=params
            )

    mallory = course[MALLORY.name]
    with course.step('removed student after grading', mallory):
        mallory.api_refused(
            403, 'Permission denied', 'GET', 'assignment', COURSE, ASSIGNMENT
        )
        mallory.api_refused(
            403,
            'Permission denied',
            'POST',
            'submission',
            COURSE,
            ASSIGNMENT,
            data={'files': '[]'},
        )
