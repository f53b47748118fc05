"""A week of varied calls and orders for report rendering tests (seeded, deterministic)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sync.report.metrics import ReportInput, compute
from sync.report.period import Parameters, Period
from sync.report.rows import CallRow, OrderRow

PERIOD = Period(date(2026, 10, 19), date(2026, 10, 25), "Europe/Berlin")  # ends on a DST day


def sample_calls(seed: int = 5, n: int = 900) -> list[CallRow]:
    rnd = random.Random(seed)
    start = PERIOD.start_utc
    phones = [f"+37529{1000000 + i:07d}" for i in range(160)]
    calls = []
    for _ in range(n):
        day = rnd.randrange(8)
        hour = min(23, max(0, int(rnd.gauss(13, 3.5))))
        t0 = start + timedelta(days=day, hours=hour, seconds=rnd.randrange(3600))
        direction = "in" if rnd.random() < 0.75 else "out"
        result = rnd.choices(["answered", "no answer", "busy", "failed"], [78, 15, 5, 2])[0]
        wait = rnd.randrange(0, 70) if direction == "in" else 0
        talk = rnd.randrange(20, 400) if result == "answered" else 0
        ext = None if rnd.random() < 0.05 else str(101 + rnd.randrange(8))
        calls.append(CallRow(t0, direction, result, talk, wait, ext, rnd.choice(phones)))
    return sorted(calls, key=lambda c: c.t0)


def sample_report(seed: int = 5) -> dict[str, Any]:
    calls = sample_calls(seed)
    customers = {f"+37529{1000000 + i:07d}": (500 + i,) for i in range(0, 160, 2)}
    rnd = random.Random(seed)
    orders = sorted(
        (
            OrderRow(i, c.customer, c.t0 + timedelta(hours=rnd.randrange(1, 40)), 30.0 + i, "EUR")
            for i, c in enumerate(_answered_customers(calls, customers))
            if i % 4 == 0
        ),
        key=lambda o: o.created_at,
    )
    return compute(
        ReportInput(
            tenant="shop",
            period=PERIOD,
            params=Parameters(),
            now=datetime(2026, 12, 1),
            calls=calls,
            orders=orders,
            customers=customers,
            new_phones={c.phone for c in calls[::3] if c.phone},
            skipped={"internal": 12, "no number": 4},
            extensions={str(101 + i): 11 + i for i in range(8)},
            crm_url="https://shop.retailcrm.ru",
        )
    )


class _Ref:
    def __init__(self, customer: int, t0: datetime) -> None:
        self.customer, self.t0 = customer, t0


def _answered_customers(
    calls: list[CallRow], customers: Mapping[str, tuple[int, ...]]
) -> list[_Ref]:
    return [
        _Ref(customers[c.phone][0], c.t0)
        for c in calls
        if c.result == "answered" and c.phone is not None and c.phone in customers
    ]
