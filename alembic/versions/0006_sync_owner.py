"""several processes: sync_owner, the daemons that share the tenants (issue 15, fair share)

Each ``run`` process upserts its row (``host:pid``) every pass and deletes it on a clean stop;
the live rows decide, by rendezvous hashing, which process starts on which tenant. Nothing
depends on it for correctness: the tenant lease still guards every cycle.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_owner",
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_sync_owner"),
    )


def downgrade() -> None:
    op.drop_table("sync_owner")
