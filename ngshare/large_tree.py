"""The ``files`` text of a large upload, read from the bytes it arrived in.

A 50 MB file arrives form-encoded as a 68 MB ``files`` field: JSON whose
one long string literal is the file's base64. Decoding it the plain way
(the field's bytes to a ``str``, ``json.loads``, ``a2b_base64``) makes
copies of 1.33 times the file each, in single C calls of 50-200 ms that
hold the GIL, and so block the event loop however the work is spread over
threads. Here the text stays in the request's body buffer
(:class:`BodySlice`) and every C call reads at most :data:`PIECE` bytes:

* :func:`read_tree_text` finds the long literals (quote-free runs of at
  least :data:`LONG_LITERAL` bytes between two quotes) that are base64
  (its alphabet, ``=`` only as final padding) and replaces each by a short
  placeholder literal: the rest, the skeleton, is small and goes through
  the field's usual ``get_argument`` decoding (UTF-8, control characters);
* :meth:`TreeText.parsed` parses the skeleton and puts a
  :class:`Base64Literal` where each placeholder was, decoded piece by piece
  (:meth:`Base64Literal.decode`) into a ``bytearray`` that grows in place.

It decides exactly as the plain way does, for every input: a literal of
base64 characters is the same text as bytes or as ``str`` (ASCII, no escape,
no control character), decoding it in pieces of a multiple of four
characters gives what one strict ``a2b_base64`` gives (no ``=`` before the
last piece), and anything unusual (a literal that is not plain base64
stays in the skeleton; a placeholder that is not the ``content`` of an
entry of the top-level list, or that the text itself could spell) sends
the whole text the plain way (:meth:`TreeText.plain`). The equivalence is
fuzzed in ``tests/test_upload_loop.py``.

What stays in one call is the skeleton's ``json.loads``: small for the
trees nbgrader sends (a few files, each literal of a file over 6 KB taken
out), large only for a tree of thousands of small files.

The C functions used on large data are module attributes, so that the test
can watch the size of every call.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
import re
import secrets
from collections.abc import Callable, Iterator

__all__ = [
    'LONG_LITERAL',
    'PIECE',
    'Base64Literal',
    'BodySlice',
    'TreeText',
    'count',
    'find',
    'read_tree_text',
]

# The most bytes one C call reads (about a millisecond each).
PIECE = 1024 * 1024
# Literals at least this long are read from the buffer. Longer than any
# legal path (4,096 bytes) or checksum, so those always stay in the skeleton.
LONG_LITERAL = 8 * 1024
QUOTE = b'"'
PADDING = b'='
BASE64_ALPHABET = b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
CONTENT = 'content'
# A JSON escape of a character of the placeholders ('~', digits, a-f): with
# none in the skeleton, a string equal to a placeholder is one of those put
# there, not one the text spells.
_PLACEHOLDER_ESCAPE = re.compile(rb'\\u00(?:7[eE]|3[0-9]|6[1-6])')

_find = bytearray.find
_rfind = bytearray.rfind
_translate = bytearray.translate
_a2b_base64 = binascii.a2b_base64
_json_loads = json.loads


def _nonce() -> str:
    """The unpredictable part of this text's placeholders."""
    return secrets.token_hex(8)


@dataclasses.dataclass(frozen=True, eq=False)
class BodySlice:
    """``buffer[start:end]``, left in the request body it belongs to."""

    buffer: bytearray
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def __bytes__(self) -> bytes:
        with memoryview(self.buffer) as view:
            return bytes(view[self.start : self.end])


