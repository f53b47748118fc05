"""Deterministic, realistic CDR legs for the demo, end-to-end tests and benchmarks.

Calls are drawn with weights from the scenario catalogue of spec/asterisk-cdr.md §6 and
shaped like the worked examples of §9.5: a Beltelecom trunk, extensions 101–120, customers
from a fixed pool of Belarusian numbers written in the formats trunks really use. Each call
carries the outcome the rules must give it, so tests can check the builder against intent.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from sync.calls.legs import Leg
from sync.pbx_emulator.scenarios import BlindTransferCall, OutboundCall, QueueCall, RingGroupCall

ScriptedCall = OutboundCall | RingGroupCall | QueueCall | BlindTransferCall

__all__ = ["SCENARIOS", "generate_calls", "generate_legs", "generate_scripted"]

_EXTENSIONS = tuple(str(n) for n in range(101, 121))
_MOBILE_PREFIXES = (
    *("291", "292", "293", "295", "296", "297", "298", "299"),
    *("255", "256", "257", "259", "33", "44"),
)
_FOREIGN_DIALLED = ("0048221234567", "81049301234567", "0079161234567")
_POOL_SIZE = 3000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _national(rng: random.Random) -> str:
    """A valid Belarusian national number (9 digits): mobile, or a Minsk landline."""
    if rng.random() < 0.2:
        return "17" + f"{rng.randrange(10**7):07d}"
    prefix = rng.choice(_MOBILE_PREFIXES)
    return prefix + f"{rng.randrange(10 ** (9 - len(prefix))):0{9 - len(prefix)}d}"


def _as_caller_id(national: str, rng: random.Random) -> str:
    """How a trunk presents a caller: ``80…``, ``375…``, ``+375…``, ``0…`` or bare."""
    pick = rng.random()
    if pick < 0.4:
        return "80" + national
    if pick < 0.7:
        return "375" + national
    if pick < 0.8:
        return "+375" + national
    if pick < 0.9:
        return "0" + national
    return national


def _as_dialled(national: str, rng: random.Random) -> str:
    """What an extension dials: mostly ``80…``, sometimes ``0…`` or ``375…``."""
    pick = rng.random()
    if pick < 0.6:
        return "80" + national
    if pick < 0.8:
        return "0" + national
    return "375" + national


class _Call:
    """Legs of one call under construction: channels, ids and sequence numbers."""

    def __init__(self, gen: _Generator, start: datetime, tenant: str) -> None:
        self.gen = gen
        self.rng = gen.rng
        self.start = start
        self.tenant = tenant
        self.legs: list[Leg] = []
        self.epoch = int((start.replace(tzinfo=gen.zone) - _EPOCH).total_seconds())
        self.caller, self.caller_id = self.channel(f"PJSIP/beltelecom-{gen.counter:08x}")
        self.linkedid = self.caller_id
        self.scripted: ScriptedCall | None = None
        """The scenario object both the CDR legs and the live AMI events come from, for the
        shapes ``sync/pbx_emulator/scenarios.py`` knows; ``None`` for the others."""

    def script(self, scripted: ScriptedCall) -> None:
        """Take the legs from ``scripted`` (and keep it for its AMI events)."""
        legs = scripted.legs()
        self.gen.sequence += len(legs)
        self.legs.extend(legs)
        self.scripted = scripted

    def channel(self, name: str) -> tuple[str, str]:
        """A channel created at the call's start and its ``uniqueid`` ``<epoch>.<counter>``."""
        self.gen.counter += 1
        return name, f"{self.epoch}.{self.gen.counter}"

    def phone(self, extension: str) -> str:
        self.gen.counter += 1
        return f"PJSIP/{extension}-{self.gen.counter:08x}"

    def leg(
        self,
        *,
        channel: str,
        uniqueid: str,
        dstchannel: str,
        src: str,
        dst: str,
        start: datetime,
        ring: int,
        talk: int,
        disposition: str,
        lastapp: str = "Dial",
        recording: str = "",
        own_tenant: bool = True,
    ) -> None:
        """One row: answered after ``ring`` seconds when ``talk`` > 0, else ends after ring."""
        self.gen.sequence += 1
        answer = start + timedelta(seconds=ring) if talk > 0 else None
        end = start + timedelta(seconds=ring + talk)
        self.legs.append(
            Leg(
                uniqueid=uniqueid,
                linkedid=self.linkedid,
                sequence=self.gen.sequence,
                start=start,
                answer=answer,
                end=end,
                src=src,
                dst=dst,
                clid=f'"{src}" <{src}>',
                channel=channel,
                dstchannel=dstchannel,
                lastapp=lastapp,
                disposition=disposition,
                duration=ring + talk,
                billsec=talk,
                recordingfile=recording,
                tenant=self.tenant if own_tenant else "",
            )
        )

    def recording(self, kind: str, called: str, caller: str, uniqueid: str) -> str:
        s = self.start
        stamp = f"{s.year:04d}{s.month:02d}{s.day:02d}-{s.hour:02d}{s.minute:02d}{s.second:02d}"
        return f"{kind}-{called}-{caller}-{stamp}-{uniqueid}.wav"

    def ring(self) -> int:
        return self.rng.randint(3, 25)

    def talk(self) -> int:
        return min(int(self.rng.expovariate(1 / 120)) + 5, 3600)

    def extensions(self, count: int) -> list[str]:
        return self.rng.sample(_EXTENSIONS, count)


