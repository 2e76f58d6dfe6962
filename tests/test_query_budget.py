"""Listing and reading endpoints cost a constant number of SQL statements.

An in-process server is built exactly as ``ngshare.cli.serve`` builds it
(flags -> Config -> runtime -> app) and listens on a loopback port inside the
test's event loop; every statement the engine sends is counted with a
``before_cursor_execute`` listener. Each endpoint is asked about a small
course (3 students, short trees) and then a large one (60 students, more
instructors, assignments, submissions and files): the counts must be equal,
and within an explicit budget, so that a regression to one query per row
(an N+1) fails here. On SQLite the ``BEGIN`` that opens each transaction is
sent as a statement too: it counts for the comparison, not for the budget.

The statements the lists send are also checked against the query planner:
none of them may scan a whole table (SQLite ``EXPLAIN QUERY PLAN``), or, on
PostgreSQL, need a sequential scan when the planner is told to avoid them
(the admin's list of every course excepted).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse

import pytest
from sqlalchemy import event, text
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ngshare import cli
from ngshare.app import make_app

# The most queries any listing or reading endpoint may send (not counting
# the BEGIN that SQLite sends as a statement).
BUDGET = 6
TRANSACTION_CONTROL = {'BEGIN', 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK'}

ADMIN = 'root'
SMALL = {
    'course': 'Small 101',
    'instructors': ['teach-s'],
    'students': 3,
    'assignments': 1,
    'submissions': 2,
    'files': 2,
}
LARGE = {
    'course': 'Large 101',
    'instructors': ['teach-l', 'ta-1', 'ta-2', 'ta-3'],
    'students': 60,
    'assignments': 4,
    'submissions': 3,
    'files': 6,
}
OTHER_COURSES = 8  # created with the large course: the admin sees them all


@pytest.fixture(params=['sqlite', 'postgresql'])
def database_url(request, tmp_path):
    if request.param == 'postgresql':
        return request.getfixturevalue('postgres_url')
    return f'sqlite:///{tmp_path / "ngshare.db"}'


class Statements:
    """Counts the statements an engine sends while ``recording``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.recording = False
        self.seen: list[tuple[str, object]] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        with self.lock:
            if self.recording:
                self.seen.append((statement, parameters))

    def start(self):
        with self.lock:
            self.seen = []
            self.recording = True

    def stop(self) -> list[tuple[str, object]]:
        with self.lock:
            self.recording = False
            return list(self.seen)


class InProcessServer:
    def __init__(self, runtime, http_server, port, statements):
        self.runtime = runtime
        self.http_server = http_server
        self.api = f'http://127.0.0.1:{port}{runtime.config.prefix}'
        self.statements = statements
        self.client = AsyncHTTPClient()

    def url(self, segments, params=None) -> str:
        path = '/'.join(urllib.parse.quote(seg, safe='') for seg in segments)
        query = '?' + urllib.parse.urlencode(params) if params else ''
        return self.api + path + query

    async def request(self, method, segments, *, user, params=None, data=None):
        params = dict(params or {})
        if method == 'GET':
            params['user'] = user
            body = None
        else:
            body = urllib.parse.urlencode({**(data or {}), 'user': user})
        try:
            response = await self.client.fetch(
                self.url(segments, params),
                method=method,
                body=body,
                allow_nonstandard_methods=True,
                request_timeout=120,
            )
        except HTTPClientError as error:
            response = error.response
        answer = json.loads(response.body)
        assert response.code == 200 and answer['success'] is True, (
            method,
            segments,
            response.code,
            answer,
        )
        return answer

    async def counted(self, segments, *, user, params=None):
        """GET ``segments`` and return (answer, statements sent meanwhile)."""
        self.statements.start()
        try:
            answer = await self.request('GET', segments, user=user, params=params)
        finally:
            seen = self.statements.stop()
        return answer, seen


@pytest.fixture
async def server(database_url, tmp_path):
    sockets = bind_sockets(0, '127.0.0.1')
    port = sockets[0].getsockname()[1]
    args = cli.build_parser().parse_args(
        [
            '--vngshare',
            '--database',
            database_url,
            '--storage',
            str(tmp_path / 'files'),
            '--admins',
            ADMIN,
            '--host',
            '127.0.0.1',
            '--port',
            str(port),
        ]
    )
    config = cli.config_from(args, {})
    runtime = cli.build_runtime(config)
    statements = Statements()
    event.listen(runtime.engine, 'before_cursor_execute', statements)
    app = make_app(runtime, cli.load_cookie_secret(config))
    http_server = HTTPServer(app)
    http_server.add_sockets(sockets)
    try:
        yield InProcessServer(runtime, http_server, port, statements)
    finally:
        http_server.stop()
        await http_server.close_all_connections()
        runtime.pool.shutdown(wait=True)
        event.remove(runtime.engine, 'before_cursor_execute', statements)
        runtime.engine.dispose()


