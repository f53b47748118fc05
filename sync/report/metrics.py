"""The report's one computation (analytics.md §E, design §7/§7.1): pure, over streamed rows.

``compute`` walks the tenant's calls once in start order (the period plus a look-ahead for
callbacks, repeats and orders) keeping only counters, per-phone follow-up state and integer
histograms, so a million calls fit in little memory. The result is the JSON document of
design §7 plus the extra figures the other renderers draw; every renderer reads only it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, overload

from sync.report.attribution import Attribution, CallRef
from sync.report.definitions import DEFINITIONS
from sync.report.followup import CLASSES, FollowUp, Lost, RepeatTracker
from sync.report.period import Parameters, Period, duration_text
from sync.report.rows import CallRow, OrderRow
from sync.report.stats import mean, median, quantile, ratio

UNANSWERED_RESULTS = ("no answer", "busy", "failed")
CALLBACK_BUCKETS = ((900, "≤15 min"), (3600, "≤1 h"), (14400, "≤4 h"), (86400, "≤24 h"))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class ReportInput:
    tenant: str
    period: Period
    params: Parameters
    now: datetime
    """Naive UTC: decides which episodes and repeat windows are still open."""
    calls: Iterable[CallRow]
    """Non-skipped calls from the period's start to its end + look-ahead, in start order."""
    orders: Sequence[OrderRow] = ()
    customers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    new_phones: Collection[str] = frozenset()
    """Phones with no non-skipped call before the period's start."""
    skipped: Mapping[str, int] = field(default_factory=dict)
    extensions: Mapping[str, int] = field(default_factory=dict)
    """Extension -> CRM user id from the tenant config (names the managers)."""
    crm_url: str = ""


class LocalClock:
    """UTC start -> (local day, hour, weekday), cached per UTC minute: a million calls share
    a few tens of thousands of minutes, and every zone's offset is whole minutes."""

    def __init__(self, period: Period) -> None:
        self._period = period
        self._cache: dict[datetime, tuple[date, int, int]] = {}

    def at(self, utc_naive: datetime) -> tuple[date, int, int]:
        minute = utc_naive.replace(second=0, microsecond=0)
        found = self._cache.get(minute)
        if found is None:
            local = self._period.local(minute)
            found = self._cache[minute] = (local.date(), local.hour, local.weekday())
        return found


@dataclass
class _Manager:
    answered_in: int = 0
    missed_first_rung: int = 0
    out_attempts: int = 0
    out_connected: int = 0
    talk_seconds: int = 0
    waits: Counter[int] = field(default_factory=Counter)
    days: set[date] = field(default_factory=set)
    callback_seconds: Counter[int] = field(default_factory=Counter)
    answered_calls: int = 0


def _day_row() -> dict[str, int]:
    keys = ("offered", "answered", "unanswered", "short_abandons", "outbound", "out_connected")
    return dict.fromkeys(keys, 0)


@dataclass
class _Totals:
    offered: int = 0
    answered: int = 0
    short: int = 0
    by_result: Counter[str] = field(default_factory=Counter)
    reached: int = 0
    not_reached: int = 0
    waits: Counter[int] = field(default_factory=Counter)
    in_sl: int = 0
    abandon_wait: int = 0
    abandon_count: int = 0
    talk_in: int = 0
    out_attempts: int = 0
    out_connected: int = 0
    talk_out: int = 0
    callers: Counter[str] = field(default_factory=Counter)
    new_calls: int = 0
    returning_calls: int = 0
    new_numbers: int = 0
    answered_calls: int = 0
    answered_by_dir: Counter[str] = field(default_factory=Counter)
    customers_called: set[int] = field(default_factory=set)


