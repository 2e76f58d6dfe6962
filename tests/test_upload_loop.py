"""A large upload never holds the event loop: every C call is on a piece.

The GIL is held for the whole of a C call such as ``json.loads`` or
``a2b_base64``, so a worker thread in one such call on a 68 MB text blocks
the event loop for 50-200 ms, however the work is spread over threads. The
documented encoding of an upload (one urlencoded ``files`` field, JSON with
base64 contents) is therefore decoded piece by piece
(``ngshare/handlers/forms.py``, ``ngshare/large_tree.py``):

* a 20 MB file is uploaded to the real in-process server while every C
  function of that path is watched (through the names the modules call it
  by): none reads more than a piece, none reads anything large on the
  event loop's thread, and the pieces add up to the whole content (so the
  piecewise way, not the plain way, was taken);
* the piecewise way decides exactly as the plain way does (``get_argument``,
  then :func:`ngshare.filetree.parse_tree` of the text, which
  ``tests/test_big_files.py`` pins to ``json.loads`` and ``b64decode``) on
  thousands of generated and mutated trees, with pieces and thresholds made
  small so that every boundary is crossed;
* the building blocks (windowed searches, in-place percent-decoding, the
  decoding of a long literal) agree with the plain functions they replace.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import threading

import pytest
import requests
from _api import ok
from _transfer import FormBody
from tornado.escape import parse_qs_bytes
from tornado.web import HTTPError, RequestHandler

import ngshare.blobs  # noqa: F401  (imported before filetree, as the app does)
from ngshare import large_tree
from ngshare.errors import ApiError
from ngshare.filetree import parse_tree
from ngshare.handlers import forms
from ngshare.large_tree import Base64Literal, BodySlice, TreeText

COURSE = 'loop 101'
INSTRUCTOR = 'kevin'
STUDENT = 'lawrence'
MIB = 1024 * 1024
# What a C call on the event loop's thread may read (a small request's).
LOOP_BUDGET = 64 * 1024


class Watch:
    """Records the input size and thread of every call of some functions."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.calls: dict[str, list[tuple[int, threading.Thread]]] = {}
        self.lock = threading.Lock()

    def wrap(self, owner, attribute: str, size_of) -> None:
        original = getattr(owner, attribute)
        label = f'{owner.__name__.rpartition(".")[2]}.{attribute}'
        calls = self.calls.setdefault(label, [])

        def watched(*args, **kwargs):
            with self.lock:
                calls.append((size_of(*args, **kwargs), threading.current_thread()))
            return original(*args, **kwargs)

        self.monkeypatch.setattr(owner, attribute, watched)

    def largest(self, name: str) -> int:
        return max((size for size, _ in self.calls[name]), default=0)

    def total(self, name: str) -> int:
        return sum(size for size, _ in self.calls[name])


def _window(_buffer, _byte, start, end, *_args) -> int:
    return end - start


def _first_length(data, *_args, **_kwargs) -> int:
    return len(data)


def make_course(server) -> None:
    data = {'instructors': json.dumps([INSTRUCTOR])}
    ok(server.post(('course', COURSE), user='root', data=data))
    person = {'first_name': 'L', 'last_name': 'L', 'email': 'l@example.org'}
    ok(server.post(('student', COURSE, STUDENT), user=INSTRUCTOR, data=person))
    data = {'files': json.dumps([])}
    ok(server.post(('assignment', COURSE, 'ps1'), user=INSTRUCTOR, data=data))