def encoded_tree(files: dict[str, bytes]) -> str:
    return json.dumps(
        [
            {
                'path': path,
                'content': base64.b64encode(content).decode('ascii'),
                'checksum': hashlib.md5(content).hexdigest(),
            }
            for path, content in files.items()
        ]
    )


def files_for(label: str, count: int) -> dict[str, bytes]:
    names = [f'{label}.ipynb'] + [f'data/part{i}.txt' for i in range(1, count)]
    return {name: f'{label} {name}\n'.encode() for name in names}


def students_of(shape) -> list[str]:
    tag = shape['course'].split()[0].lower()
    return [f'{tag}-student{i:02d}' for i in range(shape['students'])]


def assignments_of(shape) -> list[str]:
    return [f'Lab {i}' for i in range(1, shape['assignments'] + 1)]


async def populate(srv: InProcessServer, shape) -> dict:
    """Create a course of ``shape``; return the timestamps of the submissions
    of the first assignment by student."""
    course = shape['course']
    teacher, *assistants = shape['instructors']
    await srv.request(
        'POST',
        ('course', course),
        user=ADMIN,
        data={'instructors': json.dumps([teacher])},
    )
    for name in assistants:
        await srv.request(
            'POST',
            ('instructor', course, name),
            user=ADMIN,
            data={'first_name': name, 'last_name': 'T', 'email': f'{name}@x.org'},
        )
    roster = [
        {'username': s, 'first_name': s, 'last_name': 'S', 'email': f'{s}@x.org'}
        for s in students_of(shape)
    ]
    await srv.request(
        'POST',
        ('students', course),
        user=teacher,
        data={'students': json.dumps(roster)},
    )
    stamps: dict[str, list[str]] = {}
    for k, assignment in enumerate(assignments_of(shape)):
        await srv.request(
            'POST',
            ('assignment', course, assignment),
            user=teacher,
            data={'files': encoded_tree(files_for(assignment, shape['files']))},
        )
        for student in students_of(shape):
            for n in range(shape['submissions'] if k == 0 else 1):
                answer = await srv.request(
                    'POST',
                    ('submission', course, assignment),
                    user=student,
                    data={
                        'files': encoded_tree(
                            files_for(f'{student} {n}', shape['files'])
                        )
                    },
                )
                if k == 0:
                    stamps.setdefault(student, []).append(answer['timestamp'])
    first = assignments_of(shape)[0]
    for student, mine in stamps.items():
        for stamp in mine:
            await srv.request(
                'POST',
                ('feedback', course, first, student),
                user=teacher,
                data={
                    'timestamp': stamp,
                    'files': encoded_tree(files_for(f'fb {student}', shape['files'])),
                },
            )
    return stamps


def endpoints(shape, stamps) -> dict[str, tuple[tuple, str, dict]]:
    """Name -> (path segments, caller, query) of every endpoint measured."""
    course = shape['course']
    teacher = shape['instructors'][0]
    assignment = assignments_of(shape)[0]
    student = students_of(shape)[1]
    stamp = stamps[student][0]
    return {
        'courses (admin)': (('courses',), ADMIN, {}),
        'courses (instructor)': (('courses',), teacher, {}),
        'courses (student)': (('courses',), student, {}),
        'instructors': (('instructors', course), student, {}),
        'students': (('students', course), teacher, {}),
        'assignments': (('assignments', course), student, {}),
        'submissions': (('submissions', course, assignment), teacher, {}),
        'student submissions (instructor)': (
            ('submissions', course, assignment, student),
            teacher,
            {},
        ),
        'student submissions (student)': (
            ('submissions', course, assignment, student),
            student,
            {},
        ),
        'assignment list_only': (
            ('assignment', course, assignment),
            student,
            {'list_only': 'true'},
        ),
        'assignment': (('assignment', course, assignment), student, {}),
        'submission latest': (
            ('submission', course, assignment, student),
            teacher,
            {},
        ),
        'submission at timestamp': (
            ('submission', course, assignment, student),
            teacher,
            {'timestamp': stamp},
        ),
        'submission list_only': (
            ('submission', course, assignment, student),
            teacher,
            {'list_only': 'true'},
        ),
        'feedback (student)': (
            ('feedback', course, assignment, student),
            student,
            {'timestamp': stamp},
        ),
        'feedback (instructor)': (
            ('feedback', course, assignment, student),
            teacher,
            {'timestamp': stamp, 'list_only': 'true'},
        ),
    }


