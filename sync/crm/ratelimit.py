"""Token buckets that keep every client of one API key under RetailCRM's request rates.

RetailCRM answers 503 above 10 requests/s, and above 40 requests/s on ``/api/v5/telephony/*``
(a separate counter, spec §3). The limit belongs to the key, not to a client object, so all
clients and threads of one (account, key) share two buckets from a process-wide registry.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TELEPHONY_PREFIX = "/api/v5/telephony/"


class TokenBucket:
    """A thread-safe token bucket; ``acquire`` blocks until the caller's token is due.

    Waiting callers reserve their slot under the lock (the balance may go negative) and sleep
    outside it, so they are served in arrival order without polling. A small ``burst`` keeps
    any 1-second window close to ``rate``: at most ``burst + rate`` requests.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._stamp = clock()
        self._urgent = 0

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def acquire(self, *, urgent: bool = False) -> None:
        """``urgent`` (pop-ups: worthless seconds later) goes before every caller that is not
        urgent and has not reserved its slot yet; among themselves callers keep arrival order."""
        while not urgent and self._urgent:
            self._sleep(1 / self._rate)
        wait = self.reserve(urgent=urgent)
        try:
            if wait > 0:
                self._sleep(wait)
        finally:
            if urgent:
                self.release_urgent()

    def reserve(self, *, urgent: bool = False) -> float:
        """Take the next slot without waiting; returns the seconds until it is due. An
        ``urgent`` caller (an asyncio one waits itself) calls ``release_urgent`` after that."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            self._urgent += urgent
            return -self._tokens / self._rate if self._tokens < 0 else 0.0

    def release_urgent(self) -> None:
        with self._lock:
            self._urgent -= 1

    def try_acquire(self) -> bool:
        """Take a token if one is available now; never waits (the emulator's server side)."""
        with self._lock:
            self._refill()
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def limit_to(self, rate: float) -> None:
        """Lower the rate (never raise it): two configurations of one key get the stricter."""
        with self._lock:
            if 0 < rate < self._rate:
                self._refill()
                self._rate = rate
                self._burst = burst_for(rate)
                self._tokens = min(self._tokens, self._burst)


def burst_for(rate: float) -> float:
    """A tenth of a second's worth, at least one request."""
    return max(1.0, rate / 10)


@dataclass(frozen=True)
class KeyLimits:
    """The two buckets of one API key."""

    telephony: TokenBucket
    general: TokenBucket

    def bucket_for(self, path: str) -> TokenBucket:
        return self.telephony if path.startswith(TELEPHONY_PREFIX) else self.general


_registry: dict[tuple[str, str], KeyLimits] = {}
_registry_lock = threading.Lock()


def limits_for(
    base_url: str, api_key: str, *, telephony_rps: float, general_rps: float
) -> KeyLimits:
    """The shared buckets of this key on this account (the key itself is kept only as a hash)."""
    ident = (base_url, hashlib.sha256(api_key.encode()).hexdigest())
    with _registry_lock:
        limits = _registry.get(ident)
        if limits is None:
            limits = KeyLimits(
                telephony=TokenBucket(telephony_rps, burst_for(telephony_rps)),
                general=TokenBucket(general_rps, burst_for(general_rps)),
            )
            _registry[ident] = limits
        else:
            limits.telephony.limit_to(telephony_rps)
            limits.general.limit_to(general_rps)
        return limits
