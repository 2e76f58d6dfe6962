"""nbgrader's JupyterLab "Assignments" panel, backed by ngshare's exchange.

The panel's server extension (``nbgrader.server_extensions.assignment_list``)
loads nbgrader's configuration from ``JUPYTER_CONFIG_PATH`` and the
notebook root, builds the configured exchange classes through
``ExchangeFactory`` and sorts, filters and relativizes what ``list`` returns.
Here its ``AssignmentList`` runs in this process as a student's server would
run it, against a real ngshare: the lists must have the shape the panel
reads, and fetch, submit and fetch feedback must work through it; with a
due date the lists carry it (the student's own, extension included) and
each submission's lateness as ngshare judged it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, Person, cli_environment

pytestmark = pytest.mark.timeout(300)

# How far ahead the due date is: room for a fetch and an on-time submit.
DUE_AHEAD = 4


@contextlib.contextmanager
def server_of(person: Person):
    """The environment and folder of ``person``'s Jupyter server."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.clear()
        os.environ.update(cli_environment(person))
        os.chdir(person.home)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def assignment_list(person: Person):
    from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

    panel = AssignmentList()
    panel.root_dir = str(person.home)
    return panel


def test_assignment_panel(exchange_site):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)

    with server_of(lawrence):
        panel = assignment_list(lawrence)
        assert panel.list_courses() == {'success': True, 'value': [COURSE]}
        listed = panel.list_assignments(course_id=COURSE)
        assert listed['success'], listed
        (released,) = listed['value']
        assert released['status'] == 'released'
        assert released['notebooks'][0]['notebook_id'] == 'ps1'

        assert panel.fetch_assignment(COURSE, ASSIGNMENT) == {'success': True}
        listed = panel.list_assignments(course_id=COURSE)
        (fetched,) = listed['value']
        assert fetched['status'] == 'fetched'
        # relative to the notebook root, as the panel links them
        assert fetched['path'] == ASSIGNMENT
        assert fetched['notebooks'] == [
            {'notebook_id': 'ps1', 'path': f'{ASSIGNMENT}/ps1.ipynb'}
        ]

        result = panel.submit_assignment(COURSE, ASSIGNMENT)
        assert result['success'], result
        listed = panel.list_assignments(course_id=COURSE)
        assert [a['status'] for a in listed['value']] == ['fetched', 'submitted']
        submitted = listed['value'][1]
        (submission,) = submitted['submissions']
        for key in (
            'timestamp',
            'has_local_feedback',
            'has_exchange_feedback',
            'feedback_updated',
            'local_feedback_path',
            'notebooks',
        ):
            assert key in submission, key
        assert submission['has_exchange_feedback'] is False
        stamp = submission['timestamp']

    # the instructor collects and releases feedback
    kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    kevin.write_feedback('lawrence', stamp, '<p>well done</p>')
    kevin.exchange('release_feedback', CourseDirectory__assignment_id=ASSIGNMENT)

    with server_of(lawrence):
        panel = assignment_list(lawrence)
        listed = panel.list_assignments(course_id=COURSE)
        (submission,) = listed['value'][1]['submissions']
        assert submission['has_exchange_feedback'] is True
        assert submission['has_local_feedback'] is False

        result = panel.fetch_feedback(COURSE, ASSIGNMENT)
        assert result['success'], result
        listed = panel.list_assignments(course_id=COURSE)
        (submission,) = listed['value'][1]['submissions']
        assert submission['has_local_feedback'] is True
        assert submission['feedback_updated'] is False
        # the "view feedback" link: relative to the notebook root
        assert submission['local_feedback_path'] == f'{ASSIGNMENT}/feedback/{stamp}'
        html = lawrence.home / ASSIGNMENT / 'feedback' / stamp / 'ps1.html'
        assert html.read_text() == '<p>well done</p>'


def test_assignment_panel_reports_ngshare_failures(exchange_site):
    site = exchange_site
    oscar = site['oscar']
    with server_of(oscar):
        panel = assignment_list(oscar)
        # not enrolled: nothing listed, and no failure
        assert panel.list_assignments() == {'success': True, 'value': []}
        result = panel.fetch_assignment(COURSE, ASSIGNMENT)
        assert result['success'] is False
        assert "Cannot fetch assignment 'ps1' of course 'NBG101'" in result['value']


def wire(instant: datetime.datetime) -> str:
    """An instant as ngshare writes it (``2026-12-01T17:00:00+00:00``)."""
    return instant.replace(tzinfo=datetime.timezone.utc).isoformat()


def test_assignment_panel_shows_deadlines(exchange_site):
    """The panel's lists carry each student's own due date and, for every
    submission, whether ngshare judged it late and by how much."""
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    due = (now + datetime.timedelta(seconds=DUE_AHEAD)).replace(microsecond=0)
    extended = due + datetime.timedelta(hours=1)
    body = site.api(
        'POST', 'deadline', COURSE, ASSIGNMENT, as_user='kevin', data={'due': wire(due)}
    )
    assert body['success'], body
    body = site.api(
        'POST',
        'extension',
        COURSE,
        ASSIGNMENT,
        'eric',
        as_user='kevin',
        data={'due': wire(extended)},
    )
    assert body['success'], body

    with server_of(eric):  # their own due date: the extension
        (released,) = assignment_list(eric).list_assignments(COURSE)['value']
        assert (released['status'], released['due_date']) == (
            'released',
            wire(extended),
        )

    with server_of(lawrence):
        panel = assignment_list(lawrence)
        (released,) = panel.list_assignments(course_id=COURSE)['value']
        assert released['status'] == 'released'
        assert (released['due_date'], released['late_policy']) == (
            wire(due),
            'accept',
        )
        assert released['cutoff'] is None
        assert panel.fetch_assignment(COURSE, ASSIGNMENT) == {'success': True}
        assert panel.submit_assignment(COURSE, ASSIGNMENT)['success']
        # the one wait: until the due date has passed on ngshare's clock
        # (this machine's), then a late submission
        left = (
            due - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        ).total_seconds()
        if left > 0:
            time.sleep(left + 0.2)
        assert panel.submit_assignment(COURSE, ASSIGNMENT)['success']
        listed = panel.list_assignments(course_id=COURSE)['value']

    fetched, submitted = listed
    assert (fetched['status'], fetched['due_date']) == ('fetched', wire(due))
    on_server = site.api('GET', 'submissions', COURSE, ASSIGNMENT, 'lawrence')
    entries = on_server['submissions']
    # ngshare's judgement: in the entries, or in ``lateness`` beside them
    for entry, judgement in zip(entries, on_server.get('lateness', entries)):
        entry.update(judgement)
    judged = {
        entry['timestamp']: (entry['due'], entry['late'], entry['seconds_late'])
        for entry in entries
    }
    shown = {
        s['timestamp']: (s['due_date'], s['late'], s['seconds_late'])
        for s in submitted['submissions']
    }
    assert shown == judged
    assert [late for _, late, _ in shown.values()] == [False, True], shown
