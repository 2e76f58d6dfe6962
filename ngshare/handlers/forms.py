"""Reading a request body's form fields, a large one with few copies of it.

:func:`read_form_body` puts the fields of a complete body into the
request's arguments, as Tornado would, or refuses it with a 400 JSON answer
(never a traceback: these bodies may come before the caller is known):
``Too many form fields`` beyond Tornado's 1,000, ``Invalid request body``
for whatever Tornado's ``parse_body_arguments`` refuses (a multipart body
without a boundary, an unsupported ``Content-Encoding``...).

The nbgrader exchange uploads a directory tree as one form field, ``files``:
JSON with base64 contents, form-encoded (``application/x-www-form-urlencoded``),
so a 100 MB notebook arrives as a body of about 142 MB. Tornado's parser
(``parse_body_arguments``) needs the body as ``bytes`` (a copy of the
buffer it was received into), splits it into fields (another copy) and
decodes each field while the body and its pieces are still alive.

:func:`parse_form` gives the same result (names as latin-1 ``str``, values
as percent-decoded bytes, fields in order) from the ``bytearray`` the body
was received into, consuming it: the small fields are copied out, the
largest is cut out of the buffer in place (no copy) and percent-decoded
with the buffer handed over, each step dropping the previous copy, so that
no more than two copies of it exist at any moment.

Percent-decoding uses the method of Tornado 6.5's ``_unquote_to_bytes``
(``binascii.a2b_qp`` decodes ``=XX`` in C, once ``%`` and ``=`` are
swapped), not the standard library's ``unquote_to_bytes``, which creates an
object for every escape: many times the size of a large body.
"""

from __future__ import annotations

import binascii
import logging
from concurrent.futures import Executor

from tornado.httputil import HTTPInputError, HTTPServerRequest, parse_body_arguments
from tornado.ioloop import IOLoop

from ..errors import ApiError
from .intake import INVALID_BODY, TOO_MANY_FIELDS

__all__ = ['LARGE_BODY', 'MAX_FIELDS', 'parse_form', 'read_form_body']

log = logging.getLogger('ngshare.handlers')

# Tornado's own limit on the number of fields of a urlencoded body; a body
# with more is refused (400 Too many form fields).
MAX_FIELDS = 1000
# A urlencoded body larger than this is parsed in the worker pool (see
# parse_form); its values larger than LARGE_VALUE are decoded from UTF-8 to
# the str that get_argument answers right away, so that the bytes are not
# kept beside it.
LARGE_BODY = 256 * 1024
LARGE_VALUE = 64 * 1024
URLENCODED = 'application/x-www-form-urlencoded'


async def read_form_body(
    request: HTTPServerRequest, owned: list[bytearray], pool: Executor
) -> None:
    """Parse the body, the only element of ``owned`` (taken out), into
    ``request.body_arguments`` (and ``files``) and ``request.arguments``.

    Raises :class:`ApiError` 400 for a body that is not a valid form.
    """
    headers = request.headers
    content_type = headers.get('Content-Type', '')
    urlencoded = content_type.startswith(URLENCODED)
    if urlencoded and owned[0].count(b'&') + 1 > MAX_FIELDS:
        raise ApiError(400, TOO_MANY_FIELDS)
    if urlencoded and len(owned[0]) > LARGE_BODY and 'Content-Encoding' not in headers:
        fields = await IOLoop.current().run_in_executor(pool, _large_form, owned)
        for name, value in fields:
            request.body_arguments.setdefault(name, []).append(value)
        del fields
    else:
        try:
            parse_body_arguments(
                content_type,
                bytes(owned.pop()),
                request.body_arguments,
                request.files,
                headers,
            )
        except HTTPInputError as error:
            log.info('Refused a body (%s): %s', request.remote_ip, error)
            raise ApiError(400, INVALID_BODY) from None
    for name, values in request.body_arguments.items():
        request.arguments.setdefault(name, []).extend(values)


def _large_form(owned: list[bytearray]) -> list[tuple[str, bytes | str]]:
    """In a worker thread: the body's fields, with few copies of it."""
    # The buffer is handed to parse_form without keeping a reference here,
    # so that it can be freed while its largest value is decoded.
    fields = parse_form(owned.pop())
    for index in range(len(fields)):
        name, value = fields[index]
        fields[index] = (name, b'')
        fields[index] = (name, _decoded_value(value))
        del value
    return fields


def _decoded_value(value: bytes | bytearray) -> bytes | str:
    """A large form value as the str get_argument would make of it.

    Invalid UTF-8 stays bytes, so that get_argument answers its usual 400.
    """
    if len(value) > LARGE_VALUE:
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            pass
    return bytes(value)


