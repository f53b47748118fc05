"""Unset times: an epoch 0/1 or another pre-2000 value is a missing time, never a 1970 call."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sync.calls.builder import build_call, build_call_row
from sync.calls.legs import CallRow, Leg
from sync.calls.options import BuildOptions, TenantRoute

OPTIONS = BuildOptions(
    source_timezone="Europe/Minsk", tenants=(TenantRoute("shop", None, "Europe/Minsk"),)
)
NOW = datetime(2026, 3, 3, tzinfo=UTC)
EPOCH_1 = datetime(1970, 1, 1, 3, 0, 1)  # epoch 1 read in Europe/Minsk (UTC+3)

CALLER = Leg(
    uniqueid="1772434800.16",
    linkedid="1772434800.16",
    sequence=201,
    start=datetime(2026, 3, 2, 10, 0, 0),
    answer=datetime(2026, 3, 2, 10, 0, 7),
    end=datetime(2026, 3, 2, 10, 2, 7),
    src="80291234567",
    dst="101",
    channel="PJSIP/beltelecom-00000010",
    dstchannel="PJSIP/101-00000011",
    disposition="ANSWERED",
    duration=127,
    billsec=120,
)


def test_an_epoch_start_on_a_second_leg_does_not_move_the_call_to_1970() -> None:
    second = replace(CALLER, sequence=202, start=EPOCH_1, dstchannel="PJSIP/102-00000012")
    call = build_call([CALLER, second], OPTIONS, NOW)
    assert call.status == "ready"
    assert call.payload is not None
    assert call.payload["date"] == "2026-03-02 10:00:00"
    assert call.payload["durationWaiting"] == 7
    assert call.started_at == CALLER.start


def test_an_epoch_start_counts_as_missing_so_end_minus_duration_is_used() -> None:
    call = build_call([replace(CALLER, start=EPOCH_1)], OPTIONS, NOW)
    assert call.payload is not None
    assert call.payload["date"] == "2026-03-02 10:00:00"  # 10:02:07 − 127 s


def test_a_call_whose_every_time_is_unset_is_malformed() -> None:
    leg = replace(CALLER, start=EPOCH_1, answer=EPOCH_1, end=datetime(1970, 1, 1, 3))
    call = build_call([leg], OPTIONS, NOW)
    assert (call.status, call.skip_reason) == ("skipped", "malformed: no leg with a start time")


def test_an_epoch_answer_reads_as_a_null_answer() -> None:
    with_epoch = build_call([replace(CALLER, answer=EPOCH_1)], OPTIONS, NOW)
    with_null = build_call([replace(CALLER, answer=None)], OPTIONS, NOW)
    assert with_epoch.payload is not None
    assert with_epoch.payload == with_null.payload
    assert with_epoch.payload["durationWaiting"] < 3600


def test_an_aware_time_before_2000_is_unset_too() -> None:
    aware = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    call = build_call([replace(CALLER, start=aware)], OPTIONS, NOW)
    assert call.payload is not None
    assert call.payload["date"] == "2026-03-02 10:00:00"


def test_a_calls_row_starting_in_1970_is_malformed() -> None:
    row = CallRow(id="7", started_at=EPOCH_1, ended_at=datetime(2026, 3, 2, 10, 2))
    call = build_call_row(row, OPTIONS, NOW)
    assert (call.status, call.skip_reason) == ("skipped", "malformed: no start time")
