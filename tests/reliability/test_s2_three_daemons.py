"""Scenario 2: three daemons on one database deliver everything and never upload a call twice.

Three ``retailcrm-sync run`` processes (interval 1 s) share one PostgreSQL database: half of
20 000 calls are waiting when they start, the other half arrives in waves while they run, so
the tenant's lease changes hands between the daemons. The lease lets one of them work the
tenant at a time; no crash and no lease expiry happens, so the figure that matters — upload
requests that carried an externalId an earlier successful upload had already carried — must
be 0 (docs/delivery.md).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from sync.emulator import Emulator
from tests.engine_fixtures import generated
from tests.reliability.common import (
    Daemon,
    append_legs,
    counts,
    daemon_section,
    delivered,
    figure,
    no_traceback,
    prepare_scenario,
    query,
    repeats,
    sized,
    split_calls,
    stored,
    successful_uploads,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CALLS = sized(20_000, 4_000)
WAVES = 10
DAEMON = daemon_section(customers_interval=10)


def test_three_daemons_deliver_every_call_and_repeat_no_externalid(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    legs = generated(CALLS, seed=3, spacing_seconds=2.0)
    first, *waves = split_calls(legs, [0.5] + [0.5 / WAVES] * WAVES)
    path, expected = prepare_scenario(
        tmp_path,
        pg_url,
        emulator,
        legs,
        latency=0.1,
        sync={"max_in_flight": 8, "lease_seconds": 30, "upload_budget_seconds": 10},
        daemon=DAEMON,
        loaded=first,
    )
    began = time.monotonic()
    daemons = [Daemon(path, tmp_path / f"daemon-{i}.err") for i in range(3)]
    try:
        for wave in waves:
            time.sleep(0.7)
            append_legs(pg_url, wave)
        wait_for(
            lambda: len(emulator.calls) >= len(expected),
            timeout=120 + len(expected) / 200,
            what="every call in the CRM",
            daemons=daemons,
            every=0.5,
        )
        took = time.monotonic() - began
        time.sleep(3)  # a few more ticks of all three on an idle tenant
        codes = [d.stop() for d in daemons]
    finally:
        for d in daemons:
            d.__exit__()
    requests, ids = repeats(emulator)
    uploads = successful_uploads(emulator)
    owners = Counter(
        r.owner for r in query(pg_url, "SELECT owner FROM sync_run WHERE kind='sync' AND sent > 0")
    )
    figure(
        "2 three daemons",
        calls=len(expected),
        upload_requests=len(uploads),
        uploads_repeating_an_id=requests,
        ids_sent_twice=ids,
        daemons_that_uploaded=len(owners),
        seconds_to_deliver=round(took, 1),
        total_seconds=round(time.monotonic() - began, 1),
    )
    assert codes == [0, 0, 0]
    for d in daemons:
        no_traceback(d.stderr(), d.stderr_path.name)
    assert requests == 0, f"{requests} upload requests repeated an externalId"
    assert delivered(emulator) == set(expected)
    assert stored(emulator) == expected
    state = counts(pg_url)
    assert state["sent"] == len(expected)
    assert state["pending"] == state["sending"] == state["failed"] == state["dead"] == 0
