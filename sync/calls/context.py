"""Option-derived state (compiled regexes, zones, lookup tables), built once per ``BuildOptions``.

The builder runs per call at tens of thousands of calls a second; compiling patterns or
loading zones per call would dominate it. ``BuildOptions`` is frozen and hashable, so the
context is memoised on it; a one-entry identity check in front skips even the hashing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from sync.calls.options import BuildOptions, TenantRoute
from sync.calls.recording import template_needs_check
from sync.phones import PhoneResult, normalize_phone
from sync.settings import DIRECTION_KEYS, RESULT_KEYS
from sync.timeutil import zone_clock

__all__ = ["DEFAULT_EXTENSION_CHANNEL", "Context", "context_for"]

DEFAULT_EXTENSION_CHANNEL = r"^(?:PJSIP|SIP|IAX2|Local)/([^-@;]+)[-@;]"
"""Spec 9.1: ``<tech>/<ext>`` followed by ``-``, ``@`` or ``;``; ``<ext>`` is then checked
against ``extension_pattern``."""


class Context:
    """Everything ``BuildOptions`` implies, precomputed. Raises on an invalid regex or zone:
    configuration loading validates those, the builder itself only judges legs."""

    __slots__ = (
        "_now",
        "area_code",
        "catch_all",
        "check_record_url",
        "custom_extension_channel",
        "dial_prefixes",
        "direction_of",
        "extension",
        "extension_channel",
        "options",
        "orphan_settle",
        "result_of",
        "settle",
        "source",
        "start_date",
        "tenant_by_match",
        "tenant_clocks",
        "trunk_channel",
    )

    def __init__(self, options: BuildOptions) -> None:
        self.options = options
        self.extension = re.compile(options.extension_pattern)
        self.custom_extension_channel = bool(options.extension_channel_pattern)
        self.extension_channel = re.compile(
            options.extension_channel_pattern or DEFAULT_EXTENSION_CHANNEL
        )
        self.trunk_channel = (
            re.compile(options.trunk_channel_pattern) if options.trunk_channel_pattern else None
        )
        self.dial_prefixes = tuple(p for p in options.dial_prefixes if p)
        self.area_code = options.area_code
        self.check_record_url = template_needs_check(options.recording_url)
        self.source = zone_clock(options.source_timezone)
        self.tenant_clocks = {t.name: zone_clock(t.timezone) for t in options.tenants}
        self.tenant_by_match: dict[str, TenantRoute] = {}
        self.catch_all: TenantRoute | None = None
        for tenant in options.tenants:
            if tenant.match is None:
                self.catch_all = self.catch_all or tenant
            else:
                self.tenant_by_match.setdefault(tenant.match.strip(), tenant)
        self.settle = timedelta(seconds=max(options.settle_seconds, 0))
        self.orphan_settle = timedelta(seconds=max(options.orphan_settle_seconds, 0))
        self.start_date = _naive_in(options.start_date, self.source.zone)
        self._now: tuple[datetime, datetime] | None = None
        values = options.values
        self.direction_of = _spelling_map(tuple((k, values.spellings(k)) for k in DIRECTION_KEYS))
        self.result_of = _spelling_map(tuple((k, values.spellings(k)) for k in RESULT_KEYS))

    def phone(self, raw: str | None, *, outbound: bool = False, memo: bool = True) -> PhoneResult:
        """N0–N5 with this configuration; N0 (dial prefixes) only for an ``out`` number.
        ``memo=False`` for a number seen once (a live call's): not kept in the memo."""
        return normalize_phone(
            raw,
            country=self.options.country,
            extension_pattern=self.extension,
            dial_prefixes=self.dial_prefixes if outbound else (),
            area_code=self.area_code,
            memo=memo,
        )

    def naive_utc(self, now: datetime) -> datetime:
        """``now`` as naive UTC (a naive ``now`` is taken as UTC); memoised for a batch."""
        last = self._now
        if last is not None and last[0] is now:
            return last[1]
        utc = now if now.tzinfo is None else now.astimezone(UTC).replace(tzinfo=None)
        self._now = (now, utc)
        return utc


def _naive_in(moment: datetime | None, zone: tzinfo) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(zone).replace(tzinfo=None)


def _spelling_map(groups: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, str]:
    """Spellings matched case-insensitively, so ``Answered`` still means answered; a
    spelling listed twice keeps its first meaning."""
    mapping: dict[str, str] = {}
    for canonical, spellings in groups:
        for spelling in spellings:
            mapping.setdefault(spelling.strip().casefold(), canonical)
    return mapping


_last: tuple[BuildOptions, Context] | None = None


@lru_cache(maxsize=16)
def _build(options: BuildOptions) -> Context:
    return Context(options)


def context_for(options: BuildOptions) -> Context:
    """The memoised context of ``options``."""
    global _last
    if _last is not None and _last[0] is options:
        return _last[1]
    context = _build(options)
    _last = (options, context)
    return context
