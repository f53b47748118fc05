"""The demo's last step: some callers become customers with orders, then the report runs.

Customers and orders are typed into the emulator as an operator would (every third answered
caller is a customer; every other customer orders 20 minutes after the call, one order is
cancelled), the real refresh fills the map and ``retailcrm_orders`` over HTTP, and the report
is computed from our tables exactly as ``retailcrm-sync report`` does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sync.config import Settings
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.report.build import build_report
from sync.report.html import render_html
from sync.report.period import Parameters, Period
from sync.report.text import render_text
from sync.timeutil import utc_to_local, utcnow

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def add_orders(emulator: Emulator, calls: list[dict[str, Any]]) -> int:
    """Customers and orders for some answered callers; returns the number of orders."""
    answered = sorted(
        (c for c in calls if c.get("result") == "answered" and c.get("phone")),
        key=lambda c: (str(c["date"]), str(c["externalId"])),
    )
    phones: dict[str, dict[str, Any]] = {}
    for call in answered:
        phones.setdefault(str(call["phone"]), call)
    orders = 0
    for n, (phone, call) in enumerate(phones.items()):
        if n % 3:
            continue
        customer = emulator.add_customer(f"Customer {n}", [phone])
        if n % 2:
            continue
        created = datetime.strptime(str(call["date"]), DATE_FORMAT) + timedelta(minutes=20)
        status = "no-call" if orders == 1 else "new"
        emulator.add_order(
            customer, created_at=created.strftime(DATE_FORMAT), status=status, total=40.0 + n
        )
        orders += 1
    return orders


def demo_report(emulator: Emulator, runner: Runner, settings: Settings, folder: Path) -> list[str]:
    """Orders into the CRM, the refresh, and the report: text lines plus the HTML's path."""
    add_orders(emulator, emulator.calls)
    runner.refresh_customers()
    tenant = settings.tenants[0]
    now = utcnow()
    first = utc_to_local(now - timedelta(hours=3), tenant.timezone).date()
    period = Period(first, utc_to_local(now, tenant.timezone).date(), tenant.timezone)
    # The demo's calls are at most three hours old: a 30-minute callback window lets most
    # missed-call episodes close, so every outcome class can be seen.
    params = Parameters(responsible=settings.pbx.responsible, callback_window=timedelta(minutes=30))
    report = build_report(runner.engine, settings, tenant, period, params, now)
    html = folder / "report.html"
    html.write_text(render_html([report]), encoding="utf-8")
    command = (
        f"retailcrm-sync --config {settings.path} report --callback-window 30m "
        f"--from {period.first}"
    )
    return [
        render_text([report]).split("\nDefinitions\n")[0].rstrip(),
        "",
        f"Report:  {html} (open it in a browser; the same as `report --format html`)",
        f"         {command} --to {period.last}",
    ]