class _Generator:
    """Seeded state shared by all calls: the random source, id counters, customer pool."""

    def __init__(self, seed: int, source_timezone: str) -> None:
        self.rng = random.Random(seed)
        self.zone = ZoneInfo(source_timezone)
        self.counter = self.rng.randrange(1, 1000)
        self.sequence = self.rng.randrange(1, 1000)
        self.pool = [_national(self.rng) for _ in range(_POOL_SIZE)]

    def customer(self) -> str:
        return self.rng.choice(self.pool)


# Scenarios: each builds the legs of one call and returns the outcome the rules must give.
Scenario = Callable[[_Call], str]


def _inbound_answered(call: _Call) -> str:
    ext, src = call.rng.choice(_EXTENSIONS), _as_caller_id(call.gen.customer(), call.rng)
    ring, talk = call.ring(), call.talk()
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=call.phone(ext),
        src=src,
        dst=ext,
        start=call.start,
        ring=ring,
        talk=talk,
        disposition="ANSWERED",
        recording=call.recording("exten", ext, src, call.caller_id),
    )
    return "in:answered"


def _parallel(call: _Call, members: int, *, queue: bool, answered: bool) -> str:
    """Ring group (members ring at once) or queue (member rows repeat the caller's times)."""
    src = _as_caller_id(call.gen.customer(), call.rng)
    dst = "700" if queue else "600"
    exts = call.extensions(members)
    winner = call.rng.randrange(members) if answered else -1
    ring, talk = call.ring(), call.talk()
    all_busy = True
    for index, ext in enumerate(exts):
        won = index == winner
        busy = queue and not won and call.rng.random() < 0.3
        all_busy = all_busy and busy
        call.leg(
            channel=call.caller,
            uniqueid=call.caller_id,
            dstchannel=call.phone(ext),
            src=src,
            dst=dst,
            start=call.start,
            ring=ring if won or not queue else ring + (talk if answered else 0),
            talk=talk if won else 0,
            disposition="ANSWERED" if won else "BUSY" if busy else "NO ANSWER",
            lastapp="Queue" if queue else "Dial",
            recording=call.recording("q" if queue else "rg", dst, src, call.caller_id)
            if won
            else "",
        )
    if answered:
        return "in:answered"
    return "in:busy" if all_busy else "in:no answer"


def _ring_group(call: _Call) -> str:
    """Members ring at once, one answers: a scripted call, so its live AMI events exist too."""
    members = call.rng.randint(3, 6)
    src = _as_caller_id(call.gen.customer(), call.rng)
    exts = call.extensions(members)
    winner = call.rng.randrange(members)
    ring, talk = call.ring(), call.talk()
    channels = tuple(call.phone(ext) for ext in exts)
    scripted = RingGroupCall(
        linkedid=call.linkedid,
        caller=src,
        did="",
        extensions=tuple(exts),
        start=call.start,
        answered_by=exts[winner],
        ring_seconds=ring,
        talk_seconds=talk,
        dialled="600",
        trunk_channel_name=call.caller,
        member_channel_names=channels,
        recording=call.recording("rg", "600", src, call.caller_id),
        sequence=call.gen.sequence + 1,
        tenant=call.tenant,
    )
    call.script(scripted)
    return "in:answered"


def _queue_ring_all(call: _Call) -> str:
    return _parallel(call, call.rng.randint(4, 7), queue=True, answered=True)


def _inbound_missed(call: _Call) -> str:
    return _parallel(call, call.rng.randint(2, 5), queue=call.rng.random() < 0.5, answered=False)


