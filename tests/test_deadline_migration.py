"""The deadlines migration (b8e3d5a7c9f2, issue 16) on real databases.

A database at the previous head (f5a8d3c1b2e6) holding assignments (one
with a due date, which the schema has had since 0.6.0), submissions, their
files and feedback upgrades to head keeping every row as it was; every
assignment then accepts late submissions with no grace, no submission has a
due date, and there are no extensions: what they meant before. The new
constraints hold; going back to f5a8d3c1b2e6 drops exactly what was added
and keeps the rest, and upgrading again works. On SQLite and PostgreSQL;
the deployment ngshare 0.6.0 wrote (tests/fixtures) still upgrades.
"""

from __future__ import annotations

import datetime

import pytest
from _fixture060 import copy_deployment, sqlite_url
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from test_migrations import assert_same_data_as_060, assert_schema_matches_models
from test_migrations import read_060 as read_060_database

from ngshare.database import migrate
from ngshare.database.engine import make_engine
from ngshare.database.models import Assignment, Extension, Submission

RELEASED_BLOBS = 'f5a8d3c1b2e6'
DEADLINES = 'b8e3d5a7c9f2'
NEW_ASSIGNMENT_COLUMNS = {'late_policy', 'grace_seconds'}
DUE = datetime.datetime(2026, 3, 4, 17, 0, 0)

# The rows of a course at f5a8d3c1b2e6: two assignments (ps1 with a due
# date), three submissions, released files, submitted files, feedback.
ROWS = (
    "INSERT INTO users (id) VALUES ('kevin'), ('eric'), ('lawrence')",
    "INSERT INTO courses (_id, id) VALUES (1, 'NBG 101')",
    'INSERT INTO roster (course_id, user_id, role, first_name)'
    " VALUES (1, 'kevin', 'instructor', 'Kevin'), (1, 'eric', 'student', 'Eric'),"
    " (1, 'lawrence', 'student', 'Lawrence')",
    'INSERT INTO assignments (_id, id, course_id, due)'
    " VALUES (1, 'ps1', 1, '2026-03-04 17:00:00'), (2, 'ps2', 1, NULL)",
    'INSERT INTO submissions (_id, assignment_id, timestamp, student_id) VALUES'
    " (1, 1, '2026-03-04 16:59:59.999999', 'eric'),"
    " (2, 1, '2026-03-04 17:00:00.000001', 'lawrence'),"
    " (3, 2, '2026-03-05 10:00:00.5', 'eric')",
    'INSERT INTO files (filename, checksum, actual_name, size, assignment_id)'
    " VALUES ('ps1.ipynb', 'a', 'sha256/aa', 1, 1), ('ps2.ipynb', 'b', 'sha256/bb',"
    ' 2, 2)',
    'INSERT INTO files (filename, checksum, actual_name, size, submission_id)'
    " VALUES ('ps1.ipynb', 'c', 'sha256/cc', 3, 1), ('ps1.ipynb', 'd', 'sha256/dd',"
    " 4, 2), ('ps2.ipynb', 'e', 'sha256/ee', 5, 3)",
    'INSERT INTO files (filename, checksum, actual_name, size, feedback_id)'
    " VALUES ('ps1.html', 'f', 'sha256/ff', 6, 1)",
    "INSERT INTO released_blobs (key, released_at) VALUES ('sha256/00',"
    " '2026-03-01 00:00:00')",
)
TABLES = ('users', 'courses', 'roster', 'assignments', 'submissions', 'files')


@pytest.fixture(params=['sqlite', 'postgresql'])
def engine(request, tmp_path):
    """An empty database of either kind, its engine disposed of after."""
    if request.param == 'sqlite':
        url = sqlite_url(tmp_path / 'deadlines.db')
    else:
        url = request.getfixturevalue('postgres_url')
    made = make_engine(url)
    yield made
    made.dispose()


def columns_of(engine, table: str) -> list[str]:
    with engine.connect() as connection:
        return [column['name'] for column in inspect(connection).get_columns(table)]


