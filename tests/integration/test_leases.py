"""Leases on a real PostgreSQL: one-statement claims, fenced writes that renew, a lost lease
that writes nothing, and what one cycle with a call to send costs our database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import db
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.engine.store import LeaseLost, Store, WindowSeen
from sync.sources.cdr_table import insert_legs
from tests.engine_fixtures import generated
from tests.integration.test_many_tenants import delivered_by_key, tenants_setup

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 12, 0, 0)


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = db.make_engine(pg_url)
    Store(engine).ensure_tenants(["t"])
    yield engine
    engine.dispose()


def tenant_row(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.text("select * from sync_tenant where name = 't'")).mappings()
        return dict(row.one())


def add_calls(engine: sa.Engine, status: str, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into call_sync (tenant, external_id, status, attempts, created_at, "
                "updated_at) values ('t', :id, :s, 0, :now, :now)"
            ),
            [{"id": f"{status}-{i}", "s": status, "now": NOW} for i in range(n)],
        )


def test_a_claim_takes_the_lease_returns_the_row_and_puts_sending_calls_back(
    engine: sa.Engine,
) -> None:
    add_calls(engine, "sending", 3)
    store = Store(engine)
    claim = store.claim("t", "a:1", 20, NOW)
    assert claim is not None
    assert claim.requeued == 3
    assert claim.lease.epoch == 1 and claim.lease.expires_at == NOW + timedelta(seconds=20)
    assert claim.state.lease_owner == "a:1" and claim.state.name == "t"
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("select distinct status from call_sync")).scalars()
        assert set(statuses) == {"pending"}
    assert store.claim("t", "b:2", 20, NOW + timedelta(seconds=5)) is None, "held by a:1"
    again = store.claim("t", "a:1", 20, NOW + timedelta(seconds=5))
    assert again is not None and again.lease.epoch == 2, "its own lease is taken again"
    late = store.claim("t", "b:2", 20, NOW + timedelta(seconds=26))
    assert late is not None and late.lease.epoch == 3, "an expired lease is free"


def test_a_lease_of_a_process_that_no_longer_runs_is_taken_at_once(engine: sa.Engine) -> None:
    store = Store(engine)
    assert store.claim("t", "here:999", 60, NOW) is not None
    alive = store.claim("t", "b:2", 60, NOW, is_dead=lambda owner: False)
    assert alive is None
    taken = store.claim("t", "b:2", 60, NOW, is_dead=lambda owner: owner == "here:999")
    assert taken is not None and taken.lease.owner == "b:2"


def test_fenced_writes_renew_the_lease(engine: sa.Engine) -> None:
    store = Store(engine)
    claim = store.claim("t", "a:1", 20, NOW)
    assert claim is not None
    add_calls(engine, "pending", 2)
    later = NOW + timedelta(seconds=15)
    store.mark_sending(claim.lease, ["pending-0"], "batch", later)
    assert claim.lease.expires_at == later + timedelta(seconds=20)
    assert tenant_row(engine)["lease_expires_at"] == later + timedelta(seconds=20)
    assert store.claim("t", "b:2", 20, NOW + timedelta(seconds=25)) is None, "renewed"


def test_a_lost_lease_writes_nothing(engine: sa.Engine) -> None:
    store = Store(engine)
    first = store.claim("t", "a:1", 20, NOW)
    assert first is not None
    second = store.claim("t", "b:2", 20, NOW + timedelta(seconds=30))  # a:1 stalled
    assert second is not None
    add_calls(engine, "pending", 1)
    with pytest.raises(LeaseLost, match="taken over by b:2"):
        store.mark_sent(first.lease, ["pending-0"], NOW + timedelta(seconds=31))
    seen = WindowSeen(NOW, 5, NOW, None)
    with pytest.raises(LeaseLost):
        store.finish_cycle(
            first.lease,
            now=NOW + timedelta(seconds=31),
            cursor=NOW,
            error=None,
            paused=False,
            seen=seen,
            run={"tenant": "t", "kind": "sync", "owner": "a:1", "started_at": NOW},
        )
    store.release(first.lease)  # not ours: nothing happens
    row = tenant_row(engine)
    assert row["lease_owner"] == "b:2" and row["cursor"] is None and row["probe_count"] is None
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from sync_run")).scalar_one() == 0
        status = conn.execute(sa.text("select status from call_sync")).scalar_one()
    assert status == "pending"


def test_finish_stores_the_end_gives_the_lease_up_and_reports_the_lag(
    engine: sa.Engine,
) -> None:
    store = Store(engine)
    claim = store.claim("t", "a:1", 20, NOW)
    assert claim is not None
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into call_sync (tenant, external_id, status, attempts, started_at, "
                "created_at, updated_at) values ('t', 'x', 'pending', 0, :s, :s, :s)"
            ),
            {"s": NOW - timedelta(seconds=90)},
        )
    lag = store.finish_cycle(
        claim.lease,
        now=NOW,
        cursor=NOW - timedelta(minutes=5),
        error=None,
        paused=False,
        next_run_at=NOW + timedelta(seconds=30),
        seen=WindowSeen(NOW - timedelta(hours=1), 7, NOW, None),
        run={"tenant": "t", "kind": "sync", "owner": "a:1", "started_at": NOW, "sent": 4},
    )
    assert lag == 90.0
    row = tenant_row(engine)
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["probe_count"] == 7 and row["cursor"] == NOW - timedelta(minutes=5)
    assert row["next_run_at"] == NOW + timedelta(seconds=30) and row["last_success_at"] == NOW
    with engine.connect() as conn:
        run = conn.execute(sa.text("select sent, lag_seconds from sync_run")).one()
    assert tuple(run) == (4, 90)


def test_a_cycle_with_a_call_to_send_costs_few_statements_on_one_connection(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    """The cost that sets how many tenants a process carries (docs/performance.md): a cycle
    that sends one new call is 16 statements on our database (claim 2, probe 1, read 2,
    record 3, due 1, sending 2, sent 2, finish 3), its own on one pooled connection."""
    settings = tenants_setup(tmp_path, pg_url, emulator, ["a", "b"], calls=20, workers=1)
    runner = Runner(settings)
    statements: list[str] = []
    checkouts: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    try:
        runner.once()
        assert runner.once()[0].outcome == "idle"
        insert_legs(runner.engine, generated(1, tenants=("a",), seed=41, hours_ago=0.5))
        sa.event.listen(runner.engine, "before_cursor_execute", count)
        sa.event.listen(runner.engine.pool, "checkout", lambda *a: checkouts.append(1))
        reports = {r.tenant: r for r in runner.once()}
    finally:
        runner.close()
    assert reports["a"].sent == 1 and reports["b"].outcome == "idle"
    assert delivered_by_key(emulator)["a"]
    idle_pass = 4  # states, tenants with work, the batched probe, the idle mark
    cycle = len(statements) - idle_pass
    assert cycle <= 16, "\n".join(statements)
    # The idle pass's connections, the cycle's own, and the source's probe and read.
    assert len(checkouts) <= idle_pass + 3
