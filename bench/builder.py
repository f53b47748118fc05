"""Call builder throughput on one core: legs per second of CPU time, pages as the engine uses."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sync.calls.builder import build_calls
from sync.calls.demo_cdr import generate_legs
from sync.calls.options import BuildOptions

PAGE = 5000


def measure(n_calls: int = 100_000, repeat: int = 3) -> dict[str, float]:
    start = datetime(2026, 3, 2, 8, 0, 0)
    legs = list(generate_legs(n_calls, start=start, seed=1))
    options = BuildOptions(
        country="BY",
        source_timezone="Europe/Minsk",
        recording_url="https://pbx.example.com/rec/{date}/{recordingfile}",
    )
    now = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=60)
    best = 0.0
    for _ in range(repeat):
        began = time.process_time()
        for i in range(0, len(legs), PAGE):
            build_calls(legs[i : i + PAGE], options, now)
        elapsed = time.process_time() - began
        best = max(best, len(legs) / elapsed)
    return {
        "builder_legs": float(len(legs)),
        "builder_legs_per_s": round(best),
        "reference_loop_s": reference_loop(),
    }


def reference_loop() -> float:
    """CPU seconds of 10 M integer additions (best of three): how fast this core is right
    now, so a low builder figure on a loaded or slow VM can be told from a regression."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - began)
    return round(best, 3)


if __name__ == "__main__":
    print(measure())
