"""Everything the call builder needs to know, in one immutable value.

Built from the configuration by ``sync.config.Settings.build_options``; tests build it
directly. Its defaults are those of the ``[pbx]`` and ``[source]`` settings (``sync.settings``),
never restated here. Keeping it apart from the config reader keeps the builder free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sync.settings import DEFAULT_ZONE, PbxSettings, Responsible, SourceSettings, ValueSpellings

__all__ = ["BuildOptions", "TenantRoute", "ValueSpellings"]

_PBX = PbxSettings()
_SOURCE = SourceSettings(url="")


@dataclass(frozen=True, slots=True)
class TenantRoute:
    """Where a call goes: the tenant whose ``match`` equals the call's tenant column value."""

    name: str
    match: str | None
    """``None``: a single tenant that takes every row."""
    timezone: str = DEFAULT_ZONE
    """The CRM account's zone; call dates are sent in it (R7)."""
    site: str = ""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    country: str = _PBX.country
    extension_pattern: str = _PBX.extension_pattern
    extension_channel_pattern: str = _PBX.extension_channel_pattern
    trunk_channel_pattern: str = _PBX.trunk_channel_pattern
    responsible: Responsible = _PBX.responsible
    dial_prefixes: tuple[str, ...] = _PBX.dial_prefixes
    area_code: str = _PBX.area_code
    """N5: the national destination code put in front of a local number (``3012``)."""
    external_id_prefix: str = _PBX.external_id_prefix
    recording_url: str = _PBX.recording_url
    source_timezone: str = _SOURCE.timezone
    settle_seconds: int = _SOURCE.settle_seconds
    orphan_settle_seconds: int = _SOURCE.orphan_settle_seconds
    start_date: datetime | None = _SOURCE.start_date
    """Naive, in ``source_timezone``: calls starting before it are never uploaded."""
    tenants: tuple[TenantRoute, ...] = (TenantRoute(name="default", match=None),)
    values: ValueSpellings = field(default_factory=ValueSpellings)
    has_ended_at: bool = True
    """``calls`` flavor: whether the log has an ``ended_at`` column (R10 for call rows)."""
