"""Click-to-call rules C2 and C3 as pure functions: what may be dialled, and how it is spelled.

A refused number never reaches the PBX: the guard runs on the raw text before anything else
(a CR, LF or ``:`` in an AMI header value would start a header of the attacker's choosing),
then the number must normalise to E.164 and match ``allow`` (toll fraud: any CRM admin can see
the clientId and call ``makeCallUrl`` with any number).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat

from sync.phones import normalize_phone

MAX_PHONE_CHARS = 40
_SAFE_PHONE = re.compile(r"[0-9 +\-().]+")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a click was refused; ``status`` is the HTTP status to answer with."""

    status: int
    reason: str


def phone_text_problem(raw: str) -> str | None:
    """C2 injection guard: only digits, space and ``+ - ( ) .``; ``None`` when safe."""
    if not raw:
        return "phone is missing"
    if len(raw) > MAX_PHONE_CHARS:
        return f"phone is longer than {MAX_PHONE_CHARS} characters"
    if not _SAFE_PHONE.fullmatch(raw):
        return "phone may contain only digits, spaces and + - ( ) ."
    return None


@lru_cache(maxsize=64)
def _parsed(e164: str) -> phonenumbers.PhoneNumber | None:
    """One parse per click for its allow check and its dial string (immutable use only). The
    two follow each other in one handler, so a few entries are all the reuse there is; a large
    memo would only keep every number dialled (clicks are nearly all to different numbers)."""
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None


def number_allowed(e164: str, allow: Sequence[str], country: str) -> bool:
    """``allow`` regexes (searched in the E.164 text); by default numbers of ``country`` only."""
    if allow:
        return any(re.search(pattern, e164) for pattern in allow)
    parsed = _parsed(e164)
    return parsed is not None and phonenumbers.region_code_for_number(parsed) == country.upper()


def dialable_e164(
    raw: str,
    *,
    country: str,
    extension_pattern: str,
    allow: Sequence[str],
) -> str | Refusal:
    """C2: the E.164 number to call, or why not (always a 400)."""
    problem = phone_text_problem(raw)
    if problem:
        return Refusal(400, problem)
    result = normalize_phone(raw, country=country, extension_pattern=extension_pattern, memo=False)
    if result.kind != "e164" or result.value is None:
        return Refusal(400, "phone is not a valid number")
    if not number_allowed(result.value, allow, country):
        return Refusal(400, "phone is outside the numbers this PBX may dial (originate.allow)")
    return result.value


def international_prefix(country: str) -> str:
    """The digits a caller in ``country`` dials before a foreign country code (BY ``810``)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(country.upper())
    if meta is None:
        return "00"
    for prefix in (meta.preferred_international_prefix, meta.international_prefix):
        digits = (prefix or "").replace("~", "")
        if digits.isdigit():
            return digits
    return "00"


def dial_string(
    e164: str, *, dial_format: str, country: str, dial_prefixes: Sequence[str] = ()
) -> str:
    """C3: the number as the PBX's outbound route expects it, digits only.

    ``e164``: country code and number (``375291234567``); ``national``: as dialled inside
    ``country`` (``80291234567`` in BY; a foreign number gets the international prefix);
    ``international``: always the international prefix (``810375291234567`` from BY).
    ``dial_prefixes[0]`` (an outbound route's ``9``) goes in front.
    """
    parsed = _parsed(e164)
    if parsed is None:
        raise ValueError(f"not an E.164 number: {e164!r}")
    country_code = str(parsed.country_code)
    national = phonenumbers.national_significant_number(parsed)
    home = phonenumbers.region_code_for_number(parsed) == country.upper()
    if dial_format == "e164":
        digits = country_code + national
    elif dial_format == "national" and home:
        text = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        digits = re.sub(r"\D", "", text)
    else:
        digits = international_prefix(country) + country_code + national
    prefix = dial_prefixes[0] if dial_prefixes else ""
    return prefix + digits
