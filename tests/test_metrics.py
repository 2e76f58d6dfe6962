"""``--metrics``: Prometheus metrics at ``PREFIX + 'metrics'``, for admins.

Real servers (stand-alone and under the Hub stand-in); the exposition is
parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import time

import pytest
import requests
from _api import err, ok, tree
from prometheus_client.parser import text_string_to_metric_families

from ngshare.app import API_ROUTES
from ngshare.metrics import route_template

COURSE = 'Metrics 101 zoë'
ASSIGNMENT = 'ps 1'
RELEASED = {'ps1.ipynb': b'{"cells": []}' * 10, 'data/notes.txt': b'x' * 1001}
SUBMITTED = {'ps1.ipynb': b'answer ' * 300}


def scrape(server, user='root') -> tuple[str, dict]:
    """The exposition text and ``{(name, labels...): value}`` of all samples."""
    resp = server.request('GET', 'metrics', user=user)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers['Content-Type'].startswith('text/plain'), resp.headers
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            key = (sample.name, *sorted(sample.labels.items()))
            samples[key] = sample.value
    return resp.text, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def requests_of(samples, route, method='GET', status=200) -> float:
    return value(
        samples,
        'ngshare_requests_total',
        route=route,
        method=method,
        status=str(status),
    )


@pytest.fixture
def metrics_server(start_ngshare):
    return start_ngshare(hub_mode=False, args=['--metrics'])


def test_counters_follow_requests_and_uploads(metrics_server):
    server = metrics_server
    ok(server.post(('course', COURSE), user='root', data={'instructors': '["eric"]'}))
    ok(server.post(('student', COURSE, 'lawrence'), user='eric', data=_names()))
    for _ in range(3):
        ok(server.get('courses', user='eric'))
    ok(server.post(('assignment', COURSE, ASSIGNMENT), user='eric', data=_files()))
    for _ in range(2):
        ok(
            server.post(
                ('submission', COURSE, ASSIGNMENT),
                user='lawrence',
                data={'files': tree(SUBMITTED, line_breaks=True)},
            )
        )
    # A refused submission counts as a request, but stores nothing.
    err(
        server.post(
            ('submission', COURSE, ASSIGNMENT),
            user='lawrence',
            data={'files': 'not json'},
        ),
        400,
        'Files cannot be JSON decoded',
    )
    err(server.get('no/such/thing', user='eric'), 404, 'Not Found')

    text, samples = _scrape_until_bytes(server, 'submission', 2)

    assert requests_of(samples, '/courses') == 3
    assert requests_of(samples, '/course/<course_id>', 'POST') == 1
    assert requests_of(samples, '/student/<course_id>/<user_id>', 'POST') == 1
    submit = '/submission/<course_id>/<assignment_id>'
    assert requests_of(samples, submit, 'POST') == 2
    assert requests_of(samples, submit, 'POST', 400) == 1
    assert requests_of(samples, '(unmatched)', 'GET', 404) == 1
    # Latency histograms: one observation per answered request.
    assert (
        value(
            samples,
            'ngshare_request_duration_seconds_count',
            route=submit,
            method='POST',
        )
        == 3
    )
    assert (
        value(
            samples,
            'ngshare_request_duration_seconds_bucket',
            route='/courses',
            method='GET',
            le='+Inf',
        )
        == 3
    )
    assert value(samples, 'ngshare_submissions_stored_total') == 2
    size = sum(map(len, SUBMITTED.values()))
    assert value(samples, 'ngshare_stored_bytes_total', kind='submission') == 2 * size
    assert value(samples, 'ngshare_stored_files_total', kind='submission') == 2
    released = sum(map(len, RELEASED.values()))
    assert value(samples, 'ngshare_stored_bytes_total', kind='assignment') == released
    assert value(samples, 'ngshare_stored_files_total', kind='assignment') == 2
    assert value(samples, 'ngshare_stored_bytes_total', kind='feedback') == 0
    # Route patterns only: no course, assignment or user name in any label.
    for name in (COURSE, ASSIGNMENT, 'lawrence', 'eric', 'no/such'):
        assert name not in text
    assert 'process_cpu_seconds_total' in text

    # The scrapes themselves are counted too.
    _, again = scrape(server)
    assert requests_of(again, '/metrics') >= 1
    assert requests_of(again, '/courses') == 3


def test_only_admins_may_read(metrics_server):
    err(metrics_server.get('metrics', user='eric'), 403, 'Permission denied')
    err(metrics_server.get('metrics'), 401, 'Login required')
    scrape(metrics_server, user='root')


def test_under_the_hub_a_token_of_an_admin_is_needed(start_ngshare):
    server = start_ngshare(hub_mode=True, args=['--metrics'])
    # No login redirect for a scraper: 401.
    resp = requests.get(server.api + 'metrics', timeout=10, allow_redirects=False)
    err(resp, 401, 'Login required')
    err(server.get('metrics', user='eric'), 403, 'Permission denied')
    err(server.get('metrics', token='not-a-valid-token'), 403, 'Invalid token')
    _, samples = scrape(server, user='root')
    assert requests_of(samples, '/metrics', status=403) == 2


def test_off_by_default(vngshare_server):
    err(vngshare_server.get('metrics', user='root'), 404, 'Not Found')


def test_route_labels_name_the_parameters():
    labels = {
        pattern: route_template(pattern, handler) for pattern, handler in API_ROUTES
    }
    assert labels[r'courses'] == '/courses'
    assert labels[r'favicon\.ico'] == '/favicon.ico'
    assert (
        labels[r'submission/([^/]+)/([^/]+)/([^/]+)']
        == '/submission/<course_id>/<assignment_id>/<student_id>'
    )
    assert len(set(labels.values())) == len(API_ROUTES)
    assert all('(' not in label and '\\' not in label for label in labels.values())


def _names():
    return {'first_name': 'L', 'last_name': 'W', 'email': 'l@example.org'}


def _files():
    return {'files': tree(RELEASED, checksums=True)}


def _scrape_until_bytes(server, kind, uploads, timeout=10.0):
    """Upload sizes are counted in the worker pool, just after the answer."""
    deadline = time.monotonic() + timeout
    while True:
        text, samples = scrape(server)
        counted = value(samples, 'ngshare_stored_files_total', kind=kind)
        if counted >= uploads or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.05)
