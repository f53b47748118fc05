"""Calls from a trunk to the extensions: ring group (B3 (i)), queue with Local members (ii),
blind transfer (iv)."""

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
class RingGroupCall:
    """B3 (i): a customer calls a DID; several extensions ring, one (or none) answers."""

    linkedid: str
    caller: str
    did: str
    extensions: tuple[str, ...]
    start: datetime
    answered_by: str | None = None
    ring_seconds: int = 8
    talk_seconds: int = 40
    trunk: str = "beltelecom"
    seq: int = 1
    # What a CDR generator decides itself (sync/calls/demo_cdr.py); defaults derive from seq.
    dialled: str = ""
    """What the trunk's call was routed to (a ring group number); default: the DID."""
    trunk_channel_name: str = ""
    member_channel_names: tuple[str, ...] = ()
    recording: str = ""
    """Recording file of the answered member's leg."""
    sequence: int | None = None
    tenant: str = ""
    """The root channel's ``AccountCode`` (``[ami] tenant_field``) and the legs' tenant."""
    busy: tuple[str, ...] = ()
    """Members whose phone is busy: ``DialEnd BUSY`` at once, they never ring."""
    caller_gave_up: bool = False
    """Nobody answers and the caller hangs up while the phones ring (``DialEnd CANCEL``)."""

    @property
    def trunk_channel(self) -> str:
        return self.trunk_channel_name or f"PJSIP/{self.trunk}-{self.seq:08x}"

    def member_channel(self, index: int) -> tuple[str, str]:
        ext = self.extensions[index]
        name = (
            self.member_channel_names[index]
            if self.member_channel_names
            else f"PJSIP/{ext}-{self.seq + 1 + index:08x}"
        )
        return name, f"{self.linkedid}.{index + 1}"

    def _status(self, ext: str) -> str:
        if ext in self.busy:
            return "BUSY"
        if ext == self.answered_by:
            return "ANSWER"
        return "CANCEL" if self.answered_by or self.caller_gave_up else "NOANSWER"

    def events(self) -> list[Event]:
        lid, trunk = self.linkedid, self.trunk_channel
        events = [
            channel_event(
                "Newchannel",
                trunk,
                lid,
                lid,
                CallerIDNum=self.caller,
                Exten=self.did,
                Context="from-trunk",
                ChannelState="4",
                ChannelStateDesc="Ring",
                **tenant_header(self.tenant),
            ),
        ]
        members = [self.member_channel(i) for i in range(len(self.extensions))]
        for (channel, uid), ext in zip(members, self.extensions, strict=True):
            events.append(
                channel_event(
                    "Newchannel",
                    channel,
                    uid,
                    lid,
                    CallerIDNum=ext,
                    ConnectedLineNum=self.caller,
                    ChannelState="0",
                    ChannelStateDesc="Down",
                )
            )
            events.append(
                dial_begin(
                    lid, trunk, lid, channel, uid, CallerIDNum=self.caller, DestCallerIDNum=ext
                )
            )
        for (channel, uid), ext in zip(members, self.extensions, strict=True):
            if ext in self.busy:
                events.append(dial_end(lid, trunk, lid, channel, uid, "BUSY"))
                events.append(channel_event("Hangup", channel, uid, lid, Cause="17"))
                continue
            events.append(
                channel_event(
                    "Newstate",
                    channel,
                    uid,
                    lid,
                    ChannelState="5",
                    ChannelStateDesc="Ringing",
                    ConnectedLineNum=self.caller,
                )
            )
        # Asterisk reports the answer first, then cancels the others.
        ringing = [(m, e) for m, e in zip(members, self.extensions, strict=True)]
        ringing = [(m, e) for m, e in ringing if e not in self.busy]
        ringing.sort(key=lambda item: item[1] != self.answered_by)
        for (channel, uid), ext in ringing:
            events.append(dial_end(lid, trunk, lid, channel, uid, self._status(ext)))
            if ext != self.answered_by:
                events.append(channel_event("Hangup", channel, uid, lid, Cause="26"))
        for (channel, uid), ext in zip(members, self.extensions, strict=True):
            if ext == self.answered_by:
                events.append(channel_event("Hangup", channel, uid, lid, Cause="16"))
        events.append(channel_event("Hangup", trunk, lid, lid, Cause="16"))
        return events

    def legs(self) -> list[Leg]:
        legs = []
        talk = self.talk_seconds if self.answered_by else 0
        for index, ext in enumerate(self.extensions):
            channel, _ = self.member_channel(index)
            answered = ext == self.answered_by
            legs.append(
                Leg(
                    uniqueid=self.linkedid,
                    linkedid=self.linkedid,
                    sequence=(self.seq if self.sequence is None else self.sequence) + index,
                    start=self.start,
                    answer=self.start + timedelta(seconds=self.ring_seconds) if answered else None,
                    end=self.start
                    + timedelta(seconds=self.ring_seconds + (talk if answered else 0)),
                    src=self.caller,
                    dst=self.dialled or self.did,
                    clid=f'"{self.caller}" <{self.caller}>',
                    channel=self.trunk_channel,
                    dstchannel=channel,
                    lastapp="Dial",
                    disposition="ANSWERED"
                    if answered
                    else ("BUSY" if ext in self.busy else "NO ANSWER"),
                    duration=self.ring_seconds + (talk if answered else 0),
                    billsec=talk if answered else 0,
                    recordingfile=self.recording if answered else "",
                    did=self.did,
                    tenant=self.tenant,
                )
            )
        return legs


