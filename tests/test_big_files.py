"""Big files: a 100 MB file up and down, byte-exact, in bounded server memory.

A submission with a file of nbgrader's default per-file limit (100 MB) is
uploaded as the nbgrader exchange sends it (one form-encoded ``files``
field, base64 contents) under the default limits, and collected again; a
tree of four 25 MB files is released and fetched. The test process never
holds a whole file: bodies are generated while they are sent
(:class:`_transfer.FormBody`), answers checked while they arrive
(:class:`_transfer.TreeStream`), by md5.

The server's peak memory is read from ``/proc/<pid>/status`` (``VmHWM``,
the high-water mark of its resident set) before and after each transfer;
every download runs in a freshly started server on the same files, so that
its peak is its own. While each transfer is in flight (the upload stopped
half-way, the download not read further), ``/healthz`` must answer: the
event loop is never blocked by a transfer.

The figures are printed (``pytest -s``) and recorded in
``docs/performance.md``.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import json
import random
import re
import time
import tracemalloc
import urllib.parse
from pathlib import Path

import pytest
import requests
from _api import ok
from _transfer import MIB, FormBody, TreeStream, proc_status_kb
from tornado.escape import parse_qs_bytes
from tornado.web import RequestHandler

from ngshare.errors import ApiError
from ngshare.filetree import decode_content, parse_tree
from ngshare.handlers import forms

pytestmark = pytest.mark.skipif(
    not Path('/proc/self/status').exists(), reason='reads /proc/<pid>/status'
)

# nbgrader leaves out files larger than CourseDirectory.max_file_size
# (default 100000) kB: 100 MB is the largest file it sends by default.
NBGRADER_LIMIT = 100_000 * 1000
COURSE = 'big 101'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'

# Upload budget. The body is about 1.42 times the file (base64: 4/3; form
# encoding of '+', '/', '='). It is the only copy of itself: percent-decoded
# in place (ngshare/handlers/forms.py), its ``files`` value read from there
# by the tree decoder (ngshare/large_tree.py), which adds the decoded files
# (1x): 2.42 times the files at the peak. Measured: +2.45x for one 100 MB
# file and for 4 x 25 MB (+3.77x and +3.0x with a str of the text and its
# JSON-decoded contents; ngshare 0.6.0's way of parsing: +9.75x). 3x (the
# target of issue 15) plus a fixed 16 MiB leaves room for the allocator;
# any extra copy of the files (1x) or of the text (1.33x) fails.
UPLOAD_FACTOR = 3.0
UPLOAD_OVERHEAD = 16 * MIB
# The same budget for the decoding alone, counted by tracemalloc: the body
# as received (grown by appending, as the server does) and all that its
# decoding allocates, at most 3x the file at the peak (2.49x measured).
DECODING_FACTOR = 3.0
# Download budget. Answers are written out in pieces of 768 KiB of a file
# (1 MiB of base64), so the server's memory does not grow with file size:
# measured +6 MiB for one 100 MB file and for 4 x 25 MB. 32 MiB is a third
# of one 100 MB file (and a bit more than one 25 MB file): holding any one
# file whole (let alone the tree several times over, +5.3x of one file
# when files were written whole) fails.
DOWNLOAD_BUDGET = 32 * MIB
# How long to wait for something that must happen (a failure, not a
# measurement, if it does not).
PATIENCE = 120


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'still waiting for {what} after {PATIENCE}s')
        time.sleep(0.02)


def peak_kb(server) -> int:
    return proc_status_kb(server.proc.pid)['VmHWM']


def resident_kb(server) -> int:
    return proc_status_kb(server.proc.pid)['VmRSS']


def healthz(server) -> None:
    resp = requests.get(server.base + '/healthz', timeout=PATIENCE)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {'success': True}


def make_course(server) -> None:
    ok(
        server.post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([INSTRUCTOR])},
        )
    )
    ok(
        server.post(
            ('student', COURSE, STUDENT),
            user=INSTRUCTOR,
            data={'first_name': 'L', 'last_name': 'L', 'email': 'l@example.org'},
        )
    )


def upload(server, path, body: FormBody) -> tuple[dict, int]:
    """POST ``body``; ``/healthz`` must answer while it is half sent.

    Returns the answer and the rise of the server's peak memory (bytes).
    """
    before = peak_kb(server)
    resident_before = resident_kb(server) * 1024
    body.pause_at(body.length // 2)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sending = pool.submit(
            requests.post,
            server.url(path),
            data=body,
            headers=body.headers(),
            timeout=(30, PATIENCE),
        )
        try:
            wait_for(
                lambda: body.paused.is_set() or sending.done(), 'the body to pause'
            )
            assert not sending.done(), sending.result().text
            # The server has received a good part of what was sent so far:
            # it keeps the body it receives, so its memory grows by as much.
            wait_for(
                lambda: (
                    resident_kb(server) * 1024 - resident_before >= body.length // 4
                ),
                'the server to receive a quarter of the body',
            )
            healthz(server)
            # The upload cannot have completed: half of it is still unsent.
            assert not sending.done()
            assert body.sent == body.length // 2
        finally:
            body.resume.set()
        resp = sending.result()
    answer = ok(resp)
    return answer, (peak_kb(server) - before) * 1024


def download(server, path, user, min_length: int) -> tuple[TreeStream, int]:
    """GET a tree answer; ``/healthz`` must answer while it is half read.

    ``min_length`` is a size the whole answer is known to exceed. Returns
    the answer read and the rise of the server's peak memory (bytes).
    """
    before = peak_kb(server)
    tree = TreeStream()
    with requests.get(
        server.url(path), params={'user': user}, stream=True, timeout=PATIENCE
    ) as resp:
        assert resp.status_code == 200, resp.text
        pieces = resp.iter_content(MIB)
        tree.feed(next(pieces))
        healthz(server)
        # The answer is still being sent: the client has not read it.
        assert tree.received < min_length
        for piece in pieces:
            tree.feed(piece)
    assert tree.received >= min_length
    return tree, (peak_kb(server) - before) * 1024


def restart(start_ngshare, server):
    """A fresh server process on the same database and files."""
    server.stop()
    return start_ngshare(hub_mode=False, workdir=server.workdir)


def report(what: str, size: int, rise: int) -> None:
    print(
        f'\n{what}: {size / MIB:.1f} MiB of files, server peak RSS '
        f'+{rise / MIB:.1f} MiB ({rise / size:.2f}x)'
    )


# On a folder and on a bucket: one 100 MB blob stored whole and streamed
# back in bounded memory. The tree below adds nothing the store sees (four
# blobs instead of one) and runs on a folder only, to keep the suite short.
@pytest.mark.both_storages
def test_nbgrader_sized_submission_round_trip(start_ngshare, ngshare_storage):
    """One 100 MB file, default limits: submit, list, collect byte-exact."""
    server = start_ngshare(hub_mode=False)
    make_course(server)
    ok(
        server.post(
            ('assignment', COURSE, 'ps1'),
            user=INSTRUCTOR,
            data={'files': json.dumps([])},
        )
    )
    body = FormBody(
        {'ps1.ipynb': (5000, 1), 'data/big.bin': (NBGRADER_LIMIT, 2)}, user=STUDENT
    )
    answer, rise = upload(server, ('submission', COURSE, 'ps1'), body)
    report('upload (100 MB submission)', NBGRADER_LIMIT, rise)
    assert rise <= UPLOAD_FACTOR * NBGRADER_LIMIT + UPLOAD_OVERHEAD
    timestamp = answer['timestamp']
    listed = ok(server.get(('submissions', COURSE, 'ps1'), user=INSTRUCTOR))
    assert listed['submissions'] == [{'student_id': STUDENT, 'timestamp': timestamp}]
    assert NBGRADER_LIMIT in server.blobs.sizes().values()

    server = restart(start_ngshare, server)
    tree, rise = download(
        server,
        ('submission', COURSE, 'ps1', STUDENT),
        INSTRUCTOR,
        min_length=NBGRADER_LIMIT * 4 // 3,
    )
    report('download (100 MB submission)', NBGRADER_LIMIT, rise)
    assert rise <= DOWNLOAD_BUDGET
    assert tree.skeleton()['timestamp'] == timestamp
    assert tree.files() == {
        path: (body.md5[path], body.sizes[path]) for path in body.files
    }


def test_tree_of_four_25mb_files(start_ngshare):
    """Release 4 x 25 MB; a student fetches them in bounded memory."""
    size = 25 * 1000 * 1000
    server = start_ngshare(hub_mode=False)
    make_course(server)
    body = FormBody(
        {f'data/part{i}.bin': (size, 10 + i) for i in range(4)}, user=INSTRUCTOR
    )
    _answer, rise = upload(server, ('assignment', COURSE, 'ps2'), body)
    report('upload (4 x 25 MB assignment)', 4 * size, rise)
    assert rise <= UPLOAD_FACTOR * 4 * size + UPLOAD_OVERHEAD

    server = restart(start_ngshare, server)
    tree, rise = download(
        server, ('assignment', COURSE, 'ps2'), STUDENT, min_length=4 * size * 4 // 3
    )
    report('download (4 x 25 MB assignment)', 4 * size, rise)
    assert rise <= DOWNLOAD_BUDGET
    assert list(tree.files().items()) == [
        (path, (body.md5[path], body.sizes[path])) for path in body.files
    ]
    # list_only answers the same files without contents.
    listed = ok(
        server.get(
            ('assignment', COURSE, 'ps2'), user=STUDENT, params={'list_only': 'true'}
        )
    )
    assert [(f['path'], f['checksum']) for f in listed['files']] == [
        (path, body.md5[path]) for path in body.files
    ]
    assert all('content' not in f for f in listed['files'])


class _Handler:
    """What form_text needs of a handler: Tornado's own decode_argument."""

    decode_argument = RequestHandler.decode_argument


