"""Pop-ups inside ``serve``: AMI events → the machine → the sender, plus the resync after each
login (P7) and the grouping-window timer. Everything runs on the event loop; nothing here waits
on the CRM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loguru import logger

from sync.ami import AmiClient, AmiError, Message
from sync.bridge.directory import TenantDirectory
from sync.bridge.metrics import Metrics
from sync.calls.context import Context
from sync.config import Settings
from sync.popups.delivery import PopupSender
from sync.popups.events import WANTED, AmiEvent, Popup
from sync.popups.machine import MachineOptions, PopupMachine

RESYNC_SECONDS = 10.0
SWEEP_SECONDS = 60.0


class LivePopups:
    def __init__(
        self,
        settings: Settings,
        ami: AmiClient,
        directory: TenantDirectory,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.serve is not None and settings.ami is not None
        serve = settings.serve
        self.ami = ami
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.tenant_field = settings.ami.tenant_field
        options = MachineOptions(
            popup_on=serve.popup_on,
            group_seconds=serve.popup_group_ms / 1000,
            external_id_prefix=settings.pbx.external_id_prefix,
        )
        self.machine = PopupMachine(Context(settings.build_options()), options)
        self.sender = PopupSender(settings, metrics, clock=clock)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._resync: asyncio.Task[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.submitted = 0
        """Pop-ups handed to the sender (tests and the benchmark wait for them to settle)."""
        self.resyncs = 0
        """``CoreShowChannels`` rebuilds done (one per login)."""
        self.events_read = 0
        """Events read (the emulator's ``FullyBooted`` greeting not counted)."""

    def start(self) -> None:
        """Call on the loop before the AMI client starts, so no event or login is missed."""
        self.sender.start()
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)
        self.ami.subscribe(self.on_event)
        self.ami.on_login(self.on_login)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._timer is not None:
            self._timer.cancel()
        if self._resync is not None:
            self._resync.cancel()
        await self.sender.close()

    def expect_click(self, click_id: str, tenant: str) -> None:
        self.machine.expect_click(click_id, tenant, self.clock())

    # -- events ------------------------------------------------------------------------------

    def on_event(self, message: Message) -> None:
        if message.event != "FullyBooted":
            self.events_read += 1
            self.metrics.ami_events.inc()
        if message.event not in WANTED:
            return
        event = AmiEvent.parse(message, self.clock(), self.tenant_field)
        self._emit(self.machine.feed(event))

    def on_login(self) -> None:
        self.machine.login()
        self._resync = asyncio.get_running_loop().create_task(self._reconcile(), name="resync")

    async def _reconcile(self) -> None:
        try:
            listed = await self.ami.send_list("CoreShowChannels", timeout=RESYNC_SECONDS)
        except AmiError as exc:
            logger.warning(f"pop-ups: CoreShowChannels failed ({exc}); live calls not rebuilt")
            return
        now = self.clock()
        channels = [
            AmiEvent.parse(m, now, self.tenant_field)
            for m in listed
            if m.event == "CoreShowChannel"
        ]
        popups = self.machine.reconcile(channels, now)
        logger.info(
            f"pop-ups: {len(channels)} live channels after login; "
            f"{sum(p.type == 'hangup' for p in popups)} closed, "
            f"{sum(p.type != 'hangup' for p in popups)} shown"
        )
        self._emit(popups)
        self.resyncs += 1

    def _sweep(self) -> None:
        self._emit(self.machine.expire(self.clock()))
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._emit(self.machine.tick(self.clock()))

    # -- out ---------------------------------------------------------------------------------

    def _emit(self, popups: list[Popup]) -> None:
        for tenant, reason in self.machine.ignored:
            self.metrics.popup_calls_ignored.labels(tenant, reason).inc()
        self.machine.ignored.clear()
        for popup in popups:
            live = self.directory.cached_by_name(popup.tenant)
            if live is not None and not live.enabled:
                self.metrics.popup_calls_ignored.labels(popup.tenant, "inactive").inc()
                continue
            self.submitted += 1
            self.sender.submit(popup)
        self._schedule()

    def _schedule(self) -> None:
        due = self.machine.next_deadline()
        if due is None or (self._timer_at is not None and self._timer_at <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, due - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
        self._timer_at = due