def rows_of(engine, columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of each table, in primary key order, of the given columns."""
    with engine.connect() as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(
                    text(f'SELECT {", ".join(names)} FROM {table} ORDER BY 1')
                )
            ]
            for table, names in columns.items()
        }


def table_names(engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def values(engine, column) -> list:
    """A column of the models (so typed alike on both databases), in
    primary key order."""
    with engine.connect() as connection:
        query = select(column).order_by(*column.table.primary_key)
        return connection.execute(query).scalars().all()


def assert_deadlines_mean_what_they_meant(engine) -> None:
    """The state of every old row after the upgrade: no extensions, late
    submissions accepted with no grace, no submission's due date, the one
    due date kept."""
    assert values(engine, Assignment.late_policy) == ['accept', 'accept']
    assert values(engine, Assignment.grace_seconds) == [0, 0]
    assert values(engine, Assignment.due) == [DUE, None]
    assert values(engine, Submission.due) == [None] * 3
    assert values(engine, Extension._id) == []


def test_previous_head_upgrades_keeping_every_row(engine):
    migrate.upgrade(engine, None, revision=RELEASED_BLOBS)
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
    old_columns = {table: columns_of(engine, table) for table in TABLES}
    old_columns['released_blobs'] = ['key', 'released_at']
    assert 'extensions' not in table_names(engine)
    before = rows_of(engine, old_columns)
    assert len(before['submissions']) == 3 and len(before['files']) == 6

    migrate.upgrade(engine, None)

    # Head is a later revision now (the history, issue 17): through this one.
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert_schema_matches_models(engine)
    assert rows_of(engine, old_columns) == before
    assert_deadlines_mean_what_they_meant(engine)
    assert (
        set(columns_of(engine, 'assignments'))
        == set(old_columns['assignments']) | NEW_ASSIGNMENT_COLUMNS
    )
    assert set(columns_of(engine, 'submissions')) == {
        *old_columns['submissions'],
        'due',
    }

    # Back to f5a8d3c1b2e6 (with deadlines set meanwhile): exactly what the
    # migration added is gone, every old row is as it was.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE assignments SET late_policy = 'refuse', grace_seconds = 60"
                ' WHERE _id = 1'
            )
        )
        connection.execute(
            text("UPDATE submissions SET due = '2026-03-04 17:00:00' WHERE _id = 1")
        )
        connection.execute(
            text(
                'INSERT INTO extensions (assignment_id, student_id, due)'
                " VALUES (1, 'lawrence', '2026-03-06 12:00:00')"
            )
        )
    migrate.downgrade(engine, RELEASED_BLOBS)
    assert migrate.current_revision(engine) == RELEASED_BLOBS
    assert 'extensions' not in table_names(engine)
    assert {table: columns_of(engine, table) for table in TABLES} == {
        table: old_columns[table] for table in TABLES
    }
    assert rows_of(engine, old_columns) == before

    migrate.upgrade(engine, None)
    assert_schema_matches_models(engine)
    assert rows_of(engine, old_columns) == before
    assert_deadlines_mean_what_they_meant(engine)


INVALID = {
    'a late policy other than accept or refuse': (
        "UPDATE assignments SET late_policy = 'maybe' WHERE _id = 1"
    ),
    'a negative grace period': 'UPDATE assignments SET grace_seconds = -1',
    'a null late policy': 'UPDATE assignments SET late_policy = NULL',
    'two extensions of one student': (
        'INSERT INTO extensions (assignment_id, student_id, due) VALUES'
        " (1, 'eric', '2026-03-06 00:00:00'), (1, 'eric', '2026-03-07 00:00:00')"
    ),
    'an extension of nobody': (
        'INSERT INTO extensions (assignment_id, student_id, due)'
        " VALUES (1, 'nobody', '2026-03-06 00:00:00')"
    ),
    'an extension of no assignment': (
        'INSERT INTO extensions (assignment_id, student_id, due)'
        " VALUES (99, 'eric', '2026-03-06 00:00:00')"
    ),
    'an extension without a due date': (
        "INSERT INTO extensions (assignment_id, student_id) VALUES (1, 'eric')"
    ),
}


def test_the_upgraded_schema_refuses_what_means_nothing(engine):
    migrate.upgrade(engine, None, revision=RELEASED_BLOBS)
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
    migrate.upgrade(engine, None)
    for what, statement in INVALID.items():
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(statement))
            pytest.fail(f'stored {what}')  # pragma: no cover
    # An assignment deleted takes its extensions with it, and only its.
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO extensions (assignment_id, student_id, due) VALUES'
                " (1, 'eric', '2026-03-06 00:00:00'),"
                " (2, 'eric', '2026-03-07 00:00:00')"
            )
        )
        connection.execute(text('DELETE FROM assignments WHERE _id = 1'))
    assert values(engine, Extension.assignment_id) == [2]


def test_060_deployment_upgrades_to_deadlines(tmp_path):
    db, storage = copy_deployment(tmp_path / 'ngshare-0.6.0')
    expected = read_060_database(db)
    engine = make_engine(sqlite_url(db))
    try:
        migrate.upgrade(engine, str(storage))
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert_same_data_as_060(expected, db, storage)
        assert_schema_matches_models(engine)
        assignments = len(expected['assignments'])
        submissions = len(expected['submissions'])
        assert assignments and submissions
        assert values(engine, Assignment.late_policy) == ['accept'] * assignments
        assert values(engine, Assignment.grace_seconds) == [0] * assignments
        assert values(engine, Submission.due) == [None] * submissions
        assert values(engine, Extension._id) == []
    finally:
        engine.dispose()
