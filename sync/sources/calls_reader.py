"""The ``calls`` flavor: a log that already has one row per call, mapped column by column.

Same keyset window as the leg reader (``base``) on ``started_at``; every row is a whole call,
so there is no second phase.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from sync.batches import chunks
from sync.calls.legs import CALL_COLUMNS, CallRow
from sync.sources import queries
from sync.sources.base import IN_CHUNK, TableSource, Window
from sync.sources.coerce import to_int, to_opt_str, to_str, to_time

_FIELDS = CALL_COLUMNS
"""The logical columns (``CallRow``'s fields) in the order ``_row`` unpacks them."""
_NEVER = datetime.max


def call_sort_key(row: CallRow) -> tuple[bool, datetime, str]:
    return (row.started_at is None, row.started_at or _NEVER, row.id)


class CallSource(TableSource[CallRow]):
    """Reads ``CallRow`` records from a one-row-per-call log."""

    def _optional_columns(self) -> tuple[str, ...]:
        return tuple(c for c in CALL_COLUMNS if c not in ("id", "started_at", "tenant"))

    def read_window(
        self, start: datetime, end: datetime, *, tenant_match: str | None = None
    ) -> Iterator[list[CallRow]]:
        """Pages of calls whose ``started_at`` is in ``[start, end)`` (naive, source zone)."""
        return self._window(start, end, tenant_match)

    def rows_of(self, ids: Sequence[str]) -> list[CallRow]:
        """The rows with these ids, for ``explain``."""
        cols = self._page_columns()
        rows: list[CallRow] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(dict.fromkeys(ids)), IN_CHUNK):
                query = queries.by_id(self.layout, cols, chunk)
                rows.extend(self._row(r) for r in conn.execute(query))
        return sorted(rows, key=call_sort_key)

    def _page_columns(self) -> list[ColumnElement[Any]]:
        return queries.fields_or_null(self.layout, _FIELDS)

    def _finish_page(
        self, conn: sa.Connection, rows: Sequence[sa.Row[Any]], window: Window
    ) -> list[CallRow]:
        return sorted((self._row(r[1:]) for r in rows), key=call_sort_key)

    def _row(self, row: Sequence[Any]) -> CallRow:
        """One row of ``_page_columns`` (``_FIELDS`` order) as a ``CallRow``."""
        zone = self.layout.codec.zone
        (
            id_, started_at, ended_at, direction, phone, extension, result, duration, wait,
            recording, tenant,
        ) = row[: len(_FIELDS)]  # fmt: skip
        return CallRow(
            id=to_str(id_),
            started_at=to_time(started_at, zone),
            ended_at=to_time(ended_at, zone),
            direction=to_opt_str(direction),
            phone=to_opt_str(phone),
            extension=to_opt_str(extension),
            result=to_opt_str(result),
            duration=to_int(duration),
            wait=to_int(wait),
            recording=to_opt_str(recording),
            tenant=to_str(tenant),
        )
