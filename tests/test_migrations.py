"""Database migrations, on real SQLite files and a real PostgreSQL server.

The 0.6.0 fixture is a database written by the released ngshare 0.6.0; what
it must still hold after migrating is computed from its original tables with
plain ``sqlite3``, never hard-coded, so the tests compare the migration with
the data rather than with what the migration is believed to do.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, UniqueConstraint, inspect, text
from sqlalchemy.orm import Session

from ngshare.database import migrate
from ngshare.database.engine import make_engine
from ngshare.database.migrate import MigrationError
from ngshare.database.models import Base, Submission

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'ngshare-0.6.0'
INIT = 'aa00db20c10a'
FILE_SIZE = '1921a169739b'
DELETED_ITEMS = 'e4b7c2d9a1f3'
# The revision before the history (issue 17).
BEFORE_HISTORY = 'b8e3d5a7c9f2'
OLD_TABLES = {
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
}
ROSTER_TABLES = (
    ('instructor_assoc_table', 'instructor'),
    ('student_assoc_table', 'student'),
)
FILE_TABLES = (
    ('assignment_files_assoc_table', 'assignment'),
    ('submission_files_assoc_table', 'submission'),
    ('feedback_files_assoc_table', 'feedback'),
)


@pytest.fixture
def engines():
    """Make engines that are disposed of after the test."""
    made = []

    def make(url: str):
        engine = make_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def deployment(tmp_path) -> tuple[Path, Path]:
    """A private copy of the 0.6.0 database and storage folder."""
    copy = tmp_path / 'ngshare-0.6.0'
    shutil.copytree(FIXTURE, copy)
    return copy / 'ngshare.db', copy / 'files'


def sqlite_url(path: Path) -> str:
    return f'sqlite:///{path}'


def assert_schema_matches_models(engine) -> None:
    """The migrated schema is the schema of the models, constraint names,
    ON DELETE rules and CHECK constraints included (which autogenerate's
    comparison does not look at)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={'compare_type': True})
        assert compare_metadata(context, Base.metadata) == []
        inspector = inspect(connection)
        for table in Base.metadata.sorted_tables:
            want = {
                (fk.name, tuple(fk.column_keys), fk.referred_table.name, fk.ondelete)
                for fk in table.foreign_key_constraints
            }
            got = {
                (
                    fk['name'],
                    tuple(fk['constrained_columns']),
                    fk['referred_table'],
                    fk['options'].get('ondelete'),
                )
                for fk in inspector.get_foreign_keys(table.name)
            }
            assert got == want, table.name
            checks = {
                c.name for c in table.constraints if isinstance(c, CheckConstraint)
            }
            got_checks = {
                c['name'] for c in inspector.get_check_constraints(table.name)
            }
            assert got_checks == checks, table.name
            uniques = {
                c.name for c in table.constraints if isinstance(c, UniqueConstraint)
            }
            got_uniques = {
                c['name'] for c in inspector.get_unique_constraints(table.name)
            }
            assert got_uniques == uniques, table.name
            indexes = {i.name for i in table.indexes}
            got_indexes = {
                i['name']
                for i in inspector.get_indexes(table.name)
                if 'duplicates_constraint' not in i
            }
            assert got_indexes == indexes, table.name


def read_060(db: Path) -> dict:
    """What a 0.6.0 database holds, in the terms of the new schema."""
    c = sqlite3.connect(db)
    try:
        roster: dict[str, list] = {}
        for table, role in ROSTER_TABLES:
            for user, course, *names in c.execute(
                f'SELECT left_id, right_id, first_name, last_name, email'
                f' FROM {table} ORDER BY rowid'
            ):
                entries = roster.setdefault(course, [])
                # An instructor who is also a student stays an instructor.
                if all(entry[0] != user for entry in entries):
                    entries.append((user, role, *names))
        owners = {}
        for table, kind in FILE_TABLES:
            for owner, file_id in c.execute(
                f'SELECT CAST(left_id AS INTEGER), right_id FROM {table}'
            ):
                owners[file_id] = (kind, owner)
        files = sorted(
            (*row, owners[row[0]])
            for row in c.execute(
                'SELECT _id, filename, checksum, actual_name, size FROM files'
            )
            if row[0] in owners
        )
        return {
            'users': sorted(c.execute('SELECT id FROM users')),
            'courses': sorted(c.execute('SELECT _id, id FROM courses')),
            'roster': roster,
            'assignments': sorted(
                c.execute('SELECT _id, id, course_id, due FROM assignments')
            ),
            'submissions': sorted(
                c.execute(
                    'SELECT _id, assignment_id, timestamp, student_id FROM submissions'
                )
            ),
            'files': files,
        }
    finally:
        c.close()


