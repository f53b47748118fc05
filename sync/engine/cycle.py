"""One tenant cycle (design §2): claim, read, assemble, diff, upload, advance, report.

Delivery contract: at-least-once to the CRM, effectively once because ``externalId`` is the
CRM's dedup key. A call is recorded in ``call_sync`` before anything is sent; it is marked
``sending`` before its POST and ``sent`` only after a 2xx. A crash anywhere leaves calls
``pending`` or ``sending``, and the next owner of the lease sends those again. The cursor only
moves past calls that are complete and recorded, so nothing in the log is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from sync.calls.builder import build_page
from sync.calls.options import BuildOptions
from sync.crm import CRMError, UploadResult
from sync.engine.customers import CustomerMap
from sync.engine.pump import Batch, Outcome, Progress, PumpHooks, UploadPump
from sync.engine.state import Derived, after_failure, batch_id
from sync.engine.store import Claim, Lease, LeaseLost, TenantState, WindowSeen
from sync.engine.tenant_job import TenantJob
from sync.errors import first_line
from sync.sources import SourceError
from sync.timeutil import local_to_utc, utc_to_local, utcnow

__all__ = ["CycleOutcome", "CycleReport", "Progress", "ResyncWindow", "TenantCycle"]

ANALYZE_AFTER = 1000
"""Calls inserted, or sent, in one cycle after which the planner's statistics are refreshed."""


class CycleOutcome(StrEnum):
    """How a tenant cycle ended (the word in its summary line and in ``once``'s exit code)."""

    OK = "ok"
    IDLE = "idle"
    """The window had nothing new: it was not read."""
    BUSY = "busy"
    """Another worker holds the lease."""
    ERROR = "error"
    PAUSED = "paused"
    """403/404/405, or the module is inactive or frozen: nothing more until that changes."""
    LEASE_LOST = "lease-lost"


FAILED_OUTCOMES = (CycleOutcome.ERROR, CycleOutcome.PAUSED, CycleOutcome.LEASE_LOST)


@dataclass
class CycleReport:
    """What one tenant cycle did; one summary log line and one ``sync_run`` row."""

    tenant: str
    outcome: CycleOutcome = CycleOutcome.OK
    read: int = 0
    new: int = 0
    sent: int = 0
    duplicates: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    incomplete: int = 0
    unrouted: int = 0
    changed_after_upload: int = 0
    lag_seconds: float | None = None
    error: str | None = None
    started: datetime = field(default_factory=utcnow)
    yielded: bool = False
    """The slice ran out with calls still due: the tenant goes again soon."""

    @property
    def troubled(self) -> bool:
        """Calls failed or the tenant could not finish: ``once`` exits 1."""
        return bool(self.failed or self.dead or self.outcome in FAILED_OUTCOMES)

    def summary(self) -> str:
        lag = "-" if self.lag_seconds is None else f"{self.lag_seconds:.0f}s"
        text = (
            f"tenant {self.tenant}: {self.outcome} read={self.read} new={self.new} "
            f"sent={self.sent} duplicates={self.duplicates} failed={self.failed} "
            f"dead={self.dead} skipped={self.skipped} incomplete={self.incomplete} lag={lag}"
        )
        if self.changed_after_upload:
            text += f" changed_after_upload={self.changed_after_upload}"
        if self.unrouted:
            text += f" unrouted={self.unrouted}"
        if self.yielded:
            text += " yielded"
        if self.error:
            text += f" error: {self.error}"
        return text


@dataclass(frozen=True)
class ResyncWindow:
    """An operator's resync window in source wall time; calls already sent go again."""

    since: datetime
    until: datetime


