"""Reads a tenant's rows through ``ReportStore`` and runs the computation on them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sync.config import Settings, TenantSettings
from sync.report.metrics import ReportInput, compute
from sync.report.period import Parameters, Period
from sync.report.store import ReportStore

TAIL_MARGIN = timedelta(days=1)


def build_report(
    engine: sa.Engine,
    settings: Settings,
    tenant: TenantSettings,
    period: Period,
    params: Parameters,
    now: datetime,
) -> dict[str, Any]:
    """One tenant's report; ``now`` is naive UTC (open episodes and immature orders)."""
    store = ReportStore(engine)
    start, end = period.start_utc, period.end_utc
    until = end + params.lookahead()
    orders = store.orders(tenant.name, start, until)
    # Callbacks and repeats need every call up to their windows after the period (a day of
    # margin covers the waits); past that only answered calls can take an order, and only up
    # to the last order, so a past month is not read twice over.
    tail = min(until, end + max(params.callback_window, params.repeat) + TAIL_MARGIN)
    last_order = orders[-1].created_at + timedelta(seconds=1) if orders else tail
    stream_until = min(until, max(tail, last_order))
    return compute(
        ReportInput(
            tenant=tenant.name,
            period=period,
            params=params,
            now=now,
            calls=store.calls(tenant.name, start, stream_until, answered_from=tail),
            orders=orders,
            customers=store.customers(tenant.name),
            new_phones=store.new_phones(tenant.name, start),
            skipped=store.skipped(tenant.name, start, end),
            extensions=dict(tenant.extensions),
            crm_url=tenant.url,
        )
    )
