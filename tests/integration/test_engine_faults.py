"""The engine under faults: 503 bursts, hung uploads, a rejected call, a revoked key, a
database that drops its connections mid-cycle. Every call still lands exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import config, db
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.engine.store import Store
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration
ENV = {KEY_ENV: API_KEY}
UPLOAD = "/api/v5/telephony/calls/upload"


def setup(
    tmp_path: Path, url: str, emu: Emulator, n: int = 150, **kw: Any
) -> tuple[config.Settings, dict[str, dict[str, Any]]]:
    emu.register_module()
    legs = generated(n, **kw.pop("gen", {}))
    fill_cdr(url, legs)
    settings = config.load(write_config(tmp_path, db_url=url, crm_url=emu.base_url, **kw), ENV)
    return settings, expected_payloads(settings, legs)


def delivered_once(emu: Emulator, expected: dict[str, dict[str, Any]]) -> None:
    assert {c["externalId"]: c for c in emu.calls} == expected


def rows(url: str, tenant: str = "shop") -> dict[str, dict[str, Any]]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("select * from call_sync where tenant = :t"), {"t": tenant}
            )
            return {r["external_id"]: dict(r) for r in found.mappings()}
    finally:
        engine.dispose()


def test_503_bursts_are_retried(tmp_path: Path, pg_url: str, emulator: Emulator) -> None:
    settings, expected = setup(tmp_path, pg_url, emulator)
    emulator.fail_next(UPLOAD, 3, status=503, body="html")
    runner = Runner(settings)
    try:
        (report,) = runner.once()
    finally:
        runner.close()
    assert report.outcome == "ok" and report.failed == 0
    delivered_once(emulator, expected)
    failed = [r for r in emulator.requests if r.path == UPLOAD and r.status == 503]
    assert len(failed) == 3


def test_hung_upload_is_retried_and_lands_once(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
) -> None:
    settings, expected = setup(tmp_path, pg_url, emulator, sync={"read_timeout": 1})
    emulator.hang_next(UPLOAD, 1, seconds=3)
    runner = Runner(settings)
    try:
        (report,) = runner.once()
    finally:
        runner.close()
    assert report.outcome == "ok", report.error
    delivered_once(emulator, expected)
    assert all(r["status"] in ("sent", "skipped") for r in rows(pg_url).values())


def test_one_bad_call_in_a_batch_fails_alone(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
) -> None:
    settings, expected = setup(tmp_path, pg_url, emulator, n=60)
    # A call the CRM rejects (as if a server-side rule we do not know refused it), recorded
    # among the others so that it travels inside a full batch.
    engine = db.make_engine(pg_url, poolclass=sa.pool.NullPool)
    bad = {
        "date": "2026-03-02 10:00:00",
        "type": "in",
        "phone": "+375291234567",
        "result": "maybe",
        "duration": 1,
        "externalId": "bad.1",
    }
    start = min(p["date"] for p in expected.values())
    with engine.begin() as conn:
        conn.execute(
            sa.text("insert into sync_tenant (name, lease_epoch, paused) values ('shop', 0, false)")
        )
        conn.execute(
            sa.insert(
                sa.table(
                    "call_sync",
                    sa.column("tenant"),
                    sa.column("external_id"),
                    sa.column("status"),
                    sa.column("payload", sa.JSON),
                    sa.column("attempts"),
                    sa.column("started_at"),
                )
            ),
            {
                "tenant": "shop",
                "external_id": "bad.1",
                "status": "pending",
                "payload": bad,
                "attempts": 0,
                "started_at": start,
            },
        )
    engine.dispose()
    runner = Runner(settings)
    try:
        (report,) = runner.once()
    finally:
        runner.close()
    delivered_once(emulator, expected)
    state = rows(pg_url)["bad.1"]
    assert state["status"] == "failed" and state["attempts"] == 1
    assert "calls[0].result" in state["last_error"]
    assert report.failed == 1 and report.sent == len(expected)
    batches = [len(r.params["calls"]) for r in emulator.requests if r.path == UPLOAD]
    assert batches[0] == 50 and batches.count(1) >= 1  # bisected down to the bad call


def test_revoked_key_pauses_only_its_tenant(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
) -> None:
    tenants = [
        {"name": "good", "match": "A"},
        {"name": "bad", "match": "B", "api_key_env": "BAD_KEY"},
    ]
    emulator.register_module()
    legs = generated(120, tenants=("A", "B"))
    fill_cdr(pg_url, legs)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        tenants=tenants,
        source={"tenant_column": "accountcode"},
    )
    settings = config.load(path, {**ENV, "BAD_KEY": "revoked-key-000000"})
    runner = Runner(settings)
    try:
        reports = {r.tenant: r for r in runner.once()}
    finally:
        runner.close()
    assert reports["good"].outcome == "ok" and reports["good"].sent > 0
    assert reports["bad"].outcome == "paused" and "Wrong" in (reports["bad"].error or "")
    stored = {c["externalId"] for c in emulator.calls}
    good_rows = rows(pg_url, "good")
    bad_rows = rows(pg_url, "bad")
    assert stored == {k for k, r in good_rows.items() if r["status"] == "sent"}
    assert bad_rows and all(r["status"] in ("pending", "skipped") for r in bad_rows.values())
    state = Store(db.make_engine(pg_url, poolclass=sa.pool.NullPool)).tenant("bad")
    assert state is not None and state.paused and "Wrong" in (state.last_error or "")

    def refused() -> int:
        return sum(1 for r in emulator.requests if r.path == UPLOAD and r.key_label is None)

    # While paused, a cycle probes with one batch instead of max_in_flight refused requests.
    before = refused()
    runner = Runner(settings)
    try:
        again = {r.tenant: r for r in runner.once()}
    finally:
        runner.close()
    assert again["bad"].outcome == "paused"
    assert refused() - before == 1


def test_database_connections_killed_mid_cycle(
    tmp_path: Path,
    pg_url: str,
    pg_admin: sa.Engine,
    emulator: Emulator,
) -> None:
    settings, expected = setup(tmp_path, pg_url, emulator, n=300)
    emulator.latency = 0.2
    name = sa.engine.make_url(pg_url).database
    killer = threading.Timer(
        0.5,
        lambda: pg_admin.connect().execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = :d and pid <> pg_backend_pid()"
            ),
            {"d": name},
        ),
    )
    runner = Runner(settings)
    try:
        killer.start()
        first = runner.once()
        killer.join()
        emulator.latency = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (report,) = runner.once()
            if report.outcome in ("ok", "idle") and report.sent == 0 and report.failed == 0:
                break
    finally:
        runner.close()
    assert first  # the interrupted cycle reported instead of raising
    delivered_once(emulator, expected)
    assert all(r["status"] in ("sent", "skipped") for r in rows(pg_url).values())
