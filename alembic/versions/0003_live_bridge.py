"""live bridge: per-tenant trigger token and the CRM's module activity flags (design §6.1)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_tenant") as batch_op:
        batch_op.add_column(sa.Column("trigger_token", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column("crm_active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("crm_frozen", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("activity_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_tenant") as batch_op:
        for column in ("activity_at", "crm_frozen", "crm_active", "trigger_token"):
            batch_op.drop_column(column)
