"""Deadlines over HTTP: GET/POST /deadline, POST/DELETE /extension, and the
deadline fields of a release, on SQLite and on PostgreSQL.

Every due date here is far in the future (2099) or far in the past (2000),
so no assertion depends on the clock. Every refusal is checked for its
exact JSON answer and for storing nothing.
"""

from __future__ import annotations

import json

import pytest
from _api import err, ok, tree
from _uploads import raw_parts

pytestmark = pytest.mark.both_databases

ADMIN = 'root'
COURSE = 'Due 101'
ASSIGNMENT = 'ps 1'
TEACHER = 'kevin'
STUDENTS = ('lawrence', 'Eric', 'abby')
OTHER = 'olga'  # a student of another course
OUTSIDER = 'nobody'

DUE = '2099-06-01T17:00:00+00:00'
LATER = '2099-06-08T17:00:00+00:00'
PAST = '2000-01-01T00:00:00+00:00'


def person(name):
    return {'first_name': name, 'last_name': name, 'email': f'{name}@example.org'}


def setup(server, *, release=True, **release_fields):
    ok(
        server.post(
            ('course', COURSE), user=ADMIN, data={'instructors': json.dumps([TEACHER])}
        )
    )
    for student in STUDENTS:
        ok(
            server.post(
                ('student', COURSE, student), user=TEACHER, data=person(student)
            )
        )
    ok(
        server.post(
            ('course', 'Other'), user=ADMIN, data={'instructors': json.dumps(['oi'])}
        )
    )
    ok(server.post(('student', 'Other', OTHER), user='oi', data=person(OTHER)))
    if release:
        ok(release_assignment(server, **release_fields))


def release_assignment(server, name=ASSIGNMENT, user=TEACHER, **fields):
    return server.post(
        ('assignment', COURSE, name),
        user=user,
        data={'files': tree({'a.ipynb': b'{}'}), **fields},
    )


def deadline(server, user=TEACHER, name=ASSIGNMENT):
    return ok(server.get(('deadline', COURSE, name), user=user))


def set_deadline(server, user=TEACHER, name=ASSIGNMENT, **fields):
    return server.post(('deadline', COURSE, name), user=user, data=fields)


def set_extension(server, student, due, user=TEACHER, name=ASSIGNMENT):
    data = {} if due is None else {'due': due}
    return server.post(('extension', COURSE, name, student), user=user, data=data)


def remove_extension(server, student, user=TEACHER, name=ASSIGNMENT):
    return server.delete(('extension', COURSE, name, student), user=user)


NO_DEADLINE = {
    'success': True,
    'due': None,
    'late_policy': 'accept',
    'grace_seconds': 0,
    'cutoff': None,
    'extensions': [],
}

# Field values and their refusals, shared by release, /deadline and /extension.
BAD_DUES = [
    ('tomorrow', 'Due date cannot be parsed'),
    ('2099-13-01T00:00:00+00:00', 'Due date cannot be parsed'),
    ('2099-06-01T17:00:00', 'Due date needs a UTC offset'),
    ('2099-06-01', 'Due date needs a UTC offset'),
    ('8999-12-31T23:00:00-05:00', 'Due date is too far in the future'),
    ('9999-12-31T23:59:59-23:59', 'Due date cannot be parsed'),
    (PAST, 'Due date is in the past'),
    ('\x00', 'Due date cannot be parsed'),
    # (Tornado turns a NUL into a space, so a trailing one would be allowed.)
    ('2099-06-01T17:00\x00:00+00:00', 'Due date cannot be parsed'),
    ('9' * 100_000, 'Due date cannot be parsed'),
    ('２０９９-06-01T17:00:00+00:00', 'Due date cannot be parsed'),
    (' ', 'Due date cannot be parsed'),
]
BAD_POLICIES = ['', 'ACCEPT', 'reject', 'acc\x00ept', 'x' * 100_000]
BAD_GRACES = ['', '-1', '1e9', '９', '1.5', ' ', str(366 * 24 * 3600 + 1), '9' * 5000]


# GET /deadline


