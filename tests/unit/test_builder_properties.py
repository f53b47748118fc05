"""Properties of the builder over generated input: order does not matter, nothing crashes,
and every payload it emits is one the CRM accepts (the emulator's validation)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync.calls.builder import Call, build_call, build_call_row, build_calls
from sync.calls.demo_cdr import generate_calls
from sync.calls.legs import CallRow, Leg
from sync.calls.options import BuildOptions, TenantRoute
from sync.emulator.validation import validate_calls
from sync.timeutil import ZoneClock

TEMPLATE = "https://pbx.example.com/rec/{date}/{recordingfile}?u={uniqueid}&l={linkedid}"
OPTIONS = [
    BuildOptions(
        source_timezone="Europe/Minsk",
        tenants=(TenantRoute("shop", None, "Europe/Minsk", site="main"),),
        recording_url=TEMPLATE,
    ),
    BuildOptions(
        source_timezone="Europe/Berlin",
        tenants=(
            TenantRoute("a", "0367", "UTC"),
            TenantRoute("b", "0368", "Asia/Kathmandu", site="b"),
        ),
        responsible="last",
        dial_prefixes=("9", "0"),
        external_id_prefix="pbx1-",
        recording_url="https://{linkedid}.example.com/{recordingfile}",
        settle_seconds=0,
        orphan_settle_seconds=0,
    ),
    BuildOptions(
        country="RU",
        extension_pattern=r"^1\d{2}$",
        extension_channel_pattern=r"^(?:PJSIP|DAHDI)/(\d+)-",
        trunk_channel_pattern=r"beltelecom|mts",
        start_date=datetime(2026, 3, 2, 10, 0),
        recording_url="not a url {recordingfile}",
    ),
]
NOW = datetime(2026, 12, 1, tzinfo=UTC)

_ids = st.sampled_from(["1772434800.16", "1772434800.17", "pbx-1772434800.18", "", " "])
_channels = st.sampled_from(
    [
        "PJSIP/beltelecom-00000010",
        "PJSIP/101-00000011",
        "PJSIP/105-0000002a",
        "Local/107@from-queue-0000000c;1",
        "Local/107@from-queue-0000000c;2",
        "SIP/fpbx-1-2cSnGYAnRDnB-0000000a",
        "DAHDI/1-1",
        "",
    ]
)
_numbers = st.sampled_from(
    ["80291234567", "375291234567", "101", "anonymous", "", "s", "0048221234567", "2345678"]
)
_dispositions = st.sampled_from(
    ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL", "8", "0", "4", "2", "16"]
)
_near = st.datetimes(min_value=datetime(2026, 3, 2, 9), max_value=datetime(2026, 3, 2, 11))
_garbage_text = st.text(max_size=40) | st.just("x" * 5000) | st.none()
_times = st.one_of(
    _near,
    _near,
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.just(timezone(timedelta(hours=-5)))),
    st.sampled_from([datetime.min, datetime.max, datetime(2026, 10, 25, 2, 30)]),
)
_ints = st.one_of(st.integers(0, 400), st.none(), st.integers(-1000, -1), st.integers(2**40, 2**80))


def _mixed(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes garbage (wrong types included: NULL strings)."""
    return st.one_of(good, good, good, _garbage_text)


def _leg(linkedid: st.SearchStrategy[Any]) -> st.SearchStrategy[Leg]:
    return st.builds(
        Leg,
        uniqueid=_mixed(_ids),
        linkedid=linkedid,
        sequence=st.one_of(st.integers(0, 50), st.none(), st.integers(-(2**70), 2**70)),
        start=_times,
        answer=_times,
        end=_times,
        src=_mixed(_numbers),
        dst=_mixed(_numbers | st.sampled_from(["600", "s", "980291234567"])),
        clid=_mixed(st.sampled_from(['"Shop" <80291234567>', '"Anonymous" <anonymous>'])),
        channel=_mixed(_channels),
        dstchannel=_mixed(_channels),
        disposition=_mixed(_dispositions),
        duration=_ints,
        billsec=_ints,
        recordingfile=_mixed(st.sampled_from(["q-700-1-20260302-100000-1.wav", "a b#?.wav", ""])),
        userfield=_mixed(st.sampled_from(["x.wav;y.mp3", "note", ""])),
        did=_mixed(st.sampled_from(["", "375172223344", "7001"])),
        outbound_cnum=_mixed(st.sampled_from(["", "80171234567"])),
        tenant=_mixed(st.sampled_from(["", "0367", "0368", "9999"])),
    )


