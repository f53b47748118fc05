"""Orders -> calls (analytics.md §B.3, design §7.1): last answered call of the customer.

An order goes to the latest answered call, in either direction, of the same customer (a phone
of the call maps to the order's customer in ``retailcrm_customers``) with
``call.t0 <= created_at <= call.t0 + W``; it counts in the period when that call does. Orders
are merged into the call stream by time, so only each customer's latest answered call is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sync.report.rows import OrderRow


class CallRef(NamedTuple):
    t0: datetime
    selected: bool
    direction: str
    ext: str | None
    number: int


@dataclass
class WindowTotals:
    orders: int = 0
    revenue: float = 0.0


@dataclass
class Attribution:
    orders: Sequence[OrderRow]
    """Non-cancelled orders sorted by ``created_at``."""
    customers: Mapping[str, tuple[int, ...]]
    """Phone (E.164) -> customer ids."""
    windows: tuple[timedelta, ...]
    chosen: timedelta
    last_call: dict[int, CallRef] = field(default_factory=dict)
    totals: dict[timedelta, WindowTotals] = field(default_factory=dict)
    calls_with_orders: set[int] = field(default_factory=set)
    by_ext: dict[str, WindowTotals] = field(default_factory=dict)
    calls_by_ext: dict[str, set[int]] = field(default_factory=dict)
    by_direction: dict[str, set[int]] = field(default_factory=dict)
    customers_attributed: set[int] = field(default_factory=set)
    time_to_order: list[float] = field(default_factory=list)
    currencies: set[str] = field(default_factory=set)
    _next: int = 0

    def __post_init__(self) -> None:
        self.totals = {w: WindowTotals() for w in self.windows}

    @property
    def next_at(self) -> datetime:
        """Creation time of the next order to attribute (``datetime.max`` when none is left)."""
        return self.orders[self._next].created_at if self._next < len(self.orders) else datetime.max

    def before(self, t0: datetime) -> None:
        """Attribute every order created strictly before ``t0`` (a call at t_o still counts)."""
        orders = self.orders
        while self._next < len(orders) and orders[self._next].created_at < t0:
            self._attribute(orders[self._next])
            self._next += 1

    def answered(self, phone: str | None, ref: CallRef) -> tuple[int, ...]:
        """Remember an answered call as its customers' latest; returns those customers."""
        ids = self.customers.get(phone or "", ())
        for customer_id in ids:
            self.last_call[customer_id] = ref
        return ids

    def finish(self) -> None:
        self.before(datetime.max)

    def _attribute(self, order: OrderRow) -> None:
        ref = self.last_call.get(order.customer_id)
        if ref is None or not ref.selected:
            return
        age = order.created_at - ref.t0
        for window, totals in self.totals.items():
            if age <= window:
                totals.orders += 1
                totals.revenue += order.total
        if age > self.chosen:
            return
        if order.currency:
            self.currencies.add(order.currency)
        self.calls_with_orders.add(ref.number)
        self.by_direction.setdefault(ref.direction, set()).add(ref.number)
        self.customers_attributed.add(order.customer_id)
        self.time_to_order.append(age.total_seconds())
        if ref.ext:
            mine = self.by_ext.setdefault(ref.ext, WindowTotals())
            mine.orders += 1
            mine.revenue += order.total
            self.calls_by_ext.setdefault(ref.ext, set()).add(ref.number)
