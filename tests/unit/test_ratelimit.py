"""The token bucket on a fake clock: the rate and the burst bound, without waiting."""

from __future__ import annotations

from sync.crm.ratelimit import TokenBucket, burst_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def sends(rate: float, requests: int) -> list[float]:
    """When each of ``requests`` back-to-back callers is let through."""
    clock = Clock()
    bucket = TokenBucket(rate, burst_for(rate), clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(requests):
        bucket.acquire()
        stamps.append(clock.now)
    return stamps


def test_a_long_run_holds_the_rate() -> None:
    stamps = sends(20, 101)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 20 * 0.9 <= rate <= 20 * 1.1


def test_any_one_second_window_holds_rate_plus_burst() -> None:
    stamps = sends(20, 200)
    busiest = max(sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps)
    assert busiest <= 20 + burst_for(20)


def test_an_idle_bucket_lets_its_burst_through_at_once() -> None:
    stamps = sends(40, 4)
    assert stamps[:4] == [0.0] * 4  # burst of 4 at 40/s
    assert sends(40, 5)[4] > 0


def test_try_acquire_never_waits() -> None:
    clock = Clock()
    bucket = TokenBucket(10, 1, clock=clock, sleep=clock.sleep)
    assert bucket.try_acquire() and not bucket.try_acquire()
    clock.now += 0.1
    assert bucket.try_acquire()