def test_upload_calls_read_a_piece_at_most(shared_server, monkeypatch):
    """A 20 MB form-encoded submission: no C call of its decoding reads more
    than a piece (1 MiB), and none reads more than a small request's worth
    on the event loop's thread."""
    server = shared_server
    make_course(server)
    watch = Watch(monkeypatch)
    for name in ('_find', '_rfind'):
        watch.wrap(large_tree, name, _window)
    for name in ('_translate', '_a2b_base64'):
        watch.wrap(large_tree, name, _first_length)
    watch.wrap(large_tree, '_json_loads', _first_length)
    watch.wrap(json, 'loads', _first_length)  # the plain way (jsonfields)
    watch.wrap(binascii, 'a2b_base64', _first_length)  # the plain way
    watch.wrap(forms, '_a2b_qp', _first_length)
    watch.wrap(forms, '_percent_decode', lambda owned: len(owned[0]))
    watch.wrap(RequestHandler, 'decode_argument', lambda _self, value, **_: len(value))

    size = 20 * 1000 * 1000
    body = FormBody({'ps1.ipynb': (3000, 1), 'data/big.bin': (size, 2)}, user=STUDENT)
    resp = requests.post(
        server.url(('submission', COURSE, 'ps1')),
        data=body,
        headers=body.headers(),
        timeout=120,
    )
    ok(resp)
    assert size in server.blobs.sizes().values()

    for name in watch.calls:
        assert watch.largest(name) <= large_tree.PIECE, name
    # The content went through the piecewise decoder, all of it.
    base64_length = (size + 2) // 3 * 4
    assert watch.total('large_tree._a2b_base64') >= base64_length
    assert watch.total('large_tree._translate') >= base64_length - 2
    assert watch.total('forms._percent_decode') >= base64_length
    # The skeleton: the notebook's short base64 stays in it.
    assert watch.largest('large_tree._json_loads') < 2 * large_tree.LONG_LITERAL
    loop_thread = server._thread
    for name, calls in watch.calls.items():
        on_loop = [size for size, thread in calls if thread is loop_thread]
        assert max(on_loop, default=0) <= LOOP_BUDGET, name


def test_large_fields_besides_the_tree_read_as_before(shared_server):
    """Another large value of a large body (a roster of 700 students beside
    padding) is still what get_argument reads."""
    server = shared_server
    make_course(server)
    students = [
        {
            'username': f'student{i:04d}',
            'first_name': 'First' * 4,
            'last_name': 'Last' * 4,
            'email': f'student{i:04d}@example.org',
        }
        for i in range(700)
    ]
    text = json.dumps(students)
    assert len(text) > forms.LARGE_VALUE
    data = {'students': text, 'padding': 'x' * forms.LARGE_BODY}
    answer = ok(server.post(('students', COURSE), user=INSTRUCTOR, data=data))
    assert all(status['success'] for status in answer['status'])
    listed = ok(server.get(('students', COURSE), user=INSTRUCTOR))['students']
    assert len(listed) == 701


# The piecewise way decides as the plain way, whatever the text.


class _Handler:
    """What form_text needs of a handler: Tornado's own decode_argument."""

    decode_argument = RequestHandler.decode_argument


def _outcome(text, max_file_size):
    """What parse_tree answers for a text (or a TreeText)."""
    try:
        tree = parse_tree(text, max_file_size)
    except ApiError as error:
        return ('refused', error.status, error.message)
    return [(f.path, bytes(f.content), f.checksum, f.key) for f in tree]


def _plain_way(raw: bytes, max_file_size):
    """get_argument's text of the field, then parse_tree of that text."""
    try:
        text = forms.form_text(_Handler(), 'files', [raw])
    except HTTPError as error:
        return ('http', error.status_code, error.log_message)
    return _outcome(text, max_file_size)


def _piecewise_way(raw: bytes, max_file_size, rng):
    """The same field left in a body buffer (with quotes around it)."""
    before = rng.choice([b'', b'"', b'files=\\"', b'""'])
    after = rng.choice([b'', b'"', b'&user="x"'])
    buffer = bytearray(before + raw + after)
    value = BodySlice(buffer, len(before), len(before) + len(raw))
    try:
        text = forms.form_text(_Handler(), 'files', [value])
    except HTTPError as error:
        return ('http', error.status_code, error.log_message), None
    return _outcome(text, max_file_size), text


