"""Pure decisions of the sync engine: what a new derivation does to a stored call, when a
failed call is tried again, how batches are named and split. No I/O, so every rule here is
unit-tested without a database.

A call's life (``call_sync.status``)::

    (new) ──ready──▶ pending ──mark──▶ sending ──2xx──▶ sent
      │                ▲  ▲              │
      └──skip──▶ skipped  │              ├─400 (isolated)──▶ failed ──max_attempts──▶ dead
                          │              ├─retries spent───▶ failed
                          └──────────────┴─403/404/405, lease lost, crash──▶ pending

``failed`` calls are due again at ``next_attempt_at``; ``requeue`` moves failed/dead back to
pending. A derivation that changes moves any unsent call (pending, failed, dead, skipped) to
its new status; a ``sent`` call never changes (the CRM keeps the first upload, R10b).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sync.calls.call import Call


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"


UNSENT = (Status.PENDING, Status.FAILED, Status.DEAD, Status.SKIPPED)


@dataclass(frozen=True, slots=True)
class Stored:
    """What ``call_sync`` holds for one call, as far as the diff cares."""

    status: str
    payload: dict[str, Any] | None
    skip_reason: str | None


@dataclass(frozen=True, slots=True)
class Derived:
    """What the builder says now: a payload to send, or a skip reason."""

    payload: dict[str, Any] | None
    skip_reason: str | None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Logged when the call is recorded or changes, not on every re-read."""

    @classmethod
    def of(cls, call: Call) -> Derived:
        """What the diff stores for a complete call; its warnings go with it to the log."""
        return cls(call.payload, call.skip_reason, call.warnings)

    @property
    def status(self) -> Status:
        return Status.SKIPPED if self.skip_reason else Status.PENDING


class Action(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    KEEP = "keep"
    CHANGED_AFTER_UPLOAD = "changed_after_upload"


def diff(stored: Stored | None, derived: Derived, *, force: bool = False) -> Action:
    """What to do with a complete call given what we stored before (design §2 step 4).

    ``force`` (an operator's resync) sends a sent call again: the CRM answers with a duplicate
    when it still has it, and stores it again when it was lost there.
    """
    if stored is None:
        return Action.INSERT
    if force and stored.status == Status.SENT and derived.payload is not None:
        return Action.UPDATE
    if stored.status in (Status.SENT, Status.SENDING):
        if derived.payload is not None and derived.payload != stored.payload:
            return Action.CHANGED_AFTER_UPLOAD
        return Action.KEEP
    same = stored.payload == derived.payload and stored.skip_reason == derived.skip_reason
    return Action.KEEP if same else Action.UPDATE


def retry_delay(attempts: int, base_seconds: int, max_seconds: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed tries: base, 2×base, 4×base … max."""
    exponent = max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(max_seconds, base_seconds * (2**exponent)))


@dataclass(frozen=True, slots=True)
class Failure:
    status: Status
    attempts: int
    next_attempt_at: datetime | None


def after_failure(
    attempts: int, now: datetime, *, max_attempts: int, base_seconds: int, max_seconds: int
) -> Failure:
    """State of a call whose upload failed for the ``attempts + 1``-th time."""
    tried = attempts + 1
    if tried >= max_attempts:
        return Failure(Status.DEAD, tried, None)
    return Failure(Status.FAILED, tried, now + retry_delay(tried, base_seconds, max_seconds))


def batch_id(tenant: str, external_ids: Sequence[str]) -> str:
    """Same calls, same id: a re-sent batch is recognisable in logs and in ``call_sync``."""
    digest = hashlib.sha1(tenant.encode(), usedforsecurity=False)
    for external_id in sorted(external_ids):
        digest.update(b"\0" + external_id.encode())
    return digest.hexdigest()[:16]


def halves(items: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    """Bisection of a rejected batch: the bad call ends up alone in log2(n) steps."""
    middle = len(items) // 2
    return items[:middle], items[middle:]
