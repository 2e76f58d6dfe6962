"""Collect and autograde agree with ngshare on who was late.

A real course directory (``nbgrader generate_assignment``), real
submissions against a due date a few seconds ahead that then passes, one
student with an extension; ``nbgrader collect --before-duedate`` (the real
command and flag) takes each student's latest on-time submission by
ngshare's judgement, records ngshare's due dates in the gradebook, and
``nbgrader autograde`` then computes the lateness ngshare computed.
"""

from __future__ import annotations

import datetime
import time

import nbformat
import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, run_cli

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning'),
]

EXTENSION = datetime.timedelta(hours=1)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def wire(instant: datetime.datetime) -> str:
    return instant.isoformat() + '+00:00'


def from_wire(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=None)


def ok(done) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    return done.stdout + done.stderr


def course_directory(kevin) -> None:
    """source/ps1 with one notebook, and the course's nbgrader_config.py."""
    (kevin.course_dir / 'nbgrader_config.py').write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('answer = 42')]
    nb.metadata['kernelspec'] = {
        'name': 'python3',
        'display_name': 'Python 3',
        'language': 'python',
    }
    source = kevin.course_dir / 'source' / ASSIGNMENT
    source.mkdir(parents=True)
    (source / f'{ASSIGNMENT}.ipynb').write_text(nbformat.writes(nb), 'utf-8')


def gradebook(kevin):
    from nbgrader.api import Gradebook

    return Gradebook(f'sqlite:///{kevin.course_dir / "gradebook.db"}', COURSE)


def server_entries(site, student: str) -> dict:
    body = site.api('GET', 'submissions', COURSE, ASSIGNMENT, student, as_user='kevin')
    # ngshare judges each submission in ``lateness``, beside the entries.
    return {
        entry['timestamp']: {**entry, **judged}
        for entry, judged in zip(body['submissions'], body['lateness'], strict=True)
    }


def collected_stamp(kevin, student: str) -> str:
    folder = kevin.course_dir / 'submitted' / student / ASSIGNMENT
    return (folder / 'timestamp.txt').read_text()


def test_collect_and_autograde_agree_with_ngshare(exchange_site):
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']
    course_directory(kevin)
    ok(
        run_cli(
            kevin, 'nbgrader', 'generate_assignment', ASSIGNMENT, cwd=kevin.course_dir
        )
    )
    with gradebook(kevin) as gb:  # the due date is set on ngshare only
        assert gb.find_assignment(ASSIGNMENT).duedate is None
    ok(
        run_cli(
            kevin, 'nbgrader', 'release_assignment', ASSIGNMENT, cwd=kevin.course_dir
        )
    )
    for student in (lawrence, eric):
        student.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)

    body = site.api(
        'POST',
        'deadline',
        COURSE,
        ASSIGNMENT,
        as_user='kevin',
        data={'due': wire(utc_now() + datetime.timedelta(seconds=3))},
    )
    assert body['success'], body
    due = from_wire(body['due'])
    body = site.api(
        'POST',
        'extension',
        COURSE,
        ASSIGNMENT,
        'eric',
        as_user='kevin',
        data={'due': wire(due + EXTENSION)},
    )
    assert body['success'], body

    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    [on_time] = lawrence.cached()
    time.sleep(max(0.0, (due - utc_now()).total_seconds()) + 1)
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    eric.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    [late] = set(lawrence.cached()) - {on_time}
    lawrence_entries = server_entries(site, 'lawrence')
    assert lawrence_entries[on_time]['late'] is False
    assert lawrence_entries[late]['late'] is True
    [eric_entry] = server_entries(site, 'eric').values()
    assert eric_entry['late'] is False  # after the due date, within his own
    assert from_wire(eric_entry['due']) == due + EXTENSION

    # --before-duedate: lawrence's on-time submission, by ngshare's judgement
    # (the gradebook had no due date to judge by)
    ok(
        run_cli(
            kevin,
            'nbgrader',
            'collect',
            ASSIGNMENT,
            '--before-duedate',
            cwd=kevin.course_dir,
        )
    )
    assert collected_stamp(kevin, 'lawrence') == on_time
    assert collected_stamp(kevin, 'eric') == eric_entry['timestamp']
    with gradebook(kevin) as gb:
        assert gb.find_assignment(ASSIGNMENT).duedate == due  # ngshare's
        assert gb.find_submission(ASSIGNMENT, 'eric').extension == EXTENSION
        assert gb.find_submission(ASSIGNMENT, 'lawrence').extension is None

    # the latest, late submission, then autograde
    out = ok(
        run_cli(
            kevin, 'nbgrader', 'collect', ASSIGNMENT, '--update', cwd=kevin.course_dir
        )
    )
    assert collected_stamp(kevin, 'lawrence') == late, out
    ok(run_cli(kevin, 'nbgrader', 'autograde', ASSIGNMENT, cwd=kevin.course_dir))
    with gradebook(kevin) as gb:
        lawrence_graded = gb.find_submission(ASSIGNMENT, 'lawrence')
        eric_graded = gb.find_submission(ASSIGNMENT, 'eric')
        assert lawrence_graded.total_seconds_late == pytest.approx(
            lawrence_entries[late]['seconds_late'], abs=1e-6
        )
        assert lawrence_graded.total_seconds_late > 0
        assert eric_graded.extension == EXTENSION  # autograde kept it
        assert eric_graded.total_seconds_late == eric_entry['seconds_late'] == 0


def test_collect_with_another_gradebook_due_date(exchange_site):
    """The gradebook's due date differs from ngshare's (changed on ngshare
    only): each submission gets the difference as its extension."""
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    due = (utc_now() + datetime.timedelta(days=1)).replace(microsecond=0)
    assert site.api(
        'POST', 'deadline', COURSE, ASSIGNMENT, as_user='kevin', data={'due': wire(due)}
    )['success']
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    earlier = due - datetime.timedelta(hours=2)
    with gradebook(kevin) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=earlier)
    kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    with gradebook(kevin) as gb:
        assert gb.find_assignment(ASSIGNMENT).duedate == earlier  # kept
        submission = gb.find_submission(ASSIGNMENT, 'lawrence')
        assert submission.extension == datetime.timedelta(hours=2)
        assert submission.duedate == due
