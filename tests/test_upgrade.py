"""Upgrading in place from ngshare 0.6.0: the real service adopts a database
and storage folder written by the released 0.6.0 and answers as 0.6.0 did.

The fixture (``tests/fixtures/ngshare-0.6.0``, see its README) holds the
database, the storage folder and ``manifest.json``: what 0.6.0 answered to
29 requests. The only differences allowed: a timestamp may carry the
` UTC` suffix (same instant), base64 may break lines differently (same
bytes). What the tests expect of the storage folder (the orphan, the blobs)
is computed from the fixture's own files and rows, never hard-coded.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _api import ok
from _fixture060 import (
    FIXTURE,
    MANIFEST,
    copy_deployment,
    fixture_rows,
    sqlite_url,
)
from _servers import free_port, ngshare_env, run_ngshare
from sqlalchemy import text

from ngshare import gc
from ngshare.blobs.folder import FolderStore
from ngshare.database import migrate
from ngshare.database.engine import make_engine

INIT = 'aa00db20c10a'
FILE_SIZE = '1921a169739b'
NORMALISE = 'c3f1e2a9b4d7'


def query(db: Path, sql: str, *params) -> list[tuple]:
    """The rows of one query on a SQLite file opened read-only."""
    c = sqlite3.connect(f'file:{db}?mode=ro', uri=True)
    try:
        return c.execute(sql, params).fetchall()
    finally:
        c.close()


def files_on_disk(storage: Path) -> dict[str, bytes]:
    """Every file under ``storage`` by its key (relative path), with content."""
    return {
        path.relative_to(storage).as_posix(): path.read_bytes()
        for path in sorted(storage.rglob('*'))
        if path.is_file()
    }


# The files 0.6.0 left behind: on disk, but no row refers to them.
FIXTURE_ORPHANS = sorted(
    set(files_on_disk(FIXTURE / 'files')) - {row[0] for row in fixture_rows()}
)


def revision_of(db: Path) -> str:
    return query(db, 'SELECT version_num FROM alembic_version')[0][0]


def dump(db: Path) -> dict[str, list]:
    """Schema and every row of every table, in storage order."""
    c = sqlite3.connect(f'file:{db}?mode=ro', uri=True)
    try:
        tables = [
            name
            for (name,) in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        result = {
            'schema': c.execute(
                'SELECT type, name, sql FROM sqlite_master ORDER BY name'
            ).fetchall()
        }
        for table in tables:
            result[table] = c.execute(
                f'SELECT * FROM "{table}" ORDER BY rowid'
            ).fetchall()
        return result
    finally:
        c.close()


# --------------------------------------------------------------------------
# comparing answers with the manifest


def parse_timestamp(text: str) -> datetime.datetime:
    """A submission timestamp, with or without the ` UTC` suffix."""
    text = text[: -len(' UTC')] if text.endswith(' UTC') else text
    for pattern in ('%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S'):
        try:
            return datetime.datetime.strptime(text, pattern)
        except ValueError:
            pass
    raise ValueError(f'not a timestamp: {text!r}')


def decode_content(text: str) -> bytes:
    """base64 with or without line breaks."""
    return base64.b64decode(''.join(text.split()), validate=True)


# What a 0.6.0 deployment, which knew no deadlines, is now also answered
# (documented additions, docs/api.md): for each top-level key, the value
# it must have for an answer with no due date anywhere.
NO_DEADLINE = {'due': None, 'late_policy': 'accept', 'grace_seconds': 0, 'cutoff': None}
ON_TIME = {'due': None, 'late': False, 'seconds_late': 0}


def _addition_differences(expected: dict, actual: dict) -> list[str]:
    """How the additions of a top-level answer differ from "no deadline"."""
    found = []
    for name in set(actual) - set(expected):
        value = actual[name]
        if name == 'deadlines' and 'assignments' in expected:
            ok = value == dict.fromkeys(expected['assignments'], NO_DEADLINE)
        elif name == 'lateness' and 'submissions' in expected:
            ok = value == [ON_TIME] * len(expected['submissions'])
        elif name in ON_TIME and 'timestamp' in expected:
            ok = value == ON_TIME[name]
        else:
            ok = False
        if not ok:
            found.append(f'$.{name}: {value!r} is no documented addition here')
    return found


def differences(expected, actual) -> list[str]:
    """How the answer ``actual`` differs from ``expected`` beyond the
    allowed differences (timestamps' ` UTC`, base64 line breaks, the
    documented additions to the answer); [] if it does not."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = _addition_differences(expected, actual)
        kept = {name: value for name, value in actual.items() if name in expected}
        return found + _differences(expected, kept)
    return _differences(expected, actual)


