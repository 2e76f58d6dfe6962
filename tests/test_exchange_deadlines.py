"""Deadlines through ngshare's exchange plugin, against a real ngshare.

The instructor's due date travels from nbgrader's gradebook to ngshare with
``release_assignment`` (both upload encodings); students see it with
``nbgrader list`` in their local time (``TZ``), and once they submitted,
how ngshare judged the submission; ``nbgrader submit`` warns when late and,
with the ``refuse`` policy, fails with ngshare's message and exit status 1.
A submission is made late by a due date a few seconds ahead that then
passes (ngshare refuses due dates in the past).
"""

from __future__ import annotations

import datetime
import logging
import time

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, run_cli

from ngshare.exchange.deadlines import human_duration

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning'),
]

#: A zone without summer time, so that the expected texts never change.
ZONE = 'IST-05:30'
OFFSET = datetime.timedelta(hours=5, minutes=30)


@pytest.fixture
def local_zone(monkeypatch):
    """This process in ``ZONE`` (``datetime.astimezone`` follows ``TZ``
    once ``time.tzset`` ran), and back afterwards."""
    monkeypatch.setenv('TZ', ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def wire(instant: datetime.datetime) -> str:
    return instant.isoformat() + '+00:00'


def shown(instant: datetime.datetime) -> str:
    """How the plugin shows a naive UTC instant in ``ZONE``."""
    return f'{instant + OFFSET:%Y-%m-%d %H:%M:%S} IST'


def set_gradebook_due(person, due, assignment: str = ASSIGNMENT) -> None:
    from nbgrader.api import Gradebook

    url = f'sqlite:///{person.course_dir / "gradebook.db"}'
    with Gradebook(url, COURSE) as gb:
        gb.update_or_create_assignment(assignment, duedate=due)


def deadline(site, assignment: str = ASSIGNMENT, as_user: str = 'kevin') -> dict:
    body = site.api('GET', 'deadline', COURSE, assignment, as_user=as_user)
    assert body['success'], body
    return body


def set_deadline(site, **fields) -> dict:
    body = site.api(
        'POST', 'deadline', COURSE, ASSIGNMENT, as_user='kevin', data=fields
    )
    assert body['success'], body
    return body


def wait_until_past(due: datetime.datetime) -> None:
    """Sleep until ``due`` has passed on this machine (the server's clock)."""
    left = (due - utc_now()).total_seconds()
    time.sleep(max(0.0, left) + 1)


def warnings_of(caplog) -> str:
    return '\n'.join(r.getMessage() for r in caplog.records if r.levelno >= 30)


def raw_parts(caplog) -> bool:
    """Whether the plugin said it uploaded raw parts (multipart)."""
    return any('as raw parts' in r.getMessage() for r in caplog.records)


def test_release_sends_the_gradebook_due_date(exchange_site, caplog):
    site, kevin = exchange_site, exchange_site['kevin']
    kevin.write_release()

    # no gradebook at all: nothing sent, and no gradebook made
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    assert deadline(site)['due'] is None
    assert not (kevin.course_dir / 'gradebook.db').exists()

    # the gradebook's due date (naive UTC), urlencoded and raw parts alike:
    # the first upload of a command is urlencoded, the one after --force's
    # DELETE raw parts (the server offered them)
    due = (utc_now() + datetime.timedelta(days=3)).replace(microsecond=0)
    set_gradebook_due(kevin, due)
    site.api('DELETE', 'assignment', COURSE, ASSIGNMENT, as_user='kevin')
    with caplog.at_level(logging.DEBUG):
        kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    assert deadline(site)['due'] == wire(due)
    assert not raw_parts(caplog)
    caplog.clear()
    later = due + datetime.timedelta(hours=1, microseconds=250000)
    set_gradebook_due(kevin, later)
    with caplog.at_level(logging.DEBUG):
        kevin.exchange(
            'release_assignment',
            CourseDirectory__assignment_id=ASSIGNMENT,
            ExchangeReleaseAssignment__force=True,
        )
    assert deadline(site)['due'] == wire(later)
    assert raw_parts(caplog)

    # a due date that has passed: a warning, released without one
    past = utc_now() - datetime.timedelta(hours=2)
    set_gradebook_due(kevin, past)
    with caplog.at_level(logging.WARNING):
        kevin.exchange(
            'release_assignment',
            CourseDirectory__assignment_id=ASSIGNMENT,
            ExchangeReleaseAssignment__force=True,
        )
    assert deadline(site)['due'] is None
    assert 'has passed: releasing it without a due date' in warnings_of(caplog)

    # an assignment the gradebook does not have: nothing sent
    kevin.write_release('ps2')
    kevin.exchange('release_assignment', CourseDirectory__assignment_id='ps2')
    assert deadline(site, 'ps2')['due'] is None


def test_list_shows_the_due_date_in_local_time(exchange_site, local_zone, caplog):
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']
    due = (utc_now() + datetime.timedelta(days=2)).replace(microsecond=0)
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    set_deadline(site, due=wire(due))
    site.api(
        'POST',
        'extension',
        COURSE,
        ASSIGNMENT,
        'eric',
        as_user='kevin',
        data={'due': wire(due + datetime.timedelta(days=1))},
    )

    with caplog.at_level(logging.INFO):
        listed = lawrence.exchange('list', CourseDirectory__course_id='*')
    [info] = listed
    assert info['status'] == 'released'  # nbgrader's keys are unchanged
    assert info['notebooks'] == [{'notebook_id': 'ps1', 'path': 'ps1.ipynb'}]
    assert info['due_date'] == wire(due)
    assert (info['late_policy'], info['cutoff'], info['submissions']) == (
        'accept',
        None,
        [],
    )
    lines = [r.getMessage() for r in caplog.records]
    assert f'{COURSE} {ASSIGNMENT}, due {shown(due)}' in lines, lines

    # a student with an extension sees their own due date
    [info] = eric.exchange('list', CourseDirectory__course_id='*')
    assert info['due_date'] == wire(due + datetime.timedelta(days=1))

    # once submitted: ngshare's judgement, in the info and the line
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    [stamp] = lawrence.cached()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        [info] = lawrence.exchange('list', CourseDirectory__course_id='*')
    assert info['status'] == 'fetched'
    assert info['submissions'] == [
        {'timestamp': stamp, 'due_date': wire(due), 'late': False, 'seconds_late': 0}
    ]
    line = next(r.getMessage() for r in caplog.records if 'submitted' in r.getMessage())
    assert line.startswith(f'{COURSE} {ASSIGNMENT} (already downloaded), due ')
    assert line.endswith(', on time'), line

    # the cached and inbound views carry the server's judgement too
    [cached] = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    sub = cached['submissions'][0]
    assert (sub['due_date'], sub['late'], sub['seconds_late']) == (wire(due), False, 0)
    [inbound] = kevin.exchange('list', ExchangeList__inbound=True)
    sub = inbound['submissions'][0]
    assert (sub['due_date'], sub['late'], sub['seconds_late']) == (wire(due), False, 0)

    # the real command, in the student's zone
    done = run_cli(lawrence, 'nbgrader', 'list', env={'TZ': ZONE})
    assert done.returncode == 0, done.stderr
    assert f'due {shown(due)}; submitted ' in done.stdout + done.stderr


def test_late_submission_warns(exchange_site, local_zone, caplog):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    due = utc_now() + datetime.timedelta(seconds=2)
    set_deadline(site, due=wire(due))
    due = datetime.datetime.fromisoformat(deadline(site)['due']).replace(tzinfo=None)
    wait_until_past(due)

    with caplog.at_level(logging.WARNING):
        lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    text = warnings_of(caplog)
    assert f'it was due {shown(due)}' in text, text
    [entry] = site.api('GET', 'submissions', COURSE, ASSIGNMENT, 'lawrence')['lateness']
    assert entry['late'] is True and entry['seconds_late'] >= 1
    late_by = human_duration(entry['seconds_late'])
    assert f'This submission of {ASSIGNMENT} is {late_by} late: it was due' in text

    [info] = lawrence.exchange('list', CourseDirectory__course_id='*')
    assert info['submissions'][0]['late'] is True
    assert info['submissions'][0]['seconds_late'] == entry['seconds_late']

    # the real command: exit status 0, the warning on standard error
    done = run_cli(
        lawrence,
        'nbgrader',
        'submit',
        ASSIGNMENT,
        '--course',
        COURSE,
        env={'TZ': ZONE},
    )
    assert done.returncode == 0, done.stderr
    assert f'{ASSIGNMENT} is ' in done.stderr, done.stderr
    assert ' late: it was due ' in done.stderr, done.stderr


def test_refused_submission_fails(exchange_site):
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    for student in (lawrence, eric):
        student.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    due = utc_now() + datetime.timedelta(seconds=2)
    set_deadline(site, due=wire(due), late_policy='refuse')
    cutoff = deadline(site)['cutoff']
    # eric may submit later: an extension
    site.api(
        'POST',
        'extension',
        COURSE,
        ASSIGNMENT,
        'eric',
        as_user='kevin',
        data={'due': wire(due + datetime.timedelta(hours=1))},
    )
    wait_until_past(due)

    done = run_cli(lawrence, 'nbgrader', 'submit', ASSIGNMENT, '--course', COURSE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"Cannot submit assignment '{ASSIGNMENT}' of course '{COURSE}':"
        f' Deadline passed: submissions closed at {cutoff}'
    ) in done.stderr
    assert 'Traceback' not in done.stderr
    assert (
        site.api('GET', 'submissions', COURSE, ASSIGNMENT, 'lawrence')['submissions']
        == []
    )
    assert lawrence.cached() == {}

    done = run_cli(eric, 'nbgrader', 'submit', ASSIGNMENT, '--course', COURSE)
    assert done.returncode == 0, done.stderr
    [entry] = site.api('GET', 'submissions', COURSE, ASSIGNMENT, 'eric')['lateness']
    assert entry['late'] is False
