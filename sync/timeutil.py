"""Time conventions and the one local ↔ UTC implementation.

Our own tables hold naive UTC. The PBX log holds naive wall time in ``source.timezone``; call
dates go to the CRM as naive wall time in the tenant's zone (R7). A naive time in a zone with
DST can be ambiguous (fall back: it happens twice) or missing (spring forward: it never
happens). Both resolve like zoneinfo's ``fold=0``: the first occurrence, or the offset in force
before the transition. For a read window that only widens it by an hour at most, never narrows
it; the call builder also gets a note to log.

``ZoneClock`` memoises offsets per quarter hour (every modern transition falls on one; a
quarter with a transition inside is never cached), because building aware datetimes per leg
would cost more than all the call rules together. ``local_to_utc`` and ``utc_to_local`` are the
same arithmetic for callers that convert one value at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = [
    "Clock",
    "ZoneClock",
    "aware",
    "format_wall",
    "local_to_utc",
    "to_wall",
    "utc_to_local",
    "utcnow",
    "zone",
    "zone_clock",
]

_QUARTER_END = timedelta(minutes=14, seconds=59)
_MAX_CACHED = 200_000

_Bucket = tuple[int, int, int, int, int]
T = TypeVar("T")


def _bucket(moment: datetime) -> _Bucket:
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute // 15)


def _quarter_start(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def _memoised(cache: dict[_Bucket, T], moment: datetime, measure: Callable[[datetime], T]) -> T:
    """``measure(moment)``, cached per quarter hour when the whole quarter measures the same."""
    key = _bucket(moment)
    cached = cache.get(key)
    if cached is not None:
        return cached
    value = measure(moment)
    start = _quarter_start(moment)
    if measure(start) == value == measure(start + _QUARTER_END):
        if len(cache) > _MAX_CACHED:
            cache.clear()
        cache[key] = value
    return value


class ZoneClock:
    """Conversions for one zone; cheap after the first call in each quarter hour."""

    __slots__ = ("_local", "_utc", "zone")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._local: dict[_Bucket, tuple[timedelta, int]] = {}
        self._utc: dict[_Bucket, timedelta] = {}

    def _local_offset(self, naive: datetime) -> tuple[timedelta, int]:
        """UTC offset (``fold=0``) of a wall time and its DST kind: 0 normal, 1 ambiguous,
        -1 missing."""
        return _memoised(self._local, naive, self._measure)

    def _measure(self, naive: datetime) -> tuple[timedelta, int]:
        first = naive.replace(tzinfo=self.zone, fold=0).utcoffset() or timedelta(0)
        second = naive.replace(tzinfo=self.zone, fold=1).utcoffset() or timedelta(0)
        return first, (first > second) - (first < second)

    def to_utc(self, naive: datetime) -> tuple[datetime | None, str]:
        """Naive UTC of a wall time, and a note when DST made it ambiguous or missing."""
        try:
            offset, kind = self._local_offset(naive)
            utc = naive - offset
        except (OverflowError, ValueError):
            return None, ""
        if not kind:
            return utc, ""
        when = naive.isoformat(" ")
        if kind > 0:
            return utc, f"{when} is ambiguous in {self.zone} (DST ends): read as the first one"
        return utc, f"{when} does not exist in {self.zone} (DST starts): offset before the change"

    def from_utc(self, utc: datetime) -> datetime | None:
        """The zone's naive wall time at a naive UTC instant."""
        try:
            return utc + _memoised(self._utc, utc, self._utc_offset)
        except (OverflowError, ValueError):
            return None

    def _utc_offset(self, utc: datetime) -> timedelta:
        return utc.replace(tzinfo=UTC).astimezone(self.zone).utcoffset() or timedelta(0)


def format_wall(moment: datetime) -> str:
    """``Y-m-d H:i:s``; ``isoformat`` keeps a 4-digit year where ``strftime`` would not."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0)
    return moment.isoformat(" ")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=64)
def zone_clock(name: str) -> ZoneClock:
    """The shared ``ZoneClock`` of a zone name."""
    return ZoneClock(zone(name))


Clock = Callable[[], datetime]
"""Naive UTC now; the engine takes one so that tests move time instead of waiting for it."""


def utcnow() -> datetime:
    """Naive UTC now, as stored in our tables."""
    return datetime.now(UTC).replace(tzinfo=None)


def local_to_utc(local: datetime, tz: str) -> datetime:
    """Naive UTC of a naive wall time in ``tz`` (``fold=0``); OverflowError out of range."""
    utc, _ = zone_clock(tz).to_utc(local)
    if utc is None:
        raise OverflowError(f"{local!r} in {tz} is out of range")
    return utc


def utc_to_local(utc: datetime, tz: str) -> datetime:
    """Naive wall time in ``tz`` at a naive UTC instant; OverflowError out of range."""
    local = zone_clock(tz).from_utc(utc)
    if local is None:
        raise OverflowError(f"{utc!r} UTC is out of range in {tz}")
    return local


def to_wall(moment: datetime, tz: tzinfo) -> datetime | None:
    """An aware moment as naive wall time in ``tz`` (a naive one as it is); ``None`` when
    out of range."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(tz).replace(tzinfo=None)
    except (OverflowError, ValueError):
        return None


def aware(utc_naive: datetime) -> datetime:
    return utc_naive.replace(tzinfo=UTC)
