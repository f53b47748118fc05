"""Everything the call builder needs to know, in one immutable value.

Built from the configuration (``sync.config``) by ``BuildOptions.from_settings``; tests build
it directly. Keeping it apart from the config module keeps the builder free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class TenantRoute:
    """Where a call goes: the tenant whose ``match`` equals the call's tenant column value."""

    name: str
    match: str | None
    """``None``: a single tenant that takes every row."""
    timezone: str = "UTC"
    """The CRM account's zone; call dates are sent in it (R7)."""
    site: str = ""


@dataclass(frozen=True, slots=True)
class ValueSpellings:
    """How a ``calls``-flavor log spells directions and results (``[source.values]``)."""

    inbound: tuple[str, ...] = ("in", "incoming", "inbound")
    outbound: tuple[str, ...] = ("out", "outgoing", "outbound")
    internal: tuple[str, ...] = ("internal", "local")
    answered: tuple[str, ...] = ("answered", "ANSWERED", "completed", "success")
    busy: tuple[str, ...] = ("busy", "BUSY")
    failed: tuple[str, ...] = ("failed", "FAILED", "CONGESTION", "error")
    no_answer: tuple[str, ...] = (
        "no answer",
        "NO ANSWER",
        "noanswer",
        "missed",
        "cancel",
        "CANCEL",
    )


@dataclass(frozen=True, slots=True)
class BuildOptions:
    country: str = "BY"
    extension_pattern: str = r"^\d{2,5}$"
    extension_channel_pattern: str = ""
    trunk_channel_pattern: str = ""
    responsible: Literal["first", "last"] = "first"
    dial_prefixes: tuple[str, ...] = ()
    area_code: str = ""
    """N5: the national destination code put in front of a local number (``3012``)."""
    external_id_prefix: str = ""
    recording_url: str = ""
    source_timezone: str = "UTC"
    settle_seconds: int = 120
    orphan_settle_seconds: int = 1800
    start_date: datetime | None = None
    """Naive, in ``source_timezone``: calls starting before it are never uploaded."""
    tenants: tuple[TenantRoute, ...] = (TenantRoute(name="default", match=None),)
    values: ValueSpellings = field(default_factory=ValueSpellings)
    has_ended_at: bool = True
    """``calls`` flavor: whether the log has an ``ended_at`` column (R10 for call rows)."""