NONCE = 'ab12'
# Literals no longer than this key make it a placeholder: always the plain way.
CONTENT_KEY = 'content'
PLACEHOLDER = f'~{NONCE}~0'
PATHS = [
    'a', 'b/c.txt', 'ü/é.ipynb', 'a"b', 'a\\b', PLACEHOLDER, 'QUFBQUFBQUFBQUFB',
    '', '..', 'x' * 300, 'd/\u2603', 'e\x01f', 'tab\tname',
]  # fmt: skip
TOKENS = [
    '"', '\\', '\\n', '\\"', '\n', '\r\n', ' ', '\t', '\x01', '\x0b', '\x7f',
    '=', '==', 'A', 'QUFB', ',', '}', ']', '[', '{', ':', 'é', '\u2603',
    PLACEHOLDER, f'~{NONCE}~1', f'~{NONCE}~', '\\u007eab12~0', '\\u0041',
    '"content": "QUFBQUFBQUFBQUFB", ', '{"path": "z", "content": "QUJD"}, ',
]  # fmt: skip
RAW_TOKENS = [b'\xff', b'\xc3', b'\xe2\x82', b'\x00']


def _content(rng) -> str:
    """A file's base64, often valid, often not quite."""
    data = rng.randbytes(rng.choice([0, 1, 2, 3, 5, 30, 31, 32, 100, 200]))
    text = base64.b64encode(data).decode('ascii')
    kind = rng.randrange(16)
    if kind == 0:
        text = base64.encodebytes(data).decode('ascii')  # line breaks
    elif kind == 1 and text:
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(['=', '==', ' ', '\n', '!', 'é']) + text[cut:]
    elif kind == 2:
        text = text.rstrip('=')
    elif kind == 3:
        text += rng.choice(['=', '==', 'A', 'AA', 'AAA'])
    elif kind == 4:
        text = text + '==' + text  # padding in the middle
    return text


def _entry(rng, index: int):
    kind = rng.randrange(16)
    if kind == 0:
        return rng.choice([[_content(rng)], _content(rng), 7, None])
    path = rng.choice(PATHS[:3] if rng.randrange(2) else PATHS) + str(index)
    entry = {'path': path, 'content': _content(rng)}
    if kind == 1:
        entry['checksum'] = 'ab' * 16
    elif kind == 2:
        # The right checksum, in either case.
        try:
            content = base64.b64decode(entry['content'], validate=True)
            checksum = hashlib.md5(content).hexdigest()
            entry['checksum'] = rng.choice([checksum, checksum.upper()])
        except (binascii.Error, ValueError):
            pass
    elif kind == 3:
        entry[_content(rng) * 3] = 1  # a huge key
    elif kind == 4:
        entry['extra'] = {'content': _content(rng), 'list': [_content(rng)]}
    elif kind == 5:
        entry = {'content': entry['content'], **entry}
    return entry


def _tree_text(rng) -> bytes:
    tree = [_entry(rng, index) for index in range(rng.randrange(0, 4))]
    if rng.randrange(20) == 0:
        tree = {'files': tree}
    text = json.dumps(
        tree,
        ensure_ascii=rng.choice([True, False]),
        separators=rng.choice([None, (',', ':'), (' ,\n', ' :\t')]),
    )
    for _ in range(rng.choice([0, 0, 0, 0, 1, 2, 3])):
        cut = rng.randrange(len(text) + 1)
        if rng.randrange(3):
            text = text[:cut] + rng.choice(TOKENS) + text[cut:]
        else:
            text = text[:cut] + text[cut + rng.randrange(1, 4) :]
    raw = text.encode('utf-8')
    if rng.randrange(15) == 0:
        cut = rng.randrange(len(raw) + 1)
        raw = raw[:cut] + rng.choice(RAW_TOKENS) + raw[cut:]
    return raw


@pytest.mark.parametrize(
    ('long_literal', 'piece', 'seed'),
    [(8, 4, 1), (8, 5, 2), (8, 7, 3), (40, 4, 4), (40, 64, 5), (1, 9, 6)],
)
def test_tree_text_decides_as_the_plain_way(monkeypatch, long_literal, piece, seed):
    monkeypatch.setattr(large_tree, 'LONG_LITERAL', long_literal)
    monkeypatch.setattr(large_tree, 'PIECE', piece)
    monkeypatch.setattr(large_tree, '_nonce', lambda: NONCE)
    fallbacks = []
    plain = TreeText.plain

    def counted_plain(self):
        fallbacks.append(self)
        return plain(self)

    monkeypatch.setattr(TreeText, 'plain', counted_plain)
    rng = random.Random(seed)
    piecewise = accepted = 0
    for _ in range(4000):
        raw = _tree_text(rng)
        max_file_size = rng.choice([None, None, None, 0, 2, 31, 32, 200])
        expected = _plain_way(raw, max_file_size)
        before = len(fallbacks)
        got, text = _piecewise_way(raw, max_file_size, rng)
        assert got == expected, raw
        if isinstance(text, TreeText) and len(fallbacks) == before:
            piecewise += 1
            accepted += isinstance(got, list)
    # Both ways were exercised, and the piecewise one often got to the end.
    assert len(fallbacks) > 500, len(fallbacks)
    if long_literal > len(CONTENT_KEY):
        assert piecewise > 500, piecewise
        assert accepted > 150, accepted


