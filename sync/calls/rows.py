"""The ``calls`` flavor: a log that already has one row per call (design.md §4 ``[source.values]``).

Nothing is inferred from channels here: the row says the direction, result and extension,
and only the spellings are mapped. Phone, date, recording, tenant and completeness follow the
same rules as CDR legs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync.calls.call import Call
from sync.calls.context import context_for
from sync.calls.draft import Draft, find_tenant, skip_reason
from sync.calls.facts import seconds, shift, text, wall
from sync.calls.legs import CallRow
from sync.calls.options import BuildOptions, TenantRoute
from sync.calls.recording import fill_template, is_http_url

__all__ = ["build_call_row"]


def build_call_row(row: CallRow, options: BuildOptions, now: datetime) -> Call:
    """One ``calls`` row → one call; complete once ``ended_at`` is ``settle_seconds`` old."""
    ctx = context_for(options)
    key = text(row.id)
    draft = Draft(key, ctx)
    tenant, tenant_why = find_tenant((text(row.tenant),), ctx)
    draft.rule("tenant", tenant.name if tenant else "none", tenant_why)
    if not key:
        return draft.finish("skipped", skip_reason="malformed: no id", tenant=tenant)
    started_at = wall(row.started_at, ctx)
    if started_at is None:
        return draft.finish("skipped", skip_reason="malformed: no start time", tenant=tenant)
    duration = seconds(row.duration) or 0
    wait = seconds(row.wait) or 0
    date = draft.date(started_at, tenant) if tenant is not None else ""
    if options.has_ended_at:
        last_end = wall(row.ended_at, ctx)
    else:
        # Out of range: datetime.max cannot be converted, so the call becomes malformed.
        last_end = shift(started_at, wait + duration, 1) or datetime.max
    complete: bool | None = False
    if last_end is None:
        draft.rule("complete", "not yet", "R10: ended_at is NULL, the call is in progress")
    else:
        complete = draft.completeness(last_end, now, orphan=False)
    if complete is None or date is None:
        return draft.finish(
            "skipped",
            skip_reason="malformed: time out of range",
            tenant=tenant,
            started_at=started_at,
        )
    raw_direction = text(row.direction)
    direction = ctx.direction_of.get(raw_direction.casefold())
    draft.rule("type", direction or "unknown", f"[source.values]: direction {raw_direction!r}")
    payload = _payload(draft, row, direction or "in", date, started_at, duration, wait, tenant)
    reason = skip_reason(ctx, tenant, started_at, direction, has_phone=payload["phone"] is not None)
    return draft.conclude(complete, reason, payload, tenant, started_at)


def _payload(
    draft: Draft,
    row: CallRow,
    direction: str,
    date: str,
    started_at: datetime,
    duration: int,
    wait: int,
    tenant: TenantRoute | None,
) -> dict[str, Any]:
    ctx = draft.ctx
    raw_phone = text(row.phone)
    phone = ctx.phone(raw_phone, outbound=direction == "out")
    draft.rule("phone", phone.value or f"none ({phone.kind})", f"R5: {raw_phone!r}; {phone.reason}")
    if phone.kind == "raw":
        draft.warnings.append(f"phone {phone.value} kept raw: {phone.reason}")
    payload: dict[str, Any] = {"date": date, "type": direction, "phone": phone.value}
    code = text(row.extension)
    draft.rule("code", code or "none", "[source.columns] extension")
    if code:
        payload["code"] = code
    raw_result = text(row.result)
    result = ctx.result_of.get(raw_result.casefold(), "unknown")
    draft.rule("result", result, f"[source.values]: result {raw_result!r}")
    payload["result"] = result
    draft.rule("duration", duration, "talk seconds of the row")
    payload["duration"] = duration
    if direction == "in":
        draft.rule("durationWaiting", wait, "wait seconds of the row")
        payload["durationWaiting"] = wait
    payload["externalId"] = draft.external_id
    draft.rule("externalId", draft.external_id, "R8: external_id_prefix + id")
    record_url = _record_url(draft, text(row.recording), started_at)
    if record_url:
        payload["recordUrl"] = record_url
    if tenant is not None and tenant.site:
        draft.rule("site", tenant.site, f"tenant {tenant.name} site")
        payload["site"] = tenant.site
    return payload


def _record_url(draft: Draft, recording: str, started_at: datetime) -> str | None:
    """An http(s) value as is; a file name through ``pbx.recording_url``."""
    template = draft.ctx.options.recording_url
    if not recording:
        return None
    if recording.lower().startswith(("http://", "https://")):
        url, why = recording, "R9: absolute URL of the row"
    elif template:
        url = fill_template(
            template,
            recordingfile=recording,
            uniqueid=draft.key,
            linkedid=draft.key,
            day=started_at,
        )
        why = f"R9: {recording} through recording_url, {{date}} from started_at"
    else:
        draft.rule("recordUrl", "none", f"R9: file {recording} but no recording_url template")
        return None
    if not is_http_url(url):
        draft.warnings.append(f"R9: {url!r} is not an http(s) URL; recordUrl omitted")
        return None
    draft.rule("recordUrl", url, why)
    return url
