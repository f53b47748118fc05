"""What the computation reads: one call, one order (plain tuples, cheap for a million rows)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class CallRow(NamedTuple):
    """One logical call of ``call_sync`` (non-skipped), fields from its payload."""

    t0: datetime
    """``started_at``: naive UTC."""
    direction: str
    result: str
    talk: int
    wait: int
    ext: str | None
    phone: str | None


class OrderRow(NamedTuple):
    """A non-cancelled order of ``retailcrm_orders``; ``created_at`` naive UTC."""

    order_id: int
    customer_id: int
    created_at: datetime
    total: float
    currency: str | None