@dataclass(frozen=True)
class QueueCall:
    """B3 (ii): a queue with Local members (``Local/<ext>@from-queue/n``); each attempt is a
    Local pair, the ``;2`` half dials the phone; the winner answers, the others time out."""

    linkedid: str
    caller: str
    queue: str
    extensions: tuple[str, ...]
    answered_by: str
    start: datetime
    ring_seconds: int = 6
    talk_seconds: int = 50
    trunk: str = "beltelecom"
    seq: int = 1
    # What a CDR generator decides itself (sync/calls/demo_cdr.py); defaults derive from seq.
    trunk_channel_name: str = ""
    member_names: tuple[tuple[str, str, str], ...] = ()
    """Per member: (Local name without ``;1``/``;2``, the ``;2`` half's uniqueid, phone channel)."""
    recording: str = ""
    sequence: int | None = None
    tenant: str = ""
    """Only the trunk's legs carry it; the Local halves' legs do not (as in a real CDR)."""
    retry_rounds: int = 0
    """Ring-all rounds in which nobody answers before the round that is answered."""
    one_at_a_time: bool = False
    """Round-robin (``rrmemory``): members ring in turn until ``answered_by`` takes it."""

    @property
    def trunk_channel(self) -> str:
        return self.trunk_channel_name or f"PJSIP/{self.trunk}-{self.seq:08x}"

    def member(self, index: int, round: int = 0) -> tuple[str, str, str, str]:
        """(Local name without the half suffix, ;2 uniqueid, phone channel, phone uniqueid)."""
        ext = self.extensions[index]
        n = self.seq + 1 + 2 * index + 2 * len(self.extensions) * round
        if self.member_names and round == 0:
            local, half_id, phone = self.member_names[index]
            return local, half_id, phone, f"{self.linkedid}.p{index}"
        return (
            f"Local/{ext}@from-queue-{n:08x}",
            f"{self.linkedid}.{n}",
            f"PJSIP/{ext}-{n + 1:08x}",
            f"{self.linkedid}.{n + 1}",
        )

    def rung(self) -> list[tuple[int, int]]:
        """(round, member index) of every attempt, in order; the last round ends answered."""
        everyone = range(len(self.extensions))
        attempts = [(r, i) for r in range(self.retry_rounds) for i in everyone]
        winner = self.extensions.index(self.answered_by)
        final = [i for i in everyone if not self.one_at_a_time or i <= winner]
        return attempts + [(self.retry_rounds, i) for i in final]

    def _attempt(self, index: int, round: int) -> list[Event]:
        lid, trunk, ext = self.linkedid, self.trunk_channel, self.extensions[index]
        local, uid2, phone, uid_phone = self.member(index, round)
        uid1 = f"{uid2}.1"
        return [
            channel_event("Newchannel", f"{local};1", uid1, lid, Exten=ext,
                           Context="from-queue", ChannelState="0", ChannelStateDesc="Down"),
            channel_event("Newchannel", f"{local};2", uid2, lid, Exten=ext,
                           Context="from-queue", ChannelState="4", ChannelStateDesc="Ring"),
            {"Event": "AgentCalled", "Channel": trunk, "Uniqueid": lid, "Linkedid": lid,
             "DestChannel": f"{local};1", "DestUniqueid": uid1, "DestLinkedid": lid,
             "Queue": self.queue, "MemberName": ext, "Interface": f"Local/{ext}@from-queue/n"},
            dial_begin(lid, trunk, lid, f"{local};1", uid1),
            channel_event("Newchannel", phone, uid_phone, lid, CallerIDNum=ext,
                           ConnectedLineNum=self.caller, ChannelState="0",
                           ChannelStateDesc="Down"),
            dial_begin(lid, f"{local};2", uid2, phone, uid_phone, DestCallerIDNum=ext),
            channel_event("Newstate", phone, uid_phone, lid, ChannelState="5",
                           ChannelStateDesc="Ringing", ConnectedLineNum=self.caller),
        ]  # fmt: skip

    def _attempt_end(self, index: int, round: int, status: str) -> list[Event]:
        lid, trunk, ext = self.linkedid, self.trunk_channel, self.extensions[index]
        local, uid2, phone, uid_phone = self.member(index, round)
        events = [
            dial_end(lid, f"{local};2", uid2, phone, uid_phone, status),
            dial_end(lid, trunk, lid, f"{local};1", f"{uid2}.1", status),
        ]
        if status == "ANSWER":
            events.append({"Event": "AgentConnect", "Channel": trunk, "Uniqueid": lid,
                           "Linkedid": lid, "Queue": self.queue, "MemberName": ext,
                           "HoldTime": str(self.ring_seconds),
                           "RingTime": str(self.ring_seconds)})  # fmt: skip
            return events
        if status == "NOANSWER":
            events.append({"Event": "AgentRingNoAnswer", "Channel": trunk, "Uniqueid": lid,
                           "Linkedid": lid, "Queue": self.queue, "MemberName": ext,
                           "RingTime": str(self.ring_seconds)})  # fmt: skip
        return [
            *events,
            channel_event("Hangup", phone, uid_phone, lid, Cause="26"),
            channel_event("Hangup", f"{local};2", uid2, lid, Cause="26"),
            channel_event("Hangup", f"{local};1", f"{uid2}.1", lid, Cause="26"),
        ]

    def events(self) -> list[Event]:
        lid, trunk = self.linkedid, self.trunk_channel
        events = [
            channel_event("Newchannel", trunk, lid, lid, CallerIDNum=self.caller,
                           Exten=self.queue, Context="from-trunk", ChannelState="4",
                           ChannelStateDesc="Ring", **tenant_header(self.tenant)),
            channel_event("QueueCallerJoin", trunk, lid, lid, Queue=self.queue, Position="1",
                           CallerIDNum=self.caller),
        ]  # fmt: skip
        winner = self.extensions.index(self.answered_by)
        final = self.retry_rounds
        for round in range(final):
            everyone = range(len(self.extensions))
            events += [e for i in everyone for e in self._attempt(i, round)]
            events += [e for i in everyone for e in self._attempt_end(i, round, "NOANSWER")]
        if self.one_at_a_time:
            for index in range(winner + 1):
                events += self._attempt(index, final)
                status = "ANSWER" if index == winner else "NOANSWER"
                events += self._attempt_end(index, final, status)
        else:
            events += [e for i in range(len(self.extensions)) for e in self._attempt(i, final)]
            # Asterisk reports the answer first, then cancels the others.
            events += self._attempt_end(winner, final, "ANSWER")
            for index in range(len(self.extensions)):
                if index != winner:
                    events += self._attempt_end(index, final, "CANCEL")
        local, uid2, phone, uid_phone = self.member(winner, final)
        events += [
            {"Event": "AgentComplete", "Channel": trunk, "Uniqueid": lid, "Linkedid": lid,
             "Queue": self.queue, "MemberName": self.answered_by, "Reason": "caller",
             "TalkTime": str(self.talk_seconds)},
            channel_event("Hangup", phone, uid_phone, lid, Cause="16"),
            channel_event("Hangup", f"{local};2", uid2, lid, Cause="16"),
            channel_event("Hangup", f"{local};1", f"{uid2}.1", lid, Cause="16"),
            channel_event("Hangup", trunk, lid, lid, Cause="16"),
        ]  # fmt: skip
        return events

    def legs(self) -> list[Leg]:
        legs = []
        seq = self.seq if self.sequence is None else self.sequence
        for round, index in self.rung():
            ext = self.extensions[index]
            local, uid2, phone, _ = self.member(index, round)
            won = ext == self.answered_by and round == self.retry_rounds
            talk = self.talk_seconds if won else 0
            for channel, uniqueid, dstchannel, dst, app in (
                (self.trunk_channel, self.linkedid, f"{local};1", self.queue, "Queue"),
                (f"{local};2", uid2, phone, ext, "Dial"),
            ):
                legs.append(
                    Leg(
                        uniqueid=uniqueid,
                        linkedid=self.linkedid,
                        sequence=seq,
                        start=self.start,
                        answer=self.start + timedelta(seconds=self.ring_seconds) if won else None,
                        end=self.start + timedelta(seconds=self.ring_seconds + talk),
                        src=self.caller,
                        dst=dst,
                        clid=f'"{self.caller}" <{self.caller}>',
                        channel=channel,
                        dstchannel=dstchannel,
                        lastapp=app,
                        disposition="ANSWERED" if won else "NO ANSWER",
                        duration=self.ring_seconds + talk,
                        billsec=talk,
                        recordingfile=self.recording if won else "",
                        tenant=self.tenant if uniqueid == self.linkedid else "",
                    )
                )
                seq += 1
        return legs


