"""Whole processes against one database: SIGKILL at random moments, and three workers at once.

The contract under test (docs/delivery.md): every call reaches the CRM, none is lost, none is
left ``sending``, and without a crash no externalId travels in two successful uploads.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import config, db
from sync.emulator import Emulator
from sync.engine.store import Store
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration
UPLOAD = "/api/v5/telephony/calls/upload"
ROOT = Path(__file__).resolve().parents[2]
LOOP = """
import sys, time
from sync.cli import main
from sync import config, db
from sync.engine.store import Store
settings = config.load(config.resolve_path(sys.argv[1]))
store = Store(db.make_engine(settings.database.url))
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    main(["--config", sys.argv[1], "--log-level", "WARNING", "once"])
    counts = store.status_counts().get("shop", {})
    if counts.get("sent") and not (counts.get("pending") or counts.get("sending")
                                   or counts.get("failed")):
        break
"""


def env() -> dict[str, str]:
    return {**os.environ, KEY_ENV: API_KEY, "PYTHONPATH": str(ROOT)}


def once(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--config", str(path), "--log-level", "WARNING", "once"],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> int:
    """Exit code of a `once` run; anything but 0/1 (or our SIGKILL) fails the test."""
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1, -signal.SIGKILL), err.decode()[-2000:]
    return proc.returncode


def counts(url: str) -> dict[str, object]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return Store(engine).status_counts()["shop"]
    finally:
        engine.dispose()


def successful_ids(emu: Emulator) -> Counter[str]:
    return Counter(
        c["externalId"]
        for r in emu.requests
        if r.path == UPLOAD and r.status is not None and r.status < 300
        for c in r.params["calls"]
    )


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    emulator.register_module()
    emulator.latency = 0.3  # 20 rounds of 2 batches: ~6 s of uploading to kill into
    legs = generated(2000, seed=11)
    fill_cdr(pg_url, legs)
    path = write_config(
        tmp_path, db_url=pg_url, crm_url=emulator.base_url, sync={"max_in_flight": 2}
    )
    expected = expected_payloads(config.load(path, {KEY_ENV: API_KEY}), legs)
    rng = random.Random(5)
    kills = 0
    for _ in range(6):
        proc = once(path)
        time.sleep(rng.uniform(0.8, 3.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        finish(proc)
    for _ in range(5):  # the operator runs it again until it finishes cleanly
        finish(once(path))
        state = counts(pg_url)
        if not (state["pending"] or state["sending"] or state["failed"]):
            break
    assert kills >= 2, "the run finished before most kills: make it slower"
    assert {c["externalId"]: c for c in emulator.calls} == expected
    state = counts(pg_url)
    assert state["sending"] == state["pending"] == state["failed"] == 0
    assert state["sent"] == len(expected)


def test_three_concurrent_workers_never_upload_a_call_twice(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    emulator.register_module()
    legs = generated(10_000, seed=3, spacing_seconds=1.0)
    fill_cdr(pg_url, legs)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        sync={"lease_seconds": 60, "upload_budget_seconds": 20},
    )
    expected = expected_payloads(config.load(path, {KEY_ENV: API_KEY}), legs)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", LOOP, str(path), "240"],
            env=env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
    delivered = successful_ids(emulator)
    assert set(delivered) == set(expected)
    assert [i for i, n in delivered.items() if n > 1] == []
    assert {c["externalId"]: c for c in emulator.calls} == expected
