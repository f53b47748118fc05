"""Report periods and parameters: local days of the tenant's zone, ``--to`` inclusive."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("today", "yesterday", "this-week", "last-week", "this-month", "last-month")
ATTRIBUTION_WINDOWS = (timedelta(days=1), timedelta(days=7), timedelta(days=30))
_DURATION = re.compile(r"(\d+)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or bare seconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (examples: 30m, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def duration_text(value: timedelta) -> str:
    """The shortest exact spelling: 86400 s -> ``1d``, 5400 s -> ``90m``."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def named_period(name: str, today: date) -> tuple[date, date]:
    """First and last local day of ``--period NAME`` as seen on ``today``."""
    if name == "today":
        return today, today
    if name == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    monday = today - timedelta(days=today.weekday())
    if name == "this-week":
        return monday, today
    if name == "last-week":
        return monday - timedelta(days=7), monday - timedelta(days=1)
    first = today.replace(day=1)
    if name == "this-month":
        return first, today
    if name == "last-month":
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"unknown period {name!r} (one of {', '.join(PERIODS)})")


@dataclass(frozen=True)
class Period:
    """Local days ``first``..``last`` (inclusive) in ``timezone``: [first 00:00, last+1 00:00)."""

    first: date
    last: date
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def midnight_utc(self, day: date) -> datetime:
        """Local midnight of ``day`` as naive UTC (zoneinfo: DST and half-hour zones)."""
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return local.astimezone(UTC).replace(tzinfo=None)

    @property
    def start_utc(self) -> datetime:
        return self.midnight_utc(self.first)

    @property
    def end_utc(self) -> datetime:
        return self.midnight_utc(self.last + timedelta(days=1))

    def days(self) -> list[date]:
        count = (self.last - self.first).days + 1
        return [self.first + timedelta(days=i) for i in range(count)]

    def hours_in(self, day: date) -> int:
        """23, 24 or 25: the length of a local day (DST switches)."""
        span = self.midnight_utc(day + timedelta(days=1)) - self.midnight_utc(day)
        return round(span.total_seconds() / 3600)

    def local(self, utc_naive: datetime) -> datetime:
        return utc_naive.replace(tzinfo=UTC).astimezone(self.zone)

    def iso(self, utc_naive: datetime) -> str:
        """ISO 8601 with the tenant zone's offset, seconds precision."""
        return self.local(utc_naive).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Parameters:
    """The thresholds of analytics.md §E; printed in every format."""

    sl: int = 20
    sl_buckets: tuple[int, ...] = (15, 30, 45, 60, 75, 90)
    short: int = 5
    callback_window: timedelta = timedelta(hours=24)
    repeat: timedelta = timedelta(days=7)
    attribution: timedelta = timedelta(days=1)
    responsible: str = "first"
    manager: str | None = None
    data_start: str | None = None
    windows: tuple[timedelta, ...] = field(default=ATTRIBUTION_WINDOWS)

    def all_windows(self) -> tuple[timedelta, ...]:
        """The chosen attribution window and the 1 d / 7 d / 30 d columns, ascending."""
        return tuple(sorted({self.attribution, *self.windows}))

    def lookahead(self) -> timedelta:
        """How far past the period's end calls and orders are read (callbacks, FCR, orders)."""
        return max(self.callback_window, self.repeat, *self.all_windows())

    def as_json(self) -> dict[str, object]:
        return {
            "sl_seconds": self.sl,
            "sl_buckets_seconds": list(self.sl_buckets),
            "short_abandon_seconds": self.short,
            "callback_window_seconds": int(self.callback_window.total_seconds()),
            "repeat_window_seconds": int(self.repeat.total_seconds()),
            "attribution_seconds": int(self.attribution.total_seconds()),
            "attribution_windows_seconds": [int(w.total_seconds()) for w in self.all_windows()],
            "responsible": self.responsible,
            "manager": self.manager,
            "new_lookback": "all data",
            "data_start": self.data_start,
        }
