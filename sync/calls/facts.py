"""One leg, read defensively: coerced values, derived times and its two sides.

Readers hand over whatever the database holds. Everything here tolerates NULLs, wrong types,
negative numbers and times out of range, so the rules only ever see clean values. Each leg is
read once; the rules then use these attributes, never the raw ``Leg``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from sync.calls.channels import Party, channel_extension, side_b
from sync.calls.context import Context
from sync.calls.legs import DISPOSITIONS, Leg
from sync.timeutil import to_wall

__all__ = [
    "ANSWERED",
    "BUSY",
    "EARLIEST",
    "FAILED_LIKE",
    "LegFacts",
    "prepare",
    "seconds",
    "shift",
    "text",
    "wall",
]

ANSWERED = "ANSWERED"
BUSY = "BUSY"
FAILED_LIKE = frozenset({"FAILED", "CONGESTION"})
MAX_SECONDS = 2**31 - 1
"""Durations are 32-bit integer columns; anything larger is garbage and is capped."""
EARLIEST = datetime(2000, 1, 1)
"""Older times are unset ones (an epoch 0 or 1 read from an integer column, a zero date), not
calls: left in, one would date a call 1970 with a wait of 56 years."""

_TEXT_FIELDS = attrgetter(
    "uniqueid",
    "linkedid",
    "src",
    "dst",
    "clid",
    "channel",
    "dstchannel",
    "disposition",
    "did",
    "outbound_cnum",
    "tenant",
    "recordingfile",
    "userfield",
)


def text(value: object) -> str:
    """A string column as text: NULL and non-strings become '' or their ``str``."""
    if isinstance(value, str):
        return value.strip()
    return "" if value is None else str(value).strip()


def seconds(value: object) -> int | None:
    """A duration column: negative counts as 0, garbage as unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | str | Decimal):
        try:
            number = int(value)
        except (ValueError, OverflowError, ArithmeticError):
            return None
    else:
        return None
    return min(max(number, 0), MAX_SECONDS)


def wall(value: object, ctx: Context) -> datetime | None:
    """A naive wall time in the source zone; an aware value is converted; anything else and
    times before ``EARLIEST`` are unusable (``None``)."""
    if not isinstance(value, datetime):
        return None
    local = to_wall(value, ctx.source.zone)
    return local if local is not None and local >= EARLIEST else None


def shift(moment: datetime | None, by: int | None, sign: int) -> datetime | None:
    """``moment ± by`` seconds; ``None`` when either is unknown or the result out of range."""
    if moment is None or by is None:
        return None
    try:
        return moment + timedelta(seconds=sign * by)
    except OverflowError:
        return None


class LegFacts:
    """A leg with what the rules ask of it; ``start`` is ``None`` when no time is usable."""

    __slots__ = (
        "a_extension",
        "a_label",
        "answer",
        "answered",
        "b_extension",
        "b_label",
        "b_party",
        "billsec",
        "channel",
        "clid",
        "did",
        "disposition",
        "dst",
        "dstchannel",
        "end",
        "group",
        "identity",
        "label",
        "leg",
        "order",
        "outbound_cnum",
        "recordingfile",
        "seq",
        "src",
        "start",
        "tenant",
        "uniqueid",
        "userfield",
    )

    leg: Leg
    group: str
    """R1 group: ``linkedid``, else ``uniqueid``."""
    identity: tuple[object, ...]
    """R1 duplicate identity: ``uniqueid`` + ``sequence``, else + ``start`` + ``dstchannel``."""
    uniqueid: str
    seq: int | None
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billsec: int
    disposition: str
    src: str
    dst: str
    clid: str
    channel: str
    dstchannel: str
    did: str
    outbound_cnum: str
    tenant: str
    recordingfile: str
    userfield: str
    a_extension: str | None
    """Side A's extension; ``None`` means the caller is external (a trunk, or a number)."""
    a_label: str
    b_party: Party
    b_extension: str | None
    b_label: str
    order: tuple[Any, ...]
    """(start, sequence) order; legs without a time last; ties broken by identity."""
    answered: bool
    """R3: ANSWERED with an ``answer`` and ``billsec > 0`` (a pre-answered caller's
    unanswered attempts carry ``answer`` and billsec too, so the disposition decides)."""
    label: str
    """``leg seq 212``, how ``explain`` names the leg."""

    def describe(self) -> str:
        """``leg seq 212 PJSIP/102``: the leg and its side B, as ``explain`` prints it."""
        return f"{self.label} {self.b_label}"


def prepare(leg: Leg, ctx: Context) -> LegFacts:
    facts = LegFacts()
    facts.leg = leg
    (
        uniqueid,
        linkedid,
        facts.src,
        facts.dst,
        facts.clid,
        channel,
        dstchannel,
        disposition,
        facts.did,
        facts.outbound_cnum,
        facts.tenant,
        facts.recordingfile,
        facts.userfield,
    ) = [v.strip() if v.__class__ is str else text(v) for v in _TEXT_FIELDS(leg)]
    facts.uniqueid = uniqueid
    facts.group = linkedid or uniqueid
    facts.channel = channel
    facts.dstchannel = dstchannel
    seq = leg.sequence
    seq = facts.seq = seq if seq.__class__ is int else None
    facts.label = f"leg seq {'?' if seq is None else seq}"
    disposition = facts.disposition = DISPOSITIONS.get(disposition) or disposition.upper()
    # Fast paths for the usual clean values; the helpers handle everything else.
    duration = leg.duration
    if duration.__class__ is not int or not 0 <= duration <= MAX_SECONDS:
        duration = seconds(duration)
    billsec = leg.billsec
    if billsec.__class__ is not int or not 0 <= billsec <= MAX_SECONDS:
        billsec = seconds(billsec)
    facts.billsec = billsec or 0
    raw_start, answer, end = leg.start, leg.answer, leg.end
    if raw_start.__class__ is not datetime or raw_start.tzinfo is not None or raw_start < EARLIEST:
        raw_start = wall(raw_start, ctx)
    if answer.__class__ is not datetime or answer.tzinfo is not None or answer < EARLIEST:
        answer = wall(answer, ctx)
    if end.__class__ is not datetime or end.tzinfo is not None or end < EARLIEST:
        end = wall(end, ctx)
    facts.answered = disposition == ANSWERED and answer is not None and facts.billsec > 0
    start = raw_start if raw_start is not None else shift(end, duration, -1)
    if end is None:
        end = shift(start, duration, 1) or shift(answer, billsec, 1) or start
    elif start is not None and end < start:
        end = start
    facts.start = start
    facts.answer = answer
    facts.end = end
    if channel:
        facts.a_extension, facts.a_label = channel_extension(channel, ctx)
    else:
        facts.a_extension = facts.src if facts.src and ctx.extension.search(facts.src) else None
        facts.a_label = f"src {facts.src!r}"
    facts.b_party, facts.b_extension, facts.b_label = side_b(dstchannel, facts.dst, ctx)
    if seq is None:
        facts.identity = (uniqueid, None, raw_start, dstchannel)
        # raw_start in the key too: equal orders then imply equal identities (shuffle-proof).
        facts.order = (
            start is None,
            start or datetime.min,
            True,
            raw_start is None,
            uniqueid,
            dstchannel,
        )
    else:
        facts.identity = (uniqueid, seq)
        facts.order = (start is None, start or datetime.min, False, seq, uniqueid, dstchannel)
    return facts