def compute(data: ReportInput) -> dict[str, Any]:
    """Every figure of the report for one tenant and period."""
    p, period = data.params, data.period
    start, end = period.start_utc, period.end_utc
    totals = _Totals()
    managers: dict[str, _Manager] = {}
    days = {d: _day_row() for d in period.days()}
    hours = [dict(hour=h, offered=0, answered=0, unanswered=0, outbound=0) for h in range(24)]
    heat = [[0] * 24 for _ in range(7)]
    heat_missed = [[0] * 24 for _ in range(7)]
    followup = FollowUp(p.callback_window, data.now)
    repeats = RepeatTracker(p.repeat, data.now)
    attribution = Attribution(data.orders, data.customers, p.all_windows(), p.attribution)
    unseen_new = set(data.new_phones)
    """New phones not met yet in the stream: the first call of each is its first ever."""
    clock = LocalClock(period)
    index = 0
    next_order = attribution.next_at
    for call in data.calls:
        if call.t0 > next_order:
            attribution.before(call.t0)
            next_order = attribution.next_at
        selected = start <= call.t0 < end and (p.manager is None or call.ext == p.manager)
        inbound = call.direction == "in"
        answered = call.result == "answered"
        short = inbound and call.result == "no answer" and call.wait < p.short
        if call.phone:
            is_miss = selected and inbound and not answered and not short
            followup.observe(call, is_miss)
            if inbound:
                repeats.observe(call, selected and answered)
        if answered:
            index += 1
            ref = CallRef(call.t0, selected, call.direction, call.ext, index)
            ids = attribution.answered(call.phone, ref)
            if selected:
                totals.answered_calls += 1
                totals.answered_by_dir[call.direction] += 1
                totals.customers_called.update(ids)
        if not selected:
            unseen_new.discard(call.phone or "")
            continue
        local_day, local_hour, weekday = clock.at(call.t0)
        day = days.get(local_day) or days.setdefault(local_day, _day_row())
        hour = hours[local_hour]
        manager = None
        if call.ext:
            manager = managers.get(call.ext) or managers.setdefault(call.ext, _Manager())
        if manager:
            manager.talk_seconds += call.talk
        if call.phone:
            if call.phone in unseen_new:
                unseen_new.discard(call.phone)
                totals.new_calls += 1
                totals.new_numbers += 1
            else:
                totals.returning_calls += 1
        if inbound:
            totals.offered += 1
            day["offered"] += 1
            hour["offered"] += 1
            heat[weekday][local_hour] += 1
            if call.phone:
                totals.callers[call.phone] += 1
            if answered:
                totals.answered += 1
                day["answered"] += 1
                hour["answered"] += 1
                totals.waits[call.wait] += 1
                totals.in_sl += call.wait <= p.sl
                totals.talk_in += call.talk
                if manager:
                    manager.answered_in += 1
                    manager.waits[call.wait] += 1
                    manager.days.add(local_day)
            else:
                day["unanswered"] += 1
                hour["unanswered"] += 1
                heat_missed[weekday][local_hour] += 1
                totals.by_result[call.result] += 1
                if call.ext:
                    totals.reached += 1
                else:
                    totals.not_reached += 1
                if manager:
                    manager.missed_first_rung += 1
                if short:
                    totals.short += 1
                    day["short_abandons"] += 1
                else:
                    totals.abandon_wait += call.wait
                    totals.abandon_count += 1
        else:
            totals.out_attempts += 1
            day["outbound"] += 1
            hour["outbound"] += 1
            if manager:
                manager.out_attempts += 1
                manager.days.add(local_day)
            if answered:
                totals.out_connected += 1
                day["out_connected"] += 1
                totals.talk_out += call.talk
                if manager:
                    manager.out_connected += 1
    attribution.finish()
    followup.finish()
    repeats.finish()
    for ext, seconds in followup.callbacks_by_ext.items():
        managers.setdefault(ext, _Manager()).callback_seconds.update(seconds)
    return {
        "tenant": data.tenant,
        "period": {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "timezone": period.timezone,
        },
        "parameters": p.as_json(),
        "empty": totals.offered == 0 and totals.out_attempts == 0,
        "inbound": _inbound(totals, p),
        "outbound": {
            "attempts": totals.out_attempts,
            "connected": totals.out_connected,
            "connect_rate": ratio(totals.out_connected, totals.out_attempts),
            "avg_talk_seconds": mean(totals.talk_out, totals.out_connected),
        },
        "missed": _missed(followup),
        "lost_numbers": LostNumbers(followup.lost, period, data.customers, data.crm_url),
        "managers": _managers(managers, attribution, data),
        "by_day": [
            {"date": d.isoformat(), "hours": period.hours_in(d), **row}
            for d, row in sorted(days.items())
        ],
        "by_hour": hours,
        "heatmap": {"weekdays": list(WEEKDAYS), "offered": heat, "unanswered": heat_missed},
        "customers": _customers(totals, repeats),
        "orders": _orders(attribution, totals, p, data),
        "skipped": dict(sorted(data.skipped.items())),
        "definitions": DEFINITIONS,
    }


