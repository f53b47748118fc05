"""Many tenants in one process: bounded work, fairness, and one tenant never ending the run.

Real PostgreSQL for our tables and the call log, the CRM emulator over HTTP with one key per
tenant. Conditions are polled or counted, never timed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync import config, db
from sync.calls.legs import Leg
from sync.cli import main
from sync.commands.common import exit_code
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.engine.store import Claim, Lease, Store
from sync.sources import leg_sort_key
from sync.timeutil import utcnow
from tests.engine_fixtures import fill_cdr, generated, write_config

pytestmark = pytest.mark.integration


def key_of(name: str) -> str:
    return f"key-{name}-0123456789abcdef"


def tenants_setup(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    names: list[str],
    *,
    calls: int,
    extra_legs: list[Leg] | None = None,
    rate_limits: dict[str, float] | None = None,
    sync: dict[str, Any] | None = None,
    workers: int = 4,
    more: list[str] | None = None,
) -> config.Settings:
    """``names`` tenants routed by accountcode, each with its own key on the emulator, with
    ``calls`` calls among them; ``more`` are tenants whose calls are in ``extra_legs``."""
    emulator.require_module = False
    env = {}
    for name in names + (more or []):
        emulator.add_key(key_of(name), label=name)
        env[f"RCS_KEY_{name.upper()}"] = key_of(name)
    legs = generated(calls, tenants=tuple(names), spacing_seconds=1.0)
    fill_cdr(pg_url, sorted(legs + (extra_legs or []), key=leg_sort_key))
    tenants = [
        {"name": n, "match": n, "api_key_env": f"RCS_KEY_{n.upper()}"}
        | ({"rate_limit": rate_limits[n]} if rate_limits and n in rate_limits else {})
        for n in (more or []) + names
    ]
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        source={"tenant_column": "accountcode"},
        tenants=tenants,
        sync=sync,
        extra=f"[daemon]\nworkers = {workers}\ninterval = 5\n",
    )
    return config.load(path, env)


def delivered_by_key(emulator: Emulator) -> dict[str, int]:
    """Upload requests' calls per key label."""
    counts: dict[str, int] = {}
    for request in emulator.requests:
        if request.path.endswith("/telephony/calls/upload") and request.status == 200:
            label = request.key_label or "?"
            counts[label] = counts.get(label, 0) + 1
    return counts


def lease_owner(url: str, tenant: str) -> str | None:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("select lease_owner from sync_tenant where name = :n"), {"n": tenant}
            ).scalar()
    finally:
        engine.dispose()


def unsent(url: str) -> int:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("select count(*) from call_sync where status in ('pending','failed')")
                ).scalar_one()
            )
    finally:
        engine.dispose()


class FlakyStore(Store):
    """Our real store, except that one tenant's claim or finish hits a pool timeout."""

    def __init__(self, engine: sa.Engine, tenant: str, where: str) -> None:
        super().__init__(engine)
        self.victim = tenant
        self.where = where

    def claim(self, tenant: str, *args: Any, **kwargs: Any) -> Claim | None:
        if tenant == self.victim and self.where == "claim":
            raise sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
        return super().claim(tenant, *args, **kwargs)

    def finish_cycle(self, lease: Lease, **kwargs: Any) -> float:
        if lease.tenant == self.victim and self.where == "finish":
            raise sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
        return super().finish_cycle(lease, **kwargs)

    def oldest_unsent(self, tenant: str) -> datetime | None:
        if tenant == self.victim and self.where == "finish":
            raise sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
        return super().oldest_unsent(tenant)


@pytest.mark.parametrize("where", ["claim", "finish"])
def test_a_pool_timeout_in_one_tenant_ends_neither_the_others_nor_the_run(
    tmp_path: Path, pg_url: str, emulator: Emulator, where: str
) -> None:
    names = ["a", "b", "c"]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=30)
    runner = Runner(settings)
    runner.store = FlakyStore(runner.engine, "b", where)
    try:
        reports = {r.tenant: r for r in runner.once()}
        maps = runner.refresh_customers()
    finally:
        runner.close()
    assert set(reports) == set(names), "every tenant has its line"
    assert reports["b"].outcome == "error" and "TimeoutError" in (reports["b"].error or "")
    assert reports["a"].outcome == "ok" and reports["c"].outcome == "ok"
    assert exit_code(list(reports.values())) == 1
    assert {m.tenant for m in maps} == set(names), "the customer refresh still ran"
    assert lease_owner(pg_url, "b") is None, "the lease is not left held"
    labels = delivered_by_key(emulator)
    assert labels.get("a") and labels.get("c")


