"""Malformed input on every endpoint: the documented 4xx JSON, nothing stored.

A table of hostile requests (NUL in every name segment of every route and
method, JSON nested 100,000 levels deep in each JSON field, lone surrogates
and NUL in each string field, wrong JSON types, empty and control-character
names, trees that no file system can hold) is sent to a Hub-managed server
in production mode (debug off), on SQLite and on PostgreSQL, with the same
expectations for both. Each case asserts the exact status and message, that
no row of any table and no stored file changed, and that the server logged
no traceback.

One server per database serves the module (starting one per case would
take most of the run); the rows are compared before and after every case,
so cases do not depend on each other.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from _api import b64, err, ok, tree
from _servers import HubStub, start_server
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.both_databases

ADMIN = 'root'
COURSE = 'NBG 101'
ASSIGNMENT = 'ps1'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
NUL = '\x00'
DEEP = 100_000
# A timestamp placeholder, replaced by the submission's real one.
STAMP = object()


def person(name):
    return {'first_name': name, 'last_name': name, 'email': f'{name}@example.org'}


def student_entry(username, **overrides):
    return {'username': username, **person('x'), **overrides}


FILES = tree({'a.txt': b'a', 'dir/b.txt': b'b'})


@pytest.fixture(scope='module')
def ngshare_database_url(request, tmp_path_factory):
    """One database per parameter (see pytest_generate_tests), for the module."""
    if request.param == 'postgresql':
        postgres = request.getfixturevalue('postgres_server')
        name = postgres.create_database()
        yield postgres.url(name)
        postgres.drop_database(name)
        return
    assert request.param == 'sqlite'
    yield f'sqlite:///{tmp_path_factory.mktemp("malformed-db") / "ngshare.db"}'


@dataclasses.dataclass
class World:
    server: object
    engine: object
    stamp: str

    def rows(self) -> dict:
        """Every row of every table (but Alembic's), in a stable order."""
        metadata = MetaData()
        metadata.reflect(self.engine)
        with self.engine.connect() as connection:
            return {
                name: sorted(
                    (tuple(row) for row in connection.execute(select(table))),
                    key=repr,
                )
                for name, table in metadata.tables.items()
                if name != 'alembic_version'
            }

    def stored_files(self) -> set[str]:
        root = Path(self.server.storage)
        return {
            os.path.relpath(os.path.join(folder, name), root)
            for folder, _dirs, names in os.walk(root)
            for name in names
        }


@pytest.fixture(scope='module')
def world(ngshare_database_url, tmp_path_factory):
    """A Hub stand-in and a production ngshare with one course in use."""
    workdir = tmp_path_factory.mktemp('malformed')
    (workdir / 'hub').mkdir()
    hub = HubStub(workdir / 'hub')
    server = None
    engine = create_engine(ngshare_database_url, poolclass=NullPool)
    try:
        server = start_server(
            workdir / 'ngshare',
            hub_mode=True,
            hub=hub,
            database_url=ngshare_database_url,
        )
        ok(
            server.post(
                ('course', COURSE),
                user=ADMIN,
                data={'instructors': json.dumps([INSTRUCTOR])},
            )
        )
        ok(server.post(('student', COURSE, STUDENT), user=INSTRUCTOR, data=person('l')))
        ok(
            server.post(
                ('assignment', COURSE, ASSIGNMENT),
                user=INSTRUCTOR,
                data={'files': FILES},
            )
        )
        stamp = ok(
            server.post(
                ('submission', COURSE, ASSIGNMENT), user=STUDENT, data={'files': FILES}
            )
        )['timestamp']
        ok(
            server.post(
                ('feedback', COURSE, ASSIGNMENT, STUDENT),
                user=INSTRUCTOR,
                data={'timestamp': stamp, 'files': FILES},
            )
        )
        yield World(server, engine, stamp)
    finally:
        if server is not None:
            server.stop()
        hub.stop()
        engine.dispose()


@dataclasses.dataclass
class Case:
    id: str
    method: str
    path: tuple
    user: str
    status: int
    message: str
    data: dict | None = None
    params: dict | None = None


def _filled(mapping, stamp):
    if mapping is None:
        return None
    return {k: (stamp if v is STAMP else v) for k, v in mapping.items()}


# Every route with a name in its path, each method, a caller who passes the
# permission check, a valid body, and what a NUL in each segment answers
# (segment index -> answer), in the documented order of the checks.
C_404 = (404, 'Course not found')
A_404 = (404, 'Assignment not found')
S_404 = (404, 'Student not found')
ILLEGAL = (400, 'Illegal name')
DENIED = (403, 'Permission denied')
TIMESTAMP = {'timestamp': STAMP}
ROUTES = [
    ('POST', ('course', COURSE), ADMIN, {'instructors': '[]'}, None, {1: ILLEGAL}),
    ('POST', ('course', COURSE), INSTRUCTOR, {'instructors': '[]'}, None, {1: DENIED}),
    ('DELETE', ('course', COURSE), ADMIN, None, None, {1: C_404}),
    ('DELETE', ('course', COURSE), INSTRUCTOR, None, None, {1: C_404}),
    (
        'GET',
        ('instructor', COURSE, INSTRUCTOR),
        STUDENT,
        None,
        None,
        {1: C_404, 2: (404, 'Instructor not found')},
    ),
    (
        'POST',
        ('instructor', COURSE, INSTRUCTOR),
        ADMIN,
        person('k'),
        None,
        {1: C_404, 2: ILLEGAL},
    ),
    (
        'POST',
        ('instructor', COURSE, INSTRUCTOR),
        INSTRUCTOR,
        person('k'),
        None,
        {2: DENIED},
    ),
    (
        'DELETE',
        ('instructor', COURSE, INSTRUCTOR),
        ADMIN,
        None,
        None,
        {1: C_404, 2: (404, 'Instructor not found')},
    ),
    ('GET', ('instructors', COURSE), STUDENT, None, None, {1: C_404}),
    ('GET', ('student', COURSE, STUDENT), INSTRUCTOR, None, None, {1: C_404, 2: S_404}),
    ('GET', ('student', COURSE, STUDENT), STUDENT, None, None, {2: DENIED}),
    (
        'POST',
        ('student', COURSE, STUDENT),
        INSTRUCTOR,
        person('l'),
        None,
        {1: C_404, 2: ILLEGAL},
    ),
    ('POST', ('student', COURSE, STUDENT), STUDENT, person('l'), None, {2: DENIED}),
    (
        'DELETE',
        ('student', COURSE, STUDENT),
        INSTRUCTOR,
        None,
        None,
        {1: C_404, 2: S_404},
    ),
    ('GET', ('students', COURSE), INSTRUCTOR, None, None, {1: C_404}),
    (
        'POST',
        ('students', COURSE),
        INSTRUCTOR,
        {'students': json.dumps([student_entry(STUDENT)])},
        None,
        {1: C_404},
    ),
    ('GET', ('assignments', COURSE), STUDENT, None, None, {1: C_404}),
    (
        'GET',
        ('assignment', COURSE, ASSIGNMENT),
        STUDENT,
        None,
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'POST',
        ('assignment', COURSE, ASSIGNMENT),
        INSTRUCTOR,
        {'files': FILES},
        None,
        {1: C_404, 2: ILLEGAL},
    ),
    (
        'POST',
        ('assignment', COURSE, ASSIGNMENT),
        STUDENT,
        {'files': FILES},
        None,
        {2: DENIED},
    ),
    (
        'DELETE',
        ('assignment', COURSE, ASSIGNMENT),
        INSTRUCTOR,
        None,
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'GET',
        ('submissions', COURSE, ASSIGNMENT),
        INSTRUCTOR,
        None,
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'GET',
        ('submissions', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        None,
        None,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    (
        'GET',
        ('submissions', COURSE, ASSIGNMENT, STUDENT),
        STUDENT,
        None,
        None,
        {3: DENIED},
    ),
    (
        'POST',
        ('submission', COURSE, ASSIGNMENT),
        STUDENT,
        {'files': FILES},
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'GET',
        ('submission', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        None,
        TIMESTAMP,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    (
        'GET',
        ('feedback', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        None,
        TIMESTAMP,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    (
        'GET',
        ('feedback', COURSE, ASSIGNMENT, STUDENT),
        STUDENT,
        None,
        TIMESTAMP,
        {3: DENIED},
    ),
    (
        'POST',
        ('feedback', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        {'timestamp': STAMP, 'files': FILES},
        None,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    (
        'GET',
        ('deadline', COURSE, ASSIGNMENT),
        STUDENT,
        None,
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'POST',
        ('deadline', COURSE, ASSIGNMENT),
        INSTRUCTOR,
        {'late_policy': 'refuse'},
        None,
        {1: C_404, 2: A_404},
    ),
    (
        'POST',
        ('extension', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        {'due': '2999-01-01T00:00:00+00:00'},
        None,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    (
        'DELETE',
        ('extension', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        None,
        None,
        {1: C_404, 2: A_404, 3: S_404},
    ),
    ('GET', ('history', COURSE), INSTRUCTOR, None, None, {1: C_404}),
    # An admin may read a deleted course's history: no live course needed.
    ('GET', ('history', COURSE), ADMIN, None, None, {1: C_404}),
]


def _nul_cases():
    for method, path, user, data, params, answers in ROUTES:
        for index, (status, message) in answers.items():
            for where, spoil in (('end', '{}\x00'), ('alone', '\x00')):
                spoilt = list(path)
                spoilt[index] = spoil.format(path[index])
                yield Case(
                    f'{method} {path[0]} NUL in segment {index} ({where}) as {user}',
                    method,
                    tuple(spoilt),
                    user,
                    status,
                    message,
                    data,
                    params,
                )


def _files_cases():
    """Each tree upload with one bad ``files`` field."""
    uploads = [
        ('POST', ('assignment', COURSE, 'new'), INSTRUCTOR, {}),
        ('POST', ('submission', COURSE, ASSIGNMENT), STUDENT, {}),
        (
            'POST',
            ('feedback', COURSE, ASSIGNMENT, STUDENT),
            INSTRUCTOR,
            {'timestamp': STAMP},
        ),
    ]
    entry = {'path': 'a.txt', 'content': b64(b'a')}
    bad = {
        'deep array': ('[' * DEEP + ']' * DEEP, 'Files cannot be JSON decoded'),
        'deep object': (
            '{"a": ' * DEEP + '1' + '}' * DEEP,
            'Files cannot be JSON decoded',
        ),
        'deep inside an entry': (
            '[{"path": "a", "content": "", "x": ' + '[' * DEEP + ']' * DEEP + '}]',
            'Files cannot be JSON decoded',
        ),
        'not JSON': ('[{"path": ', 'Files cannot be JSON decoded'),
        'an object': ('{}', 'Files cannot be JSON decoded'),
        'null': ('null', 'Files cannot be JSON decoded'),
        'a list of numbers': ('[1, 2]', 'Files cannot be JSON decoded'),
        'path a number': (
            json.dumps([{'path': 1, 'content': ''}]),
            'Files cannot be JSON decoded',
        ),
        'no content': (json.dumps([{'path': 'a'}]), 'Files cannot be JSON decoded'),
        'checksum null': (
            json.dumps([{**entry, 'checksum': None}]),
            'Files cannot be JSON decoded',
        ),
        'lone surrogate in path': (
            json.dumps([entry, {'path': 'b\ud800', 'content': ''}]),
            'Illegal path',
        ),
        'NUL in path': (
            json.dumps([{'path': 'a\x00b', 'content': ''}]),
            'Illegal path',
        ),
        'empty path': (json.dumps([{'path': '', 'content': ''}]), 'Illegal path'),
        'file and folder a': (
            json.dumps([entry, {'path': 'a.txt/b', 'content': ''}]),
            'Illegal path',
        ),
        'component of 256 bytes': (
            json.dumps([{'path': 'd/' + 'x' * 256, 'content': ''}]),
            'Illegal path',
        ),
        'path of 4,097 bytes': (
            json.dumps(
                [{'path': '/'.join(['y' * 240] * 16 + ['y' * 241]), 'content': ''}]
            ),
            'Illegal path',
        ),
        'depth 65': (
            json.dumps([{'path': '/'.join('d' * 65), 'content': ''}]),
            'Illegal path',
        ),
        'lone surrogate in content': (
            json.dumps([{'path': 'a', 'content': 'YQ\udc00='}]),
            'Content cannot be base64 decoded',
        ),
        'NUL in content': (
            json.dumps([{'path': 'a', 'content': 'YQ=\x00'}]),
            'Content cannot be base64 decoded',
        ),
        'lone surrogate in checksum': (
            json.dumps([{**entry, 'checksum': '\ud800'}]),
            'Checksum mismatch',
        ),
    }
    for method, path, user, extra in uploads:
        for name, (files_json, message) in bad.items():
            yield Case(
                f'{path[0]} files: {name}',
                method,
                path,
                user,
                400,
                message,
                {**extra, 'files': files_json},
            )


def _roster_cases():
    students = ('POST', ('students', COURSE), INSTRUCTOR)
    course = ('POST', ('course', 'new course'), ADMIN)
    students_bad = {
        'deep array': ('[' * DEEP + ']' * DEEP, 'Students cannot be JSON decoded'),
        'deep object': (
            '{"a": ' * DEEP + '1' + '}' * DEEP,
            'Students cannot be JSON decoded',
        ),
        'not JSON': ('[{', 'Students cannot be JSON decoded'),
        'an object': ('{}', 'Incorrect request format'),
        'username a number': (
            json.dumps([student_entry(5)]),
            'Incorrect request format',
        ),
        'empty username': (json.dumps([student_entry('')]), 'Incorrect request format'),
        'no email': (
            json.dumps([{'username': 'x', 'first_name': 'x', 'last_name': 'x'}]),
            'Incorrect request format',
        ),
        'lone surrogate in username': (
            json.dumps([student_entry('new'), student_entry('new\ud800')]),
            'Incorrect request format',
        ),
        'NUL in username': (
            json.dumps([student_entry('new'), student_entry('new\x00')]),
            'Incorrect request format',
        ),
        'lone surrogate in first_name': (
            json.dumps([student_entry('new', first_name='\udfff')]),
            'Incorrect request format',
        ),
        'NUL in last_name': (
            json.dumps([student_entry('new', last_name='a\x00')]),
            'Incorrect request format',
        ),
        'lone surrogate in email': (
            json.dumps([student_entry('new', email='a\udbff@b')]),
            'Incorrect request format',
        ),
        'new username with a tab': (
            json.dumps([student_entry('new'), student_entry('new\tname')]),
            'Illegal name',
        ),
        'new username with an escape': (
            json.dumps([student_entry('\x1b[31mred')]),
            'Illegal name',
        ),
    }
    instructors_bad = {
        'deep array': ('[' * DEEP + ']' * DEEP, 'Instructors cannot be JSON decoded'),
        'deep object': (
            '{"a": ' * DEEP + '1' + '}' * DEEP,
            'Instructors cannot be JSON decoded',
        ),
        'an object': ('{"a": 1}', 'Instructors cannot be JSON decoded'),
        'a number in the list': ('["a", 1]', 'Instructors cannot be JSON decoded'),
        'an empty name': ('["a", ""]', 'Instructors cannot be JSON decoded'),
        'a lone surrogate': (
            json.dumps(['a', 'b\ud800']),
            'Instructors cannot be JSON decoded',
        ),
        'NUL': (json.dumps(['a', 'b\x00']), 'Instructors cannot be JSON decoded'),
        'a new name with a newline': (json.dumps(['a', 'b\nc']), 'Illegal name'),
    }
    for name, (value, message) in students_bad.items():
        yield Case(f'students: {name}', *students, 400, message, {'students': value})
    for name, (value, message) in instructors_bad.items():
        yield Case(
            f'instructors: {name}', *course, 400, message, {'instructors': value}
        )


def _name_cases():
    """New names with control characters; names that cannot be routed."""
    for name in ('tab\tname', 'line\nbreak', '\x1b[2J', 'del\x7f'):
        yield Case(
            f'new course {name!r}',
            'POST',
            ('course', name),
            ADMIN,
            400,
            'Illegal name',
            {'instructors': '[]'},
        )
        yield Case(
            f'new assignment {name!r}',
            'POST',
            ('assignment', COURSE, name),
            INSTRUCTOR,
            400,
            'Illegal name',
            {'files': FILES},
        )
        yield Case(
            f'new student {name!r}',
            'POST',
            ('student', COURSE, name),
            INSTRUCTOR,
            400,
            'Illegal name',
            person('n'),
        )
    for path in ('student/NBG%20101//lawrence', 'course/', 'assignment//ps1'):
        yield Case(f'empty segment {path}', 'GET', path, ADMIN, 404, 'Not Found')
    for field in ('first_name', 'email'):
        yield Case(
            f'invalid UTF-8 (an encoded surrogate) in {field}',
            'POST',
            ('student', COURSE, 'new'),
            INSTRUCTOR,
            400,
            'Bad Request',
            {**person('n'), field: b'\xed\xa0\x80'},
        )
    # Tornado turns a NUL in a query value into a space, which parsing allows.
    yield Case(
        'NUL in timestamp',
        'GET',
        ('submission', COURSE, ASSIGNMENT, STUDENT),
        INSTRUCTOR,
        404,
        'Submission not found',
        None,
        {'timestamp': '2020-01-01 00:00:00\x00'},
    )


# Hostile query parameters of GET /history (issue 17), each alone, and what
# they answer: the parameters are checked after the course and the caller.
# (An empty one is no filter, as a form sends an unfilled field: below.)
TOO_LONG = '9' * 5000
HISTORY_BAD = {
    'assignment_id': {'invalid UTF-8': (b'\xed\xa0\x80', 'Bad Request')},
    'student_id': {'invalid UTF-8': (b'\xed\xa0\x80', 'Bad Request')},
    'action': {
        'unknown': ('nope', 'Unknown action'),
        'upper case': ('SUBMIT', 'Unknown action'),
        'with a NUL (a space)': ('submit\x00', 'Unknown action'),
    },
    'since': {
        'words': ('yesterday', 'Invalid since'),
        'no offset': ('2024-01-01T00:00:00', 'Invalid since'),
        'month 13': ('2024-13-01T00:00:00+00:00', 'Invalid since'),
        'before year 1 in UTC': ('0001-01-01T00:00:00+01:00', 'Invalid since'),
        'offset of 25 hours': ('2024-01-01T00:00:00+25:00', 'Invalid since'),
        'very long': (TOO_LONG, 'Invalid since'),
    },
    'until': {
        'year 10000': ('10000-01-01T00:00:00+00:00', 'Invalid until'),
        'the end of time': ('9999-12-31T23:59:59+00:00', 'Invalid until'),
    },
    'order': {
        'unknown': ('random', 'Invalid order'),
        'with a NUL (a space)': ('newest\x00', 'Invalid order'),
    },
    'limit': {
        'zero': ('0', 'Invalid limit'),
        'over 1000': ('1001', 'Invalid limit'),
        'exponent': ('1e3', 'Invalid limit'),
        'Arabic-Indic digits': ('\u0661\u0662', 'Invalid limit'),
        'five thousand digits': (TOO_LONG, 'Invalid limit'),
        'the last of two': (['5', 'abc'], 'Invalid limit'),
    },
    'cursor': {
        'negative': ('-1', 'Invalid cursor'),
        'over 2**62': (str(2**62 + 1), 'Invalid cursor'),
        'Arabic-Indic digits': ('\u0661', 'Invalid cursor'),
    },
}


def _history_cases():
    path = ('history', COURSE)
    for parameter, bad in HISTORY_BAD.items():
        for name, (value, message) in bad.items():
            yield Case(
                f'history {parameter}: {name}',
                'GET',
                path,
                INSTRUCTOR,
                400,
                message,
                None,
                {parameter: value},
            )
    spoilt = {'limit': '0', 'action': 'nope', 'since': 'x'}
    for who, user, where, answer in (
        ('an outsider', 'nobody', path, DENIED),
        ('a student of the course', STUDENT, path, None),
        ('an unknown course', INSTRUCTOR, ('history', 'No such course'), C_404),
        ('an unknown course (admin)', ADMIN, ('history', 'No such course'), C_404),
    ):
        # The parameters come after the course and the caller; a student's
        # are checked as anyone's.
        status, message = answer or (400, 'Unknown action')
        yield Case(
            f'history bad parameters from {who}',
            'GET',
            where,
            user,
            status,
            message,
            None,
            spoilt,
        )


CASES = [
    *_nul_cases(),
    *_files_cases(),
    *_roster_cases(),
    *_name_cases(),
    *_history_cases(),
]


@pytest.mark.parametrize('case', CASES, ids=[case.id for case in CASES])
def test_malformed(world, case):
    server = world.server
    rows_before = world.rows()
    files_before = world.stored_files()
    log_before = len(server.log_text())
    resp = server.request(
        case.method,
        case.path,
        user=case.user,
        data=_filled(case.data, world.stamp),
        params=_filled(case.params, world.stamp),
    )
    err(resp, case.status, case.message)
    assert world.rows() == rows_before
    assert world.stored_files() == files_before
    assert 'Traceback' not in server.log_text()[log_before:]


def test_the_table_is_large():
    """Several dozen cases, covering every route that takes a name."""
    assert len(CASES) > 150
    assert {route[1][0] for route in ROUTES} == {
        'course',
        'instructor',
        'instructors',
        'student',
        'students',
        'assignment',
        'assignments',
        'submissions',
        'submission',
        'feedback',
        'deadline',
        'extension',
        'history',
    }


def test_history_parameters_at_their_limits_are_answered(world):
    """The edges of what GET /history accepts answer 200, on both databases
    (a cursor of 2**62 against an integer column too), and change nothing."""
    server = world.server
    rows_before = world.rows()
    log_before = len(server.log_text())

    def ids(**params) -> list[str]:
        answer = ok(server.get(('history', COURSE), user=INSTRUCTOR, params=params))
        return [entry['id'] for entry in answer['history']]

    everything = ids()
    # At least the world's setup: course, instructor, student, release,
    # submit, feedback (other tests of the module may have added some).
    assert len(everything) >= 6, everything
    assert ids(limit=f' {len(everything)} ') == everything
    # Empty parameters: no filter (an HTML form's unfilled fields).
    empty = dict.fromkeys(('assignment_id', 'student_id', 'action', 'order'), '')
    assert ids(**empty, since='', until='', limit='', cursor='') == everything
    assert ids(limit='1000', cursor=str(2**31 - 1)) == everything
    assert ids(cursor='0') == []
    assert ids(cursor='0', order='oldest') == everything[::-1]
    assert ids(since='0001-01-01T00:00:00+00:00', until='8999-12-31T00:00:00Z') == (
        everything
    )
    assert (
        ids(since='2000-01-01 00:00:00.000000 UTC', order='oldest')
        == (everything[::-1])
    )
    assert ids(until='2000-01-01T00:00:00-12:00') == []
    assert ids(assignment_id='no such', student_id='nobody', action='purge') == []
    assert world.rows() == rows_before
    assert 'Traceback' not in server.log_text()[log_before:]


@pytest.mark.parametrize('cursor', [2**31, 2**62])
def test_a_cursor_beyond_every_entry_is_no_server_error(world, cursor):
    """A cursor the parameter check accepts but no entry ID can reach (an
    entry ID is a 32-bit integer on PostgreSQL): the whole history, or the
    documented 400, never a 500."""
    server = world.server
    log_before = len(server.log_text())
    resp = server.get(('history', COURSE), user=INSTRUCTOR, params={'cursor': cursor})
    if resp.status_code == 400:
        err(resp, 400, 'Invalid cursor')
    else:
        assert len(ok(resp)['history']) >= 6
    assert 'Traceback' not in server.log_text()[log_before:]


def test_control_characters_in_form_fields_become_spaces(world):
    """Tornado replaces C0 controls but tab and line breaks in query and form
    values with a space: a NUL there never reaches the database."""
    server = world.server
    fields = {'first_name': 'a\x00b', 'last_name': '\x1bc', 'email': 'e\x00'}
    ok(server.post(('student', COURSE, 'formed'), user=INSTRUCTOR, data=fields))
    answer = ok(server.get(('student', COURSE, 'formed'), user=INSTRUCTOR))
    assert (answer['first_name'], answer['last_name'], answer['email']) == (
        'a b',
        ' c',
        'e ',
    )
    ok(server.delete(('student', COURSE, 'formed'), user=INSTRUCTOR))
    assert 'Traceback' not in server.log_text()


def test_names_of_0_6_0_stay_usable(world):
    """A user or course with a control character, stored by 0.6.0, still works.

    Only new names are refused; the rows are written as 0.6.0 would have.
    """
    server = world.server
    legacy_user, legacy_course = 'old\tuser', 'old\ncourse'
    with world.engine.begin() as connection:
        connection.execute(
            text('INSERT INTO users (id) VALUES (:id)'), {'id': legacy_user}
        )
        connection.execute(
            text('INSERT INTO courses (id) VALUES (:id)'), {'id': legacy_course}
        )
    ok(server.post(('student', COURSE, legacy_user), user=INSTRUCTOR, data=person('o')))
    assert (
        ok(server.get(('student', COURSE, legacy_user), user=INSTRUCTOR))['username']
        == legacy_user
    )
    assert ok(server.get(('assignments', legacy_course), user=ADMIN)) == {
        'success': True,
        'assignments': [],
        'deadlines': {},
    }
    ok(
        server.post(
            ('instructor', legacy_course, INSTRUCTOR), user=ADMIN, data=person('k')
        )
    )
    ok(
        server.post(
            ('assignment', legacy_course, 'ps'), user=INSTRUCTOR, data={'files': FILES}
        )
    )
    ok(server.delete(('student', COURSE, legacy_user), user=INSTRUCTOR))
    ok(server.delete(('course', legacy_course), user=ADMIN))
    err(server.get(('assignments', legacy_course), user=ADMIN), 404, 'Course not found')
    assert 'Traceback' not in server.log_text()