def expected_sizes(shape, name: str, answer: dict, courses: int) -> None:
    """The answer really is about the course of ``shape`` (so that equal
    counts compare a small list with a large one)."""
    sizes = {
        'courses (admin)': ('courses', courses),
        'courses (instructor)': ('courses', 1),
        'courses (student)': ('courses', 1),
        'instructors': ('instructors', len(shape['instructors'])),
        'students': ('students', shape['students']),
        'assignments': ('assignments', shape['assignments']),
        'submissions': ('submissions', shape['students'] * shape['submissions']),
        'student submissions (instructor)': ('submissions', shape['submissions']),
        'student submissions (student)': ('submissions', shape['submissions']),
    }
    key, size = sizes.get(name, ('files', shape['files']))
    assert len(answer[key]) == size, (name, answer)


async def measure(srv, shape, stamps, courses) -> dict[str, list]:
    counts = {}
    for name, (segments, user, params) in endpoints(shape, stamps).items():
        answer, seen = await srv.counted(segments, user=user, params=params)
        expected_sizes(shape, name, answer, courses)
        counts[name] = seen
    return counts


def describe(seen) -> str:
    return '\n'.join(f'  {statement} {parameters!r}' for statement, parameters in seen)


def queries(seen) -> list[tuple[str, object]]:
    """The statements of ``seen`` but the transaction control SQLite sends."""
    return [
        (statement, parameters)
        for statement, parameters in seen
        if statement.strip().upper() not in TRANSACTION_CONTROL
    ]


async def test_list_endpoints_cost_constant_statements(server):
    small_stamps = await populate(server, SMALL)
    small = await measure(server, SMALL, small_stamps, courses=1)
    large_stamps = await populate(server, LARGE)
    for i in range(OTHER_COURSES):
        await server.request('POST', ('course', f'Other {i}'), user=ADMIN)
    large = await measure(server, LARGE, large_stamps, courses=2 + OTHER_COURSES)

    assert small.keys() == large.keys()
    for name in small:
        assert len(small[name]) == len(large[name]), (
            f'{name}: {len(small[name])} statements for {SMALL["students"]} '
            f'students, {len(large[name])} for {LARGE["students"]}\n'
            f'small:\n{describe(small[name])}\nlarge:\n{describe(large[name])}'
        )
        assert 1 <= len(queries(large[name])) <= BUDGET, (
            f'{name}: {len(queries(large[name]))} queries > {BUDGET}\n'
            + describe(large[name])
        )
    assert_plans_use_indexes(server.runtime.engine, large)


# --------------------------------------------------------------------------
# Query plans of the list statements

# Statements that read every row on purpose (an admin's list of courses).
FULL_READS = ('SELECT courses.id \nFROM courses',)
SQLITE_FULL_SCAN = re.compile(r'\bSCAN (\w+)')


def assert_plans_use_indexes(engine, measured: dict[str, list]) -> None:
    """No statement of ``measured`` reads a whole table.

    SQLite: no ``SCAN`` in ``EXPLAIN QUERY PLAN`` (an index lookup is
    ``SEARCH``). PostgreSQL: tiny tables make a sequential scan the cheapest
    plan, so the planner is told to avoid them; a ``Seq Scan`` that remains
    has no index to use instead.
    """
    plans = {}
    with engine.connect() as connection:
        postgres = connection.dialect.name == 'postgresql'
        if postgres:
            connection.execute(text('SET enable_seqscan = off'))
        explain = 'EXPLAIN ' if postgres else 'EXPLAIN QUERY PLAN '
        for name, seen in measured.items():
            for statement, parameters in queries(seen):
                if statement.startswith(FULL_READS) and 'WHERE' not in statement:
                    continue
                rows = connection.exec_driver_sql(explain + statement, parameters)
                plans[name, statement] = '\n'.join(str(row[-1]) for row in rows)
        connection.rollback()
    assert len(plans) >= len(measured) - 1
    for (name, statement), plan in plans.items():
        if postgres:
            assert 'Seq Scan' not in plan, f'{name}:\n{statement}\n{plan}'
        else:
            assert not SQLITE_FULL_SCAN.search(plan), f'{name}:\n{statement}\n{plan}'
