"""Missed-call episodes and their outcome (analytics.md §E 6–8, design §7.1), streamed.

Calls arrive in start order. An episode collects one phone's unanswered, not-short inbound
calls of the period until an answered call (either direction) to or from that phone; it then
watches every later call of the phone until ``first_miss + window`` and gets exactly one class,
tried in order: ``open`` (now is still inside the window), ``got_through`` (an answered inbound
before the first callback), ``called_back_reached`` / ``called_back_not_reached`` (an outbound
call after the first miss within the window; reached if it or a later one was answered),
``lost``. Only episodes whose window has not passed stay in memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sync.report.rows import CallRow

CLASSES = ("called_back_reached", "called_back_not_reached", "got_through", "lost", "open")


@dataclass(slots=True)
class Episode:
    phone: str
    first_miss: datetime
    last_miss: datetime
    attempts: int = 1
    collecting: bool = True
    callback_at: datetime | None = None
    callback_ext: str | None = None
    reached: bool = False
    got_through_at: datetime | None = None

    @property
    def callback_seconds(self) -> float | None:
        if self.callback_at is None:
            return None
        return (self.callback_at - self.first_miss).total_seconds()


class Lost(NamedTuple):
    phone: str
    attempts: int
    first_miss: datetime
    last_miss: datetime


@dataclass
class FollowUp:
    """Feeds on every call of the tenant; an episode is folded into the totals once it has a
    class, so only live episodes and the compact lost list stay in memory."""

    window: timedelta
    now: datetime
    classes: Counter[str] = field(default_factory=Counter)
    callback_seconds: Counter[int] = field(default_factory=Counter)
    """Called-back episodes by whole seconds from first miss to callback."""
    callbacks_by_ext: dict[str, Counter[int]] = field(default_factory=dict)
    lost: list[Lost] = field(default_factory=list)
    _live: dict[str, list[Episode]] = field(default_factory=dict)

    @property
    def episodes(self) -> int:
        return sum(self.classes.values())

    def observe(self, call: CallRow, is_miss: bool) -> None:
        """``is_miss``: the call is a selected, unanswered, not-short inbound of the period."""
        phone = call.phone
        if not phone:
            return
        episodes = self._live.get(phone, [])
        answered = call.result == "answered"
        keep: list[Episode] = []
        for ep in episodes:
            if call.t0 > ep.first_miss + self.window:
                self._close(ep)
                continue
            keep.append(ep)
            if call.t0 > ep.first_miss:
                if call.direction == "out":
                    if ep.callback_at is None:
                        ep.callback_at, ep.callback_ext = call.t0, call.ext
                    ep.reached = ep.reached or answered
                elif answered and ep.callback_at is None and ep.got_through_at is None:
                    ep.got_through_at = call.t0
            if answered:
                ep.collecting = False
        if is_miss:
            t_end = call.t0 + timedelta(seconds=call.wait)
            current = next((ep for ep in keep if ep.collecting), None)
            if current is None:
                keep.append(Episode(phone, t_end, t_end))
            else:
                current.attempts += 1
                current.first_miss = min(current.first_miss, t_end)
                current.last_miss = max(current.last_miss, t_end)
        if keep:
            self._live[phone] = keep
        else:
            self._live.pop(phone, None)

    def finish(self) -> None:
        """Close what is left (the stream covers every window); lost ones by first miss."""
        for episodes in self._live.values():
            for ep in episodes:
                self._close(ep)
        self._live.clear()
        self.lost.sort(key=lambda x: (x.first_miss, x.phone))

    def _close(self, ep: Episode) -> None:
        outcome = classify(ep, self.window, self.now)
        self.classes[outcome] += 1
        if outcome == "lost":
            self.lost.append(Lost(ep.phone, ep.attempts, ep.first_miss, ep.last_miss))
        elif outcome.startswith("called_back"):
            seconds = int(ep.callback_seconds or 0)
            self.callback_seconds[seconds] += 1
            if ep.callback_ext:
                self.callbacks_by_ext.setdefault(ep.callback_ext, Counter())[seconds] += 1


def classify(ep: Episode, window: timedelta, now: datetime) -> str:
    if now < ep.first_miss + window:
        return "open"
    if ep.got_through_at is not None:
        return "got_through"
    if ep.callback_at is not None:
        return "called_back_reached" if ep.reached else "called_back_not_reached"
    return "lost"


@dataclass
class RepeatTracker:
    """FCR proxy (§E 10): an answered inbound is resolved when no inbound from the same phone
    follows within ``repeat``; calls younger than ``repeat`` at ``now`` are open."""

    repeat: timedelta
    now: datetime
    resolved: int = 0
    repeated: int = 0
    open: int = 0
    _pending: dict[str, datetime] = field(default_factory=dict)

    def observe(self, call: CallRow, counts: bool) -> None:
        """``counts``: a selected answered inbound of the period (enters the denominator)."""
        if call.direction != "in" or not call.phone:
            return
        since = self._pending.pop(call.phone, None)
        if since is not None:
            if self.now < since + self.repeat:
                self.open += 1  # young calls are open even when repeated: no early bias
            elif call.t0 - since <= self.repeat:
                self.repeated += 1
            else:
                self.resolved += 1
        if counts:
            self._pending[call.phone] = call.t0

    def finish(self) -> None:
        for since in self._pending.values():
            if self.now < since + self.repeat:
                self.open += 1
            else:
                self.resolved += 1
        self._pending.clear()
