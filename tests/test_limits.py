"""Upload limits: --max-body-size and --max-file-size.

One stand-alone server with ``--max-body-size 1M --max-file-size 256K``
serves the module. A body over the limit is answered 413 ``Request too
large`` as JSON (the client reads the answer: the body is drained, not
the connection reset), with ``Content-Length`` or chunked; a file over the
limit in a body under it is answered 413 ``File too large``. Either way
nothing is stored (the storage folder is unchanged and the API knows no new
submission or assignment) and the server goes on serving. Bodies and files
of exactly the limit are accepted. The flags take sizes such as ``512K``,
``2M``, ``1G`` or plain bytes, and refuse anything else at start-up.

The defaults accepting a 100 MB file in one request is tested by
``tests/test_big_files.py`` (its server runs with the default limits).
"""

from __future__ import annotations

import itertools
import json
import socket
import urllib.parse

import pytest
import requests
from _api import err, ok, tree
from _servers import run_ngshare, start_server

from ngshare import cli
from ngshare.cli import build_parser, parse_size
from ngshare.config import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_FILE_SIZE

pytestmark = pytest.mark.both_storages

KIB = 1024
MIB = 1024 * KIB
BODY_LIMIT = 1 * MIB
FILE_LIMIT = 256 * KIB
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
FORM = {'Content-Type': 'application/x-www-form-urlencoded'}

_counter = itertools.count(1)


@pytest.fixture(scope='module')
def server(tmp_path_factory, ngshare_storage):
    workdir = tmp_path_factory.mktemp('limits-server')
    started = start_server(
        workdir,
        hub_mode=False,
        args=['--max-body-size', '1M', '--max-file-size', '256K'],
        **ngshare_storage.options(workdir),
    )
    yield started
    started.stop()


@pytest.fixture
def course(server):
    """A fresh course with an instructor, a student and assignment ps1."""
    name = f'limits {next(_counter)}'
    ok(
        server.post(
            ('course', name),
            user='root',
            data={'instructors': json.dumps([INSTRUCTOR])},
        )
    )
    ok(
        server.post(
            ('student', name, STUDENT),
            user=INSTRUCTOR,
            data={'first_name': 'L', 'last_name': 'L', 'email': 'l@example.org'},
        )
    )
    ok(
        server.post(
            ('assignment', name, 'ps1'),
            user=INSTRUCTOR,
            data={'files': tree({'ps1.ipynb': b'{}'})},
        )
    )
    return name


def form(files: dict[str, bytes], user: str, length: int | None = None) -> bytes:
    """The form body of an upload, padded to exactly ``length`` bytes."""
    body = urllib.parse.urlencode({'files': tree(files), 'user': user}).encode()
    if length is not None:
        padding = length - len(body) - len(b'&pad=')
        assert padding >= 0, 'the files do not fit in the length asked for'
        body += b'&pad=' + b'x' * padding
        assert len(body) == length
    return body


def stored(server) -> dict[str, int]:
    """Everything the server stored (folder or bucket), with its size."""
    return server.blobs.sizes()


def submissions_of(server, course) -> list:
    return ok(server.get(('submissions', course, 'ps1', STUDENT), user=STUDENT))[
        'submissions'
    ]


def post(server, path, body, *, chunked: bool = False) -> requests.Response:
    if chunked:
        # A generator body: requests sends it with Transfer-Encoding: chunked.
        def pieces():
            for start in range(0, len(body), 64 * KIB):
                yield body[start : start + 64 * KIB]

        data = pieces()
    else:
        data = body
    return requests.post(server.url(path), data=data, headers=FORM, timeout=60)


def assert_still_serving(server, course) -> None:
    """A normal request after a refused one succeeds (same server)."""
    answer = ok(
        server.post(
            ('submission', course, 'ps1'),
            user=STUDENT,
            data={'files': tree({'ps1.ipynb': b'{"cells": []}'})},
        )
    )
    assert [s['timestamp'] for s in submissions_of(server, course)] == [
        answer['timestamp']
    ]


# Bodies