def _queue_local_members(call: _Call) -> str:
    """FreePBX queue: caller → ``Local/<ext>@from-queue;1`` plus the ``;2`` → phone rows."""
    src = _as_caller_id(call.gen.customer(), call.rng)
    exts = call.extensions(call.rng.randint(2, 4))
    winner = call.rng.randrange(len(exts))
    ring, talk = call.ring(), call.talk()
    members = []
    for ext in exts:
        local = f"Local/{ext}@from-queue-{call.gen.counter:08x}"
        _, half_id = call.channel(local + ";2")
        members.append((local, half_id, call.phone(ext)))
    call.script(
        QueueCall(
            linkedid=call.linkedid,
            caller=src,
            queue="702",
            extensions=tuple(exts),
            answered_by=exts[winner],
            start=call.start,
            ring_seconds=ring,
            talk_seconds=talk,
            trunk_channel_name=call.caller,
            member_names=tuple(members),
            recording=call.recording("q", "702", src, call.caller_id),
            sequence=call.gen.sequence + 1,
            tenant=call.tenant,
        )
    )
    return "in:answered"


def _blind_transfer(call: _Call) -> str:
    first, second = call.extensions(2)
    src = _as_caller_id(call.gen.customer(), call.rng)
    ring, talk = call.ring(), call.talk()
    second_ring, second_talk = call.ring(), call.talk()
    phones = (call.phone(first), call.phone(second))
    call.script(
        BlindTransferCall(
            linkedid=call.linkedid,
            caller=src,
            first=first,
            second=second,
            start=call.start,
            ring_seconds=ring,
            talk_seconds=talk,
            second_ring_seconds=second_ring,
            second_talk_seconds=second_talk,
            trunk_channel_name=call.caller,
            phone_names=phones,
            sequence=call.gen.sequence + 1,
            tenant=call.tenant,
        )
    )
    return "in:answered"


def _attended_transfer(call: _Call, *, blonde: bool = False) -> str:
    """B answers, consults C on its own channel, then C takes the caller."""
    b, c = call.extensions(2)
    src = _as_caller_id(call.gen.customer(), call.rng)
    ring, talk = call.ring(), call.talk()
    b_channel = call.phone(b)
    b_end = call.start + timedelta(seconds=ring + talk)
    consult_start = b_end - timedelta(seconds=min(talk - 1, 30))
    _, b_id = call.channel(b_channel)
    c_channel = call.phone(c)
    consult_ring = int((b_end - consult_start).total_seconds())
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=b_channel,
        src=src,
        dst=b,
        start=call.start,
        ring=ring,
        talk=talk,
        disposition="ANSWERED",
        recording=call.recording("exten", b, src, call.caller_id),
    )
    call.leg(
        channel=b_channel,
        uniqueid=b_id,
        dstchannel=c_channel,
        src=b,
        dst=c,
        start=consult_start,
        ring=consult_ring if blonde else min(consult_ring, 4),
        talk=0 if blonde else max(consult_ring - 4, 1),
        disposition="NO ANSWER" if blonde else "ANSWERED",
        own_tenant=False,
    )
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=c_channel,
        src=src,
        dst=c,
        start=b_end,
        ring=call.ring() if blonde else 0,
        talk=call.talk(),
        disposition="ANSWERED",
    )
    return "in:answered"


def _blonde_transfer(call: _Call) -> str:
    return _attended_transfer(call, blonde=True)


def _park(call: _Call) -> str:
    """B answers and parks the caller on 701; C retrieves the call."""
    b, c = call.extensions(2)
    src = _as_caller_id(call.gen.customer(), call.rng)
    ring, talk, parked = call.ring(), call.talk(), call.rng.randint(10, 90)
    at = call.start
    for dstchannel, dst, leg_ring, leg_talk, app in (
        (call.phone(b), b, ring, talk, "Dial"),
        ("", "701", 0, parked, "Park"),
        (call.phone(c), c, 0, call.talk(), "Park"),
    ):
        call.leg(
            channel=call.caller,
            uniqueid=call.caller_id,
            dstchannel=dstchannel,
            src=src,
            dst=dst,
            start=at,
            ring=leg_ring,
            talk=leg_talk,
            disposition="ANSWERED",
            lastapp=app,
        )
        at += timedelta(seconds=leg_ring + leg_talk)
    return "in:answered"


def _inbound_busy(call: _Call) -> str:
    ext = call.rng.choice(_EXTENSIONS)
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=call.phone(ext),
        src=_as_caller_id(call.gen.customer(), call.rng),
        dst=ext,
        start=call.start,
        ring=call.rng.randint(0, 3),
        talk=0,
        disposition=call.rng.choice(("BUSY", "4")),
    )
    return "in:busy"


