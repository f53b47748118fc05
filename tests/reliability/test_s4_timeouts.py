"""Scenario 4: uploads that hang past the read timeout are retried and land once.

The emulator stores each of the first uploads and then keeps the answer back longer than the
client's read timeout (the worst case: the CRM did act, the client cannot know). Some batches
succeed on a retry within their budget (answered with ``duplicateCalls``), others spend the
whole budget on hangs, become ``failed`` and go again at their retry time. Every call ends up
in the CRM exactly once and ``sent`` in ``call_sync``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sync.emulator import Emulator
from tests.engine_fixtures import generated
from tests.reliability.common import (
    UPLOAD,
    Daemon,
    counts,
    daemon_section,
    figure,
    no_traceback,
    prepare_scenario,
    query,
    repeats,
    sized,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CALLS = sized(3_000, 1_000)
HANGS = sized(24, 16)  # more than the first cycle's batches can absorb within their budget
READ_TIMEOUT = 1.0
HANG = 3.0
DAEMON = daemon_section()


def test_uploads_hanging_past_the_read_timeout_are_retried_and_land_once(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    legs = generated(CALLS, seed=9, spacing_seconds=2.0)
    path, expected = prepare_scenario(
        tmp_path,
        pg_url,
        emulator,
        legs,
        latency=0.05,
        sync={
            "max_in_flight": 4,
            "lease_seconds": 30,
            "read_timeout": READ_TIMEOUT,
            "upload_budget_seconds": 4,
            "retry_base_seconds": 2,
            "retry_max_seconds": 10,
        },
        daemon=DAEMON,
    )
    emulator.hang_next(UPLOAD, n=HANGS, seconds=HANG)
    began = time.monotonic()
    with Daemon(path, tmp_path / "daemon.err") as daemon:
        wait_for(
            lambda: (
                len(emulator.calls) >= len(expected) and counts(pg_url)["sent"] >= len(expected)
            ),
            timeout=120,
            what="every call in the CRM and sent",
            daemons=[daemon],
            every=0.5,
        )
        took = time.monotonic() - began
        code = daemon.stop()
        log = daemon.stderr()
    time.sleep(HANG + 0.5)  # the emulator records a hung upload when its answer is due
    requests, ids = repeats(emulator)
    runs = query(
        pg_url,
        "SELECT coalesce(sum(duplicates), 0) AS d, coalesce(sum(failed), 0) AS f "
        "FROM sync_run WHERE kind = 'sync'",
    )[0]
    figure(
        "4 timeouts",
        calls=len(expected),
        hung_uploads=HANGS,
        read_timeouts_logged=log.count("read timeout"),
        uploads_repeating_an_id=requests,
        ids_sent_twice=ids,
        duplicates_counted=int(runs.d),
        failed_then_retried=int(runs.f),
        seconds=round(took, 1),
    )
    assert code == 0
    no_traceback(log, "the daemon")
    assert "read timeout" in log
    assert requests > 0, "no hung upload was repeated"
    assert int(runs.d) == ids, "every repeated id was answered (and counted) as a duplicate"
    assert int(runs.f) > 0, "some batches spent their whole budget and went again later"
    assert stored(emulator) == expected
    state = counts(pg_url)
    assert state["sent"] == len(expected)
    assert state["pending"] == state["sending"] == state["failed"] == state["dead"] == 0
