"""Scripted calls: the live AMI events and the later CDR legs of one scenario agree, and the
builder turns the legs into the call the scenario describes (spec/realtime-bridge.md B3, B5)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from sync.calls.builder import build_calls
from sync.calls.demo_cdr import generate_scripted
from sync.calls.options import BuildOptions
from sync.pbx_emulator.scenarios import (
    BlindTransferCall,
    ClickCall,
    OutboundCall,
    QueueCall,
    RingGroupCall,
    Scenario,
)

START = datetime(2026, 11, 30, 10, 0, 0)
NOW = datetime(2026, 11, 30, 12, 0, 0)
OPTIONS = BuildOptions(external_id_prefix="pbx1-", settle_seconds=60)
CUSTOMER = "80291234567"

SCENARIOS: list[tuple[Scenario, dict[str, object]]] = [
    (
        RingGroupCall("1764.10", CUSTOMER, "80172000000", ("101", "102", "103"), START,
                      answered_by="102"),
        {"type": "in", "code": "102", "result": "answered"},
    ),
    (
        QueueCall("1764.20", CUSTOMER, "702", ("104", "105"), "105", START),
        {"type": "in", "code": "105", "result": "answered"},
    ),
    (
        OutboundCall("1764.30", "106", CUSTOMER, START),
        {"type": "out", "code": "106", "result": "answered"},
    ),
    (
        OutboundCall("1764.31", "106", CUSTOMER, START, outcome="busy"),
        {"type": "out", "code": "106", "result": "busy"},
    ),
    (
        BlindTransferCall("1764.40", CUSTOMER, "107", "108", START),
        {"type": "in", "result": "answered"},
    ),
    (
        ClickCall("c2c-0123456789abcdef01234567", "a-1", "109", CUSTOMER, START),
        {"type": "out", "code": "109", "result": "answered"},
    ),
]  # fmt: skip
IDS = ["ring-group", "queue-local", "outbound", "outbound-busy", "blind-transfer", "click"]


@pytest.mark.parametrize(("scenario", "expected"), SCENARIOS, ids=IDS)
def test_events_and_legs_describe_the_same_call(
    scenario: Scenario, expected: dict[str, object]
) -> None:
    events, legs = scenario.events(), scenario.legs()
    linked = {e[k] for e in events for k in ("Linkedid", "DestLinkedid") if k in e}
    assert linked == {scenario.linkedid}
    assert {leg.linkedid for leg in legs} == {scenario.linkedid}
    exts = {re.match(r"PJSIP/(\d{3})-", c).group(1)  # type: ignore[union-attr]
            for e in events for k in ("Channel", "DestChannel")
            if re.match(r"PJSIP/\d{3}-", c := e.get(k, ""))}  # fmt: skip
    leg_exts = {m.group(1) for leg in legs if (m := re.match(r"PJSIP/(\d{3})-", leg.dstchannel))}
    leg_exts |= {m.group(1) for leg in legs if (m := re.match(r"PJSIP/(\d{3})-", leg.channel))}
    assert exts == leg_exts
    # every channel that appears is created first and hung up last
    created = [e["Channel"] for e in events if e["Event"] == "Newchannel"]
    hung = [e["Channel"] for e in events if e["Event"] == "Hangup"]
    assert sorted(created) == sorted(hung)
    (call,) = build_calls(legs, OPTIONS, NOW)
    payload = call.payload
    assert payload is not None, call
    assert payload["externalId"] == "pbx1-" + scenario.linkedid
    assert payload["phone"] == "+375291234567"
    assert {k: payload.get(k) for k in expected} == expected


def test_the_click_call_reports_the_originate_to_its_action() -> None:
    call = ClickCall("c2c-00", "action-7", "101", CUSTOMER, START, outcome="busy")
    (response,) = [e for e in call.events() if e["Event"] == "OriginateResponse"]
    assert response["ActionID"] == "action-7" and response["Uniqueid"] == "c2c-00"
    assert (response["Response"], response["Reason"]) == ("Failure", "5")


def test_the_demo_generator_scripts_ring_groups_and_outbound_calls() -> None:
    """The demo's CDR generator builds these calls from scenario objects: the legs it writes
    are the scenario's, and the scenario's AMI events name the same linkedid and channels."""
    scripted = 0
    for name, _, legs, call in generate_scripted(400, start=START, seed=4):
        if name in (
            "ring group",
            "queue with Local members",
            "blind transfer",
            "outbound answered",
            "outbound busy",
            "outbound no answer",
        ):
            assert call is not None, name
        if call is None:
            continue
        scripted += 1
        assert call.legs() == legs
        events = call.events()
        assert {e["Linkedid"] for e in events if "Linkedid" in e} == {legs[0].linkedid}
        channels = {e["Channel"] for e in events if e["Event"] == "Newchannel"}
        assert {leg.channel for leg in legs} | {leg.dstchannel for leg in legs} <= channels
    assert scripted > 80
