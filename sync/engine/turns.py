"""Whose turn it is: the order due tenants are cycled in, and one report from several slices.

Pure: no I/O. The runner asks the store for ``next_run_at`` and hands it here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from sync.engine.cycle import FAILED_OUTCOMES, CycleOutcome, CycleReport
from sync.engine.store import TenantState

_EPOCH = datetime(1970, 1, 1)
COUNTS = (
    "read",
    "new",
    "sent",
    "duplicates",
    "failed",
    "dead",
    "skipped",
    "incomplete",
    "unrouted",
    "changed_after_upload",
)


def due_first(
    names: Iterable[str], next_run: Mapping[str, datetime | None], salt: str = ""
) -> list[str]:
    """Never-run tenants first, then by ``next_run_at`` oldest first.

    A tenant that yielded its slice has ``next_run_at`` = the end of that slice, older than
    any tenant that finished (now + interval), so it is first in line next tick. Ties (idle
    tenants share one ``next_run_at``) go in an order of their own per ``salt`` (the process):
    several processes then start on different tenants instead of queueing behind each other's
    leases, and share the work more evenly.
    """

    def key(name: str) -> tuple[bool, datetime, str]:
        at = next_run.get(name)
        spread = hashlib.blake2b(f"{salt}/{name}".encode(), digest_size=8).hexdigest()
        return (at is not None, at or _EPOCH, spread if salt else name)

    return sorted(names, key=key)


def merged(first: CycleReport, later: CycleReport) -> CycleReport:
    """One report for a tenant cycled in several slices (``once`` drains a backlog)."""
    counts = {name: getattr(first, name) + getattr(later, name) for name in COUNTS}
    outcome = later.outcome
    if later.outcome is CycleOutcome.IDLE and first.outcome is not CycleOutcome.IDLE:
        outcome = first.outcome
    if first.outcome in FAILED_OUTCOMES and later.outcome not in FAILED_OUTCOMES:
        outcome = first.outcome
    return replace(
        later,
        outcome=outcome,
        error=later.error or first.error,
        started=first.started,
        **counts,
    )


def may_be_idle(state: TenantState | None, has_work: bool, now: datetime) -> bool:
    """Whether a tenant can skip its cycle if the call log's probe is unchanged: it has a
    fingerprint of its last full read, no settling call became due, and nothing to send."""
    if state is None or has_work or state.probe_from is None or state.probe_count is None:
        return False
    if state.crm_paused is not None:
        return False  # its cycle reports it paused (design §6.1 /activity)
    return state.recheck_at is None or state.recheck_at > now


def unchanged(state: TenantState, seen: tuple[int, datetime | None]) -> bool:
    """The probe finds what the last full read left (the cycle's own ``_unchanged`` test)."""
    return seen == (state.probe_count, state.probe_max)
