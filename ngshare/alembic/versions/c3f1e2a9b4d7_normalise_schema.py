"""Normalise the 0.6.0 schema into the schema of ``ngshare.database.models``.

What changes (see the models module for why), keeping every row that is
valid:

* The two roster association tables become one ``roster`` table with a role.
  A user listed as both instructor and student of a course keeps the
  instructor entry. Roster users missing from ``users`` are added to it.
* Files point at their owner through three nullable foreign keys instead of
  three association tables. A file with no owner is deleted; its blob stays
  in the storage folder for the garbage collector.
* NOT NULL, ON DELETE CASCADE and the uniqueness rules of the models become
  constraints. Rows that break NOT NULL (or reference a row that does not
  exist) are deleted. Rows that break a new uniqueness rule, which 0.6.0's
  races could produce, are made distinct rather than deleted: a duplicate
  assignment name gets `` (duplicate <_id>)`` appended, a duplicate
  submission timestamp is moved on by a microsecond.

Everything removed or changed is logged at WARNING on ``ngshare.migrate``,
so an operator can see what the database held that the new schema cannot.

SQLite databases written by 0.6.0 have unnamed constraints; the batch
operations name them with the models' naming convention when they reflect
a table, so the same constraint names work on every database.

Revision ID: c3f1e2a9b4d7
Revises: 1921a169739b
"""

# The SQL is assembled from this module's own table and column names only.
# ruff: noqa: S608

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c3f1e2a9b4d7'
down_revision: Union[str, Sequence[str], None] = '1921a169739b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

log = logging.getLogger('ngshare.migrate')

# The naming convention of the models at the time of this revision (a copy,
# so that later changes to the models cannot change what this revision does).
NAMING_CONVENTION = {
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}

ROSTER_TABLES = (
    ('instructor_assoc_table', 'instructor'),
    ('student_assoc_table', 'student'),
)
# (association table, owner table, owner column in files)
FILE_TABLES = (
    ('assignment_files_assoc_table', 'assignments', 'assignment_id'),
    ('submission_files_assoc_table', 'submissions', 'submission_id'),
    ('feedback_files_assoc_table', 'submissions', 'feedback_id'),
)
FILE_INDEXES = ('assignment_id', 'submission_id', 'feedback_id', 'actual_name')
ONE_OWNER = (
    '(CASE WHEN assignment_id IS NULL THEN 0 ELSE 1 END)'
    ' + (CASE WHEN submission_id IS NULL THEN 0 ELSE 1 END)'
    ' + (CASE WHEN feedback_id IS NULL THEN 0 ELSE 1 END) = 1'
)

# Rows the new schema accepts; everything else is deleted.
VALID_COURSES = 'SELECT _id FROM courses WHERE id IS NOT NULL'
VALID_ASSIGNMENTS = (
    'SELECT _id FROM assignments WHERE id IS NOT NULL'
    f' AND course_id IN ({VALID_COURSES})'
)
VALID_SUBMISSIONS = (
    'SELECT _id FROM submissions WHERE timestamp IS NOT NULL'
    ' AND student_id IS NOT NULL'
    f' AND assignment_id IN ({VALID_ASSIGNMENTS})'
)


def upgrade() -> None:
    with op.batch_alter_table('files') as batch_op:
        for _table, _owner, column in FILE_TABLES:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
    link_files_to_owners()
    add_missing_users()
    create_roster()
    for table, _role in ROSTER_TABLES:
        op.drop_table(table)
    for table, _owner, _column in FILE_TABLES:
        op.drop_table(table)
    delete_invalid_rows()
    rename_duplicate_assignments()
    separate_duplicate_submissions()
    add_constraints()


def execute(sql: str, **params) -> sa.CursorResult:
    return op.get_bind().execute(sa.text(sql), params)


def count(sql: str, **params) -> int:
    return execute(f'SELECT COUNT(*) FROM ({sql}) AS counted', **params).scalar_one()


def link_files_to_owners() -> None:
    """Copy each file's owner from the association tables into ``files``.

    0.6.0 never gave a file two owners; should a database have that anyway,
    the first link (assignment, then submission, then feedback) wins.
    """
    links = ' UNION ALL '.join(f'SELECT right_id FROM {t}' for t, _o, _c in FILE_TABLES)
    shared = count(
        f'SELECT right_id FROM ({links}) AS links GROUP BY right_id HAVING COUNT(*) > 1'
    )
    if shared:
        log.warning(
            '%d files had more than one owner; each keeps only its first', shared
        )
    owned = []
    for table, _owner, column in FILE_TABLES:
        unowned = ' AND '.join(f'{c} IS NULL' for c in owned) or '1 = 1'
        execute(
            f'UPDATE files SET {column} = (SELECT MIN(CAST(l.left_id AS INTEGER))'
            f' FROM {table} l WHERE l.right_id = files._id) WHERE {unowned}'
        )
        owned.append(column)


