"""The two callbacks that call RetailCRM back: the responsible manager of a caller (``/route``,
cached, with a hard budget) and the customer map refresh a trigger asks for (one at a time).

Both run the synchronous CRM client in a small pool of their own, never in the default
executor that clicks use for their database lookups: a slow CRM cannot starve click-to-call.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from loguru import logger

from sync.bridge.directory import LiveTenant
from sync.config import Settings
from sync.crm import CRMError
from sync.crm.factory import one_off_client
from sync.engine.customers import CustomerMap
from sync.engine.store import Store

ROUTE_BUDGET_SECONDS = 1.0
ROUTE_CACHE_SECONDS = 60.0
ROUTE_CACHE_MAX = 10_000
"""Callers' answers kept at most (each for ``ROUTE_CACHE_SECONDS``): 10 000 inbound calls within
a minute is beyond any switchboard; past it the oldest answers go first."""
CRM_WORKERS = 4
REFRESH_BUDGET_SECONDS = 30.0
_CODE = re.compile(r"[0-9A-Za-z*#]+")


class ManagerRouter:
    """Phone → the responsible manager's extension via ``GET /api/v5/telephony/manager``."""

    def __init__(
        self,
        settings: Settings,
        pool: ThreadPoolExecutor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.cache: dict[tuple[str, str], tuple[float, str | None]] = {}
        """(tenant, caller) → (until when, extension), oldest first: only the last
        ``ROUTE_CACHE_SECONDS`` of callers, at most ``ROUTE_CACHE_MAX``."""

    async def extension(self, tenant: LiveTenant, e164: str) -> str | None:
        """The extension to dial, or None (no manager, CRM slow or failing: the queue then)."""
        key = (tenant.name, e164)
        cached = self.cache.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        lookup = asyncio.get_running_loop().run_in_executor(self.pool, self._ask_crm, tenant, e164)
        try:
            code = await asyncio.wait_for(lookup, ROUTE_BUDGET_SECONDS)
        except (TimeoutError, CRMError):
            return None  # slow or failed: not cached, the next call asks again
        self.remember(key, code)
        return code

    def remember(self, key: tuple[str, str], code: str | None) -> None:
        """Cache an answer; expired answers (and the oldest beyond the cap) go first."""
        now, cache = self.clock(), self.cache
        cache.pop(key, None)
        cache[key] = (now + ROUTE_CACHE_SECONDS, code)
        while len(cache) > ROUTE_CACHE_MAX or next(iter(cache.values()))[0] <= now:
            del cache[next(iter(cache))]

    def _ask_crm(self, tenant: LiveTenant, e164: str) -> str | None:
        try:
            with one_off_client(self.settings, tenant.settings, budget=ROUTE_BUDGET_SECONDS) as c:
                body = c.manager_by_phone(e164, details=False)
        except CRMError as exc:
            logger.warning(f"route: tenant {tenant.name}: telephony/manager failed: {exc}")
            raise
        manager = body.get("manager")
        code = manager.get("code") if isinstance(manager, dict) else None
        # Only what a dialplan can dial goes back into it.
        return str(code) if code and _CODE.fullmatch(str(code)) else None


class MapRefresher:
    """A trigger's hint: refresh the tenant's customer map now. One refresh per tenant runs at
    a time; hints that arrive meanwhile give exactly one more after it, never a pile."""

    def __init__(self, settings: Settings, store: Store, pool: ThreadPoolExecutor) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.running: dict[str, asyncio.Task[None]] = {}
        self.again: set[str] = set()

    def hint(self, tenant: LiveTenant) -> None:
        task = self.running.get(tenant.name)
        if task is not None and not task.done():
            self.again.add(tenant.name)
        else:
            self.running[tenant.name] = asyncio.create_task(self._refresh(tenant))

    async def _refresh(self, tenant: LiveTenant) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.again.discard(tenant.name)
            await loop.run_in_executor(self.pool, self._refresh_now, tenant)
            if tenant.name not in self.again:
                return

    def _refresh_now(self, tenant: LiveTenant) -> None:
        budget = REFRESH_BUDGET_SECONDS
        with one_off_client(self.settings, tenant.settings, budget=budget) as client:
            report = CustomerMap(self.settings, tenant.settings, self.store, client).refresh()
        logger.info(
            f"trigger: tenant {tenant.name}: customer map refreshed ({report.error or 'ok'})"
        )

    def cancel(self) -> None:
        for task in self.running.values():
            task.cancel()