@pytest.mark.parametrize('chunked', [False, True], ids=['content-length', 'chunked'])
@pytest.mark.parametrize('over', [1, 2 * MIB], ids=['1-byte-over', '3M'])
def test_body_over_the_limit(server, course, chunked, over):
    before = stored(server)
    body = form({'ps1.ipynb': b'x' * 1000}, STUDENT, length=BODY_LIMIT + over)
    resp = post(server, ('submission', course, 'ps1'), body, chunked=chunked)
    err(resp, 413, 'Request too large')
    assert resp.json() == {'success': False, 'message': 'Request too large'}
    assert stored(server) == before
    assert submissions_of(server, course) == []
    assert_still_serving(server, course)


@pytest.mark.parametrize('chunked', [False, True], ids=['content-length', 'chunked'])
def test_body_of_exactly_the_limit(server, course, chunked):
    content = b'y' * FILE_LIMIT
    body = form({'ps1.ipynb': content}, STUDENT, length=BODY_LIMIT)
    resp = post(server, ('submission', course, 'ps1'), body, chunked=chunked)
    timestamp = ok(resp)['timestamp']
    assert [s['timestamp'] for s in submissions_of(server, course)] == [timestamp]


def test_release_over_the_body_limit(server, course):
    before = stored(server)
    body = form({'a.txt': b'a'}, INSTRUCTOR, length=BODY_LIMIT + 1)
    err(post(server, ('assignment', course, 'ps2'), body), 413, 'Request too large')
    assert stored(server) == before
    err(
        server.get(('assignment', course, 'ps2'), user=STUDENT),
        404,
        'Assignment not found',
    )
    assert ok(server.get(('assignments', course), user=STUDENT))['assignments'] == [
        'ps1'
    ]


def test_body_beyond_the_drain_limit_closes_the_connection(server, course):
    """Beyond 16 times the limit the body is not read: the connection closes."""
    before = stored(server)
    with socket.create_connection(('127.0.0.1', server.port), timeout=60) as sock:
        path = server.prefix + 'submission/' + urllib.parse.quote(course) + '/ps1'
        sock.sendall(
            f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Type: application/x-www-form-urlencoded\r\n'
            f'Content-Length: {16 * BODY_LIMIT + 1}\r\n\r\n'.encode()
        )
        received = b''
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    # Tornado refuses the request line and headers as they are (a bare 400,
    # not the JSON envelope) and closes the connection without reading on.
    assert received == b'HTTP/1.1 400 Bad Request\r\n\r\n'
    assert stored(server) == before
    assert submissions_of(server, course) == []
    assert_still_serving(server, course)


# Files


@pytest.mark.parametrize('size', [FILE_LIMIT + 1, FILE_LIMIT + 2, 300 * KIB])
def test_file_over_the_limit_in_a_body_under_it(server, course, size):
    before = stored(server)
    body = form({'ps1.ipynb': b'{}', 'data.bin': b'z' * size}, STUDENT)
    assert len(body) < BODY_LIMIT
    err(post(server, ('submission', course, 'ps1'), body), 413, 'File too large')
    assert stored(server) == before
    assert submissions_of(server, course) == []
    assert_still_serving(server, course)


def test_release_with_a_file_over_the_limit(server, course):
    before = stored(server)
    body = form({'a.txt': b'a', 'big.bin': b'b' * (FILE_LIMIT + 1)}, INSTRUCTOR)
    err(post(server, ('assignment', course, 'ps2'), body), 413, 'File too large')
    assert stored(server) == before
    err(
        server.get(('assignment', course, 'ps2'), user=INSTRUCTOR),
        404,
        'Assignment not found',
    )


def test_files_of_exactly_the_limit(server, course):
    files = {'a.bin': b'a' * FILE_LIMIT, 'b.bin': b'b' * FILE_LIMIT}
    body = form(files, STUDENT)
    assert len(body) < BODY_LIMIT
    ok(post(server, ('submission', course, 'ps1'), body))
    timestamp = submissions_of(server, course)[0]['timestamp']
    answer = ok(
        server.get(
            ('submission', course, 'ps1', STUDENT),
            user=INSTRUCTOR,
            params={'timestamp': timestamp, 'list_only': 'true'},
        )
    )
    assert [f['path'] for f in answer['files']] == ['a.bin', 'b.bin']


