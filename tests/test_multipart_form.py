"""The multipart/form-data parser of raw-parts uploads (handlers/multipart.py).

Valid bodies come from the encoders clients really use (``requests``' own
``_encode_files``, urllib3's ``encode_multipart_formdata``) and are read as
Tornado's ``parse_multipart_form_data`` reads them; malformed ones, down to
every truncation and random mutations of valid bodies, are refused with a
400 and nothing else; the body is consumed without a copy of it.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest
import urllib3
from requests.models import RequestEncodingMixin
from tornado.httputil import HTTPInputError, parse_multipart_form_data

from ngshare.errors import ApiError
from ngshare.handlers import forms
from ngshare.handlers.intake import INVALID_BODY, TOO_MANY_FIELDS
from ngshare.handlers.multipart import (
    MAX_HEADER_BLOCK,
    MAX_PARTS,
    Part,
    parse_multipart,
)

BOUNDARY = 'b0undary'
CONTENT_TYPE = f'multipart/form-data; boundary={BOUNDARY}'


def parse_all(body: bytes, content_type: str = CONTENT_TYPE) -> list[Part]:
    return parse_multipart(bytearray(body), content_type)


def refused(body: bytes, content_type: str = CONTENT_TYPE) -> str:
    with pytest.raises(ApiError) as caught:
        parse_all(body, content_type)
    assert caught.value.status == 400
    return caught.value.message


def body_of(*parts: bytes, boundary: str = BOUNDARY) -> bytes:
    """Raw parts (header block, blank line, content) framed by ``boundary``."""
    dash = b'--' + boundary.encode()
    return b''.join(dash + b'\r\n' + p + b'\r\n' for p in parts) + dash + b'--\r\n'


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def requests_body(fields, files) -> tuple[bytes, str]:
    return RequestEncodingMixin._encode_files(files, fields)


def as_tornado(body: bytes, content_type: str) -> tuple[dict, dict]:
    """(fields, files) as Tornado's own parser reads the body."""
    boundary = content_type.split('boundary=', 1)[1].encode()
    arguments: dict = {}
    files: dict = {}
    parse_multipart_form_data(boundary, body, arguments, files)
    return arguments, {
        name: [(f.filename, f.body, f.content_type) for f in found]
        for name, found in files.items()
    }


def as_ours(parts: list[Part]) -> tuple[dict, dict]:
    """(fields, files) grouped as Tornado groups them: a part with a
    non-empty filename is a file, any other a field."""
    arguments: dict = {}
    files: dict = {}
    for part in parts:
        if part.filename:
            files.setdefault(part.name, []).append(
                (
                    part.filename,
                    part.content,
                    part.content_type or 'application/unknown',
                )
            )
        else:
            arguments.setdefault(part.name, []).append(part.content)
    return arguments, files


# Binary contents that look like framing: the boundary's dashes, CRLFs,
# a delimiter without its CRLF, a blank line, NUL and high bytes.
AWKWARD = [
    b'',
    b'\r\n',
    b'\r\n\r\n',
    b'--',
    b'\r\n--',
    b'plain text',
    bytes(range(256)),
    b'x\r\n--not-the-boundary\r\ny',
    b'\n--\r-- \r\n\r\n--\r\n',
]

VALID_BODIES = {
    'fields only': (
        {},
        [('user', (None, 'kevin')), ('timestamp', (None, '2020-01-30 10:30'))],
    ),
    'raw parts upload': (
        {'user': 'kevin'},
        [
            ('manifest', (None, '[{"path": "a.ipynb"}]', 'application/json')),
            *[
                ('file', (str(i), content, 'application/octet-stream'))
                for i, content in enumerate(AWKWARD)
            ],
        ],
    ),
    'files without a content type': ({}, [('f', ('a.txt', b'x\r\n'))]),
    'non-ASCII names and values': (
        {'zoë': 'é\r\n'},
        [('file', ('zoë "quoted".txt', 'ünïcode'.encode(), 'text/plain'))],
    ),
    'empty values': ({'empty': ''}, [('file', ('0', b'', None))]),
    'empty filename is a field': ({}, [('f', ('', b'data'))]),
}


