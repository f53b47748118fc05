"""Turning whatever the PBX database hands back into ``Leg``/``CallRow`` field values.

Call logs are written by many backends over many years: text times in SQLite, epoch seconds in
integer columns, ``timestamptz`` columns, zero dates, bytes in a wrong encoding, numbers in text
columns. None of this may stop a poll, so every function here is total: a value it cannot read
becomes ``None`` (or ``""``) and the call builder records a skip reason instead of the reader
raising. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

from sync.calls.legs import DISPOSITIONS
from sync.timeutil import to_wall

__all__ = [
    "derive_calldate_times",
    "to_disposition",
    "to_int",
    "to_opt_str",
    "to_str",
    "to_time",
]

_EPOCH_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
_MAX_EPOCH = 253_402_300_799  # 9999-12-31 23:59:59 UTC


def _text(value: bytes | bytearray | memoryview) -> str:
    # Wrong encodings (cp1251 caller names in a latin1 column...) must not stop a poll.
    return bytes(value).decode("utf-8", errors="replace")


def to_str(value: object) -> str:
    """Stripped text; ``None`` becomes ``""``, bytes are decoded as UTF-8 with replacement."""
    if type(value) is str:  # the common case, kept cheap
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bytes | bytearray | memoryview):
        return _text(value).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def to_opt_str(value: object) -> str | None:
    """Like ``to_str`` but keeps NULL apart from an empty string (``calls`` flavor)."""
    return None if value is None else to_str(value)


def to_int(value: object) -> int | None:
    """An integer from int, float, Decimal or numeric text; anything else is ``None``."""
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() else None
    if isinstance(value, bytes | bytearray | memoryview):
        value = _text(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return int(number) if number.is_finite() else None
    return None


def to_disposition(value: object) -> str:
    """Text as stored (``ANSWERED``), or an integer code as a string (``"8"``)."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        code = to_int(value)
        return "" if code is None else str(code)
    return to_str(value)


def _from_epoch(seconds: float | Decimal, zone: tzinfo) -> datetime | None:
    # 0 and negatives are "unset" values of integer time columns, not 1970.
    if not (0 < seconds <= _MAX_EPOCH):
        return None
    try:
        return datetime.fromtimestamp(float(seconds), zone).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def to_time(value: object, zone: tzinfo) -> datetime | None:
    """A naive wall-clock time in ``zone`` (the source's zone, spec §4).

    Accepts naive datetimes (already wall time), aware ones (converted), dates, epoch seconds
    as numbers or digit strings (UTC by definition), and ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text
    with an optional ``T`` and offset. Zero dates and anything else give ``None``.
    """
    if type(value) is datetime and value.tzinfo is None:  # the common case, kept cheap
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=None)
        return to_wall(value, zone)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Decimal) and not value.is_finite():
            return None
        return _from_epoch(value, zone)
    if isinstance(value, bytes | bytearray | memoryview):
        value = _text(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if _EPOCH_RE.match(text):
        return _from_epoch(Decimal(text), zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return to_time(parsed, zone)


def _plus(moment: datetime, seconds: int) -> datetime | None:
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return None


def derive_calldate_times(
    calldate: datetime | None,
    duration: int | None,
    billsec: int | None,
    disposition: str,
) -> tuple[datetime | None, datetime | None]:
    """``(answer, end)`` for the ``calldate`` schema, which stores only the start (spec §1.2).

    ``end = calldate + duration``; ``answer = end − billsec`` when ``billsec > 0`` or the row
    is ANSWERED (code 8), else ``None``. Unknown inputs give ``None`` rather than a guess;
    negative values are kept as they are, the builder judges them.
    """
    if calldate is None or duration is None:
        return None, None
    end = _plus(calldate, duration)
    if end is None or billsec is None:
        return None, end
    answered = DISPOSITIONS.get(disposition.upper()) == "ANSWERED"
    if billsec > 0 or answered:
        return _plus(end, -billsec), end
    return None, end
