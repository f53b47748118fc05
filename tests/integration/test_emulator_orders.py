"""The emulator's orders, orders/history and reference/statuses, as the report's refresh uses
them, and the OrderMirror that follows them into retailcrm_orders."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import config, db
from sync.crm import RetailCRMClient
from sync.emulator import Emulator
from sync.engine.orders import OrderMirror, entry_change, order_row
from sync.engine.store import Store
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, write_config
from tests.integration.test_emulator import get, post

pytestmark = pytest.mark.integration


def test_statuses_are_an_object_keyed_by_code_with_groups(emulator: Emulator) -> None:
    statuses = get(emulator, "/api/v5/reference/statuses").json()["statuses"]
    assert statuses["new"]["group"] == "new" and statuses["no-call"]["group"] == "cancel"


def test_orders_filters_pagination_and_errors(emulator: Emulator) -> None:
    customer = emulator.add_customer("Anna", ["+375291234567"])
    for day in ("2026-03-01 10:00:00", "2026-03-02 10:00:00", "2026-03-03 23:59:59"):
        emulator.add_order(customer, created_at=day, total=10)
    page = get(emulator, "/api/v5/orders", **{"filter[createdAtFrom]": "2026-03-02"}).json()
    assert [o["createdAt"][:10] for o in page["orders"]] == ["2026-03-02", "2026-03-03"]
    until = {"filter[createdAtTo]": "2026-03-02", "limit": "20"}
    assert len(get(emulator, "/api/v5/orders", **until).json()["orders"]) == 2
    paged = get(emulator, "/api/v5/orders", limit="20", page="2").json()
    assert paged["orders"] == [] and paged["pagination"]["totalCount"] == 3
    bad_date = get(emulator, "/api/v5/orders", **{"filter[createdAtFrom]": "02.03.2026"})
    assert bad_date.status_code == 400 and "filter[createdAtFrom]" in bad_date.json()["errors"]
    assert get(emulator, "/api/v5/orders", limit="30").status_code == 400
    assert get(emulator, "/api/v5/orders", key="wrong").status_code == 403
    refused = post(
        emulator,
        "/api/v5/orders/create",
        {"order": json.dumps({"customer": {"id": customer}, "status": "teleported"})},
    )
    assert refused.status_code == 400 and "status" in refused.json()["errors"]


def test_orders_history_by_since_id(emulator: Emulator) -> None:
    customer = emulator.add_customer("Anna", ["+375291234567"])
    first = emulator.add_order(customer, created_at="2026-03-01 10:00:00", total=99.5)
    emulator.set_order_status(first, "no-call")
    history = get(emulator, "/api/v5/orders/history", limit="100").json()["history"]
    assert [(h["id"], h.get("created"), h["field"]) for h in history] == [
        (1, True, "id"),
        (2, None, "status"),
    ]
    assert history[1]["newValue"] == {"code": "no-call"} and history[1]["order"]["id"] == first
    since = get(emulator, "/api/v5/orders/history", **{"filter[sinceId]": "1"}).json()
    assert [h["id"] for h in since["history"]] == [2]
    bad = get(emulator, "/api/v5/orders/history", **{"filter[startDate]": "2026-03-01"})
    assert bad.status_code == 400


def test_order_rows_and_history_changes_are_pure() -> None:
    groups = {"new": "new", "no-call": "cancel"}
    order = {
        "id": 5,
        "customer": {"id": 9},
        "createdAt": "2026-03-01 12:00:00",
        "status": "new",
        "totalSumm": 12.3,
        "currency": "BYN",
        "managerId": 16,
        "site": "shop",
    }
    row = order_row(order, groups, "Europe/Minsk")
    assert row is not None
    assert row["created_at"] == datetime(2026, 3, 1, 9, 0)  # Minsk is UTC+3
    assert row["total"] == Decimal("12.30") and row["status_group"] == "new"
    status = {"field": "status", "newValue": {"code": "no-call"}}
    assert entry_change(status, groups) == {"status": "no-call", "status_group": "cancel"}
    assert entry_change({"field": "manager", "newValue": {"id": 3}}, groups) == {"manager_id": 3}
    assert entry_change({"field": "customer_comment"}, groups) is None


def test_mirror_fills_then_follows_history(tmp_path: Path, emulator: Emulator) -> None:
    url = f"sqlite:///{tmp_path}/own.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    path = write_config(tmp_path, db_url=url, crm_url=emulator.base_url)
    settings = config.load(path, {KEY_ENV: API_KEY})
    tenant = settings.tenants[0]
    store = Store(engine)
    store.ensure_tenants([tenant.name])
    customer = emulator.add_customer("Anna", ["+375291234567"])
    before = emulator.add_order(customer, created_at="2026-03-01 10:00:00", total=5)
    with RetailCRMClient(emulator.base_url, API_KEY, tenant="shop") as client:
        mirror = OrderMirror(settings, tenant, store, client)
        assert mirror.refresh().seeded == 1
        after = emulator.add_order(customer, total=7, status="new")
        emulator.set_order_status(before, "no-call")
        report = mirror.refresh()
        assert report.error is None and report.entries >= 2
        assert mirror.refresh().entries == 0  # the cursor moved on
    with engine.connect() as conn:
        rows: dict[int, str] = dict(
            conn.execute(sa.text("SELECT order_id, status_group FROM retailcrm_orders")).all()
        )
        since = conn.execute(sa.text("SELECT orders_since_id FROM sync_tenant")).scalar()
    engine.dispose()
    assert rows == {before: "cancel", after: "new"} and since is not None