def test_decoding_a_20mb_upload_peaks_below_3x():
    """The body of a 20 MB upload, parsed and its tree decoded and hashed
    as the server does (in its worker pool), peaks at 3x the file at most,
    the body itself counted (tracemalloc: deterministic, this process)."""
    size = 20 * 1000 * 1000
    form = FormBody({'data/big.bin': (size, 3)}, user=STUDENT)
    tracemalloc.start()
    try:
        body = bytearray()
        while chunk := form.read(MIB):
            body += chunk
        del chunk
        assert len(body) == form.length
        owned = [body]
        del body
        fields = forms._form_fields(owned)
        assert [name for name, _ in fields] == ['files', 'user']
        text = forms.form_text(_Handler(), 'files', [fields[0][1]])
        del fields
        tree = parse_tree(text, NBGRADER_LIMIT)
        del text
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(f.path, f.checksum, len(f.content)) for f in tree] == [
        ('data/big.bin', form.md5['data/big.bin'], size)
    ]
    print(f'\ndecoding a 20 MB upload: peak {peak / MIB:.1f} MiB ({peak / size:.2f}x)')
    assert peak <= DECODING_FACTOR * size


# The decoding shortcuts behind the budgets decide exactly as before.


@pytest.mark.parametrize('piece', [3, 4, 5, 7, 1024 * 1024])
def test_form_decoding_matches_tornado(monkeypatch, piece):
    """parse_form == Tornado's parse_qs_bytes, whatever the escapes."""
    monkeypatch.setattr(forms, '_PIECE', piece)
    tokens = [
        b'%', b'=', b'&', b'+', b'2', b'5', b'3', b'D', b'd', b'a', b'F', b'g',
        b'\n', b'\r', b' ', b'\xff', b'%25', b'%3D', b'%3d', b'==', b'%%',
        b'%2B', b'%0a', b'%e2%82%ac',
    ]  # fmt: skip
    rng = random.Random(piece)
    for _ in range(5000):
        body = b''.join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        expected = parse_qs_bytes(body, keep_blank_values=True)
        got: dict[str, list[bytes]] = {}
        for name, value in forms.parse_form(bytearray(body)):
            got.setdefault(name, []).append(bytes(value))
        assert got == expected, body


