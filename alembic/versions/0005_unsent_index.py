"""many tenants: a partial index of the calls not yet sent (issue 15)

"Which tenants have unsent work" is one statement for all tenants at the start of each pass;
this index holds only pending, sending and failed calls, so that statement stays cheap however
many sent calls ``call_sync`` keeps.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WHERE = "status IN ('pending', 'sending', 'failed')"


def upgrade() -> None:
    op.create_index(
        "ix_call_sync_unsent",
        "call_sync",
        ["tenant", "next_attempt_at"],
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_call_sync_unsent", table_name="call_sync")
