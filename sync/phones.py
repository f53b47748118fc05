"""Phone normalisation, rules N0–N5 of spec/asterisk-cdr.md §9.3 and docs/call-rules.md.

N5 (``[pbx] area_code``) is applied after N3 found no valid reading and before N4 keeps the
number raw: a local number written without its area code.

The CRM matches customers by exact number, so every number we send is E.164 with ``+`` when
phonenumbers (pinned metadata) says it is valid, and otherwise the digits as the PBX gave them
(N4), never a guess. Parsing costs ~40 µs per number, so results are memoised: a PBX sees the
same customers again and again, and the builder must keep up with a large back-fill. The memo
holds up to ``MEMO_SIZE`` numbers (~0.4 KB each); the live bridge (``serve``) normalises a
few numbers per call, nearly all of them new, and passes ``memo=False``: there a memo would
only keep every number of months of calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

__all__ = ["MEMO_SIZE", "PhoneKind", "PhoneResult", "memoised", "normalize_phone", "unwrap_clid"]

PhoneKind = Literal["e164", "raw", "extension", "none"]

_NO_NUMBER_WORDS = frozenset({"", "anonymous", "unknown", "restricted", "s", "private"})
_NON_DIGITS = re.compile(r"[^0-9]+")
_FIRST_SIGNIFICANT = re.compile(r"[0-9+]")
_CLID_NUMBER = re.compile(r"<([^<>]*)>\s*$")
_MIN_DIGITS = 5
_MAX_DIGITS = 20
"""Longer digit strings are not numbers (E.164 allows 15; prefixes add a few)."""
_MAX_CACHED_INPUT = 64
MEMO_SIZE = 1 << 16
"""Numbers whose normalisation is memoised (batch work: the builder, back-fills, reports)."""


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """What N0–N5 made of one raw value; ``reason`` is shown by ``explain`` and in warnings."""

    value: str | None
    """E.164 with ``+`` (kind ``e164``), the digits as given (``raw``), else ``None``."""
    kind: PhoneKind
    reason: str

    @property
    def usable(self) -> bool:
        """A customer number we can send (E.164 or raw digits)."""
        return self.value is not None


def unwrap_clid(clid: str | None) -> str:
    """The number of a caller-ID string ``"Name" <num>``; a clid without ``<…>`` as it is."""
    if not clid:
        return ""
    match = _CLID_NUMBER.search(clid)
    return (match.group(1) if match else clid).strip()


def normalize_phone(
    raw: str | None,
    *,
    country: str,
    extension_pattern: re.Pattern[str] | str,
    dial_prefixes: tuple[str, ...] = (),
    area_code: str = "",
    memo: bool = True,
) -> PhoneResult:
    """Apply N0 (only when ``dial_prefixes`` is given, i.e. for ``out`` calls), N1–N3, N5
    (only when ``area_code`` is given), N4. ``memo=False``: the result is computed and not
    remembered (numbers seen once, as a live call's)."""
    if not isinstance(raw, str):
        return _NONE_EMPTY
    pattern = (
        _compile(extension_pattern) if isinstance(extension_pattern, str) else extension_pattern
    )
    if not memo or len(raw) > _MAX_CACHED_INPUT:
        return _normalize(raw, country, pattern, dial_prefixes, area_code)
    return _normalize_cached(raw, country, pattern, dial_prefixes, area_code)


_NONE_EMPTY = PhoneResult(None, "none", "N1: empty")


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _clean(raw: str) -> str:
    """N1: ``+`` (only as the first significant character) and ASCII digits."""
    first = _FIRST_SIGNIFICANT.search(raw)
    if first is None:
        return ""
    digits = _NON_DIGITS.sub("", raw)
    return "+" + digits if first.group() == "+" else digits


def _strip_dial_prefix(number: str, prefixes: tuple[str, ...]) -> tuple[str, str]:
    """N0: the longest configured prefix whose removal leaves at least 5 digits."""
    for prefix in sorted(prefixes, key=len, reverse=True):
        if prefix and number.startswith(prefix) and len(number) - len(prefix) >= _MIN_DIGITS:
            return number[len(prefix) :], prefix
    return number, ""


def _normalize(
    raw: str,
    country: str,
    extension: re.Pattern[str],
    dial_prefixes: tuple[str, ...],
    area_code: str = "",
) -> PhoneResult:
    text = raw.strip()
    if text.lower() in _NO_NUMBER_WORDS:
        return PhoneResult(None, "none", f"N1: {text!r} is no number" if text else "N1: empty")
    number = _clean(text)
    if not number.lstrip("+"):
        return PhoneResult(None, "none", f"N1: no digits in {_short(text)!r}")
    stripped = ""
    if dial_prefixes and not number.startswith("+"):
        number, stripped = _strip_dial_prefix(number, dial_prefixes)
    note = f"N0: dial prefix {stripped!r} stripped; " if stripped else ""
    if extension.search(number):
        return PhoneResult(None, "extension", f"{note}N2: {number} is an extension")
    digit_count = len(number) - number.startswith("+")
    if digit_count > _MAX_DIGITS:
        return PhoneResult(None, "none", f"N4: {digit_count} digits is not a phone number")
    e164, how = _parse_valid(number, country)
    if e164 is not None:
        return PhoneResult(e164, "e164", f"{note}{how}")
    if area_code and digit_count >= _MIN_DIGITS and _local_form(number):
        e164, region = _e164_if_valid(area_code + number, country)
        if e164 is not None:
            return PhoneResult(
                e164, "e164", f"{note}N5: area code {area_code} + {number}, valid ({region})"
            )
    if digit_count >= _MIN_DIGITS:
        return PhoneResult(number, "raw", f"{note}N4: {number} is not a valid number, kept raw")
    return PhoneResult(None, "none", f"{note}N4: {number} is too short")


_normalize_cached = lru_cache(maxsize=MEMO_SIZE)(_normalize)


def memoised() -> int:
    """How many normalisations the memo holds now (tests, diagnostics)."""
    return _normalize_cached.cache_info().currsize


def _parse_valid(number: str, country: str) -> tuple[str | None, str]:
    """N3: ``00`` → ``+``; parse in ``country``; an all-digit miss retries as ``+digits``."""
    double_zero = number.startswith("00")
    candidate = "+" + number[2:] if double_zero else number
    e164, region = _e164_if_valid(candidate, country)
    how = f"N3: 00 → +, valid ({region})" if double_zero else f"N3: valid ({region})"
    if e164 is None and candidate.isdigit():
        e164, region = _e164_if_valid("+" + candidate, country)
        how = f"N3: valid with + retry ({region})"
    return e164, how


def _local_form(number: str) -> bool:
    """N5 applies to digits only: no ``+``, no ``00`` international prefix."""
    return number.isdigit() and not number.startswith("00")


def _e164_if_valid(number: str, country: str) -> tuple[str | None, str]:
    try:
        parsed = phonenumbers.parse(number, country or None)
    except NumberParseException:
        return None, ""
    if not phonenumbers.is_valid_number(parsed):
        return None, ""
    region = phonenumbers.region_code_for_number(parsed) or "?"
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164), region


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
