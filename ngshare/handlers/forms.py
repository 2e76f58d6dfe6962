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
was received into, consuming it: each value is percent-decoded in place,
piece by piece (the decoded text is never longer), the small ones copied
out, the large ones left where they are (:class:`~ngshare.large_tree.BodySlice`),
so the body is the only copy of itself. The ``files`` value of an upload
stays there until the tree decoder has read it
(:mod:`ngshare.large_tree`): no ``str`` of it is made, and no C call on
the way reads more than a piece of about a megabyte, each holding the GIL
(and so the event loop) for about a millisecond.

Percent-decoding uses the method of Tornado 6.5's ``_unquote_to_bytes``
(``binascii.a2b_qp`` decodes ``=XX`` in C, once ``%`` and ``=`` are
swapped), not the standard library's ``unquote_to_bytes``, which creates an
object for every escape: many times the size of a large body.
"""

from __future__ import annotations

import binascii
import logging
import re
from concurrent.futures import Executor

from tornado.httputil import (
    HTTPFile,
    HTTPInputError,
    HTTPServerRequest,
    parse_body_arguments,
)
from tornado.ioloop import IOLoop

from ..errors import INVALID_BODY, ApiError
from ..large_tree import BodySlice, TreeText, count, find, read_tree_text
from .intake import TOO_MANY_FIELDS
from .multipart import Part, parse_multipart

__all__ = ['LARGE_BODY', 'MAX_FIELDS', 'form_text', 'parse_form', 'read_form_body']

log = logging.getLogger('ngshare.handlers')

# Tornado's own limit on the number of fields of a urlencoded body; a body
# with more is refused (400 Too many form fields).
MAX_FIELDS = 1000
# A urlencoded body larger than this is parsed in the worker pool (see
# parse_form); its values larger than LARGE_VALUE stay in the body's buffer
# (the tree of an upload) or are decoded from UTF-8 to the str that
# get_argument answers right away, so that no bytes are kept beside it.
LARGE_BODY = 256 * 1024
LARGE_VALUE = 64 * 1024
URLENCODED = 'application/x-www-form-urlencoded'
MULTIPART = 'multipart/form-data'
# The parts of a raw-parts upload (docs/api.md): the JSON manifest, and one
# part of raw bytes per file, in the manifest's order.
MANIFEST = 'manifest'
FILE_PART = 'file'
# The field of a tree upload in the documented encoding.
TREE_FIELD = 'files'


async def read_form_body(
    request: HTTPServerRequest, owned: list[bytearray], pool: Executor
) -> list[bytes] | None:
    """Parse the body, the only element of ``owned`` (taken out), into
    ``request.body_arguments`` (and ``files``) and ``request.arguments``.

    Returns the file parts of a raw-parts upload (a multipart body with a
    ``manifest``, see ``docs/api.md``), in order; None for any other body.
    A large body is parsed in the worker pool, so the event loop never
    touches more than :data:`LARGE_BODY` bytes of one. Raises
    :class:`ApiError` 400 for a body that is not a valid form.
    """
    headers = request.headers
    content_type = headers.get('Content-Type', '')
    large = len(owned[0]) > LARGE_BODY
    raw_parts = None
    if 'Content-Encoding' in headers:
        # Refused by Tornado's parser (400), as it always was.
        _tornado_form(request, content_type, owned)
    elif content_type.startswith(MULTIPART):
        parts = await _in_pool_if(
            large, pool, parse_multipart, owned.pop(), content_type
        )
        raw_parts = _distribute_parts(request, parts)
        del parts
    elif content_type.startswith(URLENCODED):
        # parse_form decodes escapes in C (Tornado's parser, in Python, took
        # a tenth of a small upload's time), on the event loop when small.
        fields = await _in_pool_if(large, pool, _form_fields, owned)
        for name, value in fields:
            request.body_arguments.setdefault(name, []).append(value)
        del fields
    else:
        _tornado_form(request, content_type, owned)
    for name, values in request.body_arguments.items():
        request.arguments.setdefault(name, []).extend(values)
    return raw_parts


async def _in_pool_if(condition: bool, pool: Executor, function, *args):
    """``function(*args)``, in the pool when ``condition`` (a large body)."""
    if not condition:
        return function(*args)
    return await IOLoop.current().run_in_executor(pool, function, *args)


def _tornado_form(
    request: HTTPServerRequest, content_type: str, owned: list[bytearray]
) -> None:
    """A small (or refused) body, parsed by Tornado itself."""
    try:
        parse_body_arguments(
            content_type,
            bytes(owned.pop()),
            request.body_arguments,
            request.files,
            request.headers,
        )
    except HTTPInputError as error:
        log.info('Refused a body (%s): %s', request.remote_ip, error)
        raise ApiError(400, INVALID_BODY) from None


def _distribute_parts(
    request: HTTPServerRequest, parts: list[Part]
) -> list[bytes] | None:
    """Multipart parts into the request, as Tornado files them, except for
    a raw-parts upload: its ``file`` parts are returned, not filed."""
    if not any(part.name == MANIFEST for part in parts):
        for part in parts:
            if part.filename:
                request.files.setdefault(part.name, []).append(
                    HTTPFile(
                        filename=part.filename,
                        body=part.content,
                        content_type=part.content_type or 'application/unknown',
                    )
                )
            else:
                request.body_arguments.setdefault(part.name, []).append(part.content)
        return None
    if any(part.name == TREE_FIELD for part in parts):
        raise ApiError(400, INVALID_BODY)
    contents = []
    for part in parts:
        if part.name == FILE_PART:
            contents.append(part.content)
        else:
            request.body_arguments.setdefault(part.name, []).append(part.content)
    return contents


# What Tornado's get_argument replaces by spaces in every text argument (its
# RequestHandler._remove_control_chars_regex; a test checks they agree).
CONTROL_CHARACTERS = ''.join(map(chr, [*range(0x00, 0x09), *range(0x0E, 0x20)]))
_CONTROL = re.compile(f'[{re.escape(CONTROL_CHARACTERS)}]')


def form_text(handler, name: str, values: list | None) -> str | TreeText | None:
    """The last of a field's ``values`` as ``handler.get_argument(name, None,
    strip=False)`` answers it (None when there is none); the ``files`` of a
    large body (a :class:`BodySlice`) as a :class:`~ngshare.large_tree.TreeText`
    that :func:`ngshare.filetree.parse_tree` reads, or its text.

    Tornado scans every text argument with a regular expression for control
    characters, about 10 ms a megabyte; here a large text is scanned for
    each of them with ``str.__contains__`` (C, some hundred times faster)
    and handed to the same substitution only if one is there. Thread-safe:
    called in the pool for the large fields of uploads.
    """
    if not values:
        return None

    def argument(value: bytes) -> str:
        text = handler.decode_argument(value, name=name)
        if isinstance(text, str) and any(c in text for c in CONTROL_CHARACTERS):
            text = _CONTROL.sub(' ', text)
        return text

    value = values[-1]
    if isinstance(value, BodySlice):
        return read_tree_text(value, argument)
    return argument(value)


def _form_fields(owned: list[bytearray]) -> list[tuple[str, bytes | str | BodySlice]]:
    """The body's fields, with no copy of its large values.

    The ``files`` field's value stays in the body buffer (a
    :class:`BodySlice`, which ``get_argument`` cannot read: only the upload
    reads it, with :func:`form_text`); any other large value is decoded from
    UTF-8 to the str that get_argument answers, so that no bytes are kept
    beside it.
    """
    # The buffer is handed to parse_form without keeping a reference here:
    # it is freed once no value refers to it.
    try:
        fields = parse_form(owned.pop())
    except ValueError:
        raise ApiError(400, TOO_MANY_FIELDS) from None
    for index, (name, value) in enumerate(fields):
        if isinstance(value, BodySlice) and name != TREE_FIELD:
            fields[index] = (name, _decoded_value(value))
    return fields


def _decoded_value(value: BodySlice) -> bytes | str:
    """A large form value as the str get_argument would make of it.

    Invalid UTF-8 stays bytes, so that get_argument answers its usual 400.
    """
    with memoryview(value.buffer) as view:
        try:
            return str(view[value.start : value.end], 'utf-8')
        except UnicodeDecodeError:
            return bytes(value)


def parse_form(body: bytearray) -> list[tuple[str, bytes | BodySlice]]:
    """The fields of a urlencoded ``body``, as ``(name, value)`` in order.

    ``body`` is consumed: each value is percent-decoded in place, piece by
    piece, and a value longer than :data:`LARGE_VALUE` is answered as a
    :class:`BodySlice` of ``body`` (the others as bytes), so that the body is
    the only copy of itself. The caller must drop its own reference, e.g.
    by passing ``parse_form(buffers.pop())``. Fields without ``=`` have an
    empty value; empty fields are skipped (as Tornado does). Raises
    ``ValueError`` for more than :data:`MAX_FIELDS` fields, before touching
    ``body``. No C call reads more than a piece of the body.
    """
    size = len(body)
    if count(body, b'&', 0, size, MAX_FIELDS) + 1 > MAX_FIELDS:
        raise ValueError('Max number of fields exceeded')
    fields = []
    start = 0
    while start <= size:
        end = find(body, b'&', start, size)
        if end < 0:
            end = size
        if end > start:
            fields.append(_field(body, start, end))
        start = end + 1
    return fields


def _field(body: bytearray, start: int, end: int) -> tuple[str, bytes | BodySlice]:
    """The field ``body[start:end]``: its name, and its value decoded in place."""
    equals = find(body, b'=', start, end)
    name_end, value_start = (end, end) if equals < 0 else (equals, equals + 1)
    name = _percent_decode([body[start:name_end]]).decode('latin1')
    value_end = _decode_in_place(body, value_start, end)
    if value_end - value_start > LARGE_VALUE:
        return name, BodySlice(body, value_start, value_end)
    return name, bytes(body[value_start:value_end])


def _decode_in_place(body: bytearray, start: int, end: int) -> int:
    """Percent-decode ``body[start:end]`` piece by piece into its own start;
    where the decoded value ends.

    Decoding is local: a '%' starts an escape exactly when two hex digits
    follow, whatever comes before it, and no escape contains another '%'. So
    a piece cut just before a '%' among its last two bytes (an escape that
    would straddle the cut) decodes to its share of the whole, and the
    decoded piece (never longer) overwrites input that has been read.
    """
    piece = max(_PIECE, 3)
    read = write = start
    while read < end:
        stop = min(read + piece, end)
        if stop < end:
            cut = body.find(b'%', stop - 2, stop)
            if cut > read:
                stop = cut
        decoded = _percent_decode([body[read:stop]])
        body[write : write + len(decoded)] = decoded
        write += len(decoded)
        read = stop
    return write


# Swapping '%' and '=' turns percent escapes into the '=XX' of quoted-printable.
_SWAP = bytes.maketrans(b'%=', b'=%')
# a2b_qp decodes in pieces of about this many bytes (it needs a buffer of its
# input's size besides its answer).
_PIECE = 1024 * 1024
# Named here so that a test can watch the size of every call.
_a2b_qp = binascii.a2b_qp


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
    if b'=' not in data and b'\n' not in data and b'\r' not in data:
        # What every encoder writes: each '%' starts an escape, and no '=',
        # CR or LF is literal. As '=XX' these are quoted-printable, decoded
        # in one pass (about five times faster than the general way below).
        # Without line breaks a2b_qp shortens its input by two bytes at each
        # valid escape and by fewer at any other '=' (kept, or dropped at
        # the end), so the length tells whether every escape was valid.
        decoded = _a2b_qp_pieces([data.replace(b'%', b'=')])
        if len(decoded) == len(data) - 2 * data.count(b'%'):
            return decoded
        del decoded
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
    owned = [data]
    del data
    return _a2b_qp_pieces(owned).translate(_SWAP)


def _a2b_qp_pieces(owned: list[bytes]) -> bytearray:
    """``a2b_qp`` of the only element of ``owned`` (taken out, and freed
    before the answer is returned), in pieces: it needs a buffer of its
    input's size.

    Every '=' of the data starts an escape or stands for itself, and none
    follows another: a piece ending within two bytes after a '=' is cut
    just before it instead, so that no escape is split.
    """
    data = owned.pop()
    decoded = bytearray()
    start = 0
    while start < len(data):
        end = min(start + _PIECE, len(data))
        if end < len(data):
            cut = data.rfind(b'=', end - 2, end)
            if cut > start:
                end = cut
        decoded += _a2b_qp(data[start:end])
        start = end
    del data
    return decoded
