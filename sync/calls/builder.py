"""CDR legs → one RetailCRM call each (spec/asterisk-cdr.md §9), as pure functions.

``build_calls`` groups legs by R1 and builds each group; ``build_call`` applies R1–R11 to one
group; ``build_call_row`` handles the ``calls`` flavor. None of them raises on any leg
content: whatever cannot become a call becomes ``skipped`` with ``malformed: <what>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sync.calls.call import Call
from sync.calls.context import Context, context_for
from sync.calls.draft import Draft, find_tenant, skip_reason
from sync.calls.facts import LegFacts, prepare, text
from sync.calls.legs import CallRow, Leg
from sync.calls.options import BuildOptions, TenantRoute
from sync.calls.recording import file_date, fill_template, is_http_url, pick_recording
from sync.calls.rows import build_call_row
from sync.calls.rules import Derivation, derive

__all__ = ["Call", "build_call", "build_call_row", "build_calls", "build_page", "group_key"]

_ORDER = attrgetter("order")


def group_key(leg: Leg) -> str:
    """R1: ``linkedid``, or ``uniqueid`` when the linkedid is empty ('' when both are)."""
    return text(leg.linkedid) or text(leg.uniqueid)


def build_calls(legs: Iterable[Leg], options: BuildOptions, now: datetime) -> list[Call]:
    """One call per R1 group, in order of each group's first leg."""
    ctx = context_for(options)
    groups: dict[str, list[LegFacts]] = {}
    for leg in legs:
        facts = prepare(leg, ctx)
        group = groups.get(facts.group)
        if group is None:
            groups[facts.group] = [facts]
        else:
            group.append(facts)
    return [_build(key, group, ctx, now) for key, group in groups.items()]


def build_page(page: Sequence[Leg | CallRow], options: BuildOptions, now: datetime) -> list[Call]:
    """Calls from one page of a source: legs grouped by linkedid, or one row per call.

    ``now`` is naive UTC (our tables' convention); it decides which calls have settled.
    """
    now_aware = now.replace(tzinfo=UTC)
    legs = [item for item in page if isinstance(item, Leg)]
    calls = build_calls(legs, options, now_aware) if legs else []
    calls += [build_call_row(r, options, now_aware) for r in page if isinstance(r, CallRow)]
    return calls


def build_call(legs: Sequence[Leg], options: BuildOptions, now: datetime) -> Call:
    """R1–R11 for the legs of one call; ``now`` (aware UTC) decides completeness (R10)."""
    ctx = context_for(options)
    facts = [prepare(leg, ctx) for leg in legs]
    keys = {f.group for f in facts} - {""}
    return _build(min(keys) if keys else "", facts, ctx, now)


def _build(key: str, facts: list[LegFacts], ctx: Context, now: datetime) -> Call:
    facts, conflicts = _dedup(facts)
    if len(facts) > 1:
        facts.sort(key=_ORDER)
    draft = Draft(key, ctx, tuple(f.leg for f in facts))
    if conflicts:
        draft.warnings.append(f"R1: {conflicts} differing rows share one row identity")
    tenant, tenant_why = find_tenant([f.tenant for f in facts], ctx)
    draft.rule("tenant", tenant.name if tenant else "none", tenant_why)
    if not key:
        return draft.finish(
            "skipped", skip_reason="malformed: no linkedid or uniqueid", tenant=tenant
        )
    timed = [f for f in facts if f.start is not None]
    if not timed:
        return draft.finish(
            "skipped", skip_reason="malformed: no leg with a start time", tenant=tenant
        )
    if len(timed) < len(facts):
        draft.warnings.append(f"{len(facts) - len(timed)} leg(s) without a usable time ignored")
    # R10: the originating channel's leg; one without a time still proves it was written.
    orphan = key not in {f.uniqueid for f in facts}
    return _assemble(draft, timed, tenant, now, orphan=orphan)


def _dedup(facts: list[LegFacts]) -> tuple[list[LegFacts], int]:
    """R1: identical rows count once. Differing rows with one identity keep the smallest
    ``repr``, so the choice does not depend on the order the rows arrived in."""
    if len(facts) == 1:
        return facts, 0
    kept: dict[tuple[object, ...], LegFacts] = {}
    conflicts = 0
    for f in facts:
        previous = kept.get(f.identity)
        if previous is None:
            kept[f.identity] = f
        elif previous.leg != f.leg:
            conflicts += 1
            kept[f.identity] = min(previous, f, key=lambda item: repr(item.leg))
    return list(kept.values()), conflicts