def read_new(db: Path) -> dict:
    """What a migrated database holds."""
    c = sqlite3.connect(db)
    try:
        roster: dict[str, list] = {}
        for course, *entry in c.execute(
            'SELECT c.id, r.user_id, r.role, r.first_name, r.last_name, r.email'
            ' FROM roster r JOIN courses c ON c._id = r.course_id ORDER BY r._id'
        ):
            roster.setdefault(course, []).append(tuple(entry))
        files = []
        for *row, assignment, submission, feedback in c.execute(
            'SELECT _id, filename, checksum, actual_name, size,'
            ' assignment_id, submission_id, feedback_id FROM files ORDER BY _id'
        ):
            owners = [
                (kind, owner)
                for kind, owner in (
                    ('assignment', assignment),
                    ('submission', submission),
                    ('feedback', feedback),
                )
                if owner is not None
            ]
            assert len(owners) == 1, row
            files.append((*row, owners[0]))
        return {
            'users': sorted(c.execute('SELECT id FROM users')),
            'courses': sorted(c.execute('SELECT _id, id FROM courses')),
            'roster': roster,
            'assignments': sorted(
                c.execute('SELECT _id, id, course_id, due FROM assignments')
            ),
            'submissions': sorted(
                c.execute(
                    'SELECT _id, assignment_id, timestamp, student_id FROM submissions'
                )
            ),
            'files': files,
        }
    finally:
        c.close()


def read_tables(db: Path, tables) -> dict:
    """Every row of ``tables`` in storage order, file links as integers."""
    c = sqlite3.connect(db)
    try:
        result = {}
        for table in sorted(tables):
            columns = [row[1] for row in c.execute(f'PRAGMA table_info({table})')]
            if table.endswith('_files_assoc_table'):
                columns = ['CAST(left_id AS INTEGER)', 'right_id']
            result[table] = c.execute(
                f'SELECT {", ".join(columns)} FROM {table} ORDER BY rowid'
            ).fetchall()
        return result
    finally:
        c.close()


def table_names(db: Path) -> set[str]:
    c = sqlite3.connect(db)
    try:
        return {
            name
            for (name,) in c.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        } - {'alembic_version'}
    finally:
        c.close()


def foreign_key_problems(db: Path) -> list:
    c = sqlite3.connect(db)
    try:
        return c.execute('PRAGMA foreign_key_check').fetchall()
    finally:
        c.close()


def assert_blobs_match(db: Path, storage: Path) -> None:
    c = sqlite3.connect(db)
    try:
        rows = c.execute('SELECT actual_name, checksum, size FROM files').fetchall()
    finally:
        c.close()
    assert rows
    for actual_name, checksum, size in rows:
        data = (storage / actual_name).read_bytes()
        assert hashlib.md5(data).hexdigest() == checksum, actual_name
        assert len(data) == size, actual_name


def assert_same_data_as_060(expected: dict, db: Path, storage: Path) -> None:
    # Guard against a vacuous comparison of empty tables.
    assert expected['roster'] and expected['submissions']
    assert any(owner[0] == 'feedback' for *_row, owner in expected['files'])
    assert read_new(db) == expected
    assert_blobs_match(db, storage)
    assert foreign_key_problems(db) == []


# --- the schema --------------------------------------------------------------


def test_empty_sqlite_upgrades_to_the_models(tmp_path, engines):
    engine = engines(sqlite_url(tmp_path / 'new.db'))
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine, None)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert_schema_matches_models(engine)
    # The migration turned foreign keys off on its connection only.
    with engine.connect() as connection:
        assert connection.exec_driver_sql('PRAGMA foreign_keys').scalar() == 1


def test_empty_postgres_upgrades_to_the_models(postgres_url, engines):
    engine = engines(postgres_url)
    assert not migrate.is_current(engine)
    migrate.upgrade(engine, None)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert_schema_matches_models(engine)


