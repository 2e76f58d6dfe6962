"""Record each file's size.

ngshare 0.6.0 introduced this column so that listings need not stat every
blob. Existing rows are filled from the storage folder, which the caller
passes as ``config.attributes['storage_path']``; without it (or for a blob
that is missing) the size stays NULL, meaning "unknown".

Revision ID: 1921a169739b
Revises: aa00db20c10a
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import context, op

revision: str = '1921a169739b'
down_revision: Union[str, Sequence[str], None] = 'aa00db20c10a'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

files = sa.table(
    'files',
    sa.column('_id', sa.Integer),
    sa.column('actual_name', sa.Text),
    sa.column('size', sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table('files') as batch_op:
        batch_op.add_column(sa.Column('size', sa.Integer(), nullable=True))
    storage_path = context.config.attributes.get('storage_path')
    if storage_path is None:
        return
    connection = op.get_bind()
    rows = connection.execute(sa.select(files.c._id, files.c.actual_name)).all()
    sizes = [
        {'key': _id, 'size': blob_size(storage_path, actual_name)}
        for _id, actual_name in rows
    ]
    sizes = [row for row in sizes if row['size'] is not None]
    if sizes:
        connection.execute(
            files.update()
            .where(files.c._id == sa.bindparam('key'))
            .values(size=sa.bindparam('size')),
            sizes,
        )


def blob_size(storage_path: str, actual_name: str | None) -> int | None:
    """The size of a stored blob, or None if it is missing or not a file.

    ``actual_name`` comes from the database, so it is not trusted to stay
    inside the storage folder.
    """
    if not actual_name:
        return None
    root = os.path.realpath(storage_path)
    path = os.path.realpath(os.path.join(root, actual_name))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    return os.path.getsize(path)


def downgrade() -> None:
    with op.batch_alter_table('files') as batch_op:
        batch_op.drop_column('size')
