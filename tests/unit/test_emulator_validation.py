"""The emulator's pure pieces: calls/upload validation, PHP-style decoding, phone matching."""

from __future__ import annotations

from typing import Any

import pytest

from sync.emulator.forms import decode_json_fields, form_pairs, nest
from sync.emulator.state import phones_match
from sync.emulator.validation import is_datetime, validate_calls


def call(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "date": "2026-03-02 10:00:00",
        "type": "in",
        "phone": "+375291234567",
        "code": "101",
        "result": "answered",
        "duration": 120,
        "durationWaiting": 7,
        "externalId": "1772434800.16",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def test_valid_batch_has_no_errors() -> None:
    recorded = call(type="out", recordUrl="https://pbx.example.com/rec/a.wav", site="shop")
    assert validate_calls([call(), recorded, call(result="no answer", duration=0)]) == {}


def test_optional_fields_may_be_absent_or_null() -> None:
    minimal = call(code=..., duration=..., durationWaiting=..., externalId=...)
    assert validate_calls([minimal, call(code=None, recordUrl=None)]) == {}


@pytest.mark.parametrize(
    ("calls", "key"),
    [
        ({"date": "x"}, "calls"),
        ("[]", "calls"),
        ([], "calls"),
        ([call()] * 51, "calls"),
        ([call(), "call"], "calls[1]"),
    ],
)
def test_batch_shape(calls: object, key: str) -> None:
    assert list(validate_calls(calls)) == [key]


def test_exactly_fifty_calls_are_accepted() -> None:
    assert validate_calls([call(externalId=str(i)) for i in range(50)]) == {}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date": "2026-03-02T10:00:00"}, "date"),
        ({"date": "2026-03-02 10:00"}, "date"),
        ({"date": "2026-02-30 10:00:00"}, "date"),
        ({"date": "2026-03-02 24:00:00"}, "date"),
        ({"date": "2026-03-02 10:00:00\n"}, "date"),
        ({"date": "２０２６-03-02 10:00:00"}, "date"),
        ({"date": ...}, "date"),
        ({"type": "hangup"}, "type"),
        ({"type": "IN"}, "type"),
        ({"result": "no answered"}, "result"),
        ({"result": "noanswer"}, "result"),
        ({"result": ...}, "result"),
        ({"duration": -1}, "duration"),
        ({"duration": 1.5}, "duration"),
        ({"duration": "10"}, "duration"),
        ({"duration": True}, "duration"),
        ({"durationWaiting": False}, "durationWaiting"),
        ({"phone": ""}, "phone"),
        ({"phone": "  "}, "phone"),
        ({"phone": 375291234567}, "phone"),
        ({"phone": ...}, "phone"),
        ({"externalId": ""}, "externalId"),
        ({"externalId": 17}, "externalId"),
        ({"code": 101}, "code"),
        ({"userId": True}, "userId"),
        ({"recordUrl": "ftp://pbx/rec.wav"}, "recordUrl"),
        ({"recordUrl": "rec.wav"}, "recordUrl"),
        ({"recordUrl": "http://[::1/rec.wav"}, "recordUrl"),
        ({"clientId": 5}, "clientId"),
        ({"source": "google"}, "source"),
        ({"duratoin": 5}, "duratoin"),
    ],
)
def test_invalid_field_is_reported_by_call_index(overrides: dict[str, Any], field: str) -> None:
    errors = validate_calls([call(), call(), call(), call(**overrides)])
    assert list(errors) == [f"calls[3].{field}"]


def test_every_problem_of_every_call_is_reported() -> None:
    errors = validate_calls([call(type="x", result="y"), call(), call(duration=-5)])
    assert set(errors) == {"calls[0].type", "calls[0].result", "calls[2].duration"}


def test_is_datetime() -> None:
    assert is_datetime("2024-02-29 23:59:59")
    assert not is_datetime("2023-02-29 23:59:59")
    assert not is_datetime(None)


def test_nest_builds_php_arrays() -> None:
    pairs = [
        ("filter[name]", "Anna"),
        ("filter[ids][]", "1"),
        ("filter[ids][]", "2"),
        ("filter[sites][0]", "a"),
        ("filter[sites][1]", "b"),
        ("filter[customFields][vip][min]", "3"),
        ("limit", "100"),
        ("limit", "50"),
    ]
    assert nest(pairs) == {
        "filter": {
            "name": "Anna",
            "ids": ["1", "2"],
            "sites": ["a", "b"],
            "customFields": {"vip": {"min": "3"}},
        },
        "limit": "50",
    }


def test_multipart_body_is_decoded() -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="calls"\r\n\r\n[{{"a":1}}]\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="site"\r\n\r\nshop\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    pairs = form_pairs(f"multipart/form-data; boundary={boundary}", body)
    assert pairs == [("calls", '[{"a":1}]'), ("site", "shop")]


def test_json_fields_are_parsed_and_bad_json_is_flagged() -> None:
    params: dict[str, Any] = {"calls": "[1]", "customer": "{bad", "site": "[]"}
    assert decode_json_fields(params) == {"customer"}
    assert params == {"calls": [1], "customer": "{bad", "site": "[]"}


@pytest.mark.parametrize(
    ("query", "number", "expected"),
    [
        ("375291234567", "+375 (29) 123-45-67", True),
        ("291234567", "+375291234567", True),
        ("+375291234567", "291234567", True),
        ("1234567", "+375291234567", True),
        ("234567", "+375291234567", False),
        ("80291234567", "+375291234567", False),
        ("375291234568", "+375291234567", False),
    ],
)
def test_phone_matching(query: str, number: str, expected: bool) -> None:
    assert phones_match("".join(c for c in query if c.isdigit()), number) is expected
