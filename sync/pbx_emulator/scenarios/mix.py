"""A scripted day in miniature for pop-up tests and the benchmark: every shape of call, some of
them for an inactive tenant, for no tenant or from a hidden number; played interleaved."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sync.pbx_emulator.scenarios.common import Event
from sync.pbx_emulator.scenarios.inbound import BlindTransferCall, QueueCall, RingGroupCall
from sync.pbx_emulator.scenarios.outbound import OutboundCall
from sync.pbx_emulator.scenarios.transfer import AttendedTransferCall

MixCall = RingGroupCall | QueueCall | BlindTransferCall | AttendedTransferCall | OutboundCall
EXTENSIONS = tuple(str(n) for n in range(101, 121))
DID = "80172000000"


def scripted_mix(
    n: int,
    start: datetime,
    *,
    tenants: Sequence[str] = ("A", "B"),
    inactive: str = "C",
    seed: int = 13,
    first: int = 0,
) -> list[MixCall]:
    """``n`` calls of every kind; every 11th for ``inactive``, every 15th without a tenant
    value, every 25th from a hidden number (the rest from ``tenants`` in turn)."""
    rnd = random.Random(seed + first)
    calls: list[MixCall] = []
    for i in range(first, first + n):
        lid, seq, at = f"17646{i:05d}.{i}", 16 * i + 1, start + timedelta(seconds=5 * i)
        tenant = tenants[i % len(tenants)]
        tenant = inactive if i % 11 == 5 else ("" if i % 15 == 14 else tenant)
        caller = "anonymous" if i % 25 == 24 else f"8029{1000000 + i:07d}"
        exts = rnd.sample(EXTENSIONS, 3)
        kind = i % 10
        call: MixCall
        if kind == 0:
            call = RingGroupCall(
                lid, caller, DID, tuple(exts), at, answered_by=exts[1], seq=seq, tenant=tenant
            )
        elif kind == 1:
            call = RingGroupCall(lid, caller, DID, tuple(exts[:2]), at, seq=seq, tenant=tenant)
        elif kind == 2:
            call = RingGroupCall(
                lid, caller, DID, tuple(exts), at, caller_gave_up=True, seq=seq, tenant=tenant
            )
        elif kind == 3:
            call = RingGroupCall(
                lid,
                caller,
                DID,
                tuple(exts),
                at,
                answered_by=exts[2],
                busy=(exts[0],),
                seq=seq,
                tenant=tenant,
            )
        elif kind == 4:
            call = QueueCall(
                lid,
                caller,
                "702",
                tuple(exts[:2]),
                exts[0],
                at,
                retry_rounds=1,
                seq=seq,
                tenant=tenant,
            )
        elif kind == 5:
            call = QueueCall(
                lid,
                caller,
                "703",
                tuple(exts),
                exts[1],
                at,
                one_at_a_time=True,
                seq=seq,
                tenant=tenant,
            )
        elif kind == 6:
            outcome = rnd.choice(("answered", "answered", "busy", "no answer"))
            call = OutboundCall(
                lid, exts[0], f"8029{2000000 + i:07d}", at, outcome=outcome, seq=seq, tenant=tenant
            )
        elif kind == 7:
            call = BlindTransferCall(lid, caller, exts[0], exts[1], at, seq=seq, tenant=tenant)
        elif kind == 8:
            call = AttendedTransferCall(
                lid, caller, DID, exts[0], exts[1], at, seq=seq, tenant=tenant
            )
        else:  # one extension with two registered phones
            call = RingGroupCall(
                lid,
                caller,
                DID,
                (exts[0], exts[0], exts[1]),
                at,
                answered_by=exts[1],
                seq=seq,
                tenant=tenant,
            )
        calls.append(call)  # fmt: skip
    return calls


def interleave(calls: Sequence[MixCall]) -> list[Event]:
    """The calls' events merged round-robin, as overlapping calls reach the AMI socket."""
    return interleave_events([call.events() for call in calls])


def interleave_events(lists: Sequence[Sequence[Event]]) -> list[Event]:
    merged: list[Event] = []
    for index in range(max((len(events) for events in lists), default=0)):
        merged += [events[index] for events in lists if index < len(events)]
    return merged
