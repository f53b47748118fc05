"""One description per scripted call, two renderings: the AMI events Asterisk emits while the
call happens, and the CDR legs it writes afterwards (spec/realtime-bridge.md B3, B5).

Both come from the same object, so the live events and the later upload of a call agree on
``linkedid`` (the upload's ``externalId``), the extensions and the numbers. Issue #13 (pop-ups)
extends this module with more shapes; the emulator only plays what it is given.
"""

from sync.pbx_emulator.scenarios.common import OUTCOMES, Event
from sync.pbx_emulator.scenarios.inbound import BlindTransferCall, QueueCall, RingGroupCall
from sync.pbx_emulator.scenarios.outbound import ClickCall, OutboundCall
from sync.pbx_emulator.scenarios.transfer import AttendedTransferCall

Scenario = (
    OutboundCall | RingGroupCall | QueueCall | BlindTransferCall | AttendedTransferCall | ClickCall
)
"""Every scripted call: each renders ``events()`` (live, AMI) and ``legs()`` (later, CDR)."""

__all__ = [
    "OUTCOMES",
    "AttendedTransferCall",
    "BlindTransferCall",
    "ClickCall",
    "Event",
    "OutboundCall",
    "QueueCall",
    "RingGroupCall",
    "Scenario",
]
