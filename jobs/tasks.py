"""What the daemon's scheduled jobs do: sync, customer map, housekeeping, watchdog.

A job returns normally or raises; the scheduler's listener turns an exception into one log
line and the next run simply tries again, so a lost database or a CRM outage never ends the
daemon. Every job counts itself in ``Busy`` so that shutdown can wait for the ones running.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

from loguru import logger

from jobs.notify import Liveness, Notifier
from sync.config import Settings
from sync.engine.cycle import CycleReport
from sync.engine.runner import Runner
from sync.errors import first_line
from sync.timeutil import utcnow

LEASE_MARGIN = 0.2
"""Seconds after a lease's expiry before it is tried again (clocks of two hosts differ)."""


class Busy:
    """How many jobs are running; ``wait_idle`` lets shutdown wait for them with a deadline."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = threading.Condition()

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=max(0.0, timeout))


def status_line(reports: Sequence[CycleReport], most: int = 10) -> str:
    """The last cycle per tenant, short enough for ``systemctl status``; with more than
    ``most`` tenants, counts per outcome and totals instead."""
    if len(reports) > most:
        outcomes = Counter(str(r.outcome) for r in reports)
        lags = [r.lag_seconds for r in reports if r.lag_seconds is not None]
        lag = f"{max(lags):.0f}s" if lags else "-"
        return (
            f"last cycle {utcnow():%H:%M:%S} UTC: {len(reports)} tenants "
            + " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
            + f" sent={sum(r.sent for r in reports)} failed={sum(r.failed for r in reports)}"
            + f" dead={sum(r.dead for r in reports)} max lag={lag}"
        )
    parts = []
    for r in reports:
        lag = "-" if r.lag_seconds is None else f"{r.lag_seconds:.0f}s"
        part = f"{r.tenant} {r.outcome} sent={r.sent} failed={r.failed} dead={r.dead} lag={lag}"
        parts.append(part + (f" ({r.error})" if r.error else ""))
    return f"last cycle {utcnow():%H:%M:%S} UTC: " + "; ".join(parts)


class Tasks:
    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        notifier: Notifier,
        liveness: Liveness,
        stop: threading.Event,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.monotonic = monotonic
        self.runner = runner
        self.notifier = notifier
        self.liveness = liveness
        self.stop = stop
        self.busy = Busy()
        self._withheld = False
        self._silent = False

    def sync(self) -> None:
        """One cycle for every tenant; each tenant's failures are in its report, not raised.

        A pass that outlasts the interval made the scheduler skip a tick: the next pass starts
        at once instead of an interval later (a wave of calls, a dead peer's tenants). Tenants
        the pass found busy whose lease expires before the next tick are tried again at that
        expiry (a peer that died holding them, ``Runner.lease_retry``).
        """
        if self.stop.is_set():
            return
        interval = self.settings.daemon.interval
        with self.busy.running():
            began = self.monotonic()
            only: list[str] | None = None
            shown: dict[str, CycleReport] = {}
            while True:
                try:
                    reports = self.runner.once(
                        tenants=only, progress=self.liveness.progress, drain=False
                    )
                except Exception as exc:
                    self.notifier.status(f"sync failed at {utcnow():%H:%M:%S} UTC, retrying: {exc}")
                    raise
                finally:
                    self.liveness.beat()
                shown.update((r.tenant, r) for r in reports)
                self.notifier.status(status_line(list(shown.values())))
                if self.stop.is_set():
                    return
                spent = self.monotonic() - began
                if spent >= interval:
                    began, shown, only = self.monotonic(), {}, None
                    continue  # late: the skipped tick's full pass, now
                # The next tick may come up to a jitter early: a retry must end before it.
                before_tick = interval - self.settings.daemon.jitter - spent - LEASE_MARGIN
                retry = self.runner.lease_retry(reports, within=before_tick)
                if retry is None:
                    return
                only, wait = retry
                if self.stop.wait(wait + LEASE_MARGIN):
                    return

    def presence(self) -> None:
        """The heartbeat: tell the peers this daemon is alive, while its passes make progress
        (``Liveness``). A daemon that is killed or hangs falls silent, and the next in line
        takes its tenants within ``turns.presence_window`` instead of waiting for them to lag.
        """
        if self.stop.is_set() or not self.liveness.alive():
            return
        try:
            self.runner.announce()
        except Exception as exc:  # the sync job reports the database; say it once here
            if not self._silent:
                logger.warning(f"heartbeat: cannot write to sync_owner: {first_line(exc)}")
            self._silent = True
            return
        self._silent = False

    def customers(self) -> None:
        """Refresh the phone -> customer map of this daemon's turn of the tenants (all of them
        when it runs alone, none refreshed within half an interval), on the worker pool."""
        with self.busy.running():
            self.runner.refresh_customers(shared=True)

    def housekeeping(self) -> None:
        """Drop ``sync_run`` rows, sent calls' payloads and presence rows of processes gone
        without a clean stop, older than ``keep_days``."""
        if self.stop.is_set():
            return
        with self.busy.running():
            before = utcnow() - timedelta(days=self.settings.daemon.keep_days)
            runs, payloads = self.runner.store.prune(before)
            gone = self.runner.store.forget_presences(before)
            logger.info(
                f"housekeeping: removed {runs} run reports, {payloads} payloads of calls "
                f"sent and {gone} rows of processes last seen before "
                f"{before:%Y-%m-%d %H:%M} UTC"
            )

    def watchdog(self) -> None:
        """Feed systemd's watchdog only while cycles make progress; say so once when not."""
        if self.liveness.alive():
            if self._withheld:
                logger.info("watchdog: cycles make progress again; pinging systemd")
                self._withheld = False
            self.notifier.watchdog()
        elif not self._withheld:
            self._withheld = True
            logger.error(
                f"watchdog: no sync run has ended for {self.liveness.quiet_for():.0f} s "
                f"(limit {self.liveness.max_quiet:.0f} s); no longer pinging systemd, "
                "which restarts the daemon after WatchdogSec"
            )