@dataclass
class TenantCycle(TenantJob):
    """Runs cycles for one tenant; holds its client (and so its rate limit) across cycles."""

    source: Callable[[], Any] = field(kw_only=True)
    """The PBX call log, opened on first use."""
    owner: str = field(kw_only=True)

    def __post_init__(self) -> None:
        self.options: BuildOptions = self.settings.build_options()
        self.customers = (
            CustomerMap(self.settings, self.tenant, self.store, self.client, clock=self.clock)
            if self.tenant.create_customers
            else None
        )

    # -- the cycle ---------------------------------------------------------------------

    def run(
        self,
        window: ResyncWindow | None = None,
        progress: Progress | None = None,
        *,
        deadline: float | None = None,
        changed: bool = False,
    ) -> CycleReport:
        """One cycle; never raises: every failure, the claim and the finish included, ends up
        in the report (``error``), so one tenant cannot end another's cycle or the run.

        ``deadline`` (``time.monotonic``): after it no new batch is submitted and the report
        says ``yielded`` when due calls were left for the next turn. ``changed``: the caller
        has just probed the call log and seen it change, so the cycle does not probe again.
        """
        now = self.clock()
        report = CycleReport(self.tenant.name, started=now)
        try:
            claim = self.store.claim(
                self.tenant.name, self.owner, self.settings.sync.lease_seconds, now
            )
        except Exception as exc:
            self._failed(report, exc, "cannot claim the tenant")
            logger.warning(report.summary())
            return report
        if claim is None:
            report.outcome = CycleOutcome.BUSY
            logger.info(report.summary())
            return report
        lease, state = claim.lease, claim.state
        paused = False
        read: tuple[datetime | None, WindowSeen | None] = (None, None)
        try:
            if state.crm_paused is not None:
                report.outcome, report.error = CycleOutcome.PAUSED, state.crm_paused
                paused = True
            else:
                read = self._record(claim, report, window, changed)
                paused = self._send_due(lease, report, progress, deadline, state)
        except LeaseLost as exc:
            report.outcome, report.error = CycleOutcome.LEASE_LOST, str(exc)
        except Exception as exc:  # a cycle never takes the process down
            self._failed(report, exc, "cycle failed")
        finally:
            cursor, seen = read if window is None else (None, None)
            self._finish(lease, report, cursor, seen, paused)
        return report

    def _record(
        self, claim: Claim, report: CycleReport, window: ResyncWindow | None, changed: bool
    ) -> tuple[datetime | None, WindowSeen | None]:
        """The window read and recorded: the new cursor and what the read saw."""
        if claim.requeued:
            logger.warning(
                f"tenant {self.tenant.name}: {claim.requeued} calls left 'sending' by an "
                "earlier run go again (the CRM deduplicates them by externalId)"
            )
        read = self._read_and_record(claim.lease, report, window, claim.state, changed)
        if report.new >= ANALYZE_AFTER:
            self.store.analyze_calls()
        return read

    def _send_due(
        self,
        lease: Lease,
        report: CycleReport,
        progress: Progress | None,
        deadline: float | None,
        state: TenantState | None,
    ) -> bool:
        """Upload what is due; True when the tenant must pause."""
        paused = self._upload(lease, report, progress, deadline, state)
        if report.sent + report.duplicates >= ANALYZE_AFTER:
            self.store.analyze_calls()  # most rows changed status: keep the plans right
        if paused:
            report.outcome = CycleOutcome.PAUSED
        return paused

    def _failed(self, report: CycleReport, exc: Exception, what: str) -> None:
        report.outcome, report.error = CycleOutcome.ERROR, first_line(exc, with_type=True)
        expected = isinstance(exc, (CRMError, SourceError, SQLAlchemyError))
        logger.opt(exception=not expected).error(
            f"tenant {self.tenant.name}: {what}: {report.error}"
        )

    def _renew(self, lease: Lease) -> None:
        """Keep the lease while a long cycle goes on: a fenced write once half of it is spent
        (every fenced write renews it too, so most calls here write nothing)."""
        now = self.clock()
        if lease.expires_at is None or lease.expires_at - now < timedelta(
            seconds=lease.seconds / 2
        ):
            self.store.extend(lease, now)

    def _finish(
        self,
        lease: Lease,
        report: CycleReport,
        cursor: datetime | None,
        seen: WindowSeen | None,
        paused: bool,
    ) -> None:
        """Store the cycle's end: one transaction (lag, tenant row, lease given up, run
        report). When that fails each part is tried on its own, best effort, so a database
        that fails here still gets the lease released (or left to expire) and the report
        out."""
        now = self.clock()
        if report.outcome != CycleOutcome.LEASE_LOST:
            next_run = now if report.yielded else now + self._interval
            try:
                report.lag_seconds = self.store.finish_cycle(
                    lease,
                    now=now,
                    cursor=cursor,
                    error=report.error,
                    paused=paused,
                    next_run_at=next_run,
                    seen=seen,
                    run=self._run_row(report, now),
                )
                self._log(report)
                return
            except LeaseLost as exc:
                report.outcome, report.error = CycleOutcome.LEASE_LOST, str(exc)
            except Exception as exc:
                self._failed(report, exc, "cannot store the cycle's end")
                try:
                    self.store.release(lease)
                except Exception as exc:  # the lease expires by itself
                    self._failed(report, exc, "cannot release the lease (it expires by itself)")
        try:
            report.lag_seconds = self._lag(now)
        except Exception as exc:
            self._failed(report, exc, "cannot read the lag")
        try:
            self.store.record_run(self._run_row(report, now))
        except Exception as exc:
            self._failed(report, exc, "cannot record the run")
        self._log(report)

    @staticmethod
    def _log(report: CycleReport) -> None:
        log = logger.warning if report.error else logger.info
        log(report.summary())

    @property
    def _interval(self) -> timedelta:
        return timedelta(seconds=self.settings.daemon.interval)

    def _run_row(self, report: CycleReport, now: datetime) -> dict[str, Any]:
        return {
            "tenant": self.tenant.name,
            "kind": "sync",
            "owner": self.owner,
            "started_at": report.started,
            "finished_at": now,
            "read": report.read,
            "sent": report.sent,
            "duplicates": report.duplicates,
            "failed": report.failed,
            "skipped": report.skipped,
            "unrouted": report.unrouted,
            "changed_after_upload": report.changed_after_upload,
            "lag_seconds": None if report.lag_seconds is None else int(report.lag_seconds),
            "error": report.error,
        }

    def _lag(self, now: datetime) -> float:
        oldest = self.store.oldest_unsent(self.tenant.name)
        return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    # -- read, assemble, diff ------------------------------------------------------------

    def window(self, now: datetime, cursor: datetime | None) -> tuple[datetime, datetime]:
        """The regular read window in source wall time: [cursor − lookback, now)."""
        src = self.settings.source
        tz = src.timezone
        lookback = timedelta(hours=src.lookback_hours)
        start_utc = (cursor or now) - lookback
        start = utc_to_local(start_utc, tz)
        if src.start_date is not None and start < src.start_date:
            start = src.start_date
        return start, utc_to_local(now, tz) + timedelta(seconds=1)

    def _read_and_record(
        self,
        lease: Lease,
        report: CycleReport,
        window: ResyncWindow | None,
        state: TenantState,
        changed: bool,
    ) -> tuple[datetime | None, WindowSeen | None]:
        """Read the window page by page, record every complete call; returns the new cursor
        and what the read saw (both None for a resync window or an unchanged one).

        A regular cycle first asks the source whether anything changed since the last full
        read (row count and newest time from the last read's start, on the time index) and
        whether a settling call has become due; if neither, the window is not read at all.
        That keeps an idle poll of a huge log to a few index lookups. ``state`` is the
        tenant row as the claim returned it (the lease keeps others from changing it).
        """
        now = self.clock()
        source = self.source()
        match = self.tenant.match
        if window is None:
            if not changed and self._unchanged(state, source, now):
                report.outcome = CycleOutcome.IDLE
                return None, None
            start, end = self.window(now, state.cursor)
        else:
            start, end = window.since, window.until
        fingerprint = source.probe(start, tenant_match=match) if window is None else None
        recheck_at: datetime | None = None
        oldest_incomplete: datetime | None = None
        for page in source.read_window(start, end, tenant_match=match):
            rows: list[tuple[str, datetime | None, Derived]] = []
            for call in build_page(page, self.options, now):
                if call.tenant != self.tenant.name:
                    if call.tenant is None:
                        report.unrouted += 1
                    continue
                report.read += 1
                if call.status == "incomplete":
                    report.incomplete += 1
                    if call.started_at is not None and (
                        oldest_incomplete is None or call.started_at < oldest_incomplete
                    ):
                        oldest_incomplete = call.started_at
                    due = self._due(call.last_end, now)
                    recheck_at = due if recheck_at is None else min(recheck_at, due)
                    continue
                rows.append((call.external_id, self._utc(call.started_at), Derived.of(call)))
            counts = self.store.apply_derivations(lease, rows, now, force=window is not None)
            report.new += counts.inserted
            report.skipped += counts.skipped
            for external_id, before, after in counts.changed_after_upload:
                report.changed_after_upload += 1
                logger.warning(
                    f"tenant {self.tenant.name}: call {external_id} changed after it was "
                    f"uploaded; the CRM keeps the first version. sent={before} now={after}"
                )
            for external_id, warning in counts.warnings:
                logger.warning(f"tenant {self.tenant.name}: call {external_id}: {warning}")
            self._renew(lease)
        if fingerprint is None:
            return None, None
        seen = WindowSeen(start, fingerprint[0], fingerprint[1], recheck_at)
        # Everything before the oldest incomplete call (or the window's end) is recorded.
        position = oldest_incomplete if oldest_incomplete is not None else end
        return local_to_utc(min(position, end), self.settings.source.timezone), seen

    def _unchanged(self, state: TenantState, source: Any, now: datetime) -> bool:
        """True when the last full read's window has no new rows and nothing became due."""
        if state.probe_from is None or state.probe_count is None:
            return False
        if state.recheck_at is not None and state.recheck_at <= now:
            return False
        seen = source.probe(state.probe_from, tenant_match=self.tenant.match)
        return bool(seen == (state.probe_count, state.probe_max))

    def _due(self, last_end: datetime | None, now: datetime) -> datetime:
        """When a settling call is complete: settle after its last leg, else the orphan rule."""
        src = self.settings.source
        if last_end is None:
            return now + timedelta(seconds=src.settle_seconds)
        try:
            ended = local_to_utc(last_end, src.timezone)
            due = ended + timedelta(seconds=src.settle_seconds)
            return due if due > now else ended + timedelta(seconds=src.orphan_settle_seconds)
        except (OverflowError, ValueError):  # a garbage end time: look again next cycle
            return now + timedelta(seconds=src.settle_seconds)

    def _utc(self, local: datetime | None) -> datetime | None:
        return local_to_utc(local, self.settings.source.timezone) if local else None

    # -- upload --------------------------------------------------------------------------

    def _upload(
        self,
        lease: Lease,
        report: CycleReport,
        progress: Progress | None,
        deadline: float | None,
        state: TenantState | None,
    ) -> bool:
        """Send every due call; returns True when the tenant must pause (403/404/405)."""
        sync = self.settings.sync
        # Calls that fail in this cycle get a retry time after its start: each is tried once.
        started = self.clock()
        hooks = PumpHooks(
            due=lambda limit: self.store.due_calls(self.tenant.name, started, limit),
            prepare=lambda batch: self._prepare(lease, batch),
            send=self._send,
            settle=lambda batch, outcome, answer: self._settle(
                lease, report, batch, outcome, answer
            ),
            tick=lambda: self._renew(lease),
        )
        pump = UploadPump(
            hooks,
            batch_size=sync.batch_size,
            max_in_flight=sync.max_in_flight,
            first_in_flight=lambda: self._first_in_flight(state),
            stop=self.stop,
            deadline=deadline,
        )
        paused = pump.run(progress)
        report.yielded = pump.yielded
        return paused

    def _first_in_flight(self, state: TenantState | None) -> int:
        """One batch first after a cycle that ended paused or with an error: a revoked key or
        a CRM still down then costs one refused request per cycle, not ``max_in_flight``."""
        troubled = state is not None and (state.paused or state.last_error is not None)
        return 1 if troubled else self.settings.sync.max_in_flight

    def _prepare(self, lease: Lease, batch: Batch) -> None:
        if self.customers is not None:
            # Customer creation may not outlive the lease: half of it at most per batch.
            budget = self.settings.sync.lease_seconds / 2
            self.customers.ensure_customers(batch, self.owner, budget_seconds=budget)
        ids = [c.external_id for c in batch]
        self.store.mark_sending(lease, ids, batch_id(self.tenant.name, ids), self.clock())

    def _send(self, batch: Batch) -> UploadResult:
        budget = self.settings.sync.upload_budget_seconds
        return self.client.upload_calls([c.payload for c in batch], budget_seconds=budget)

    def _settle(
        self,
        lease: Lease,
        report: CycleReport,
        batch: Batch,
        outcome: Outcome,
        answer: UploadResult | BaseException,
    ) -> None:
        """Record one finished upload in the store and the report."""
        ids = [c.external_id for c in batch]
        now = self.clock()
        if isinstance(answer, UploadResult):
            self._sent(lease, report, ids, answer, now)
        elif outcome is Outcome.PAUSE:
            self.store.mark_pending(lease, ids, str(answer), now)
            report.error = str(answer)
        else:
            self._fail(lease, report, batch, answer, now)
            if outcome is Outcome.REJECTED:
                logger.error(f"tenant {self.tenant.name}: call {ids[0]} rejected: {answer}")
            elif outcome is Outcome.STOP:
                # The CRM is unwell: these calls wait for their retry time, the rest for the
                # next cycle, instead of every batch spending its own retry budget.
                report.error = str(answer)
            else:
                logger.error(f"tenant {self.tenant.name}: batch of {len(batch)} failed: {answer}")

    def _sent(
        self,
        lease: Lease,
        report: CycleReport,
        ids: Sequence[str],
        result: UploadResult,
        now: datetime,
    ) -> None:
        self.store.mark_sent(lease, ids, now)
        duplicates = len(set(result.duplicates) & set(ids))
        report.duplicates += duplicates
        report.sent += len(ids) - duplicates
        if result.processed + duplicates < len(ids):
            logger.warning(
                f"tenant {self.tenant.name}: the CRM stored {result.processed} of {len(ids)} "
                f"calls and reported {duplicates} duplicates"
            )

    def _fail(
        self,
        lease: Lease,
        report: CycleReport,
        batch: Batch,
        exc: BaseException,
        now: datetime,
    ) -> None:
        sync = self.settings.sync
        failures = []
        for call in batch:
            failure = after_failure(
                call.attempts,
                now,
                max_attempts=sync.max_attempts,
                base_seconds=sync.retry_base_seconds,
                max_seconds=sync.retry_max_seconds,
            )
            failures.append((call.external_id, failure, first_line(exc, with_type=True)))
            if failure.status == "dead":
                report.dead += 1
            else:
                report.failed += 1
        self.store.mark_failed(lease, failures, now)
