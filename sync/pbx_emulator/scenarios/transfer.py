"""B3 (iv), attended: the phone-side consultation is a call of its own (its own linkedid) until
``AttendedTransfer`` joins it to the customer's call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.calls.legs import Leg
from sync.pbx_emulator.scenarios.common import (
    Event,
    channel_event,
    dial_begin,
    dial_end,
    tenant_header,
)


@dataclass(frozen=True)
class AttendedTransferCall:
    """A customer calls ``did``; ``first`` answers, calls ``second`` (consultation, linkedid
    ``<linkedid>.c``), then completes the transfer: the customer talks to ``second``."""

    linkedid: str
    caller: str
    did: str
    first: str
    second: str
    start: datetime
    ring_seconds: int = 4
    talk_seconds: int = 20
    consult_seconds: int = 10
    second_talk_seconds: int = 30
    trunk: str = "beltelecom"
    seq: int = 1
    tenant: str = ""

    @property
    def consultation(self) -> str:
        return f"{self.linkedid}.c"

    def channels(self) -> dict[str, tuple[str, str]]:
        """Role -> (channel, uniqueid): trunk, first's phone, its second line, second's phone."""
        n, lid, c = self.seq, self.linkedid, self.consultation
        return {
            "trunk": (f"PJSIP/{self.trunk}-{n:08x}", lid),
            "first": (f"PJSIP/{self.first}-{n + 1:08x}", f"{lid}.1"),
            "first2": (f"PJSIP/{self.first}-{n + 2:08x}", c),
            "second": (f"PJSIP/{self.second}-{n + 3:08x}", f"{c}.1"),
        }

    @property
    def transfer_at(self) -> datetime:
        return self.start + timedelta(seconds=self.ring_seconds + self.talk_seconds)

    def events(self) -> list[Event]:
        lid, c, ch = self.linkedid, self.consultation, self.channels()
        (trunk, _), (b1, ub1), (b2, ub2), (c1, uc1) = (ch[k] for k in ch)
        return [
            channel_event("Newchannel", trunk, lid, lid, CallerIDNum=self.caller, Exten=self.did,
                           Context="from-trunk", ChannelState="4", ChannelStateDesc="Ring",
                           **tenant_header(self.tenant)),
            channel_event("Newchannel", b1, ub1, lid, CallerIDNum=self.first,
                           ConnectedLineNum=self.caller, ChannelState="0",
                           ChannelStateDesc="Down"),
            dial_begin(lid, trunk, lid, b1, ub1, DestCallerIDNum=self.first),
            channel_event("Newstate", b1, ub1, lid, ChannelState="5", ChannelStateDesc="Ringing",
                           ConnectedLineNum=self.caller),
            dial_end(lid, trunk, lid, b1, ub1, "ANSWER"),
            # the consultation: first's phone places a new call to second
            channel_event("Newchannel", b2, ub2, c, CallerIDNum=self.first, Exten=self.second,
                           Context="from-internal", ChannelState="4", ChannelStateDesc="Ring"),
            channel_event("Newchannel", c1, uc1, c, CallerIDNum=self.second,
                           ConnectedLineNum=self.first, ChannelState="0",
                           ChannelStateDesc="Down"),
            dial_begin(c, b2, ub2, c1, uc1, DestCallerIDNum=self.second),
            channel_event("Newstate", c1, uc1, c, ChannelState="5", ChannelStateDesc="Ringing",
                           ConnectedLineNum=self.first),
            dial_end(c, b2, ub2, c1, uc1, "ANSWER"),
            {"Event": "AttendedTransfer", "Result": "Success", "DestType": "Bridge",
             "OrigTransfererChannel": b1, "OrigTransfererUniqueid": ub1,
             "OrigTransfererLinkedid": lid, "SecondTransfererChannel": b2,
             "SecondTransfererUniqueid": ub2, "SecondTransfererLinkedid": c,
             "TransfereeChannel": trunk, "TransfereeUniqueid": lid, "TransfereeLinkedid": lid,
             "TransferTargetChannel": c1, "TransferTargetUniqueid": uc1,
             "TransferTargetLinkedid": c},
            channel_event("Hangup", b1, ub1, lid, Cause="16"),
            channel_event("Hangup", b2, ub2, c, Cause="16"),
            channel_event("Hangup", c1, uc1, c, Cause="16"),
            channel_event("Hangup", trunk, lid, lid, Cause="16"),
        ]  # fmt: skip

    def legs(self) -> list[Leg]:
        """Customer → first; the consultation first → second (its own linkedid: internal,
        never uploaded); customer → second from the transfer on."""
        ch, at = self.channels(), self.transfer_at
        consult_start = at - timedelta(seconds=self.consult_seconds)

        def leg(
            uid: str,
            lid: str,
            seq: int,
            start: datetime,
            ring: int,
            talk: int,
            src: str,
            dst: str,
            channel: str,
            dstchannel: str,
            tenant: str,
        ) -> Leg:
            return Leg(
                uniqueid=uid, linkedid=lid, sequence=seq, start=start,
                answer=start + timedelta(seconds=ring), end=start + timedelta(seconds=ring + talk),
                src=src, dst=dst, clid=f'"{src}" <{src}>', channel=channel,
                dstchannel=dstchannel, lastapp="Dial", disposition="ANSWERED",
                duration=ring + talk, billsec=talk, did=self.did if tenant else "",
                tenant=tenant,
            )  # fmt: skip

        trunk, b1, b2, c1 = ch["trunk"][0], ch["first"][0], ch["first2"][0], ch["second"][0]
        return [
            leg(self.linkedid, self.linkedid, self.seq, self.start, self.ring_seconds,
                self.talk_seconds, self.caller, self.first, trunk, b1, self.tenant),
            leg(self.consultation, self.consultation, self.seq + 1, consult_start, 2,
                self.consult_seconds - 2, self.first, self.second, b2, c1, ""),
            leg(self.linkedid, self.linkedid, self.seq + 2, at, 0, self.second_talk_seconds,
                self.caller, self.second, trunk, c1, self.tenant),
        ]  # fmt: skip
