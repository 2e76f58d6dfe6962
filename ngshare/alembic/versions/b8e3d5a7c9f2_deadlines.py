"""Deadlines: late policies, per-student extensions, lateness at submit time.

``assignments.due`` existed since 0.6.0 and was never set; this adds beside
it the late policy (``accept``, as every assignment behaved until now, or
``refuse``) with its grace period, ``submissions.due`` (the due date that
applied when the submission was made, so that its lateness is the one the
server decided then), and ``extensions`` (a later due date for one student).
Existing rows keep their meaning: no due date, late submissions accepted.

Revision ID: b8e3d5a7c9f2
Revises: f5a8d3c1b2e6
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = 'b8e3d5a7c9f2'
down_revision: Union[str, Sequence[str], None] = 'f5a8d3c1b2e6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The models' naming convention at this revision (a copy: a migration never
# changes with the models), so that batch mode on SQLite re-creates the
# tables with the constraints' names.
NAMING_CONVENTION = {
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}


def upgrade() -> None:
    with op.batch_alter_table(
        'assignments', naming_convention=NAMING_CONVENTION
    ) as batch:
        batch.add_column(
            sa.Column(
                'late_policy',
                sa.String(length=16),
                server_default='accept',
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column('grace_seconds', sa.Integer(), server_default='0', nullable=False)
        )
        batch.create_check_constraint(
            op.f('ck_assignments_late_policy'), "late_policy IN ('accept', 'refuse')"
        )
        batch.create_check_constraint(
            op.f('ck_assignments_grace_seconds'), 'grace_seconds >= 0'
        )
    op.add_column('submissions', sa.Column('due', sa.DateTime(), nullable=True))
    op.create_table(
        'extensions',
        sa.Column('_id', sa.Integer(), nullable=False),
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Text(), nullable=False),
        sa.Column('due', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['assignment_id'],
            ['assignments._id'],
            name='fk_extensions_assignment_id_assignments',
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['student_id'], ['users.id'], name='fk_extensions_student_id_users'
        ),
        sa.PrimaryKeyConstraint('_id', name='pk_extensions'),
        sa.UniqueConstraint(
            'assignment_id', 'student_id', name='uq_extensions_assignment_student'
        ),
    )


def downgrade() -> None:
    op.drop_table('extensions')
    with op.batch_alter_table(
        'submissions', naming_convention=NAMING_CONVENTION
    ) as batch:
        batch.drop_column('due')
    with op.batch_alter_table(
        'assignments', naming_convention=NAMING_CONVENTION
    ) as batch:
        batch.drop_constraint(op.f('ck_assignments_grace_seconds'), type_='check')
        batch.drop_constraint(op.f('ck_assignments_late_policy'), type_='check')
        batch.drop_column('grace_seconds')
        batch.drop_column('late_policy')
