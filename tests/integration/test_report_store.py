"""The report's SQL on SQLite and PostgreSQL: what ``build_report`` reads gives the same figures
as the computation over every row (the look-ahead trimming loses nothing), skipped and
cancelled rows are left out, new numbers come from the whole history."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from models import CallSync, RetailcrmCustomer, RetailcrmOrder
from sync import config, db
from sync.report.build import build_report
from sync.report.metrics import ReportInput, compute
from sync.report.period import Parameters, Period
from sync.report.rows import CallRow, OrderRow
from tests.engine_fixtures import KEY_ENV, write_config

pytestmark = pytest.mark.integration
PERIOD = Period(date(2026, 3, 2), date(2026, 3, 2), "Europe/Minsk")
T = PERIOD.start_utc + timedelta(hours=10)
D = timedelta(days=1)
A, B, C = "+375291111111", "+375292222222", "+375293333333"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/own.db"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        return url
    return str(request.getfixturevalue("pg_url"))


def _calls() -> list[CallRow]:
    return [
        CallRow(T - 40 * D, "in", "answered", 30, 5, "101", B),  # B is known before the period
        CallRow(T, "in", "answered", 60, 10, "101", A),
        CallRow(T + timedelta(minutes=5), "in", "no answer", 0, 30, "102", B),
        CallRow(T + timedelta(hours=1), "in", "answered", 40, 12, "102", C),
        CallRow(T + 2 * D, "out", "no answer", 0, 0, "103", B),  # too late for a callback
        CallRow(T + 9 * D, "in", "no answer", 0, 20, "101", A),  # in the trimmed tail
        CallRow(T + 12 * D, "out", "answered", 90, 0, "103", C),  # steals C's later order
    ]


def _orders() -> list[OrderRow]:
    return [
        OrderRow(1, 7, T + timedelta(hours=3), 100.0, "BYN"),  # A's call: 1 d window
        OrderRow(2, 7, T + 5 * D, 50.0, "BYN"),  # A's call: 7 d window
        OrderRow(3, 9, T + 20 * D, 70.0, "BYN"),  # C: goes to the +12 d call, not the period's
    ]


def _fill(url: str) -> None:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    rows = []
    for n, c in enumerate(_calls()):
        payload = {"type": c.direction, "result": c.result, "duration": c.talk, "phone": c.phone}
        payload |= {"code": c.ext, "externalId": f"c{n}"}
        if c.direction == "in":
            payload["durationWaiting"] = c.wait
        rows.append(
            {"tenant": "shop", "external_id": f"c{n}", "status": "sent", "started_at": c.t0}
            | {"payload": payload, "skip_reason": None}
        )
    rows.append(
        {"tenant": "shop", "external_id": "s1", "status": "skipped", "started_at": T}
        | {"payload": None, "skip_reason": "internal"}
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(cast(sa.Table, CallSync.__table__)), rows)
        conn.execute(
            sa.insert(cast(sa.Table, RetailcrmCustomer.__table__)),
            [
                {"phone": A, "retailcrm_customer_id": 7, "enterprise_number": "shop"},
                {"phone": C, "retailcrm_customer_id": 9, "enterprise_number": "shop"},
            ],
        )
        orders = [
            {"tenant": "shop", "order_id": o.order_id, "customer_id": o.customer_id}
            | {"created_at": o.created_at, "total": Decimal(str(o.total)), "currency": "BYN"}
            | {"status": "new", "status_group": "new"}
            for o in _orders()
        ]
        orders.append(
            {"tenant": "shop", "order_id": 4, "customer_id": 7, "created_at": T + D}
            | {"total": Decimal("999"), "currency": "BYN", "status": "no-call"}
            | {"status_group": "cancel"}
        )
        conn.execute(sa.insert(cast(sa.Table, RetailcrmOrder.__table__)), orders)
    engine.dispose()


def test_the_sql_reads_what_the_computation_needs(tmp_path: Path, db_url: str) -> None:
    _fill(db_url)
    path = write_config(
        tmp_path,
        db_url=db_url,
        crm_url="http://127.0.0.1:9",
        tenants=({"name": "shop", "timezone": "Europe/Minsk"},),
    )
    settings = config.load(path, {KEY_ENV: "k"})
    now = datetime(2026, 6, 1)
    params = Parameters()
    engine = db.make_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        report = build_report(engine, settings, settings.tenants[0], PERIOD, params, now)
    finally:
        engine.dispose()
    in_period_onwards = [c for c in _calls() if c.t0 >= PERIOD.start_utc]
    expected = compute(
        ReportInput(
            tenant="shop",
            period=PERIOD,
            params=params,
            now=now,
            calls=in_period_onwards,
            orders=_orders(),
            customers={A: (7,), C: (9,)},
            new_phones={A, C},
            skipped={"internal": 1},
            crm_url="http://127.0.0.1:9",
        )
    )
    assert report == expected
    assert report["inbound"]["offered"] == 3 and report["skipped"] == {"internal": 1}
    assert report["customers"]["new_numbers"] == 2 and report["customers"]["returning_calls"] == 1
    assert report["missed"]["lost"] == 1
    windows = {w["window"]: (w["attributed"], w["revenue"]) for w in report["orders"]["windows"]}
    assert windows == {"1d": (1, 100.0), "7d": (2, 150.0), "30d": (2, 150.0)}
