"""Scenario 6b: two clients of one key, six threads, five seconds: the shared bucket holds the
rate on real sockets. A wall-clock property, so it lives here and not in ``make test``; the
bucket's arithmetic is unit-tested with a fake clock in tests/unit/test_ratelimit.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sync.crm import RetailCRMClient
from sync.crm.ratelimit import burst_for
from sync.emulator import Emulator
from tests.crm_fixtures import make_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rate_holds_within_ten_percent_over_a_five_second_burst(emulator: Emulator) -> None:
    emulator.rate_limits(telephony_rps=None, general_rps=None)
    rps, duration = 20, 5.0
    deadline = time.monotonic() + duration
    clients = [make_client(emulator, telephony_rps=rps) for _ in range(2)]

    def hammer(client: RetailCRMClient) -> None:
        while time.monotonic() < deadline:
            client.manager_by_phone("+375291234567", details=False)

    with ThreadPoolExecutor(6) as pool:  # map() re-raises a failed request
        list(pool.map(hammer, [clients[i % 2] for i in range(6)]))
    for client in clients:
        client.close()
    stamps = sorted(r.at for r in emulator.requests)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rps * 0.9 <= rate <= rps * 1.1
    busiest = max(sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps)
    # The bucket's own bound is rate + burst per 1-second window of sending; stamps are taken
    # on arrival, where one request delayed by a busy machine can land beside the next one.
    assert busiest <= rps + burst_for(rps) + 1
