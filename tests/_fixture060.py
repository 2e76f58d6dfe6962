"""The deployment ngshare 0.6.0 wrote (``tests/fixtures/ngshare-0.6.0``, see
its README), for tests that take it somewhere: a private copy of it, its
rows, and the check that every file 0.6.0 served is still served intact.

test_upgrade.py compares every answer with the manifest; a test that
changes the deployment afterwards (new courses, a move to a bucket) checks
only the downloads (:func:`assert_downloads_as_060`): the same files under
the same paths, each with the bytes and md5 0.6.0 recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

__all__ = [
    'FIXTURE',
    'LONG_AGO',
    'MANIFEST',
    'copy_deployment',
    'assert_downloads_as_060',
    'fixture_rows',
    'sqlite_url',
]

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'ngshare-0.6.0'
MANIFEST = json.loads((FIXTURE / 'manifest.json').read_text('utf-8'))
# Old enough for any grace period: a real 0.6.0 deployment's files are old,
# while a fresh checkout of the fixture has fresh modification times.
LONG_AGO = time.time() - 30 * 24 * 3600


def sqlite_url(db: Path) -> str:
    return f'sqlite:///{db}'


def fixture_rows(db: Path = FIXTURE / 'ngshare.db') -> list[tuple]:
    """(actual_name, checksum, size) of every files row, read-only."""
    connection = sqlite3.connect(f'file:{db}?mode=ro', uri=True)
    try:
        return connection.execute(
            'SELECT actual_name, checksum, size FROM files ORDER BY _id'
        ).fetchall()
    finally:
        connection.close()


def copy_deployment(target: Path) -> tuple[Path, Path]:
    """A private copy of the 0.6.0 database and storage folder, its files
    last written long ago (as a real deployment's are)."""
    target.mkdir(parents=True, exist_ok=True)
    db = target / 'ngshare.db'
    storage = target / 'files'
    shutil.copy2(FIXTURE / 'ngshare.db', db)
    shutil.copytree(FIXTURE / 'files', storage)
    for path in storage.iterdir():
        os.utime(path, (LONG_AGO, LONG_AGO))
    return db, storage


def _files(answer: dict) -> dict[str, tuple[str, bytes]]:
    return {
        entry['path']: (
            entry['checksum'],
            base64.b64decode(''.join(entry['content'].split()), validate=True),
        )
        for entry in answer['files']
    }


def assert_downloads_as_060(server) -> int:
    """Every download of the manifest (assignments, submissions, feedback)
    answers the files 0.6.0 answered, byte for byte, each matching the md5
    0.6.0 recorded; the number of files checked."""
    checked = 0
    for name, recorded in MANIFEST.items():
        if 'files' not in recorded['response']:
            continue
        method, path, user, params = recorded['request']
        answer = server.request(
            method, tuple(path.strip('/').split('/')), user=user, params=params
        )
        assert answer.status_code == 200, f'{name}: {answer.text[:300]}'
        expected, got = _files(recorded['response']), _files(answer.json())
        assert got == expected, name
        for checksum, content in got.values():
            assert hashlib.md5(content).hexdigest() == checksum, name
        checked += len(got)
    assert checked > 0
    return checked