_any_legs = st.lists(_leg(_mixed(_ids)), max_size=8)
_one_call = st.lists(_leg(st.just("1772434800.16")), min_size=1, max_size=6)
_options = st.sampled_from(OPTIONS)


def _summary(calls: list[Call]) -> dict[str, tuple[object, ...]]:
    return {c.key: (c.status, c.skip_reason, c.payload, c.tenant, c.legs) for c in calls}


def _check(call: Call) -> None:
    assert call.status in ("ready", "incomplete", "skipped")
    assert (call.skip_reason is not None) == (call.status == "skipped")
    assert (call.payload is not None) == (call.status == "ready")
    if call.payload is not None:
        assert validate_calls([call.payload]) == {}, call.payload
        json.dumps(call.payload)
    assert all(isinstance(field, str) and isinstance(why, str) for field, why in call.rules)


@settings(max_examples=250, deadline=None)
@given(_any_legs, _options)
def test_no_leg_set_crashes_and_payloads_validate(legs: list[Leg], options: BuildOptions) -> None:
    for call in build_calls(legs, options, NOW):
        _check(call)


@settings(max_examples=200, deadline=None)
@given(_one_call, _options, st.randoms(use_true_random=False))
def test_shuffling_legs_gives_the_same_call(
    legs: list[Leg], options: BuildOptions, random: Any
) -> None:
    shuffled = list(legs)
    random.shuffle(shuffled)
    expected = _summary(build_calls(legs, options, NOW))
    assert _summary(build_calls(shuffled, options, NOW)) == expected
    one, other = build_call(legs, options, NOW), build_call(shuffled, options, NOW)
    assert (one.status, one.skip_reason, one.payload) == (
        other.status,
        other.skip_reason,
        other.payload,
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), _options, st.randoms(use_true_random=False))
def test_generated_calls_are_order_independent(
    seed: int, options: BuildOptions, random: Any
) -> None:
    for _, _, legs in generate_calls(5, start=datetime(2026, 3, 2, 9), seed=seed):
        shuffled = list(legs)
        random.shuffle(shuffled)
        one, other = build_call(legs, options, NOW), build_call(shuffled, options, NOW)
        assert (one.status, one.skip_reason, one.payload, one.legs) == (
            other.status,
            other.skip_reason,
            other.payload,
            other.legs,
        )
        _check(one)


_rows = st.builds(
    CallRow,
    id=_mixed(_ids | st.just("c-1")),
    started_at=_times,
    ended_at=_times,
    direction=_mixed(st.sampled_from(["in", "OUT", "Incoming", "local", "transfer"])),
    phone=_mixed(_numbers),
    extension=_mixed(st.sampled_from(["101", "", "abc"])),
    result=_mixed(st.sampled_from(["answered", "Missed", "busy", "voicemail"])),
    duration=_ints,
    wait=_ints,
    recording=_mixed(
        st.sampled_from(["https://r.example.com/a.mp3", "http://bad url", "a#b.wav", ""])
    ),
    tenant=_mixed(st.sampled_from(["", "0367", "0368"])),
)


@settings(max_examples=300, deadline=None)
@given(_rows, _options, st.booleans())
def test_no_calls_row_crashes_and_payloads_validate(
    row: CallRow, options: BuildOptions, has_ended_at: bool
) -> None:
    _check(build_call_row(row, replace(options, has_ended_at=has_ended_at), NOW))


_ZONES = ["Europe/Berlin", "Europe/Minsk", "America/New_York", "Australia/Lord_Howe", "UTC"]
CLOCKS: dict[str, ZoneClock] = {}


@settings(max_examples=300, deadline=None)
@example(datetime(2026, 10, 25, 2, 30), "Europe/Berlin")  # ambiguous wall time
@example(datetime(2026, 10, 25, 0, 59, 59), "Europe/Berlin")  # UTC second before the change
@example(datetime(2026, 10, 25, 1, 0), "Europe/Berlin")
@example(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")  # missing wall time
@example(datetime(2026, 3, 29, 1, 59, 59), "Europe/Berlin")
@example(datetime(2026, 4, 5, 1, 45), "Australia/Lord_Howe")  # 30-minute DST shift
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(_ZONES),
)
def test_memoised_zone_clock_agrees_with_zoneinfo(moment: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    clock = CLOCKS.setdefault(zone_name, ZoneClock(zone))  # shared: exercises the memo
    utc, _ = clock.to_utc(moment)
    expected = moment.replace(tzinfo=zone, fold=0).astimezone(UTC).replace(tzinfo=None)
    assert utc == expected
    local = clock.from_utc(moment)
    assert local == moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