def add_missing_users() -> None:
    """Give every user the roster or a submission names a ``users`` row."""
    named = ' UNION '.join(
        [f'SELECT left_id AS id FROM {t}' for t, _r in ROSTER_TABLES]
        + ['SELECT student_id AS id FROM submissions']
    )
    missing = (
        f'SELECT named.id FROM ({named}) AS named WHERE named.id IS NOT NULL'
        ' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = named.id)'
    )
    added = execute(f'INSERT INTO users (id) {missing}').rowcount
    if added:
        log.warning('Added %d users that the roster or submissions named', added)


def create_roster() -> None:
    op.create_table(
        'roster',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Text(), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('first_name', sa.Text(), nullable=True),
        sa.Column('last_name', sa.Text(), nullable=True),
        sa.Column('email', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('_id', name=op.f('pk_roster')),
        sa.UniqueConstraint('course_id', 'user_id', name=op.f('uq_roster_course_user')),
        sa.CheckConstraint(
            "role IN ('instructor', 'student')", name=op.f('ck_roster_role')
        ),
        sa.ForeignKeyConstraint(
            ['course_id'],
            ['courses._id'],
            name=op.f('fk_roster_course_id_courses'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_roster_user_id_users')
        ),
    )
    op.create_index(op.f('ix_roster_user_id'), 'roster', ['user_id'])
    # On SQLite keep each table's insertion order, which is the order the
    # API lists the roster in; PostgreSQL has no such order to keep.
    order = ' ORDER BY a.rowid' if op.get_bind().dialect.name == 'sqlite' else ''
    for table, role in ROSTER_TABLES:
        orphans = count(
            f'SELECT 1 FROM {table} a'
            ' WHERE NOT EXISTS (SELECT 1 FROM courses c WHERE c.id = a.right_id)'
        )
        if orphans:
            log.warning(
                'Dropped %d %s entries of courses that do not exist', orphans, role
            )
        doubles = count(
            f'SELECT 1 FROM {table} a JOIN courses c ON c.id = a.right_id'
            ' JOIN roster r ON r.course_id = c._id AND r.user_id = a.left_id'
        )
        if doubles:
            log.warning(
                'Dropped %d %s entries of users who are also instructors of the course',
                doubles,
                role,
            )
        execute(
            'INSERT INTO roster (course_id, user_id, role, first_name, last_name,'
            ' email)'
            ' SELECT c._id, a.left_id, :role, a.first_name, a.last_name, a.email'
            f' FROM {table} a JOIN courses c ON c.id = a.right_id'
            ' WHERE NOT EXISTS (SELECT 1 FROM roster r'
            ' WHERE r.course_id = c._id AND r.user_id = a.left_id)' + order,
            role=role,
        )


def delete_invalid_rows() -> None:
    """Delete what the new NOT NULL and foreign key constraints reject."""
    for column, valid in (
        ('assignment_id', VALID_ASSIGNMENTS),
        ('submission_id', VALID_SUBMISSIONS),
        ('feedback_id', VALID_SUBMISSIONS),
    ):
        lost = execute(
            f'UPDATE files SET {column} = NULL'
            f' WHERE {column} IS NOT NULL AND {column} NOT IN ({valid})'
        ).rowcount
        if lost:
            log.warning(
                '%d files lost their owner (%s): invalid or missing', lost, column
            )
    orphans = execute(
        'DELETE FROM files WHERE assignment_id IS NULL'
        ' AND submission_id IS NULL AND feedback_id IS NULL'
    ).rowcount
    if orphans:
        log.warning(
            'Deleted %d files that belonged to nothing; their blobs stay in the'
            ' storage folder until garbage collection',
            orphans,
        )
    incomplete = execute(
        'DELETE FROM files WHERE filename IS NULL OR checksum IS NULL'
        ' OR actual_name IS NULL'
    ).rowcount
    if incomplete:
        log.warning('Deleted %d files without a name, checksum or blob', incomplete)
    # Children before parents: PostgreSQL enforces the old foreign keys.
    for table, valid in (
        ('submissions', VALID_SUBMISSIONS),
        ('assignments', VALID_ASSIGNMENTS),
        ('courses', VALID_COURSES),
    ):
        deleted = execute(f'DELETE FROM {table} WHERE _id NOT IN ({valid})').rowcount
        if deleted:
            log.warning('Deleted %d incomplete or orphaned %s', deleted, table)


def rename_duplicate_assignments() -> None:
    """Make assignment names unique within a course; the oldest keeps its name."""
    renamed = execute(
        "UPDATE assignments SET id = id || ' (duplicate ' || CAST(_id AS TEXT) || ')'"
        ' WHERE EXISTS (SELECT 1 FROM assignments o'
        ' WHERE o.course_id = assignments.course_id AND o.id = assignments.id'
        ' AND o._id < assignments._id)'
    ).rowcount
    if renamed:
        log.warning(
            'Renamed %d assignments whose name was taken in their course', renamed
        )


def separate_duplicate_submissions() -> None:
    """Move identical submission timestamps apart by microseconds.

    Both submissions (and their files) are kept; the later one appears a
    microsecond (or a few) later than it was recorded.
    """
    submissions = sa.table(
        'submissions',
        sa.column('_id', sa.Integer),
        sa.column('assignment_id', sa.Integer),
        sa.column('student_id', sa.Text),
        sa.column('timestamp', sa.DateTime),
    )
    c = submissions.c
    key = (c.assignment_id, c.student_id, c.timestamp)
    duplicated = (
        sa.select(c.assignment_id, c.student_id)
        .group_by(*key)
        .having(sa.func.count() > 1)
    )
    rows = (
        op.get_bind()
        .execute(
            sa.select(c._id, *key)
            .where(sa.tuple_(c.assignment_id, c.student_id).in_(duplicated))
            .order_by(c._id)
        )
        .all()
    )
    taken = {tuple(row[1:]) for row in rows}
    seen = set()
    moved = 0
    for _id, assignment_id, student_id, timestamp in rows:
        if (assignment_id, student_id, timestamp) in seen:
            while (assignment_id, student_id, timestamp) in taken:
                timestamp += datetime.timedelta(microseconds=1)
            taken.add((assignment_id, student_id, timestamp))
            op.get_bind().execute(
                submissions.update().where(c._id == _id).values(timestamp=timestamp)
            )
            moved += 1
        seen.add((assignment_id, student_id, timestamp))
    if moved:
        log.warning('Moved %d submission timestamps that were taken', moved)


def add_constraints() -> None:
    with op.batch_alter_table('courses', naming_convention=NAMING_CONVENTION) as b:
        b.alter_column('id', existing_type=sa.Text(), nullable=False)

    with op.batch_alter_table('assignments', naming_convention=NAMING_CONVENTION) as b:
        b.alter_column('id', existing_type=sa.Text(), nullable=False)
        b.alter_column('course_id', existing_type=sa.Integer(), nullable=False)
        b.alter_column(
            'due',
            existing_type=sa.TIMESTAMP(),
            type_=sa.DateTime(),
            existing_nullable=True,
        )
        cascade_foreign_key(b, 'assignments', 'course_id', 'courses', 'CASCADE')
        b.create_unique_constraint(
            op.f('uq_assignments_course_name'), ['course_id', 'id']
        )

    with op.batch_alter_table('submissions', naming_convention=NAMING_CONVENTION) as b:
        b.alter_column('assignment_id', existing_type=sa.Integer(), nullable=False)
        b.alter_column(
            'timestamp',
            existing_type=sa.TIMESTAMP(),
            type_=sa.DateTime(),
            nullable=False,
        )
        b.alter_column('student_id', existing_type=sa.Text(), nullable=False)
        cascade_foreign_key(b, 'submissions', 'assignment_id', 'assignments', 'CASCADE')
        b.create_unique_constraint(
            op.f('uq_submissions_assignment_student_timestamp'),
            ['assignment_id', 'student_id', 'timestamp'],
        )
        b.create_index(
            op.f('ix_submissions_assignment_student'), ['assignment_id', 'student_id']
        )

    with op.batch_alter_table('files', naming_convention=NAMING_CONVENTION) as b:
        for column in ('filename', 'checksum', 'actual_name'):
            b.alter_column(column, existing_type=sa.Text(), nullable=False)
        for _table, owner, column in FILE_TABLES:
            b.create_foreign_key(
                op.f(f'fk_files_{column}_{owner}'),
                owner,
                [column],
                ['_id'],
                ondelete='CASCADE',
            )
        b.create_check_constraint(op.f('ck_files_one_owner'), ONE_OWNER)
        for column in FILE_INDEXES:
            b.create_index(op.f(f'ix_files_{column}'), [column])


def cascade_foreign_key(batch_op, table, column, referred, ondelete) -> None:
    """Re-create the foreign key of ``column`` with another ON DELETE rule."""
    name = op.f(f'fk_{table}_{column}_{referred}')
    batch_op.drop_constraint(name, type_='foreignkey')
    batch_op.create_foreign_key(name, referred, [column], ['_id'], ondelete=ondelete)


def downgrade() -> None:
    """Back to the 0.6.0 shape. Renamed duplicates and deleted rows stay so."""
    create_association_tables()
    order = 'ORDER BY r._id'
    for table, role in ROSTER_TABLES:
        execute(
            f'INSERT INTO {table} (left_id, right_id, first_name, last_name, email)'
            ' SELECT r.user_id, c.id, r.first_name, r.last_name, r.email'
            ' FROM roster r JOIN courses c ON c._id = r.course_id'
            f' WHERE r.role = :role {order}',
            role=role,
        )
    for table, _owner, column in FILE_TABLES:
        execute(
            f'INSERT INTO {table} (left_id, right_id) SELECT {column}, _id'
            f' FROM files WHERE {column} IS NOT NULL ORDER BY _id'
        )
    op.drop_index(op.f('ix_roster_user_id'), table_name='roster')
    op.drop_table('roster')

    with op.batch_alter_table('files', naming_convention=NAMING_CONVENTION) as b:
        for column in FILE_INDEXES:
            b.drop_index(op.f(f'ix_files_{column}'))
        b.drop_constraint(op.f('ck_files_one_owner'), type_='check')
        for _table, owner, column in FILE_TABLES:
            b.drop_constraint(op.f(f'fk_files_{column}_{owner}'), type_='foreignkey')
            b.drop_column(column)
        for column in ('filename', 'checksum', 'actual_name'):
            b.alter_column(column, existing_type=sa.Text(), nullable=True)

    with op.batch_alter_table('submissions', naming_convention=NAMING_CONVENTION) as b:
        b.drop_index(op.f('ix_submissions_assignment_student'))
        b.drop_constraint(
            op.f('uq_submissions_assignment_student_timestamp'), type_='unique'
        )
        cascade_foreign_key(b, 'submissions', 'assignment_id', 'assignments', None)
        b.alter_column('assignment_id', existing_type=sa.Integer(), nullable=True)
        b.alter_column(
            'timestamp',
            existing_type=sa.DateTime(),
            type_=sa.TIMESTAMP(),
            nullable=True,
        )
        b.alter_column('student_id', existing_type=sa.Text(), nullable=True)

    with op.batch_alter_table('assignments', naming_convention=NAMING_CONVENTION) as b:
        b.drop_constraint(op.f('uq_assignments_course_name'), type_='unique')
        cascade_foreign_key(b, 'assignments', 'course_id', 'courses', None)
        b.alter_column('id', existing_type=sa.Text(), nullable=True)
        b.alter_column('course_id', existing_type=sa.Integer(), nullable=True)
        b.alter_column(
            'due',
            existing_type=sa.DateTime(),
            type_=sa.TIMESTAMP(),
            existing_nullable=True,
        )

    with op.batch_alter_table('courses', naming_convention=NAMING_CONVENTION) as b:
        b.alter_column('id', existing_type=sa.Text(), nullable=True)


def create_association_tables() -> None:
    """The five 0.6.0 association tables, as the first revision creates them."""
    for table, _role in ROSTER_TABLES:
        op.create_table(
            table,
            sa.Column('left_id', sa.Text(), nullable=False),
            sa.Column('right_id', sa.Text(), nullable=False),
            sa.Column('first_name', sa.Text(), nullable=True),
            sa.Column('last_name', sa.Text(), nullable=True),
            sa.Column('email', sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint('left_id', 'right_id'),
            sa.ForeignKeyConstraint(['left_id'], ['users.id']),
            sa.ForeignKeyConstraint(['right_id'], ['courses.id']),
        )
    for table, owner, _column in FILE_TABLES:
        op.create_table(
            table,
            sa.Column('left_id', sa.Integer(), nullable=False),
            sa.Column('right_id', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('left_id', 'right_id'),
            sa.ForeignKeyConstraint(['left_id'], [f'{owner}._id']),
            sa.ForeignKeyConstraint(['right_id'], ['files._id']),
        )
