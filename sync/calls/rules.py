"""Rules R2–R6 over the timed legs of one call, each decision with the reason ``explain`` shows.

Input: the call's legs that have a usable start, ordered by (start, sequence). Nothing here
raises: any such list yields a direction, a result and a (possibly unusable) phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sync.calls.channels import Party
from sync.calls.context import Context
from sync.calls.facts import ANSWERED, BUSY, FAILED_LIKE, LegFacts, shift
from sync.phones import PhoneResult, unwrap_clid

__all__ = ["Derivation", "Direction", "Outcome", "derive"]

Direction = Literal["in", "out", "internal"]


@dataclass(slots=True)
class Outcome:
    """R3, R4, R6 for one direction."""

    result: str
    result_why: str
    code: str | None
    code_why: str
    duration: int
    duration_why: str
    waiting: int
    waiting_why: str
    answering: tuple[LegFacts, ...]
    """The legs that answered, in the order R9 looks for a recording."""


@dataclass(slots=True)
class Derivation:
    """The call as R2–R6 see it; tenant, date and status are applied by the builder."""

    direction: Direction
    direction_why: str
    phone: PhoneResult
    phone_why: str
    outcome: Outcome


def derive(timed: list[LegFacts], ctx: Context) -> Derivation:
    direction, direction_why = _direction(timed)
    if direction == "out":
        outcome, decider = _outbound(timed)
        phone, phone_why = _dialled_phone(decider, ctx)
    else:
        outcome = _inbound(timed, ctx)
        phone, phone_why = _caller_phone(timed[0], ctx)
    return Derivation(direction, direction_why, phone, phone_why, outcome)


def _direction(timed: list[LegFacts]) -> tuple[Direction, str]:
    """R2."""
    for facts in timed:
        if facts.did:
            return "in", f"R2.1: did {facts.did} on {facts.label}"
    for facts in timed:
        if facts.outbound_cnum:
            return "out", f"R2.1: outbound_cnum {facts.outbound_cnum} on {facts.label}"
    earliest = timed[0]
    caller = earliest.a_label
    if earliest.a_extension is None:
        return "in", f"R2.2: caller {caller} of the earliest {earliest.label} is external"
    for facts in timed:
        if facts.b_party is Party.EXTERNAL:
            return "out", f"R2.3: caller {caller} is an extension, {facts.describe()} external"
    return "internal", f"R2.4: caller {caller} and every other party are extensions"


def _answer_order(facts: LegFacts) -> tuple[datetime, bool, int, str]:
    return (facts.answer or datetime.min, facts.seq is None, facts.seq or 0, facts.uniqueid)


def _seconds_between(later: datetime, earlier: datetime) -> int:
    return max(int((later - earlier).total_seconds()), 0)


def _inbound(timed: list[LegFacts], ctx: Context) -> Outcome:
    """R3, R4, R6 for ``in`` (and for internal calls, which are skipped but explained)."""
    extension_legs = [f for f in timed if f.b_party is Party.EXTENSION]
    answering = [f for f in extension_legs if f.answered]
    if len(answering) > 1:
        answering.sort(key=_answer_order)
    if answering:
        return _answered(timed, answering, ctx)
    forward = _forward_leg(timed)
    if forward is not None:
        return _forwarded(timed[0], forward, extension_legs)
    return _unanswered(timed, extension_legs)


def _answered(timed: list[LegFacts], answering: list[LegFacts], ctx: Context) -> Outcome:
    first = answering[0]
    responsible = answering[-1] if ctx.options.responsible == "last" else first
    earliest = timed[0]
    start = earliest.start or datetime.min
    talk = [
        f
        for f in timed
        if f.uniqueid == earliest.uniqueid and f.b_party is Party.EXTENSION and f.answered
    ]
    # R6: the answering extension's own row (a Local ;2 or member row) has its real pickup
    # time, where the caller's row may carry an earlier answer (pre-answered caller, G2).
    own = [
        f.answer
        for f in answering
        if f.uniqueid != earliest.uniqueid and f.b_extension == first.b_extension and f.answer
    ]
    answered_at = min(own) if own else (first.answer or start)
    return Outcome(
        result="answered",
        result_why=f"R3: {first.describe()} {first.disposition} billsec {first.billsec}",
        code=responsible.b_extension,
        code_why=(
            f"R4: {ctx.options.responsible} answering leg by answer time, {responsible.describe()}"
        ),
        duration=sum(f.billsec for f in talk),
        duration_why="R6: billsec of the caller's answered extension legs "
        + " + ".join(f"{f.billsec} ({f.label})" for f in talk),
        waiting=_seconds_between(answered_at, start),
        waiting_why=f"R6: first answer − start, from {'its own row' if own else first.label}",
        answering=tuple(answering),
    )


def _forward_leg(timed: list[LegFacts]) -> LegFacts | None:
    """R3: an external side B, after an extension leg or from an extension channel such as
    ``Local/101@…;2``, that the far end answered: the PBX forwarded the call (a mobile)."""
    seen_extension = False
    for facts in timed:
        if facts.b_party is Party.EXTENSION:
            seen_extension = True
        elif (
            facts.b_party is Party.EXTERNAL
            and facts.disposition == ANSWERED
            and facts.billsec > 0
            and (seen_extension or facts.a_extension is not None)
        ):
            return facts
    return None


def _forwarded(earliest: LegFacts, forward: LegFacts, extension_legs: list[LegFacts]) -> Outcome:
    """R3/R4/R9: answered on an external number; the extension rung first owns the call."""
    start = earliest.start or datetime.min
    if extension_legs:
        code = extension_legs[0].b_extension
        code_why = f"R4: forwarded; first extension rung, {extension_legs[0].describe()}"
    else:
        code = forward.a_extension
        code_why = f"R4: forwarded from extension channel {forward.channel}"
    answered_at = forward.answer or shift(forward.end, forward.billsec, -1) or start
    return Outcome(
        result="answered",
        result_why=(
            f"R3: forwarded to an external number, {forward.describe()} "
            f"ANSWERED billsec {forward.billsec}"
        ),
        code=code,
        code_why=code_why,
        duration=forward.billsec,
        duration_why=f"R9: billsec of the forwarded {forward.label}",
        waiting=_seconds_between(answered_at, start),
        waiting_why=f"R9: answer of the forwarded {forward.label} − start",
        answering=(forward,),
    )


def _unanswered(timed: list[LegFacts], extension_legs: list[LegFacts]) -> Outcome:
    earliest = timed[0]
    start = earliest.start or datetime.min
    last_end = max(
        (f.end for f in timed if f.uniqueid == earliest.uniqueid and f.end is not None),
        default=start,
    )
    dispositions = {f.disposition for f in extension_legs}
    if dispositions == {BUSY}:
        result, result_why = "busy", "R3: every extension leg is BUSY"
    elif dispositions and dispositions <= FAILED_LIKE:
        result, result_why = "failed", "R3: every extension leg is FAILED or CONGESTION"
    elif extension_legs:
        result, result_why = "no answer", "R3: no extension leg answered"
    else:
        result, result_why = "no answer", "R3: no extension was rung (9.4)"
    first_rung = extension_legs[0] if extension_legs else None
    return Outcome(
        result=result,
        result_why=result_why,
        code=first_rung.b_extension if first_rung else None,
        code_why=(
            f"R4: first extension rung, {first_rung.describe()}"
            if first_rung
            else "R4: no extension was rung"
        ),
        duration=0,
        duration_why="R6: not answered",
        waiting=_seconds_between(last_end, start),
        waiting_why="R6: latest end of the caller's legs − start",
        answering=(),
    )


def _outbound(timed: list[LegFacts]) -> tuple[Outcome, LegFacts]:
    """R3, R4, R6 for ``out``; also returns the external leg whose ``dst`` is the phone.
    Without any external leg (``outbound_cnum`` said out) every leg is a candidate."""
    external = [f for f in timed if f.b_party is Party.EXTERNAL] or timed
    answered = next((f for f in external if f.disposition == ANSWERED and f.billsec > 0), None)
    decider = answered or external[-1]
    if answered is not None:
        result, result_why = "answered", f"R3: {answered.describe()} ANSWERED"
    elif decider.disposition == BUSY:
        result, result_why = "busy", f"R3: last external {decider.describe()} BUSY"
    elif decider.disposition in FAILED_LIKE:
        result = "failed"
        result_why = f"R3: last external {decider.describe()} {decider.disposition}"
    else:
        result = "no answer"
        result_why = f"R3: last external {decider.describe()} {decider.disposition or '-'}"
    caller = next((f for f in timed if f.a_extension is not None), None)
    return (
        Outcome(
            result=result,
            result_why=result_why,
            code=caller.a_extension if caller else None,
            code_why=(
                f"R4: originating extension, {caller.a_label} of {caller.label}"
                if caller
                else "R4: no extension placed the call"
            ),
            duration=answered.billsec if answered else 0,
            duration_why=(
                f"R6: billsec of the answered {answered.label}" if answered else "R6: not answered"
            ),
            waiting=0,
            waiting_why="R6: not sent for out calls",
            answering=(answered,) if answered else (),
        ),
        decider,
    )


def _caller_phone(earliest: LegFacts, ctx: Context) -> tuple[PhoneResult, str]:
    """R5 ``in``: ``src``, else the number inside ``clid``."""
    src = earliest.src
    phone = ctx.phone(src)
    if phone.usable:
        return phone, f"R5: src {src!r} of {earliest.label}; {phone.reason}"
    clid = earliest.clid
    number = unwrap_clid(clid)
    if number:
        from_clid = ctx.phone(number)
        why = f"R5: src {src!r} ({phone.reason}); clid {clid!r}; {from_clid.reason}"
        return from_clid, why
    return phone, f"R5: src {src!r} of {earliest.label}; {phone.reason}"


def _dialled_phone(decider: LegFacts, ctx: Context) -> tuple[PhoneResult, str]:
    """R5 ``out``: ``dst`` of the external leg, with N0 dial prefixes."""
    dst = decider.dst
    phone = ctx.phone(dst, outbound=True)
    return phone, f"R5: dst {dst!r} of {decider.label}; {phone.reason}"