def _differences(expected, actual, where: str = '$', key: str = '') -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f'{where}: expected an object, got {actual!r}']
        if set(expected) != set(actual):
            return [f'{where}: keys {sorted(actual)}, expected {sorted(expected)}']
        found = []
        for name, value in expected.items():
            found += _differences(value, actual[name], f'{where}.{name}', name)
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f'{where}: expected {expected!r}, got {actual!r}']
        found = []
        for index, (want, got) in enumerate(zip(expected, actual)):
            found += _differences(want, got, f'{where}[{index}]', key)
        return found
    if isinstance(expected, str) and isinstance(actual, str):
        if key == 'timestamp':
            try:
                if parse_timestamp(actual) == parse_timestamp(expected):
                    return []
            except ValueError:
                pass
            return [f'{where}: timestamp {actual!r}, expected {expected!r}']
        if key == 'content':
            try:
                if decode_content(actual) == decode_content(expected):
                    return []
            except ValueError:
                pass
            return [f'{where}: content {actual[:40]!r}... decodes to other bytes']
    if type(actual) is not type(expected) or actual != expected:
        return [f'{where}: expected {expected!r}, got {actual!r}']
    return []


def ask(server, name: str):
    method, path, user, params = MANIFEST[name]['request']
    segments = tuple(path.strip('/').split('/'))
    return server.request(method, segments, user=user, params=params)


def assert_answers_as_060(server) -> None:
    """Every request of the manifest is answered as 0.6.0 answered it."""
    assert len(MANIFEST) == 29
    problems = []
    for name, recorded in MANIFEST.items():
        resp = ask(server, name)
        if resp.status_code != 200:
            problems.append(f'{name}: {resp.status_code} {resp.text[:300]}')
            continue
        problems += [
            f'{name}: {problem}'
            for problem in differences(recorded['response'], resp.json())
        ]
    assert problems == [], '\n'.join(problems) + '\n' + server.describe()


def assert_blobs_intact(db: Path, storage: Path) -> None:
    """Every row's blob reads back through the blob store with its md5 and
    size, and the rows are those of 0.6.0 under the same (legacy) names."""
    rows = fixture_rows(db)
    assert sorted(rows) == sorted(fixture_rows())
    store = FolderStore(storage)
    for actual_name, checksum, size in rows:
        with store.open(actual_name) as stream:
            content = stream.read()
        assert hashlib.md5(content).hexdigest() == checksum, actual_name
        assert len(content) == size, actual_name


