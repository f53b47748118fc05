"""``make demo``'s pop-up part: a few calls ring on the AMI emulator, ``serve`` turns them into
``call/event``s, and the reader sees what the CRM emulator received, in order."""

from __future__ import annotations

import time
from datetime import datetime

from sync.bridge.service import ServiceThread
from sync.emulator import Emulator
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios import OutboundCall, QueueCall, RingGroupCall
from sync.pbx_emulator.scenarios.mix import DID

EVENT_GAP = 0.03
"""Seconds between the emulator's events: phones ring longer than the grouping window."""


def ring_a_few(emulator: Emulator, pbx: PbxEmulator, service: ServiceThread) -> list[str]:
    popups = service.service.bridge.popups
    if popups is None:
        return []
    start = datetime.now().replace(microsecond=0)
    calls: list[RingGroupCall | QueueCall | OutboundCall] = [
        RingGroupCall("live-1", "80291112233", DID, ("101", "102", "103"), start,
                      answered_by="102", seq=9001),
        QueueCall("live-2", "80447654321", "700", ("104", "105"), "105", start, seq=9101),
        OutboundCall("live-3", "106", "80295550124", start, seq=9201),
    ]  # fmt: skip
    before = len(emulator.events)
    pbx.event_gap = EVENT_GAP
    try:
        for call in calls:
            events = call.events()
            sent = pbx.events_sent + len(events)
            pbx.play(events)
            end = time.monotonic() + 30
            while time.monotonic() < end and not (
                pbx.events_sent >= sent
                and popups.events_read >= sent
                and popups.sender.settled >= popups.submitted
            ):
                time.sleep(0.02)
    finally:
        pbx.event_gap = 0.0
    lines = ["Pop-ups (AMI events → serve → POST telephony/call/event), as RetailCRM got them:"]
    for event in emulator.events[before:]:
        status = f" ({event['hangupStatus']})" if "hangupStatus" in event else ""
        lines.append(
            f"  {event['type']:<6} codes {','.join(event['codes']):<12} phone {event['phone']}"
            f"  callExternalId {event['callExternalId']}{status}"
        )
    return [*lines, ""]
