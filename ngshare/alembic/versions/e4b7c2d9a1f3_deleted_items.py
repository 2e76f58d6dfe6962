"""Keep deleted courses and assignments restorable.

Adds ``deleted_items`` (the deleted rows, as JSON, with who deleted them and
when) and ``deleted_blobs`` (the blobs they refer to, so that the garbage
collector keeps them until the retention period ends). Nothing existing
changes.

Revision ID: e4b7c2d9a1f3
Revises: c3f1e2a9b4d7
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'e4b7c2d9a1f3'
down_revision: Union[str, Sequence[str], None] = 'c3f1e2a9b4d7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'deleted_items',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('course_name', sa.Text(), nullable=False),
        sa.Column('assignment_name', sa.Text(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=False),
        sa.Column('deleted_by', sa.Text(), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('course', 'assignment')", name=op.f('ck_deleted_items_kind')
        ),
        sa.PrimaryKeyConstraint('_id', name='pk_deleted_items'),
    )
    op.create_index('ix_deleted_items_deleted_at', 'deleted_items', ['deleted_at'])
    op.create_table(
        'deleted_blobs',
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('actual_name', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['item_id'],
            ['deleted_items._id'],
            name='fk_deleted_blobs_item_id_deleted_items',
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('item_id', 'actual_name', name='pk_deleted_blobs'),
    )
    op.create_index('ix_deleted_blobs_actual_name', 'deleted_blobs', ['actual_name'])


def downgrade() -> None:
    op.drop_index('ix_deleted_blobs_actual_name', table_name='deleted_blobs')
    op.drop_table('deleted_blobs')
    op.drop_index('ix_deleted_items_deleted_at', table_name='deleted_items')
    op.drop_table('deleted_items')
