"""N0–N4 against every row of spec/asterisk-cdr.md §10 ("Behaviour"), plus the edges."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.phones import PhoneResult, normalize_phone, unwrap_clid

EXT = r"^\d{2,5}$"

SPEC_TABLE = [
    # (country, input, kind, value)
    ("BY", "80291234567", "e164", "+375291234567"),
    ("BY", "291234567", "e164", "+375291234567"),
    ("BY", "0291234567", "e164", "+375291234567"),
    ("BY", "8 (029) 123-45-67", "e164", "+375291234567"),
    ("BY", "+375 29 123-45-67", "e164", "+375291234567"),
    ("BY", "375291234567", "e164", "+375291234567"),
    ("BY", "80172345678", "e164", "+375172345678"),
    ("BY", "0172345678", "e164", "+375172345678"),
    ("BY", "172345678", "e164", "+375172345678"),
    ("BY", "2345678", "raw", "2345678"),
    ("BY", "81049301234567", "e164", "+49301234567"),
    ("BY", "0049301234567", "e164", "+49301234567"),
    ("BY", "00375291234567", "e164", "+375291234567"),
    ("BY", "49301234567", "e164", "+49301234567"),
    ("BY", "79161234567", "e164", "+79161234567"),
    ("BY", "77011234567", "e164", "+77011234567"),
    ("BY", "89161234567", "raw", "89161234567"),
    ("BY", "980291234567", "raw", "980291234567"),
    ("BY", "101", "extension", None),
    ("BY", "1001", "extension", None),
    ("BY", "12345", "extension", None),
    ("BY", "123456", "raw", "123456"),
    ("BY", "anonymous", "none", None),
    ("BY", "unknown", "none", None),
    ("BY", "s", "none", None),
    ("RU", "89161234567", "e164", "+79161234567"),
    ("RU", "9161234567", "e164", "+79161234567"),
    ("RU", "8 (916) 123-45-67", "e164", "+79161234567"),
    ("RU", "375291234567", "e164", "+375291234567"),
    ("RU", "80291234567", "raw", "80291234567"),
    ("RU", "77011234567", "e164", "+77011234567"),
]


@pytest.mark.parametrize(("country", "raw", "kind", "value"), SPEC_TABLE)
def test_spec_table(country: str, raw: str, kind: str, value: str | None) -> None:
    result = normalize_phone(raw, country=country, extension_pattern=EXT)
    assert (result.kind, result.value) == (kind, value), result.reason


@pytest.mark.parametrize(
    "raw", ["", "   ", None, "Anonymous", "RESTRICTED", "private", "Private", "abc", "+", "-"]
)
def test_no_number(raw: str | None) -> None:
    result = normalize_phone(raw, country="BY", extension_pattern=EXT)
    assert (result.kind, result.value) == ("none", None)
    assert not result.usable


@pytest.mark.parametrize(
    ("raw", "prefixes", "value"),
    [
        ("980291234567", ("9",), "+375291234567"),  # N0
        ("9980291234567", ("9", "99"), "+375291234567"),  # the longest prefix first
        ("91234", ("9",), None),  # stripping would leave 4 digits: kept, then too short
        ("+375291234567", ("9",), "+375291234567"),  # never strip from an international number
    ],
)
def test_dial_prefixes(raw: str, prefixes: tuple[str, ...], value: str | None) -> None:
    result = normalize_phone(raw, country="BY", extension_pattern=EXT, dial_prefixes=prefixes)
    assert result.value == value, result.reason


def test_short_digits_are_no_number() -> None:
    result = normalize_phone("+1234", country="BY", extension_pattern=EXT)
    assert (result.kind, result.value) == ("none", None)


def test_raw_keeps_leading_plus() -> None:
    result = normalize_phone("+3752345678", country="BY", extension_pattern=EXT)
    assert (result.kind, result.value) == ("raw", "+3752345678")


def test_absurdly_long_digit_strings_are_not_numbers() -> None:
    result = normalize_phone("1" * 40, country="BY", extension_pattern=EXT)
    assert result.kind == "none"


def test_compiled_and_string_patterns_agree() -> None:
    compiled = re.compile(r"^1\d{2}$")
    for raw in ("101", "201", "80291234567"):
        by_string = normalize_phone(raw, country="BY", extension_pattern=r"^1\d{2}$")
        assert normalize_phone(raw, country="BY", extension_pattern=compiled) == by_string
    assert normalize_phone("201", country="BY", extension_pattern=compiled).kind == "none"


def test_unknown_country_still_reads_international_numbers() -> None:
    assert normalize_phone("+375291234567", country="", extension_pattern=EXT).value == (
        "+375291234567"
    )
    assert normalize_phone("375291234567", country="XX", extension_pattern=EXT).value == (
        "+375291234567"
    )


@pytest.mark.parametrize(
    ("clid", "number"),
    [
        ('"Shop line" <80291234567>', "80291234567"),
        ('"Anonymous" <anonymous>', "anonymous"),
        ("<+375291234567>", "+375291234567"),
        ('"a <b> c" <101>', "101"),
        ("80291234567", "80291234567"),
        ('"Name only"', '"Name only"'),
        ("", ""),
        (None, ""),
    ],
)
def test_unwrap_clid(clid: str | None, number: str) -> None:
    assert unwrap_clid(clid) == number


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.sampled_from(["BY", "RU", "DE", ""]))
def test_never_raises_and_values_are_clean(raw: str, country: str) -> None:
    result = normalize_phone(raw, country=country, extension_pattern=EXT, dial_prefixes=("9",))
    assert isinstance(result, PhoneResult)
    if result.value is not None:
        assert re.fullmatch(r"\+?[0-9]{5,20}", result.value)
        assert result.kind in ("e164", "raw")
    else:
        assert result.kind in ("extension", "none")


AREA_CODE_CASES = [
    # (country, area code, input, kind, value): N5, the issue 11 call log and its edges
    ("RU", "3012", "214943", "e164", "+73012214943"),  # six-digit city number, area code added
    ("RU", "83012", "214943", "e164", "+73012214943"),  # trunk prefix in the setting is fine
    ("RU", "3012", "2-14-94-3", "e164", "+73012214943"),  # N1 first
    ("RU", "3012", "83012214943", "e164", "+73012214943"),  # valid as written: N3, no prefix
    ("RU", "3012", "89161234567", "e164", "+79161234567"),  # a mobile is never touched
    ("RU", "3012", "375291234567", "e164", "+375291234567"),  # N3's + retry still wins
    ("RU", "3012", "+214943", "raw", "+214943"),  # written with +: not a local number
    ("RU", "3012", "00214943", "raw", "00214943"),  # written with 00: not a local number
    ("RU", "3012", "2149431234", "raw", "2149431234"),  # invalid even with the area code
    ("RU", "3012", "12345", "extension", None),  # N2 before N5
    ("RU", "", "214943", "raw", "214943"),  # no area code configured: N4 as before
    ("BY", "17", "2345678", "e164", "+375172345678"),  # Minsk 7-digit local number
    ("BY", "017", "2345678", "e164", "+375172345678"),
]


@pytest.mark.parametrize(("country", "area", "raw", "kind", "value"), AREA_CODE_CASES)
def test_area_code_n5(country: str, area: str, raw: str, kind: str, value: str | None) -> None:
    result = normalize_phone(raw, country=country, extension_pattern=EXT, area_code=area)
    assert (result.kind, result.value) == (kind, value), result.reason


def test_area_code_reason_names_n5_only_when_it_applies() -> None:
    completed = normalize_phone("214943", country="RU", extension_pattern=EXT, area_code="3012")
    assert completed.reason == "N5: area code 3012 + 214943, valid (RU)"
    as_written = normalize_phone(
        "83012214943", country="RU", extension_pattern=EXT, area_code="3012"
    )
    assert "N5" not in as_written.reason


def test_area_code_after_dial_prefix() -> None:
    result = normalize_phone(
        "9214943", country="RU", extension_pattern=EXT, dial_prefixes=("9",), area_code="3012"
    )
    assert result.value == "+73012214943"
    assert result.reason.startswith("N0: dial prefix '9' stripped; N5: area code 3012")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A[0-9]{5,12}\Z"))
def test_area_code_only_changes_numbers_invalid_without_it(raw: str) -> None:
    plain = normalize_phone(raw, country="RU", extension_pattern=EXT)
    with_area = normalize_phone(raw, country="RU", extension_pattern=EXT, area_code="3012")
    if plain.kind != "raw":
        assert with_area == plain
    else:
        assert with_area.kind in ("raw", "e164")
        assert with_area.kind == "raw" or with_area.value == "+73012" + raw
