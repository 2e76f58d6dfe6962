"""A directory tree to upload, in either of the two encodings ngshare reads.

Every upload (release, submission, feedback) sends the same tree: paths,
contents and md5 checksums. ngshare's documented API takes it as one form
field, ``files``: JSON with the contents in base64, form-encoded, about 1.37
times the bytes of the files and costly for the server to decode. A server
that answers ``Ngshare-Upload-Formats: multipart`` also takes it as a
``multipart/form-data`` body with each file's raw bytes in a part of its own
and the paths and checksums in a ``manifest`` part (``docs/api.md``,
*Raw-parts uploads*). Both encodings are built here from one list of
:class:`UploadFile`; ``requests`` writes the multipart body itself.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Sequence

__all__ = [
    'MULTIPART',
    'UploadFile',
    'files_field',
    'multipart_parts',
    'upload_file',
]

#: The name of the raw-parts encoding in ``Ngshare-Upload-Formats``.
MULTIPART = 'multipart'


@dataclasses.dataclass(frozen=True)
class UploadFile:
    """One file of a tree: its relative POSIX path, bytes and md5."""

    path: str
    content: bytes
    checksum: str


def upload_file(path: str, content: bytes) -> UploadFile:
    """The file ``path`` with ``content``, its checksum computed once."""
    return UploadFile(path, content, hashlib.md5(content).hexdigest())  # noqa: S324


def files_field(files: Sequence[UploadFile]) -> str:
    """The documented ``files`` field: JSON, base64 contents.

    The text the plugin has always sent (same keys, same order, same JSON
    spacing), so that a server sees the same bytes from this version.
    """
    return json.dumps(
        [
            {
                'path': file.path,
                'content': base64.b64encode(file.content).decode('ascii'),
                'checksum': file.checksum,
            }
            for file in files
        ]
    )


def multipart_parts(files: Sequence[UploadFile]) -> list[tuple[str, tuple]]:
    """The ``manifest`` and ``file`` parts of a raw-parts upload, in the
    form of ``requests``' ``files=`` argument.

    The manifest carries the paths and checksums in the order of the file
    parts; each file part's filename is its index (the server takes paths
    from the manifest only, so no file name needs quoting).
    """
    manifest = json.dumps([{'path': f.path, 'checksum': f.checksum} for f in files])
    parts: list[tuple[str, tuple]] = [
        ('manifest', (None, manifest, 'application/json'))
    ]
    for index, file in enumerate(files):
        parts.append(('file', (str(index), file.content, 'application/octet-stream')))
    return parts
