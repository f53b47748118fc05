"""The daemon (``retailcrm-sync run``): an APScheduler ``BlockingScheduler`` and its jobs.

The job store is the in-memory one: coordination between instances is the engine's tenant
lease, not the scheduler's, so two daemons on one database are safe without a shared job store.
Every job has ``max_instances=1`` (a slow cycle is never run twice at once), ``coalesce=True``
(runs missed while the process was stopped or busy collapse into one) and an explicit
``misfire_grace_time``. Job errors, misses and skipped runs become one warning naming the job.

Shutdown: the first SIGTERM/SIGINT stops the scheduler and tells the running cycle to claim no
more batches; the batch in flight finishes and releases the lease within ``[daemon]
stop_timeout``, then the process exits 0. A second signal exits at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobEvent,
    JobExecutionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from jobs.notify import Liveness, Notifier
from jobs.signals import ReloadSignal, StopSignals
from jobs.tasks import Tasks
from sync.config import Settings
from sync.engine.runner import OUTSIDE_ERRORS, Runner
from sync.engine.turns import heartbeat_seconds
from sync.errors import first_line
from sync.reload import Reloader

HOUSEKEEPING_SECONDS = 3600


def describe(exc: BaseException) -> str:
    return first_line(exc, with_type=True)


def on_job_event(event: SchedulerEvent) -> None:
    """Listener: job errors, misses and max-instance skips as warnings naming the job."""
    if not isinstance(event, JobEvent):
        return
    job = event.job_id
    if event.code == EVENT_JOB_ERROR and isinstance(event, JobExecutionEvent):
        exc = event.exception
        if isinstance(exc, OUTSIDE_ERRORS):
            logger.warning(f"job {job} failed: {describe(exc)}; the next run tries again")
        else:
            logger.opt(exception=exc).error(
                f"job {job} failed unexpectedly: {describe(exc)}; the next run tries again"
            )
    elif event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
        logger.warning(
            f"job {job} missed its run at {event.scheduled_run_time:%H:%M:%S} "
            "(the process was suspended or overloaded); the next run catches up"
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        logger.warning(f"job {job} skipped a run: the previous run is still going")


def tenant_names(settings: Settings, most: int = 10) -> str:
    """The tenants for a log or status line: names when few, a count when many."""
    tenants = settings.tenants
    if len(tenants) <= most:
        return ", ".join(t.name for t in tenants)
    return f"{len(tenants)} tenants (workers {settings.daemon.workers})"


class Daemon:
    """Owns the scheduler, the stop Event and the systemd notifier for one ``run``."""

    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        stop: threading.Event,
        notifier: Notifier | None = None,
    ) -> None:
        daemon = settings.daemon
        self.settings = settings
        self.runner = runner
        self.stop = stop
        self.notifier = notifier or Notifier()
        self.liveness = Liveness(2 * daemon.interval + daemon.jitter)
        self.tasks = Tasks(settings, runner, self.notifier, self.liveness, stop)
        self.reloader = Reloader(settings, self._apply)
        # The listener reports job errors, misses and skips once, without APScheduler's own
        # per-run chatter and duplicate tracebacks.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
        self._started = threading.Event()
        self._deadline = 0.0
        self.scheduler = self._scheduler()

    def _scheduler(self) -> BlockingScheduler:
        d = self.settings.daemon
        scheduler = BlockingScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={
                "default": ThreadPoolExecutor(4),
                "watchdog": ThreadPoolExecutor(1),
                "presence": ThreadPoolExecutor(1),
            },
            job_defaults={"max_instances": 1, "coalesce": True},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        jitter = d.jitter or None

        def add(
            job: Callable[[], None],
            seconds: float,
            first: datetime,
            *,
            jittered: bool = True,
            executor: str = "default",
            name: str = "",
        ) -> None:
            # A run later than one interval is pointless: the next one does the same work.
            name = name or job.__name__
            scheduler.add_job(
                job,
                IntervalTrigger(seconds=seconds, jitter=jitter if jittered else None),
                id=name,
                name=name,
                executor=executor,
                next_run_time=first,
                misfire_grace_time=max(1, int(seconds)),
            )

        add(self.tasks.sync, d.interval, now)
        # Its own executor too: a long pass must not make a busy daemon look dead to its peers.
        beat = heartbeat_seconds(d.interval)
        add(self.tasks.presence, beat, now, jittered=False, executor="presence")
        add(self.tasks.customers, d.customers_interval, now)
        add(self.tasks.housekeeping, HOUSEKEEPING_SECONDS, now + timedelta(seconds=d.interval))
        if self.notifier.watchdog_seconds:
            # Its own executor: busy sync threads must not delay the ping.
            ping = self.notifier.watchdog_seconds / 2
            add(self.tasks.watchdog, ping, now, jittered=False, executor="watchdog")
        # The directory is re-read on its own schedule (a SIGHUP re-reads it at once too).
        reload_every = self.settings.directory.reload_seconds if self.settings.directory else 60
        first = now + timedelta(seconds=reload_every)
        add(self._reload_directory, reload_every, first, name="reload")
        scheduler.add_listener(
            on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        scheduler.add_listener(lambda _: self._started.set(), EVENT_SCHEDULER_STARTED)
        return scheduler

    def run(self) -> int:
        """Blocks until a stop signal; returns the exit code (0 after an orderly stop)."""
        d = self.settings.daemon
        StopSignals(self.stop, self._begin_stop).install()
        ReloadSignal(self.reload).install()
        names = tenant_names(self.settings)
        logger.info(
            f"daemon started for {names}: sync every {d.interval:g} s (jitter {d.jitter:g} s), "
            f"customer map every {d.customers_interval:g} s, keep {d.keep_days} days"
            + (
                f", systemd watchdog {self.notifier.watchdog_seconds:g} s"
                if self.notifier.watchdog_seconds
                else ""
            )
        )
        self.notifier.ready(f"running; first cycle for {names}")
        self.scheduler.start()  # returns once _begin_stop has shut it down
        return self._finish()

    def reload(self) -> None:
        """SIGHUP: the config file and the directory again; tenants added, changed or removed
        take effect at the next cycle. Intervals and workers keep their started values."""
        if not self.stop.is_set():
            self.reloader.reload("SIGHUP")

    def _reload_directory(self) -> None:
        if self.settings.directory is not None and not self.stop.is_set():
            self.reloader.reload("tenants directory", quiet_if_same=True)

    def _apply(self, settings: Settings) -> None:
        self.runner.reload(settings)
        self.settings = settings
        self.tasks.settings = settings

    def _begin_stop(self, signal_name: str) -> None:
        timeout = self.settings.daemon.stop_timeout
        self._deadline = time.monotonic() + timeout
        logger.info(
            f"{signal_name}: stopping; runs in progress claim no more batches and get "
            f"{timeout:g} s to finish (send it again to exit at once)"
        )
        self.notifier.stopping("stopping: finishing the batch in flight")
        self._started.wait()  # a signal during start-up: stop right after it
        self.scheduler.shutdown(wait=False)

    def _finish(self) -> int:
        if not self.tasks.busy.wait_idle(self._deadline - time.monotonic()):
            logger.error(
                f"jobs still running after stop_timeout "
                f"({self.settings.daemon.stop_timeout:g} s); exiting without them: their "
                "calls stay 'sending' and the lease expires, the next run sends them again"
            )
            os._exit(1)
        self.runner.close()
        logger.info("daemon stopped")
        return 0
