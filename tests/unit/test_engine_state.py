"""Pure engine decisions: the diff, the retry schedule, batch naming and bisection."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sync.batches import chunks
from sync.engine.state import (
    Action,
    Derived,
    Status,
    Stored,
    after_failure,
    batch_id,
    diff,
    halves,
    retry_delay,
)

A = {"externalId": "1.1", "result": "answered"}
B = {"externalId": "1.1", "result": "no answer"}


@pytest.mark.parametrize(
    ("stored", "derived", "expected"),
    [
        (None, Derived(A, None), Action.INSERT),
        (None, Derived(None, "internal"), Action.INSERT),
        (Stored("pending", A, None), Derived(A, None), Action.KEEP),
        (Stored("pending", A, None), Derived(B, None), Action.UPDATE),
        (Stored("failed", A, None), Derived(B, None), Action.UPDATE),
        (Stored("dead", A, None), Derived(A, None), Action.KEEP),
        (Stored("skipped", None, "internal"), Derived(A, None), Action.UPDATE),
        (Stored("pending", A, None), Derived(None, "internal"), Action.UPDATE),
        (Stored("skipped", None, "internal"), Derived(None, "no number"), Action.UPDATE),
        (Stored("sent", A, None), Derived(A, None), Action.KEEP),
        (Stored("sent", A, None), Derived(B, None), Action.CHANGED_AFTER_UPLOAD),
        (Stored("sent", A, None), Derived(None, "internal"), Action.KEEP),
        (Stored("sending", A, None), Derived(B, None), Action.CHANGED_AFTER_UPLOAD),
    ],
)
def test_diff(stored: Stored | None, derived: Derived, expected: Action) -> None:
    assert diff(stored, derived) is expected


def test_resync_forces_sent_calls_again_but_not_skips() -> None:
    assert diff(Stored("sent", A, None), Derived(A, None), force=True) is Action.UPDATE
    assert diff(Stored("sent", A, None), Derived(None, "internal"), force=True) is Action.KEEP


def test_derived_status() -> None:
    assert Derived(A, None).status is Status.PENDING
    assert Derived(None, "no number").status is Status.SKIPPED


def test_retry_schedule_doubles_up_to_the_cap() -> None:
    delays = [retry_delay(n, 30, 3600).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(1000, 30, 3600) == timedelta(seconds=3600)


def test_after_failure_counts_attempts_and_goes_dead() -> None:
    now = datetime(2026, 3, 2, 10, 0, 0)
    first = after_failure(0, now, max_attempts=3, base_seconds=30, max_seconds=3600)
    assert (first.status, first.attempts, first.next_attempt_at) == (
        Status.FAILED,
        1,
        now + timedelta(seconds=30),
    )
    second = after_failure(1, now, max_attempts=3, base_seconds=30, max_seconds=3600)
    assert second.next_attempt_at == now + timedelta(seconds=60)
    last = after_failure(2, now, max_attempts=3, base_seconds=30, max_seconds=3600)
    assert (last.status, last.attempts, last.next_attempt_at) == (Status.DEAD, 3, None)


def test_batch_id_is_deterministic_and_order_free() -> None:
    assert batch_id("shop", ["b", "a"]) == batch_id("shop", ["a", "b"])
    assert batch_id("shop", ["a"]) != batch_id("other", ["a"])
    assert len(batch_id("shop", ["a"])) == 16


def test_chunks_and_halves() -> None:
    items = list(range(120))
    assert [len(c) for c in chunks(items, 50)] == [50, 50, 20]
    first, second = halves(items[:7])
    assert (list(first), list(second)) == ([0, 1, 2], [3, 4, 5, 6])
