"""Scenario 6: one tenant's revoked key (403) does not delay another tenant.

Two tenants of one daemon, routed by ``accountcode``, each with its own key and module. Once
both are in sync, tenant A's key is revoked (every scope taken away: the CRM answers 403
"Access denied."). New calls then keep arriving for both: B's must reach the CRM within one
daemon interval plus the cycle's own time, A's must wait ``pending`` — not failed, not dead —
with a ``last_error`` that says why in ``status --json``. When the key works again, A's
backlog goes out: nothing was lost.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sync import config
from sync.calls.builder import build_calls
from sync.calls.legs import Leg
from sync.emulator import ALL_SCOPES, Emulator
from tests.engine_fixtures import generated, write_config
from tests.reliability.common import (
    UPLOAD,
    Artifacts,
    Daemon,
    append_legs,
    cli_env,
    delivered,
    figure,
    load_cdr,
    no_traceback,
    sized,
    split_calls,
    status_json,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KEY_A = "tenant-a-key-5f0c2a7e91d34b8c"
KEY_B = "tenant-b-key-c41e8d2f07a95b36"
ENV = {"RCS_KEY_A": KEY_A, "RCS_KEY_B": KEY_B}
INTERVAL = 2.0
SLACK = 2.5  # the cycle's own time (read, diff, upload) on a busy 2-core machine
WAVES = sized(12, 5)
CALLS = sized(1_200, 300)
DAEMON = f"""
[daemon]
interval = {INTERVAL}
jitter = 0
customers_interval = 60
stop_timeout = 15
"""


def by_tenant(settings: config.Settings, legs: list[Leg]) -> dict[str, set[str]]:
    calls = build_calls(legs, settings.build_options(), datetime.now(UTC))
    found: dict[str, set[str]] = {"a": set(), "b": set()}
    for call in calls:
        if call.status == "ready" and call.payload and call.tenant in found:
            found[call.tenant].add(call.external_id)
    return found


def test_a_revoked_key_pauses_its_tenant_only(
    tmp_path: Path, pg_url: str, emulator: Emulator, artifacts: Artifacts
) -> None:
    for name, key in (("a", KEY_A), ("b", KEY_B)):
        emulator.add_key(key, label=name)
        emulator.register_module(code=f"asterisk_{name}", key=key)
    artifacts.secret("tenant a key", KEY_A)
    artifacts.secret("tenant b key", KEY_B)
    legs = generated(CALLS, seed=21, tenants=("a", "b"), spacing_seconds=2.0, hours_ago=0.5)
    first, *waves = split_calls(legs, [0.5] + [0.5 / WAVES] * WAVES)
    load_cdr(pg_url, first)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        source={"tenant_column": "accountcode"},
        tenants=[
            {"name": n, "match": n, "api_key_env": f"RCS_KEY_{n.upper()}"}
            | {"integration_code": f"asterisk_{n}"}
            for n in ("a", "b")
        ],
        sync={"lease_seconds": 30, "upload_budget_seconds": 10},
        extra=DAEMON,
    )
    settings = config.load(path, ENV)
    env = cli_env(**ENV)
    want = by_tenant(settings, first)
    rng = random.Random(6)
    lags: list[float] = []
    a_waiting: set[str] = set()
    with Daemon(path, tmp_path / "daemon.err", env=env) as daemon:
        wait_for(
            lambda: want["a"] | want["b"] <= delivered(emulator),
            timeout=60,
            what="both tenants in sync",
            daemons=[daemon],
        )
        emulator.add_key(KEY_A, scopes=(), label="a")  # revoked: 403 "Access denied."
        revoked = time.monotonic()
        for wave in waves:
            new = by_tenant(settings, wave)
            assert new["a"] and new["b"], "every wave has calls of both tenants"
            append_legs(pg_url, wave)
            added = time.monotonic()

            def b_arrived(wanted: set[str] = new["b"]) -> bool:
                return wanted <= delivered(emulator)

            wait_for(
                b_arrived,
                timeout=INTERVAL + 30,
                what="tenant b's new calls",
                daemons=[daemon],
                every=0.02,
            )
            lags.append(time.monotonic() - added)
            a_waiting |= new["a"]
            time.sleep(rng.uniform(0, INTERVAL))  # land the next wave elsewhere in the cycle
        paused_for = time.monotonic() - revoked
        during = status_json(path, tmp_path / "status-revoked", env=env)
        a_refused = sum(
            1
            for r in emulator.requests
            if r.path == UPLOAD and r.key_label == "a" and r.at > revoked
        )
        emulator.add_key(KEY_A, scopes=ALL_SCOPES, label="a")  # the operator fixes the key
        fixed = time.monotonic()
        wait_for(
            lambda: a_waiting <= delivered(emulator),
            timeout=INTERVAL + 30,
            what="tenant a's backlog after the key works again",
            daemons=[daemon],
        )
        a_resumed_in = time.monotonic() - fixed
        time.sleep(INTERVAL + 1)  # a cycle that ends cleanly after the backlog went out
        after = status_json(path, tmp_path / "status-fixed", env=env)
        code = daemon.stop()
        log = daemon.stderr()
    figure(
        "6 tenant isolation",
        interval_s=INTERVAL,
        waves=len(lags),
        b_lag_max_s=round(max(lags), 2),
        b_lag_mean_s=round(sum(lags) / len(lags), 2),
        a_pending_while_revoked=during["a"]["pending"],
        a_refused_uploads=a_refused,
        a_refused_per_interval=round(a_refused / (paused_for / INTERVAL), 2),
        a_backlog_out_after_fix_s=round(a_resumed_in, 1),
    )
    assert code == 0
    no_traceback(log, "the daemon")
    assert max(lags) <= INTERVAL + SLACK, f"tenant b's lag: {[round(x, 2) for x in lags]}"
    a, b = during["a"], during["b"]
    assert a["pending"] == len(a_waiting)
    assert a["sending"] == a["failed"] == a["dead"] == 0
    assert a["paused"] is True
    assert "403" in (a["last_error"] or "") and "Access denied" in a["last_error"]
    assert b["pending"] == b["sending"] == b["failed"] == b["dead"] == 0
    assert b["last_error"] is None and not b["paused"]
    assert after["a"]["pending"] == 0 and after["a"]["sent"] == len(want["a"] | a_waiting)
    assert after["a"]["last_error"] is None and not after["a"]["paused"]
    uploaded = {str(c["externalId"]) for c in emulator.calls}
    assert len(uploaded) == len(emulator.calls)
