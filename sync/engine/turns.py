"""Whose turn it is: the order due tenants are cycled in, and one report from several slices.

Pure: no I/O. The runner asks the store for ``next_run_at`` and hands it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from sync.engine.cycle import FAILED_OUTCOMES, CycleOutcome, CycleReport

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


def due_first(names: Iterable[str], next_run: Mapping[str, datetime | None]) -> list[str]:
    """Never-run tenants first, then by ``next_run_at`` oldest first; ties by name.

    A tenant that yielded its slice has ``next_run_at`` = the end of that slice, older than
    any tenant that finished (now + interval), so it is first in line next tick.
    """
    return sorted(names, key=lambda n: (next_run.get(n) is not None, next_run.get(n) or _EPOCH, n))


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