def _inbound(t: _Totals, p: Parameters) -> dict[str, Any]:
    base = t.offered - t.short
    unanswered = t.offered - t.answered
    buckets = []
    for limit in p.sl_buckets:
        within = sum(n for wait, n in t.waits.items() if wait <= limit)
        buckets.append({"seconds": limit, "answered": within, "share": ratio(within, t.answered)})
    return {
        "offered": t.offered,
        "answered": t.answered,
        "unanswered": unanswered,
        "short_abandons": t.short,
        "answer_rate": ratio(t.answered, base),
        "abandon_rate": ratio(unanswered - t.short, base),
        "asa_seconds": mean(sum(w * n for w, n in t.waits.items()), t.answered),
        "service_level": ratio(t.in_sl, base),
        "avg_talk_seconds": mean(t.talk_in, t.answered),
        "unanswered_by_result": {r: t.by_result.get(r, 0) for r in _results(t.by_result)},
        "unanswered_reached": t.reached,
        "unanswered_not_reached": t.not_reached,
        "asa_median_seconds": median(t.waits),
        "asa_p90_seconds": quantile(t.waits, 0.9),
        "service_level_answered": ratio(t.in_sl, t.answered),
        "service_level_buckets": buckets,
        "avg_wait_before_hangup_seconds": mean(t.abandon_wait, t.abandon_count),
        "talk_seconds": t.talk_in,
    }


def _results(seen: Counter[str]) -> list[str]:
    return [*UNANSWERED_RESULTS, *sorted(r for r in seen if r not in UNANSWERED_RESULTS)]


def _missed(f: FollowUp) -> dict[str, Any]:
    classes, called_back = f.classes, f.callback_seconds
    closed = f.episodes - classes["open"]
    histogram = []
    lower = 0
    for limit, label in CALLBACK_BUCKETS:
        n = sum(c for s, c in called_back.items() if lower < s <= limit or (lower == 0 == s))
        histogram.append({"label": label, "episodes": n})
        lower = limit
    late = sum(c for s, c in called_back.items() if s > lower)
    histogram.append({"label": ">24 h / never", "episodes": late + classes["lost"]})
    return {
        "episodes": f.episodes,
        "called_back_reached": classes["called_back_reached"],
        "called_back_not_reached": classes["called_back_not_reached"],
        "got_through": classes["got_through"],
        "lost": classes["lost"],
        "open": classes["open"],
        "callback_median_seconds": median(called_back),
        "callback_p90_seconds": quantile(called_back, 0.9),
        "shares": {c: ratio(classes[c], closed) for c in CLASSES if c != "open"},
        "callback_histogram": histogram,
    }