def test_postgres_downgrade_to_nothing_and_back(postgres_url, engines):
    engine = engines(postgres_url)
    migrate.upgrade(engine, None)
    migrate.downgrade(engine, INIT)
    assert migrate.current_revision(engine) == INIT
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == OLD_TABLES | {
            'alembic_version'
        }
    migrate.downgrade(engine, 'base')
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {'alembic_version'}
    migrate.upgrade(engine, None)
    assert_schema_matches_models(engine)


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_deleted_items_database_gains_released_blobs(
    backend, request, tmp_path, engines
):
    """A database at e4b7c2d9a1f3 (deleted items, no released blobs) upgrades
    to head keeping its rows, with an empty released_blobs table; going back
    to e4b7c2d9a1f3 drops only that table."""
    if backend == 'sqlite':
        url = sqlite_url(tmp_path / 'deleted.db')
    else:
        url = request.getfixturevalue('postgres_url')
    engine = engines(url)
    migrate.upgrade(engine, None, revision=DELETED_ITEMS)
    item = (
        'INSERT INTO deleted_items (kind, course_name, deleted_at, deleted_by,'
        " payload) VALUES ('course', 'c1', '2024-01-02 03:04:05', 'root', '{}')"
    )
    with engine.begin() as connection:
        connection.exec_driver_sql(item)
        connection.exec_driver_sql(
            "INSERT INTO deleted_blobs (item_id, actual_name) VALUES (1, 'sha256/x')"
        )
        assert 'released_blobs' not in inspect(connection).get_table_names()
    migrate.upgrade(engine, None)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert_schema_matches_models(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql(
            'SELECT course_name FROM deleted_items'
        ).scalars().all() == ['c1']
        assert connection.exec_driver_sql(
            'SELECT actual_name FROM deleted_blobs'
        ).scalars().all() == ['sha256/x']
        assert (
            connection.exec_driver_sql('SELECT count(*) FROM released_blobs').scalar()
            == 0
        )
    migrate.downgrade(engine, DELETED_ITEMS)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert 'released_blobs' not in tables
    assert {'deleted_items', 'deleted_blobs'} <= tables
    migrate.upgrade(engine, None)
    assert_schema_matches_models(engine)


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_history_comes_empty_and_goes_on_downgrade(backend, request, tmp_path, engines):
    """A database at b8e3d5a7c9f2 upgrades to head keeping its rows, with an
    empty history; its entries are kept by a second upgrade (a restart), and
    going back to b8e3d5a7c9f2 drops the history table only."""
    if backend == 'sqlite':
        url = sqlite_url(tmp_path / 'before-history.db')
    else:
        url = request.getfixturevalue('postgres_url')
    engine = engines(url)
    migrate.upgrade(engine, None, revision=BEFORE_HISTORY)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO courses (id) VALUES ('c1')")
        assert 'history' not in inspect(connection).get_table_names()
    migrate.upgrade(engine, None)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert_schema_matches_models(engine)
    entry = (
        'INSERT INTO history (time, action, "user", course, student)'
        " VALUES ('2026-01-02 03:04:05', 'add_student', 'root', 'c1', 's1')"
    )
    with engine.begin() as connection:
        assert connection.exec_driver_sql('SELECT count(*) FROM history').scalar() == 0
        connection.exec_driver_sql(entry)
    migrate.upgrade(engine, None)  # what every start does: nothing here
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            'SELECT action, "user", course, student FROM history'
        ).all()
    assert [tuple(row) for row in rows] == [('add_student', 'root', 'c1', 's1')]
    migrate.downgrade(engine, BEFORE_HISTORY)
    with engine.connect() as connection:
        assert 'history' not in inspect(connection).get_table_names()
        courses = connection.exec_driver_sql('SELECT id FROM courses').scalars()
        assert courses.all() == ['c1']
    migrate.upgrade(engine, None)
    assert_schema_matches_models(engine)


# --- a database written by ngshare 0.6.0 -------------------------------------


def test_060_database_keeps_all_its_data(deployment, engines):
    db, storage = deployment
    expected = read_060(db)
    originals = read_tables(db, ['submissions'])['submissions']
    engine = engines(sqlite_url(db))
    assert migrate.current_revision(engine) == FILE_SIZE
    assert not migrate.is_current(engine)

    migrate.upgrade(engine, str(storage))

    assert migrate.is_current(engine)
    assert_same_data_as_060(expected, db, storage)
    assert_schema_matches_models(engine)
    # 0.6.0 recorded no history: the table is there, empty.
    assert read_tables(db, ['history']) == {'history': []}
    # Submission times read back through the models to the microsecond.
    with Session(engine) as session:
        for _id, _assignment, timestamp, _student in originals:
            stored = session.get(Submission, _id).timestamp
            assert stored == datetime.datetime.fromisoformat(timestamp)
            assert stored.microsecond == int(timestamp.rsplit('.', 1)[1])


