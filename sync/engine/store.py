"""Every SQL statement on our own tables, in one place.

Writes made on behalf of a tenant cycle go through ``fenced``: one short transaction whose
first statement updates the tenant row only while our lease (owner + epoch) is still the
current one, renewing it; that locks the row until commit. A process whose lease expired
(paused, partitioned, killed and resumed) therefore cannot overwrite what the new owner did.
No transaction is ever held across an HTTP request.

A tenant cycle runs on one pooled connection (``pinned``): its statements then cost no pool
checkout, pre-ping and reset each (about 30 round trips a cycle less, measured in
docs/performance.md).
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from models import (
    UNSENT_WHERE,
    CallSync,
    CustomerClaim,
    RetailcrmCustomer,
    SyncOwner,
    SyncRun,
    SyncTenant,
)
from sync.batches import chunks
from sync.engine.customer_changes import Change
from sync.engine.state import UNSENT, Action, Derived, Failure, Status, Stored, diff

TENANT = cast(sa.Table, SyncTenant.__table__)
CALLS = cast(sa.Table, CallSync.__table__)
CUSTOMERS = cast(sa.Table, RetailcrmCustomer.__table__)
CLAIMS = cast(sa.Table, CustomerClaim.__table__)
RUNS = cast(sa.Table, SyncRun.__table__)
OWNERS = cast(sa.Table, SyncOwner.__table__)


class LeaseLost(Exception):
    """Another process owns the tenant now; this cycle must stop writing."""


@dataclass(slots=True)
class Lease:
    tenant: str
    owner: str
    epoch: int
    seconds: float = 0.0
    """How long each renewal holds it (``[sync] lease_seconds``)."""
    expires_at: datetime | None = field(default=None, compare=False)
    """As our last fenced write set it: the cycle renews only when half of it is spent."""


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str) -> bool:
    """True for a lease of a process on this host that no longer runs (design §2 step 1)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class TenantState:
    name: str
    cursor: datetime | None
    paused: bool
    last_success_at: datetime | None
    last_error: str | None
    customers_since_id: int | None
    customers_seeded_at: datetime | None
    client_id: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    probe_from: datetime | None = None
    probe_count: int | None = None
    probe_max: datetime | None = None
    recheck_at: datetime | None = None
    next_run_at: datetime | None = None
    trigger_token: str | None = None
    crm_active: bool = True
    crm_frozen: bool = False

    @property
    def crm_paused(self) -> str | None:
        """Why RetailCRM does not want this tenant's data now (``/activity``), else None."""
        if self.crm_frozen:
            return "module frozen by RetailCRM (/activity): nothing is uploaded"
        if not self.crm_active:
            return "module deactivated in RetailCRM (/activity): nothing is uploaded"
        return None


