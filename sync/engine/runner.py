"""Runs tenant cycles on one bounded pool of ``[daemon] workers`` threads.

Threads, HTTP pools and database connections follow ``workers``, never the number of tenants:
due tenants queue for a worker, oldest ``next_run_at`` first; a cycle runs at most
``[sync] slice_seconds`` before it yields its worker. CRM clients are made on demand and kept
in a small LRU (``ClientCache``). One tenant's failure is in its report, never raised, so it
cannot end another tenant's cycle or the run. Bound per process (documented in
docs/operator-guide.md): threads <= workers x (1 + max_in_flight) + a few for the scheduler;
database connections <= pool_size + max_overflow of ``sync.db.pool_options(workers)``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from sync import db
from sync.config import Settings, TenantSettings
from sync.crm import CRMError, RetailCRMClient
from sync.crm.factory import daemon_client
from sync.engine.clients import ClientCache
from sync.engine.customers import CustomerMap, MapReport
from sync.engine.cycle import CycleOutcome, CycleReport, Progress, ResyncWindow, TenantCycle
from sync.engine.orders import OrderMirror
from sync.engine.store import Store, TenantState, owner_is_dead, this_owner
from sync.engine.turns import (
    due_first,
    freed,
    heartbeat_seconds,
    lease_retry,
    live_owners,
    may_be_idle,
    merged,
    orphans,
    presence_window,
    refresh_turn,
    shared_pass,
    unchanged,
)
from sync.errors import first_line
from sync.sources import SourceError, open_source
from sync.timeutil import Clock, utcnow

OUTSIDE_ERRORS = (SQLAlchemyError, CRMError, SourceError, OSError)
"""Failures of the outside world (database, CRM, call log): one line, no traceback."""

R = TypeVar("R")
FEW = 10
"""Up to this many idle tenants each get their own summary line, as a cycle would log."""


def _take(names: set[str], name: str) -> bool:
    """Whether ``name`` was in ``names``, which no longer holds it (thread-safe: GIL-atomic)."""
    try:
        names.remove(name)
    except KeyError:
        return False
    return True


def _next_runs(states: Mapping[str, TenantState]) -> dict[str, datetime | None]:
    return {name: state.next_run_at for name, state in states.items()}


def _probe_from(state: TenantState) -> datetime:
    assert state.probe_from is not None  # may_be_idle checked it
    return state.probe_from


class Runner:
    """Owns the engine, the worker pool, the client cache and the source for the process."""

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
        workers = settings.daemon.workers
        self.workers = workers
        self.engine = engine or db.make_engine(
            settings.database.url, **db.pool_options(settings.database.url, workers)
        )
        self.store = Store(self.engine)
        self._source: Any = None
        self._source_lock = threading.Lock()
        self.clients = ClientCache(lambda t: daemon_client(self.settings, t), 2 * workers)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="tenant")
        self.announced = False
        """Whether this process has a presence row (a daemon's pass wrote it) to remove."""
        self.store.ensure_tenants(t.name for t in settings.tenants)

    @property
    def source(self) -> Any:
        """Opened on first use (a PBX database that is down must not stop `status` or `run`),
        by one thread: the others wait for it instead of each building an engine."""
        source = self._source
        if source is not None:
            return source
        with self._source_lock:
            if self._source is None:
                # A separate PBX database gets its own engine from open_source: a PBX's SQLite
                # file must not be switched to WAL by our engine settings.
                same_db = self.settings.source.url == self.settings.database.url
                engine = self.engine if same_db else None
                self._source = open_source(self.settings.source, engine, workers=self.workers)
            return self._source

    def reload(self, settings: Settings) -> None:
        """Take a re-read configuration: tenants added, changed or removed take effect at the
        next cycle; removed tenants' clients are closed. Our own database and the worker count
        stay as started (a restart changes them)."""
        old = self.settings
        if settings.database.url != old.database.url or settings.daemon.workers != self.workers:
            logger.warning(
                "reload: [database] url and [daemon] workers take effect after a restart"
            )
        self.store.ensure_tenants(t.name for t in settings.tenants)
        with self._source_lock:
            stale = self._source if settings.source != old.source else None
            if stale is not None:
                self._source = None
            self.settings = settings
        if stale is not None:
            stale.close()
        self.clients.retain({t.name for t in settings.tenants})

    def cycle(
        self, tenant: TenantSettings, client: RetailCRMClient, store: Store | None = None
    ) -> TenantCycle:
        return TenantCycle(
            self.settings,
            tenant,
            store or self.store,
            client,
            source=lambda: self.source,
            owner=self.owner,
            stop=self.stop,
            clock=self.clock,
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
        *,
        drain: bool = True,
    ) -> list[CycleReport]:
        """One pass over the chosen tenants, at most ``workers`` at a time, due ones first.

        A tenant that yields its slice goes to the back of the queue when ``drain`` (``once``:
        a cron run still delivers everything due), else waits for the next pass, where its
        ``next_run_at`` puts it first (the daemon). A resync window is never sliced.

        The daemon's pass (``drain`` False) takes only its share when other daemons are live:
        the tenants it is preferred for, then peers' overdue ones (``turns.shared_pass``).
        ``once`` and ``resync`` take every chosen tenant; the leases keep them safe beside it.
        """
        chosen = {t.name: t for t in self.selected(tenants)}
        reports: dict[str, CycleReport] = {}
        todo = list(chosen.values())
        states = self._states()
        shared = None if drain else self._share(todo, states)
        others: dict[str, TenantSettings] = {}
        owners: Collection[str] = ()
        if shared is not None:
            todo, owners = shared
            mine = {t.name for t in todo}
            others = {n: t for n, t in chosen.items() if n not in mine}
        changed: set[str] = set()
        if window is None:
            todo, idle, changed = self._idle_pass(todo, states)
            reports.update((r.tenant, r) for r in idle)
        busy: dict[str, TenantSettings] = {}
        more = None
        if shared is not None and window is None:
            more = self._watch(others, busy, owners, reports, changed)

        def run(tenant: TenantSettings) -> CycleReport:
            # Only its first slice may trust the pass's probe: later ones look again.
            return self._run_cycle(tenant, window, progress, changed=_take(changed, tenant.name))

        def done(tenant: TenantSettings, report: CycleReport) -> bool:
            previous = reports.get(tenant.name)
            reports[tenant.name] = report if previous is None else merged(previous, report)
            if report.outcome is CycleOutcome.BUSY:
                busy[tenant.name] = tenant
            return drain and report.yielded

        self.bounded(todo if shared is not None else self._due(todo, states), run, done, more)
        return [reports[n] for n in chosen if n in reports]

    def _watch(
        self,
        others: dict[str, TenantSettings],
        busy: dict[str, TenantSettings],
        owners: Collection[str],
        reports: dict[str, CycleReport],
        changed: set[str],
    ) -> Callable[[], list[TenantSettings]]:
        """What a daemon's pass takes on while it runs, checked once a heartbeat (a statement
        or two, only in a pass that long): the tenants of daemons that fell silent
        (``_orphans``), and tenants found busy whose lease has since been freed or expired
        (``_freed``: a killed daemon's). Both go ahead of the pass's own: a wave's pass can
        last several presence windows and lease terms, and nobody else serves them."""
        every = timedelta(seconds=heartbeat_seconds(self.settings.daemon.interval))
        live = set(owners)
        due = self.clock() + every

        def more() -> list[TenantSettings]:
            nonlocal live, due
            now = self.clock()
            if now < due or not (others or busy):
                return []
            due = now + every
            taken = self._freed(busy, now)
            if others:
                try:
                    after = set(self._live_owners(now))
                except Exception:  # the pass goes on with its share; the next one reads again
                    return taken
                taken += self._orphans(others, live, after, reports, changed)
                live = after
            return taken

        return more

    def _orphans(
        self,
        others: dict[str, TenantSettings],
        before: set[str],
        after: set[str],
        reports: dict[str, CycleReport],
        changed: set[str],
    ) -> list[TenantSettings]:
        """The part of silent daemons' tenants this one now comes first for
        (``turns.orphans``), taken out of ``others``; idle ones set aside as at the start of
        a pass, the rest due first."""
        names = orphans(others, before, after, self.owner)
        if not names:
            return []
        states = self._states()
        todo, idle, seen = self._idle_pass([others.pop(n) for n in names], states)
        reports.update((r.tenant, r) for r in idle)
        changed.update(seen)
        silent = ", ".join(sorted(before - after))
        logger.info(
            f"{len(names)} tenants of {silent}, silent, taken on in this pass: "
            f"{len(todo)} with work"
        )
        return self._due(todo, states)

    def _freed(self, busy: dict[str, TenantSettings], now: datetime) -> list[TenantSettings]:
        """The tenants of ``busy`` whose lease is no longer held (released, expired, or its
        holder's pid dead on this host), taken out of ``busy``; one select."""
        if not busy:
            return []
        try:
            held = self.store.held_leases(busy)
        except Exception:  # the pass's lease retry asks again
            return []
        return [busy.pop(n) for n in freed(list(busy), held, now, owner_is_dead)]

    def _states(self) -> dict[str, TenantState] | None:
        """Every tenant's row, read once for the pass (its share, idle check and order)."""
        try:
            return self.store.tenant_states()
        except Exception as exc:  # the cycles report the database themselves
            logger.warning(
                "cannot read the tenants' rows, every tenant gets a cycle in the configured "
                f"order: {first_line(exc, with_type=True)}"
            )
            return None

    def _share(
        self, tenants: list[TenantSettings], states: Mapping[str, TenantState] | None
    ) -> tuple[list[TenantSettings], dict[str, datetime]] | None:
        """This daemon's share of ``tenants`` for the pass, in order, and the live daemons it
        was cut for: say it is alive (one upsert), read who else is (one select), then
        ``turns.shared_pass`` on the turns in ``states``. None when the database says
        nothing: the pass then takes every tenant as if alone, first come first served, as
        the leases allow."""
        if states is None:
            return None
        now = self.clock()
        daemon = self.settings.daemon
        next_runs = _next_runs(states)
        try:
            self.announce(now)
            owners = self._live_owners(now)
        except Exception as exc:  # the cycles report the database themselves
            logger.warning(
                f"cannot read the other processes or the turns, taking every tenant: "
                f"{first_line(exc, with_type=True)}"
            )
            return None
        grace = timedelta(seconds=daemon.interval + daemon.jitter)
        by_name = {t.name: t for t in tenants}
        order = shared_pass(by_name, next_runs, self.owner, owners, now, grace)
        if len(order) < len(tenants):
            logger.debug(
                f"{len(order)} of {len(tenants)} tenants are this process's share "
                f"({len(set(owners) | {self.owner})} processes live)"
            )
        return [by_name[n] for n in order], owners

    def _live_owners(self, now: datetime) -> dict[str, datetime]:
        """The live daemons, owner -> started_at, in one statement (``turns.live_owners``)."""
        window = presence_window(self.settings.daemon.interval)
        rows = self.store.presences(seen_since=now - window)
        return live_owners(rows, now, window, owner_is_dead)

    def announce(self, now: datetime | None = None) -> None:
        """Say this daemon is alive (one upsert into ``sync_owner``): at each pass and from the
        daemon's heartbeat job, so its peers can tell a busy daemon from a silent one."""
        self.store.announce(self.owner, now or self.clock())
        self.announced = True

    def lease_retry(
        self, reports: Iterable[CycleReport], within: float
    ) -> tuple[list[str], float] | None:
        """The tenants a pass found busy whose lease, held by another process, expires within
        ``within`` seconds (before the next tick), and the seconds until then: a peer that died
        holding them hands them over at their expiry (``turns.lease_retry``). One statement,
        only when the pass found a busy tenant; None when there is nothing to try again."""
        configured = {t.name for t in self.settings.tenants}  # a reload may have removed some
        busy = {r.tenant for r in reports if r.outcome is CycleOutcome.BUSY} & configured
        if not busy:
            return None
        now = self.clock()
        try:
            held = self.store.held_leases(busy)
        except Exception as exc:  # the next tick tries them anyway
            logger.warning(f"cannot read the busy tenants' leases: {first_line(exc)}")
            return None
        expiries = {n: at for n, (holder, at) in held.items() if holder != self.owner}
        retry = lease_retry(expiries, now, now + timedelta(seconds=within))
        if retry is None:
            return None
        names, at = retry
        return names, (at - now).total_seconds()

    def _refresh_share(self, tenants: list[TenantSettings]) -> list[TenantSettings]:
        """The tenants this daemon's customers job refreshes now (two statements: the live
        processes and the last refreshes); every tenant when the database says nothing."""
        now = self.clock()
        try:
            owners = self._live_owners(now)
            last = self.store.last_runs("customers")
        except Exception as exc:  # each refresh reports the database itself
            logger.warning(
                f"cannot read the other processes or the last refreshes, refreshing every "
                f"tenant: {first_line(exc, with_type=True)}"
            )
            return tenants
        every = timedelta(seconds=self.settings.daemon.customers_interval)
        names = refresh_turn([t.name for t in tenants], last, self.owner, owners, now, every)
        chosen = set(names)
        return [t for t in tenants if t.name in chosen]

    def _idle_pass(
        self, tenants: list[TenantSettings], states: Mapping[str, TenantState] | None
    ) -> tuple[list[TenantSettings], list[CycleReport], set[str]]:
        """Set aside the tenants with nothing to do, in a handful of statements for all of
        them: their states, which have calls to send, one batched probe of the call log, one
        update. They cost no lease round trip; the rest get a cycle. Any failure here only
        means every tenant gets its cycle, which then reports the failure itself.

        Also returns the tenants whose probe just saw the call log change: their cycle need
        not probe it again before reading."""
        if states is None:
            return tenants, [], set()
        now = self.clock()
        try:
            work = self.store.tenants_with_work(now)
            maybe = [t for t in tenants if may_be_idle(states.get(t.name), t.name in work, now)]
            if not maybe:
                return tenants, [], set()
            probes = [(_probe_from(states[t.name]), t.match) for t in maybe]
            seen = self.source.probe_many(probes)
            same = [unchanged(states[t.name], fp) for t, fp in zip(maybe, seen, strict=True)]
            idle = [t for t, s in zip(maybe, same, strict=True) if s]
            changed = {t.name for t, s in zip(maybe, same, strict=True) if not s}
            if idle:
                next_run = now + timedelta(seconds=self.settings.daemon.interval)
                self.store.mark_idle([t.name for t in idle], now, next_run)
        except Exception as exc:
            logger.warning(
                f"idle check skipped, every tenant gets a cycle: {first_line(exc, with_type=True)}"
            )
            return tenants, [], set()
        reports = [
            CycleReport(t.name, outcome=CycleOutcome.IDLE, lag_seconds=0.0, started=now)
            for t in idle
        ]
        if len(idle) <= FEW:
            for report in reports:
                logger.info(report.summary())
        if idle:
            logger.info(
                f"{len(idle)} of {len(tenants)} tenants idle (call log unchanged, nothing due): "
                "no cycle needed"
            )
        names = {t.name for t in idle}
        return [t for t in tenants if t.name not in names], reports, changed

    def _due(
        self, tenants: list[TenantSettings], states: Mapping[str, TenantState] | None
    ) -> list[TenantSettings]:
        if len(tenants) <= 1 or states is None:
            return tenants
        by_name = {t.name: t for t in tenants}
        return [by_name[n] for n in due_first(by_name, _next_runs(states), self.owner)]

    def bounded(
        self,
        items: Iterable[TenantSettings],
        work: Callable[[TenantSettings], R],
        done: Callable[[TenantSettings, R], bool],
        more: Callable[[], list[TenantSettings]] | None = None,
    ) -> None:
        """Run ``work`` for each item on the pool, at most ``workers`` in flight; an item whose
        ``done`` says True goes to the back of the queue; what ``more`` returns (asked
        between items) goes to its front. Stops taking items on stop."""
        queue = deque(items)
        running: dict[Future[R], TenantSettings] = {}
        while queue or running:
            if more is not None:
                queue.extendleft(reversed(more()))
            while queue and len(running) < self.workers and not self.stop.is_set():
                item = queue.popleft()
                running[self.pool.submit(work, item)] = item
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                if done(item, future.result()):
                    queue.append(item)

    def _run_cycle(
        self,
        tenant: TenantSettings,
        window: ResyncWindow | None,
        progress: Progress | None,
        *,
        changed: bool = False,
    ) -> CycleReport:
        """A cycle that never raises: building its client counts as part of it. It runs on
        one database connection of its own (``Store.pinned``)."""
        deadline = None if window else time.monotonic() + self.settings.sync.slice_seconds
        try:
            with self.clients.use(tenant) as client, self.store.pinned() as store:
                cycle = self.cycle(tenant, client, store)
                return cycle.run(window, progress, deadline=deadline, changed=changed)
        except Exception as exc:
            report = CycleReport(tenant.name, outcome=CycleOutcome.ERROR)
            report.error = first_line(exc, with_type=True)
            expected = isinstance(exc, OUTSIDE_ERRORS)  # a database that is down, say
            logger.opt(exception=None if expected else exc).error(report.summary())
            return report

    def refresh_customers(
        self,
        tenants: Sequence[str] | None = None,
        *,
        older_than: float | None = None,
        shared: bool = False,
    ) -> list[MapReport]:
        """Refresh each tenant's customer map, then its orders mirror, on the worker pool,
        skipping those refreshed within ``older_than`` s (one statement tells which).

        The daemon calls it on its own schedule with ``shared``: only its turn of the tenants
        (``turns.refresh_turn``), so several daemons split the work. ``once`` (cron, timers)
        calls it with ``customers_interval`` so the map stays fresh without a daemon.
        """
        chosen = self.selected(tenants)
        if shared:
            chosen = self._refresh_share(chosen)
        elif older_than is not None:
            last = self.store.last_runs("customers")
            now = self.clock()
            chosen = [
                t
                for t in chosen
                if (at := last.get(t.name)) is None or (now - at).total_seconds() >= older_than
            ]
        reports: dict[str, MapReport] = {}

        def refresh(tenant: TenantSettings) -> MapReport:
            settings = self.settings
            try:
                with self.clients.use(tenant) as client:
                    cmap = CustomerMap(
                        settings, tenant, self.store, client, stop=self.stop, clock=self.clock
                    )
                    report = cmap.refresh()
                    # The report's orders mirror follows on the same schedule (design §7). Its
                    # failure is logged and kept in sync_run (kind "orders"); it never fails
                    # the map's report or the sync.
                    if not self.stop.is_set():
                        self._orders(settings, tenant, client)
                    return report
            except Exception as exc:
                report = MapReport(tenant.name, error=first_line(exc, with_type=True))
                logger.opt(exception=exc).error(report.summary())
                return report

        def done(tenant: TenantSettings, report: MapReport) -> bool:
            reports[tenant.name] = report
            return False

        self.bounded(chosen, refresh, done)
        return [reports[t.name] for t in chosen if t.name in reports]

    def _orders(self, settings: Settings, tenant: TenantSettings, client: RetailCRMClient) -> None:
        try:
            mirror = OrderMirror(
                settings, tenant, self.store, client, stop=self.stop, clock=self.clock
            )
            mirror.refresh()
        except Exception as exc:  # it logs its own failures; this is the last net
            logger.opt(exception=exc).error(
                f"tenant {tenant.name}: orders refresh failed: {first_line(exc, with_type=True)}"
            )

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.announced:
            try:  # peers take over at their next pass; a row left behind ages out anyway
                self.store.retire(self.owner)
            except Exception as exc:
                logger.warning(
                    f"cannot remove this process from sync_owner, its peers take its tenants "
                    f"when the row ages out: {first_line(exc, with_type=True)}"
                )
        self.clients.close()
        with self._source_lock:
            if self._source is not None:
                self._source.close()
                self._source = None
        self.engine.dispose()
