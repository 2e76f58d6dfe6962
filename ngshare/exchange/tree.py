"""Checking a directory tree sent by ngshare before any of it is written.

The plugin writes whatever an ngshare server sends, into a student's work
folder or an instructor's ``submitted/``. The server checks paths when it
stores them, but the plugin does not trust it: an older server (0.6.0), a
row changed by hand or a hostile server could name a file outside the
destination (``/etc/x``, ``../x``), a file that is also a folder (``a`` and
``a/b``: ``FileExistsError`` half-way through), a name no file system
takes, or content that does not match its checksum. :func:`plan_tree`
refuses such a tree whole, before the first byte is written, with a reason
fit for a log line; :func:`target_inside` refuses, at the moment of
writing, a target that would resolve outside the destination (a symbolic
link in an existing folder).

Pure functions, no nbgrader: tested directly in
``tests/test_exchange_collect_hostile.py``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from pathlib import PurePosixPath

__all__ = [
    'MAX_COMPONENT_BYTES',
    'MAX_PATH_BYTES',
    'PlannedFile',
    'UnsafeTree',
    'check_path',
    'plan_tree',
    'target_inside',
]

#: What common file systems take (ext4, XFS, APFS, NTFS: 255 bytes a name;
#: Linux's PATH_MAX is 4096 bytes).
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096


class UnsafeTree(ValueError):
    """A tree from ngshare that must not be written; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class PlannedFile:
    """One file to write: its checked relative path and ngshare's entry.

    The content is decoded (and its checksum checked) only by
    :meth:`decode`, one file at a time, so a large tree is never held
    decoded all at once besides the answer that carried it.
    """

    path: PurePosixPath
    entry: dict

    def decode(self) -> bytes:
        """The file's bytes; UnsafeTree if not base64 or the checksum
        differs."""
        return _decode(self.entry, self.path)


def check_path(path: object) -> PurePosixPath:
    """``path`` as a relative path that stays inside any folder.

    Refused: anything but a non-empty ``str``; an absolute path; an empty,
    ``.`` or ``..`` component (``a//b``, ``a/./b`` and ``a/`` too, although
    ``PurePosixPath`` would quietly normalise them: the server meant
    something else); a backslash or NUL; text that is not valid UTF-8 (a
    lone surrogate); a component over 255 bytes or a path over 4096.
    """
    if not isinstance(path, str) or not path:
        raise UnsafeTree('ngshare sent a file entry without a path')
    shown = repr(path if len(path) <= 80 else path[:77] + '...')
    if path.startswith('/'):
        raise UnsafeTree(f'the path {shown} is absolute')
    if '\\' in path or '\0' in path:
        raise UnsafeTree(f'the path {shown} holds a backslash or NUL character')
    try:
        size = len(path.encode('utf-8'))
    except UnicodeEncodeError:
        raise UnsafeTree(f'the path {shown} is not valid UTF-8') from None
    parts = path.split('/')
    for part in parts:
        if part in ('', '.', '..'):
            raise UnsafeTree(
                f'the path {shown} has an empty, "." or ".." component'
                ' (it would leave the destination folder or name another file)'
            )
        if len(part.encode('utf-8')) > MAX_COMPONENT_BYTES:
            raise UnsafeTree(
                f'the path {shown} has a name longer than {MAX_COMPONENT_BYTES} bytes'
            )
    if size > MAX_PATH_BYTES:
        raise UnsafeTree(f'the path {shown} is longer than {MAX_PATH_BYTES} bytes')
    return PurePosixPath(*parts)


def _decode(entry: dict, path: PurePosixPath) -> bytes:
    content = entry.get('content')
    if not isinstance(content, str):
        raise UnsafeTree(f'ngshare sent no content for {str(path)!r}')
    try:
        data = base64.b64decode(content)
    except (binascii.Error, ValueError):
        raise UnsafeTree(
            f'ngshare sent content for {str(path)!r} that is not base64'
        ) from None
    checksum = entry.get('checksum')
    if checksum is not None:
        actual = hashlib.md5(data).hexdigest()  # noqa: S324 (ngshare's checksum)
        if not isinstance(checksum, str) or checksum.lower() != actual:
            raise UnsafeTree(
                f'the content of {str(path)!r} does not match its checksum'
                ' (a damaged download or a damaged file on the server)'
            )
    return data


def plan_tree(files: object) -> list[PlannedFile]:
    """ngshare's ``files`` (with content) as files safe to write, in order.

    Raises :class:`UnsafeTree` for the first problem found: a malformed
    entry, an unsafe path (:func:`check_path`), a path sent twice, a file
    that is also a folder of another (``a`` and ``a/b``), an entry without
    text content. Nothing is written and nothing decoded: callers write only
    a plan that passed, decoding each file (:meth:`PlannedFile.decode`,
    which checks base64 and the checksum) into a staged folder that is
    thrown away if one fails.
    """
    if not isinstance(files, list):
        raise UnsafeTree('ngshare sent no list of files')
    plan = []
    seen: set[PurePosixPath] = set()
    for entry in files:
        if not isinstance(entry, dict):
            raise UnsafeTree('ngshare sent a malformed file entry')
        path = check_path(entry.get('path'))
        if path in seen:
            raise UnsafeTree(f'the path {str(path)!r} is sent twice')
        if not isinstance(entry.get('content'), str):
            raise UnsafeTree(f'ngshare sent no content for {str(path)!r}')
        seen.add(path)
        plan.append(PlannedFile(path, entry))
    folders = {parent for path in seen for parent in path.parents}
    for planned in plan:
        path = planned.path
        if path in folders:
            other = min(str(p) for p in seen if path in p.parents)
            raise UnsafeTree(
                f'{str(path)!r} is both a file and the folder of {other!r}'
            )
    return plan


def target_inside(dest: str, path: PurePosixPath) -> str:
    """Where ``path`` goes under ``dest``; UnsafeTree if that is outside.

    Resolves symbolic links (an existing ``data -> /etc`` in the
    destination), so the answer is the file that would really be written.
    """
    root = os.path.realpath(dest)
    target = os.path.join(dest, *path.parts)
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root or real == root:
        raise UnsafeTree(
            f'{str(path)!r} would be written outside the destination folder'
        )
    return target
