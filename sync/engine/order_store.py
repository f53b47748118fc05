"""SQL of the orders mirror (``retailcrm_orders``) and its cursor on ``sync_tenant``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from models import RetailcrmOrder, SyncTenant

ORDERS = cast(sa.Table, RetailcrmOrder.__table__)
TENANT = cast(sa.Table, SyncTenant.__table__)
CHUNK = 500


class OrderStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def cursor(self, tenant: str) -> tuple[int | None, datetime | None]:
        """``(orders_since_id, orders_seeded_at)`` of the tenant (both None before a fill)."""
        query = sa.select(TENANT.c.orders_since_id, TENANT.c.orders_seeded_at).where(
            TENANT.c.name == tenant
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row[0], row[1]) if row else (None, None)

    def set_cursor(self, tenant: str, since_id: int | None, seeded_at: datetime) -> None:
        values: dict[str, Any] = {"orders_seeded_at": seeded_at}
        if since_id is not None:
            values["orders_since_id"] = since_id
        with self.engine.begin() as conn:
            conn.execute(sa.update(TENANT).where(TENANT.c.name == tenant).values(**values))

    def upsert(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        """Replace whole rows by key: the same on every backend, idempotent on replay."""
        with self.engine.begin() as conn:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                ids = [r["order_id"] for r in chunk]
                conn.execute(
                    sa.delete(ORDERS).where(ORDERS.c.tenant == tenant, ORDERS.c.order_id.in_(ids))
                )
                conn.execute(sa.insert(ORDERS), [{**r, "tenant": tenant} for r in chunk])

    def update(self, tenant: str, order_id: int, values: dict[str, Any]) -> None:
        """Change fields of a known order; an order we never stored is left alone."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(ORDERS)
                .where(ORDERS.c.tenant == tenant, ORDERS.c.order_id == order_id)
                .values(**values)
            )

    def delete(self, tenant: str, order_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(ORDERS).where(ORDERS.c.tenant == tenant, ORDERS.c.order_id == order_id)
            )
