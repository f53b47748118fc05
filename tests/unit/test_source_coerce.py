"""Value coercion of the source readers: every odd value a call log holds becomes a field."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.sources.coerce import (
    derive_calldate_times,
    to_disposition,
    to_int,
    to_opt_str,
    to_str,
    to_time,
)
from sync.sources.schema import TimeCodec

MINSK = ZoneInfo("Europe/Minsk")
UTC = ZoneInfo("UTC")
T = datetime(2026, 3, 2, 11, 5, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("  PJSIP/101-0001 ", "PJSIP/101-0001"),
        (b"\xd0\x9c\xd0\xb0\xd0\xb3", "Маг"),
        (b"caller \xff\xfe", "caller \ufffd\ufffd"),  # invalid UTF-8 never raises
        (bytearray(b"x"), "x"),
        (memoryview(b"y"), "y"),
        (80291234567, "80291234567"),
        (375.0, "375"),
        (Decimal("12"), "12"),
        ("x" * 10_000, "x" * 10_000),
    ],
)
def test_to_str(value: object, expected: str) -> None:
    assert to_str(value) == expected


def test_to_opt_str_keeps_null_apart() -> None:
    assert to_opt_str(None) is None
    assert to_opt_str(" in ") == "in"
    assert to_opt_str("") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (42, 42),
        (-5, -5),
        ("17", 17),
        (" 17 ", 17),
        (b"23", 23),
        ("12.9", 12),
        (12.9, 12),
        (Decimal("7"), 7),
        ("abc", None),
        ("", None),
        (float("nan"), None),
        (float("inf"), None),
        ("Infinity", None),
        (Decimal("NaN"), None),
        (True, None),
        (object(), None),
    ],
)
def test_to_int(value: object, expected: int | None) -> None:
    assert to_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ANSWERED", "ANSWERED"),
        (" NO ANSWER ", "NO ANSWER"),
        (8, "8"),
        (0, "0"),
        (16.0, "16"),
        (Decimal("4"), "4"),
        (b"BUSY", "BUSY"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_to_disposition(value: object, expected: str) -> None:
    assert to_disposition(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T, T),
        ("2026-03-02 11:05:00", T),
        (b"2026-03-02 11:05:00", T),
        ("2026-03-02T11:05:00", T),
        ("2026-03-02 11:05:00.250000", T.replace(microsecond=250000)),
        (date(2026, 3, 2), datetime(2026, 3, 2)),
        # Epoch seconds are UTC by definition: 08:05 UTC is 11:05 in Minsk (UTC+3).
        (1772438700, T),
        ("1772438700", T),
        (1772438700.5, T.replace(microsecond=500000)),
        (Decimal("1772438700"), T),
        # Aware values are converted into the source zone.
        (datetime(2026, 3, 2, 8, 5, tzinfo=dt.UTC), T),
        ("2026-03-02T08:05:00Z", T),
        ("2026-03-02 09:05:00+01:00", T),
    ],
)
def test_to_time_in_minsk(value: object, expected: datetime) -> None:
    assert to_time(value, MINSK) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "0000-00-00 00:00:00",
        "garbage",
        "2026-13-45 99:99:99",
        0,
        -1,
        10**20,
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        True,
        b"\xff\xfe",
        [2026],
    ],
)
def test_to_time_unreadable_is_none(value: object) -> None:
    assert to_time(value, MINSK) is None


def test_derive_calldate_times_answered() -> None:
    answer, end = derive_calldate_times(T, 75, 60, "ANSWERED")
    assert end == T + timedelta(seconds=75)
    assert answer == T + timedelta(seconds=15)


def test_derive_calldate_times_unanswered_has_no_answer() -> None:
    assert derive_calldate_times(T, 20, 0, "NO ANSWER") == (None, T + timedelta(seconds=20))


def test_derive_calldate_times_answered_zero_billsec_and_integer_code() -> None:
    # Answered and hung up within the second: answer = end.
    assert derive_calldate_times(T, 9, 0, "8") == (T + timedelta(seconds=9),) * 2
    # A pre-answered caller's unanswered attempt still has billsec > 0 (spec §3).
    answer, _ = derive_calldate_times(T, 30, 10, "NO ANSWER")
    assert answer == T + timedelta(seconds=20)


def test_derive_calldate_times_unknown_inputs() -> None:
    assert derive_calldate_times(None, 10, 5, "ANSWERED") == (None, None)
    assert derive_calldate_times(T, None, 5, "ANSWERED") == (None, None)
    assert derive_calldate_times(T, 10, None, "ANSWERED") == (None, T + timedelta(seconds=10))
    # Negative durations are kept for the builder to judge.
    assert derive_calldate_times(T, -5, 0, "NO ANSWER") == (None, T - timedelta(seconds=5))
    assert derive_calldate_times(datetime.max, 10, 0, "NO ANSWER") == (None, None)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("naive", T),
        ("aware", T.replace(tzinfo=MINSK)),
        ("epoch_int", 1772438700),
        ("epoch_float", 1772438700.0),
        ("epoch_decimal", Decimal("1772438700.0")),
        ("text", "2026-03-02 11:05:00"),
    ],
)
def test_time_codec_binds_in_column_storage(kind: str, expected: object) -> None:
    assert TimeCodec(kind, MINSK).to_db(T) == expected  # type: ignore[arg-type]


def test_time_codec_text_keeps_fraction_and_separator() -> None:
    codec = TimeCodec("text", UTC, "T")
    assert codec.to_db(T.replace(microsecond=5)) == "2026-03-02T11:05:00.000005"
    assert TimeCodec("epoch_int", UTC).to_db(T.replace(microsecond=1)) == 1772449501


@given(st.one_of(st.none(), st.text(), st.binary(), st.integers(), st.floats(), st.decimals()))
def test_coercion_never_raises(value: object) -> None:
    to_str(value)
    to_int(value)
    to_disposition(value)
    to_time(value, MINSK)
