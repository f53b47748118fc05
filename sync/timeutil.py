"""Time conventions in one place.

Our own tables hold naive UTC. The PBX log holds naive wall time in ``source.timezone``.
Converting local -> UTC resolves an ambiguous (DST fall-back) time to its first occurrence and
a non-existent (spring-forward) time with the offset before the change (``fold=0``); that only
widens a read window by an hour at most, never narrows it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


Clock = Callable[[], datetime]
"""Naive UTC now; the engine takes one so that tests move time instead of waiting for it."""


def utcnow() -> datetime:
    """Naive UTC now, as stored in our tables."""
    return datetime.now(UTC).replace(tzinfo=None)


def local_to_utc(local: datetime, tz: str) -> datetime:
    return local.replace(tzinfo=zone(tz), fold=0).astimezone(UTC).replace(tzinfo=None)


def utc_to_local(utc: datetime, tz: str) -> datetime:
    return utc.replace(tzinfo=UTC).astimezone(zone(tz)).replace(tzinfo=None)


def aware(utc_naive: datetime) -> datetime:
    return utc_naive.replace(tzinfo=UTC)
