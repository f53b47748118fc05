"""baseline: sync_tenant, call_sync, retailcrm_customers, customer_claim, sync_run

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 23:27:10.643704
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_sync',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('batch_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('skip_reason', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'external_id', name=op.f('pk_call_sync'))
    )
    with op.batch_alter_table('call_sync', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_sync_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_sync_external_id'), ['external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_sync_tenant_started_at'), ['tenant', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_sync_tenant_status_next_attempt_at'), ['tenant', 'status', 'next_attempt_at'], unique=False)

    op.create_table('customer_claim',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('retailcrm_customer_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'phone', name=op.f('pk_customer_claim'))
    )
    op.create_table('retailcrm_customers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('retailcrm_customer_id', sa.BigInteger(), nullable=False),
    sa.Column('enterprise_number', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retailcrm_customers')),
    sa.UniqueConstraint('enterprise_number', 'phone', 'retailcrm_customer_id', name='uq_retailcrm_customers_tenant_phone_customer')
    )
    with op.batch_alter_table('retailcrm_customers', schema=None) as batch_op:
        batch_op.create_index('ix_retailcrm_customers_customer', ['enterprise_number', 'retailcrm_customer_id'], unique=False)

    op.create_table('sync_run',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='sync', nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('read', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duplicates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('skipped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('unrouted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('changed_after_upload', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lag_seconds', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_run'))
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_run_tenant_started_at'), ['tenant', 'started_at'], unique=False)

    op.create_table('sync_tenant',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.DateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('lease_epoch', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('next_run_at', sa.DateTime(), nullable=True),
    sa.Column('paused', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('last_success_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('customers_since_id', sa.BigInteger(), nullable=True),
    sa.Column('customers_seeded_at', sa.DateTime(), nullable=True),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sync_tenant'))
    )


def downgrade() -> None:
    op.drop_table('sync_tenant')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_run_tenant_started_at'))

    op.drop_table('sync_run')
    with op.batch_alter_table('retailcrm_customers', schema=None) as batch_op:
        batch_op.drop_index('ix_retailcrm_customers_customer')

    op.drop_table('retailcrm_customers')
    op.drop_table('customer_claim')
    with op.batch_alter_table('call_sync', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_sync_tenant_status_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_call_sync_tenant_started_at'))
        batch_op.drop_index(batch_op.f('ix_call_sync_external_id'))
        batch_op.drop_index(batch_op.f('ix_call_sync_batch_id'))

    op.drop_table('call_sync')
