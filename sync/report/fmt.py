"""Numbers as people read them, shared by the text, CSV and HTML renderers."""

from __future__ import annotations

from datetime import timedelta

from sync.report.period import duration_text


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def secs(value: float | None) -> str:
    """Seconds as ``42 s``, ``3:05`` (min:s) or ``2 h 05 m``; ``—`` when undefined."""
    if value is None:
        return "—"
    total = round(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60}:{total % 60:02d}"
    return f"{total // 3600} h {total % 3600 // 60:02d} m"


def num(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", " ")
    return f"{int(value):,}".replace(",", " ")


def span(seconds: int) -> str:
    """A window as ``24h``, ``7d``, ``90m``."""
    return duration_text(timedelta(seconds=seconds))
