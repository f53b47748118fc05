"""Pop-ups over real sockets (issue #13): AMI emulator → ``serve`` → CRM emulator.

The always-run size: 60 scripted calls of every shape with one AMI drop in the middle of a batch
(events played while it is down are lost, as with a real Asterisk), a CRM outage, a click. The
1 000-call run with 5 drops is ``tests/reliability/test_popups_1000.py`` (slow).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync import db
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios import RingGroupCall
from sync.pbx_emulator.scenarios.mix import DID, MixCall, interleave, scripted_mix
from sync.sources.cdr_table import create_cdr_table, insert_legs
from tests.crm_fixtures import API_KEY, emulator  # noqa: F401
from tests.live_fixtures import AMI_SECRET, live_env, wait_for  # noqa: F401
from tests.popup_fixtures import PREFIX, PopupRig, popup_rig

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("live_env")]
EVENT_PATH = "/api/v5/telephony/call/event"


@pytest.fixture
def pbx() -> Iterator[PbxEmulator]:
    with PbxEmulator(secret=AMI_SECRET) as server:
        yield server


def start_of_day() -> datetime:
    """Call log times: two hours ago, so ``once`` finds every call settled and in its window."""
    return (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None, microsecond=0)


def play_mix(rig: PopupRig, calls: Sequence[MixCall], drops: int, batch: int = 20) -> None:
    """Calls in overlapping batches; ``drops`` batches lose their middle third to a drop."""
    batches = [calls[i : i + batch] for i in range(0, len(calls), batch)]
    step = max(1, len(batches) // max(drops, 1))
    dropped = {i * step + step // 2 for i in range(drops)}
    for index, group in enumerate(batches):
        events = interleave(group)
        if index in dropped:
            third = len(events) // 3
            rig.play(events[:third])
            rig.drop_and_reconnect(events[third : 2 * third])
            rig.play(events[2 * third :])
        else:
            rig.play(events)


def shown_to_customer(call: MixCall) -> bool:
    caller = getattr(call, "caller", "")
    return call.tenant in ("A", "B") and caller != "anonymous"


def assert_invariants(rig: PopupRig, calls: Sequence[MixCall]) -> None:
    by_call = rig.events_by_call()
    for external_id, events in by_call.items():
        shown: dict[str, bool] = {}
        for event in events:
            for code in event["codes"]:
                assert code.isdigit(), f"{external_id}: not an extension {code!r}"
                if event["type"] == "hangup":
                    assert shown.get(code), f"{external_id}: hangup of {code} not shown"
                    shown[code] = False
                else:
                    assert not shown.get(code), f"{external_id}: {code} shown twice"
                    shown[code] = True
        left = [code for code, on in shown.items() if on]
        assert not left, f"{external_id}: left shown {left}"
    expected = {PREFIX + c.linkedid for c in calls if shown_to_customer(c)}
    assert set(by_call) <= expected, "events for an inactive tenant, no tenant or no number"
    assert len(by_call) >= len(expected) * 0.6, "most calls got their pop-ups"
    assert not rig.popups.machine.calls, "every call ended in the machine too"


def assert_upload_carries_the_same_ids(rig: PopupRig, calls: Sequence[MixCall]) -> None:
    """``once`` over the same scenarios' CDR legs uploads each call's ``callExternalId``."""
    source = db.make_engine(rig.settings.source.url)
    try:
        create_cdr_table(source)
        insert_legs(source, [leg for call in calls for leg in call.legs()])
    finally:
        source.dispose()
    runner = Runner(rig.settings, engine=rig.store.engine)
    try:
        runner.once()
    finally:
        runner.close()
    uploaded = {str(call["externalId"]) for call in rig.crm.calls}
    popped = set(rig.events_by_call())
    assert popped and popped <= uploaded, sorted(popped - uploaded)[:5]


def test_scripted_calls_with_a_drop_keep_every_invariant(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    with popup_rig(tmp_path, emulator, pbx, serve="popup_group_ms = 0") as rig:
        calls = scripted_mix(60, start_of_day())
        play_mix(rig, calls, drops=1)
        assert_invariants(rig, calls)
        assert_upload_carries_the_same_ids(rig, calls)
        metrics = rig.serve.service.bridge.metrics.render().decode()
        assert 'retailcrm_sync_popups_total{outcome="sent",tenant="a",type="in"}' in metrics
        assert 'reason="no number"' in metrics and 'reason="no tenant"' in metrics
        assert 'reason="inactive",tenant="c"' in metrics
        client_ids = [s.client_id for n in ("a", "b", "c") if (s := rig.store.tenant(n))]
        text = "\n".join(rig.logs)
        for secret in [API_KEY, AMI_SECRET, *[c for c in client_ids if c]]:
            assert secret not in text, "a secret in a log line"


def test_ring_group_is_grouped_over_sockets(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    with popup_rig(tmp_path, emulator, pbx, serve="popup_group_ms = 200") as rig:
        call = RingGroupCall(
            "1764.1", "80291234567", DID, ("101", "102", "103"), start_of_day(), tenant="A"
        )
        events = call.events()
        ringing = max(i for i, e in enumerate(events) if e.get("ChannelState") == "5") + 1
        rig.play(events[:ringing])
        wait_for(lambda: emulator.events, "the grouped in event")
        rig.play(events[ringing:])
        wait_for(lambda: len(emulator.events) == 4, "three hangups")
        first, *hangups = emulator.events
        assert first == {
            "phone": "+375291234567",
            "type": "in",
            "codes": ["101", "102", "103"],
            "callExternalId": "pbx1-1764.1",
            "externalPhone": "+375172000000",
        }
        assert [(e["codes"], e["hangupStatus"]) for e in hangups] == [
            (["101"], "no answered"),
            (["102"], "no answered"),
            (["103"], "no answered"),
        ]


def test_crm_outage_drops_stale_popups_and_the_next_call_gets_its_card(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    serve = "popup_group_ms = 0\npopup_deadline_seconds = 1"
    with popup_rig(tmp_path, emulator, pbx, serve=serve) as rig:
        start = start_of_day()
        during = [
            RingGroupCall(f"1765.{i}", f"8029{3000000 + i:07d}", DID, ("101", "102"), start,
                          tenant="A", seq=16 * i + 1)
            for i in range(5)
        ]  # fmt: skip
        emulator.fail_next(EVENT_PATH, n=10**6, status=503)
        ringing = [e for call in during for e in call.events()[:7]]
        rig.play(ringing)  # every in event retries for 1 s, then is dropped
        emulator.clear_faults()
        after = RingGroupCall("1766.1", "80297654321", DID, ("102",), start, tenant="B", seq=999)
        rig.play(after.events()[:4])
        wait_for(lambda: emulator.events, "the first card after the outage")
        rig.play([e for call in during for e in call.events()[7:]] + after.events()[4:])
        by_call = rig.events_by_call()
        for call in during:
            kinds = [e["type"] for e in by_call.get(PREFIX + call.linkedid, [])]
            assert "in" not in kinds, "an event older than its deadline was delivered"
        assert [e["type"] for e in by_call[PREFIX + after.linkedid]] == ["in", "hangup"]
        metrics = rig.serve.service.bridge.metrics.render().decode()
        assert 'retailcrm_sync_popups_total{outcome="dropped",tenant="a",type="in"} 10.0' in metrics
        assert any("in dropped" in line for line in rig.logs)


def test_click_gets_out_for_the_clicking_extension_only(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    with popup_rig(tmp_path, emulator, pbx, serve="popup_group_ms = 0") as rig:
        answer = emulator.click("101", "+375 29 123-45-67", 11)
        assert answer.status == 200, answer.text
        external_id = answer.body["callExternalId"]
        wait_for(lambda: rig.pbx.originated, "the originated call")
        events = wait_for(
            lambda: (e := rig.events_by_call().get(external_id)) and len(e) == 2 and e,
            "out and hangup of the click's call",
        )
        assert [(e["type"], e["codes"], e.get("hangupStatus")) for e in events] == [
            ("out", ["101"], None),
            ("hangup", ["101"], "answered"),
        ]
        assert events[0]["phone"] == "+375291234567"