def _ivr_only(call: _Call) -> str:
    """The IVR answers the trunk; the caller hangs up before any extension rings."""
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel="",
        src=_as_caller_id(call.gen.customer(), call.rng),
        dst="s",
        start=call.start,
        ring=1,
        talk=call.rng.randint(5, 40),
        disposition="ANSWERED",
        lastapp="BackGround",
    )
    return "in:no answer"


def _forward_to_mobile(call: _Call) -> str:
    """Extension does not pick up; its forward rings a mobile through the trunk, answered."""
    ext = call.rng.choice(_EXTENSIONS)
    src = _as_caller_id(call.gen.customer(), call.rng)
    ring = call.rng.randint(10, 20)
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=call.phone(ext),
        src=src,
        dst=ext,
        start=call.start,
        ring=ring,
        talk=0,
        disposition="NO ANSWER",
    )
    mobile = "80" + call.gen.customer()
    trunk, _ = call.channel(f"PJSIP/beltelecom-{call.gen.counter:08x}")
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=trunk,
        src=src,
        dst=mobile,
        start=call.start + timedelta(seconds=ring),
        ring=call.ring(),
        talk=call.talk(),
        disposition="ANSWERED",
    )
    return "in:answered"


def _outbound(call: _Call, disposition: str, legs: int = 1) -> str:
    ext = call.rng.choice(_EXTENSIONS)
    channel, uniqueid = call.channel(call.phone(ext))
    call.linkedid = uniqueid
    national = call.gen.customer()
    dst = call.rng.choice(_FOREIGN_DIALLED) if call.rng.random() < 0.03 else None
    dst = dst or _as_dialled(national, call.rng)
    result = {"ANSWERED": "answered", "BUSY": "busy"}.get(disposition, "no answer")
    if legs == 1:  # one attempt: a scripted call, so its live AMI events exist too
        talk = call.talk() if disposition == "ANSWERED" else 0
        ring = call.ring() if disposition != "BUSY" else 1
        call.script(
            OutboundCall(
                linkedid=uniqueid,
                extension=ext,
                number=dst,
                start=call.start,
                outcome=result,
                ring_seconds=ring,
                talk_seconds=talk,
                caller_channel_name=channel,
                trunk_channel_name=f"PJSIP/beltelecom-{call.gen.counter:08x}",
                recording=call.recording("out", dst, ext, uniqueid) if talk else "",
                sequence=call.gen.sequence + 1,
                tenant=call.tenant,
            )
        )
        return f"out:{result}"
    at = call.start
    for attempt in range(legs):
        last = attempt == legs - 1
        talk = call.talk() if last and disposition == "ANSWERED" else 0
        ring = call.ring() if disposition != "BUSY" or not last else 1
        call.leg(
            channel=channel,
            uniqueid=uniqueid,
            dstchannel=f"PJSIP/{'beltelecom' if last else 'mts'}-{call.gen.counter + attempt:08x}",
            src=ext,
            dst=dst,
            start=at,
            ring=ring if last else 0,
            talk=talk,
            disposition=disposition if last else "CONGESTION",
            recording=call.recording("out", dst, ext, uniqueid) if talk else "",
        )
        at += timedelta(seconds=ring + talk if last else 1)
    return f"out:{result}"


def _internal(call: _Call) -> str:
    """An extension calls another one, or an internal ring group of two or three."""
    caller, *callees = call.extensions(call.rng.choice((2, 2, 3, 4)))
    channel, uniqueid = call.channel(call.phone(caller))
    call.linkedid = uniqueid
    winner = call.rng.randrange(len(callees) + 1)  # == len(callees): nobody answers
    ring, talk = call.ring(), call.talk()
    for index, callee in enumerate(callees):
        call.leg(
            channel=channel,
            uniqueid=uniqueid,
            dstchannel=call.phone(callee),
            src=caller,
            dst=callee if len(callees) == 1 else "601",
            start=call.start,
            ring=ring,
            talk=talk if index == winner else 0,
            disposition="ANSWERED" if index == winner else "NO ANSWER",
        )
    return "skipped:internal"


def _anonymous(call: _Call) -> str:
    ext = call.rng.choice(_EXTENSIONS)
    call.leg(
        channel=call.caller,
        uniqueid=call.caller_id,
        dstchannel=call.phone(ext),
        src="anonymous",
        dst=ext,
        start=call.start,
        ring=call.ring(),
        talk=call.talk(),
        disposition="ANSWERED",
    )
    return "skipped:no number"