@dataclass(frozen=True)
class BlindTransferCall:
    """B3 (iv): the first extension answers, then blind-transfers the caller to the second;
    the transferee's new ``DialBegin`` keeps the same linkedid."""

    linkedid: str
    caller: str
    first: str
    second: str
    start: datetime
    ring_seconds: int = 5
    talk_seconds: int = 30
    trunk: str = "beltelecom"
    seq: int = 1
    # What a CDR generator decides itself (sync/calls/demo_cdr.py); defaults derive from seq.
    second_ring_seconds: int | None = None
    second_talk_seconds: int | None = None
    trunk_channel_name: str = ""
    phone_names: tuple[str, str] | None = None
    sequence: int | None = None
    tenant: str = ""

    @property
    def trunk_channel(self) -> str:
        return self.trunk_channel_name or f"PJSIP/{self.trunk}-{self.seq:08x}"

    def phone(self, ext: str) -> tuple[str, str]:
        n = self.seq + (1 if ext == self.first else 2)
        if self.phone_names is not None:
            return self.phone_names[0 if ext == self.first else 1], f"{self.linkedid}.{n}"
        return f"PJSIP/{ext}-{n:08x}", f"{self.linkedid}.{n}"

    def times(self, ext: str) -> tuple[int, int]:
        """(ring, talk) of the leg of ``ext``."""
        if ext == self.first:
            return self.ring_seconds, self.talk_seconds
        ring = self.ring_seconds if self.second_ring_seconds is None else self.second_ring_seconds
        talk = self.talk_seconds if self.second_talk_seconds is None else self.second_talk_seconds
        return ring, talk

    def events(self) -> list[Event]:
        lid, trunk = self.linkedid, self.trunk_channel
        events = [
            channel_event("Newchannel", trunk, lid, lid, CallerIDNum=self.caller,
                           Exten=self.first, Context="from-trunk", ChannelState="4",
                           ChannelStateDesc="Ring"),
        ]  # fmt: skip
        for ext in (self.first, self.second):
            channel, uid = self.phone(ext)
            events += [
                channel_event("Newchannel", channel, uid, lid, CallerIDNum=ext,
                               ConnectedLineNum=self.caller, ChannelState="0",
                               ChannelStateDesc="Down"),
                dial_begin(lid, trunk, lid, channel, uid, DestCallerIDNum=ext),
                channel_event("Newstate", channel, uid, lid, ChannelState="5",
                               ChannelStateDesc="Ringing", ConnectedLineNum=self.caller),
                {"Event": "DialEnd", "Channel": trunk, "Uniqueid": lid, "Linkedid": lid,
                 "DestChannel": channel, "DestUniqueid": uid, "DestLinkedid": lid,
                 "DialStatus": "ANSWER"},
            ]  # fmt: skip
            if ext == self.first:
                events += [
                    {"Event": "BlindTransfer", "Result": "Success", "TransfererChannel": channel,
                     "TransfererUniqueid": uid, "TransfererLinkedid": lid,
                     "TransfereeChannel": trunk, "TransfereeUniqueid": lid,
                     "TransfereeLinkedid": lid, "IsExternal": "No", "Context": "from-internal",
                     "Extension": self.second},
                    channel_event("Hangup", channel, uid, lid, Cause="16"),
                ]  # fmt: skip
        channel, uid = self.phone(self.second)
        events += [
            channel_event("Hangup", channel, uid, lid, Cause="16"),
            channel_event("Hangup", trunk, lid, lid, Cause="16"),
        ]
        return events

    def legs(self) -> list[Leg]:
        moved = self.start + timedelta(seconds=self.ring_seconds + self.talk_seconds)
        first = self.seq if self.sequence is None else self.sequence
        legs = []
        for offset, (ext, at) in enumerate(((self.first, self.start), (self.second, moved))):
            channel, _ = self.phone(ext)
            ring, talk = self.times(ext)
            legs.append(
                Leg(
                    uniqueid=self.linkedid,
                    linkedid=self.linkedid,
                    sequence=first + offset,
                    start=at,
                    answer=at + timedelta(seconds=ring) if talk > 0 else None,
                    end=at + timedelta(seconds=ring + talk),
                    src=self.caller,
                    dst=ext,
                    clid=f'"{self.caller}" <{self.caller}>',
                    channel=self.trunk_channel,
                    dstchannel=channel,
                    lastapp="Dial",
                    disposition="ANSWERED",
                    duration=ring + talk,
                    billsec=talk,
                    tenant=self.tenant,
                )
            )
        return legs
