"""The customer map follows the CRM: seed scan, then history with phone changes, deletes and
merges, gives exactly the (phone, customer) pairs the emulator holds; customer creation for an
unknown caller happens once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sync import config, db
from sync.crm.factory import daemon_client as make_client
from sync.emulator import Emulator
from sync.engine.customers import CustomerMap
from sync.engine.runner import Runner
from sync.engine.store import Store
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration


def crm_pairs(emu: Emulator, normalize: CustomerMap) -> set[tuple[str, int]]:
    return {
        (phone, int(cid))
        for cid, customer in emu.customers.items()
        for entry in customer.get("phones") or []
        if (phone := normalize.normalize(str(entry["number"])))
    }


def test_history_replay_matches_the_crm(tmp_path: Path, pg_url: str, emulator: Emulator) -> None:
    a = emulator.add_customer("Anna", ["+375291234567"])
    b = emulator.add_customer("Boris", ["8 029 765-43-21", "+375447654321"])
    settings = config.load(
        write_config(tmp_path, db_url=pg_url, crm_url=emulator.base_url), {KEY_ENV: API_KEY}
    )
    tenant = settings.tenants[0]
    store = Store(db.make_engine(pg_url))
    store.ensure_tenants([tenant.name])
    client = make_client(settings, tenant)
    cmap = CustomerMap(settings, tenant, store, client)

    first = cmap.refresh()
    assert first.error is None and first.seeded == 3
    assert store.customer_map("shop") == crm_pairs(emulator, cmap)

    c = emulator.add_customer("Clara", ["0172345678"])
    emulator.edit_customer_phones(a, add=["+375255554433"], remove=["+375291234567"])
    emulator.merge_customers(b, c)
    d = emulator.add_customer("Dmitry", ["+375336543210"])
    emulator.delete_customer(d)
    second = cmap.refresh()
    assert second.error is None and second.entries >= 5
    assert store.customer_map("shop") == crm_pairs(emulator, cmap)
    assert ("+375447654321", c) in store.customer_map("shop")  # moved by the merge
    state = store.tenant("shop")
    assert state is not None and state.customers_since_id == max(e["id"] for e in emulator.history)

    third = cmap.refresh()  # nothing new: nothing changes
    assert third.entries == 0 and store.customer_map("shop") == crm_pairs(emulator, cmap)
    client.close()
    store.engine.dispose()


def test_unknown_callers_get_one_customer_each(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    emulator.register_module()
    legs = generated(40, seed=21)
    fill_cdr(pg_url, legs)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        tenants=[{"name": "shop", "create_customers": True}],
    )
    settings = config.load(path, {KEY_ENV: API_KEY})
    runner = Runner(settings)
    try:
        runner.once()
        runner.once()
    finally:
        runner.close()
    phones = [p["number"] for c in emulator.customers.values() for p in c["phones"]]
    assert phones and len(phones) == len(set(phones))  # one customer per number, never two
    called = {
        c["phone"]
        for c in emulator.calls
        if c["result"] in ("answered", "no answer") and c["phone"].startswith("+")
    }
    assert called == set(phones)
    creates = [r for r in emulator.requests if r.path == "/api/v5/customers/create"]
    assert len(creates) == len(called)


def test_crm_numbers_get_the_area_code_like_calls_do(
    tmp_path: Path, sqlite_url: str, emulator: Emulator
) -> None:
    """A customer stored as '214943' must match the call that arrives as +73012214943 (N5)."""
    customer = emulator.add_customer("Irina", ["214943"])
    path = write_config(tmp_path, db_url=sqlite_url, crm_url=emulator.base_url)
    settings = config.load(path, {KEY_ENV: API_KEY})
    settings = replace(settings, pbx=replace(settings.pbx, country="RU", area_code="3012"))
    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    store = Store(engine)
    store.ensure_tenants(["shop"])
    with make_client(settings, settings.tenants[0]) as client:
        report = CustomerMap(settings, settings.tenants[0], store, client).refresh()
    engine.dispose()
    assert report.error is None
    assert ("+73012214943", customer) in store.customer_map("shop")
