"""Small helpers for building requests and checking ngshare's answers."""

from __future__ import annotations

import base64
import hashlib
import json

import requests

__all__ = ['b64', 'err', 'files_of', 'md5', 'ok', 'seed_course', 'tree']


def b64(data: bytes) -> str:
    """Base64 of ``data`` as text, without line breaks."""
    return base64.b64encode(data).decode('ascii')


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tree(
    files: dict[str, bytes], *, checksums: bool = False, line_breaks: bool = False
) -> str:
    """The JSON ``files`` form field of an encoded directory tree.

    Entries are ``{"path", "content"}`` in the order of ``files``, plus
    ``checksum`` (md5) with ``checksums=True``; ``line_breaks=True`` breaks
    the base64 every 76 characters as MIME encoders do.
    """
    entries = []
    for path, content in files.items():
        text = b64(content)
        if line_breaks:
            text = '\n'.join(text[i : i + 76] for i in range(0, len(text), 76))
        entry = {'path': path, 'content': text}
        if checksums:
            entry['checksum'] = md5(content)
        entries.append(entry)
    return json.dumps(entries)


def files_of(answer: dict) -> dict[str, bytes]:
    """Decode the ``files`` of an answer; each md5 must match its checksum."""
    result = {}
    for entry in answer['files']:
        content = base64.b64decode(entry['content'], validate=True)
        assert md5(content) == entry['checksum'], entry['path']
        assert entry['path'] not in result, f'duplicate path {entry["path"]}'
        result[entry['path']] = content
    return result


def _describe(resp: requests.Response) -> str:
    return (
        f'{resp.request.method} {resp.url} -> {resp.status_code} '
        f'{resp.headers.get("Content-Type")}: {resp.text[:2000]}'
    )


def ok(resp: requests.Response) -> dict:
    """Assert a 200 JSON answer with ``success`` true; return the JSON."""
    assert resp.status_code == 200, _describe(resp)
    assert resp.headers.get('Content-Type', '').startswith('application/json'), (
        _describe(resp)
    )
    body = resp.json()
    assert body.get('success') is True, _describe(resp)
    return body


# The reasons a debug-mode server adds to 403 "Permission denied", in
# parentheses, as 0.6.0 did (docs/behaviour.md, "Debug actions").
DEBUG_REASONS = (
    'not admin',
    'not course instructor',
    'not related to course',
    'cannot modify instructors',
    'cannot modify other instructors',
)


def err(resp: requests.Response, status: int, message: str) -> None:
    """Assert exactly ``{"success": false, "message": message}`` with status.

    From a debug-mode server (``resp.ngshare_debug``, set by
    ``NgshareServer.request``), ``Permission denied`` must carry one of
    :data:`DEBUG_REASONS`; from any other, it must not.
    """
    assert resp.status_code == status, _describe(resp)
    assert resp.headers.get('Content-Type', '').startswith('application/json'), (
        _describe(resp)
    )
    expected = [message]
    if message == 'Permission denied' and getattr(resp, 'ngshare_debug', False):
        expected = [f'{message} ({reason})' for reason in DEBUG_REASONS]
    assert resp.json() in [{'success': False, 'message': text} for text in expected], (
        _describe(resp)
    )


def seed_course(server, course: str, instructor: str, student: str) -> None:
    """As root: ``course`` taught by ``instructor``, with ``student`` enrolled
    and an assignment ``ps1`` released (one small notebook)."""
    ok(
        server.post(
            ('course', course),
            user='root',
            data={'instructors': json.dumps([instructor])},
        )
    )
    ok(
        server.post(
            ('student', course, student),
            user=instructor,
            data={'first_name': 'L', 'last_name': 'L', 'email': 'l@x.org'},
        )
    )
    ok(
        server.post(
            ('assignment', course, 'ps1'),
            user=instructor,
            data={'files': tree({'ps1.ipynb': b'{}'})},
        )
    )
