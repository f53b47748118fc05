"""The builder's output: one logical call, its upload payload and why each field is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sync.calls.legs import Leg

__all__ = ["Call", "CallStatus"]

CallStatus = Literal["ready", "incomplete", "skipped"]


@dataclass(frozen=True, slots=True)
class Call:
    """One call; ``payload`` is the exact ``calls/upload`` object, only when ``ready``."""

    key: str
    """``linkedid`` (R1 fallback ``uniqueid``); for a ``calls`` row its ``id``."""
    external_id: str
    """``external_id_prefix`` + key (R8)."""
    tenant: str | None
    """``TenantRoute.name``; ``None`` when no tenant matched (R11)."""
    status: CallStatus
    skip_reason: str | None
    """``internal``, ``no number``, ``before start_date``, ``no tenant``,
    ``unknown direction`` or ``malformed: <what>``; only when ``skipped``."""
    payload: dict[str, Any] | None
    started_at: datetime | None
    """Call start, naive in ``source_timezone``."""
    last_end: datetime | None
    """Newest leg end (``end``, or start + duration), naive in ``source_timezone``."""
    explained: tuple[tuple[str, object, str], ...]
    """``(field, value, rule that set it)`` in payload order; formatted by ``rules``."""
    warnings: tuple[str, ...]
    """Things worth a log line: DST resolution, a number kept raw, conflicting duplicates."""
    legs: tuple[Leg, ...]
    """The de-duplicated legs ordered by (start, sequence); legs without a time last."""

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        """``(field, "value — rule that set it")`` for ``explain``. Formatting is deferred:
        only ``explain`` reads it, and a backfill builds calls by the hundred thousand."""
        return tuple(
            (field, f"{value} — {why}" if why else str(value))
            for field, value, why in self.explained
        )