# A '%' that does not start an escape (two hex digits).
_INVALID_ESCAPE = re.compile(rb'%(?![0-9A-Fa-f]{2})')


@pytest.mark.parametrize('piece', [3, 4, 7, 1024 * 1024])
def test_form_decoding_of_valid_escapes_matches_tornado(monkeypatch, piece):
    """The one-pass decoding (tried when there is no literal '=', CR or
    LF; kept when its length shows every escape valid) decides as Tornado
    does, for such bodies and for those with invalid escapes."""
    monkeypatch.setattr(forms, '_PIECE', piece)
    tokens = [
        b'a', b'Z', b'9', b'+', b'&', b'\n', b'\xff', b'%25', b'%3D', b'%3d',
        b'%2B', b'%2f', b'%0a', b'%0D', b'%00', b'%e2%82%ac', b'%%', b'%4', b'=',
    ]  # fmt: skip
    rng = random.Random(piece)
    one_pass = 0
    for _ in range(3000):
        body = b''.join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        expected = parse_qs_bytes(body, keep_blank_values=True)
        got: dict[str, list[bytes]] = {}
        for name, value in forms.parse_form(bytearray(body)):
            got.setdefault(name, []).append(bytes(value))
        assert got == expected, body
        values = [field.partition(b'=')[2] for field in body.split(b'&')]
        one_pass += all(
            not (b'=' in v or b'\n' in v or b'\r' in v or _INVALID_ESCAPE.search(v))
            for v in values
        )
    assert one_pass > 300  # the one-pass decoding was exercised


def test_form_decoding_of_a_tree():
    """A tree form-encoded as requests (the nbgrader exchange) encodes it."""
    content = base64.b64encode(bytes(range(256)) * 9).decode('ascii')
    files = json.dumps([{'path': 'a b/ü.txt', 'content': content}])
    body = urllib.parse.urlencode({'files': files, 'user': 'zoë'}).encode('ascii')
    assert forms.parse_form(bytearray(body)) == [
        ('files', files.encode('utf-8')),
        ('user', 'zoë'.encode()),
    ]


@pytest.mark.parametrize(
    'text',
    [
        '', 'YQ==', 'YQ', 'YWI=', 'YWJj', 'YQ==\n', 'Y Q = =', 'YQ\r\n==',
        '=', '==', 'YQ==YQ==', 'YQ=', 'Y===', 'éé==', 'YQ==\x00', 'YW\tJj',
        '!!!!', 'YQ=a', 'a' * 77,
    ],
)  # fmt: skip
def test_content_decoding_matches_b64decode(text):
    """decode_content == b64decode(validate=True) of the text without spaces."""
    try:
        stripped = text.encode('ascii')
        for blank in (b'\r', b'\n', b'\t', b' '):
            stripped = stripped.replace(blank, b'')
        expected = base64.b64decode(stripped, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        expected = None
    try:
        got = decode_content(text)
    except ApiError as error:
        assert (error.status, error.message) == (
            400,
            'Content cannot be base64 decoded',
        )
        got = None
    assert got == expected
