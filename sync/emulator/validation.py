"""What ``telephony/calls/upload`` accepts (spec §6.1, §10 items 5-6), as a pure function.

Kept free of server state so that the emulator and property tests share one definition of a
valid batch. The real server's required fields are not documented (Q3); this module requires
what the project always sends (``date``, ``type``, ``phone``, ``result``) and rejects fields
the official call model does not have, so a typo in a payload builder fails loudly.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

MAX_CALLS = 50
CALL_TYPES = frozenset({"in", "out"})
CALL_RESULTS = frozenset({"answered", "busy", "failed", "no answer", "not allowed", "unknown"})
CALL_FIELDS = frozenset(
    {
        "date",
        "type",
        "phone",
        "code",
        "userId",
        "result",
        "duration",
        "durationWaiting",
        "externalId",
        "recordUrl",
        "externalPhone",
        "site",
        "source",
        "clientId",
    }
)
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def is_datetime(value: object) -> bool:
    """``Y-m-d H:i:s`` exactly, and a real calendar date and time."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return False
    try:
        datetime.strptime(value, DATETIME_FORMAT)
    except ValueError:
        return False
    return True


def validate_calls(calls: object) -> dict[str, str]:
    """Errors keyed like ``calls[3].result``; ``{}`` when the whole batch is valid."""
    if not isinstance(calls, list):
        return {"calls": "This value should be of type array."}
    if not calls:
        return {"calls": "This collection should contain 1 element or more."}
    if len(calls) > MAX_CALLS:
        return {"calls": f"This collection should contain {MAX_CALLS} elements or less."}
    errors: dict[str, str] = {}
    for index, call in enumerate(calls):
        errors.update(_validate_call(f"calls[{index}]", call))
    return errors


def _validate_call(prefix: str, call: object) -> dict[str, str]:
    if not isinstance(call, dict):
        return {prefix: "This value should be of type object."}
    problems: dict[str, str] = {}
    for name in call:
        if name not in CALL_FIELDS:
            problems[str(name)] = "This field was not expected."
    if not is_datetime(call.get("date")):
        problems["date"] = "This value is not a valid datetime (Y-m-d H:i:s)."
    if call.get("type") not in CALL_TYPES:
        problems["type"] = "The value you selected is not a valid choice."
    if call.get("result") not in CALL_RESULTS:
        problems["result"] = "The value you selected is not a valid choice."
    phone = call.get("phone")
    if not isinstance(phone, str) or not phone.strip():
        problems["phone"] = "This value should not be blank."
    problems.update(_optional_problems(call))
    return {f"{prefix}.{name}": message for name, message in problems.items()}


def _optional_problems(call: dict[str, object]) -> dict[str, str]:
    """Checks of fields that may be absent (JSON ``null`` counts as absent)."""
    problems: dict[str, str] = {}
    for name in ("duration", "durationWaiting"):
        value = call.get(name)
        if value is not None and not (type(value) is int and value >= 0):
            problems[name] = "This value should be a non-negative integer."
    user_id = call.get("userId")
    if user_id is not None and not (type(user_id) is int and user_id > 0):
        problems["userId"] = "This value should be a positive integer."
    external_id = call.get("externalId")
    if external_id is not None and not (isinstance(external_id, str) and external_id):
        problems["externalId"] = "This value should be a non-empty string."
    for name in ("code", "externalPhone", "site", "clientId"):
        value = call.get(name)
        if value is not None and not isinstance(value, str):
            problems[name] = "This value should be of type string."
    record_url = call.get("recordUrl")
    if record_url is not None and not is_http_url(record_url):
        problems["recordUrl"] = "This value is not a valid URL."
    source = call.get("source")
    if source is not None and not isinstance(source, dict):
        problems["source"] = "This value should be of type object."
    return problems


def is_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
