"""Cutting a sequence into slices: upload batches, ``IN (...)`` lists of bounded length."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_CHUNK = 500
"""Values per ``IN (...)`` list: well under every driver's parameter limit."""


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items, in order."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
