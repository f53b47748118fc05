"""The upload pump: due calls in batches, several batches in flight, bisection of a rejected one.

The pump only moves batches; what a batch's answer means for the stored calls is the cycle's
``settle``. Flow control: after a troubled cycle (paused, or ended on an error) one batch goes
first, and the pump opens up to ``max_in_flight`` once the CRM answers as it should, so a revoked
key or a CRM still down costs one refused request per cycle. A 400 on a batch of several calls
splits it in halves until the bad call stands alone (log2(n) requests).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum

from sync.batches import chunks
from sync.crm import (
    AccountNotFoundError,
    AuthError,
    NotFoundError,
    RetriableError,
    UploadResult,
    ValidationError,
)
from sync.engine.state import halves
from sync.engine.store import DueCall

Batch = Sequence[DueCall]
Progress = Callable[[int, int], None]
"""Called with (calls done, calls known) while uploading."""

# A tenant is stopped for the cycle (and `paused` shown) on errors that no retry can fix.
STOPPING_ERRORS = (AuthError, NotFoundError, AccountNotFoundError)


class Outcome(Enum):
    """What one batch's answer means for the rest of the cycle."""

    OK = "ok"
    """Stored (duplicates included): the CRM is well, open up."""
    REJECTED = "rejected"
    """400 on this call (or this batch, to be split)."""
    FAILED = "failed"
    """An unexpected error on this batch only."""
    STOP = "stop"
    """Retries spent on 429/5xx/timeouts: the CRM is unwell, submit nothing more this cycle."""
    PAUSE = "pause"
    """403/404/405: no retry can fix it; the tenant pauses."""


def classify(error: BaseException | None) -> Outcome:
    """The outcome of a finished upload, from the exception it raised (None: success)."""
    if error is None:
        return Outcome.OK
    if isinstance(error, ValidationError):
        return Outcome.REJECTED
    if isinstance(error, STOPPING_ERRORS):
        return Outcome.PAUSE
    if isinstance(error, RetriableError):
        return Outcome.STOP
    return Outcome.FAILED


@dataclass(frozen=True)
class PumpHooks:
    """The cycle's side of the pump; every hook runs on the pump's (the cycle's) thread."""

    due: Callable[[int], Sequence[DueCall]]
    """Up to n due calls not yet handed out in this cycle, oldest first; fewer than n: no more."""
    prepare: Callable[[Batch], None]
    """Before a batch's POST: create customers, mark it ``sending``."""
    send: Callable[[Batch], UploadResult]
    """The POST itself; runs in the pool."""
    settle: Callable[[Batch, Outcome, UploadResult | BaseException], None]
    """Record a batch's answer in the store and the report."""
    tick: Callable[[], None]
    """After every settled round: extend the lease (raises LeaseLost)."""


@dataclass
class UploadPump:
    """Sends every due call of one cycle; ``run`` returns True when the tenant must pause.

    ``first_in_flight`` is asked once, when there is something to send: an idle cycle costs no
    query for it. ``deadline`` (``monotonic`` seconds) is the tenant's slice: after it no new
    batch is taken and ``yielded`` says calls were still due.
    """

    hooks: PumpHooks
    batch_size: int = field(kw_only=True)
    max_in_flight: int = field(kw_only=True)
    first_in_flight: Callable[[], int] = field(kw_only=True)
    stop: threading.Event = field(kw_only=True)
    deadline: float | None = field(default=None, kw_only=True)
    monotonic: Callable[[], float] = field(default=time.monotonic, kw_only=True)
    yielded: bool = field(default=False, init=False)

    def _out_of_time(self) -> bool:
        return self.deadline is not None and self.monotonic() >= self.deadline

    def run(self, progress: Progress | None = None) -> bool:
        queue: deque[Batch] = deque()
        in_flight: dict[Future[UploadResult], Batch] = {}
        limit: int | None = None  # decided when there is something to send
        submitting, paused = True, False
        drained = False  # the last read of due calls came back short: there are no more
        done = known = 0
        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="upload") as pool:
            while True:
                while submitting and not self.stop.is_set():
                    if limit is not None and len(in_flight) >= limit:
                        break
                    if self._out_of_time():
                        # The slice is spent: what is due waits for the tenant's next turn.
                        self.yielded = bool(queue) or (not drained and bool(self.hooks.due(1)))
                        submitting = False
                        break
                    if not queue:
                        if drained:
                            break
                        wanted = self.batch_size * self.max_in_flight * 4
                        due = self.hooks.due(wanted)
                        drained = len(due) < wanted
                        if not due:
                            break
                        known += len(due)
                        queue.extend(chunks(due, self.batch_size))
                    if limit is None:
                        limit = self.first_in_flight()
                    batch = queue.popleft()
                    self.hooks.prepare(batch)
                    in_flight[pool.submit(self.hooks.send, batch)] = batch
                if not in_flight:
                    return paused
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    batch = in_flight.pop(future)
                    error = future.exception()
                    outcome = classify(error)
                    if outcome is Outcome.REJECTED and len(batch) > 1:
                        first, second = halves(batch)
                        queue.extendleft((second, first))
                        limit = self.max_in_flight
                        continue
                    self.hooks.settle(batch, outcome, error or future.result())
                    done += len(batch)
                    if outcome is Outcome.PAUSE:
                        submitting, paused = False, True
                    elif outcome is Outcome.STOP:
                        submitting = False
                    else:  # the CRM answered as it should: open up
                        limit = self.max_in_flight
                if progress is not None:
                    progress(done, known)
                self.hooks.tick()
