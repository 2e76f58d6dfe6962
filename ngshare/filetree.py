"""Encoded directory trees: validation and decoding, no I/O.

A tree arrives as the JSON string of a form field: a list of
``{"path", "content"[, "checksum"]}`` with base64 content. Everything about
it is checked here before anything is written, so a bad tree never leaves a
half-stored upload behind.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import re
import sys

from .errors import ApiError, bad_request
from .jsonfields import parse_field

ILLEGAL_PATH = 'Illegal path'
# Any C0 control character, DEL, a backslash, or a surrogate code point (a
# lone one, from a JSON escape such as \ud800: not storable as UTF-8) makes
# a path illegal.
_FORBIDDEN_CHARACTERS = re.compile(r'[\x00-\x1f\x7f\\\ud800-\udfff]')
# What file systems take: 255 bytes a component (NAME_MAX of ext4, XFS,
# btrfs, APFS...), 4,096 bytes a path (Linux's PATH_MAX), in UTF-8.
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
# No real assignment is nested this deep; each level is a folder that every
# fetch and collect creates on someone's disk, and tree walks (shutil's
# copytree and rmtree, nbgrader's own) recurse once per level.
MAX_DEPTH = 64
# Characters base64 content may contain besides its alphabet, and ignored.
_BASE64_WHITESPACE = '\r\n\t '
_BASE64_TEXT = re.compile(r'[A-Za-z0-9+/]*={0,2}')


@dataclasses.dataclass(frozen=True)
class TreeFile:
    """One decoded file of a tree."""

    path: str
    content: bytes
    checksum: str


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def is_legal_path(path: object) -> bool:
    """A relative Unix path of non-empty components, none ``.`` or ``..``,
    that a file system can hold (see the limits above)."""
    if not isinstance(path, str) or not path:
        return False
    if _FORBIDDEN_CHARACTERS.search(path):
        return False
    if len(path.encode('utf-8')) > MAX_PATH_BYTES:
        return False
    parts = path.split('/')
    if len(parts) > MAX_DEPTH:
        return False
    return all(
        part not in ('', '.', '..') and len(part.encode('utf-8')) <= MAX_COMPONENT_BYTES
        for part in parts
    )


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


def decode_content(content: str) -> bytes:
    """Decode base64 with or without line breaks; refuse anything else.

    The same as ``base64.b64decode(content without whitespace,
    validate=True)``, without its copies: ``a2b_base64`` reads an ASCII str
    in place, and whitespace is removed (a copy) only when there is some.
    """
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
    files_json: str | None, max_file_size: int | None = None
) -> list[TreeFile]:
    """Validate and decode the ``files`` form field of an upload.

    A file larger than ``max_file_size`` bytes answers 413 ``File too large``:
    before anything is decoded when the length of its base64 tells, else as
    soon as it is decoded (padding makes the length uncertain by 2 bytes).
    """
    if files_json is None:
        raise bad_request('Please supply files')
    entries = parse_field(files_json, 'Files cannot be JSON decoded')
    if not isinstance(entries, list) or not all(
        _is_well_formed(entry) for entry in entries
    ):
        raise bad_request('Files cannot be JSON decoded')
    paths = [entry['path'] for entry in entries]
    if not all(is_legal_path(path) for path in paths) or has_path_conflict(paths):
        raise bad_request(ILLEGAL_PATH)
    if max_file_size is not None:
        for entry in entries:
            if _decoded_size_at_least(entry['content']) > max_file_size:
                raise ApiError(413, 'File too large')
    tree = []
    for entry in entries:
        # Each content's text is dropped once decoded: the decoded tree and
        # the text of the files still to decode are all that is kept.
        content = decode_content(entry.pop('content'))
        if max_file_size is not None and len(content) > max_file_size:
            raise ApiError(413, 'File too large')
        checksum = md5_hex(content)
        claimed = entry.get('checksum')
        if claimed is not None and claimed.lower() != checksum:
            raise bad_request('Checksum mismatch')
        tree.append(TreeFile(entry['path'], content, checksum))
    return tree


def _decoded_size_at_least(content: str) -> int:
    """A lower bound of the decoded size, without decoding."""
    blanks = sum(content.count(blank) for blank in _BASE64_WHITESPACE)
    return (len(content) - blanks) * 3 // 4 - 2


def _is_well_formed(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get('path'), str)
        and isinstance(entry.get('content'), str)
        and isinstance(entry.get('checksum', ''), str)
    )
