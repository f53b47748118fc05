"""Scenario 1: SIGKILL at random moments during a big backfill loses and duplicates nothing.

``once`` processes (what cron runs) are killed with SIGKILL at random moments, 20 times during
a 20 000-call backfill; then the operator runs ``once`` again until it finishes cleanly. A
quarter of the kills land at a random moment of start-up or of reading and recording the
window; the others at a random moment after the run's first upload reached the CRM, which
answers after a realistic latency, so they land with batches in flight and leave calls
``sending``. (Kills timed from the start alone would all land in the first run's read of the
window — about 9 s for 20 000 calls here — which is recorded only when it completes, and the
backfill would never get to upload.) In the end every call is in the CRM exactly once with the
payload the builder derives, and ``call_sync`` holds nothing ``sending``, ``pending`` or
``failed``.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from sync.emulator import Emulator
from tests.engine_fixtures import generated
from tests.reliability.common import (
    UPLOAD,
    counts,
    figure,
    no_traceback,
    prepare_scenario,
    repeats,
    sized,
    spawn,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CALLS = sized(20_000, 5_000)
KILLS = sized(20, 8)
EARLY = 4  # every 4th kill (the first included) at a random moment of start-up or the read
EARLY_AFTER = (0.3, 3.0)
UPLOAD_AFTER = (0.0, 2.5)  # the other kills: seconds after the run's first upload arrived
# A slow CRM bounds the upload rate whatever the machine: 2 batches in flight answered after
# 0.35 s is at most ~285 calls/s, so the kills (at most ~2.5 s x 285 calls of progress each)
# all land before the backfill ends.
LATENCY = 0.35
IN_FLIGHT = 2


def test_sigkill_at_random_moments_every_call_lands_exactly_once(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    legs = generated(CALLS, seed=11, spacing_seconds=2.0)
    path, expected = prepare_scenario(
        tmp_path,
        pg_url,
        emulator,
        legs,
        latency=LATENCY,
        sync={"max_in_flight": IN_FLIGHT, "lease_seconds": 30, "upload_budget_seconds": 10},
    )
    assert len(expected) > CALLS * 0.6
    rng = random.Random(20260301)
    began = time.monotonic()
    hits = mid_upload = early = 0
    progress = []
    for i in range(KILLS):
        started = time.monotonic()
        proc = spawn(path, "once", stderr=tmp_path / f"kill-{i:02d}.err")
        if i % EARLY == 0:
            early += 1
            time.sleep(rng.uniform(*EARLY_AFTER))
        else:

            def uploading(started: float = started, proc: Any = proc) -> bool:
                return proc.poll() is not None or any(
                    r.path == UPLOAD and r.at > started for r in emulator.requests
                )

            wait_for(
                uploading,
                timeout=120,
                what="the run's first upload",
                every=0.05,
            )
            time.sleep(rng.uniform(*UPLOAD_AFTER))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            hits += 1
        code = proc.wait(timeout=300)
        assert code in (0, 1, -signal.SIGKILL), (tmp_path / f"kill-{i:02d}.err").read_text()
        state = counts(pg_url)
        mid_upload += code == -signal.SIGKILL and state["sending"] > 0
        progress.append(state["sent"])
    kill_phase = time.monotonic() - began
    finishing = []
    for i in range(10):  # the operator runs it again until it finishes cleanly
        err = tmp_path / f"finish-{i}.err"
        proc = spawn(path, "once", stderr=err)
        finishing.append(proc.wait(timeout=600))
        no_traceback(err.read_text(), f"finishing run {i}")
        state = counts(pg_url)
        if not (state["pending"] or state["sending"] or state["failed"]):
            break
    requests, ids = repeats(emulator)
    figure(
        "1 kill -9",
        calls=len(expected),
        kills=KILLS,
        kills_hit_running=hits,
        kills_early=early,
        kills_mid_upload=mid_upload,
        sent_after_kills=progress[-1],
        finishing_runs=len(finishing),
        finishing_exit_codes=finishing,
        uploads_repeating_an_id=requests,
        ids_sent_twice=ids,
        seconds=round(time.monotonic() - began, 1),
        kill_phase_seconds=round(kill_phase, 1),
    )
    assert hits >= 0.75 * KILLS, f"only {hits} of {KILLS} kills hit a running process"
    assert mid_upload >= (KILLS - early) / 2, "few kills landed while a batch was in flight"
    assert progress[-1] < len(expected), "the backfill finished during the kills: slow it down"
    assert finishing[-1] == 0
    assert stored(emulator) == expected
    state = counts(pg_url)
    assert state["sending"] == state["pending"] == state["failed"] == state["dead"] == 0
    assert state["sent"] == len(expected)
