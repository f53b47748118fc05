"""Idle poll: a big ``cdr`` table (5 000 000 legs by default) with nothing new. Measures the
database time of one whole tenant cycle, and shows the plan of the change probe."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from bench.common import KEY, scratch_database
from sync import config, db
from sync.calls.demo_cdr import generate_legs
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.sources.cdr_table import copy_legs, create_cdr_table
from tests.engine_fixtures import KEY_ENV, write_config


def idle_poll(n_legs: int, workdir: Path) -> dict[str, Any]:
    n_calls = int(n_legs / 2.5)
    span = timedelta(days=60)
    spacing = span.total_seconds() / n_calls
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - span - timedelta(hours=2)
    with scratch_database() as url, Emulator(api_key=KEY) as emu:
        emu.register_module()
        engine = db.make_engine(url, poolclass=sa.pool.NullPool)
        # One tenant, no tenant column: the recommended index is the plain time index.
        create_cdr_table(engine, recordingfile=True, tenant_column=None)
        began = time.monotonic()
        legs = copy_legs(
            engine,
            generate_legs(n_calls, start=start, seed=5, spacing_seconds=spacing),
            vacuum=True,
        )
        load_s = time.monotonic() - began
        engine.dispose()
        path = write_config(workdir, db_url=url, crm_url=emu.base_url, sync={"max_in_flight": 8})
        runner = Runner(config.load(path, {KEY_ENV: KEY}))
        try:
            (first,) = runner.once()  # reads the 24 h lookback once and uploads it
            timings: list[float] = []
            started: dict[int, float] = {}

            def before(
                conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool
            ) -> None:
                started[id(ctx)] = time.perf_counter()

            def after(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
                timings.append(time.perf_counter() - started.pop(id(ctx)))

            event.listen(runner.engine, "before_cursor_execute", before)
            event.listen(runner.engine, "after_cursor_execute", after)
            cycles = []
            for _ in range(5):  # median of five idle cycles
                timings.clear()
                wall = time.perf_counter()
                (idle,) = runner.once()
                wall_ms = (time.perf_counter() - wall) * 1000
                cycles.append((sum(timings) * 1000, wall_ms, len(timings), idle))
            db_ms, wall_ms, statements, idle = sorted(cycles, key=lambda c: c[0])[2]
            state = runner.store.tenant("shop")
            assert state is not None and state.probe_from is not None
            with runner.engine.connect() as conn:
                plan = (
                    conn.execute(
                        sa.text(
                            "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*), max(start) FROM cdr "
                            "WHERE start >= :s"
                        ),
                        {"s": state.probe_from},
                    )
                    .scalars()
                    .all()
                )
                window_rows = conn.execute(
                    sa.text("SELECT count(*) FROM cdr WHERE start >= :s"), {"s": state.probe_from}
                ).scalar()
        finally:
            runner.close()
    return {
        "legs": legs,
        "load_seconds": round(load_s, 1),
        "first_cycle": first.summary(),
        "idle_cycle": idle.summary(),
        "idle_outcome": idle.outcome,
        "statements": statements,
        "db_ms": round(db_ms, 2),
        "db_ms_all": [round(c[0], 2) for c in cycles],
        "cycle_wall_ms": round(wall_ms, 1),
        "window_rows": window_rows,
        "probe_plan": plan,
    }