@dataclass(frozen=True, slots=True)
class Presence:
    """A daemon's row in ``sync_owner``: when it started and when its last pass began."""

    owner: str
    started_at: datetime
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class DueCall:
    external_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class DiffCounts:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    changed_after_upload: tuple[tuple[str, Any, Any], ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()
    """(externalId, warning) of calls recorded or changed by this diff."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A taken lease, the tenant's row as the claim left it, and the calls it put back."""

    lease: Lease
    state: TenantState
    requeued: int


@dataclass(frozen=True, slots=True)
class WindowSeen:
    """What a cycle's full read saw: lets a later, unchanged window go unread."""

    probe_from: datetime
    count: int
    newest: datetime | None
    recheck_at: datetime | None


def _state(row: Any) -> TenantState:
    return TenantState(
        name=row["name"],
        cursor=row["cursor"],
        paused=bool(row["paused"]),
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
        customers_since_id=row["customers_since_id"],
        customers_seeded_at=row["customers_seeded_at"],
        client_id=row["client_id"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        probe_from=row["probe_from"],
        probe_count=row["probe_count"],
        probe_max=row["probe_max"],
        recheck_at=row["recheck_at"],
        next_run_at=row["next_run_at"],
        trigger_token=row["trigger_token"],
        crm_active=bool(row["crm_active"]),
        crm_frozen=bool(row["crm_frozen"]),
    )


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None

    @contextmanager
    def pinned(self) -> Iterator[Store]:
        """This store on one pooled connection, for one thread (a tenant cycle) at a time.

        Transactions stay as short as they are on the engine: reads end with a rollback and
        none is open while the cycle waits for the CRM. After a lost connection the next
        statement reconnects, as the pool would.
        """
        if self._conn is not None:
            yield self
            return
        with self.engine.connect() as conn:
            pinned = copy.copy(self)
            pinned._conn = conn
            yield pinned

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """One transaction, committed on success."""
        if self._conn is None:
            with self.engine.begin() as conn:
                yield conn
        else:
            with self._conn.begin():
                yield self._conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A connection for reads; its implicit transaction ends with the block."""
        if self._conn is None:
            with self.engine.connect() as conn:
                yield conn
            return
        try:
            yield self._conn
        finally:
            if self._conn.in_transaction():
                self._conn.rollback()

    # -- tenants and leases -------------------------------------------------------------

    def ensure_tenants(self, names: Iterable[str]) -> None:
        """Create the rows of tenants not seen before: one read, one insert (thousands of
        tenants cost two statements); a concurrent creator falls back to row by row."""
        wanted = set(names)
        with self._read() as conn:
            have = set(conn.execute(sa.select(TENANT.c.name)).scalars())
        missing = sorted(wanted - have)
        if not missing:
            return
        rows = [{"name": n, "lease_epoch": 0, "paused": False} for n in missing]
        try:
            with self._tx() as conn:
                conn.execute(sa.insert(TENANT), rows)
            return
        except IntegrityError:
            pass  # another process created some of them first
        for row in rows:
            try:
                with self._tx() as conn:
                    conn.execute(sa.insert(TENANT), [row])
            except IntegrityError:
                continue

    def tenant(self, name: str) -> TenantState | None:
        with self._read() as conn:
            row = conn.execute(sa.select(TENANT).where(TENANT.c.name == name)).mappings().first()
        return None if row is None else _state(row)

    def tenant_states(self) -> dict[str, TenantState]:
        """Every tenant's row in one statement (status, the scheduler)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(TENANT)).mappings().all()
        return {row["name"]: _state(row) for row in rows}

    def held_leases(self, names: Collection[str]) -> dict[str, tuple[str, datetime]]:
        """Tenant -> (owner, expiry) of the leases held among ``names``, in one statement (when
        to try again the tenants a pass found busy)."""
        if not names:
            return {}
        query = sa.select(TENANT.c.name, TENANT.c.lease_owner, TENANT.c.lease_expires_at).where(
            TENANT.c.name.in_(sorted(names)),
            TENANT.c.lease_owner.is_not(None),
            TENANT.c.lease_expires_at.is_not(None),
        )
        with self._read() as conn:
            return {name: (owner, at) for name, owner, at in conn.execute(query)}

    def claim(
        self,
        tenant: str,
        owner: str,
        lease_seconds: float,
        now: datetime,
        is_dead: Callable[[str], bool] = owner_is_dead,
    ) -> Claim | None:
        """Take the tenant's lease and put calls a previous owner left ``sending`` back to
        ``pending`` (the CRM dedups them by externalId), in one short transaction; the tenant's
        row comes back with it. None when a live owner holds the lease.

        One statement when the lease is free, expired or ours; a lease held by a process of
        this host that no longer runs costs a second look.
        """
        expires = now + timedelta(seconds=lease_seconds)
        take = (
            sa.update(TENANT)
            .where(TENANT.c.name == tenant)
            .values(
                lease_owner=owner,
                lease_expires_at=expires,
                lease_epoch=sa.func.coalesce(TENANT.c.lease_epoch, 0) + 1,
            )
            .returning(*TENANT.c)
        )
        free = sa.or_(
            TENANT.c.lease_owner.is_(None),
            TENANT.c.lease_expires_at.is_(None),
            TENANT.c.lease_expires_at <= now,
            TENANT.c.lease_owner == owner,
        )
        with self._tx() as conn:
            row = conn.execute(take.where(free)).mappings().first()
            if row is None:
                holder = conn.execute(
                    sa.select(TENANT.c.lease_owner).where(TENANT.c.name == tenant)
                ).scalar()
                if holder is None or not is_dead(holder):
                    return None
                row = conn.execute(take.where(TENANT.c.lease_owner == holder)).mappings().first()
                if row is None:
                    return None
            lease = Lease(tenant, owner, int(row["lease_epoch"]), lease_seconds, expires)
            requeued = conn.execute(
                sa.update(CALLS)
                .where(CALLS.c.tenant == tenant, CALLS.c.status == Status.SENDING.value)
                .values(status=Status.PENDING.value, updated_at=now)
            ).rowcount
        return Claim(lease, _state(row), int(requeued or 0))

    @contextmanager
    def fenced(self, lease: Lease, now: datetime | None = None) -> Iterator[sa.Connection]:
        """A transaction that only commits while ``lease`` is still the tenant's lease.

        Its first statement locks the tenant row if owner and epoch still match and, given
        ``now``, renews the lease: a holder that writes is plainly alive.
        """
        expires = None
        values: dict[str, Any] = {"lease_epoch": TENANT.c.lease_epoch}  # locks, changes nothing
        if now is not None and lease.seconds:
            expires = now + timedelta(seconds=lease.seconds)
            values = {"lease_expires_at": expires}
        with self._tx() as conn:
            self._fence(conn, lease, values)
            yield conn
        if expires is not None:
            lease.expires_at = expires

    def _fence(self, conn: sa.Connection, lease: Lease, values: dict[str, Any]) -> None:
        matched = conn.execute(
            sa.update(TENANT)
            .where(
                TENANT.c.name == lease.tenant,
                TENANT.c.lease_owner == lease.owner,
                TENANT.c.lease_epoch == lease.epoch,
            )
            .values(**values)
        ).rowcount
        if matched != 1:
            holder = conn.execute(
                sa.select(TENANT.c.lease_owner).where(TENANT.c.name == lease.tenant)
            ).scalar()
            raise LeaseLost(f"tenant {lease.tenant}: lease taken over by {holder}")

    def extend(self, lease: Lease, now: datetime) -> None:
        """Renew the lease for another ``lease.seconds``."""
        with self.fenced(lease, now):
            pass

    def release(self, lease: Lease) -> None:
        """Give the lease up; a lost lease is not ours to release."""
        try:
            with self._tx() as conn:
                self._fence(conn, lease, {"lease_owner": None, "lease_expires_at": None})
        except LeaseLost:
            pass

    def finish_cycle(
        self,
        lease: Lease,
        *,
        now: datetime,
        cursor: datetime | None,
        error: str | None,
        paused: bool,
        next_run_at: datetime | None = None,
        seen: WindowSeen | None = None,
        run: dict[str, Any] | None = None,
    ) -> float:
        """A cycle's end in one transaction: the tenant's lag (its oldest unsent call), its
        row (cursor, the window seen, next turn, error) with the lease given up, and the
        run's report with that lag. Returns the lag in seconds; LeaseLost writes nothing."""
        values: dict[str, Any] = {
            "last_error": error,
            "paused": paused,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if next_run_at is not None:
            values["next_run_at"] = next_run_at
        if cursor is not None:
            values["cursor"] = cursor
        if error is None:
            values["last_success_at"] = now
        if seen is not None:
            values.update(
                probe_from=seen.probe_from,
                probe_count=seen.count,
                probe_max=seen.newest,
                recheck_at=seen.recheck_at,
            )
        with self._tx() as conn:
            oldest = conn.execute(_oldest_unsent(lease.tenant)).scalar()
            lag = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            self._fence(conn, lease, values)
            if run is not None:
                conn.execute(sa.insert(RUNS).values(**(run | {"lag_seconds": int(lag)})))
        return lag

    def tenants_with_work(self, now: datetime) -> set[str]:
        """Tenants with calls to send now (pending, sending, or failed and due), for all
        tenants in one statement on the partial index ``ix_call_sync_unsent``."""
        query = (
            sa.select(CALLS.c.tenant)
            .where(
                sa.text(UNSENT_WHERE),  # as the index says it, so the planner picks the index
                sa.or_(CALLS.c.status != Status.FAILED.value, CALLS.c.next_attempt_at <= now),
            )
            .distinct()
        )
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def mark_idle(self, names: Sequence[str], now: datetime, next_run_at: datetime) -> int:
        """Idle tenants' pass in one statement per chunk: a success, and their next turn;
        tenants whose lease someone holds are left to that holder."""
        marked = 0
        with self._tx() as conn:
            for chunk in chunks(names):
                result = conn.execute(
                    sa.update(TENANT)
                    .where(
                        TENANT.c.name.in_(chunk),
                        sa.or_(
                            TENANT.c.lease_owner.is_(None),
                            TENANT.c.lease_expires_at.is_(None),
                            TENANT.c.lease_expires_at <= now,
                        ),
                    )
                    .values(
                        last_success_at=now, last_error=None, paused=False, next_run_at=next_run_at
                    )
                )
                marked += int(result.rowcount or 0)
        return marked

    def set_client_id(self, tenant: str, client_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(TENANT)
                .where(TENANT.c.name == tenant, TENANT.c.client_id.is_(None))
                .values(client_id=client_id)
            )

    def set_trigger_token(self, tenant: str, token: str) -> None:
        """Set once: a concurrent `register` keeps the first token."""
        with self._tx() as conn:
            conn.execute(
                sa.update(TENANT)
                .where(TENANT.c.name == tenant, TENANT.c.trigger_token.is_(None))
                .values(trigger_token=token)
            )

    def set_activity(self, tenant: str, *, active: bool, frozen: bool, now: datetime) -> None:
        """The module's flags as RetailCRM reported them to ``/activity``."""
        with self._tx() as conn:
            conn.execute(
                sa.update(TENANT)
                .where(TENANT.c.name == tenant)
                .values(crm_active=active, crm_frozen=frozen, activity_at=now)
            )

    # -- calls: diff ---------------------------------------------------------------------

    def apply_derivations(
        self,
        lease: Lease,
        calls: Sequence[tuple[str, datetime | None, Derived]],
        now: datetime,
        *,
        force: bool = False,
    ) -> DiffCounts:
        """Insert new calls and move unsent ones to their latest derivation, set-based."""
        if not calls:
            return DiffCounts()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        changed: list[tuple[str, Any, Any]] = []
        warnings: list[tuple[str, str]] = []
        with self.fenced(lease, now) as conn:
            stored = self._stored(conn, lease.tenant, [c[0] for c in calls])
            for external_id, started_at, derived in calls:
                before = stored.get(external_id)
                action = diff(before, derived, force=force)
                row = {
                    "b_id": external_id,
                    "b_status": derived.status.value,
                    "b_payload": derived.payload,
                    "b_skip": derived.skip_reason,
                    "b_started": started_at,
                }
                if action in (Action.INSERT, Action.UPDATE):
                    (inserts if action is Action.INSERT else updates).append(row)
                    warnings.extend((external_id, w) for w in derived.warnings)
                elif action is Action.CHANGED_AFTER_UPLOAD and before is not None:
                    changed.append((external_id, before.payload, derived.payload))
            if inserts:
                conn.execute(
                    sa.insert(CALLS),
                    [
                        {
                            "tenant": lease.tenant,
                            "external_id": r["b_id"],
                            "status": r["b_status"],
                            "payload": r["b_payload"],
                            "skip_reason": r["b_skip"],
                            "started_at": r["b_started"],
                            "attempts": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for r in inserts
                    ],
                )
            if updates:
                # Constants, not bound lists: an expanding IN cannot go with executemany.
                updatable = [s.value for s in UNSENT] + ([Status.SENT.value] if force else [])
                status_ok = sa.or_(
                    *(CALLS.c.status == sa.literal_column(f"'{s}'") for s in updatable)
                )
                conn.execute(
                    sa.update(CALLS)
                    .where(
                        CALLS.c.tenant == lease.tenant,
                        CALLS.c.external_id == sa.bindparam("b_id"),
                        status_ok,
                    )
                    .values(
                        status=sa.bindparam("b_status"),
                        payload=sa.bindparam("b_payload", type_=CALLS.c.payload.type),
                        skip_reason=sa.bindparam("b_skip"),
                        started_at=sa.bindparam("b_started"),
                        attempts=0,
                        next_attempt_at=None,
                        last_error=None,
                        updated_at=now,
                    ),
                    updates,
                )
        skipped = sum(1 for r in inserts + updates if r["b_skip"])
        return DiffCounts(len(inserts), len(updates), skipped, tuple(changed), tuple(warnings))

    def _stored(self, conn: sa.Connection, tenant: str, ids: Sequence[str]) -> dict[str, Stored]:
        found: dict[str, Stored] = {}
        for chunk in chunks(ids):
            rows = conn.execute(
                sa.select(
                    CALLS.c.external_id, CALLS.c.status, CALLS.c.payload, CALLS.c.skip_reason
                ).where(CALLS.c.tenant == tenant, CALLS.c.external_id.in_(chunk))
            )
            for r in rows:
                found[r.external_id] = Stored(r.status, r.payload, r.skip_reason)
        return found

    # -- calls: upload state ---------------------------------------------------------------

    def analyze_calls(self) -> None:
        """Refresh the planner's statistics of ``call_sync`` after a big insert.

        A first backfill grows the table from nothing faster than autovacuum notices; with
        stale statistics PostgreSQL plans the per-batch updates as full scans (45 ms instead
        of 1 ms per batch measured at 20 000 calls), which caps the upload rate.
        """
        with self._tx() as conn:
            conn.execute(sa.text("ANALYZE call_sync"))

    def due_calls(self, tenant: str, now: datetime, limit: int) -> list[DueCall]:
        """Failed calls whose retry time has come, then pending calls oldest first; fewer
        than ``limit`` means there are no more.

        Two index-ordered parts rather than one query with an OR, so that neither sorts the
        whole backlog: (tenant, status, next_attempt_at) and (tenant, status, started_at); one
        round trip for both (UNION ALL of at most ``2 × limit`` rows, sorted by part).
        """
        columns = (
            CALLS.c.external_id,
            CALLS.c.payload,
            CALLS.c.attempts,
            CALLS.c.next_attempt_at,
            CALLS.c.started_at,
        )
        retry = (
            sa.select(*columns, sa.literal_column("0").label("part"))
            .where(
                CALLS.c.tenant == tenant,
                CALLS.c.status == Status.FAILED.value,
                CALLS.c.next_attempt_at <= now,
                CALLS.c.payload.is_not(None),
            )
            .order_by(CALLS.c.next_attempt_at)
            .limit(limit)
            .subquery()
        )
        pending = (
            sa.select(*columns, sa.literal_column("1").label("part"))
            .where(
                CALLS.c.tenant == tenant,
                CALLS.c.status == Status.PENDING.value,
                CALLS.c.payload.is_not(None),
            )
            .order_by(CALLS.c.started_at, CALLS.c.external_id)
            .limit(limit)
            .subquery()
        )
        both = sa.union_all(sa.select(retry), sa.select(pending)).subquery()
        query = sa.select(both.c.external_id, both.c.payload, both.c.attempts).order_by(
            both.c.part, both.c.next_attempt_at, both.c.started_at, both.c.external_id
        )
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [DueCall(r.external_id, r.payload, r.attempts) for r in rows]

    def mark_sending(self, lease: Lease, ids: Sequence[str], batch_id: str, now: datetime) -> None:
        with self.fenced(lease, now) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    sa.update(CALLS)
                    .where(CALLS.c.tenant == lease.tenant, CALLS.c.external_id.in_(chunk))
                    .values(status=Status.SENDING.value, batch_id=batch_id, updated_at=now)
                )

    def mark_sent(self, lease: Lease, ids: Sequence[str], now: datetime) -> None:
        with self.fenced(lease, now) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    sa.update(CALLS)
                    .where(CALLS.c.tenant == lease.tenant, CALLS.c.external_id.in_(chunk))
                    .values(
                        status=Status.SENT.value,
                        sent_at=now,
                        last_error=None,
                        next_attempt_at=None,
                        updated_at=now,
                    )
                )

    def mark_failed(
        self, lease: Lease, failures: Sequence[tuple[str, Failure, str]], now: datetime
    ) -> None:
        if not failures:
            return
        with self.fenced(lease, now) as conn:
            conn.execute(
                sa.update(CALLS)
                .where(CALLS.c.tenant == lease.tenant, CALLS.c.external_id == sa.bindparam("b_id"))
                .values(
                    status=sa.bindparam("b_status"),
                    attempts=sa.bindparam("b_attempts"),
                    next_attempt_at=sa.bindparam("b_next"),
                    last_error=sa.bindparam("b_error"),
                    updated_at=now,
                ),
                [
                    {
                        "b_id": external_id,
                        "b_status": f.status.value,
                        "b_attempts": f.attempts,
                        "b_next": f.next_attempt_at,
                        "b_error": error[:2000],
                    }
                    for external_id, f, error in failures
                ],
            )

    def mark_pending(self, lease: Lease, ids: Sequence[str], error: str, now: datetime) -> None:
        """Back to pending without counting an attempt: the fault was not the call's."""
        with self.fenced(lease, now) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    sa.update(CALLS)
                    .where(CALLS.c.tenant == lease.tenant, CALLS.c.external_id.in_(chunk))
                    .values(status=Status.PENDING.value, last_error=error[:2000], updated_at=now)
                )

    def last_run(self, tenant: str, kind: str) -> datetime | None:
        with self._read() as conn:
            return conn.execute(
                sa.select(sa.func.max(RUNS.c.started_at)).where(
                    RUNS.c.tenant == tenant, RUNS.c.kind == kind
                )
            ).scalar()

    def last_runs(self, kind: str) -> dict[str, datetime]:
        """Every tenant's latest run of ``kind`` in one statement."""
        query = (
            sa.select(RUNS.c.tenant, sa.func.max(RUNS.c.started_at))
            .where(RUNS.c.kind == kind)
            .group_by(RUNS.c.tenant)
        )
        with self._read() as conn:
            return {tenant: at for tenant, at in conn.execute(query) if at is not None}

    def record_run(self, values: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(sa.insert(RUNS).values(**values))

    # -- customer map -------------------------------------------------------------------

    def apply_map_changes(self, tenant: str, changes: Sequence[Change], now: datetime) -> None:
        """Apply history-derived edits in order, in one transaction (idempotent)."""
        if not changes:
            return
        mine = CUSTOMERS.c.enterprise_number == tenant
        with self._tx() as conn:
            for change in changes:
                if change.kind == "add":
                    exists = conn.execute(
                        sa.select(CUSTOMERS.c.id).where(
                            mine,
                            CUSTOMERS.c.phone == change.phone,
                            CUSTOMERS.c.retailcrm_customer_id == change.customer_id,
                        )
                    ).first()
                    if exists is None:
                        try:
                            with conn.begin_nested():
                                conn.execute(
                                    sa.insert(CUSTOMERS).values(
                                        enterprise_number=tenant,
                                        phone=change.phone,
                                        retailcrm_customer_id=change.customer_id,
                                        created_at=now,
                                        updated_at=now,
                                    )
                                )
                        except IntegrityError:
                            pass  # added by a concurrent refresh: the same row
                elif change.kind == "remove":
                    conn.execute(
                        sa.delete(CUSTOMERS).where(
                            mine,
                            CUSTOMERS.c.phone == change.phone,
                            CUSTOMERS.c.retailcrm_customer_id == change.customer_id,
                        )
                    )
                elif change.kind == "drop":
                    conn.execute(
                        sa.delete(CUSTOMERS).where(
                            mine, CUSTOMERS.c.retailcrm_customer_id == change.customer_id
                        )
                    )
                else:  # move: the merged customer's numbers now belong to the survivor
                    phones = (
                        conn.execute(
                            sa.select(CUSTOMERS.c.phone).where(
                                mine, CUSTOMERS.c.retailcrm_customer_id == change.customer_id
                            )
                        )
                        .scalars()
                        .all()
                    )
                    conn.execute(
                        sa.delete(CUSTOMERS).where(
                            mine, CUSTOMERS.c.retailcrm_customer_id == change.customer_id
                        )
                    )
                    for phone in phones:
                        conn.execute(
                            sa.insert(CUSTOMERS).from_select(
                                [
                                    "enterprise_number",
                                    "phone",
                                    "retailcrm_customer_id",
                                    "created_at",
                                    "updated_at",
                                ],
                                sa.select(
                                    sa.literal(tenant),
                                    sa.literal(phone),
                                    sa.literal(change.into),
                                    sa.literal(now),
                                    sa.literal(now),
                                ).where(
                                    ~sa.exists().where(
                                        mine,
                                        CUSTOMERS.c.phone == phone,
                                        CUSTOMERS.c.retailcrm_customer_id == change.into,
                                    )
                                ),
                            )
                        )

    def customer_map(self, tenant: str) -> set[tuple[str, int]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(CUSTOMERS.c.phone, CUSTOMERS.c.retailcrm_customer_id).where(
                    CUSTOMERS.c.enterprise_number == tenant
                )
            )
            return {(r.phone, int(r.retailcrm_customer_id)) for r in rows}

    def known_phones(self, tenant: str, phones: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._read() as conn:
            for chunk in chunks(sorted(set(phones))):
                found.update(
                    conn.execute(
                        sa.select(CUSTOMERS.c.phone).where(
                            CUSTOMERS.c.enterprise_number == tenant, CUSTOMERS.c.phone.in_(chunk)
                        )
                    ).scalars()
                )
        return found

    def set_customers_cursor(self, tenant: str, since_id: int | None, seeded_at: datetime) -> None:
        values: dict[str, Any] = {"customers_seeded_at": seeded_at}
        if since_id is not None:
            values["customers_since_id"] = since_id
        with self._tx() as conn:
            conn.execute(sa.update(TENANT).where(TENANT.c.name == tenant).values(**values))

    def claim_phone(
        self, tenant: str, phone: str, owner: str, now: datetime, stale_after: timedelta
    ) -> bool:
        """True for the one worker that may create this number's customer."""
        try:
            with self._tx() as conn:
                conn.execute(
                    sa.insert(CLAIMS).values(
                        tenant=tenant, phone=phone, owner=owner, claimed_at=now
                    )
                )
            return True
        except IntegrityError:
            pass
        # A claim left unfinished by a crash is taken over after a while; the CRM search that
        # follows finds the customer if the crashed worker did create it.
        with self._tx() as conn:
            taken = conn.execute(
                sa.update(CLAIMS)
                .where(
                    CLAIMS.c.tenant == tenant,
                    CLAIMS.c.phone == phone,
                    CLAIMS.c.retailcrm_customer_id.is_(None),
                    CLAIMS.c.claimed_at < now - stale_after,
                )
                .values(owner=owner, claimed_at=now)
            )
        return bool(taken.rowcount)

    def release_phone(self, tenant: str, phone: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.delete(CLAIMS).where(
                    CLAIMS.c.tenant == tenant,
                    CLAIMS.c.phone == phone,
                    CLAIMS.c.retailcrm_customer_id.is_(None),
                )
            )

    def finish_phone_claim(self, tenant: str, phone: str, customer_id: int) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(CLAIMS)
                .where(CLAIMS.c.tenant == tenant, CLAIMS.c.phone == phone)
                .values(retailcrm_customer_id=customer_id)
            )

    # -- operator commands ---------------------------------------------------------------

    def status_counts(self) -> dict[str, dict[str, Any]]:
        """Per tenant: count per status and the oldest pending call's start."""
        result: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for name in conn.execute(sa.select(TENANT.c.name).order_by(TENANT.c.name)).scalars():
                result[name] = {s.value: 0 for s in Status}
            rows = conn.execute(
                sa.select(CALLS.c.tenant, CALLS.c.status, sa.func.count()).group_by(
                    CALLS.c.tenant, CALLS.c.status
                )
            )
            for tenant, status, count in rows:
                result.setdefault(tenant, {s.value: 0 for s in Status})[status] = int(count)
            oldest = conn.execute(
                sa.select(CALLS.c.tenant, sa.func.min(CALLS.c.created_at))
                .where(
                    CALLS.c.status.in_(
                        [Status.PENDING.value, Status.FAILED.value, Status.SENDING.value]
                    )
                )
                .group_by(CALLS.c.tenant)
            )
            for tenant, created in oldest:
                result.setdefault(tenant, {s.value: 0 for s in Status})["oldest_pending"] = created
        return result

    def status_summary(self) -> dict[str, dict[str, Any]]:
        """Per tenant with calls: count per status and ``oldest_unsent`` (the lag's start), in
        one grouped statement whatever the number of tenants."""
        unsent = {Status.PENDING.value, Status.SENDING.value, Status.FAILED.value}
        query = sa.select(
            CALLS.c.tenant, CALLS.c.status, sa.func.count(), sa.func.min(CALLS.c.started_at)
        ).group_by(CALLS.c.tenant, CALLS.c.status)
        result: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for tenant, status, count, oldest in conn.execute(query):
                row = result.setdefault(tenant, {s.value: 0 for s in Status})
                row[status] = int(count)
                if status in unsent and oldest is not None:
                    known = row.get("oldest_unsent")
                    row["oldest_unsent"] = oldest if known is None else min(known, oldest)
        return result

    def skip_reasons(self, tenant: str) -> list[tuple[str, int]]:
        """Calls recorded but not uploaded, by reason, most frequent first."""
        query = (
            sa.select(CALLS.c.skip_reason, sa.func.count())
            .where(CALLS.c.tenant == tenant, CALLS.c.status == Status.SKIPPED.value)
            .group_by(CALLS.c.skip_reason)
        )
        with self._read() as conn:
            rows = [(str(reason), int(count)) for reason, count in conn.execute(query)]
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def oldest_unsent(self, tenant: str) -> datetime | None:
        """Start of the oldest call still waiting to reach the CRM: the tenant's lag."""
        with self._read() as conn:
            return conn.execute(_oldest_unsent(tenant)).scalar()

    def requeue(self, tenant: str | None, dead: bool, now: datetime) -> int:
        statuses = [Status.FAILED.value] + ([Status.DEAD.value] if dead else [])
        query = sa.update(CALLS).where(CALLS.c.status.in_(statuses))
        if tenant is not None:
            query = query.where(CALLS.c.tenant == tenant)
        with self._tx() as conn:
            result = conn.execute(
                query.values(
                    status=Status.PENDING.value, attempts=0, next_attempt_at=None, updated_at=now
                )
            )
        return int(result.rowcount or 0)

    def call_history(self, external_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(CALLS).where(CALLS.c.external_id == external_id)
            ).mappings()
            return [dict(r) for r in rows]

    def prune(self, before: datetime) -> tuple[int, int]:
        """Drop old run reports and the payloads of calls sent long ago (keep their state)."""
        with self._tx() as conn:
            runs = conn.execute(sa.delete(RUNS).where(RUNS.c.started_at < before)).rowcount
            payloads = conn.execute(
                sa.update(CALLS)
                .where(
                    CALLS.c.status == Status.SENT.value,
                    CALLS.c.sent_at < before,
                    CALLS.c.payload.is_not(None),
                )
                .values(payload=sa.null())
            ).rowcount
        return int(runs or 0), int(payloads or 0)

    # -- processes (presence) -----------------------------------------------------------
    # Which daemons share the tenants: it only orders the work (sync.engine.turns), the lease
    # above stays the guarantee, so none of these statements is fenced.

    def announce(self, owner: str, now: datetime) -> None:
        """Insert or refresh this process's row in one statement (``started_at`` kept)."""
        values = {"owner": owner, "started_at": now, "seen_at": now}
        keep = {"seen_at": now}
        query: sa.Executable
        if self.engine.dialect.name == "postgresql":
            query = postgresql.insert(OWNERS).values(values)
            query = query.on_conflict_do_update(index_elements=[OWNERS.c.owner], set_=keep)
        else:  # SQLite: the config refuses any other database for our tables
            query = sqlite.insert(OWNERS).values(values)
            query = query.on_conflict_do_update(index_elements=[OWNERS.c.owner], set_=keep)
        with self._tx() as conn:
            conn.execute(query)

    def presences(self, seen_since: datetime | None = None) -> list[Presence]:
        """The processes' rows, those seen since ``seen_since`` when given, in one statement."""
        query = sa.select(OWNERS.c.owner, OWNERS.c.started_at, OWNERS.c.seen_at)
        if seen_since is not None:
            query = query.where(OWNERS.c.seen_at >= seen_since)
        with self._read() as conn:
            return [Presence(*row) for row in conn.execute(query.order_by(OWNERS.c.owner))]

    def retire(self, owner: str) -> None:
        """A clean stop: peers take this process's tenants at their next pass, not one
        presence window later."""
        with self._tx() as conn:
            conn.execute(sa.delete(OWNERS).where(OWNERS.c.owner == owner))

    def forget_presences(self, before: datetime) -> int:
        """Rows of processes gone without a clean stop (kill -9, a crash), for housekeeping."""
        with self._tx() as conn:
            result = conn.execute(sa.delete(OWNERS).where(OWNERS.c.seen_at < before))
        return int(result.rowcount or 0)


def _oldest_unsent(tenant: str) -> sa.Select[Any]:
    return sa.select(sa.func.min(CALLS.c.started_at)).where(
        CALLS.c.tenant == tenant,
        CALLS.c.status.in_([Status.PENDING.value, Status.SENDING.value, Status.FAILED.value]),
    )
