"""The history page (``PREFIX + 'history'``) in a real browser.

One shared stand-alone server and one headless Chromium (the DevTools client
of :mod:`test_browser`) for the module. A small course is played through
the API, its history read back through ``GET /history/<course_id>``, and
the page must show exactly those entries: on a desktop and at a phone's
width (nothing wider than the screen, no script), narrowed by its GET form
and by the links of its cells, paged by its "Next page" link to the end.
Refused filters and unknown courses are shown on the page in the API's
words; students and outsiders get the 403 page; names containing
``<script>`` are shown as text.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from _api import ok, tree
from test_browser import ACCENT, Browser, press

COURSE = 'Hist <script>alert("course")</script> 101 – zoë'
OTHER = 'Other course'
HOSTILE = '<script>alert("student")</script>' + 'x' * 40  # long: must still fit
STUDENT = 'sam'
SUBMISSION = {'ps1.ipynb': b'{"cells": []}', 'data/notes.txt': b'twelve bytes'}
PHONE = (375, 740, True)
DESKTOP = (1280, 800, False)
# Bounds the walk through the pages (the course has 9 entries).
MAX_PAGES = 10


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    instance = Browser(tmp_path_factory.mktemp('history-browser'))
    yield instance
    instance.close()


def play_course(server) -> list[dict]:
    """A small course, through the API; its history, oldest first."""
    ok(server.post(('course', COURSE), user='root', data={'instructors': '["eric"]'}))
    ok(server.post(('course', OTHER), user='root', data={'instructors': '["olga"]'}))
    students = [
        {'username': name, 'first_name': 'F', 'last_name': 'L', 'email': 'e@x.org'}
        for name in (HOSTILE, STUDENT)
    ]
    ok(
        server.post(
            ('students', COURSE), user='eric', data={'students': json.dumps(students)}
        )
    )
    files = tree({'ps1.ipynb': b'{}'})
    ok(server.post(('assignment', COURSE, 'ps1'), user='eric', data={'files': files}))
    for name in (STUDENT, HOSTILE):
        ok(server.get(('assignment', COURSE, 'ps1'), user=name))
    ok(
        server.post(
            ('submission', COURSE, 'ps1'),
            user=STUDENT,
            data={'files': tree(SUBMISSION)},
        )
    )
    ok(server.get(('submission', COURSE, 'ps1', STUDENT), user='eric'))
    history = ok(
        server.get(('history', COURSE), user='root', params={'order': 'oldest'})
    )
    assert history['next'] is None
    return history['history']


def page_url(server, user: str, **params) -> str:
    query = urllib.parse.urlencode(
        {'user': user, **params}, quote_via=urllib.parse.quote
    )
    return server.url('history') + '?' + query


def show(browser, url: str, status: int = 200) -> dict:
    """Load ``url`` (expecting ``status``); what the page shows."""
    assert browser.open(url) == status, url
    return shown(browser)


def shown(browser) -> dict:
    """What the loaded page shows, read from its DOM."""
    return browser.js(
        """(() => {
        const text = (s) => { const e = document.querySelector(s);
                              return e ? e.innerText.trim() : null; };
        const cell = (row, column) =>
            row.querySelector(`td[data-column="${column}"]`).innerText.trim();
        return {
          title: document.title,
          error: text('#error-message'),
          form: !!document.querySelector('#filters form'),
          courses: [...document.querySelectorAll('#course-names option')]
                     .map((o) => o.value),
          heading: text('#entries h2'),
          rows: [...document.querySelectorAll('#history tbody tr')].map((r) => ({
            id: r.id.replace('entry-', ''),
            time: r.querySelector('time').getAttribute('datetime'),
            action: cell(r, 'action'), user: cell(r, 'user'),
            assignment_id: cell(r, 'assignment'), student_id: cell(r, 'student'),
            timestamp: cell(r, 'timestamp'), files: cell(r, 'files'),
            bytes: cell(r, 'bytes'),
          })),
          next: (document.querySelector('#next-page') || {}).href || null,
          first: !!document.querySelector('#first-page'),
          scripts: document.scripts.length,
          scrollWidth: document.documentElement.scrollWidth,
          // Not innerWidth: under a phone's emulation the layout viewport
          // grows to a page too wide, so only clientWidth stays the screen's.
          clientWidth: document.documentElement.clientWidth,
          headerColor: getComputedStyle(document.querySelector('header.top'))
                     .backgroundColor,
          body: document.body.innerText,
        };
      })()"""
    )


def as_shown(entry: dict) -> dict:
    """An API entry as the page's cells read ('–' for null)."""
    shown = {key: '–' if value is None else str(value) for key, value in entry.items()}
    shown['time'] = entry['time']
    return shown


def assert_fits(state: dict, what: str) -> None:
    assert state['scrollWidth'] <= state['clientWidth'], (
        f'{what}: page is {state["scrollWidth"]}px wide on a '
        f'{state["clientWidth"]}px screen'
    )
    assert state['scripts'] == 0, f'{what}: the page runs scripts'
    assert state['headerColor'] == ACCENT, f'{what}: style sheet blocked?'


