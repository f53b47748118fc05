"""Scenario 3: a CRM outage loses nothing, kills nothing, and the backlog drains at the limit.

A daemon starts on a 20 000-call backlog while the CRM answers every upload with 503, and
keeps doing so for 2 minutes (20 s in the CI size). The daemon must stay up, retry with
backoff, park calls as ``failed`` with a retry time (never ``dead``), and once the CRM is back
deliver everything. The backlog then drains at the rate limit: 40 requests/s × 50 calls =
2 000 calls/s, measured from the emulator's arrival times, must reach at least 80 % of that.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sync.emulator import Emulator, RecordedRequest
from tests.engine_fixtures import generated
from tests.reliability.common import (
    UPLOAD,
    Daemon,
    counts,
    daemon_section,
    figure,
    ids_of,
    no_traceback,
    prepare_scenario,
    sized,
    status_json,
    stored,
    successful_uploads,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CALLS = sized(20_000, 8_000)
OUTAGE = sized(120.0, 20.0)
RATE = 40  # requests/s to /telephony, the CRM's limit and the tenant's rate_limit
CEILING = RATE * 50
MIN_MEASURED = 4_000  # calls: the drain is asserted when at least 2 s of it can be measured
DAEMON = daemon_section(stop_timeout=20)


def test_crm_outage_loses_nothing_and_the_backlog_drains_at_the_rate_limit(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    emulator.rate_limits(telephony_rps=RATE, general_rps=10)
    legs = generated(CALLS, seed=5, spacing_seconds=2.0)
    path, expected = prepare_scenario(
        tmp_path,
        pg_url,
        emulator,
        legs,
        latency=0.1,
        sync={
            "max_in_flight": 8,
            "lease_seconds": 30,
            "upload_budget_seconds": 10,
            "read_timeout": 5,
            "retry_base_seconds": 5,
            "retry_max_seconds": 60,
        },
        daemon=DAEMON,
    )
    emulator.fail_next(UPLOAD, n=10**9, status=503)
    with Daemon(path, tmp_path / "daemon.err") as daemon:
        down = time.monotonic()
        wait_for(
            lambda: time.monotonic() - down >= OUTAGE,
            timeout=OUTAGE + 10,
            what="the end of the outage",
            daemons=[daemon],
            every=1,
        )
        during = status_json(path, tmp_path / "status-during-outage")["shop"]
        backlog = counts(pg_url)
        up = time.monotonic()
        emulator.clear_faults()
        wait_for(
            lambda: len(emulator.calls) >= len(expected),
            timeout=180 + len(expected) / 500,
            what="every call in the CRM after the outage",
            daemons=[daemon],
            every=0.5,
        )
        drained_in = time.monotonic() - up
        code = daemon.stop()
        log = daemon.stderr()
    requests = emulator.requests
    outage_attempts = sum(1 for r in requests if r.path == UPLOAD and down <= r.at < up)
    after = [r for r in successful_uploads(emulator) if r.at >= up]
    (tmp_path / "drain-timeline.txt").write_text(
        "".join(f"{r.at - up:.3f} {len(ids_of(r))}\n" for r in after), encoding="utf-8"
    )
    # The drain: from 10 % to 90 % of the calls that were pending (not parked as failed) when
    # the CRM came back. The first 10 % is the ramp: the cycle running at recovery finishes the
    # batches it was retrying, and the next one starts at the next tick.
    low, high = ramp_and_drain(after, backlog["pending"])
    measured = high[1] - low[1]
    rate = measured / (high[0] - low[0]) if high[0] > low[0] else 0.0
    limited = sum(1 for r in requests if r.path == UPLOAD and r.at >= up and r.status == 503)
    figure(
        "3 CRM outage",
        calls=len(expected),
        outage_s=OUTAGE,
        upload_attempts_during_outage=outage_attempts,
        attempts_per_s_during_outage=round(outage_attempts / OUTAGE, 2),
        failed_at_recovery=backlog["failed"],
        pending_at_recovery=backlog["pending"],
        dead_at_recovery=backlog["dead"],
        first_success_after_s=round(after[0].at - up, 1),
        ramp_to_10pct_s=round(low[0] - up, 1),
        drain_calls_measured=measured,
        drain_calls_per_s=round(rate),
        drain_ratio_to_limit=round(rate / CEILING, 2),
        rate_limited_503_after_recovery=limited,
        all_delivered_after_s=round(drained_in, 1),
    )
    assert code == 0
    no_traceback(log, "the daemon")
    assert during["sent"] == 0 and during["dead"] == 0
    assert during["failed"] > 0 and "503" in (during["last_error"] or "")
    assert backlog["dead"] == 0
    assert stored(emulator) == expected
    state = counts(pg_url)
    assert state["sent"] == len(expected)
    assert state["pending"] == state["sending"] == state["failed"] == state["dead"] == 0
    if measured >= MIN_MEASURED:
        assert rate >= 0.8 * CEILING, f"the backlog drained at {rate:.0f} calls/s"


def ramp_and_drain(
    uploads: list[RecordedRequest], backlog: int
) -> tuple[tuple[float, int], tuple[float, int]]:
    """(time, calls delivered so far) where 10 % and 90 % of ``backlog`` were delivered."""
    marks: list[tuple[float, int]] = []
    done = 0
    for request in uploads:
        done += len(ids_of(request))
        marks.append((request.at, done))
    low = next(m for m in marks if m[1] >= 0.1 * backlog)
    high = next((m for m in marks if m[1] >= 0.9 * backlog), marks[-1])
    return low, high