def test_060_downgraded_to_init_and_upgraded_again(deployment, engines):
    db, storage = deployment
    expected = read_060(db)
    engine = engines(sqlite_url(db))

    migrate.downgrade(engine, INIT)
    assert migrate.current_revision(engine) == INIT
    c = sqlite3.connect(db)
    assert 'size' not in [row[1] for row in c.execute('PRAGMA table_info(files)')]
    c.close()

    migrate.upgrade(engine, str(storage))
    # Sizes are back, read from the blobs on disk.
    assert_same_data_as_060(expected, db, storage)


def test_file_sizes_stay_unknown_without_storage(deployment, engines):
    db, _storage = deployment
    engine = engines(sqlite_url(db))
    migrate.downgrade(engine, INIT)
    migrate.upgrade(engine, None)
    c = sqlite3.connect(db)
    sizes = {size for (size,) in c.execute('SELECT size FROM files')}
    c.close()
    assert sizes == {None}


def test_downgrade_restores_the_060_tables(deployment, engines):
    db, storage = deployment
    before = read_tables(db, OLD_TABLES)
    engine = engines(sqlite_url(db))
    migrate.upgrade(engine, str(storage))
    assert 'roster' in table_names(db)

    migrate.downgrade(engine, FILE_SIZE)

    assert migrate.current_revision(engine) == FILE_SIZE
    assert table_names(db) == OLD_TABLES
    assert read_tables(db, OLD_TABLES) == before
    assert foreign_key_problems(db) == []


def test_upgrading_twice_changes_nothing(deployment, engines):
    db, storage = deployment
    engine = engines(sqlite_url(db))
    assert not migrate.is_current(engine)
    migrate.upgrade(engine, str(storage))
    assert migrate.is_current(engine)
    c = sqlite3.connect(db)
    schema = c.execute('SELECT sql FROM sqlite_master ORDER BY name').fetchall()
    c.close()
    data = read_tables(db, table_names(db))

    migrate.upgrade(engine, str(storage))

    assert migrate.is_current(engine)
    c = sqlite3.connect(db)
    assert c.execute('SELECT sql FROM sqlite_master ORDER BY name').fetchall() == schema
    c.close()
    assert read_tables(db, table_names(db)) == data