class LostNumbers(Sequence[dict[str, Any]]):
    """The lost list, kept as compact tuples and shaped into dicts only when read: a month of
    a busy line can have a hundred thousand lost numbers, and the HTML shows only the first."""

    def __init__(
        self,
        lost: list[Lost],
        period: Period,
        customers: Mapping[str, tuple[int, ...]],
        crm_url: str,
    ) -> None:
        self._lost, self._period, self._customers = lost, period, customers
        self._base = crm_url.rstrip("/")

    def __len__(self) -> int:
        return len(self._lost)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._row(x) for x in self._lost[index]]
        return self._row(self._lost[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | LostNumbers):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _row(self, x: Lost) -> dict[str, Any]:
        ids = self._customers.get(x.phone, ())
        customer = min(ids) if ids else None
        url = f"{self._base}/customers/{customer}" if customer and self._base else None
        return {
            "phone": x.phone,
            "attempts": x.attempts,
            "first_miss": self._period.iso(x.first_miss),
            "last_miss": self._period.iso(x.last_miss),
            "customer_id": customer,
            "customer_url": url,
        }


def _managers(
    managers: dict[str, _Manager], attribution: Attribution, data: ReportInput
) -> list[dict[str, Any]]:
    wanted = data.params.manager
    rows = []
    for code in sorted(managers, key=lambda c: (len(c), c)):
        if wanted is not None and code != wanted:
            continue
        m = managers[code]
        won = attribution.by_ext.get(code)
        user = data.extensions.get(code)
        active = len(m.days)
        rows.append(
            {
                "code": code,
                "name": f"user {user}" if user is not None else "",
                "answered_in": m.answered_in,
                "missed_first_rung": m.missed_first_rung,
                "out_attempts": m.out_attempts,
                "out_connected": m.out_connected,
                "talk_seconds": m.talk_seconds,
                "callbacks": sum(m.callback_seconds.values()),
                "orders": won.orders if won else 0,
                "revenue": round(won.revenue, 2) if won else 0.0,
                "asa_seconds": mean(sum(w * n for w, n in m.waits.items()), m.answered_in),
                "avg_talk_seconds": mean(m.talk_seconds, m.answered_in + m.out_connected),
                "calls_per_active_day": mean(m.answered_in + m.out_attempts, active),
                "callback_median_seconds": median(m.callback_seconds),
                "call_conversion": ratio(
                    len(attribution.calls_by_ext.get(code, ())), m.answered_in + m.out_connected
                ),
            }
        )
    return rows


def _customers(t: _Totals, repeats: RepeatTracker) -> dict[str, Any]:
    repeat = [ph for ph, n in t.callers.items() if n >= 2]
    return {
        "unique_callers": len(t.callers),
        "repeat_callers": len(repeat),
        "calls_from_repeat_callers": sum(t.callers[ph] for ph in repeat),
        "fcr": ratio(repeats.resolved, repeats.resolved + repeats.repeated),
        "fcr_resolved": repeats.resolved,
        "fcr_repeated": repeats.repeated,
        "fcr_open": repeats.open,
        "new_numbers": t.new_numbers,
        "new_number_calls": t.new_calls,
        "returning_calls": t.returning_calls,
    }


def _orders(a: Attribution, t: _Totals, p: Parameters, data: ReportInput) -> dict[str, Any]:
    chosen = a.totals[p.attribution]
    by_dir = {d: ratio(len(a.by_direction.get(d, ())), t.answered_by_dir[d]) for d in ("in", "out")}
    times = Counter(int(s) for s in a.time_to_order)
    return {
        "attributed": chosen.orders,
        "revenue": round(chosen.revenue, 2),
        "call_conversion": ratio(len(a.calls_with_orders), t.answered_calls),
        "call_conversion_by_direction": by_dir,
        "customer_conversion": ratio(len(a.customers_attributed), len(t.customers_called)),
        "time_to_order_median_seconds": median(times),
        "currency": ", ".join(sorted(a.currencies)) or None,
        "windows": [
            {"window": duration_text(w), "attributed": v.orders, "revenue": round(v.revenue, 2)}
            for w, v in sorted(a.totals.items())
        ],
        "mature": data.now >= data.period.end_utc + p.attribution,
    }
