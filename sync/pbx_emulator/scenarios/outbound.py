"""Calls an extension places: dialled by hand (B3 (iii)) or by a click (B5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sync.calls.legs import Leg
from sync.pbx_emulator.scenarios.common import (
    DIAL_STATUS,
    DISPOSITION,
    ORIGINATE_REASON,
    Event,
    channel_event,
    dial_begin,
    tenant_header,
)


@dataclass(frozen=True)
class OutboundCall:
    """B3 (iii): extension dials a customer through the trunk."""

    linkedid: str
    extension: str
    number: str
    """What the extension dialled (the dial string)."""
    start: datetime
    outcome: str = "answered"
    ring_seconds: int = 5
    talk_seconds: int = 30
    trunk: str = "beltelecom"
    seq: int = 1
    # What a CDR generator decides itself (sync/calls/demo_cdr.py); defaults derive from seq.
    caller_channel_name: str = ""
    trunk_channel_name: str = ""
    recording: str = ""
    sequence: int | None = None
    tenant: str = ""

    @property
    def caller_channel(self) -> str:
        return self.caller_channel_name or f"PJSIP/{self.extension}-{self.seq:08x}"

    @property
    def trunk_channel(self) -> str:
        return self.trunk_channel_name or f"PJSIP/{self.trunk}-{self.seq + 1:08x}"

    @property
    def trunk_uniqueid(self) -> str:
        return f"{self.linkedid}.t"

    def talk(self) -> int:
        return self.talk_seconds if self.outcome == "answered" else 0

    def events(self) -> list[Event]:
        lid, ext, num = self.linkedid, self.extension, self.number
        caller, trunk, tid = self.caller_channel, self.trunk_channel, self.trunk_uniqueid
        status = DIAL_STATUS[self.outcome]
        events = [
            channel_event(
                "Newchannel",
                caller,
                lid,
                lid,
                CallerIDNum=ext,
                Exten=num,
                Context="from-internal",
                ChannelState="4",
                ChannelStateDesc="Ring",
                **tenant_header(self.tenant),
            ),
            channel_event(
                "Newchannel",
                trunk,
                tid,
                lid,
                CallerIDNum=num,
                Exten=num,
                Context="from-trunk",
                ChannelState="0",
                ChannelStateDesc="Down",
            ),
            dial_begin(
                lid,
                caller,
                lid,
                trunk,
                tid,
                CallerIDNum=ext,
                DestCallerIDNum=num,
                DialString=f"{self.trunk}/{num}",
            ),
        ]
        if self.outcome in ("answered", "no answer"):
            events.append(
                channel_event(
                    "Newstate", trunk, tid, lid, ChannelState="5", ChannelStateDesc="Ringing"
                )
            )
        events.append(
            {
                "Event": "DialEnd",
                "Channel": caller,
                "Uniqueid": lid,
                "Linkedid": lid,
                "DestChannel": trunk,
                "DestUniqueid": tid,
                "DestLinkedid": lid,
                "DialStatus": status,
            }
        )
        if self.outcome == "answered":
            events.append(
                channel_event("Newstate", trunk, tid, lid, ChannelState="6", ChannelStateDesc="Up")
            )
        events += [
            channel_event("Hangup", trunk, tid, lid, Cause="16"),
            channel_event("Hangup", caller, lid, lid, Cause="16"),
        ]
        return events

    def legs(self) -> list[Leg]:
        talk = self.talk()
        ring = self.ring_seconds if self.outcome != "busy" else 1
        return [
            Leg(
                uniqueid=self.linkedid,
                linkedid=self.linkedid,
                sequence=self.seq if self.sequence is None else self.sequence,
                start=self.start,
                answer=self.start + timedelta(seconds=ring) if talk else None,
                end=self.start + timedelta(seconds=ring + talk),
                src=self.extension,
                dst=self.number,
                clid=f'"{self.extension}" <{self.extension}>',
                channel=self.caller_channel,
                dstchannel=self.trunk_channel,
                lastapp="Dial",
                disposition=DISPOSITION[self.outcome],
                duration=ring + talk,
                billsec=talk,
                recordingfile=self.recording,
                tenant=self.tenant,
            )
        ]


@dataclass(frozen=True)
class ClickCall:
    """B5: the call an ``Originate`` makes: the manager's phone rings first through a Local
    channel; once answered the customer's number is dialled. ``linkedid`` is the click's
    ``ChannelId``, so the call's CDR, its events and the upload all carry it."""

    linkedid: str
    action_id: str
    extension: str
    number: str
    start: datetime
    outcome: str = "answered"
    """What the manager's phone does: answered (then the customer answers), busy, no answer,
    failed (phone offline)."""
    ring_seconds: int = 3
    talk_seconds: int = 25
    trunk: str = "beltelecom"
    context: str = "originate-skipvm"
    seq: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> str:
        return f"Local/{self.extension}@{self.context}-{self.seq:08x}"

    @property
    def phone_channel(self) -> str:
        return f"PJSIP/{self.extension}-{self.seq + 1:08x}"

    def customer_leg(self) -> OutboundCall:
        """The second half: the Local channel dials the customer like an extension would."""
        return OutboundCall(
            linkedid=self.linkedid,
            extension=self.extension,
            number=self.number,
            start=self.start + timedelta(seconds=self.ring_seconds),
            talk_seconds=self.talk_seconds,
            trunk=self.trunk,
            seq=self.seq + 2,
        )

    def events(self) -> list[Event]:
        lid, ext = self.linkedid, self.extension
        half1, half2, phone = f"{self.local};1", f"{self.local};2", self.phone_channel
        uid2, uid_phone = f"{lid};2", f"{lid}.p"
        events = [
            channel_event(
                "Newchannel",
                half1,
                lid,
                lid,
                CallerIDNum=self.number,
                Exten=self.number,
                Context="from-internal",
                ChannelState="0",
                ChannelStateDesc="Down",
            ),
            channel_event(
                "Newchannel",
                half2,
                uid2,
                lid,
                CallerIDNum=self.number,
                Exten=ext,
                Context=self.context,
                ChannelState="4",
                ChannelStateDesc="Ring",
            ),
            channel_event(
                "Newchannel",
                phone,
                uid_phone,
                lid,
                CallerIDNum=ext,
                ConnectedLineNum=self.number,
                ChannelState="0",
                ChannelStateDesc="Down",
            ),
            dial_begin(lid, half2, uid2, phone, uid_phone, DestCallerIDNum=ext),
        ]
        if self.outcome in ("answered", "no answer"):
            events.append(
                channel_event(
                    "Newstate", phone, uid_phone, lid, ChannelState="5", ChannelStateDesc="Ringing"
                )
            )
        events.append(
            {
                "Event": "DialEnd",
                "Channel": half2,
                "Uniqueid": uid2,
                "Linkedid": lid,
                "DestChannel": phone,
                "DestUniqueid": uid_phone,
                "DestLinkedid": lid,
                "DialStatus": DIAL_STATUS[self.outcome],
            }
        )
        events.append(
            {
                "Event": "OriginateResponse",
                "ActionID": self.action_id,
                "Response": "Success" if self.outcome == "answered" else "Failure",
                "Channel": half1,
                "Context": "from-internal",
                "Exten": self.number,
                "Reason": ORIGINATE_REASON[self.outcome],
                "Uniqueid": lid,
                "CallerIDNum": self.number,
                "CallerIDName": self.number,
            }
        )
        if self.outcome == "answered":
            customer = self.customer_leg()
            # the customer's leg starts on the Local ;1 half, not on a phone
            events += [
                {**e, "Channel": half1} if e.get("Channel") == customer.caller_channel else e
                for e in customer.events()
                if not (
                    e["Event"] in ("Newchannel", "Hangup")
                    and e.get("Channel") == customer.caller_channel
                )
            ]
        events += [
            channel_event("Hangup", phone, uid_phone, lid, Cause="16"),
            channel_event("Hangup", half2, uid2, lid, Cause="16"),
            channel_event("Hangup", half1, lid, lid, Cause="16"),
        ]
        return events

    def legs(self) -> list[Leg]:
        """What the CDR keeps: the manager leg, then (answered) the customer leg of ;1."""
        manager_talk = self.talk_seconds + self.ring_seconds if self.outcome == "answered" else 0
        legs = [
            Leg(
                uniqueid=f"{self.linkedid};2",
                linkedid=self.linkedid,
                sequence=self.seq,
                start=self.start,
                answer=self.start + timedelta(seconds=self.ring_seconds) if manager_talk else None,
                end=self.start + timedelta(seconds=self.ring_seconds + manager_talk),
                src=self.number,
                dst=self.extension,
                clid=f'"{self.number}" <{self.number}>',
                channel=f"{self.local};2",
                dstchannel=self.phone_channel,
                lastapp="Dial",
                disposition=DISPOSITION[self.outcome],
                duration=self.ring_seconds + manager_talk,
                billsec=manager_talk,
            )
        ]
        if self.outcome == "answered":
            customer = self.customer_leg().legs()[0]
            legs.append(
                Leg(
                    **{
                        **{name: getattr(customer, name) for name in Leg.__slots__},
                        "uniqueid": self.linkedid,
                        "channel": f"{self.local};1",
                    }
                )
            )
        return legs