def test_a_release_without_deadline_fields_has_none(shared_server):
    setup(shared_server)
    for user in (TEACHER, ADMIN):
        assert deadline(shared_server, user) == NO_DEADLINE
    assert deadline(shared_server, 'lawrence') == {
        'success': True,
        'due': None,
        'late_policy': 'accept',
        'grace_seconds': 0,
        'cutoff': None,
        'extended': False,
    }


def test_release_stores_the_deadline_fields(shared_server):
    setup(shared_server, due=DUE, late_policy='refuse', grace_seconds='600')
    assert deadline(shared_server) == {
        **NO_DEADLINE,
        'due': DUE,
        'late_policy': 'refuse',
        'grace_seconds': 600,
        'cutoff': '2099-06-01T17:10:00+00:00',
    }


def test_release_with_an_empty_due_has_none(shared_server):
    setup(shared_server, due='', late_policy='accept', grace_seconds='0')
    assert deadline(shared_server) == NO_DEADLINE


def test_due_dates_are_answered_in_utc_with_their_microseconds(shared_server):
    setup(shared_server, due='2099-06-01T19:00:00.250000+02:00')
    assert deadline(shared_server)['due'] == '2099-06-01T17:00:00.250000+00:00'
    ok(set_deadline(shared_server, due='2099-06-01T12:00:00Z'))
    assert deadline(shared_server)['due'] == '2099-06-01T12:00:00+00:00'
    # ngshare's own timestamp format, as a client may send one back
    ok(set_deadline(shared_server, due='2099-06-01 12:30:00.000001 UTC'))
    assert deadline(shared_server)['due'] == '2099-06-01T12:30:00.000001+00:00'


def test_release_by_raw_parts_stores_the_deadline_fields(shared_server):
    setup(shared_server, release=False)
    ok(
        raw_parts(
            shared_server,
            'POST',
            ('assignment', COURSE, ASSIGNMENT),
            TEACHER,
            {'a.ipynb': b'{}'},
            fields={'due': DUE, 'late_policy': 'refuse', 'grace_seconds': '60'},
        )
    )
    answer = deadline(shared_server)
    assert (answer['due'], answer['late_policy'], answer['grace_seconds']) == (
        DUE,
        'refuse',
        60,
    )


def test_release_by_raw_parts_refuses_a_bad_field(shared_server):
    setup(shared_server, release=False)
    err(
        raw_parts(
            shared_server,
            'POST',
            ('assignment', COURSE, ASSIGNMENT),
            TEACHER,
            {'a.ipynb': b'{}'},
            fields={'due': PAST},
        ),
        400,
        'Due date is in the past',
    )
    assert_not_released(shared_server)


def assert_not_released(server, name=ASSIGNMENT):
    names = ok(server.get(('assignments', COURSE), user=TEACHER))['assignments']
    assert name not in names
    err(
        server.get(('deadline', COURSE, name), user=TEACHER),
        404,
        'Assignment not found',
    )


@pytest.mark.parametrize(
    'fields, message',
    [({'due': due}, message) for due, message in BAD_DUES]
    + [({'late_policy': p}, 'Invalid late policy') for p in BAD_POLICIES]
    + [({'grace_seconds': g}, 'Invalid grace period') for g in BAD_GRACES],
    ids=lambda value: repr(value)[:40],
)
def test_release_refuses_bad_deadline_fields_and_stores_nothing(
    shared_server, fields, message
):
    setup(shared_server, release=False)
    err(release_assignment(shared_server, **fields), 400, message)
    assert_not_released(shared_server)
    assert shared_server.blob_keys() == []


def test_release_field_checks_come_after_the_documented_errors(shared_server):
    setup(shared_server)
    bad = {'due': 'never'}
    err(release_assignment(shared_server, **bad), 409, 'Assignment already exists')
    err(
        release_assignment(shared_server, name='ps 2', user='lawrence', **bad),
        403,
        'Permission denied',
    )
    err(
        shared_server.post(
            ('assignment', 'No such', 'x'), user=ADMIN, data={'files': '[]', **bad}
        ),
        404,
        'Course not found',
    )


def test_release_refuses_non_utf8_fields(shared_server):
    setup(shared_server, release=False)
    for field in ('due', 'late_policy', 'grace_seconds'):
        err(
            release_assignment(shared_server, **{field: b'\xff\xfe'}),
            400,
            'Bad Request',
        )
    assert_not_released(shared_server)
    assert shared_server.blob_keys() == []