@pytest.mark.parametrize('case', sorted(VALID_BODIES))
def test_requests_bodies_read_as_tornado_reads_them(case):
    fields, files = VALID_BODIES[case]
    body, content_type = requests_body(fields, files)
    parts = parse_all(body, content_type)
    assert as_ours(parts) == as_tornado(body, content_type)
    assert len(parts) == len(fields) + len(files)


def test_parts_keep_their_order_names_filenames_and_types():
    body, content_type = requests_body(*VALID_BODIES['raw parts upload'])
    parts = parse_all(body, content_type)
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ('user', None, None),
        ('manifest', None, 'application/json'),
        *[('file', str(i), 'application/octet-stream') for i in range(len(AWKWARD))],
    ]
    assert [p.content for p in parts[2:]] == AWKWARD
    assert parts[0].content == b'kevin'


def test_urllib3_bodies():
    fields = [
        ('user', 'eric'),
        ('file', ('0', bytes(range(256)) * 3, 'application/octet-stream')),
        ('file', ('1', b'\r\n--' + b'-' * 40, 'application/octet-stream')),
    ]
    body, content_type = urllib3.encode_multipart_formdata(fields)
    parts = parse_all(body, content_type)
    assert as_ours(parts) == as_tornado(body, content_type)
    assert [p.content for p in parts] == [b'eric', fields[1][1][1], fields[2][1][1]]


def test_content_ends_at_the_crlf_before_the_delimiter():
    parts = parse_all(body_of(field('a', b'x\r\n'), field('b', b'\r\n\r\n')))
    assert [p.content for p in parts] == [b'x\r\n', b'\r\n\r\n']


def test_a_delimiter_line_that_is_not_one_is_content():
    # CRLF--boundary followed by neither CRLF nor "--" does not end a part
    # (Tornado reads it as content too).
    content = b'a\r\n--' + BOUNDARY.encode() + b'X\r\nmore'
    body = body_of(field('a', content))
    assert [p.content for p in parse_all(body)] == [content]
    assert as_ours(parse_all(body)) == as_tornado(body, CONTENT_TYPE)


def test_empty_parts_and_empty_bodies():
    assert parse_all(b'--' + BOUNDARY.encode() + b'--') == []
    assert parse_all(b'--' + BOUNDARY.encode() + b'--\r\nepilogue') == []
    parts = parse_all(body_of(field('a', b''), field('b', b'')))
    assert [(p.name, p.content) for p in parts] == [('a', b''), ('b', b'')]
    # the blank line sharing its CRLF with the delimiter, as Tornado reads it
    shared = (
        b'--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n--b0undary--'
    )
    assert [(p.name, p.content) for p in parse_all(shared)] == [('a', b'')]
    assert as_ours(parse_all(shared)) == as_tornado(shared, CONTENT_TYPE)


def test_the_epilogue_is_ignored():
    body = body_of(field('a', b'1')) + b'trailing words\r\n--b0undary\r\n'
    assert [p.content for p in parse_all(body)] == [b'1']


def test_quoted_and_rfc2231_parameters():
    parts = parse_all(
        body_of(field('a', b'1'), boundary='with space:and=equals'),
        'multipart/form-data; boundary="with space:and=equals"',
    )
    assert [p.content for p in parts] == [b'1']
    header = (
        'Content-Disposition: form-data; name="file";'
        " filename*=utf-8''zo%C3%AB%20%22x%22.txt\r\n"
        'Content-Type: application/octet-stream\r\n\r\n'
    )
    (part,) = parse_all(body_of(header.encode() + b'data'))
    assert part.filename == 'zoë "x".txt'
    assert part.content_type == 'application/octet-stream'
    # the Content-Type may carry other parameters, in any case
    parts = parse_all(
        body_of(field('a', b'1')),
        f'Multipart/Form-Data; charset=utf-8; BOUNDARY={BOUNDARY}',
    )
    assert [p.name for p in parts] == ['a']


