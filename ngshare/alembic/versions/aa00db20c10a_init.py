"""The schema of ngshare 0.6.0.

Only databases created by this version of ngshare start here; databases
written by 0.6.0 already carry this revision (and the next one) in
``alembic_version``. The one deliberate difference from 0.6.0: the
``left_id`` of the three file association tables is INTEGER, like the keys
it references, because PostgreSQL refuses a TEXT column referencing an
INTEGER one. SQLite databases written by 0.6.0 keep TEXT there until the
normalising revision drops those tables.

Revision ID: aa00db20c10a
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'aa00db20c10a'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ROSTER_TABLES = ('instructor_assoc_table', 'student_assoc_table')
# (association table, the table of the files' owner)
FILE_TABLES = (
    ('assignment_files_assoc_table', 'assignments'),
    ('submission_files_assoc_table', 'submissions'),
    ('feedback_files_assoc_table', 'submissions'),
)


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'courses',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('id', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('_id'),
        sa.UniqueConstraint('id'),
    )
    op.create_table(
        'assignments',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('id', sa.Text(), nullable=True),
        sa.Column('course_id', sa.Integer(), nullable=True),
        sa.Column('due', sa.TIMESTAMP(), nullable=True),
        sa.PrimaryKeyConstraint('_id'),
        sa.ForeignKeyConstraint(['course_id'], ['courses._id']),
    )
    op.create_table(
        'submissions',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('assignment_id', sa.Integer(), nullable=True),
        sa.Column('timestamp', sa.TIMESTAMP(), nullable=True),
        sa.Column('student_id', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('_id'),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments._id']),
        sa.ForeignKeyConstraint(['student_id'], ['users.id']),
    )
    op.create_table(
        'files',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.Text(), nullable=True),
        sa.Column('checksum', sa.Text(), nullable=True),
        sa.Column('actual_name', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('_id'),
    )
    for name in ROSTER_TABLES:
        create_roster_table(name)
    for name, owner in FILE_TABLES:
        create_file_table(name, owner)


def create_roster_table(name: str) -> None:
    """One of the two identical 0.6.0 roster association tables."""
    op.create_table(
        name,
        sa.Column('left_id', sa.Text(), nullable=False),
        sa.Column('right_id', sa.Text(), nullable=False),
        sa.Column('first_name', sa.Text(), nullable=True),
        sa.Column('last_name', sa.Text(), nullable=True),
        sa.Column('email', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('left_id', 'right_id'),
        sa.ForeignKeyConstraint(['left_id'], ['users.id']),
        sa.ForeignKeyConstraint(['right_id'], ['courses.id']),
    )


def create_file_table(name: str, owner: str) -> None:
    """One of the three 0.6.0 tables linking files to their owner."""
    op.create_table(
        name,
        sa.Column('left_id', sa.Integer(), nullable=False),
        sa.Column('right_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('left_id', 'right_id'),
        sa.ForeignKeyConstraint(['left_id'], [f'{owner}._id']),
        sa.ForeignKeyConstraint(['right_id'], ['files._id']),
    )


def downgrade() -> None:
    for name, _owner in reversed(FILE_TABLES):
        op.drop_table(name)
    for name in reversed(ROSTER_TABLES):
        op.drop_table(name)
    for name in ('files', 'submissions', 'assignments', 'courses', 'users'):
        op.drop_table(name)
