"""Reading a ``multipart/form-data`` body part by part, consuming it.

The plugin's raw-parts upload (``docs/api.md``, *Raw-parts uploads*) sends
each file as the raw bytes of one part, so a submission of a 100 MB
notebook is a body of about 100 MB, not the 137 MB of base64 in JSON in a
form field. Tornado's ``parse_multipart_form_data`` needs that body as
``bytes`` (a copy of the buffer it was received into) and splits it whole
(another copy) before it looks at a part.

:func:`parse_multipart` reads the same parts (names, filenames, content
types and contents, in order) from the ``bytearray`` the body was received
into: it finds each delimiter with ``bytearray.find`` (no copy), copies the
part's content out, and drops what it has read from the front of the buffer
(``del body[:n]``, which CPython does by moving the buffer's start, and
which gives the memory back once less than half of the buffer is left).
Never is there a copy of the body: a body of one large part peaks at the
body plus that part, a body of many parts below two bodies (the parts
themselves add up to one), where Tornado's parser needs three or more
(``tests/test_multipart_form.py`` measures both).

Only the framing is read here; the header block of a part and the
``Content-Disposition`` parameters (quoted values, RFC 2231 ``filename*=``)
are parsed by Tornado's ``HTTPHeaders`` and the standard library's
``email`` package, as a mail or HTTP client would write them, and the
boundary parameter of the ``Content-Type`` likewise.

Every body that cannot be read is refused the same way, ``ApiError(400,
'Invalid request body')``, or ``'Too many form fields'`` beyond
:data:`~ngshare.handlers.forms.MAX_FIELDS` parts: these bodies may come
from anyone, before the caller is known, and must never cause a traceback.
Pure: no I/O, no Tornado application.
"""

from __future__ import annotations

import dataclasses
import email.errors
import email.message
import email.utils

from tornado.httputil import HTTPHeaders, HTTPInputError

from ..errors import ApiError
from .intake import INVALID_BODY, TOO_MANY_FIELDS

__all__ = ['MAX_HEADER_BLOCK', 'MAX_PARTS', 'Part', 'parse_multipart']

#: The most parts a body may have (Tornado's limit on the fields of a
#: urlencoded body, forms.MAX_FIELDS: one limit for both kinds of form).
MAX_PARTS = 1000
#: The longest header block of one part, in bytes (without its blank line).
MAX_HEADER_BLOCK = 8 * 1024

_CRLF = b'\r\n'
_HEADERS_END = b'\r\n\r\n'
# What the header parsers may raise for text they cannot read (a line
# without a colon, a bad continuation, bytes that are not UTF-8, a
# parameter email refuses): all of them mean a malformed body.
_HEADER_ERRORS = (HTTPInputError, ValueError, LookupError, email.errors.MessageError)


@dataclasses.dataclass
class Part:
    """One part of the body."""

    name: str  # the Content-Disposition's name parameter
    filename: str | None  # its filename parameter, None when absent
    content_type: str | None  # the part's Content-Type, None when absent
    content: bytes


def parse_multipart(body: bytearray, content_type: str) -> list[Part]:
    """Every part of a multipart/form-data body, in order.

    Consumes ``body`` (the caller hands it over and keeps no reference): it
    is empty when this returns or raises. Raises :class:`ApiError` 400
    ``Invalid request body`` for a body that is not one (no or an invalid
    boundary, no final boundary, a part without headers, without a
    ``form-data`` Content-Disposition or a name, a header block over
    :data:`MAX_HEADER_BLOCK` bytes) and ``Too many form fields`` for more
    than :data:`MAX_PARTS` parts.
    """
    try:
        return _parts(body, _boundary(content_type))
    finally:
        body.clear()


def _boundary(content_type: str) -> bytes:
    """The boundary parameter of a multipart/form-data Content-Type."""
    header = email.message.Message()
    try:
        header['Content-Type'] = content_type
        kind = header.get_content_type()
        value = header.get_param('boundary')
    except _HEADER_ERRORS:
        raise ApiError(400, INVALID_BODY) from None
    if kind != 'multipart/form-data' or value is None:
        raise ApiError(400, INVALID_BODY)
    boundary = email.utils.collapse_rfc2231_value(value)
    # RFC 2046: 1 to 70 characters, which leaves the delimiter lines ASCII.
    if not (0 < len(boundary) <= 70 and boundary.isascii()) or boundary[-1] == ' ':
        raise ApiError(400, INVALID_BODY)
    return boundary.encode('ascii')


