"""Sending pop-ups (design §6.3 P6, P9, §6.5): fresh or not at all.

The AMI reader only ever calls ``submit`` (a ``put_nowait``): a slow or dead CRM can never stall
the socket. Queues are sharded by linkedid, so one call's events keep their order (``in`` before
its ``hangup``) while different calls go out in parallel. Each event carries the time of the AMI
event behind it; a worker that takes an event older than ``popup_deadline_seconds`` drops it
without a request, so a backlog from an outage is gone in an instant once the CRM answers again
and delays no later call. Retries (429, 503, other 5xx, timeouts) happen inside the deadline;
any other 4xx is not retried and is logged once per reason.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from typing import Any

from loguru import logger

from sync.bridge.metrics import Metrics
from sync.config import Settings
from sync.crm.errors import FatalError, RetriableError
from sync.popups.events import Popup
from sync.popups.poster import EventPoster

WORKERS = 16
"""Shards, so requests in flight at once (each shard sends its events in order)."""
QUEUE_SIZE = 4096
"""Pop-ups waiting in all shards; beyond that they are dropped at once (and counted)."""


class PopupSender:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        workers: int = WORKERS,
        queue_size: int = QUEUE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.serve is not None
        self.settings = settings
        self.metrics = metrics
        self.deadline = settings.serve.popup_deadline_seconds
        self.clock = clock
        self._tenants = {t.name: t for t in settings.tenants}
        self._posters: dict[str, EventPoster] = {}
        self._workers = workers
        self._shard_size = max(1, queue_size // workers)
        self._queues: list[asyncio.Queue[Popup]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._logged: set[tuple[str, str]] = set()
        self.settled = 0
        """Pop-ups sent or dropped so far."""
        self.on_delivered: list[Callable[[Popup, str], None]] = []
        """``callback(popup, outcome)`` after each event is sent or dropped (tests, bench)."""

    def start(self) -> None:
        self._queues = [asyncio.Queue(self._shard_size) for _ in range(self._workers)]
        self._tasks = [
            asyncio.create_task(self._work(queue), name=f"popup-{i}")
            for i, queue in enumerate(self._queues)
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for poster in self._posters.values():
            poster.close()

    def submit(self, popup: Popup) -> None:
        """Never waits: a full queue drops the event (counted) instead of stalling AMI."""
        queue = self._queues[zlib.crc32(popup.linkedid.encode()) % len(self._queues)]
        try:
            queue.put_nowait(popup)
        except asyncio.QueueFull:
            self._dropped(popup, "queue full")

    async def _work(self, queue: asyncio.Queue[Popup]) -> None:
        while True:
            popup = await queue.get()
            remaining = popup.at + self.deadline - self.clock()
            if remaining <= 0:
                self._dropped(popup, "older than the deadline")
                continue
            try:
                body = await self._poster(popup.tenant).post(popup.payload(), remaining)
            except RetriableError as exc:
                self._dropped(popup, "deadline passed while retrying", str(exc))
            except FatalError as exc:
                self._dropped(popup, f"refused: {exc.status} {exc.error_msg}", str(exc))
            except Exception as exc:  # a bug must not kill the sender
                self._dropped(popup, f"error {type(exc).__name__}", str(exc))
            else:
                self._sent(popup, body)

    def _poster(self, name: str) -> EventPoster:
        poster = self._posters.get(name)
        if poster is None:
            poster = self._posters[name] = EventPoster(
                self._tenants[name],
                connect_timeout=min(self.settings.sync.connect_timeout, self.deadline),
                read_timeout=min(self.settings.sync.read_timeout, self.deadline),
            )
        return poster

    def _sent(self, popup: Popup, body: dict[str, Any]) -> None:
        self.metrics.popups.labels(popup.tenant, popup.type, "sent").inc()
        missing = body.get("notExistCodes")
        for code in missing if isinstance(missing, list) else ():
            self._once(
                popup.tenant,
                f"code {code}",
                f"pop-ups: tenant {popup.tenant}: RetailCRM knows no user with extension "
                f"{code} (notExistCodes); add it to [tenants.extensions] and run register",
            )
        self._notify(popup, "sent")

    def _dropped(self, popup: Popup, reason: str, detail: str = "") -> None:
        self.metrics.popups.labels(popup.tenant, popup.type, "dropped").inc()
        self._once(
            popup.tenant,
            reason,
            f"pop-ups: tenant {popup.tenant}: {popup.type} dropped: {reason}"
            + (f" ({detail})" if detail else "")
            + "; logged once per reason, counted in retailcrm_sync_popups_total",
        )
        self._notify(popup, "dropped")

    def _notify(self, popup: Popup, outcome: str) -> None:
        self.settled += 1
        for callback in self.on_delivered:
            callback(popup, outcome)

    def _once(self, tenant: str, reason: str, line: str) -> None:
        if (tenant, reason) not in self._logged:
            self._logged.add((tenant, reason))
            logger.warning(line)