# POST /deadline


def test_post_deadline_changes_only_the_given_fields(shared_server):
    setup(shared_server)
    answer = ok(set_deadline(shared_server, due=DUE))
    assert answer == {**NO_DEADLINE, 'due': DUE}
    answer = ok(set_deadline(shared_server, late_policy='refuse'))
    assert answer == {
        **NO_DEADLINE,
        'due': DUE,
        'late_policy': 'refuse',
        'cutoff': DUE,
    }
    answer = ok(set_deadline(shared_server, grace_seconds='3600'))
    assert answer['due'] == DUE
    assert answer['cutoff'] == '2099-06-01T18:00:00+00:00'
    assert ok(set_deadline(shared_server)) == answer  # nothing given: unchanged
    assert deadline(shared_server) == answer
    # cleared: policy and grace stay
    cleared = ok(set_deadline(shared_server, due='', user=ADMIN))
    assert cleared == {
        **NO_DEADLINE,
        'late_policy': 'refuse',
        'grace_seconds': 3600,
    }
    ok(set_deadline(shared_server, late_policy='accept', due=LATER))
    assert deadline(shared_server)['cutoff'] is None


@pytest.mark.parametrize(
    'fields, message',
    [({'due': due}, message) for due, message in BAD_DUES]
    + [({'late_policy': p}, 'Invalid late policy') for p in BAD_POLICIES]
    + [({'grace_seconds': g}, 'Invalid grace period') for g in BAD_GRACES]
    + [({'due': DUE, 'grace_seconds': '-1'}, 'Invalid grace period')]
    + [({'due': PAST, 'late_policy': 'refuse'}, 'Due date is in the past')],
    ids=lambda value: repr(value)[:40],
)
def test_post_deadline_refuses_bad_fields_and_changes_nothing(
    shared_server, fields, message
):
    setup(shared_server, due=DUE, late_policy='refuse', grace_seconds='5')
    before = deadline(shared_server)
    err(set_deadline(shared_server, **fields), 400, message)
    assert deadline(shared_server) == before


def test_post_deadline_refuses_non_utf8(shared_server):
    setup(shared_server, due=DUE)
    before = deadline(shared_server)
    err(set_deadline(shared_server, due=b'\xed\xa0\x80'), 400, 'Bad Request')
    assert deadline(shared_server) == before


def test_deadline_lookups_in_their_order(shared_server):
    setup(shared_server)
    for method in ('get', 'post'):
        call = getattr(shared_server, method)
        kwargs = {'data': {'due': 'bad'}} if method == 'post' else {}
        err(
            call(('deadline', 'Nope', ASSIGNMENT), user=ADMIN, **kwargs),
            404,
            'Course not found',
        )
        err(
            call(('deadline', COURSE, 'nope'), user=TEACHER, **kwargs),
            404,
            'Assignment not found',
        )
        err(
            call(('deadline', COURSE, 'nope\x00'), user=TEACHER, **kwargs),
            404,
            'Assignment not found',
        )
    err(
        set_deadline(shared_server, user='lawrence', due='bad'),
        403,
        'Permission denied',
    )
    err(
        shared_server.get(('deadline', COURSE, ASSIGNMENT), user=OTHER),
        403,
        'Permission denied',
    )


# POST /extension


def test_extension_moves_one_students_due_date(shared_server):
    setup(shared_server, due=DUE, late_policy='refuse', grace_seconds='60')
    answer = ok(set_extension(shared_server, 'lawrence', LATER))
    assert answer == {
        'success': True,
        'student_id': 'lawrence',
        'due': LATER,
        'cutoff': '2099-06-08T17:01:00+00:00',
    }
    assert deadline(shared_server, 'lawrence') == {
        'success': True,
        'due': LATER,
        'late_policy': 'refuse',
        'grace_seconds': 60,
        'cutoff': '2099-06-08T17:01:00+00:00',
        'extended': True,
    }
    assert deadline(shared_server, 'Eric') == {
        'success': True,
        'due': DUE,
        'late_policy': 'refuse',
        'grace_seconds': 60,
        'cutoff': '2099-06-01T17:01:00+00:00',
        'extended': False,
    }


