"""Raw-parts uploads built by hand, shared by the upload test modules.

``test_exchange_uploads.py`` (the server's answers to raw-parts uploads) and
``test_exchange_uploads_plugin.py`` (the plugin's two encodings, and its
fallback against ngshare 0.6.0) send and check the same trees: the contents
that look like multipart framing, their manifest, a raw-parts request built
with ``requests`` and a multipart body built byte by byte. The write-path
tests (``test_write_path*.py``) also hook into the preparation of an
upload (:class:`Preparations`).
"""

from __future__ import annotations

import hashlib
import json

import requests
from _api import ok, tree

__all__ = [
    'ADMIN',
    'CONTENTS',
    'HEADER',
    'MULTIPART',
    'Preparations',
    'URLENCODED',
    'hand_built',
    'manifest',
    'paths',
    'md5',
    'raw_parts',
    'seed_course',
]

HEADER = 'Ngshare-Upload-Formats'
ADMIN = 'root'
MULTIPART = 'multipart/form-data'
URLENCODED = 'application/x-www-form-urlencoded'

# Contents that look like framing, and one of each kind of byte.
CONTENTS = {
    'ps1.ipynb': b'{"cells": []}\n',
    'data/bytes.bin': bytes(range(256)) * 4,
    'data/empty.txt': b'',
    'données/zoë.txt': '\r\n--boundary\r\n\r\n--\r\nünïcode'.encode(),
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest(files: dict[str, bytes], *, checksums: bool = True) -> str:
    return json.dumps(
        [
            {'path': p, **({'checksum': md5(c)} if checksums else {})}
            for p, c in files.items()
        ]
    )


def raw_parts(
    server, method, path, user, files=None, *, parts=None, fields=None, **options
):
    """A raw-parts upload built by hand: ``fields`` (and ``user``), the
    manifest of ``files`` and one part per file, or exactly ``parts``."""
    if parts is None:
        parts = [('manifest', (None, manifest(files), 'application/json'))]
        parts += [
            ('file', (str(i), content, 'application/octet-stream'))
            for i, content in enumerate(files.values())
        ]
    answer = requests.request(
        method,
        server.url(path),
        data={**(fields or {}), 'user': user},
        files=parts,
        timeout=60,
        **options,
    )
    answer.ngshare_debug = server.debug  # for _api.err, as server.request sets it
    return answer


def hand_built(server, path, body: bytes, boundary: str = 'XyZ'):
    return requests.post(
        server.url(path),
        data=body,
        headers={'Content-Type': f'{MULTIPART}; boundary={boundary}'},
        timeout=60,
    )


class Preparations:
    """Hooks around the preparation of uploads in an in-process server.

    The handlers decode, hash and store a tree before the transaction
    through ``prepare_form`` and ``prepare_parts``, called by those names in
    :mod:`ngshare.handlers.uploading`; this replaces both there (``monkeypatch``
    undoes it) with the real function between two hooks, so that a test can
    hold one upload in its preparation, or act between its preparation and
    its transaction, deterministically. ``before()`` runs first, in the
    worker thread, before anything is decoded; ``after(upload)`` gets the
    :class:`~ngshare.operations.uploads.PreparedUpload` (its ``files`` name
    the upload's paths, its ``created`` the blobs it wrote). Every
    preparation is kept in ``prepared``, in the order they finished.
    """

    def __init__(self, monkeypatch):
        from ngshare.handlers import uploading

        self.before = lambda: None
        self.after = lambda upload: None
        self.prepared: list = []
        real_form, real_parts = uploading.prepare_form, uploading.prepare_parts

        def form(*args, **kwargs):
            self.before()
            return self._done(real_form(*args, **kwargs))

        def parts(*args, **kwargs):
            self.before()
            return self._done(real_parts(*args, **kwargs))

        monkeypatch.setattr(uploading, 'prepare_form', form)
        monkeypatch.setattr(uploading, 'prepare_parts', parts)

    def _done(self, upload):
        self.prepared.append(upload)
        self.after(upload)
        return upload


def paths(upload) -> list[str]:
    """The paths of a prepared upload's tree (none for a refused tree)."""
    return [item.path for item in upload.files]


def seed_course(server, course, teacher, students, assignment, released) -> None:
    """``course`` taught by ``teacher`` (created by the admin), with
    ``students`` enrolled and ``assignment`` released as one file of
    ``released`` bytes."""
    ok(
        server.post(
            ('course', course), user=ADMIN, data={'instructors': json.dumps([teacher])}
        )
    )
    for student in students:
        ok(
            server.post(
                ('student', course, student),
                user=teacher,
                data={'first_name': student, 'last_name': 'S', 'email': ''},
            )
        )
    ok(
        server.post(
            ('assignment', course, assignment),
            user=teacher,
            data={'files': tree({'task.txt': released})},
        )
    )