def test_line_breaks_and_spaces_do_not_count_towards_the_file_size(server, course):
    """The early size check counts base64 characters, not blanks."""
    content = b'q' * (FILE_LIMIT - 3)
    text = tree({'a.bin': content}, line_breaks=True)
    entries = json.loads(text)
    entries[0]['content'] = ' '.join(entries[0]['content'])  # doubles its length
    body = urllib.parse.urlencode({'files': json.dumps(entries), 'user': STUDENT})
    assert len(body) < BODY_LIMIT
    ok(post(server, ('submission', course, 'ps1'), body.encode()))


# Flags


@pytest.mark.parametrize(
    ('text', 'size'),
    [
        ('512K', 512 * KIB),
        ('2M', 2 * MIB),
        ('1G', 1024 * MIB),
        ('1048576', MIB),
        ('100m', 100 * MIB),
        ('64KiB', 64 * KIB),
    ],
)
def test_size_syntax(text, size):
    assert parse_size(text) == size


def test_defaults():
    args = build_parser().parse_args([])
    assert args.max_body_size == DEFAULT_MAX_BODY_SIZE == 512 * MIB
    assert args.max_file_size == DEFAULT_MAX_FILE_SIZE == 128 * MIB


@pytest.mark.parametrize(
    'sizes',
    [['--max-body-size', '2M', '--max-file-size', '512K'], ['--max-body-size=1G']],
)
def test_sizes_accepted_at_start_up(tmp_path, sizes):
    started = start_server(tmp_path, hub_mode=False, args=sizes)
    try:
        assert started.running
        resp = requests.get(started.base + '/healthz', timeout=30)
        assert resp.status_code == 200
    finally:
        started.stop()


@pytest.mark.parametrize('flag', ['--max-body-size', '--max-file-size'])
@pytest.mark.parametrize('value', ['0', '-1', 'abc', '', '1.5M', '12X'])
def test_sizes_refused_at_start_up(tmp_path, flag, value):
    done = run_ngshare(
        [
            '--vngshare',
            '--database',
            f'sqlite:///{tmp_path / "db.sqlite"}',
            '--storage',
            str(tmp_path / 'files'),
            f'{flag}={value}',
        ]
    )
    assert done.returncode == 2, done.output
    assert f'argument {flag}: not a size: {value!r}' in done.stderr
    assert 'Traceback' not in done.output
    assert not (tmp_path / 'db.sqlite').exists()


def test_negative_size_as_a_separate_argument(tmp_path):
    done = run_ngshare(['--vngshare', '--max-body-size', '-1'])
    assert done.returncode == 2, done.output
    assert '--max-body-size' in done.stderr
    assert 'Traceback' not in done.output


def test_buffered_size_defaults_to_two_largest_bodies():
    args = build_parser().parse_args(['--max-body-size', '2G'])
    assert cli.config_from(args, {}).max_buffered_size == 4 * 1024 * MIB
    args = build_parser().parse_args(['--max-buffered-size', '3G'])
    assert cli.config_from(args, {}).max_buffered_size == 3 * 1024 * MIB
    assert cli.config_from(build_parser().parse_args([]), {}).max_buffered_size == (
        1024 * MIB
    )


def test_buffered_size_below_the_body_limit_is_refused(tmp_path):
    done = run_ngshare(
        [
            '--vngshare',
            '--database',
            f'sqlite:///{tmp_path / "db.sqlite"}',
            '--storage',
            str(tmp_path / 'files'),
            '--max-body-size=100M',
            '--max-buffered-size=50M',
        ]
    )
    assert done.returncode == 1, done.output
    assert 'ngshare: error: --max-buffered-size must be at least --max-body-size' in (
        done.stderr
    )
    assert not (tmp_path / 'db.sqlite').exists()
