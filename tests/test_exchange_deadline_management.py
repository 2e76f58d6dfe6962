"""The deadline subcommands of ``ngshare-course-management``, against a real
ngshare: what each one changes on the server (and in the local gradebook),
what it prints, and each refusal's message and exit status. Dates without
an offset are the local time of the machine (``TZ``), as an instructor
types them.
"""

from __future__ import annotations

import datetime
import time

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, run_cli, run_course_management

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning'),
]

ZONE = 'IST-05:30'
OFFSET = datetime.timedelta(hours=5, minutes=30)


@pytest.fixture
def local_zone(monkeypatch):
    monkeypatch.setenv('TZ', ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def manage(person, *argv: str):
    folder = person.course_dir if person.course_dir.is_dir() else person.home
    return run_course_management(person, *argv, cwd=folder, env={'TZ': ZONE})


def ok(done) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    return done.stdout


def failed(done, *needles: str, status: int = 1) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == status, output
    assert 'Traceback' not in output, output
    for needle in needles:
        assert needle in done.stderr, f'{needle!r} not in:\n{output}'
    return done.stderr


def deadline(site) -> dict:
    body = site.api('GET', 'deadline', COURSE, ASSIGNMENT, as_user='kevin')
    assert body['success'], body
    return body


def next_year_noon() -> datetime.datetime:
    today = datetime.datetime.now(datetime.timezone.utc)
    return datetime.datetime(today.year + 1, 3, 1, 12, 0, 0)


def gradebook_due(kevin):
    from nbgrader.api import Gradebook

    url = f'sqlite:///{kevin.course_dir / "gradebook.db"}'
    with Gradebook(url, COURSE) as gb:
        return gb.find_assignment(ASSIGNMENT).duedate


@pytest.fixture
def released(exchange_site):
    """ps1 released; the course directory's gradebook knows ps1."""
    from nbgrader.api import Gradebook

    kevin = exchange_site['kevin']
    (kevin.course_dir / 'nbgrader_config.py').write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
    )
    with Gradebook(f'sqlite:///{kevin.course_dir / "gradebook.db"}', COURSE) as gb:
        gb.update_or_create_assignment(ASSIGNMENT)
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    return exchange_site


def test_due_date_and_policy(released, local_zone):
    site, kevin = released, released['kevin']
    noon = next_year_noon()  # local 12:00 in ZONE is 06:30 UTC
    local = f'{noon:%Y-%m-%dT%H:%M}'
    utc = noon - OFFSET

    out = ok(manage(kevin, 'set_due_date', COURSE, ASSIGNMENT, local))
    assert deadline(site)['due'] == f'{utc.isoformat()}+00:00'
    assert out.strip() == (
        f'Successfully set the due date of {ASSIGNMENT} in {COURSE} to'
        f' {utc.isoformat()}+00:00 ({noon:%Y-%m-%d %H:%M:%S} IST)'
    )
    assert gradebook_due(kevin) == utc  # the gradebook agrees

    # an explicit offset is that instant; --no-gb leaves the gradebook alone
    ok(manage(kevin, 'set_due_date', COURSE, ASSIGNMENT, f'{local}Z', '--no-gb'))
    assert deadline(site)['due'] == f'{noon.isoformat()}+00:00'
    assert gradebook_due(kevin) == utc

    out = ok(
        manage(kevin, 'set_late_policy', COURSE, ASSIGNMENT, 'refuse', '--grace', '90')
    )
    assert 'Successfully set the late policy of ps1 in NBG101 to refuse' in out
    body = deadline(site)
    assert (body['late_policy'], body['grace_seconds']) == ('refuse', 90)
    assert (
        body['cutoff'] == f'{(noon + datetime.timedelta(seconds=90)).isoformat()}+00:00'
    )
    ok(manage(kevin, 'set_late_policy', COURSE, ASSIGNMENT, 'accept'))
    body = deadline(site)
    assert (body['late_policy'], body['grace_seconds'], body['cutoff']) == (
        'accept',
        90,  # unchanged without --grace
        None,
    )

    out = ok(manage(kevin, 'show_deadline', COURSE, ASSIGNMENT))
    assert (
        f'due: {noon.isoformat()}+00:00 ({noon + OFFSET:%Y-%m-%d %H:%M:%S} IST)' in out
    )
    assert 'late policy: accept, grace 90 seconds' in out

    out = ok(manage(kevin, 'clear_due_date', COURSE, ASSIGNMENT))
    assert f'Successfully cleared the due date of {ASSIGNMENT} in {COURSE}' in out
    assert deadline(site)['due'] is None
    assert gradebook_due(kevin) is None


