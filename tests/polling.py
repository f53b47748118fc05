"""Waiting for a condition in tests: poll it, fail naming what was awaited after a generous
deadline. A deadline only keeps a broken test from hanging; it is never a timing goal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], what: str, deadline: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after a generous deadline."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
