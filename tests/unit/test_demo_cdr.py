"""The demo CDR generator: deterministic, realistic, and every call builds as intended."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from itertools import islice

import pytest

from sync.calls.builder import build_call, build_calls
from sync.calls.demo_cdr import SCENARIOS, generate_calls, generate_legs
from sync.calls.options import BuildOptions, TenantRoute

START = datetime(2026, 3, 2, 8, 0)
LATER = datetime(2027, 1, 1, tzinfo=UTC)
OPTIONS = BuildOptions(
    source_timezone="Europe/Minsk",
    tenants=(TenantRoute("shop", None, "Europe/Minsk"),),
    recording_url="https://pbx.example.com/rec/{date}/{recordingfile}",
)


def test_same_seed_same_legs_other_seed_other_legs() -> None:
    first = list(generate_legs(200, start=START, seed=7))
    assert first == list(generate_legs(200, start=START, seed=7))
    assert first != list(generate_legs(200, start=START, seed=8))


def test_legs_come_in_start_order() -> None:
    legs = list(generate_legs(2000, start=START, seed=3, spacing_seconds=5))
    keys = [(leg.start, leg.sequence) for leg in legs]
    assert keys == sorted(keys)


def test_ids_are_unique_per_call_and_look_like_asterisk_ids() -> None:
    linkedids = [legs[0].linkedid for _, _, legs in generate_calls(3000, start=START, seed=5)]
    assert len(set(linkedids)) == len(linkedids)
    assert all(re.fullmatch(r"\d{10}\.\d+", linkedid) for linkedid in linkedids)


def test_uniqueid_epoch_is_the_start_in_utc() -> None:
    _, _, legs = next(generate_calls(1, start=START, source_timezone="Europe/Minsk"))
    epoch = int(legs[0].uniqueid.split(".")[0])
    assert datetime.fromtimestamp(epoch, UTC) == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def test_scenario_mix_and_leg_count() -> None:
    calls = list(generate_calls(5000, start=START, seed=11))
    names = Counter(name for name, _, _ in calls)
    assert set(names) == set(SCENARIOS)
    assert 0.26 < names["inbound answered"] / len(calls) < 0.34
    legs_per_call = sum(len(legs) for _, _, legs in calls) / len(calls)
    assert 2.2 < legs_per_call < 2.8


def test_tenants_cycle_and_other_channels_follow_their_call() -> None:
    calls = list(generate_calls(40, start=START, seed=2, tenants=("0367", "0368")))
    assert [legs[0].tenant for _, _, legs in calls] == ["0367", "0368"] * 20
    for _, _, legs in calls:
        for leg in legs:
            assert leg.tenant in ("", legs[0].tenant)
            if leg.uniqueid != legs[0].uniqueid:
                assert leg.tenant == ""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_generated_call_builds_as_intended(seed: int) -> None:
    for name, expected, legs in generate_calls(
        700, start=START, seed=seed, source_timezone="Europe/Minsk"
    ):
        call = build_call(legs, OPTIONS, LATER)
        if expected.startswith("skipped:"):
            assert (call.status, call.skip_reason) == ("skipped", expected[8:]), name
            continue
        assert call.status == "ready", (name, call.skip_reason)
        assert call.payload is not None
        assert f"{call.payload['type']}:{call.payload['result']}" == expected, (name, call.rules)
        assert call.payload["phone"].startswith("+"), call.payload
        if call.payload["result"] == "answered" and call.payload["type"] == "in":
            assert "code" in call.payload


def test_answered_calls_mostly_carry_recordings() -> None:
    calls = build_calls(
        generate_legs(1000, start=START, source_timezone="Europe/Minsk"), OPTIONS, LATER
    )
    answered = [c for c in calls if c.payload and c.payload["result"] == "answered"]
    recorded = [c for c in answered if "recordUrl" in c.payload]  # type: ignore[operator]
    assert len(recorded) > 0.6 * len(answered)


def test_generation_is_lazy() -> None:
    assert len(list(islice(generate_legs(10**9, start=START), 10))) == 10
