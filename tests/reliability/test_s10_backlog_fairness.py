"""Scenario 10: one tenant with a huge backlog does not starve the others (issue 15).

One ``run`` process with one worker (the hardest case: no second worker to go round): tenant
``big`` has 50 000 calls to upload (10 000 at CI size), ten other tenants get a wave of new
calls every few seconds while that backlog drains. ``big`` yields its worker after each ``[sync]
slice_seconds``, so the others' calls go out within a tick: their lag (written → in the CRM)
stays within one interval plus a slice and a little processing, and the backlog still arrives
whole, each call once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sync.calls.legs import Leg
from sync.commands.common import read_settings
from sync.emulator import Emulator
from tests.engine_fixtures import expected_payloads, generated, write_config
from tests.reliability.common import (
    Daemon,
    append_legs,
    cli_env,
    delivered,
    figure,
    load_cdr,
    no_traceback,
    repeats,
    sized,
    successful_uploads,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BACKLOG = sized(50_000, 10_000)
SMALL = tuple(f"small{i}" for i in range(10))
WAVES = 6
INTERVAL = 2
SLICE = 1
BIG_RATE = 5
"""Upload requests a second for ``big`` (50 calls each): its backlog takes 40 s at CI size."""
PROCESSING = 3
"""Seconds a tick of eleven tenants may take on a busy CI machine, on top of the interval."""


def key_of(name: str) -> str:
    return f"s10-{name}-0123456789abcdef"


def test_a_huge_backlog_does_not_hold_up_the_other_tenants(
    tmp_path: Path, pg_url: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.require_module = False
    emulator.latency = 0.02
    names = ("big", *SMALL)
    for name in names:
        emulator.add_key(key_of(name), label=name)
        monkeypatch.setenv(f"RCS_KEY_{name.upper()}", key_of(name))
    backlog = generated(BACKLOG, seed=10, tenants=("big",), spacing_seconds=1.0, hours_ago=2)
    load_cdr(pg_url, backlog)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        tenants=[
            {"name": n, "match": n, "api_key_env": f"RCS_KEY_{n.upper()}"}
            | ({"rate_limit": BIG_RATE} if n == "big" else {})
            for n in names
        ],
        source={"tenant_column": "accountcode", "lookback_hours": 48},
        sync={"slice_seconds": SLICE, "max_in_flight": 2},
        extra=f"[daemon]\ninterval = {INTERVAL}\njitter = 0\nworkers = 1\n"
        "customers_interval = 3600\nstop_timeout = 15\n",
    )
    settings = read_settings(path)
    big = set(expected_payloads(settings, backlog))
    written: dict[str, float] = {}
    backlog_left: list[int] = []
    with Daemon(path, tmp_path / "daemon.err", env=cli_env()) as daemon:
        wait_for(
            lambda: bool(delivered(emulator) & big),
            timeout=120,
            what="the backlog's first upload",
            daemons=[daemon],
        )
        for wave in range(WAVES):
            legs: list[Leg] = generated(
                len(SMALL), seed=100 + wave, tenants=SMALL, spacing_seconds=1.0, hours_ago=1
            )
            ids = set(expected_payloads(settings, legs))
            assert not ids & (big | set(written)), "the wave's calls are new"
            at = time.monotonic()
            append_legs(pg_url, legs)
            written.update(dict.fromkeys(ids, at))

            def out(wanted: set[str] = ids) -> bool:
                return wanted <= delivered(emulator)

            wait_for(
                out,
                timeout=INTERVAL + SLICE + 60,
                what=f"wave {wave}",
                daemons=[daemon],
            )
            backlog_left.append(len(big - delivered(emulator)))
        wait_for(
            lambda: big <= delivered(emulator),
            timeout=120 + BACKLOG / 50 / BIG_RATE,
            what="the whole backlog",
            daemons=[daemon],
            every=0.5,
        )
        code = daemon.stop()
    arrived: dict[str, float] = {}
    for request in successful_uploads(emulator):
        for call in request.params.get("calls", []):
            arrived.setdefault(str(call["externalId"]), request.at)
    lags = sorted(arrived[i] - at for i, at in written.items())
    figure(
        "10 one huge backlog beside ten tenants",
        backlog=len(big),
        wave_calls=len(lags),
        lag_max_s=round(lags[-1], 2),
        lag_median_s=round(lags[len(lags) // 2], 2),
        backlog_left_after_last_wave=backlog_left[-1],
    )
    assert code == 0
    no_traceback(daemon.stderr(), "daemon.err")
    assert backlog_left[-1] > 0, "the waves went out while the backlog was still draining"
    assert lags[-1] <= INTERVAL + SLICE + PROCESSING, lags
    assert repeats(emulator) == (0, 0), "no call was sent twice"
