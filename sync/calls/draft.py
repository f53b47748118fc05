"""Shared steps of both builders: tenant (R11), date (R7), completeness (R10), the verdict.

Skip precedence, the same for legs and ``calls`` rows:
``malformed`` (decided first: it can never become uploadable) → ``incomplete`` (not a skip:
wait for more legs) → ``no tenant`` → ``before start_date`` → ``unknown direction`` →
``internal`` → ``no number``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sync.calls.call import Call, CallStatus
from sync.calls.context import Context
from sync.calls.legs import Leg
from sync.calls.options import TenantRoute
from sync.timeutil import format_wall

__all__ = ["Draft", "find_tenant", "skip_reason"]

FUTURE_LIMIT = timedelta(days=1)
"""A newest leg end further ahead than this makes the call malformed (time out of range)."""


def find_tenant(values: Iterable[str], ctx: Context) -> tuple[TenantRoute | None, str]:
    """R11: the first non-empty tenant value selects the tenant whose ``match`` equals it."""
    for value in values:
        if value:
            tenant = ctx.tenant_by_match.get(value)
            if tenant is not None:
                return tenant, f"R11: tenant value {value!r}"
            if ctx.catch_all is not None:
                return ctx.catch_all, f"R11: tenant value {value!r} matches only the catch-all"
            return None, f"R11: tenant value {value!r} matches no tenant"
    if ctx.catch_all is not None:
        return ctx.catch_all, "R11: the tenant without match takes every row"
    return None, "R11: no tenant value on any leg"


def skip_reason(
    ctx: Context,
    tenant: TenantRoute | None,
    started_at: datetime,
    direction: str | None,
    *,
    has_phone: bool,
) -> str | None:
    """The first skip reason of a complete, well-formed call, in the documented precedence."""
    if tenant is None:
        return "no tenant"
    if ctx.start_date is not None and started_at < ctx.start_date:
        return "before start_date"
    if direction is None:
        return "unknown direction"
    if direction == "internal":
        return "internal"
    if not has_phone:
        return "no number"
    return None


class Draft:
    """A call under construction: the rules and warnings gathered so far."""

    __slots__ = ("ctx", "external_id", "key", "last_end", "legs", "rules", "warnings")

    def __init__(self, key: str, ctx: Context, legs: tuple[Leg, ...] = ()) -> None:
        self.key = key
        self.ctx = ctx
        self.external_id = ctx.options.external_id_prefix + key
        self.legs = legs
        self.last_end: datetime | None = None
        self.rules: list[tuple[str, object, str]] = [("status", "", "")]
        self.warnings: list[str] = []

    def rule(self, field: str, value: object, why: str) -> None:
        """Record why ``field`` is ``value``; formatted only when read (``Call.rules``)."""
        self.rules.append((field, value, why))

    def completeness(self, last_end: datetime, now: datetime, *, orphan: bool) -> bool | None:
        """R10: the newest end at least the settle time ago; ``None`` when out of range."""
        self.last_end = last_end
        ctx = self.ctx
        end_utc, _ = ctx.source.to_utc(last_end)
        # A leg "ending" over a day from now is a broken clock or row, not a call in progress:
        # waiting for it would hold the cursor (and so the read window) back for ever.
        if end_utc is None or end_utc - ctx.naive_utc(now) > FUTURE_LIMIT:
            return None
        settle: timedelta = ctx.orphan_settle if orphan else ctx.settle
        age = ctx.naive_utc(now) - end_utc
        complete = age >= settle
        which = "no originating leg, orphan_settle_seconds" if orphan else "settle_seconds"
        self.rule(
            "complete",
            "yes" if complete else "not yet",
            f"R10: newest leg ended {int(age.total_seconds())} s ago; "
            f"{which} = {int(settle.total_seconds())}",
        )
        return complete

    def date(self, started_at: datetime, tenant: TenantRoute) -> str | None:
        """R7: the start converted to the tenant's zone; DST resolution becomes a warning."""
        ctx = self.ctx
        utc, note = ctx.source.to_utc(started_at)
        local = ctx.tenant_clocks[tenant.name].from_utc(utc) if utc is not None else None
        if note:
            self.warnings.append(note)
        if local is None:
            return None
        value = format_wall(local)
        source_zone = ctx.options.source_timezone
        how = (
            f"R7: start in {source_zone}, the tenant's zone too"
            if source_zone == tenant.timezone
            else f"R7: start {format_wall(started_at)} {source_zone} → {tenant.timezone}"
        )
        self.rule("date", value, how + (f" ({note})" if note else ""))
        return value

    def conclude(
        self,
        complete: bool,
        reason: str | None,
        payload: dict[str, Any],
        tenant: TenantRoute | None,
        started_at: datetime,
    ) -> Call:
        """Incomplete before skipped before ready: the one precedence both flavors follow."""
        if not complete:
            return self.finish("incomplete", tenant=tenant, started_at=started_at)
        if reason is not None:
            return self.finish("skipped", skip_reason=reason, tenant=tenant, started_at=started_at)
        return self.finish("ready", payload=payload, tenant=tenant, started_at=started_at)

    def finish(
        self,
        status: CallStatus,
        *,
        skip_reason: str | None = None,
        payload: dict[str, Any] | None = None,
        tenant: TenantRoute | None = None,
        started_at: datetime | None = None,
    ) -> Call:
        self.rules[0] = ("status", f"skipped: {skip_reason}" if skip_reason else status, "")
        return Call(
            key=self.key,
            external_id=self.external_id,
            tenant=tenant.name if tenant is not None else None,
            status=status,
            skip_reason=skip_reason,
            payload=payload if status == "ready" else None,
            started_at=started_at,
            last_end=self.last_end,
            explained=tuple(self.rules),
            warnings=tuple(self.warnings),
            legs=self.legs,
        )
