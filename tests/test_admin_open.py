"""Opening a deployment: the one "is this a SQLite file" rule, and
``ngshare-admin deleted list`` reading as a reader.

The service and ``ngshare-admin`` open a database through
:mod:`ngshare.database.opening`; the refusals they share (a newer schema, a
bad URL, a missing file) are in test_upgrade.py and test_startup_errors.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import ArgumentError

from ngshare import cli
from ngshare.config import COOKIE_SECRET_NAME
from ngshare.database.urls import sqlite_file


@pytest.mark.parametrize(
    ('url', 'path'),
    [
        ('sqlite:////srv/ngshare/ngshare.db', '/srv/ngshare/ngshare.db'),
        ('sqlite:///relative/x.db', 'relative/x.db'),
        ('sqlite+pysqlite:////tmp/x.db', '/tmp/x.db'),
        ('sqlite://', None),
        ('sqlite:///:memory:', None),
        ('postgresql+psycopg://u:p@127.0.0.1/ngshare', None),
    ],
)
def test_sqlite_file(url, path):
    assert sqlite_file(url) == path


def test_sqlite_file_refuses_what_is_no_url():
    with pytest.raises(ArgumentError):
        sqlite_file('/srv/x.db')


def test_the_cookie_secret_lives_beside_a_sqlite_file_else_in_storage(tmp_path):
    beside = cli.default_cookie_secret_file('sqlite:///data/x.db', str(tmp_path))
    assert beside == str(Path.cwd() / 'data' / COOKIE_SECRET_NAME)
    for url in ('sqlite://', 'postgresql+psycopg://u@127.0.0.1/n', 'not a url'):
        stored = cli.default_cookie_secret_file(url, str(tmp_path))
        assert stored == str(tmp_path / COOKIE_SECRET_NAME), url


def test_deleted_list_reads_while_a_writer_holds_the_write_lock(tmp_path, admin_main):
    """``deleted list`` only reads, so it runs in a read transaction: it
    answers while a writer (the service, a purge) holds SQLite's write lock,
    where a write session's ``BEGIN IMMEDIATE`` would wait out the busy
    timeout and fail with "database is locked"."""
    database = tmp_path / 'ngshare.db'
    database.touch()
    storage = tmp_path / 'files'
    storage.mkdir()
    where = ('--database', f'sqlite:///{database}', '--storage', str(storage))
    assert admin_main('upgrade', *where).returncode == 0
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute('BEGIN IMMEDIATE')
        holder.execute('DELETE FROM deleted_items')
        done = admin_main('deleted', 'list', *where)
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == 'ngshare-admin: 0 deleted items kept'