def test_comparison_allows_only_the_documented_differences():
    recorded = {
        'files': [{'path': 'a', 'checksum': 'x', 'content': 'YWJj\nZGVm\n'}],
        'timestamp': '2026-11-27 14:39:18.036543',
        'success': True,
    }
    same = {
        'files': [{'path': 'a', 'checksum': 'x', 'content': 'YWJjZGVm'}],
        'timestamp': '2026-11-27 14:39:18.036543 UTC',
        'success': True,
    }
    assert differences(recorded, same) == []
    for change in (
        {'timestamp': '2026-11-27 14:39:18.036544 UTC'},
        {'timestamp': '2026-11-27 14:39:18.036543 CET'},
        {'timestamp': '2026-11-27 15:39:18.036543+01:00'},
        {'success': 1},
        {'files': [{'path': 'a', 'checksum': 'x', 'content': 'YWJjZGVn'}]},
        {'files': [{'path': 'a', 'checksum': 'x', 'content': 'YWJjZGVm', 'y': 1}]},
        {'files': []},
        {'extra': None},
        # The deadline additions, with anything but "no deadline".
        {'late': True},
        {'seconds_late': 1.5},
        {'due': '2026-11-27T14:39:18+00:00'},
        {'lateness': []},
    ):
        assert differences(recorded, {**same, **change}) != [], change
    on_time = {'due': None, 'late': False, 'seconds_late': 0.0}
    assert differences(recorded, {**same, **on_time}) == []
    entry = {'student_id': 's', 'timestamp': '2026-11-27 14:39:18.036543'}
    listed = {'success': True, 'submissions': [entry]}
    judged = {**listed, 'lateness': [on_time]}
    assert differences(listed, judged) == []
    assert differences(listed, {**judged, 'lateness': [on_time, on_time]}) != []
    # The allowances apply only where the manifest has timestamps and content.
    assert differences({'path': 'YWJj'}, {'path': 'YWJj\n'}) != []


def test_fixture_is_what_the_readme_describes():
    assert len(files_on_disk(FIXTURE / 'files')) == 22
    assert len(fixture_rows()) == 21
    assert len(FIXTURE_ORPHANS) == 1
    assert revision_of(FIXTURE / 'ngshare.db') == FILE_SIZE


# --------------------------------------------------------------------------
# adopting the 0.6.0 deployment


@pytest.mark.parametrize('start_at', [FILE_SIZE, INIT])
def test_service_adopts_060_and_answers_as_before(start_ngshare, tmp_path, start_at):
    """Start the service, with its default upgrade, on the 0.6.0 database as
    written (1921a169739b) or as a database at the first revision."""
    db, storage = copy_deployment(tmp_path / 'deployment')
    if start_at != FILE_SIZE:
        engine = make_engine(sqlite_url(db))
        try:
            migrate.downgrade(engine, start_at, str(storage))
        finally:
            engine.dispose()
    assert revision_of(db) == start_at

    server = start_ngshare(hub_mode=False, database_url=sqlite_url(db), storage=storage)

    assert revision_of(db) == migrate.head_revision()
    assert_answers_as_060(server)
    assert_blobs_intact(db, storage)
    # Nothing was moved or removed: the legacy names keep working.
    assert files_on_disk(storage) == files_on_disk(FIXTURE / 'files')


def expected_history(course: str) -> list[tuple]:
    """The entries the manifest's requests make in ``course``, in order:
    a student's download of an assignment (a fetch), an instructor's of a
    submission (a collect), a student's of feedback that has files."""
    actions = {'assignment': 'fetch', 'submission': 'collect', 'feedback': None}
    entries = []
    for recorded in MANIFEST.values():
        _method, path, user, _params = recorded['request']
        kind, *names = path.strip('/').split('/')
        if kind not in actions or names[0] != course:
            continue
        _course, assignment, *student = names
        action = actions[kind] or (
            'fetch_feedback' if recorded['response']['files'] else None
        )
        if action is not None:
            entries.append((action, user, assignment, student[0] if student else user))
    return entries


def history_of(server, course: str) -> list[dict]:
    answer = ok(
        server.get(
            ('history', course), user='root', params={'order': 'oldest', 'limit': 1000}
        )
    )
    return answer['history']


