"""History: one entry per exchange action, written with the action.

A new table; nothing existing changes. A database upgraded from an earlier
version starts its history empty: what happened before was not recorded.

Revision ID: d4a6c8e1f3b5
Revises: b8e3d5a7c9f2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'd4a6c8e1f3b5'
down_revision: Union[str, Sequence[str], None] = 'b8e3d5a7c9f2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The action names at this revision (a copy: a migration never changes with
# the models).
ACTIONS = (
    'create_course',
    'delete_course',
    'add_instructor',
    'remove_instructor',
    'add_student',
    'remove_student',
    'release',
    'unrelease',
    'fetch',
    'submit',
    'collect',
    'release_feedback',
    'fetch_feedback',
    'restore',
    'purge',
)


def upgrade() -> None:
    op.create_table(
        'history',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('time', sa.DateTime(), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('user', sa.Text(), nullable=False),
        sa.Column('course', sa.Text(), nullable=False),
        sa.Column('assignment', sa.Text(), nullable=True),
        sa.Column('student', sa.Text(), nullable=True),
        sa.Column('timestamp', sa.DateTime(), nullable=True),
        sa.Column('files', sa.Integer(), nullable=True),
        sa.Column('bytes', sa.BigInteger(), nullable=True),
        sa.Column('deleted_item', sa.Integer(), nullable=True),
        sa.CheckConstraint(
            'action IN (' + ', '.join(f"'{name}'" for name in ACTIONS) + ')',
            name=op.f('ck_history_action'),
        ),
        sa.PrimaryKeyConstraint('_id', name='pk_history'),
    )
    op.create_index('ix_history_course_id', 'history', ['course', '_id'])
    op.create_index(
        'ix_history_course_student_id', 'history', ['course', 'student', '_id']
    )
    op.create_index(
        'ix_history_course_assignment_id', 'history', ['course', 'assignment', '_id']
    )
    op.create_index('ix_history_time', 'history', ['time'])
    op.create_index('ix_history_deleted_item', 'history', ['deleted_item'])


def downgrade() -> None:
    op.drop_table('history')