def test_extensions_are_listed_by_student_and_replaced(shared_server):
    setup(shared_server, due=DUE)
    for student in ('lawrence', 'abby', 'Eric'):
        ok(set_extension(shared_server, student, LATER))
    replaced = '2099-07-01T00:00:00+00:00'
    ok(set_extension(shared_server, 'abby', replaced, user=ADMIN))
    assert deadline(shared_server)['extensions'] == [
        {'student_id': 'Eric', 'due': LATER, 'cutoff': None},
        {'student_id': 'abby', 'due': replaced, 'cutoff': None},
        {'student_id': 'lawrence', 'due': LATER, 'cutoff': None},
    ]
    assert deadline(shared_server, 'abby')['due'] == replaced


def test_an_extension_equal_to_the_due_date_extends_nothing(shared_server):
    setup(shared_server, due=DUE)
    ok(set_extension(shared_server, 'lawrence', DUE))
    mine = deadline(shared_server, 'lawrence')
    assert (mine['due'], mine['extended']) == (DUE, False)


def test_an_extension_overtaken_by_the_due_date_no_longer_applies(shared_server):
    setup(shared_server, due=DUE, late_policy='refuse')
    ok(set_extension(shared_server, 'lawrence', LATER))
    moved = '2099-08-01T00:00:00+00:00'
    ok(set_deadline(shared_server, due=moved))
    mine = deadline(shared_server, 'lawrence')
    assert (mine['due'], mine['cutoff'], mine['extended']) == (moved, moved, False)
    # still listed, with the cutoff it gives (the assignment's)
    assert deadline(shared_server)['extensions'] == [
        {'student_id': 'lawrence', 'due': LATER, 'cutoff': moved}
    ]


def test_extensions_without_a_due_date_are_listed_and_ignored(shared_server):
    setup(shared_server, due=DUE, late_policy='refuse')
    ok(set_extension(shared_server, 'lawrence', LATER))
    ok(set_deadline(shared_server, due=''))
    assert deadline(shared_server)['extensions'] == [
        {'student_id': 'lawrence', 'due': LATER, 'cutoff': None}
    ]
    mine = deadline(shared_server, 'lawrence')
    assert (mine['due'], mine['cutoff'], mine['extended']) == (None, None, False)
    # and they apply again once there is a due date
    ok(set_deadline(shared_server, due=DUE))
    mine = deadline(shared_server, 'lawrence')
    assert (mine['due'], mine['extended']) == (LATER, True)


def test_extension_refusals_in_their_order(shared_server):
    setup(shared_server)
    err(
        set_extension(shared_server, 'lawrence', 'bad', user=ADMIN, name='nope'),
        404,
        'Assignment not found',
    )
    err(
        shared_server.post(
            ('extension', 'Nope', ASSIGNMENT, 'lawrence'), user=ADMIN, data={}
        ),
        404,
        'Course not found',
    )
    err(
        set_extension(shared_server, 'Eric', 'bad', user='lawrence'),
        403,
        'Permission denied',
    )
    for name in (OTHER, OUTSIDER, TEACHER, 'lawrence\x00', 'LAWRENCE'):
        err(set_extension(shared_server, name, None), 404, 'Student not found')
    err(set_extension(shared_server, 'lawrence', None), 400, 'Please supply due date')
    err(
        set_extension(shared_server, 'lawrence', 'bad'),
        400,
        'Due date cannot be parsed',
    )
    err(
        set_extension(shared_server, 'lawrence', LATER),
        400,
        'Assignment has no due date',
    )
    ok(set_deadline(shared_server, due=LATER))
    err(set_extension(shared_server, 'lawrence', PAST), 400, 'Due date is in the past')
    err(
        set_extension(shared_server, 'lawrence', DUE),
        400,
        'Extension is earlier than the due date',
    )
    assert deadline(shared_server)['extensions'] == []


@pytest.mark.parametrize('due, message', BAD_DUES, ids=lambda v: repr(v)[:40])
def test_extension_refuses_bad_dates_and_stores_nothing(shared_server, due, message):
    setup(shared_server, due=DUE)
    err(set_extension(shared_server, 'lawrence', due), 400, message)
    assert deadline(shared_server)['extensions'] == []


def test_extension_refuses_non_utf8(shared_server):
    setup(shared_server, due=DUE)
    err(set_extension(shared_server, 'lawrence', b'\xff'), 400, 'Bad Request')
    assert deadline(shared_server)['extensions'] == []


