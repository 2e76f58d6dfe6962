"""Directory trees: byte-exact round trips, base64 forms, checksums, paths.

Every upload kind (assignment, submission, feedback) is exercised the same
way. One stand-alone server serves the whole module; every test works in a
course of its own, so tests do not see each other's objects.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from pathlib import Path

import pytest
from _api import b64, err, files_of, md5, ok, tree
from _servers import start_server

ADMIN = 'root'
BASE = 'base'
KINDS = ('assignment', 'submission', 'feedback')

_counter = itertools.count(1)
# What the server's folder holds beside the storage right after start-up.
_BASELINE: dict[str, set] = {}


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    started = start_server(tmp_path_factory.mktemp('files-server'), hub_mode=False)
    _BASELINE['outside'] = outside_storage(started)
    yield started
    started.stop()


class Course:
    """A fresh course: kevin teaches lawrence; BASE released and submitted."""

    def __init__(self, server):
        self.server = server
        self.name = f'files {next(_counter)}'
        ok(
            server.post(
                ('course', self.name),
                user=ADMIN,
                data={'instructors': json.dumps(['kevin'])},
            )
        )
        ok(
            server.post(
                ('student', self.name, 'lawrence'),
                user='kevin',
                data={'first_name': 'L', 'last_name': 'L', 'email': 'l@x'},
            )
        )
        ok(
            server.post(
                ('assignment', self.name, BASE),
                user='kevin',
                data={'files': tree({'base.txt': b'base'})},
            )
        )
        self.base_stamp = ok(
            server.post(
                ('submission', self.name, BASE),
                user='lawrence',
                data={'files': tree({'base.txt': b'answer'})},
            )
        )['timestamp']

    def upload(self, kind, files_json, *, name='upload'):
        """Send a tree as ``kind``; return (response, handle for download)."""
        server = self.server
        if kind == 'assignment':
            resp = server.post(
                ('assignment', self.name, name),
                user='kevin',
                data={'files': files_json},
            )
            return resp, name
        if kind == 'submission':
            resp = server.post(
                ('submission', self.name, BASE),
                user='lawrence',
                data={'files': files_json},
            )
            stamp = resp.json().get('timestamp') if resp.status_code == 200 else None
            return resp, stamp
        resp = server.post(
            ('feedback', self.name, BASE, 'lawrence'),
            user='kevin',
            data={'timestamp': self.base_stamp, 'files': files_json},
        )
        return resp, self.base_stamp

    def download(self, kind, handle, **params):
        server = self.server
        if kind == 'assignment':
            return server.get(
                ('assignment', self.name, handle), user='lawrence', params=params
            )
        if kind == 'submission':
            return server.get(
                ('submission', self.name, BASE, 'lawrence'),
                user='kevin',
                params={'timestamp': handle, **params},
            )
        return server.get(
            ('feedback', self.name, BASE, 'lawrence'),
            user='lawrence',
            params={'timestamp': handle, **params},
        )

    def round_trip(self, kind, files_json, **params):
        resp, handle = self.upload(kind, files_json)
        ok(resp)
        return ok(self.download(kind, handle, **params))

    def state(self, kind):
        """What a failed upload of ``kind`` must leave unchanged."""
        server = self.server
        if kind == 'assignment':
            return ok(server.get(('assignments', self.name), user='kevin'))
        if kind == 'submission':
            return ok(server.get(('submissions', self.name, BASE), user='kevin'))
        return ok(self.download('feedback', self.base_stamp))

    def assert_nothing_stored(self, kind, failed_name='upload'):
        if kind == 'assignment':
            err(self.download('assignment', failed_name), 404, 'Assignment not found')
            assert self.state(kind)['assignments'] == [BASE]
        elif kind == 'submission':
            assert self.state(kind)['submissions'] == [
                {'student_id': 'lawrence', 'timestamp': self.base_stamp}
            ]
        else:
            assert self.state(kind)['files'] == []


def snapshot(root):
    """Every file under ``root``: relative path -> content."""
    result = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, 'rb') as stream:
                result[os.path.relpath(full, root)] = stream.read()
    return result


def outside_storage(server):
    """Paths under the server's working folder but not in its storage.

    The database and the logs are left out: they change with every request.
    """
    storage = Path(server.storage).resolve()
    found = set()
    for dirpath, dirs, names in os.walk(server.workdir):
        here = Path(dirpath).resolve()
        dirs[:] = [d for d in dirs if (here / d).resolve() != storage]
        for name in names + dirs:
            if name.startswith('ngshare.'):
                continue
            found.add(os.path.relpath(os.path.join(dirpath, name), server.workdir))
    return found


# Round trips


ALL_BYTES = bytes(range(256))
FILES = {
    'all-bytes.bin': ALL_BYTES,
    'reversed.bin': ALL_BYTES[::-1] * 3,
    'empty.txt': b'',
    'a/b/c/d.bin': b'\x00\x00\xff\xfe nested',
    'with space/file name.ipynb': b'{"cells": []}\n',
    'zoë/课程 1 — notes.md': 'unicode ✓ content\r\n'.encode(),
    'crlf.txt': b'line\r\nline\rline\n',
    '.hidden': b'dot file',
    '%41+b=c&d?.txt': b'url-ish name',
}


@pytest.mark.parametrize('kind', KINDS)
def test_binary_round_trip(server, kind):
    course = Course(server)
    answer = course.round_trip(kind, tree(FILES))
    assert files_of(answer) == FILES
    assert [f['path'] for f in answer['files']] == list(FILES)
    for entry in answer['files']:
        assert set(entry) == {'path', 'checksum', 'content'}
        # Answers are plain base64 without line breaks.
        assert entry['content'] == b64(FILES[entry['path']])


@pytest.mark.parametrize('kind', KINDS)
def test_large_random_file(server, kind):
    course = Course(server)
    big = os.urandom(3 * 1024 * 1024 + 17)
    answer = course.round_trip(kind, tree({'big.bin': big, 'small.txt': b's'}))
    files = files_of(answer)
    assert files['big.bin'] == big
    assert files['small.txt'] == b's'
    listing = ok(
        course.download(kind, _handle_of(course, kind, answer), list_only='true')
    )
    assert listing['files'] == [
        {'path': 'big.bin', 'checksum': md5(big)},
        {'path': 'small.txt', 'checksum': md5(b's')},
    ]


def _handle_of(course, kind, answer):
    if kind == 'assignment':
        return 'upload'
    return answer['timestamp']


@pytest.mark.parametrize('kind', KINDS)
def test_list_only_checksums(server, kind):
    course = Course(server)
    answer = course.round_trip(kind, tree(FILES), list_only='true')
    assert answer['files'] == [
        {'path': path, 'checksum': md5(content)} for path, content in FILES.items()
    ]


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('separator', ['\n', '\r\n'], ids=['lf', 'crlf'])
def test_base64_with_line_breaks(server, kind, separator):
    course = Course(server)
    content = os.urandom(1000)
    text = b64(content)
    broken = separator.join(text[i : i + 76] for i in range(0, len(text), 76))
    assert separator in broken
    entries = [
        {'path': 'broken.bin', 'content': broken + separator},
        {'path': 'plain.bin', 'content': b64(ALL_BYTES)},
    ]
    answer = course.round_trip(kind, json.dumps(entries))
    assert files_of(answer) == {'broken.bin': content, 'plain.bin': ALL_BYTES}
    assert answer['files'][0]['content'] == text


@pytest.mark.parametrize('kind', KINDS)
def test_helper_line_breaks(server, kind):
    course = Course(server)
    content = os.urandom(5000)
    answer = course.round_trip(kind, tree({'x.bin': content}, line_breaks=True))
    assert files_of(answer) == {'x.bin': content}


# Checksums


@pytest.mark.parametrize('kind', KINDS)
def test_correct_checksums_accepted(server, kind):
    course = Course(server)
    answer = course.round_trip(kind, tree(FILES, checksums=True))
    assert files_of(answer) == FILES


@pytest.mark.parametrize('kind', KINDS)
def test_wrong_checksum_rejected(server, kind):
    course = Course(server)
    good = {'good.bin': os.urandom(2000), 'also-good.bin': os.urandom(2000)}
    entries = json.loads(tree(good, checksums=True))
    wrong = os.urandom(2000)
    entries.insert(
        1, {'path': 'wrong.bin', 'content': b64(wrong), 'checksum': md5(wrong + b'!')}
    )
    storage_before = snapshot(server.storage)
    resp, _ = course.upload(kind, json.dumps(entries))
    err(resp, 400, 'Checksum mismatch')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before


@pytest.mark.parametrize('kind', KINDS)
def test_failed_upload_stores_no_blob(server, kind):
    course = Course(server)
    entries = [
        {'path': 'fresh.bin', 'content': b64(os.urandom(3000))},
        {'path': 'broken.bin', 'content': '###'},
    ]
    storage_before = snapshot(server.storage)
    resp, _ = course.upload(kind, json.dumps(entries))
    err(resp, 400, 'Content cannot be base64 decoded')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before


def test_checksum_answer_is_md5_of_stored_content(server):
    course = Course(server)
    content = b'checksum me'
    answer = course.round_trip('assignment', tree({'c.txt': content}))
    assert answer['files'][0]['checksum'] == md5(content)
    assert base64.b64decode(answer['files'][0]['content']) == content


# Illegal paths


ILLEGAL_PATHS = [
    '/abs',
    '../x',
    'a/../b',
    './a',
    'a/./b',
    'a//b',
    'a/',
    '',
    '.',
    '..',
    'a\\b',
    'a\x00b',
    'a\nb',
    'a\tb',
    '\x7f',
    'x/../../../escaped',
]


def _entries_with(path):
    return [
        {'path': 'ok.txt', 'content': b64(b'ok')},
        {'path': path, 'content': b64(b'evil ' + path.encode('utf-8', 'replace'))},
    ]


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('path', ILLEGAL_PATHS, ids=repr)
def test_illegal_path(server, kind, path):
    course = Course(server)
    storage_before = snapshot(server.storage)
    outside_before = outside_storage(server)
    absolute_before = Path('/abs').exists()
    resp, _ = course.upload(kind, json.dumps(_entries_with(path)))
    err(resp, 400, 'Illegal path')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before
    assert outside_storage(server) == outside_before
    assert Path('/abs').exists() == absolute_before


@pytest.mark.parametrize('kind', KINDS)
def test_duplicate_path(server, kind):
    course = Course(server)
    entries = [
        {'path': 'dup.txt', 'content': b64(b'one')},
        {'path': 'other.txt', 'content': b64(b'other')},
        {'path': 'dup.txt', 'content': b64(b'two')},
    ]
    storage_before = snapshot(server.storage)
    resp, _ = course.upload(kind, json.dumps(entries))
    err(resp, 400, 'Illegal path')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before


# Paths that are legal one by one but not in a file system: over its limits
# (255 bytes a component, 4,096 a path, 64 levels), not storable as UTF-8
# (a lone surrogate, from a JSON escape), or a file where a folder must be.
UNWRITABLE_PATHS = {
    'component of 256 bytes': 'x' * 256,
    'component of 256 UTF-8 bytes': 'dir/' + 'é' * 128,
    'path of 4,097 bytes': '/'.join(['y' * 240] * 16 + ['y' * 241]),
    'depth 65': '/'.join(['d'] * 65),
    '20,000 levels': '/'.join(['a'] * 20_000),
    'lone high surrogate': 'a\ud800.txt',
    'lone low surrogate': 'dir/\udfff',
}


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('path', UNWRITABLE_PATHS.values(), ids=UNWRITABLE_PATHS)
def test_unwritable_path(server, kind, path):
    course = Course(server)
    storage_before = snapshot(server.storage)
    resp, _ = course.upload(kind, json.dumps(_entries_with(path)))
    err(resp, 400, 'Illegal path')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before


# A file whose path is a folder of another's cannot be written out: nbgrader
# collect would stop at it with FileExistsError for the whole class.
PREFIX_CONFLICTS = {
    'file then file in it': ['a', 'a/b'],
    'file in it first': ['a/b', 'a'],
    'deeper': ['a/b', 'a/b/c'],
    'far deeper, among others': ['x/y', 'a b', 'x', 'x y', 'x/y/z/w'],
}


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('paths', PREFIX_CONFLICTS.values(), ids=PREFIX_CONFLICTS)
def test_file_and_folder_of_one_name(server, kind, paths):
    course = Course(server)
    storage_before = snapshot(server.storage)
    files = {path: b'content of ' + path.encode() for path in paths}
    resp, _ = course.upload(kind, tree(files))
    err(resp, 400, 'Illegal path')
    course.assert_nothing_stored(kind)
    assert snapshot(server.storage) == storage_before


# Just within every limit, and names that only look like a conflict.
WRITABLE_EDGES = {
    'component of 255 bytes': {'z' * 255: b'1'},
    'component of 255 UTF-8 bytes': {'é' * 127 + 'e': b'2'},
    'path of 4,096 bytes': {'/'.join(['y' * 240] * 17): b'3'},
    'depth 64': {'/'.join(['d'] * 64): b'4'},
    'astral characters': {'\U0001f600/\U0001f4da.txt': b'5'},
    'siblings sharing a prefix': {'a': b'6', 'a b/c': b'7', 'ab/c': b'8', 'a.b': b''},
}


@pytest.mark.parametrize('files', WRITABLE_EDGES.values(), ids=WRITABLE_EDGES)
def test_paths_within_the_limits(server, files):
    course = Course(server)
    answer = course.round_trip('assignment', tree(files))
    assert files_of(answer) == files


@pytest.mark.parametrize('kind', KINDS)
def test_deeply_nested_json(server, kind):
    """JSON nested past the interpreter's recursion limit is not JSON here."""
    course = Course(server)
    depth = 100_000
    for files_json in (
        '[' * depth + ']' * depth,
        '[{"path": "a", "content": "", "x": '
        + '{"a": ' * depth
        + '1'
        + '}' * depth
        + '}]',
    ):
        resp, _ = course.upload(kind, files_json)
        err(resp, 400, 'Files cannot be JSON decoded')
        course.assert_nothing_stored(kind)
    assert 'Traceback' not in server.log_text()


@pytest.mark.parametrize('path', ['a..b', '..a', 'a..', '...', 'a b/ c ', '-x', '~'])
def test_unusual_but_legal_paths(server, path):
    course = Course(server)
    answer = course.round_trip('assignment', tree({path: b'legal'}))
    assert files_of(answer) == {path: b'legal'}


def test_nothing_escaped_the_storage(server):
    """After every upload of this module: no stray file beside the storage."""
    assert outside_storage(server) == _BASELINE['outside']
    assert not Path(server.workdir.parent / 'x').exists()
    assert not Path(server.workdir.parent / 'escaped').exists()
