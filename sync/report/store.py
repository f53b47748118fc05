"""Every SQL statement of the report, in one place; reads our tables only.

Calls are streamed (server-side cursor on PostgreSQL) with the payload fields extracted in SQL,
so neither the table nor the JSON documents are ever held in memory. The other reads are small:
orders of the period plus look-ahead, the phone -> customer map, skip counts and the phones
first seen in the period (one aggregate).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from models import CallSync, RetailcrmCustomer, RetailcrmOrder
from sync.report.rows import CallRow, OrderRow

CALLS = cast(sa.Table, CallSync.__table__)
ORDERS = cast(sa.Table, RetailcrmOrder.__table__)
CUSTOMERS = cast(sa.Table, RetailcrmCustomer.__table__)
UNSKIPPED = ("pending", "sending", "sent", "failed", "dead")
STREAM_ROWS = 10_000


def _field(name: str) -> Any:
    return CALLS.c.payload[name].as_string()


def _number(name: str) -> Any:
    return CALLS.c.payload[name].as_integer()


class ReportStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def calls(
        self, tenant: str, start: datetime, until: datetime, answered_from: datetime | None = None
    ) -> Iterator[CallRow]:
        """Non-skipped calls with a payload, ``start <= started_at < until``, oldest first;
        from ``answered_from`` on only answered ones (all the orders' attribution needs)."""
        query = (
            sa.select(
                CALLS.c.started_at,
                _field("type"),
                _field("result"),
                _number("duration"),
                _number("durationWaiting"),
                _field("code"),
                _field("phone"),
            )
            .where(
                CALLS.c.tenant == tenant,
                CALLS.c.status.in_(UNSKIPPED),
                CALLS.c.started_at >= start,
                CALLS.c.started_at < until,
                CALLS.c.payload.is_not(None),
                sa.true()
                if answered_from is None
                else sa.or_(CALLS.c.started_at < answered_from, _field("result") == "answered"),
            )
            .order_by(CALLS.c.started_at, CALLS.c.external_id)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(
                query
            )
            for rows in result.partitions():
                for t0, direction, res, talk, wait, ext, phone in rows:
                    yield CallRow(t0, direction or "", res or "", talk or 0, wait or 0, ext, phone)

    def new_phones(self, tenant: str, start: datetime) -> set[str]:
        """Phones whose first non-skipped call is at or after ``start`` (new numbers)."""
        phone = _field("phone")
        query = (
            sa.select(phone)
            .where(CALLS.c.tenant == tenant, CALLS.c.status.in_(UNSKIPPED), phone.is_not(None))
            .group_by(phone)
            .having(sa.func.min(CALLS.c.started_at) >= start)
        )
        with self.engine.connect() as conn:
            return {str(p) for (p,) in conn.execute(query)}

    def skipped(self, tenant: str, start: datetime, end: datetime) -> dict[str, int]:
        query = (
            sa.select(CALLS.c.skip_reason, sa.func.count())
            .where(
                CALLS.c.tenant == tenant,
                CALLS.c.status == "skipped",
                CALLS.c.started_at >= start,
                CALLS.c.started_at < end,
            )
            .group_by(CALLS.c.skip_reason)
        )
        with self.engine.connect() as conn:
            return {str(reason or "unknown"): int(n) for reason, n in conn.execute(query)}

    def orders(self, tenant: str, start: datetime, until: datetime) -> list[OrderRow]:
        """Orders that can be attributed (not cancelled, with a customer), oldest first."""
        query = (
            sa.select(
                ORDERS.c.order_id,
                ORDERS.c.customer_id,
                ORDERS.c.created_at,
                ORDERS.c.total,
                ORDERS.c.currency,
            )
            .where(
                ORDERS.c.tenant == tenant,
                ORDERS.c.created_at >= start,
                ORDERS.c.created_at < until,
                ORDERS.c.customer_id.is_not(None),
                sa.or_(ORDERS.c.status_group.is_(None), ORDERS.c.status_group != "cancel"),
            )
            .order_by(ORDERS.c.created_at, ORDERS.c.order_id)
        )
        with self.engine.connect() as conn:
            return [
                OrderRow(int(oid), int(cid), created, float(total or 0), currency)
                for oid, cid, created, total, currency in conn.execute(query)
            ]

    def customers(self, tenant: str) -> dict[str, tuple[int, ...]]:
        query = sa.select(CUSTOMERS.c.phone, CUSTOMERS.c.retailcrm_customer_id).where(
            CUSTOMERS.c.enterprise_number == tenant
        )
        found: dict[str, tuple[int, ...]] = {}
        with self.engine.connect() as conn:
            for phone, customer_id in conn.execute(query):
                found[phone] = (*found.get(phone, ()), int(customer_id))
        return found

    def has_extension(self, tenant: str, code: str) -> bool:
        """Whether any call of the tenant carries ``code`` (a manager not in the config)."""
        query = (
            sa.select(CALLS.c.external_id)
            .where(CALLS.c.tenant == tenant, _field("code") == code)
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None
