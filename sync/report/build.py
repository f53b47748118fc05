"""Reads a tenant's rows through ``ReportStore`` and runs the computation on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sync.config import Settings, TenantSettings
from sync.report.metrics import ReportInput, compute
from sync.report.period import Parameters, Period
from sync.report.store import ReportStore


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
    return compute(
        ReportInput(
            tenant=tenant.name,
            period=period,
            params=params,
            now=now,
            calls=store.calls(tenant.name, start, until),
            orders=store.orders(tenant.name, start, until),
            customers=store.customers(tenant.name),
            new_phones=store.new_phones(tenant.name, start),
            skipped=store.skipped(tenant.name, start, end),
            extensions=dict(tenant.extensions),
            crm_url=tenant.url,
        )
    )
