"""window fingerprint (sync_tenant.probe_*, recheck_at); call_sync index for the upload order

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
    # Pending calls are sent oldest first: this index gives that order without a sort.
    with op.batch_alter_table("call_sync") as batch_op:
        batch_op.drop_index("ix_call_sync_tenant_started_at")
        batch_op.create_index(
            "ix_call_sync_tenant_status_started_at", ["tenant", "status", "started_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("call_sync") as batch_op:
        batch_op.drop_index("ix_call_sync_tenant_status_started_at")
        batch_op.create_index("ix_call_sync_tenant_started_at", ["tenant", "started_at"])
    with op.batch_alter_table("sync_tenant") as batch_op:
        for column in ("recheck_at", "probe_max", "probe_count", "probe_from"):
            batch_op.drop_column(column)
