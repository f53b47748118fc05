"""The orders mirror (``retailcrm_orders``): what the report attributes to calls (design §7).

Filled once by ``GET /orders`` from ``source.start_date`` (``createdAtFrom``), then kept fresh
by ``orders/history`` with ``sinceId``, exactly like the customer map: the cursor is stored
after its page is applied and every change is idempotent, so a crash replays a page harmlessly.
Status groups come from ``reference/statuses``; the report never attributes group ``cancel``.
Dates arrive in the CRM account's zone and are stored as naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger

from sync.crm import CRMError
from sync.engine.order_store import OrderStore
from sync.engine.tenant_job import TenantJob
from sync.timeutil import local_to_utc, utc_to_local

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None
    except InvalidOperation:
        return None


def _created_at(value: Any, tz: str) -> datetime | None:
    try:
        return local_to_utc(datetime.strptime(str(value), DATETIME_FORMAT), tz)
    except ValueError:
        return None


def order_row(order: dict[str, Any], groups: dict[str, str], tz: str) -> dict[str, Any] | None:
    """The stored row of a full order object (pure; None when it has no id)."""
    order_id = _int(order.get("id"))
    if order_id is None:
        return None
    status = str(order.get("status") or "") or None
    customer = order.get("customer") or {}
    return {
        "order_id": order_id,
        "customer_id": _int(customer.get("id")) if isinstance(customer, dict) else None,
        "created_at": _created_at(order.get("createdAt"), tz),
        "status": status,
        "status_group": groups.get(status or "") or None,
        "total": _money(order.get("totalSumm", order.get("summ"))),
        "currency": str(order.get("currency") or "") or None,
        "manager_id": _int(order.get("managerId")),
        "site": str(order.get("site") or "") or None,
    }


def _code(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("code")
    return str(value) if value else None


def entry_change(entry: dict[str, Any], groups: dict[str, str]) -> dict[str, Any] | None:
    """Fields one non-create, non-delete history entry changes (pure; None: nothing for us)."""
    field = entry.get("field")
    new = entry.get("newValue")
    if field == "status":
        status = _code(new)
        return {"status": status, "status_group": groups.get(status or "") or None}
    if field == "manager":
        return {"manager_id": _int(new.get("id") if isinstance(new, dict) else new)}
    if field in ("total_summ", "totalSumm"):
        return {"total": _money(new)}
    if field == "customer":
        return {"customer_id": _int(new.get("id") if isinstance(new, dict) else new)}
    return None


@dataclass
class OrdersReport:
    tenant: str
    seeded: int = 0
    entries: int = 0
    error: str | None = None

    def summary(self) -> str:
        text = f"tenant {self.tenant}: orders seeded={self.seeded} history={self.entries}"
        return text + (f" error: {self.error}" if self.error else "")


@dataclass
class OrderMirror(TenantJob):
    """The orders of one tenant, mirrored into ``retailcrm_orders`` for the report."""

    def __post_init__(self) -> None:
        self.orders = OrderStore(self.store.engine)

    def refresh(self) -> OrdersReport:
        """Fill the mirror when it never was, then apply the history since the stored id."""
        report = OrdersReport(self.tenant.name)
        started = self.clock()
        name, tz = self.tenant.name, self.tenant.timezone
        try:
            groups = self.client.status_groups()
            since_id, seeded_at = self.orders.cursor(name)
            if self.stop.is_set():
                return report  # shutting down: the next refresh goes on from the cursor
            if seeded_at is None:
                seeded_at = self.clock()
                report.seeded = self._seed(groups)
                self.orders.set_cursor(name, None, seeded_at)
            start_date = None
            if since_id is None:
                start_date = utc_to_local(seeded_at, tz).strftime(DATETIME_FORMAT)
            for page in self.client.orders_history(since_id, start_date=start_date):
                if self.stop.is_set():
                    break
                for entry in page.entries:
                    self._apply(entry, groups)
                self.orders.set_cursor(name, page.last_id, seeded_at)
                report.entries += len(page.entries)
        except CRMError as exc:
            report.error = str(exc)
        (logger.warning if report.error else logger.info)(report.summary())
        self.store.record_run(
            {
                "tenant": name,
                "kind": "orders",
                "started_at": started,
                "finished_at": self.clock(),
                "read": report.entries + report.seeded,
                "error": report.error,
            }
        )
        return report

    def _apply(self, entry: dict[str, Any], groups: dict[str, str]) -> None:
        order = entry.get("order") or {}
        order_id = _int(order.get("id"))
        if order_id is None:
            return
        if entry.get("deleted"):
            self.orders.delete(self.tenant.name, order_id)
        elif entry.get("created"):
            row = order_row(order, groups, self.tenant.timezone)
            if row:
                self.orders.upsert(self.tenant.name, [row | {"updated_at": self.clock()}])
        elif (change := entry_change(entry, groups)) is not None:
            self.orders.update(self.tenant.name, order_id, change | {"updated_at": self.clock()})

    def _seed(self, groups: dict[str, str]) -> int:
        """Orders created since ``source.start_date`` (all of them without one), page by page."""
        start = self.settings.source.start_date
        flt = {"createdAtFrom": start.strftime("%Y-%m-%d")} if start else {}
        page_no, added = 1, 0
        while True:
            page = self.client.orders(flt, page=page_no, limit=100)
            rows = [
                r | {"updated_at": self.clock()}
                for o in page.items
                if (r := order_row(o, groups, self.tenant.timezone))
            ]
            self.orders.upsert(self.tenant.name, rows)
            added += len(rows)
            if page.is_last or self.stop.is_set():
                return added
            page_no += 1
