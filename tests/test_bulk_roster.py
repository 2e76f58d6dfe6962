"""A bulk add of students: a handful of statements, the result of one by one.

``POST /students`` enrols every student of the request with a few
statements (the instructors among them, their users rows, their roster
entries), whatever their number, on SQLite and PostgreSQL
(:mod:`_counting_server`); and it answers and leaves exactly what enrolling
them one after the other did: a name given twice ends with its last values,
instructors are refused in the request's order, an illegal new name is a
400 that leaves nothing, a name already in the database is enrolled.
"""

from __future__ import annotations

import json
import urllib.parse

from _counting_server import ADMIN, describe, queries


def _person(name: str, tag: str = '') -> dict:
    return {
        'username': name,
        'first_name': f'First{tag}',
        'last_name': f'Last{tag}',
        'email': f'{name}{tag}@example.org',
    }


async def _course(server, course: str) -> None:
    await server.request(
        'POST',
        ('course', course),
        user=ADMIN,
        data={'instructors': json.dumps(['teach', 'assist'])},
    )


async def _post(server, course: str, roster: list[dict]):
    response = await server.client.fetch(
        server.url(('students', course)),
        method='POST',
        body=urllib.parse.urlencode({'user': 'teach', 'students': json.dumps(roster)}),
        raise_error=False,
    )
    return response.code, json.loads(response.body)


async def test_a_bulk_add_costs_the_same_statements_for_5_or_300(counting_server):
    seen = {}
    for count in (5, 300):
        course = f'Bulk {count}'
        await _course(counting_server, course)
        roster = [_person(f's{count}-{i:03d}') for i in range(count)]
        counting_server.statements.start()
        try:
            code, answer = await _post(counting_server, course, roster)
        finally:
            seen[count] = queries(counting_server.statements.stop())
        assert code == 200 and all(s['success'] for s in answer['status'])
        listed = await counting_server.request(
            'GET', ('students', course), user='teach'
        )
        assert sorted(s['username'] for s in listed['students']) == sorted(
            p['username'] for p in roster
        )
    assert len(seen[5]) == len(seen[300]) <= 6, describe(seen[300])


async def test_a_bulk_add_answers_and_leaves_what_one_by_one_did(counting_server):
    course = 'Bulk rules'
    await _course(counting_server, course)
    roster = [
        _person('zed', ' old'),
        _person('assist'),  # an instructor of the course
        _person('amy'),
        _person('zed', ' new'),  # the same student again: these values stay
    ]
    code, answer = await _post(counting_server, course, roster)
    assert code == 200
    assert answer['status'] == [
        {'username': 'zed', 'success': True},
        {
            'username': 'assist',
            'success': False,
            'message': 'Cannot add instructor as student',
        },
        {'username': 'amy', 'success': True},
        {'username': 'zed', 'success': True},
    ]
    listed = await counting_server.request('GET', ('students', course), user='teach')
    by_name = {s['username']: s for s in listed['students']}
    assert sorted(by_name) == ['amy', 'zed']
    assert by_name['zed'] == _person('zed', ' new')
    instructors = await counting_server.request(
        'GET', ('instructors', course), user='teach'
    )
    assert sorted(i['username'] for i in instructors['instructors']) == [
        'assist',
        'teach',
    ]

    # Again, updating amy: an illegal new name anywhere refuses all of it.
    again = [_person('amy', ' changed'), _person('bad\tname'), _person('bea')]
    code, answer = await _post(counting_server, course, again)
    assert (code, answer) == (400, {'success': False, 'message': 'Illegal name'})
    listed = await counting_server.request('GET', ('students', course), user='teach')
    assert sorted(s['username'] for s in listed['students']) == ['amy', 'zed']
    assert {s['username']: s for s in listed['students']}['amy'] == _person('amy')
