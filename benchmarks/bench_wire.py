"""Request bodies for the benchmark, built before the clock starts.

The benchmark must measure the servers, not its own client: encoding a
400 KB form in pure Python (what ``requests`` does with a ``data`` dict)
costs the client about as much CPU as the server spends answering it. So
every body is built here, ahead of its step, as bytes, and sent as they are.

Two encodings of a file tree upload:

* ``form``: ``application/x-www-form-urlencoded`` with the tree as the
  JSON field ``files`` (``[{"path", "content" (base64)}]``), what
  ngshare_exchange 0.5.3 and ngshare 0.6.0 speak. The bytes are exactly
  ``urllib.parse.urlencode(fields)``, which is what ``requests`` sends for
  the same ``data`` dict (``tests/test_benchmark_smoke.py`` asserts it);
  only faster: base64 text needs only ``+ / =`` escaped, done by
  ``bytes.replace`` in C, while the small JSON skeleton and the other
  fields go through ``quote_plus``.
* ``multipart``: the raw-parts upload of this ngshare (``docs/api.md``):
  ``multipart/form-data`` with the ordinary fields, a JSON ``manifest``
  (path and md5 of every file, as our plugin sends) and one ``file`` part of
  raw bytes per file, in manifest order.

Big bodies (``bench_big.py``) are generated while they are sent instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
from dataclasses import dataclass

FORM = 'form'
MULTIPART = 'multipart'
ENCODINGS = (FORM, MULTIPART)
FORM_TYPE = 'application/x-www-form-urlencoded'


@dataclass
class Body:
    """A request body ready to send: its bytes (or a streamed body object
    with ``read`` and ``__len__``) and its ``Content-Type``."""

    data: object
    content_type: str

    def __len__(self) -> int:
        return len(self.data)


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------
# The form encoding


def quote(text: str) -> bytes:
    """``quote_plus`` as ``urlencode`` applies it to a value, as bytes."""
    return urllib.parse.quote_plus(text).encode('ascii')


def quote_base64(text: bytes) -> bytes:
    """``quote_plus`` of base64 text: of its alphabet only ``+ / =`` need it."""
    return text.replace(b'+', b'%2B').replace(b'/', b'%2F').replace(b'=', b'%3D')


def tree_json(files: dict[str, bytes]) -> str:
    """The ``files`` field of the documented format, as ``json.dumps`` makes it
    (the slow reference for the tests; ``form_body`` never builds it)."""
    return json.dumps(
        [
            {'path': path, 'content': base64.b64encode(content).decode('ascii')}
            for path, content in files.items()
        ]
    )


def quoted_tree(files: dict[str, bytes]) -> bytes:
    """``quote_plus(tree_json(files))``, without building the JSON text: each
    entry's skeleton is quoted (a few dozen characters), its base64 escaped."""
    pieces = [quote('[')]
    for index, (path, content) in enumerate(files.items()):
        lead = ', ' if index else ''
        pieces.append(quote(f'{lead}{{"path": {json.dumps(path)}, "content": "'))
        pieces.append(quote_base64(base64.b64encode(content)))
        pieces.append(quote('"}'))
    pieces.append(quote(']'))
    return b''.join(pieces)


def form_body(fields: dict[str, str | dict[str, bytes]]) -> Body:
    """``urlencode(fields)`` as bytes, where a dict value is a file tree sent
    as its ``tree_json``; field order kept (``requests`` keeps it too)."""
    pieces = []
    for name, value in fields.items():
        encoded = quoted_tree(value) if isinstance(value, dict) else quote(value)
        pieces.append(quote(name) + b'=' + encoded)
    return Body(b'&'.join(pieces), FORM_TYPE)


# --------------------------------------------------------------------------
# The multipart (raw parts) encoding


def new_boundary() -> str:
    """A boundary that random or notebook content will not contain."""
    return f'ngshare-bench-{secrets.token_hex(16)}'


def part_head(boundary: str, name: str, extra: str = '') -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n'
    ).encode()


def field_parts(boundary: str, fields: dict[str, str]) -> list[bytes]:
    """The ordinary fields: parts without a filename, UTF-8 text values."""
    return [
        part_head(boundary, name) + b'\r\n' + value.encode() + b'\r\n'
        for name, value in fields.items()
    ]


def manifest_part(boundary: str, entries: list[dict[str, str]]) -> bytes:
    return (
        part_head(boundary, 'manifest')
        + b'Content-Type: application/json\r\n\r\n'
        + json.dumps(entries).encode()
        + b'\r\n'
    )


def file_part_head(boundary: str, index: int) -> bytes:
    """The head of the ``index``-th file part (the filename is ignored by
    the server; clients send the index)."""
    return (
        part_head(boundary, 'file', f'; filename="{index}"')
        + b'Content-Type: application/octet-stream\r\n\r\n'
    )


def multipart_content_type(boundary: str) -> str:
    return f'multipart/form-data; boundary={boundary}'


def multipart_body(fields: dict[str, str], files: dict[str, bytes]) -> Body:
    """A raw-parts upload of ``files`` with the ordinary ``fields``."""
    boundary = new_boundary()
    manifest = [{'path': p, 'checksum': md5_hex(c)} for p, c in files.items()]
    pieces = field_parts(boundary, fields)
    pieces.append(manifest_part(boundary, manifest))
    for index, content in enumerate(files.values()):
        pieces += [file_part_head(boundary, index), content, b'\r\n']
    pieces.append(f'--{boundary}--\r\n'.encode())
    return Body(b''.join(pieces), multipart_content_type(boundary))


def upload_body(encoding: str, fields: dict[str, str], files: dict[str, bytes]) -> Body:
    """An upload of the tree ``files`` with ``fields`` in ``encoding``; in
    the form encoding the tree is the ``files`` field, after the others but
    before ``user`` (the order of today's client: ``{**data, 'user': user}``)."""
    if encoding == MULTIPART:
        return multipart_body(fields, files)
    ordered = {k: v for k, v in fields.items() if k != 'user'}
    ordered['files'] = files
    if 'user' in fields:
        ordered['user'] = fields['user']
    return form_body(ordered)


# --------------------------------------------------------------------------
# Answers


def tree_text(files: dict[str, bytes]) -> dict[str, str]:
    """The base64 texts of ``files``, to check answers against (``same_tree``)."""
    return {path: base64.b64encode(c).decode('ascii') for path, c in files.items()}


def same_tree(answer: dict, expected: dict[str, str]) -> bool:
    """Whether a tree answer holds exactly the files of ``tree_text``: their
    base64 texts compared, none decoded (a third of the client's CPU for a
    large fetch); 0.6.0's ``encodebytes`` line breaks are dropped first."""
    found = {}
    for entry in answer['files']:
        text = entry['content']
        found[entry['path']] = text.replace('\n', '') if '\n' in text else text
    return found == expected