# The building blocks.


@pytest.mark.parametrize('piece', [1, 2, 3, 7, 1024])
def test_windowed_searches_match_bytearray(monkeypatch, piece):
    monkeypatch.setattr(large_tree, 'PIECE', piece)
    rng = random.Random(piece)
    for _ in range(2000):
        data = bytearray(rng.choice(b'ab"&') for _ in range(rng.randrange(30)))
        start = rng.randrange(len(data) + 1)
        end = rng.randrange(start, len(data) + 1)
        for byte in (b'"', b'&'):
            assert large_tree.find(data, byte, start, end) == data.find(
                byte, start, end
            )
            assert large_tree.rfind(data, byte, start, end) == data.rfind(
                byte, start, end
            )
            total = data.count(byte, start, end)
            limit = rng.randrange(1, 10)
            counted = large_tree.count(data, byte, start, end, limit)
            assert (counted == total) if total < limit else (counted >= limit)


@pytest.mark.parametrize('piece', [3, 4, 5, 7, 64])
def test_large_values_decoded_in_place_match_tornado(monkeypatch, piece):
    """Values left in the body (BodySlice) hold what Tornado decodes."""
    monkeypatch.setattr(forms, '_PIECE', piece)
    monkeypatch.setattr(forms, 'LARGE_VALUE', 4)
    monkeypatch.setattr(large_tree, 'PIECE', piece)
    tokens = [
        b'%', b'=', b'&', b'+', b'2', b'5', b'3', b'D', b'a', b'F', b'g', b'\n',
        b'\xff', b'%25', b'%3D', b'%3d', b'==', b'%%', b'%2B', b'%0a', b'%e2%82%ac',
        b'QUFB', b'%22', b'"',
    ]  # fmt: skip
    rng = random.Random(piece)
    sliced = 0
    for _ in range(3000):
        body = b''.join(rng.choice(tokens) for _ in range(rng.randint(0, 120)))
        expected = parse_qs_bytes(body, keep_blank_values=True)
        got: dict[str, list[bytes]] = {}
        for name, value in forms.parse_form(bytearray(body)):
            sliced += isinstance(value, BodySlice)
            got.setdefault(name, []).append(bytes(value))
        assert got == expected, body
    assert sliced > 1000


def test_only_the_tree_stays_in_the_body(monkeypatch):
    """A large form: ``files`` is left in the buffer, every other large
    value is the str (or, invalid UTF-8, the bytes) get_argument reads."""
    monkeypatch.setattr(forms, 'LARGE_VALUE', 4)
    body = b'files=%5B%5D+++&students=%C3%A9t%C3%A9%21&bad=%FF%FF%FF%FF%FF&x=1'
    fields = forms._form_fields([bytearray(body)])
    assert [name for name, _ in fields] == ['files', 'students', 'bad', 'x']
    assert isinstance(fields[0][1], BodySlice)
    assert bytes(fields[0][1]) == b'[]   '
    assert fields[1:] == [('students', 'été!'), ('bad', b'\xff' * 5), ('x', b'1')]