def test_history_starts_empty_and_survives_a_restart(start_ngshare, tmp_path):
    """0.6.0 recorded nothing: the upgraded database has an empty history.
    What its clients then download is recorded, and a restart on the
    database (now at head) keeps every entry as it was."""
    db, storage = copy_deployment(tmp_path / 'deployment')
    url = sqlite_url(db)
    server = start_ngshare(hub_mode=False, database_url=url, storage=storage)
    assert query(db, 'SELECT count(*) FROM history') == [(0,)]
    courses = ('NBG 101', 'ECS193')
    assert all(history_of(server, course) == [] for course in courses)

    assert_answers_as_060(server)
    recorded = {course: history_of(server, course) for course in courses}
    for course, entries in recorded.items():
        assert [
            (e['action'], e['user'], e['assignment_id'], e['student_id'])
            for e in entries
        ] == expected_history(course), course
    assert len(recorded['NBG 101']) > 6
    server.stop()

    again = start_ngshare(hub_mode=False, database_url=url, storage=storage)
    assert revision_of(db) == migrate.head_revision()
    assert {course: history_of(again, course) for course in courses} == recorded


def test_gc_and_verify_on_the_adopted_deployment(start_ngshare, tmp_path):
    db, storage = copy_deployment(tmp_path / 'deployment')
    server = start_ngshare(hub_mode=False, database_url=sqlite_url(db), storage=storage)
    flags = ['--database', sqlite_url(db), '--storage', str(storage)]
    before = files_on_disk(storage)

    # A dry run (the default) reports the one orphan and changes nothing.
    report = run_ngshare(['gc', *flags], module='ngshare.admin')
    assert report.returncode == 0, report.output
    assert report.stdout.splitlines() == FIXTURE_ORPHANS
    assert files_on_disk(storage) == before

    removal = run_ngshare(['gc', '--delete', *flags], module='ngshare.admin')
    assert removal.returncode == 0, removal.output
    assert removal.stdout.splitlines() == FIXTURE_ORPHANS
    after = files_on_disk(storage)
    assert after == {k: v for k, v in before.items() if k not in FIXTURE_ORPHANS}

    again = run_ngshare(['gc', '--delete', *flags], module='ngshare.admin')
    assert again.returncode == 0 and again.stdout == '', again.output
    assert files_on_disk(storage) == after

    # The server, running all along, still answers everything.
    assert_answers_as_060(server)

    checked = run_ngshare(['verify', *flags], module='ngshare.admin')
    assert checked.returncode == 0, checked.output
    assert 'verified 21 files' in checked.stderr

    # Deleting an assignment treats its 0.6.0-named blobs like any other:
    # each is removed, or kept only while a row still refers to it (e.g. to
    # keep the deletion restorable); it never becomes an orphan.
    assignment_blobs = {
        name
        for (name,) in query(
            db,
            'SELECT f.actual_name FROM files f JOIN assignments a'
            ' ON a._id = f.assignment_id WHERE a.id = ?',
            'Assignment 2',
        )
    }
    assert assignment_blobs and all('/' not in name for name in assignment_blobs)
    ok(server.delete(('assignment', 'NBG 101', 'Assignment 2'), user='kevin'))
    engine = make_engine(sqlite_url(db))
    try:
        still_referenced = gc.referenced_keys(engine)
    finally:
        engine.dispose()
    for name in assignment_blobs:
        assert not (storage / name).exists() or name in still_referenced, name
    none_left = run_ngshare(
        ['gc', '--grace-seconds', '0', *flags], module='ngshare.admin'
    )
    assert none_left.returncode == 0 and none_left.stdout == '', none_left.output

    # A changed blob and a missing one make verify fail, naming both.
    rows = fixture_rows(db)
    changed, missing = rows[0][0], rows[-1][0]
    with open(storage / changed, 'ab') as stream:
        stream.write(b'\n')
    (storage / missing).unlink()
    broken = run_ngshare(['verify', *flags], module='ngshare.admin')
    assert broken.returncode == 1, broken.output
    bad = sorted(line.split(':', 1)[0] for line in broken.stdout.splitlines())
    assert bad == sorted([changed, missing]), broken.output
    assert 'missing' in broken.stdout and 'md5' in broken.stdout


