"""Small exact statistics: means, medians and nearest-rank percentiles, None when empty."""

from __future__ import annotations

import math
from collections import Counter


def ratio(part: float, whole: float) -> float | None:
    """A rate 0..1 rounded to 4 places; None (JSON null) when the denominator is 0."""
    return round(part / whole, 4) if whole else None


def mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


def quantile(counts: Counter[int], q: float) -> float | None:
    """Nearest-rank quantile of integer values given as value -> count (p90: q=0.9)."""
    n = sum(counts.values())
    if not n:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return None  # pragma: no cover - unreachable


def median(counts: Counter[int]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count."""
    n = sum(counts.values())
    if not n:
        return None
    ordered = sorted(counts)
    wanted = (n // 2,) if n % 2 else (n // 2 - 1, n // 2)
    found: list[int] = []
    seen = 0
    for value in ordered:
        first, seen = seen, seen + counts[value]
        found += [value for index in wanted if first <= index < seen]
    return sum(found) / len(found)
