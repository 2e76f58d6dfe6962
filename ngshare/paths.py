"""What a path inside an uploaded tree may be; pure, a leaf module.

Shared by the tree checks (:mod:`ngshare.filetree`) and the blob stores,
which check their keys with the same rule, so that neither imports the
other.
"""

from __future__ import annotations

import re

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


__all__ = [
    'ILLEGAL_PATH',
    'MAX_COMPONENT_BYTES',
    'MAX_DEPTH',
    'MAX_PATH_BYTES',
    'is_legal_path',
]
