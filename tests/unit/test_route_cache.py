"""``/route``'s answers are cached per caller for a minute, and only for a minute: every
inbound call brings a number of its own, so a cache kept longer grows with the calls."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sync import config
from sync.bridge.directory import LiveTenant
from sync.bridge.lookups import ROUTE_CACHE_MAX, ROUTE_CACHE_SECONDS, ManagerRouter
from tests.unit.test_config import ENV, MINIMAL, write


def test_route_cache_keeps_the_last_minute_of_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    tenant = LiveTenant(settings.tenants[0], "client-id", "token", active=True, frozen=False)
    now = [0.0]
    asked: list[str] = []

    def ask_crm(_: LiveTenant, e164: str) -> str:
        asked.append(e164)
        return "101"

    async def callers(router: ManagerRouter) -> None:
        for n in range(600):  # one caller a second for ten minutes
            now[0] = float(n)
            assert await router.extension(tenant, f"+375291{n:06d}") == "101"
        assert await router.extension(tenant, "+375291000599") == "101"

    with ThreadPoolExecutor(1) as pool:
        router = ManagerRouter(settings, pool, clock=lambda: now[0])
        monkeypatch.setattr(router, "_ask_crm", ask_crm)
        asyncio.run(callers(router))
    assert len(asked) == 600, "the last caller's answer came from the cache"
    assert len(router.cache) == int(ROUTE_CACHE_SECONDS), "callers of the last minute only"
    for n in range(ROUTE_CACHE_MAX + 10):  # a storm inside one second: the cap holds
        router.remember((tenant.name, f"+375292{n:06d}"), None)
    assert len(router.cache) == ROUTE_CACHE_MAX
