"""Backfill: N generated calls in a PostgreSQL ``cdr`` table -> the emulator at the real limits
(40 requests/s to /telephony, 50 calls a request, 100 ms latency). The ceiling is 2 000 calls/s.
Also the naive baseline (one call a request, in sequence) and the peak memory of the process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import KEY, run_cli, scratch_database
from sync import config, db
from sync.calls.builder import build_calls
from sync.calls.demo_cdr import generate_legs
from sync.crm import RetailCRMClient
from sync.emulator import Emulator
from sync.sources.cdr_table import copy_legs, create_cdr_table
from tests.engine_fixtures import KEY_ENV, write_config

UPLOAD = "/api/v5/telephony/calls/upload"
RATE = 40
LATENCY = 0.1
CEILING = RATE * 50


def _load(url: str, n_calls: int) -> int:
    """N calls spread over the last ~20 hours, all complete, inside the 24 h lookback."""
    spacing = min(20.0, 20 * 3600 / n_calls)
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=21)
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        create_cdr_table(engine, recordingfile=True, tenant_column=None)
        legs = generate_legs(n_calls, start=start, seed=42, spacing_seconds=spacing)
        return copy_legs(engine, legs, vacuum=True)
    finally:
        engine.dispose()


def backfill(n_calls: int, workdir: Path) -> dict[str, Any]:
    with scratch_database() as url, Emulator(api_key=KEY) as emu:
        emu.register_module()
        emu.rate_limits(telephony_rps=RATE, general_rps=10)
        emu.latency = LATENCY
        legs = _load(url, n_calls)
        path = write_config(
            workdir,
            db_url=url,
            crm_url=emu.base_url,
            source={"settle_seconds": 120, "lookback_hours": 24, "page_size": 5000},
            sync={
                "max_in_flight": 8,
                "lease_seconds": 60,
                "upload_budget_seconds": 25,
                "read_timeout": 20,
                "retry_base_seconds": 30,
            },
        )
        run = run_cli(path, "once", env_key=KEY_ENV)
        uploads = [r for r in emu.requests if r.path == UPLOAD and r.status == 200]
        sent = sum(len(r.params["calls"]) for r in uploads)
        span = uploads[-1].at - uploads[0].at if len(uploads) > 1 else 0.0
        rate = (sent - len(uploads[-1].params["calls"])) / span if span else 0.0
        gaps = [b.at - a.at for a, b in pairwise(uploads)]
        rejected = sum(1 for r in emu.requests if r.path == UPLOAD and r.status != 200)
        return {
            "calls": n_calls,
            "legs": legs,
            "stored": len(emu.calls),
            "uploads": len(uploads),
            "rejected_uploads": rejected,
            "total_seconds": round(run.seconds, 1),
            "upload_seconds": round(span, 1),
            "calls_per_s": round(rate, 1),
            "longest_gap_s": round(max(gaps, default=0.0), 2),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
            "exit": run.returncode,
            "stderr_tail": run.stderr[-500:],
        }


def baseline(sample: int, workdir: Path) -> dict[str, Any]:
    """What a naive integration does: every call its own request, one after the other."""
    start = datetime(2026, 3, 2, 8, 0, 0)
    legs = list(generate_legs(sample * 2, start=start, seed=7))
    path = write_config(workdir, db_url="sqlite://", crm_url="http://127.0.0.1:1")
    options = config.load(path, {KEY_ENV: KEY}).build_options()
    calls = [c.payload for c in build_calls(legs, options, datetime.now(UTC)) if c.payload]
    calls = calls[:sample]
    with Emulator(api_key=KEY) as emu:
        emu.register_module()
        emu.rate_limits(telephony_rps=RATE, general_rps=10)
        emu.latency = LATENCY
        with RetailCRMClient(emu.base_url, KEY, tenant="baseline", telephony_rps=RATE) as client:
            began = time.monotonic()
            for call in calls:
                client.upload_calls([call], budget_seconds=30)
            elapsed = time.monotonic() - began
    return {
        "calls": len(calls),
        "seconds": round(elapsed, 1),
        "calls_per_s": round(len(calls) / elapsed, 2),
    }