def test_the_body_is_consumed():
    body = bytearray(body_of(field('a', b'1' * 1000), field('b', b'2')))
    assert len(parse_multipart(body, CONTENT_TYPE)) == 2
    assert body == bytearray()
    broken = bytearray(body_of(field('a', b'1'))[:-4])
    with pytest.raises(ApiError):
        parse_multipart(broken, CONTENT_TYPE)
    assert broken == bytearray()


# -- limits ------------------------------------------------------------------


def test_at_most_1000_parts():
    assert MAX_PARTS == forms.MAX_FIELDS == 1000
    many = [field(f'f{i}', b'') for i in range(MAX_PARTS)]
    assert len(parse_all(body_of(*many))) == MAX_PARTS
    assert refused(body_of(*many, field('last', b''))) == TOO_MANY_FIELDS


def test_header_blocks_up_to_8_kib():
    def with_header_block(size: int) -> bytes:
        start = b'Content-Disposition: form-data; name="a"\r\nX-Padding: '
        block = start + b'p' * (size - len(start))
        assert len(block) == size
        return body_of(block + b'\r\n\r\ncontent')

    (part,) = parse_all(with_header_block(MAX_HEADER_BLOCK))
    assert part.content == b'content'
    assert refused(with_header_block(MAX_HEADER_BLOCK + 1)) == INVALID_BODY


# -- malformed bodies --------------------------------------------------------

MALFORMED_TYPES = {
    'no boundary': 'multipart/form-data',
    'empty boundary': 'multipart/form-data; boundary=',
    'empty quoted boundary': 'multipart/form-data; boundary=""',
    'boundary over 70 characters': 'multipart/form-data; boundary=' + 'b' * 71,
    'non-ASCII boundary': 'multipart/form-data; boundary=bö',
    'not multipart': f'application/x-www-form-urlencoded; boundary={BOUNDARY}',
    'another multipart': f'multipart/mixed; boundary={BOUNDARY}',
    'empty': '',
}


@pytest.mark.parametrize('case', sorted(MALFORMED_TYPES))
def test_malformed_content_types(case):
    assert refused(body_of(field('a', b'1')), MALFORMED_TYPES[case]) == INVALID_BODY


GOOD = field('a', b'1')
MALFORMED_BODIES = {
    'empty body': b'',
    'no final boundary': body_of(GOOD)[: -len(b'--\r\n')] + b'\r\n',
    'final boundary without CRLF before it': b'--b0undary\r\n' + GOOD + b'--b0undary--',
    'other boundary': body_of(GOOD, boundary='other'),
    'preamble': b'preamble\r\n' + body_of(GOOD),
    'CRLF before the first delimiter': b'\r\n' + body_of(GOOD),
    'first delimiter with padding': body_of(GOOD).replace(
        b'--b0undary\r\n', b'--b0undary \r\n', 1
    ),
    'no header block': body_of(b'just content'),
    'no blank line after the headers': body_of(
        b'Content-Disposition: form-data; name="a"'
    ),
    'no Content-Disposition': body_of(b'Content-Type: text/plain\r\n\r\nx'),
    'not form-data': body_of(b'Content-Disposition: attachment; name="a"\r\n\r\nx'),
    'no name': body_of(b'Content-Disposition: form-data; filename="a"\r\n\r\nx'),
    'empty name': body_of(b'Content-Disposition: form-data; name=""\r\n\r\nx'),
    'header line without a colon': body_of(
        b'Content-Disposition: form-data; name="a"\r\nnonsense\r\n\r\nx'
    ),
    'folded header line': body_of(
        b'Content-Disposition: form-data;\r\n name="a"\r\n\r\nx'
    ),
    'header not UTF-8': body_of(
        b'Content-Disposition: form-data; name="\xff\xfe"\r\n\r\nx'
    ),
    'control character in a header': body_of(
        b'Content-Disposition: form-data; name="a\x00"\r\n\r\nx'
    ),
}


@pytest.mark.parametrize('case', sorted(MALFORMED_BODIES))
def test_malformed_bodies(case):
    body = MALFORMED_BODIES[case]
    assert refused(body) == INVALID_BODY
    with pytest.raises((HTTPInputError, ValueError)):
        parse_multipart_form_data(BOUNDARY.encode(), body, {}, {})


