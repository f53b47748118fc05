"""The golden corpus: one scenario per tests/golden/*.json, legs (or calls rows) in, the exact
upload payload (or skip reason) out. Expected values were derived by hand from
spec/asterisk-cdr.md §9, never recorded from the builder.

File shape: ``options`` overrides ``BuildOptions`` defaults (``tenants`` as objects),
``now`` is ISO UTC, leg/row times are ``YYYY-MM-DD HH:MM:SS`` or null, and ``expected`` holds
``status`` plus ``payload`` or ``skip_reason``; optionally ``tenant``, ``warnings_contain`` and
``rules_contain`` (field -> a fragment of the rule ``explain`` prints for it).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sync.calls.builder import Call, build_call_row, build_calls
from sync.calls.legs import CallRow, Leg
from sync.calls.options import BuildOptions, TenantRoute, ValueSpellings
from sync.emulator.validation import validate_calls

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(GOLDEN.glob("*.json"))
_TIMES = ("start", "answer", "end", "started_at", "ended_at")


def _times(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value) if key in _TIMES and value else value
        for key, value in raw.items()
    }


def load_options(raw: dict[str, Any]) -> BuildOptions:
    kwargs = dict(raw)
    if "tenants" in kwargs:
        kwargs["tenants"] = tuple(TenantRoute(**tenant) for tenant in kwargs["tenants"])
    if "dial_prefixes" in kwargs:
        kwargs["dial_prefixes"] = tuple(kwargs["dial_prefixes"])
    if kwargs.get("start_date"):
        kwargs["start_date"] = datetime.fromisoformat(kwargs["start_date"])
    if "values" in kwargs:
        kwargs["values"] = ValueSpellings(**{k: tuple(v) for k, v in kwargs["values"].items()})
    return BuildOptions(**kwargs)


def build_case(case: dict[str, Any], *, reverse: bool = False) -> list[Call]:
    options = load_options(case["options"])
    now = datetime.fromisoformat(case["now"])
    if "calls" in case:
        return [build_call_row(CallRow(**_times(row)), options, now) for row in case["calls"]]
    legs = [Leg(**_times(leg)) for leg in case["legs"]]
    return build_calls(legs[::-1] if reverse else legs, options, now)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    calls = build_case(case)
    assert len(calls) == 1, [call.key for call in calls]
    call, expected = calls[0], case["expected"]
    assert (call.status, call.skip_reason) == (expected["status"], expected.get("skip_reason"))
    assert call.payload == expected.get("payload")
    if call.payload is not None:
        assert list(call.payload) == list(expected["payload"]), "field order"
        assert validate_calls([call.payload]) == {}
    if "tenant" in expected:
        assert call.tenant == expected["tenant"]
    for fragment in expected.get("warnings_contain", ()):
        assert any(fragment in warning for warning in call.warnings), call.warnings
    explained = dict(call.rules)
    assert explained["status"].startswith(call.status)
    for name, fragment in expected.get("rules_contain", {}).items():
        assert fragment in explained[name], explained[name]
    if call.payload is not None:
        assert set(call.payload) <= set(explained)


@pytest.mark.parametrize(
    "path", [p for p in CASES if "legs" in json.loads(p.read_text())], ids=lambda path: path.stem
)
def test_golden_leg_order_does_not_matter(path: Path) -> None:
    case = json.loads(path.read_text())
    forward, backward = build_case(case)[0], build_case(case, reverse=True)[0]
    assert (backward.status, backward.skip_reason, backward.payload) == (
        forward.status,
        forward.skip_reason,
        forward.payload,
    )
    assert backward.legs == forward.legs