SCENARIOS: dict[str, tuple[int, Scenario]] = {
    "inbound answered": (30, _inbound_answered),
    "ring group": (12, _ring_group),
    "queue ring-all": (10, _queue_ring_all),
    "queue with Local members": (5, _queue_local_members),
    "blind transfer": (3, _blind_transfer),
    "attended transfer": (3, _attended_transfer),
    "blonde transfer": (1, _blonde_transfer),
    "park": (1, _park),
    "inbound missed": (8, _inbound_missed),
    "inbound busy": (3, _inbound_busy),
    "IVR only": (1, _ivr_only),
    "forward to mobile": (2, _forward_to_mobile),
    "outbound answered": (9, lambda call: _outbound(call, "ANSWERED")),
    "outbound busy": (2, lambda call: _outbound(call, "BUSY")),
    "outbound no answer": (3, lambda call: _outbound(call, "NO ANSWER")),
    "outbound trunk failover": (1, lambda call: _outbound(call, "ANSWERED", legs=2)),
    "internal": (4, _internal),
    "anonymous": (2, _anonymous),
}
"""Name → (weight, builder); weights are percentages of generated calls (roughly)."""


def generate_calls(
    n_calls: int,
    *,
    start: datetime,
    seed: int = 1,
    tenants: Sequence[str] = ("",),
    spacing_seconds: float = 20.0,
    source_timezone: str = "UTC",
) -> Iterator[tuple[str, str, list[Leg]]]:
    """``(scenario, expected, legs)`` per call, calls in start order. ``expected`` is
    ``"<type>:<result>"`` (``in:answered``) or ``"skipped:<reason>"``. ``start`` is a naive
    wall time in ``source_timezone``, which also dates the ``<epoch>`` part of the ids."""
    for name, expected, legs, _ in generate_scripted(
        n_calls,
        start=start,
        seed=seed,
        tenants=tenants,
        spacing_seconds=spacing_seconds,
        source_timezone=source_timezone,
    ):
        yield name, expected, legs


def generate_scripted(
    n_calls: int,
    *,
    start: datetime,
    seed: int = 1,
    tenants: Sequence[str] = ("",),
    spacing_seconds: float = 20.0,
    source_timezone: str = "UTC",
) -> Iterator[tuple[str, str, list[Leg], ScriptedCall | None]]:
    """``generate_calls`` plus each call's scenario object when it has one (ring groups,
    queues with Local members, blind transfers, one-attempt outbound calls, i.e. spec B3
    (i)–(iv)): ``scripted.events()`` is what Asterisk's AMI shows while the
    call happens, ``scripted.legs()`` the very legs yielded."""
    gen = _Generator(seed, source_timezone)
    names = list(SCENARIOS)
    cumulative = list(accumulate(weight for weight, _ in SCENARIOS.values()))
    tenant_cycle = list(tenants) or [""]
    start = start.replace(microsecond=0)
    offset = 0.0
    for index in range(n_calls):
        name = names[bisect(cumulative, gen.rng.random() * cumulative[-1])]
        at = start + timedelta(seconds=int(offset))
        call = _Call(gen, at, tenant_cycle[index % len(tenant_cycle)])
        expected = SCENARIOS[name][1](call)
        yield name, expected, call.legs, call.scripted
        offset += gen.rng.expovariate(1 / spacing_seconds)


def generate_legs(
    n_calls: int,
    *,
    start: datetime,
    seed: int = 1,
    tenants: Sequence[str] = ("",),
    spacing_seconds: float = 20.0,
    source_timezone: str = "UTC",
) -> Iterator[Leg]:
    """The legs of ``generate_calls``, merged into one stream ordered by (start, sequence)."""
    pending: list[tuple[datetime, int, Leg]] = []
    for _, _, legs in generate_calls(
        n_calls,
        start=start,
        seed=seed,
        tenants=tenants,
        spacing_seconds=spacing_seconds,
        source_timezone=source_timezone,
    ):
        call_start = legs[0].start
        assert call_start is not None  # every scenario's first leg starts the call
        while pending and pending[0][0] <= call_start:
            yield heapq.heappop(pending)[2]
        for leg in legs:
            assert leg.start is not None and leg.sequence is not None
            heapq.heappush(pending, (leg.start, leg.sequence, leg))
    while pending:
        yield heapq.heappop(pending)[2]
