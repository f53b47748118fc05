"""Pop-ups go before anything else ``serve`` sends on the same key (design §6.3 P9)."""

from __future__ import annotations

import threading
import time

from sync.crm.ratelimit import TokenBucket


def test_urgent_caller_is_served_before_a_later_normal_one() -> None:
    gate = threading.Event()
    yielded = threading.Event()
    served: list[str] = []

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "urgent":
            gate.wait(10)  # the urgent caller waits for its token until the test opens the gate
        else:
            yielded.set()
            time.sleep(seconds)

    # A stopped clock: no token comes back while the test arranges its callers, however slowly
    # the threads get scheduled on a busy machine.
    bucket = TokenBucket(1000, burst=1, clock=lambda: 0.0, sleep=sleep)

    def take(name: str, urgent: bool) -> None:
        bucket.acquire(urgent=urgent)
        served.append(name)

    bucket.acquire()  # the burst is spent: the next caller must wait for a token
    urgent = threading.Thread(target=take, args=("urgent", True), name="urgent")
    urgent.start()
    end = time.monotonic() + 10
    while bucket._urgent == 0 and time.monotonic() < end:
        time.sleep(0.001)
    normal = threading.Thread(target=take, args=("normal", False))
    normal.start()
    assert yielded.wait(10), "the normal caller yields while an urgent one waits"
    assert served == []
    gate.set()
    urgent.join(10)
    normal.join(10)
    assert sorted(served) == ["normal", "urgent"]
