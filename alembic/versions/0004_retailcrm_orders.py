"""retailcrm_orders (the report's orders mirror) and sync_tenant.orders_* cursor (design §7)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retailcrm_orders",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(64), nullable=True),
        sa.Column("status_group", sa.String(64), nullable=True),
        sa.Column("total", sa.Numeric(14, 2), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("manager_id", sa.BigInteger(), nullable=True),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "order_id", name="pk_retailcrm_orders"),
    )
    op.create_index(
        "ix_retailcrm_orders_tenant_created_at", "retailcrm_orders", ["tenant", "created_at"]
    )
    op.create_index(
        "ix_retailcrm_orders_tenant_customer_id", "retailcrm_orders", ["tenant", "customer_id"]
    )
    with op.batch_alter_table("sync_tenant") as batch_op:
        batch_op.add_column(sa.Column("orders_since_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("orders_seeded_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_tenant") as batch_op:
        batch_op.drop_column("orders_seeded_at")
        batch_op.drop_column("orders_since_id")
    op.drop_index("ix_retailcrm_orders_tenant_customer_id", "retailcrm_orders")
    op.drop_index("ix_retailcrm_orders_tenant_created_at", "retailcrm_orders")
    op.drop_table("retailcrm_orders")
