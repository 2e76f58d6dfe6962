"""Remove released blobs only after a grace period.

Adds ``released_blobs``: the blobs a write released (replaced feedback, an
item deleted or purged), with the time, so that they are removed only once
``--released-blob-grace`` is over and downloads that already read the old
rows complete. Nothing existing changes; a database upgraded from an earlier
revision has no records, and its unreferenced blobs are ``ngshare-admin
gc``'s, as before.

Revision ID: f5a8d3c1b2e6
Revises: e4b7c2d9a1f3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'f5a8d3c1b2e6'
down_revision: Union[str, Sequence[str], None] = 'e4b7c2d9a1f3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'released_blobs',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('released_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name='pk_released_blobs'),
    )
    op.create_index('ix_released_blobs_released_at', 'released_blobs', ['released_at'])


def downgrade() -> None:
    op.drop_index('ix_released_blobs_released_at', table_name='released_blobs')
    op.drop_table('released_blobs')
