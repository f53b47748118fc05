"""The settings the pure layers read: ``[source]`` and ``[pbx]``, typed, with their defaults.

``sync.config`` reads the TOML file into these; the call builder's ``BuildOptions`` and the
source readers take their defaults from here as well, so every default is stated once and the
pure layers never import the file reader. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal, get_args

__all__ = [
    "DEFAULT_ZONE",
    "DIRECTION_KEYS",
    "FLAVORS",
    "RESPONSIBLE",
    "RESULT_KEYS",
    "VALUE_KEYS",
    "Flavor",
    "PbxSettings",
    "Responsible",
    "SourceSettings",
    "ValueSpellings",
]

DEFAULT_ZONE: Final = "UTC"
"""The zone of the call log (``[source] timezone``) and of a CRM account (``[[tenants]]
timezone``) when the file does not say."""
Flavor = Literal["asterisk", "freepbx", "calls"]
FLAVORS: Final = get_args(Flavor)
Responsible = Literal["first", "last"]
"""Which answering extension owns a transferred call (R4)."""
RESPONSIBLE: Final = get_args(Responsible)


VALUE_KEYS: Final = {
    "in": "inbound",
    "out": "outbound",
    "internal": "internal",
    "answered": "answered",
    "busy": "busy",
    "failed": "failed",
    "no answer": "no_answer",
}
"""The one table of ``[source.values]``: each key is the direction or result it stands for
(``type`` and ``result`` of the upload), mapped to its ``ValueSpellings`` field."""
DIRECTION_KEYS: Final = ("in", "out", "internal")
RESULT_KEYS: Final = ("answered", "busy", "failed", "no answer")


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

    def spellings(self, key: str) -> tuple[str, ...]:
        """The spellings of one ``VALUE_KEYS`` key (``"no answer"`` -> ``no_answer``)."""
        spelled: tuple[str, ...] = getattr(self, VALUE_KEYS[key])
        return spelled


@dataclass(frozen=True)
class SourceSettings:
    url: str
    table: str = "cdr"
    flavor: Flavor = "asterisk"
    timezone: str = DEFAULT_ZONE
    settle_seconds: int = 120
    orphan_settle_seconds: int = 1800
    lookback_hours: float = 24.0
    tenant_column: str = ""
    start_date: datetime | None = None
    page_size: int = 5000
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    values: ValueSpellings = field(default_factory=ValueSpellings)


@dataclass(frozen=True)
class PbxSettings:
    country: str = "BY"
    extension_pattern: str = r"^\d{2,5}$"
    extension_channel_pattern: str = ""
    trunk_channel_pattern: str = ""
    responsible: Responsible = "first"
    dial_prefixes: tuple[str, ...] = ()
    area_code: str = ""
    external_id_prefix: str = ""
    recording_url: str = ""