def _parts(body: bytearray, boundary: bytes) -> list[Part]:
    """The parts after the first delimiter line, up to the final one.

    A part ends at the next ``CRLF--boundary`` that is followed by ``CRLF``
    (another part follows) or ``--`` (the last part; what follows it, the
    epilogue, is ignored). Elsewhere such bytes are content, as Tornado reads
    them. Each part found is cut from the front of ``body``, so that
    ``body`` starts at the delimiter line of the part being read.
    """
    dash_boundary = b'--' + boundary
    delimiter = _CRLF + dash_boundary
    if not body.startswith(dash_boundary):
        raise ApiError(400, INVALID_BODY)
    after = body[len(dash_boundary) : len(dash_boundary) + 2]
    if after == b'--':
        return []
    if after != _CRLF:
        raise ApiError(400, INVALID_BODY)
    del body[: len(dash_boundary) + 2]
    parts: list[Part] = []
    search = 0
    while True:
        end = body.find(delimiter, search)
        if end < 0:
            raise ApiError(400, INVALID_BODY)  # no final boundary
        follows = body[end + len(delimiter) : end + len(delimiter) + 2]
        if follows not in (_CRLF, b'--'):
            search = end + 1
            continue
        if len(parts) == MAX_PARTS:
            raise ApiError(400, TOO_MANY_FIELDS)
        parts.append(_cut_part(body, end))
        if follows == b'--':
            return parts
        # body now starts with the delimiter (its CRLF included) and CRLF.
        del body[: len(delimiter) + 2]
        search = 0


def _cut_part(body: bytearray, end: int) -> Part:
    """The part ``body[:end]``, cut from the front of ``body``.

    The header block ends at the first blank line, which may share its last
    line break with the delimiter (a part with empty content and that CRLF
    only once), as Tornado reads it.
    """
    limit = min(end + 2, MAX_HEADER_BLOCK + len(_HEADERS_END))
    headers_end = body.find(_HEADERS_END, 0, limit)
    if headers_end < 0:
        raise ApiError(400, INVALID_BODY)  # no header block, or too long
    name, filename, content_type = _part_headers(bytes(body[:headers_end]))
    start = min(headers_end + len(_HEADERS_END), end)
    view = memoryview(body)
    try:
        content = view[start:end].tobytes()
    finally:
        view.release()
    del body[:end]
    return Part(name, filename, content_type, content)


def _part_headers(block: bytes) -> tuple[str, str | None, str | None]:
    """``(name, filename, content type)`` from a part's header block."""
    try:
        # Latin-1 keeps each byte one character, as Tornado's checks of
        # header characters expect (public API: no _chars_are_bytes);
        # the values are UTF-8 text in a form (RFC 7578).
        headers = HTTPHeaders.parse(block.decode('latin-1'))
        disposition = _utf8(headers.get('Content-Disposition'))
        content_type = _utf8(headers.get('Content-Type'))
        if disposition is None:
            raise ApiError(400, INVALID_BODY)
        parsed = email.message.Message()
        parsed['Content-Disposition'] = disposition
        if parsed.get_content_disposition() != 'form-data':
            raise ApiError(400, INVALID_BODY)
        name = _parameter(parsed, 'name')
        filename = _parameter(parsed, 'filename')
    except _HEADER_ERRORS:
        raise ApiError(400, INVALID_BODY) from None
    if not name:
        raise ApiError(400, INVALID_BODY)
    return name, filename, content_type


def _utf8(value: str | None) -> str | None:
    """A header value read as latin-1, as the UTF-8 text it is."""
    return None if value is None else value.encode('latin-1').decode('utf-8')


def _parameter(parsed: email.message.Message, key: str) -> str | None:
    """A Content-Disposition parameter, unquoted, RFC 2231 decoded."""
    value = parsed.get_param(key, header='Content-Disposition')
    if value is None:
        return None
    return email.utils.collapse_rfc2231_value(value)
