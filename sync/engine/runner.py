"""Runs tenant cycles: every tenant in its own thread, so one tenant's bad key, 403 or outage
never delays another (each has its own client, rate limit and lease)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from sync import db
from sync.config import Settings, TenantSettings
from sync.crm.factory import daemon_client
from sync.engine.customers import CustomerMap, MapReport
from sync.engine.cycle import CycleReport, Progress, ResyncWindow, TenantCycle
from sync.engine.orders import OrderMirror
from sync.engine.store import Store, this_owner
from sync.sources import open_source
from sync.timeutil import Clock, utcnow


class Runner:
    """Owns the engines, clients and the source for as long as the process runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        stop: threading.Event | None = None,
        owner: str | None = None,
        engine: sa.Engine | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.stop = stop or threading.Event()
        self.owner = owner or this_owner()
        self.engine = engine or db.make_engine(settings.database.url)
        self.store = Store(self.engine)
        self._same_db = settings.source.url == settings.database.url
        self._source: Any = None
        self.clients = {t.name: daemon_client(settings, t) for t in settings.tenants}
        self.store.ensure_tenants(t.name for t in settings.tenants)

    @property
    def source(self) -> Any:
        """Opened on first use: a PBX database that is down must not stop `status` or `run`."""
        if self._source is None:
            # A separate PBX database gets its own engine from open_source: a PBX's SQLite
            # file must not be switched to WAL by our engine settings.
            engine = self.engine if self._same_db else None
            self._source = open_source(self.settings.source, engine)
        return self._source

    def cycle(self, tenant: TenantSettings) -> TenantCycle:
        return TenantCycle(
            self.settings,
            tenant,
            self.store,
            lambda: self.source,
            self.clients[tenant.name],
            self.owner,
            self.stop,
            self.clock,
        )

    def selected(self, names: Sequence[str] | None) -> list[TenantSettings]:
        if not names:
            return list(self.settings.tenants)
        return [self.settings.tenant(n) for n in names]

    def once(
        self,
        tenants: Sequence[str] | None = None,
        window: ResyncWindow | None = None,
        progress: Progress | None = None,
    ) -> list[CycleReport]:
        chosen = self.selected(tenants)
        if len(chosen) == 1:
            return [self.cycle(chosen[0]).run(window, progress)]
        with ThreadPoolExecutor(len(chosen), thread_name_prefix="tenant") as pool:
            futures = [pool.submit(self.cycle(t).run, window, progress) for t in chosen]
            return [f.result() for f in futures]

    def refresh_customers(
        self, tenants: Sequence[str] | None = None, *, older_than: float | None = None
    ) -> list[MapReport]:
        """Refresh each tenant's customer map, skipping those refreshed within ``older_than`` s.

        The daemon calls it on its own schedule; ``once`` (cron, timers) calls it with
        ``customers_interval`` so the map stays fresh without a daemon.
        """
        reports = []
        for tenant in self.selected(tenants):
            if self.stop.is_set():
                break
            last = self.store.last_run(tenant.name, "customers")
            fresh = last is not None and (self.clock() - last).total_seconds() < (older_than or 0)
            if older_than is not None and fresh:
                continue
            client = self.clients[tenant.name]
            cmap = CustomerMap(self.settings, tenant, self.store, client, self.stop, self.clock)
            reports.append(cmap.refresh())
            # The report's orders mirror follows on the same schedule (design §7). Its failure
            # is logged and kept in sync_run (kind "orders"); it never fails the sync itself.
            if not self.stop.is_set():
                mirror = OrderMirror(
                    self.settings, tenant, self.store, client, self.stop, self.clock
                )
                mirror.refresh()
        return reports

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self._source is not None:
            self._source.close()
        self.engine.dispose()