@pytest.mark.parametrize('piece', [4, 5, 8, 13, 1024])
def test_long_literal_decoding_matches_a2b_base64(monkeypatch, piece):
    """Decoded piece by piece, a literal of base64 characters (then at most
    two '=') is accepted or refused as one strict a2b_base64 would."""
    monkeypatch.setattr(large_tree, 'PIECE', piece)
    rng = random.Random(piece)
    alphabet = large_tree.BASE64_ALPHABET
    for _ in range(3000):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        text += b'=' * rng.choice([0, 0, 1, 2])
        buffer = bytearray(b'"' + text + b'"')
        assert large_tree._is_base64(buffer, 1, len(buffer) - 1)
        try:
            expected = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            expected = None
        try:
            got = bytes(Base64Literal(buffer, 1, len(buffer) - 1).decode())
        except binascii.Error:
            got = None
        assert got == expected, text
    for text in (b'QU=B', b'QUFB=QUFB', b'QUF!', b'QUFB===', b'QUFB\n', b'QU\xc3\xa9'):
        assert not large_tree._is_base64(bytearray(text), 0, len(text))


B64 = 'QUFBQUFBQUFB'  # 12 characters: a long literal with LONG_LITERAL 8
CRAFTED = [
    f'[{{"path": "a", "content": "{B64}"}}]',
    f'[{{"path": "a", "content": "{B64}", "content": "\\u007eab12~0"}}]',
    f'[{{"path": "a", "content": "\\u007eab12~0", "content": "{B64}"}}]',
    f'[{{"path": "a", "content": "{B64}"}}, '
    '{"path": "b", "content": "\\u007eab12~0"}]',
    f'[{{"path": "a", "content": "\\"{B64}"}}]',
    f'[{{"path": "a", "content": "{B64}\\"{B64}"}}]',
    f'[{{"path": "a", "content": "{B64}"}}, {{"path": "b", "content": "{PLACEHOLDER}"}}'
    ']',
    f'[{{"path": "a", "content": "{B64}"}}, "{B64}"]',
    f'[{{"{B64}": "{B64}", "path": "a", "content": "QUFB"}}]',
    f'[{{"path": "{B64}", "content": "{B64}"}}]',
    f'[{{"path": "a", "content": "{B64}", "content": "{B64}QUFB"}}]',
    f'["{B64}" "{B64}"]',
    f'[{{"path": "a", "content": "{B64}"}}]{B64}"',
    f'[{{"path": "a", "content": "{B64}"}}',
    f'"{B64}"',
    f'{{"content": "{B64}"}}',
    f'[{{"path": "a", "content": "QUFB"{B64}"QUFB"}}]',
    f'[{{"path": "a", "content": "{B64}", "n": 1e+5}}]',
    f'[{{"path": "a", "content": "{B64}="}}]',
    f'[{{"path": "a", "content": "{B64}=="}}]',
    '[{"path": "a", "content": "QUFBQUFBQUE="}]',
    '[{"path": "a", "content": "QUFBQUFBQQ=="}]',
    '[{"path": "a", "content": "QUFBQUFBQQ==="}]',
    '[{"path": "a", "content": "QUFB=QUFBQUFB"}]',
    '[{"path": "a", "content": "QUFB\x01QUFBQUFB"}]',  # a space once read
    '[{"path": "a", "content": "QUFB\x0bQUFBQUFB"}]',  # kept: not JSON
    '[{"path": "a", "content": "QUFB\\nQUFBQUFB"}]',
    f'[{{"path": "a", "content": "{B64}"}}, {{"path": "a/b", "content": "{B64}"}}]',
    f'[{{"path": "ü", "content": "{B64}", "checksum": "{"0" * 32}"}}]',
    '[' * 50000 + f'"{B64}"' + ']' * 50000,
    '[' * 50000 + f'{{"path": "a", "content": "{B64}"}}' + ']' * 50000,
]


@pytest.mark.parametrize('text', CRAFTED)
def test_crafted_texts_decide_as_the_plain_way(monkeypatch, text):
    monkeypatch.setattr(large_tree, 'LONG_LITERAL', 8)
    monkeypatch.setattr(large_tree, 'PIECE', 5)
    monkeypatch.setattr(large_tree, '_nonce', lambda: NONCE)
    raw = text.encode('utf-8')
    rng = random.Random(text)
    for max_file_size in (None, 8):
        expected = _plain_way(raw, max_file_size)
        assert _piecewise_way(raw, max_file_size, rng)[0] == expected
