"""window fingerprint: sync_tenant.probe_from, probe_count, probe_max, recheck_at

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_tenant") as batch_op:
        batch_op.add_column(sa.Column("probe_from", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("probe_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("probe_max", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("recheck_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_tenant") as batch_op:
        for column in ("recheck_at", "probe_max", "probe_count", "probe_from"):
            batch_op.drop_column(column)
