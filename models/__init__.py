"""SQLAlchemy 2 models of the tables this program owns (design §3).

All timestamps are naive UTC: SQLite keeps no zone, and one convention for every backend keeps
comparisons in SQL simple. The PBX's own tables are never modelled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT autoincrement is only an alias of ROWID on SQLite when declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Payload = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

STATUSES = ("pending", "sending", "sent", "failed", "dead", "skipped")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SyncTenant(Base):
    """One row per configured tenant: cursor, lease and health."""

    __tablename__ = "sync_tenant"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[datetime | None] = mapped_column(DateTime)
    """Source log time (UTC) before which every call is complete and recorded."""
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    customers_since_id: Mapped[int | None] = mapped_column(BigInteger)
    customers_seeded_at: Mapped[datetime | None] = mapped_column(DateTime)
    """When the full ``customers`` scan that seeds the map started; history follows from it."""
    client_id: Mapped[str | None] = mapped_column(String(64))
    """The integration module's clientId, generated once by `register`."""
    probe_from: Mapped[datetime | None] = mapped_column(DateTime)
    """Start (source wall time) of the last full read; with ``probe_count`` and ``probe_max``
    the fingerprint that lets an idle cycle skip re-reading an unchanged window."""
    probe_count: Mapped[int | None] = mapped_column(BigInteger)
    probe_max: Mapped[datetime | None] = mapped_column(DateTime)
    recheck_at: Mapped[datetime | None] = mapped_column(DateTime)
    """When the earliest still-settling call becomes complete (UTC): read again then."""


class CallSync(Base):
    """Sync state of one logical call (one linkedid) of one tenant."""

    __tablename__ = "call_sync"
    __table_args__ = (
        Index(None, "tenant", "status", "next_attempt_at"),
        Index(None, "batch_id"),
        Index(None, "external_id"),
        Index(None, "tenant", "status", "started_at"),
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(Payload)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    skip_reason: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class RetailcrmCustomer(Base):
    """Phone (E.164) -> RetailCRM customer, per tenant (``enterprise_number``)."""

    __tablename__ = "retailcrm_customers"
    __table_args__ = (
        UniqueConstraint(
            "enterprise_number",
            "phone",
            "retailcrm_customer_id",
            name="uq_retailcrm_customers_tenant_phone_customer",
        ),
        Index("ix_retailcrm_customers_customer", "enterprise_number", "retailcrm_customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32))
    retailcrm_customer_id: Mapped[int] = mapped_column(BigInteger)
    enterprise_number: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class CustomerClaim(Base):
    """Who creates the CRM customer for a new number, so it happens once across workers."""

    __tablename__ = "customer_claim"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    retailcrm_customer_id: Mapped[int | None] = mapped_column(BigInteger)


class SyncRun(Base):
    """One row per tenant cycle: what the cycle read, sent and failed."""

    __tablename__ = "sync_run"
    __table_args__ = (Index(None, "tenant", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="sync", server_default="sync")
    owner: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    read: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unrouted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    changed_after_upload: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lag_seconds: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