class Base64Literal(BodySlice):
    """The text of one long JSON string literal: base64 characters, then
    at most two ``=`` (already checked)."""

    def decode(self) -> bytearray:
        """Strict ``a2b_base64`` of the text, piece by piece; raises
        ``binascii.Error`` as one call on the whole text would.

        Every piece but the last is whole quads of the alphabet alone, after
        which the decoder is where it started: the last piece (with the
        padding) is decoded as the end of the whole text would be.
        """
        buffer, start, end = self.buffer, self.start, self.end
        data_end = end - _padding(buffer, start, end)
        step = max(PIECE // 4 * 4, 4)
        decoded = bytearray()
        with memoryview(buffer) as view:
            while data_end - start > step:
                decoded += _a2b_base64(view[start : start + step], strict_mode=True)
                start += step
            decoded += _a2b_base64(view[start:end], strict_mode=True)
        return decoded


def find(buffer: bytearray, byte: bytes, start: int, end: int) -> int:
    """``buffer.find(byte, start, end)`` for one byte, PIECE bytes a call."""
    while start < end:
        stop = min(start + PIECE, end)
        found = _find(buffer, byte, start, stop)
        if found >= 0:
            return found
        start = stop
    return -1


def rfind(buffer: bytearray, byte: bytes, start: int, end: int) -> int:
    """``buffer.rfind(byte, start, end)`` for one byte, PIECE bytes a call."""
    while end > start:
        begin = max(end - PIECE, start)
        found = _rfind(buffer, byte, begin, end)
        if found >= 0:
            return found
        end = begin
    return -1


def count(buffer: bytearray, byte: bytes, start: int, end: int, limit: int) -> int:
    """``buffer.count(byte, start, end)``, or a number >= ``limit`` as soon
    as that many are found.

    Found one by one with ``find`` (memchr), at most ``limit`` calls plus
    one a piece: ``count`` compares byte by byte, and a body's fields are
    counted before any is read (a tenth of a 400 kB upload's parsing)."""
    total = 0
    while start < end and total < limit:
        stop = min(start + PIECE, end)
        found = _find(buffer, byte, start, stop)
        if found < 0:
            start = stop
        else:
            total += 1
            start = found + 1
    return total


def read_tree_text(
    value: BodySlice, argument: Callable[[bytes], object]
) -> str | TreeText:
    """The ``files`` text of ``value`` as ``argument`` (the field's
    ``get_argument`` decoding of bytes) makes it: a :class:`TreeText`, or
    the plain text when it has no long base64 literal (or for a
    ``decode_argument`` that does not answer ``str``).

    Raises what ``argument`` raises for the whole text (invalid UTF-8): the
    skeleton is valid UTF-8 exactly when the text is (only ASCII runs were
    replaced, by ASCII), and the text itself is then decoded for the very
    error it gives.
    """
    literals = [
        (start, end)
        for start, end in _quoted_runs(value.buffer, value.start, value.end)
        if _is_base64(value.buffer, start, end)
    ]
    if not literals:
        return argument(bytes(value))
    prefix = f'~{_nonce()}~'
    pieces, placeholders = [], {}
    cursor = value.start
    for index, (start, end) in enumerate(literals):
        pieces.append(bytes(BodySlice(value.buffer, cursor, start)))
        placeholder = f'{prefix}{index}'
        pieces.append(placeholder.encode('ascii'))
        placeholders[placeholder] = Base64Literal(value.buffer, start, end)
        cursor = end
    pieces.append(bytes(BodySlice(value.buffer, cursor, value.end)))
    del literals
    if any(
        prefix.encode('ascii') in piece or _PLACEHOLDER_ESCAPE.search(piece)
        for piece in pieces[::2]
    ):
        return argument(bytes(value))
    skeleton = b''.join(pieces)
    del pieces
    try:
        text = argument(skeleton)
    except Exception:
        # The text has the same fault; raised as it would be for the text.
        return argument(bytes(value))
    if not isinstance(text, str):
        return argument(bytes(value))
    return TreeText(text, prefix, placeholders, lambda: argument(bytes(value)))


class TreeText:
    """A large ``files`` text as its small skeleton and its long literals."""

    def __init__(
        self,
        skeleton: str,
        prefix: str,
        literals: dict[str, Base64Literal],
        plain: Callable[[], object],
    ):
        self.skeleton = skeleton
        self._prefix = prefix
        self._literals = literals
        self._plain = plain

    def parsed(self) -> list | None:
        """The JSON value of the text, each long literal as its
        :class:`Base64Literal`; None when the text must be read the plain
        way. Once only: the buffer is no longer kept by this object.

        Exact: the skeleton spells no placeholder (no escape of their
        characters, none of their text; see :func:`read_tree_text`), so a
        string equal to one is the placeholder put there, a whole string
        token where the literal was. When each of them ends up as the
        ``content`` of an entry of the top-level list, the text parses to
        the same value with the literals there: it is the same sequence of
        tokens, the long literals made of characters that JSON reads as
        themselves. Otherwise (a placeholder lost to a repeated key, or in
        a key, in a nested value, inside a longer string after an escaped
        quote) the plain way decides.
        """
        literals, self._literals = self._literals, {}
        try:
            value = _json_loads(self.skeleton)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, list):
            return None
        found = set()
        for entry in value:
            content = entry.get(CONTENT) if isinstance(entry, dict) else None
            if isinstance(content, str) and content in literals:
                if content in found:
                    return None
                found.add(content)
                entry[CONTENT] = literals[content]
        if len(found) != len(literals):
            return None
        self._plain = None
        return value

    def plain(self) -> object:
        """The whole text, as ``get_argument`` answers it (the plain way)."""
        plain, self._plain = self._plain, None
        return plain()


def _quoted_runs(buffer: bytearray, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(a, b)`` of every run ``buffer[a:b]`` of at least LONG_LITERAL
    bytes with a quote on each side and none inside.

    Each window of LONG_LITERAL bytes is searched from its end, so short
    runs are skipped many at a time: two steps advance past at least one
    window, whatever the quotes.
    """
    first = find(buffer, QUOTE, start, end)
    if first < 0:
        return
    cursor = first + 1
    while cursor < end:
        window_end = min(cursor + LONG_LITERAL, end)
        last = rfind(buffer, QUOTE, cursor, window_end)
        if last >= 0:
            cursor = last + 1
            continue
        closing = find(buffer, QUOTE, window_end, end)
        if closing < 0:
            return
        yield cursor, closing
        cursor = closing + 1


def _padding(buffer: bytearray, start: int, end: int) -> int:
    """How many ``=`` (up to two) end ``buffer[start:end]``."""
    pads = 0
    while pads < 2 and end - pads > start and buffer[end - pads - 1] == PADDING[0]:
        pads += 1
    return pads


def _is_base64(buffer: bytearray, start: int, end: int) -> bool:
    """Whether ``buffer[start:end]`` is base64 characters and then at most
    two ``=``: ASCII without escapes, the same as bytes and as text."""
    end -= _padding(buffer, start, end)
    with memoryview(buffer) as view:
        while start < end:
            stop = min(start + PIECE, end)
            if _translate(bytearray(view[start:stop]), None, BASE64_ALPHABET):
                return False
            start = stop
    return True