def test_page_lists_filters_and_pages_the_history(browser, shared_server):
    server = shared_server
    entries = play_course(server)
    assert [entry['action'] for entry in entries] == [
        'create_course',
        'add_instructor',
        'add_student',
        'add_student',
        'release',
        'fetch',
        'fetch',
        'submit',
        'collect',
    ]
    newest_first = [as_shown(entry) for entry in reversed(entries)]
    submit = next(entry for entry in entries if entry['action'] == 'submit')
    assert (submit['files'], submit['bytes']) == (
        len(SUBMISSION),
        sum(len(content) for content in SUBMISSION.values()),
    )

    # The welcome page links to the page, which suggests every course.
    browser.viewport(*DESKTOP)
    assert browser.open(server.api + '?user=root') == 200
    href = browser.js("document.getElementById('history-link').href")
    state = show(browser, href)
    assert state['form'] and state['rows'] == [] and state['heading'] is None
    assert state['courses'] == sorted([COURSE, OTHER])

    # The whole course, newest first, as the API answers it; on a phone too.
    for size, name in ((DESKTOP, 'desktop'), (PHONE, 'phone')):
        browser.viewport(*size)
        state = show(browser, page_url(server, 'root', course=COURSE))
        if name == 'phone':
            browser.screenshot('history-root-phone')
        assert state['rows'] == newest_first, name
        assert state['heading'].startswith(COURSE), state['heading']
        assert COURSE in state['title'] and HOSTILE in state['body']
        assert state['next'] is None and not state['first']
        assert_fits(state, f'history page ({name})')

    # A student's link narrows it to their entries (the hostile name
    # travels in the link's query and back).
    link = browser.js(
        '[...document.querySelectorAll(\'td[data-column="student"] a\')]'
        f'.find((a) => a.textContent === {json.dumps(HOSTILE)}).href'
    )
    state = show(browser, link)
    expected = [entry for entry in newest_first if entry['student_id'] == HOSTILE]
    assert [row['action'] for row in expected] == ['fetch', 'add_student']
    assert state['rows'] == expected

    # The form (kept filled in) narrows it again: sam's submission only.
    browser.viewport(*DESKTOP)
    browser.js(
        "document.getElementById('f-student').value = 'sam';"
        "document.getElementById('f-action').value = 'submit';"
    )
    assert press(browser, 'show') == 200
    state = shown(browser)
    assert state['rows'] == [as_shown(submit)]
    kept = (
        "['f-course', 'f-student', 'f-action']"
        '.map((id) => document.getElementById(id).value)'
    )
    assert browser.js(kept) == [COURSE, STUDENT, 'submit']

    # Three at a time, oldest first, by the "Next page" link to the end.
    state = show(
        browser, page_url(server, 'root', course=COURSE, order='oldest', limit=3)
    )
    seen = list(state['rows'])
    assert not state['first']
    for _ in range(MAX_PAGES):
        if state['next'] is None:
            break
        assert press(browser, 'next-page') == 200
        state = shown(browser)
        assert state['first'] and 1 <= len(state['rows']) <= 3
        seen += state['rows']
    else:
        raise AssertionError('the pages never end')
    assert seen == [as_shown(entry) for entry in entries]

    # The instructor sees the same, and is offered only their course.
    state = show(browser, page_url(server, 'eric', course=COURSE))
    assert state['rows'] == newest_first
    assert state['courses'] == [COURSE]


def test_page_refusals_errors_and_escaping(browser, shared_server):
    server = shared_server
    play_course(server)
    browser.viewport(*PHONE)

    # A refused filter or an unknown course: the API's message, on the page.
    for params, status, message in (
        ({'course': COURSE, 'since': 'yesterday'}, 400, 'Invalid since'),
        ({'course': COURSE, 'action': 'steal'}, 400, 'Unknown action'),
        ({'course': COURSE, 'limit': '0'}, 400, 'Invalid limit'),
        ({'course': 'No such course'}, 404, 'Course not found'),
    ):
        state = show(browser, page_url(server, 'root', **params), status)
        assert state['error'] == message, params
        assert state['form'] and state['rows'] == [] and state['heading'] is None
        assert 'Traceback' not in state['body']
        assert_fits(state, f'error page {params}')

    # A student of the course and an outsider: the 403 page, nothing else.
    for user, params in ((STUDENT, {'course': COURSE}), ('zed', {})):
        state = show(browser, page_url(server, user, **params), 403)
        assert state['error'].startswith('Permission denied'), state['error']
        assert not state['form'] and state['rows'] == [] and state['courses'] == []
        assert 'fetch' not in state['body'] and COURSE not in state['body']
        assert_fits(state, f'refused page ({user})')

    # The hostile names are text: escaped in the HTML, no script anywhere.
    resp = server.get('history', user='root', params={'course': COURSE})
    assert resp.status_code == 200
    assert resp.headers['Content-Type'].startswith('text/html')
    assert 'script-src' not in resp.headers['Content-Security-Policy']
    assert "default-src 'none'" in resp.headers['Content-Security-Policy']
    assert '<script' not in resp.text
    assert '&lt;script&gt;alert(&quot;student&quot;)&lt;/script&gt;' in resp.text
    assert ' style=' not in resp.text

    # Anonymous (stand-alone: no user named): the JSON 401, as every page.
    resp = server.get('history', params={'course': COURSE})
    assert resp.status_code == 401
    assert resp.json() == {'success': False, 'message': 'Login required'}
