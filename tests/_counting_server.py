"""An in-process ngshare whose SQL statements are counted, and courses to
fill it with (``test_query_budget.py``, ``test_submit_budget.py``).

The server is built exactly as ``ngshare.cli.serve`` builds it (flags ->
Config -> runtime -> app) and listens on a loopback port inside the test's
event loop, so that a ``before_cursor_execute`` listener on its engine sees
every statement a request sends, and nothing else runs meanwhile. The
fixtures (``counting_server`` on ``counted_database_url``: SQLite and
PostgreSQL) are named so as not to clash with the ``server`` and
``database_url`` fixtures of other modules. ngshare and Tornado's client are
imported when a test asks for the server, not when pytest loads this plugin.

:func:`populate` creates a course of a given *shape* (instructors, students,
assignments, submissions, files) through the API, so that a test can ask
the same question about a small course and a large one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse

import pytest

ADMIN = 'root'
# On SQLite the BEGIN that opens each transaction is sent as a statement:
# it counts for comparisons, not for budgets (see :func:`queries`).
TRANSACTION_CONTROL = {'BEGIN', 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK'}
SMALL = {
    'course': 'Small 101',
    'instructors': ['teach-s'],
    'students': 3,
    'assignments': 1,
    'submissions': 2,
    'files': 2,
}


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


class CountingServer:
    """The running in-process server: its runtime, its API and its counter."""

    def __init__(self, runtime, client, port, statements):
        self.runtime = runtime
        self.client = client
        self.api = f'http://127.0.0.1:{port}{runtime.config.prefix}'
        self.statements = statements

    def url(self, segments, params=None) -> str:
        path = '/'.join(urllib.parse.quote(seg, safe='') for seg in segments)
        query = '?' + urllib.parse.urlencode(params) if params else ''
        return self.api + path + query

    async def request(self, method, segments, *, user, params=None, data=None):
        """The answer of a request that must succeed (200, ``success``)."""
        params = dict(params or {})
        if method == 'GET':
            params['user'] = user
            body = None
        else:
            body = urllib.parse.urlencode({**(data or {}), 'user': user})
        response = await self.client.fetch(
            self.url(segments, params),
            method=method,
            body=body,
            allow_nonstandard_methods=True,
            request_timeout=120,
            raise_error=False,
        )
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


@pytest.fixture(params=['sqlite', 'postgresql'])
def counted_database_url(request, tmp_path):
    if request.param == 'postgresql':
        return request.getfixturevalue('postgres_url')
    return f'sqlite:///{tmp_path / "ngshare.db"}'


@pytest.fixture
async def counting_server(counted_database_url, tmp_path):
    from sqlalchemy import event
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from ngshare import cli
    from ngshare.app import make_app

    sockets = bind_sockets(0, '127.0.0.1')
    port = sockets[0].getsockname()[1]
    args = cli.build_parser().parse_args(
        [
            '--vngshare',
            '--database',
            counted_database_url,
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
        yield CountingServer(runtime, AsyncHTTPClient(), port, statements)
    finally:
        http_server.stop()
        await http_server.close_all_connections()
        runtime.shutdown()
        event.remove(runtime.engine, 'before_cursor_execute', statements)
        runtime.engine.dispose()


# --------------------------------------------------------------------------
# What the statements were


def describe(seen) -> str:
    return '\n'.join(f'  {statement} {parameters!r}' for statement, parameters in seen)


def queries(seen) -> list[tuple[str, object]]:
    """The statements of ``seen`` but the transaction control SQLite sends."""
    return [
        (statement, parameters)
        for statement, parameters in seen
        if statement.strip().upper() not in TRANSACTION_CONTROL
    ]


# --------------------------------------------------------------------------
# Courses of a shape


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


async def populate(srv: CountingServer, shape) -> dict:
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