def test_060_anomalies_are_repaired_and_logged(deployment, engines, caplog):
    """What 0.6.0's races and missing constraints could leave behind."""
    db, storage = deployment
    c = sqlite3.connect(db)  # plain sqlite3: foreign keys not enforced
    with c:
        # Both instructor and student of NBG 101: stays an instructor.
        c.execute(
            "INSERT INTO student_assoc_table VALUES ('kevin', 'NBG 101', 'K', 'R', '')"
        )
        # A roster user missing from users.
        c.execute(
            'INSERT INTO student_assoc_table'
            " VALUES ('ghost', 'ECS193', 'G', 'H', 'g@h')"
        )
        # A second 'ps1' in NBG 101, with a file.
        c.execute("INSERT INTO assignments VALUES (40, 'ps1', 1, NULL)")
        c.execute(
            "INSERT INTO files VALUES (50, 'x.ipynb', 'c', "
            "'0d4ad655-f3c9-4c0b-814f-bca24fddac0c.ipynb', 199)"
        )
        c.execute("INSERT INTO assignment_files_assoc_table VALUES ('40', 50)")
        # A file that belongs to nothing.
        c.execute("INSERT INTO files VALUES (51, 'lost', 'c', 'lost.bin', NULL)")
        # A course without a name, with an assignment and a submission.
        c.execute('INSERT INTO courses VALUES (30, NULL)')
        c.execute("INSERT INTO assignments VALUES (41, 'orphan', 30, NULL)")
        c.execute(
            "INSERT INTO submissions VALUES (60, 41, '2026-01-01 00:00:00.000000',"
            " 'eric')"
        )
        # A submission without a timestamp, with a file.
        c.execute("INSERT INTO submissions VALUES (61, 1, NULL, 'eric')")
        c.execute("INSERT INTO files VALUES (52, 'y', 'c', 'y.bin', NULL)")
        c.execute("INSERT INTO submission_files_assoc_table VALUES ('61', 52)")
        # The same submission recorded twice, by a user missing from users.
        for _id in (62, 63):
            c.execute(
                f'INSERT INTO submissions VALUES ({_id}, 3,'
                " '2026-02-02 10:00:00.000001', 'newcomer')"
            )
    c.close()
    engine = engines(sqlite_url(db))

    with caplog.at_level(logging.WARNING, logger='ngshare.migrate'):
        migrate.upgrade(engine, str(storage))

    assert migrate.is_current(engine)
    assert foreign_key_problems(db) == []
    new = read_new(db)
    assert ('kevin', 'instructor', 'Kevin', 'Rong', 'kevin@example.edu') in new[
        'roster'
    ]['NBG 101']
    assert [e[0] for e in new['roster']['NBG 101']].count('kevin') == 1
    assert ('ghost', 'student', 'G', 'H', 'g@h') in new['roster']['ECS193']
    assert ('ghost',) in new['users'] and ('newcomer',) in new['users']
    assert (40, 'ps1 (duplicate 40)', 1, None) in new['assignments']
    assert (1, 'ps1', 1, None) in new['assignments']
    file_ids = {row[0]: row[-1] for row in new['files']}
    assert file_ids[50] == ('assignment', 40)
    assert 51 not in file_ids and 52 not in file_ids
    assert 30 not in dict(new['courses'])
    assert 41 not in {row[0] for row in new['assignments']}
    submissions = {row[0]: row for row in new['submissions']}
    assert 60 not in submissions and 61 not in submissions
    assert submissions[62][2] == '2026-02-02 10:00:00.000001'
    assert submissions[63][2] == '2026-02-02 10:00:00.000002'
    warnings = ' | '.join(
        r.getMessage() for r in caplog.records if r.name == 'ngshare.migrate'
    )
    # The file with no owner, and the one of the submission without a time.
    assert 'Deleted 2 files that belonged to nothing' in warnings
    assert 'also instructors' in warnings
    assert 'Renamed 1 assignments' in warnings
    assert 'Moved 1 submission timestamps' in warnings
    assert 'Deleted 1 incomplete or orphaned courses' in warnings


def test_unversioned_database_is_refused(deployment, tmp_path, engines):
    db, storage = deployment
    c = sqlite3.connect(db)
    with c:
        c.execute('DROP TABLE alembic_version')
    c.close()
    before = read_tables(db, OLD_TABLES)
    engine = engines(sqlite_url(db))
    with pytest.raises(MigrationError, match='no alembic_version'):
        migrate.upgrade(engine, str(storage))
    assert read_tables(db, OLD_TABLES) == before
    assert migrate.current_revision(engine) is None

    # Tables made some other way (here: straight from the models) too.
    other = engines(sqlite_url(tmp_path / 'created.db'))
    Base.metadata.create_all(other)
    with pytest.raises(MigrationError):
        migrate.upgrade(other, None)


def test_dangling_foreign_keys_roll_the_migration_back(tmp_path, engines):
    engine = engines(sqlite_url(tmp_path / 'new.db'))
    migrate.upgrade(engine, None)
    dangling = pytest.raises(MigrationError, match='dangling')
    with dangling, migrate.migration_connection(engine) as connection:
        connection.execute(
            text(
                'INSERT INTO roster (course_id, user_id, role)'
                " VALUES (99, 'nobody', 'student')"
            )
        )
    with engine.connect() as connection:
        assert connection.execute(text('SELECT COUNT(*) FROM roster')).scalar() == 0


# --- PostgreSQL specifics ----------------------------------------------------


def test_postgres_password_with_percent_and_at(postgres_special_password_url, engines):
    url = postgres_special_password_url
    assert '%25' in url and '%40' in url
    engine = engines(url)
    migrate.upgrade(engine, None)
    assert migrate.is_current(engine)
    assert_schema_matches_models(engine)


REPLICA = """
import os, sys, time
from ngshare.database.engine import make_engine
from ngshare.database.migrate import upgrade
url, ready, go = sys.argv[1:]
engine = make_engine(url)
open(ready, 'w').close()
while not os.path.exists(go):
    time.sleep(0.01)
upgrade(engine, None)
engine.dispose()
"""