def test_the_source_is_opened_once_by_concurrent_tenants(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    settings = tenants_setup(tmp_path, pg_url, emulator, ["a", "b"], calls=4)
    runner = Runner(settings)
    barrier = threading.Barrier(16)
    seen: list[object] = []
    lock = threading.Lock()

    def first_use() -> None:
        barrier.wait()
        source = runner.source
        with lock:
            seen.append(source)

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        runner.close()
    assert len(seen) == 16
    assert len({id(s) for s in seen}) == 1, "every tenant thread got the one source"


def test_a_huge_backlog_yields_and_the_others_are_delivered_in_the_same_pass(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = ["big", "t1", "t2", "t3", "t4", "t5"]
    backlog = generated(400, tenants=("big",), seed=99, spacing_seconds=1.0)
    settings = tenants_setup(
        tmp_path,
        pg_url,
        emulator,
        names[1:],
        calls=150,
        extra_legs=backlog,
        rate_limits={"big": 2},  # 2 uploads a second: ~4 s for its backlog, slices of 1 s
        sync={"slice_seconds": 1, "max_in_flight": 1},
        workers=2,
        more=["big"],
    )
    runner = Runner(settings)
    try:
        tick = {r.tenant: r for r in runner.once(drain=False)}  # the daemon's pass
        assert tick["big"].yielded, tick["big"].summary()
        for name in names[1:]:
            assert tick[name].outcome == "ok" and not tick[name].yielded, tick[name].summary()
            assert tick[name].failed == 0
        states = runner.store.tenant_states()
        later = [states[n].next_run_at for n in names[1:]]
        big_next = states["big"].next_run_at
        assert big_next is not None and all(t is not None and big_next < t for t in later)
        first = runner._due(list(settings.tenants), states)[0]
        assert first.name == "big", "first in line next tick"
        # `once` (cron) keeps going round-robin until everything due is delivered.
        (drained,) = runner.once(["big"])
    finally:
        runner.close()
    assert not drained.yielded and drained.failed == 0
    assert unsent(pg_url) == 0


def ours() -> int:
    """Threads of the program under test: not the emulator's per-connection handlers."""
    return sum(1 for t in threading.enumerate() if "process_request" not in t.name)


@contextmanager
def sampling(url: str) -> Iterator[dict[str, int]]:
    """Peak threads of this process and connections to ``url``'s database while inside."""
    peak = {"threads": 0, "connections": 0}
    stop = threading.Event()
    name = make_url(url).database
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def sample() -> None:
        with admin.connect() as conn:
            while not stop.is_set():
                count = conn.execute(
                    sa.text(
                        "select count(*) from pg_stat_activity "
                        "where datname = :n and pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                ).scalar_one()
                conn.rollback()
                peak["connections"] = max(peak["connections"], int(count))
                peak["threads"] = max(peak["threads"], ours())
                stop.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
        admin.dispose()


def test_threads_and_connections_follow_workers_not_tenants(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:03d}" for i in range(200)]
    workers, in_flight = 4, 2
    settings = tenants_setup(
        tmp_path, pg_url, emulator, names, calls=600, workers=workers,
        sync={"max_in_flight": in_flight},
    )  # fmt: skip
    before = ours() + 1  # + the sampler
    with sampling(pg_url) as peak:
        runner = Runner(settings)
        try:
            reports = runner.once()
            runner.refresh_customers()
            clients_open = runner.clients.open_count()
        finally:
            runner.close()
    assert len(reports) == 200 and all(r.outcome == "ok" for r in reports)
    assert unsent(pg_url) == 0
    thread_bound = workers * (1 + in_flight) + 2
    assert peak["threads"] - before < thread_bound, peak
    pool = db.pool_options(pg_url, workers)
    assert peak["connections"] <= pool["pool_size"] + pool["max_overflow"], peak
    assert clients_open <= 2 * workers


def test_status_filters_by_tenant_shows_the_owner_in_two_statements(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = [f"t{i}" for i in range(30)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=60)
    for name in names:
        monkeypatch.setenv(f"RCS_KEY_{name.upper()}", key_of(name))
    assert main(["--config", str(settings.path), "once"]) == 0
    capsys.readouterr()
    engine = db.make_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        lease = Store(engine).claim("t7", "elsewhere:4242", 60, utcnow())
        assert lease is not None
    finally:
        engine.dispose()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "call_sync" in statement or "sync_tenant" in statement:
            statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        assert main(["--config", str(settings.path), "status", "--json"]) == 0
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    every = json.loads(capsys.readouterr().out)["tenants"]
    assert [t["name"] for t in every] == names
    assert len(statements) == 2, statements
    owners = {t["name"]: t["owner"] for t in every}
    assert owners["t7"] == "elsewhere:4242"
    assert all(owners[n] is None for n in names if n != "t7")
    assert main(["--config", str(settings.path), "status", "--json", "--tenant", "t7"]) == 0
    (only,) = json.loads(capsys.readouterr().out)["tenants"]
    assert (
        only["name"] == "t7"
        and only["owner"] == "elsewhere:4242"
        and only["sent"] + only["skipped"] > 0
    )
    assert main(["--config", str(settings.path), "status", "--tenant", "t7"]) == 0
    text = capsys.readouterr().out
    assert "elsewhere:4242" in text and "t8" not in text
    assert "no daemon (`run`) seen in the last 5 s" in text, "once writes no presence row"


def test_idle_tenants_cost_a_handful_of_statements_and_no_lease(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:03d}" for i in range(250)]  # two batched probe statements
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=500)
    runner = Runner(settings)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    try:
        first = runner.once()
        assert all(r.outcome == "ok" for r in first)
        owners = {n: s.lease_owner for n, s in runner.store.tenant_states().items()}
        before = {n: runner.store.tenant(n) for n in ("t000", "t100")}
        sa.event.listen(runner.engine, "before_cursor_execute", count)
        idle = runner.once()
        sa.event.remove(runner.engine, "before_cursor_execute", count)
        after = runner.store.tenant_states()
    finally:
        runner.close()
    assert [r.tenant for r in idle] == names and all(r.outcome == "idle" for r in idle)
    assert len(statements) <= 6, statements
    assert not any("FOR UPDATE" in s for s in statements), "no lease taken"
    assert all(after[n].lease_owner is None for n in owners)
    for name, state in before.items():
        was = state.last_success_at if state is not None else None
        now = after[name].last_success_at
        assert was is not None and now is not None and now > was
        assert after[name].next_run_at is not None