def _assemble(
    draft: Draft, timed: list[LegFacts], tenant: TenantRoute | None, now: datetime, *, orphan: bool
) -> Call:
    ctx = draft.ctx
    started_at = timed[0].start
    assert started_at is not None  # timed legs have a start
    last_end = max(f.end or started_at for f in timed)
    complete = draft.completeness(last_end, now, orphan=orphan)
    date = draft.date(started_at, tenant) if tenant is not None else ""
    if complete is None or date is None:
        return draft.finish(
            "skipped",
            skip_reason="malformed: time out of range",
            tenant=tenant,
            started_at=started_at,
        )
    derivation = derive(timed, ctx)
    payload = _payload(draft, derivation, date, tenant, timed, started_at)
    reason = skip_reason(
        ctx, tenant, started_at, derivation.direction, has_phone=derivation.phone.usable
    )
    return draft.conclude(complete, reason, payload, tenant, started_at)


def _payload(
    draft: Draft,
    derivation: Derivation,
    date: str,
    tenant: TenantRoute | None,
    timed: list[LegFacts],
    started_at: datetime,
) -> dict[str, Any]:
    """The ``calls/upload`` object in field order; every field also gets its rule."""
    outcome = derivation.outcome
    phone = derivation.phone
    direction = derivation.direction
    draft.rule("type", direction, derivation.direction_why)
    draft.rule("phone", phone.value or f"none ({phone.kind})", derivation.phone_why)
    if phone.kind == "raw":
        draft.warnings.append(f"phone {phone.value} kept raw: {phone.reason}")
    payload: dict[str, Any] = {"date": date, "type": direction, "phone": phone.value}
    draft.rule("code", outcome.code or "none", outcome.code_why)
    if outcome.code:
        payload["code"] = outcome.code
    draft.rule("result", outcome.result, outcome.result_why)
    payload["result"] = outcome.result
    draft.rule("duration", outcome.duration, outcome.duration_why)
    payload["duration"] = outcome.duration
    if direction != "out":
        draft.rule("durationWaiting", outcome.waiting, outcome.waiting_why)
        payload["durationWaiting"] = outcome.waiting
    draft.rule("externalId", draft.external_id, "R8: external_id_prefix + linkedid")
    payload["externalId"] = draft.external_id
    record_url = _record_url(draft, outcome.answering, timed, started_at)
    if record_url:
        payload["recordUrl"] = record_url
    if direction != "out":
        external_phone = _external_phone(draft, timed)
        if external_phone:
            payload["externalPhone"] = external_phone
    if tenant is not None and tenant.site:
        draft.rule("site", tenant.site, f"tenant {tenant.name} site")
        payload["site"] = tenant.site
    return payload


def _record_url(
    draft: Draft, answering: Iterable[LegFacts], timed: list[LegFacts], started_at: datetime
) -> str | None:
    """R9."""
    ctx = draft.ctx
    template = ctx.options.recording_url
    picked = pick_recording(answering, timed) if template else None
    if picked is None:
        why = "no leg carries a recording" if template else "no recording_url template"
        draft.rule("recordUrl", "none", f"R9: {why}")
        return None
    facts, name = picked
    day = file_date(name)
    url = fill_template(
        template,
        recordingfile=name,
        uniqueid=facts.uniqueid,
        linkedid=draft.key,
        day=day or started_at,
    )
    if ctx.check_record_url and not is_http_url(url):
        draft.warnings.append(f"R9: {url!r} is not an http(s) URL; recordUrl omitted")
        return None
    source = "file name" if day else "call start"
    draft.rule("recordUrl", url, f"R9: {name} of {facts.label}, {{date}} from the {source}")
    return url


def _external_phone(draft: Draft, timed: list[LegFacts]) -> str | None:
    """FreePBX ``did`` of an inbound call, normalised; omitted when it is no number."""
    for facts in timed:
        if facts.did:
            phone = draft.ctx.phone(facts.did)
            draft.rule("externalPhone", phone.value or "none", f"did {facts.did!r}; {phone.reason}")
            return phone.value
    return None