def test_concurrent_upgrades_on_postgres_migrate_once(postgres_url, engines, tmp_path):
    """Replicas (separate processes) starting together on one empty database:
    all of them start, the schema is created once."""
    go = tmp_path / 'go'
    replicas = []
    for number in range(4):
        ready = tmp_path / f'ready{number}'
        command = [sys.executable, '-c', REPLICA, postgres_url, str(ready), str(go)]
        replicas.append(
            (
                ready,
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in replicas):
            assert time.monotonic() < deadline, 'replicas did not start'
            assert all(process.poll() is None for _, process in replicas)
            time.sleep(0.01)
        go.touch()
        for _, process in replicas:
            _out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    finally:
        for _, process in replicas:
            if process.poll() is None:
                process.kill()
                process.wait()
    engine = engines(postgres_url)
    with engine.connect() as connection:
        versions = connection.execute(text('SELECT version_num FROM alembic_version'))
        assert versions.scalars().all() == [migrate.head_revision()]
    assert_schema_matches_models(engine)


def test_postgres_keeps_data_through_downgrade_and_upgrade(postgres_url, engines):
    engine = engines(postgres_url)
    migrate.upgrade(engine, None)
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO users (id) VALUES ('kevin'), ('eric')",
            "INSERT INTO courses (_id, id) VALUES (1, 'NBG 101')",
            'INSERT INTO roster (course_id, user_id, role, first_name)'
            " VALUES (1, 'kevin', 'instructor', 'Kevin'),"
            " (1, 'eric', 'student', 'Eric')",
            "INSERT INTO assignments (_id, id, course_id) VALUES (1, 'ps1', 1)",
            'INSERT INTO submissions (_id, assignment_id, timestamp, student_id)'
            " VALUES (1, 1, '2026-01-01 10:00:00.123456', 'eric')",
            'INSERT INTO files (filename, checksum, actual_name, assignment_id)'
            " VALUES ('a', 'x', 'a.bin', 1)",
            'INSERT INTO files (filename, checksum, actual_name, feedback_id)'
            " VALUES ('f', 'y', 'f.bin', 1)",
        ):
            connection.execute(text(statement))

    def snapshot():
        with engine.connect() as connection:
            return [
                connection.execute(text(sql)).all()
                for sql in (
                    'SELECT course_id, user_id, role, first_name FROM roster'
                    ' ORDER BY _id',
                    'SELECT _id, assignment_id, timestamp, student_id FROM submissions',
                    'SELECT _id, filename, assignment_id, submission_id, feedback_id'
                    ' FROM files ORDER BY _id',
                )
            ]

    before = snapshot()
    migrate.downgrade(engine, FILE_SIZE)
    with engine.connect() as connection:
        links = connection.execute(
            text('SELECT left_id, right_id FROM feedback_files_assoc_table')
        ).all()
    assert links == [(1, 2)]
    migrate.upgrade(engine, None)
    assert snapshot() == before
    assert before[1][0][2] == datetime.datetime(2026, 1, 1, 10, 0, 0, 123456)


# --- developer tooling -------------------------------------------------------


def test_alembic_command_line_sees_no_difference(tmp_path):
    """``alembic upgrade`` and ``alembic check`` from the repository root,
    through env.py's command-line path and the top-level alembic.ini."""
    ini = (REPO / 'alembic.ini').read_text()
    db = tmp_path / 'cli.db'
    assert 'sqlalchemy.url = sqlite:////tmp/ngshare.db' in ini
    config = tmp_path / 'alembic.ini'
    config.write_text(
        ini.replace('sqlite:////tmp/ngshare.db', f'sqlite:///{db}', 1).replace(
            'script_location = ngshare/alembic',
            f'script_location = {REPO / "ngshare" / "alembic"}',
        )
    )
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    for argv in (['upgrade', 'head'], ['check']):
        result = subprocess.run(
            [sys.executable, '-m', 'alembic', '-c', str(config), *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    engine = make_engine(sqlite_url(db))
    try:
        assert migrate.is_current(engine)
        with engine.connect() as connection:
            users = connection.execute(text('SELECT COUNT(*) FROM users'))
            assert users.scalar() == 0
    finally:
        engine.dispose()