def answer_or_refusal(body: bytes, content_type: str) -> None:
    """Parses, or refuses with a 400 and a documented message; nothing else."""
    try:
        parts = parse_all(body, content_type)
    except ApiError as error:
        assert error.status == 400
        assert error.message in (INVALID_BODY, TOO_MANY_FIELDS)
    else:
        assert all(isinstance(p, Part) and isinstance(p.name, str) for p in parts)


def test_every_truncation_of_a_valid_body_is_refused():
    body, content_type = requests_body(
        {'user': 'kevin'},
        [
            ('manifest', (None, '[]', 'application/json')),
            ('file', ('0', b'\r\n--x\r\n', 'application/octet-stream')),
        ],
    )
    final = body.rindex(b'--\r\n')
    for end in range(len(body)):
        if end >= final + 2:  # only the final CRLF (the epilogue) missing
            assert len(parse_all(body[:end], content_type)) == 3
        else:
            assert refused(body[:end], content_type) == INVALID_BODY


def test_mutated_bodies_answer_or_are_refused():
    """Random damage to valid bodies (seeded: the same every run) gives
    parts or a 400 with a documented message, never another exception."""
    rng = random.Random(15)
    bodies = [requests_body(*VALID_BODIES[case]) for case in sorted(VALID_BODIES)]
    alphabet = b'\r\n-";=:\\*\x00\xff%ab'
    for _ in range(3000):
        body, content_type = rng.choice(bodies)
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            action = rng.randrange(3)
            if action == 0:
                data[at] = rng.choice(alphabet)
            elif action == 1:
                data.insert(at, rng.choice(alphabet))
            else:
                del data[at : at + rng.randint(1, 8)]
        answer_or_refusal(bytes(data), content_type)
    for _ in range(500):
        _, content_type = rng.choice(bodies)
        mangled = bytearray(content_type.encode())
        mangled[rng.randrange(len(mangled))] = rng.choice(alphabet)
        answer_or_refusal(body_of(GOOD), mangled.decode('latin-1'))


# -- memory ------------------------------------------------------------------

MB = 1024 * 1024


def peak_while_parsing(make_body) -> tuple[int, int, list[Part]]:
    """(bytes held with the body made, traced peak while parsing it, parts).

    Both count from before the body was made, so the peak includes the
    body's own buffer (as it was allocated).
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        body = make_body()
        held = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        parts = parse_multipart(body, CONTENT_TYPE)
        del body
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return held, peak, parts


def test_a_large_part_costs_one_copy_of_it():
    """A 20 MB one-part body: at most the body plus the part (no bytes()
    of the body, no split of it), plus 64 KiB."""
    content = bytes(range(256)) * (20 * MB // 256)

    def make_body() -> bytearray:
        body = bytearray(b'--b0undary\r\n')
        body += b'Content-Disposition: form-data; name="file"; filename="0"\r\n\r\n'
        body += content
        body += b'\r\n--b0undary--\r\n'
        return body

    held, peak, parts = peak_while_parsing(make_body)
    assert [p.content == content for p in parts] == [True]
    assert held >= 20 * MB
    assert peak <= held + len(content) + 64 * 1024, (peak, held)


def test_many_parts_cost_at_most_two_bodies():
    """20 parts of 1 MB: the parts are copied out as the front of the body
    is dropped; CPython frees a bytearray's front only when it shrinks
    below half its buffer, so the peak is under two bodies (plus 64 KiB)."""
    pieces = [bytes([i]) * MB for i in range(20)]

    def make_body() -> bytearray:
        body = bytearray()
        for i, piece in enumerate(pieces):
            body += (
                f'--b0undary\r\nContent-Disposition: form-data; name="f{i}"'.encode()
            )
            body += b'\r\n\r\n' + piece + b'\r\n'
        body += b'--b0undary--\r\n'
        return body

    held, peak, parts = peak_while_parsing(make_body)
    assert [p.content for p in parts] == pieces
    assert held >= 20 * MB
    assert peak <= 2 * held + 64 * 1024, (peak, held)