# DELETE /extension


def test_remove_extension(shared_server):
    setup(shared_server, due=DUE)
    ok(set_extension(shared_server, 'lawrence', LATER))
    ok(set_extension(shared_server, 'abby', LATER))
    assert ok(remove_extension(shared_server, 'lawrence')) == {'success': True}
    assert deadline(shared_server)['extensions'] == [
        {'student_id': 'abby', 'due': LATER, 'cutoff': None}
    ]
    assert deadline(shared_server, 'lawrence')['due'] == DUE
    err(remove_extension(shared_server, 'lawrence'), 404, 'Extension not found')
    ok(remove_extension(shared_server, 'abby', user=ADMIN))
    assert deadline(shared_server)['extensions'] == []


def test_remove_extension_refusals(shared_server):
    setup(shared_server, due=DUE)
    ok(set_extension(shared_server, 'lawrence', LATER))
    err(
        remove_extension(shared_server, 'lawrence', user='Eric'),
        403,
        'Permission denied',
    )
    err(
        remove_extension(shared_server, 'lawrence', name='nope'),
        404,
        'Assignment not found',
    )
    err(
        shared_server.delete(('extension', 'Nope', ASSIGNMENT, 'x'), user=ADMIN),
        404,
        'Course not found',
    )
    for name in (OTHER, OUTSIDER, 'x\x00'):
        err(remove_extension(shared_server, name), 404, 'Student not found')
    err(remove_extension(shared_server, 'Eric'), 404, 'Extension not found')
    assert len(deadline(shared_server)['extensions']) == 1


def test_the_extension_of_a_removed_student_can_be_removed(shared_server):
    setup(shared_server, due=DUE)
    ok(set_extension(shared_server, 'lawrence', LATER))
    ok(shared_server.delete(('student', COURSE, 'lawrence'), user=TEACHER))
    ok(remove_extension(shared_server, 'lawrence'))
    err(remove_extension(shared_server, 'lawrence'), 404, 'Student not found')


def test_deleting_the_assignment_removes_its_extensions(shared_server):
    setup(shared_server, due=DUE)
    ok(set_extension(shared_server, 'lawrence', LATER))
    ok(shared_server.delete(('assignment', COURSE, ASSIGNMENT), user=TEACHER))
    ok(release_assignment(shared_server, due=DUE))
    assert deadline(shared_server)['extensions'] == []


@pytest.mark.parametrize('segment', ['%FF', '%ED%A0%80'])
def test_undecodable_names_in_the_path_are_refused(shared_server, segment):
    setup(shared_server, due=DUE)
    paths = [
        f'deadline/{segment}/x',
        f'deadline/Due%20101/{segment}',
        f'extension/Due%20101/ps%201/{segment}',
    ]
    for path in paths:
        methods = ('POST', 'DELETE') if path.startswith('ext') else ('GET', 'POST')
        for method in methods:
            data = {'due': LATER} if method == 'POST' else None
            resp = shared_server.request(method, path, user=TEACHER, data=data)
            err(resp, 400, 'Bad Request')
    assert deadline(shared_server)['extensions'] == []


def test_nul_in_the_path_names_nothing(shared_server):
    setup(shared_server, due=DUE)
    cases = [
        ('GET', 'deadline/%00/x', 'Course not found'),
        ('POST', 'deadline/Due%20101/a%00', 'Assignment not found'),
        ('POST', 'extension/Due%20101/ps%201/lawrence%00', 'Student not found'),
        ('DELETE', 'extension/Due%20101/ps%201/%00', 'Student not found'),
    ]
    for method, path, message in cases:
        data = {'due': LATER} if method == 'POST' else None
        err(shared_server.request(method, path, user=TEACHER, data=data), 404, message)


def test_methods_the_endpoints_do_not_offer(shared_server):
    setup(shared_server, due=DUE)
    for method, path in (
        ('DELETE', ('deadline', COURSE, ASSIGNMENT)),
        ('GET', ('extension', COURSE, ASSIGNMENT, 'lawrence')),
    ):
        err(
            shared_server.request(method, path, user=TEACHER), 405, 'Method Not Allowed'
        )