# --------------------------------------------------------------------------
# a migration interrupted half way


INTERRUPTING_NGSHARE = """
import os, sys

import alembic.util

STEP = os.environ['NGSHARE_TEST_INTERRUPT_AFTER']
load_python_file = alembic.util.load_python_file


def load(directory, filename):
    module = load_python_file(directory, filename)
    if getattr(module, 'revision', None) == {revision!r}:
        step = getattr(module, STEP)

        def step_then_die(*args, **kwargs):
            step(*args, **kwargs)
            print('interrupted after', STEP, flush=True)
            os._exit(86)

        setattr(module, STEP, step_then_die)
    return module


alembic.util.load_python_file = load

from ngshare.cli import main

main(sys.argv[1:])
"""


def run_interrupted(tmp_path: Path, url: str, storage: Path, step: str) -> None:
    """Start ngshare through a wrapper that kills the process (``os._exit``:
    no clean-up, no rollback) right after ``step`` of the normalising
    revision."""
    wrapper = tmp_path / 'interrupting_ngshare.py'
    wrapper.write_text(INTERRUPTING_NGSHARE.format(revision=NORMALISE))
    command = [
        sys.executable,
        str(wrapper),
        '--vngshare',
        '--port',
        str(free_port()),
        '--database',
        url,
        '--storage',
        str(storage),
    ]
    done = subprocess.run(
        command,
        env=ngshare_env({'NGSHARE_TEST_INTERRUPT_AFTER': step}),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 86, done.stdout + done.stderr
    assert f'interrupted after {step}' in done.stdout


@pytest.mark.parametrize(
    'step', ['link_files_to_owners', 'create_roster', 'add_constraints']
)
def test_interrupted_migration_leaves_the_database_as_it_was(
    start_ngshare, tmp_path, step
):
    """The migration dies after a step of the normalising revision; the
    database is still the 0.6.0 one, and the next start migrates it
    completely."""
    db, storage = copy_deployment(tmp_path / 'deployment')
    before = dump(db)

    run_interrupted(tmp_path, sqlite_url(db), storage, step)

    assert revision_of(db) == FILE_SIZE
    assert dump(db) == before
    c = sqlite3.connect(db)
    assert c.execute('PRAGMA integrity_check').fetchall() == [('ok',)]
    c.close()

    server = start_ngshare(hub_mode=False, database_url=sqlite_url(db), storage=storage)
    assert revision_of(db) == migrate.head_revision()
    assert_answers_as_060(server)
    assert_blobs_intact(db, storage)


# The 0.6.0 tables, parents first.
TABLES_060 = (
    'users',
    'courses',
    'assignments',
    'submissions',
    'files',
    'instructor_assoc_table',
    'student_assoc_table',
    'assignment_files_assoc_table',
    'submission_files_assoc_table',
    'feedback_files_assoc_table',
)


def postgres_dump(engine) -> dict[str, list]:
    with engine.connect() as connection:
        version = connection.execute(text('SELECT version_num FROM alembic_version'))
        result = {'alembic_version': version.all()}
        for table in TABLES_060:
            rows = connection.execute(text(f'SELECT * FROM {table}')).all()
            result[table] = sorted((tuple(row) for row in rows), key=repr)
        return result


def test_interrupted_migration_on_postgres(start_ngshare, tmp_path, postgres_url):
    """The 0.6.0 data in a PostgreSQL database at 1921a169739b: an
    interrupted migration leaves it as it was (and releases the migration
    lock), and the next start migrates it and answers as 0.6.0 did."""
    _db, storage = copy_deployment(tmp_path / 'deployment')
    engine = make_engine(postgres_url)
    try:
        migrate.upgrade(engine, None, revision=FILE_SIZE)
        source = sqlite3.connect(f'file:{FIXTURE / "ngshare.db"}?mode=ro', uri=True)
        with engine.begin() as connection:
            for table in TABLES_060:
                cursor = source.execute(f'SELECT * FROM {table}')
                columns = [column[0] for column in cursor.description]
                rows = [dict(zip(columns, row)) for row in cursor]
                assert rows or table == 'feedback_files_assoc_table'
                if rows:
                    connection.execute(
                        text(
                            f'INSERT INTO {table} ({", ".join(columns)}) VALUES'
                            f' ({", ".join(":" + c for c in columns)})'
                        ),
                        rows,
                    )
        source.close()
        before = postgres_dump(engine)

        run_interrupted(tmp_path, postgres_url, storage, 'create_roster')

        assert postgres_dump(engine) == before
    finally:
        engine.dispose()
    server = start_ngshare(hub_mode=False, database_url=postgres_url, storage=storage)
    assert_answers_as_060(server)


# --------------------------------------------------------------------------
# databases this ngshare must not run on


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_error_line(done, *fragments: str) -> str:
    shown = f'rc={done.returncode}\n{done.output}'
    assert done.returncode == 1, shown
    errors = [
        line for line in done.stderr.splitlines() if line.startswith('ngshare: error:')
    ]
    assert len(errors) == 1, shown
    assert 'Traceback' not in done.output, shown
    for fragment in fragments:
        assert fragment in errors[0], shown
    return errors[0]


def test_database_of_a_newer_ngshare_is_refused_untouched(start_ngshare, tmp_path):
    db, storage = copy_deployment(tmp_path / 'deployment')
    engine = make_engine(sqlite_url(db))
    try:
        migrate.upgrade(engine, str(storage))
    finally:
        engine.dispose()
    # What a later ngshare would leave: a revision after ours.
    c = sqlite3.connect(db)
    with c:
        c.execute("UPDATE alembic_version SET version_num = 'f0e1d2c3b4a5'")
        c.execute('CREATE TABLE added_later (x INTEGER)')
    c.close()
    before, files = digest(db), files_on_disk(storage)

    for args in ([], ['--no-upgrade-db']):
        done = start_ngshare(
            hub_mode=False,
            database_url=sqlite_url(db),
            storage=storage,
            args=args,
            expect_fail=True,
        )
        assert_one_error_line(done, 'f0e1d2c3b4a5', 'newer ngshare')
        assert digest(db) == before
        assert files_on_disk(storage) == files

    admin = run_ngshare(
        ['gc', '--database', sqlite_url(db), '--storage', str(storage)],
        module='ngshare.admin',
    )
    assert admin.returncode == 2, admin.output
    assert 'f0e1d2c3b4a5' in admin.stderr
    assert digest(db) == before


def test_no_upgrade_db_refuses_the_060_database_untouched(start_ngshare, tmp_path):
    db, storage = copy_deployment(tmp_path / 'deployment')
    before = digest(db)
    done = start_ngshare(
        hub_mode=False,
        database_url=sqlite_url(db),
        storage=storage,
        args=['--no-upgrade-db'],
        expect_fail=True,
    )
    line = assert_one_error_line(
        done, FILE_SIZE, migrate.head_revision(), 'without --no-upgrade-db'
    )
    assert 'ngshare-admin upgrade' in line
    assert digest(db) == before

    # Doing what the message says: upgrade, then --no-upgrade-db starts.
    upgraded = run_ngshare(
        ['upgrade', '--database', sqlite_url(db), '--storage', str(storage)],
        module='ngshare.admin',
    )
    assert upgraded.returncode == 0, upgraded.output
    assert f'from revision {FILE_SIZE} to {migrate.head_revision()}' in upgraded.stderr
    server = start_ngshare(
        hub_mode=False,
        database_url=sqlite_url(db),
        storage=storage,
        args=['--no-upgrade-db'],
    )
    assert_answers_as_060(server)
