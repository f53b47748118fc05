"""The records a source reader hands to the call builder.

Readers coerce database values into these types but never judge them: a leg with a NULL
time or a negative duration is still a leg, and the builder decides whether it makes a call
or a skip reason. Timestamps are naive wall-clock times in ``source.timezone``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Final

__all__ = ["CALL_COLUMNS", "DISPOSITIONS", "DISPOSITION_CODES", "LEG_COLUMNS", "CallRow", "Leg"]

DISPOSITION_CODES: Final = {
    "ANSWERED": 8,
    "NO ANSWER": 0,
    "BUSY": 4,
    "FAILED": 2,
    "CONGESTION": 16,
    "CANCEL": 32,
}
"""The one disposition table (spec §3, ``include/asterisk/cdr.h``): the text a backend writes
into a text column -> the integer code it writes into an integer column."""

DISPOSITIONS: Final = {
    **{text: text for text in DISPOSITION_CODES},
    **{str(code): text for text, code in DISPOSITION_CODES.items()},
    "1": "NO ANSWER",  # Asterisk's internal "NULL" state, printed as NO ANSWER
}
"""``Leg.disposition`` as stored (text, or an integer code as a string) -> its text (R3)."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One CDR row (Asterisk ``cdr`` table, either schema; FreePBX extras optional)."""

    uniqueid: str
    linkedid: str
    sequence: int | None
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    src: str = ""
    dst: str = ""
    clid: str = ""
    channel: str = ""
    dstchannel: str = ""
    lastapp: str = ""
    disposition: str = ""
    """Text as stored (``ANSWERED``) or an integer code as a string (``"8"``)."""
    duration: int | None = None
    billsec: int | None = None
    recordingfile: str = ""
    userfield: str = ""
    did: str = ""
    outbound_cnum: str = ""
    tenant: str = ""
    """Value of ``source.tenant_column`` for this row, empty when unset."""


@dataclass(frozen=True, slots=True)
class CallRow:
    """One row of a ``calls``-flavor log: a call already assembled by the PBX side.

    Values are raw strings as stored (``None`` for NULL); the builder maps them through
    ``[source.values]``.
    """

    id: str
    started_at: datetime | None
    ended_at: datetime | None
    direction: str | None = None
    phone: str | None = None
    extension: str | None = None
    result: str | None = None
    duration: int | None = None
    wait: int | None = None
    recording: str | None = None
    tenant: str = ""


def _leg_columns() -> tuple[str, ...]:
    names = [f.name for f in fields(Leg) if f.name != "tenant"]
    names.insert(names.index("end") + 1, "calldate")
    return tuple(names)


LEG_COLUMNS: Final = _leg_columns()
"""Logical column names of a CDR table (``[source.columns]`` keys for the leg flavors, and
the order ``LegSource`` unpacks a row in): the ``Leg`` fields plus ``calldate``, the older
schema's start; ``tenant`` is ``source.tenant_column`` and is added by the reader."""

CALL_COLUMNS: Final = tuple(f.name for f in fields(CallRow))
"""Logical column names of a ``calls`` log: the ``CallRow`` fields, in the order
``CallSource`` unpacks a row in."""