def parse_form(body: bytearray) -> list[tuple[str, bytes | bytearray]]:
    """The fields of a urlencoded ``body``, as ``(name, value)`` in order.

    ``body`` is consumed (emptied or reused): the caller must drop its own
    reference before the call returns anything useful, e.g. by passing
    ``parse_form(buffers.pop())``. Fields without ``=`` have an empty value;
    empty fields are skipped (as Tornado does). Raises ``ValueError`` for more
    than :data:`MAX_FIELDS` fields, before touching ``body``.
    """
    if body.count(b'&') + 1 > MAX_FIELDS:
        raise ValueError('Max number of fields exceeded')
    spans = []
    start = 0
    while start <= len(body):
        end = body.find(b'&', start)
        if end < 0:
            end = len(body)
        if end > start:
            spans.append((start, end))
        start = end + 1
    if not spans:
        body.clear()
        return []
    largest = max(range(len(spans)), key=lambda i: spans[i][1] - spans[i][0])
    fields: list[bytes | bytearray] = [
        b'' if i == largest else bytes(body[s:e]) for i, (s, e) in enumerate(spans)
    ]
    # Cut the largest field out of the buffer in place: deleting from the
    # end, then from the front (which a bytearray does without moving data).
    big_start, big_end = spans[largest]
    del body[big_end:]
    del body[:big_start]
    fields[largest] = body
    del body
    result = []
    for index in range(len(fields)):
        field, fields[index] = fields[index], b''
        name, _, value = _split_field(field)
        del field
        key = _percent_decode([name]).decode('latin1')
        # Hand the value over: from here on only the list refers to it, and
        # _percent_decode takes it out.
        owned = [value]
        del value
        result.append((key, _percent_decode(owned)))
    return result


def _split_field(field: bytes | bytearray) -> tuple[bytes, bytes, bytes | bytearray]:
    """``name, '=', value``; a bytearray's value is the same buffer."""
    equals = field.find(b'=')
    if equals < 0:
        return bytes(field), b'', b''
    name = bytes(field[:equals])
    if isinstance(field, bytearray):
        del field[: equals + 1]
        return name, b'=', field
    return name, b'=', field[equals + 1 :]


# Swapping '%' and '=' turns percent escapes into the '=XX' of quoted-printable.
_SWAP = bytes.maketrans(b'%=', b'=%')
# a2b_qp decodes in pieces of about this many bytes (it needs a buffer of its
# input's size besides its answer).
_PIECE = 1024 * 1024


def _percent_decode(owned: list) -> bytes | bytearray:
    """Decode ``+`` and ``%XX`` in the only element of ``owned``, taken out.

    Every step replaces ``data`` by its next form, so the previous one is
    freed as soon as the next exists (``bytes.replace`` returns the same
    object when there is nothing to replace).
    """
    data = bytes(owned.pop())
    data = data.replace(b'+', b' ')
    if b'%' not in data:
        return data
    # Escapes become =XX, and literal '=' signs '%', which a2b_qp keeps.
    data = data.translate(_SWAP)
    # The escapes of '%' and '=' would be swapped again at the end, so
    # exchange them first (each token is three bytes with '=' only at its
    # start, so no replacement makes or breaks another; =3d is free as a
    # placeholder once normalised).
    data = data.replace(b'=3d', b'=3D')
    data = data.replace(b'=25', b'=3d')
    data = data.replace(b'=3D', b'=25')
    data = data.replace(b'=3d', b'=3D')
    # Invalid escapes ('%' not followed by two hex digits) must stay as they
    # are: a2b_qp keeps a lone '=', but reads '==' as '=' and drops '=' at a
    # line break or at the end (soft line breaks), so spell those out as
    # =3D (a '%' after the final swap). Two passes for '===': replace does
    # not see a pair formed where two matches meet.
    data = data.replace(b'==', b'=3D=')
    data = data.replace(b'==', b'=3D=')
    data = data.replace(b'=\n', b'=3D\n')
    data = data.replace(b'=\r', b'=3D\r')
    if data.endswith(b'='):
        data += b'3D'
    # Now every '=' starts an escape or stands for itself, and none follows
    # another: a piece ending within two bytes after a '=' is cut just
    # before it instead, so that no escape is split.
    decoded = bytearray()
    start = 0
    while start < len(data):
        end = min(start + _PIECE, len(data))
        if end < len(data):
            cut = data.rfind(b'=', end - 2, end)
            if cut > start:
                end = cut
        decoded += binascii.a2b_qp(data[start:end])
        start = end
    del data
    return decoded.translate(_SWAP)
