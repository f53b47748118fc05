"""Each vocabulary is stated once and agrees with the types it describes."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

from sync.calls.legs import CALL_COLUMNS, DISPOSITION_CODES, DISPOSITIONS, LEG_COLUMNS, CallRow, Leg
from sync.settings import DIRECTION_KEYS, RESULT_KEYS, VALUE_KEYS, ValueSpellings
from sync.sources.coerce import derive_calldate_times
from sync.sources.schema import CALL_REQUIRED, LEG_OPTIONAL, LEG_REQUIRED, SHAPE_REQUIRED


def test_column_vocabularies_are_the_record_fields() -> None:
    leg_fields = [f.name for f in fields(Leg)]
    assert set(LEG_COLUMNS) == (set(leg_fields) - {"tenant"}) | {"calldate"}
    assert LEG_COLUMNS.index("calldate") == LEG_COLUMNS.index("end") + 1
    assert tuple(f.name for f in fields(CallRow)) == CALL_COLUMNS


def test_schema_classifies_every_leg_column() -> None:
    shape_columns = {c for columns in SHAPE_REQUIRED.values() for c in columns}
    assert set(LEG_REQUIRED) | shape_columns | set(LEG_OPTIONAL) == set(LEG_COLUMNS)
    assert set(CALL_REQUIRED) <= set(CALL_COLUMNS)


def test_one_disposition_table_spec_section_3() -> None:
    by_code = sorted(DISPOSITION_CODES.items(), key=lambda item: item[1])
    assert by_code == [  # spec §3, in the order of the integer codes
        ("NO ANSWER", 0),
        ("FAILED", 2),
        ("BUSY", 4),
        ("ANSWERED", 8),
        ("CONGESTION", 16),
        ("CANCEL", 32),
    ]
    assert DISPOSITIONS["1"] == "NO ANSWER"
    for text, code in DISPOSITION_CODES.items():
        assert DISPOSITIONS[text] == DISPOSITIONS[str(code)] == text
    calldate = datetime(2026, 3, 2, 10, 0, 0)
    for answered in ("ANSWERED", "answered", "8"):  # the calldate schema reads the same table
        assert derive_calldate_times(calldate, 10, 0, answered)[0] == calldate + timedelta(
            seconds=10
        )
    assert derive_calldate_times(calldate, 10, 0, "4")[0] is None


def test_value_keys_cover_every_spelling_field() -> None:
    assert set(VALUE_KEYS.values()) == {f.name for f in fields(ValueSpellings)}
    assert set(DIRECTION_KEYS) | set(RESULT_KEYS) == set(VALUE_KEYS)
    assert ValueSpellings().spellings("no answer") == ValueSpellings().no_answer
