"""Every metric of analytics.md §E on small hand-worked sets (design §7, §7.1)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from sync.report.jsonout import render_json
from sync.report.metrics import ReportInput, compute
from sync.report.period import Parameters, Period
from sync.report.rows import CallRow, OrderRow

ZONE = "Europe/Minsk"  # UTC+3 all year
DAY = date(2026, 11, 10)  # a Tuesday
PERIOD = Period(DAY, DAY, ZONE)
T = PERIOD.start_utc + timedelta(hours=9)  # 09:00 local
LATER = T + timedelta(days=60)  # every window has passed
A, B, C = "+375291111111", "+375292222222", "+375293333333"


def call(
    at: timedelta | datetime,
    direction: str = "in",
    result: str = "answered",
    *,
    talk: int | None = None,
    wait: int = 10,
    ext: str | None = "101",
    phone: str | None = A,
) -> CallRow:
    t0 = at if isinstance(at, datetime) else T + at
    if talk is None:
        talk = 60 if result == "answered" else 0
    return CallRow(t0, direction, result, talk, wait, ext, phone)


def run(calls: list[CallRow], now: datetime = LATER, **options: Any) -> dict[str, Any]:
    period = options.pop("period", PERIOD)
    fields = {k: options.pop(k) for k in list(options) if k in ReportInput.__dataclass_fields__}
    return compute(
        ReportInput(
            tenant="shop",
            period=period,
            params=Parameters(**options),
            now=now,
            calls=sorted(calls, key=lambda c: c.t0),
            **fields,
        )
    )


M = timedelta(minutes=1)
H = timedelta(hours=1)
S = timedelta(seconds=1)


# -- inbound -------------------------------------------------------------------------------


def test_offered_answered_unanswered_by_result_and_reached() -> None:
    calls = [
        call(0 * M),
        call(1 * M),
        call(2 * M, result="no answer", wait=30),
        call(3 * M, result="busy", wait=0),
        call(4 * M, result="failed", wait=0, ext=None),
        call(5 * M, result="no answer", wait=40, ext=None),
        call(6 * M, "out"),
    ]
    i = run(calls)["inbound"]
    assert (i["offered"], i["answered"], i["unanswered"]) == (6, 2, 4)
    assert i["unanswered_by_result"] == {"no answer": 2, "busy": 1, "failed": 1}
    assert (i["unanswered_reached"], i["unanswered_not_reached"]) == (2, 2)


def test_short_abandon_is_strictly_below_the_threshold_and_only_no_answer() -> None:
    calls = [
        call(0 * M, result="no answer", wait=4),  # short
        call(1 * M, result="no answer", wait=5),  # exactly at the threshold: not short
        call(2 * M, result="busy", wait=1),  # the PBX's doing: never short
        call(3 * M, result="no answer", wait=0, phone=B),  # short
    ]
    assert run(calls, short=5)["inbound"]["short_abandons"] == 2
    assert run(calls, short=0)["inbound"]["short_abandons"] == 0


def test_answer_and_abandon_rates_leave_short_abandons_out() -> None:
    # O=5, A=2, U=3 of which S=1: answer 2/4, abandon (3-1)/4.
    calls = [
        call(0 * M),
        call(1 * M),
        call(2 * M, result="no answer", wait=2),
        call(3 * M, result="no answer", wait=20),
        call(4 * M, result="busy"),
    ]
    i = run(calls)["inbound"]
    assert (i["answer_rate"], i["abandon_rate"]) == (0.5, 0.5)


def test_asa_mean_median_p90_over_answered_only() -> None:
    waits = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    calls = [call(n * M, wait=w) for n, w in enumerate(waits)]
    calls.append(call(20 * M, result="no answer", wait=500))
    i = run(calls)["inbound"]
    assert i["asa_seconds"] == 14.5  # 145 / 10
    assert i["asa_median_seconds"] == 5.5  # (5 + 6) / 2
    assert i["asa_p90_seconds"] == 9.0  # nearest rank: 9th of 10
    assert i["avg_wait_before_hangup_seconds"] == 500.0


def test_service_level_inclusive_answered_only_and_buckets() -> None:
    # Answered waits 20 (exactly sl: inside), 21, 50; one unanswered, one short abandon.
    calls = [
        call(0 * M, wait=20),
        call(1 * M, wait=21),
        call(2 * M, wait=50),
        call(3 * M, result="no answer", wait=30),
        call(4 * M, result="no answer", wait=1),
    ]
    i = run(calls, sl=20)["inbound"]
    assert i["service_level"] == 0.25  # 1 / (5 - 1)
    assert i["service_level_answered"] == 0.3333  # 1 / 3
    buckets = {b["seconds"]: b["answered"] for b in i["service_level_buckets"]}
    assert buckets == {15: 0, 30: 2, 45: 2, 60: 3, 75: 3, 90: 3}


def test_avg_talk_per_direction() -> None:
    calls = [
        call(0 * M, talk=100),
        call(1 * M, talk=50),
        call(2 * M, result="no answer"),
        call(3 * M, "out", talk=30),
        call(4 * M, "out", result="no answer"),
    ]
    report = run(calls)
    assert report["inbound"]["avg_talk_seconds"] == 75.0
    assert report["outbound"] == {
        "attempts": 2,
        "connected": 1,
        "connect_rate": 0.5,
        "avg_talk_seconds": 30.0,
    }


# -- missed-call episodes ---------------------------------------------------------------


def test_consecutive_misses_make_one_episode_until_an_answered_call() -> None:
    calls = [
        call(0 * M, result="no answer", wait=20),
        call(5 * M, result="no answer", wait=30),
        call(10 * M),  # answered: the episode stops collecting (and it got through)
        call(20 * M, result="no answer", wait=10),  # a second episode
    ]
    report = run(calls)
    m = report["missed"]
    assert m["episodes"] == 2
    assert m["got_through"] == 1 and m["lost"] == 1
    (lost,) = report["lost_numbers"]
    assert lost["attempts"] == 1
    assert lost["first_miss"] == "2026-11-10T09:20:10+03:00"


def test_episode_attempts_first_and_last_miss_are_start_plus_wait() -> None:
    calls = [
        call(0 * M, result="no answer", wait=20),
        call(5 * M, result="busy", wait=3),
    ]
    (lost,) = run(calls)["lost_numbers"]
    assert lost == {
        "phone": A,
        "attempts": 2,
        "first_miss": "2026-11-10T09:00:20+03:00",
        "last_miss": "2026-11-10T09:05:03+03:00",
        "customer_id": None,
        "customer_url": None,
    }


def test_callback_exactly_at_the_window_counts_one_second_later_does_not() -> None:
    miss = call(0 * M, result="no answer", wait=20)
    first_miss = T + 20 * S
    on_time = [miss, call(first_miss + 24 * H, "out", ext="102")]
    late = [miss, call(first_miss + 24 * H + S, "out", ext="102")]
    assert run(on_time)["missed"]["called_back_reached"] == 1
    assert run(on_time)["missed"]["callback_median_seconds"] == 86400
    assert run(late)["missed"]["lost"] == 1


def test_called_back_reached_by_a_later_outbound_within_the_window() -> None:
    calls = [
        call(0 * M, result="no answer", wait=10),
        call(10 * M, "out", result="no answer", ext="102"),
        call(2 * H, "out", ext="103"),
    ]
    report = run(calls)
    assert report["missed"]["called_back_reached"] == 1
    assert report["missed"]["callback_median_seconds"] == 590
    callbacks = {m["code"]: m["callbacks"] for m in report["managers"]}
    assert callbacks == {"101": 0, "102": 1, "103": 0}


def test_called_back_not_reached_and_got_through_and_open() -> None:
    not_reached = [call(0 * M, result="no answer"), call(1 * H, "out", result="busy")]
    assert run(not_reached)["missed"]["called_back_not_reached"] == 1
    # The customer got through before anyone called back: that class wins.
    through = [call(0 * M, result="no answer"), call(30 * M), call(1 * H, "out")]
    assert run(through)["missed"]["got_through"] == 1
    # Evaluated only once the window has passed.
    young = run(not_reached, now=T + 2 * H)["missed"]
    assert young["open"] == 1 and young["called_back_not_reached"] == 0
    assert young["shares"]["lost"] is None


def test_callbacks_after_the_period_end_are_found() -> None:
    calls = [call(14 * H + 50 * M, result="no answer"), call(16 * H, "out")]  # 23:50 -> 01:00
    m = run(calls)["missed"]
    assert m["called_back_reached"] == 1


def test_callback_median_and_histogram() -> None:
    calls = [
        call(0 * M, result="no answer", wait=10, phone=A),
        call(10 * M, "out", phone=A),  # 590 s after the first miss (start + wait)
        call(1 * M, result="no answer", wait=10, phone=B),
        call(1 * M + 2 * H, "out", phone=B),  # 7190 s
        call(2 * M, result="no answer", wait=10, phone=C),  # lost
    ]
    m = run(calls)["missed"]
    assert m["callback_median_seconds"] == (590 + 7190) / 2
    assert [b["episodes"] for b in m["callback_histogram"]] == [1, 0, 1, 0, 1]


def test_short_abandons_and_unknown_numbers_make_no_episode() -> None:
    calls = [call(0 * M, result="no answer", wait=1), call(1 * M, result="no answer", phone=None)]
    assert run(calls)["missed"]["episodes"] == 0


# -- days, hours, zones ---------------------------------------------------------------------


def test_a_call_at_23_59_local_is_in_the_day_and_00_00_next_day_is_not() -> None:
    last_minute = PERIOD.end_utc - M  # 23:59 local = 20:59 UTC
    report = run([call(last_minute), call(PERIOD.end_utc, phone=B)])
    assert report["inbound"]["offered"] == 1
    assert report["by_hour"][23]["offered"] == 1
    assert report["by_day"] == [
        {
            "date": "2026-11-10",
            "hours": 24,
            "offered": 1,
            "answered": 1,
            "unanswered": 0,
            "short_abandons": 0,
            "outbound": 0,
            "out_connected": 0,
        }
    ]


def test_dst_days_have_23_and_25_hours_and_hours_are_local() -> None:
    spring = Period(date(2026, 3, 29), date(2026, 3, 29), "Europe/Berlin")
    autumn = Period(date(2026, 10, 25), date(2026, 10, 25), "Europe/Berlin")
    assert spring.end_utc - spring.start_utc == timedelta(hours=23)
    assert autumn.end_utc - autumn.start_utc == timedelta(hours=25)
    # 00:30 and 01:30 UTC on 25 Oct are 02:30 CEST and 02:30 CET: the same local hour twice.
    calls = [
        call(datetime(2026, 10, 25, 0, 30)),
        call(datetime(2026, 10, 25, 1, 30), phone=B),
        call(datetime(2026, 10, 25, 22, 59), phone=C),  # 23:59 CET: still the 25th
    ]
    report = run(calls, period=autumn)
    assert report["by_day"][0]["hours"] == 25
    assert report["by_hour"][2]["offered"] == 2 and report["by_hour"][23]["offered"] == 1
    assert run([], period=spring)["by_day"][0]["hours"] == 23


def test_heatmap_is_weekday_by_local_hour() -> None:
    report = run([call(0 * M), call(M, result="no answer")])
    heat = report["heatmap"]
    assert heat["offered"][1][9] == 2 and heat["unanswered"][1][9] == 1  # Tuesday 09:00


# -- managers ----------------------------------------------------------------------------


def test_managers_credit_the_calls_extension_and_count_first_rung_misses() -> None:
    """The payload's code is the answering extension chosen by pbx.responsible (R4): a
    transfer 101 -> 102 is one call credited to 101 with ``first`` and to 102 with ``last``."""
    transfer_first = call(0 * M, talk=120, ext="101")
    transfer_last = call(0 * M, talk=120, ext="102")
    first = run([transfer_first], responsible="first")
    last = run([transfer_last], responsible="last")
    assert [(m["code"], m["answered_in"]) for m in first["managers"]] == [("101", 1)]
    assert [(m["code"], m["answered_in"]) for m in last["managers"]] == [("102", 1)]
    assert last["parameters"]["responsible"] == "last"
    calls = [
        call(0 * M, wait=10, talk=100, ext="101"),
        call(1 * M, result="no answer", ext="101"),
        call(2 * M, "out", talk=50, ext="101"),
        call(3 * M, "out", result="busy", ext="101"),
        call(4 * M, result="no answer", ext=None),  # in company totals only
    ]
    (m,) = run(calls, extensions={"101": 16})["managers"]
    assert m["name"] == "user 16"
    assert (m["answered_in"], m["missed_first_rung"]) == (1, 1)
    assert (m["out_attempts"], m["out_connected"], m["talk_seconds"]) == (2, 1, 150)
    assert m["calls_per_active_day"] == 3.0 and m["asa_seconds"] == 10.0


def test_manager_filter_keeps_other_calls_for_callbacks_only() -> None:
    calls = [
        call(0 * M, result="no answer", ext="101"),
        call(5 * M, "out", ext="102"),
        call(6 * M, phone=B, ext="102"),
    ]
    report = run(calls, manager="101")
    assert report["inbound"]["offered"] == 1
    assert report["missed"]["called_back_reached"] == 1
    assert [m["code"] for m in report["managers"]] == ["101"]


# -- customers -------------------------------------------------------------------------------


def test_repeat_callers_and_fcr_proxy() -> None:
    calls = [
        call(0 * M, phone=A),
        call(2 * H, phone=A, result="no answer"),  # A repeats within 7 d: not resolved
        call(0 * M, phone=B),  # B never calls again: resolved
        call(T + 8 * timedelta(days=1), phone=C, wait=0),  # outside the period, not counted
    ]
    c = run(calls)["customers"]
    assert (c["unique_callers"], c["repeat_callers"], c["calls_from_repeat_callers"]) == (2, 1, 2)
    assert (c["fcr_resolved"], c["fcr_repeated"], c["fcr_open"], c["fcr"]) == (1, 1, 0, 0.5)
    young = run(calls, now=T + timedelta(days=1))["customers"]
    assert (young["fcr_open"], young["fcr_repeated"], young["fcr"]) == (2, 0, None)


def test_new_and_returning_numbers() -> None:
    calls = [
        call(0 * M, phone=A),
        call(M, phone=A),
        call(2 * M, phone=B),
        call(3 * M, "out", phone=C),
    ]
    c = run(calls, new_phones={A, C})["customers"]
    assert (c["new_numbers"], c["new_number_calls"], c["returning_calls"]) == (2, 2, 2)


# -- orders ----------------------------------------------------------------------------------


def order(n: int, at: datetime, customer: int = 7, total: float = 100.0) -> OrderRow:
    return OrderRow(n, customer, at, total, "BYN")


def test_orders_go_to_the_latest_answered_call_within_the_window() -> None:
    calls = [
        call(0 * M, phone=A, ext="101"),
        call(H, "out", phone=A, ext="102"),  # the latest answered call before the order
        call(2 * H, phone=A, result="no answer", ext="103"),  # missed calls never convert
        call(3 * H, phone=B, ext="101"),
    ]
    orders = [order(1, T + 5 * H, total=250.0), order(2, T + 40 * H, customer=8)]
    report = run(calls, orders=orders, customers={A: (7,), B: (8,)})
    o = report["orders"]
    assert (o["attributed"], o["revenue"], o["currency"]) == (1, 250.0, "BYN")
    assert o["call_conversion"] == 0.3333  # 1 of 3 answered calls
    assert o["call_conversion_by_direction"] == {"in": 0.0, "out": 1.0}
    assert o["customer_conversion"] == 0.5
    assert o["time_to_order_median_seconds"] == 4 * 3600
    windows = {w["window"]: w["attributed"] for w in o["windows"]}
    assert windows == {"1d": 1, "7d": 2, "30d": 2}  # order 2: 37 h after B's call
    managers = {m["code"]: (m["orders"], m["revenue"]) for m in report["managers"]}
    assert managers["102"] == (1, 250.0) and managers["101"] == (0, 0.0)
    conversion = {m["code"]: m["call_conversion"] for m in report["managers"]}
    assert conversion == {"101": 0.0, "102": 1.0, "103": None}
    week = run(calls, orders=orders, customers={A: (7,), B: (8,)}, attribution=7 * 24 * H)
    assert week["orders"]["attributed"] == 2


def test_an_order_before_the_call_or_of_a_call_outside_the_period_is_not_attributed() -> None:
    before = [order(1, T - M)]
    assert run([call(0 * M)], orders=before, customers={A: (7,)})["orders"]["attributed"] == 0
    next_day = [call(20 * H)]  # 05:00 the next day: outside the period
    after = [order(1, T + 21 * H)]
    assert run(next_day, orders=after, customers={A: (7,)})["orders"]["attributed"] == 0


def test_an_order_created_at_the_calls_second_counts() -> None:
    report = run([call(0 * M)], orders=[order(1, T)], customers={A: (7,)})
    assert report["orders"]["attributed"] == 1


# -- empty period, skipped, parameters ------------------------------------------------------


def test_empty_period_says_so_with_zeros_and_no_nan() -> None:
    report = run([], skipped={"internal": 3})
    assert report["empty"] is True
    assert report["inbound"]["offered"] == 0 and report["inbound"]["answer_rate"] is None
    assert report["outbound"]["connect_rate"] is None
    assert report["missed"]["episodes"] == 0 and report["lost_numbers"] == []
    assert report["skipped"] == {"internal": 3}
    assert json.loads(render_json([report]))["inbound"]["answer_rate"] is None  # no NaN


def test_top_level_names_are_those_of_design_7() -> None:
    report = run([call(0 * M)])
    for name in (
        "tenant",
        "period",
        "parameters",
        "inbound",
        "outbound",
        "missed",
        "lost_numbers",
        "managers",
        "by_day",
        "by_hour",
        "orders",
        "skipped",
    ):
        assert name in report
    assert report["period"] == {"from": "2026-11-10", "to": "2026-11-10", "timezone": ZONE}
    assert set(report["missed"]) >= {
        "episodes",
        "called_back_reached",
        "called_back_not_reached",
        "got_through",
        "lost",
        "open",
        "callback_median_seconds",
    }
    keys = set(report["managers"][0])
    assert keys >= {
        "code",
        "name",
        "answered_in",
        "missed_first_rung",
        "out_attempts",
        "out_connected",
        "talk_seconds",
        "callbacks",
        "orders",
        "revenue",
    }
    assert set(report["orders"]) >= {"attributed", "revenue", "call_conversion"}


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("today", "2026-11-10", "2026-11-10"),
        ("yesterday", "2026-11-09", "2026-11-09"),
        ("this-week", "2026-11-09", "2026-11-10"),
        ("last-week", "2026-11-02", "2026-11-08"),
        ("this-month", "2026-11-01", "2026-11-10"),
        ("last-month", "2026-10-01", "2026-10-31"),
    ],
)
def test_named_periods(name: str, first: str, last: str) -> None:
    from sync.report.period import named_period

    assert tuple(d.isoformat() for d in named_period(name, DAY)) == (first, last)


def test_durations() -> None:
    from sync.report.period import duration_text, parse_duration

    assert parse_duration("24h") == timedelta(days=1) and parse_duration("90") == 90 * S
    assert duration_text(timedelta(days=7)) == "7d" and duration_text(90 * M) == "90m"
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(("responsible", "credited"), [("first", "101"), ("last", "104")])
def test_a_blind_transfer_is_one_call_credited_per_pbx_responsible(
    responsible: str, credited: str
) -> None:
    """Golden S6 (101 -> 104) through the builder, then the report: one answered call."""
    from tests.unit.test_builder_golden import GOLDEN, build_case

    case = json.loads((GOLDEN / "07_s06_blind_transfer_first.json").read_text())
    case["options"]["responsible"] = responsible
    (built,) = build_case(case)
    assert built.payload is not None and built.started_at is not None
    p = built.payload
    row = CallRow(
        built.started_at,
        p["type"],
        p["result"],
        p["duration"],
        p.get("durationWaiting", 0),
        p.get("code"),
        p["phone"],
    )
    day = Period(date(2026, 3, 2), date(2026, 3, 2), "Europe/Minsk")
    report = run([row], period=day, responsible=responsible)
    assert report["inbound"]["offered"] == report["inbound"]["answered"] == 1
    (manager,) = report["managers"]
    assert (manager["code"], manager["answered_in"]) == (credited, 1)
    assert manager["talk_seconds"] == p["duration"]