def test_extensions(released, local_zone):
    site, kevin = released, released['kevin']
    noon = next_year_noon()
    ok(
        manage(
            kevin, 'set_due_date', COURSE, ASSIGNMENT, f'{noon:%Y-%m-%dT%H:%M}+00:00'
        )
    )
    later = noon + datetime.timedelta(days=2)

    out = ok(
        manage(kevin, 'set_extension', COURSE, ASSIGNMENT, 'eric', f'{later}+00:00')
    )
    assert (
        f'Successfully gave eric an extension of {ASSIGNMENT} in {COURSE} until'
        f' {later.isoformat()}+00:00'
    ) in out
    assert deadline(site)['extensions'] == [
        {'student_id': 'eric', 'due': f'{later.isoformat()}+00:00', 'cutoff': None}
    ]
    out = ok(manage(kevin, 'show_deadline', COURSE, ASSIGNMENT))
    assert f'extension: eric until {later.isoformat()}+00:00' in out

    out = ok(manage(kevin, 'remove_extension', COURSE, ASSIGNMENT, 'eric'))
    assert (
        f'Successfully removed the extension of eric of {ASSIGNMENT} in {COURSE}' in out
    )
    assert deadline(site)['extensions'] == []

    # refusals: the server's message, exit status 1
    failed(
        manage(kevin, 'remove_extension', COURSE, ASSIGNMENT, 'eric'),
        f'remove extension ({COURSE}) failed: Extension not found',
    )
    failed(
        manage(kevin, 'set_extension', COURSE, ASSIGNMENT, 'nobody', f'{later}Z'),
        'Student not found',
    )
    failed(
        manage(
            kevin,
            'set_extension',
            COURSE,
            ASSIGNMENT,
            'eric',
            f'{noon:%Y-%m-%d}T00:00Z',
        ),
        'Extension is earlier than the due date',
    )


def test_refusals(released, local_zone):
    kevin, lawrence = released['kevin'], released['lawrence']
    failed(
        manage(kevin, 'set_due_date', COURSE, ASSIGNMENT, '2001-01-01T00:00'),
        f'set due date ({COURSE}) failed: Due date is in the past',
    )
    failed(
        manage(kevin, 'set_due_date', COURSE, ASSIGNMENT, 'next friday'),
        "cannot read the date 'next friday'",
    )
    failed(
        manage(kevin, 'set_due_date', COURSE, 'ps9', '2100-01-01T00:00'),
        'Assignment not found',
    )
    failed(
        manage(lawrence, 'set_due_date', COURSE, ASSIGNMENT, '2100-01-01T00:00'),
        'Permission denied',
    )
    failed(
        manage(kevin, 'set_extension', COURSE, ASSIGNMENT, 'eric', '2100-01-01T00:00'),
        'Assignment has no due date',
    )
    failed(manage(kevin, 'set_late_policy', COURSE, ASSIGNMENT, 'maybe'), status=2)
    failed(
        manage(kevin, 'set_late_policy', COURSE, ASSIGNMENT, 'refuse', '--grace', '-1'),
        status=2,
    )
    failed(
        manage(
            kevin,
            'set_late_policy',
            COURSE,
            ASSIGNMENT,
            'refuse',
            '--grace',
            '999999999',
        ),
        'Invalid grace period',
    )


def test_the_command_itself(released):
    """The real command, its date read in the zone of its own ``TZ``."""
    site, kevin = released, released['kevin']
    noon = next_year_noon()
    done = run_cli(
        kevin,
        'ngshare-course-management',
        'set_due_date',
        COURSE,
        ASSIGNMENT,
        f'{noon:%Y-%m-%d %H:%M}',
        cwd=kevin.course_dir,
        env={'TZ': 'XYZ+03'},  # POSIX: three hours behind UTC
    )
    ok(done)
    later = noon + datetime.timedelta(hours=3)
    assert deadline(site)['due'] == f'{later.isoformat()}+00:00'
    assert f'({noon:%Y-%m-%d %H:%M:%S} XYZ)' in done.stdout
