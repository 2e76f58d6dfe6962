"""Uploaded directory trees: validation, decoding and hashing, no I/O.

A tree arrives in one of two encodings. The documented one (every client
since 0.6.0) is the JSON string of a form field, ``files``: a list of
``{"path", "content"[, "checksum"]}`` with base64 content
(:func:`parse_tree`). The raw-parts extension (``docs/api.md``) sends a JSON
``manifest`` of ``{"path"[, "checksum"]}`` and the files' bytes as parts of
their own (:func:`check_parts`). Both give the same :class:`TreeFile` list
after the same checks, in the same order, so a bad tree is refused with the
same message whatever its encoding, before anything is written.

Each file is hashed here, once with each function: md5 for the API's
``checksum`` and sha256 for the content-addressed blob key. Nothing after
this hashes the content again (the stores take both from the
:class:`TreeFile`).
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import re
import sys

from .blobs.store import blob_key
from .errors import INVALID_BODY, ApiError, bad_request
from .jsonfields import parse_field
from .large_tree import Base64Literal, TreeText
from .paths import ILLEGAL_PATH, is_legal_path

__all__ = [
    'ILLEGAL_PATH',
    'TreeFile',
    'check_parts',
    'decode_content',
    'has_path_conflict',
    'is_legal_path',
    'md5_hex',
    'parse_tree',
]

# Characters base64 content may contain besides its alphabet, and ignored.
_BASE64_WHITESPACE = '\r\n\t '
_BASE64_TEXT = re.compile(r'[A-Za-z0-9+/]*={0,2}')


@dataclasses.dataclass(frozen=True)
class TreeFile:
    """One decoded file of a tree: its md5 ``checksum`` and blob ``key``."""

    path: str
    # bytes, or a bytearray decoded from a large upload in place
    content: bytes | bytearray
    checksum: str
    key: str


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def has_path_conflict(paths: list[str]) -> bool:
    """Whether a path occurs twice, or names a folder of another path.

    A tree holding a file ``a`` and a file ``a/b`` cannot be written to
    disk (``nbgrader collect`` fails with ``FileExistsError``). In the
    order of paths compared component by component, the paths under a
    folder ``a`` (``a/...``) come right after ``a`` itself, so comparing
    neighbours finds every conflict in O(n log n), whatever the depth.
    """
    ordered = sorted(path.split('/') for path in paths)
    return any(
        following[: len(parts)] == parts
        for parts, following in zip(ordered, ordered[1:])
    )


def decode_content(content: str | Base64Literal) -> bytes | bytearray:
    """Decode base64 with or without line breaks; refuse anything else.

    The same as ``base64.b64decode(content without whitespace,
    validate=True)``, without its copies: ``a2b_base64`` reads an ASCII str
    in place, and whitespace is removed (a copy) only when there is some. A
    long literal of a large upload (which has no whitespace) is decoded
    from the body's bytes, piece by piece.
    """
    if isinstance(content, Base64Literal):
        try:
            return content.decode()
        except binascii.Error:
            raise bad_request('Content cannot be base64 decoded') from None
    for character in _BASE64_WHITESPACE:
        if character in content:
            content = content.replace(character, '')
    try:
        if sys.version_info >= (3, 11):
            return binascii.a2b_base64(content, strict_mode=True)
        if not _BASE64_TEXT.fullmatch(content):
            raise binascii.Error('Non-base64 digit found')
        return binascii.a2b_base64(content)
    except (binascii.Error, ValueError):
        raise bad_request('Content cannot be base64 decoded') from None


def parse_tree(
    files_json: str | TreeText | None, max_file_size: int | None = None
) -> list[TreeFile]:
    """Validate and decode the ``files`` form field of an upload: its text,
    or the :class:`~ngshare.large_tree.TreeText` of a large one.

    A file larger than ``max_file_size`` bytes answers 413 ``File too large``:
    before anything is decoded when the length of its base64 tells, else as
    soon as it is decoded (padding makes the length uncertain by 2 bytes).
    """
    if files_json is None:
        raise bad_request('Please supply files')
    entries = _tree_entries(files_json)
    if max_file_size is not None:
        for entry in entries:
            content = entry['content']
            # Only a content that might be too large has its blanks counted.
            if len(content) * 3 // 4 > max_file_size and (
                _decoded_size_at_least(content) > max_file_size
            ):
                raise ApiError(413, 'File too large')
    tree = []
    for entry in entries:
        # Each content's text is dropped once decoded: the decoded tree and
        # the text of the files still to decode are all that is kept.
        content = decode_content(entry.pop('content'))
        tree.append(_checked_file(entry, content, max_file_size))
    return tree


def check_parts(
    manifest_json: str | None,
    contents: list[bytes],
    max_file_size: int | None = None,
) -> list[TreeFile]:
    """Validate a raw-parts upload: its ``manifest`` and its files' bytes.

    The same checks and messages as :func:`parse_tree`; a manifest that does
    not name as many files as there are file parts is a malformed body.
    """
    if manifest_json is None:
        raise bad_request('Please supply files')
    entries = _entries(manifest_json, None)
    if len(entries) != len(contents):
        raise ApiError(400, INVALID_BODY)
    if max_file_size is not None and any(len(c) > max_file_size for c in contents):
        raise ApiError(413, 'File too large')
    return [
        _checked_file(entry, content, max_file_size)
        for entry, content in zip(entries, contents)
    ]


def _tree_entries(files: str | TreeText) -> list[dict]:
    """The entries of an upload's ``files``; a large one's long contents
    as :class:`Base64Literal`, unless its text must be read the plain way."""
    if not isinstance(files, TreeText):
        return _entries(files, 'content')
    entries = files.parsed()
    if entries is None:
        return _entries(files.plain(), 'content')
    return _checked_entries(entries, 'content')


def _entries(text: str, content_key: str | None) -> list[dict]:
    """The JSON list of file entries, each well formed, paths legal."""
    return _checked_entries(
        parse_field(text, 'Files cannot be JSON decoded'), content_key
    )


def _checked_entries(entries: object, content_key: str | None) -> list[dict]:
    if not isinstance(entries, list) or not all(
        _is_well_formed(entry, content_key) for entry in entries
    ):
        raise bad_request('Files cannot be JSON decoded')
    paths = [entry['path'] for entry in entries]
    if not all(is_legal_path(path) for path in paths) or has_path_conflict(paths):
        raise bad_request(ILLEGAL_PATH)
    return entries


def _checked_file(
    entry: dict, content: bytes | bytearray, max_file_size: int | None
) -> TreeFile:
    """One file, its size and claimed checksum checked, hashed once each."""
    if max_file_size is not None and len(content) > max_file_size:
        raise ApiError(413, 'File too large')
    checksum = md5_hex(content)
    claimed = entry.get('checksum')
    if claimed is not None and claimed.lower() != checksum:
        raise bad_request('Checksum mismatch')
    return TreeFile(entry['path'], content, checksum, blob_key(content))


def _decoded_size_at_least(content: str | Base64Literal) -> int:
    """A lower bound of the decoded size, without decoding."""
    if isinstance(content, Base64Literal):
        return len(content) * 3 // 4 - 2
    blanks = sum(content.count(blank) for blank in _BASE64_WHITESPACE)
    return (len(content) - blanks) * 3 // 4 - 2


def _is_well_formed(entry: object, content_key: str | None) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get('path'), str)
        and (
            content_key is None
            or isinstance(entry.get(content_key), (str, Base64Literal))
        )
        and isinstance(entry.get('checksum', ''), str)
    )
