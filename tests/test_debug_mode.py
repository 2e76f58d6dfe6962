"""Debug mode's verbose refusals, as 0.6.0 gave them; production's stay exact.

In debug mode (``--debug``, always on with ``--vngshare``) a 403
``Permission denied`` names its reason in parentheses; without it the
message is exactly the documented ``Permission denied``. The status is the
same either way.
"""

from __future__ import annotations

import json

import pytest
from _api import err, ok

COURSE = 'Verbose 101'
PERSON = {'first_name': 'F', 'last_name': 'L', 'email': 'e@example.org'}

# (caller, method, path, data) -> the reason debug mode adds.
REFUSALS = [
    ('eric', 'POST', ('course', 'Other 101'), None, 'not admin'),
    ('eric', 'DELETE', ('instructor', COURSE, 'kevin'), None, 'not admin'),
    ('lawrence', 'GET', ('students', COURSE), None, 'not course instructor'),
    ('lawrence', 'GET', ('student', COURSE, 'ann'), None, 'not course instructor'),
    ('stranger', 'GET', ('assignments', COURSE), None, 'not related to course'),
    (
        'stranger',
        'POST',
        ('instructor', COURSE, 'stranger'),
        PERSON,
        'not course instructor',
    ),
    (
        'kevin',
        'POST',
        ('instructor', COURSE, 'lawrence'),
        PERSON,
        'cannot modify instructors',
    ),
    (
        'kevin',
        'POST',
        ('instructor', COURSE, 'newbie'),
        PERSON,
        'cannot modify instructors',
    ),
    (
        'kevin',
        'POST',
        ('instructor', COURSE, 'grace'),
        PERSON,
        'cannot modify other instructors',
    ),
]


def seed(server):
    """kevin and grace teach COURSE; lawrence and ann take it."""
    ok(
        server.request(
            'POST',
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps(['kevin', 'grace'])},
        )
    )
    for student in ('lawrence', 'ann'):
        ok(
            server.request(
                'POST', ('student', COURSE, student), user='kevin', data=PERSON
            )
        )


def refusal_messages(server) -> list[tuple[int, dict]]:
    seed(server)
    answers = []
    for user, method, path, data, _reason in REFUSALS:
        resp = server.request(method, path, user=user, data=data)
        assert resp.headers['Content-Type'].startswith('application/json')
        answers.append((resp.status_code, resp.json()))
    return answers


@pytest.mark.parametrize('mode', ['vngshare', 'hub --debug'])
def test_debug_mode_names_the_reason(mode, start_ngshare):
    server = start_ngshare(
        hub_mode=mode != 'vngshare', args=['--debug'] if mode != 'vngshare' else []
    )
    expected = [
        (403, {'success': False, 'message': f'Permission denied ({reason})'})
        for *_, reason in REFUSALS
    ]
    assert refusal_messages(server) == expected
    # Nothing was changed by the refused requests.
    roster = ok(server.request('GET', ('instructors', COURSE), user='root'))
    assert [entry['username'] for entry in roster['instructors']] == ['kevin', 'grace']


def test_production_keeps_the_documented_message(hub_server):
    expected = [(403, {'success': False, 'message': 'Permission denied'})] * len(
        REFUSALS
    )
    assert refusal_messages(hub_server) == expected


def test_an_instructor_still_updates_their_own_entry(vngshare_server):
    seed(vngshare_server)
    fields = {'first_name': 'Kev', 'last_name': 'In', 'email': 'k@example.org'}
    ok(
        vngshare_server.request(
            'POST', ('instructor', COURSE, 'kevin'), user='kevin', data=fields
        )
    )
    answer = ok(
        vngshare_server.request('GET', ('instructor', COURSE, 'kevin'), user='ann')
    )
    assert answer == {'success': True, 'username': 'kevin', **fields}
    # Other refusals keep their documented messages in debug mode too.
    err(
        vngshare_server.request('GET', ('instructor', COURSE, 'nobody'), user='ann'),
        404,
        'Instructor not found',
    )
