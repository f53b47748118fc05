"""The keyset window both readers share.

Pages are cut on the time column alone (``t >= s AND t < e ORDER BY t LIMIT n``, then
``t > last``) because that is the one shape every database serves from a plain index on the
time column, with no OFFSET and no state between pages. A page is extended with every row
whose time equals its last time, so rows sharing a second (a ring group's legs all share the
caller's ``start``) never straddle two pages. Each page runs in its own short transaction: a
reader never holds a connection, a snapshot or a lock on the PBX database while the caller
uploads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from sync.settings import SourceSettings
from sync.sources import queries
from sync.sources.coerce import to_time
from sync.sources.schema import Layout, SourceError

RowT = TypeVar("RowT")
IN_CHUNK = 1000
"""Values per ``IN (...)`` list: well inside every database's parameter limit."""


def compare_lt(a: object, b: object) -> bool:
    """``a < b``, false when the values cannot be compared (a zero date read as text...)."""
    try:
        return bool(a < b)  # type: ignore[operator]
    except TypeError:
        return False


def compare_eq(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except TypeError:
        return False


def text_of(value: object) -> object:
    """Bytes (SQLite text selected as BLOB) as text; anything else unchanged."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return value


@dataclass
class Window:
    """One ``read_window`` call: its bounds in stored form and the current page's first time."""

    lower: object
    upper: object
    match: str | None
    first: object = None
    emitted_mixed: set[str] = field(default_factory=set)
    """Groups already emitted that mix rows with and without ``linkedid`` (see reader)."""

    def counts(self, time_key: object, tenant: object) -> bool:
        """Whether a row with this stored time and tenant value was selected by the window.

        Errs on the strict side: a value the database would compare loosely (a MySQL
        collation ignoring case) is not counted, which can only emit a group twice, never
        lose one.
        """
        if self.match is not None and text_of(tenant) != self.match:
            return False
        return not compare_lt(time_key, self.lower) and compare_lt(time_key, self.upper)


class TableSource(Generic[RowT]):
    """Reflected call-log table plus the shared window paging; see ``LegSource``/``CallSource``."""

    def __init__(
        self, settings: SourceSettings, layout: Layout, engine: sa.Engine, *, owns_engine: bool
    ) -> None:
        self.settings = settings
        self.layout = layout
        self.engine = engine
        self._owns_engine = owns_engine

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Dispose of the engine if ``open_source`` created it."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> TableSource[RowT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared queries ------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        return max(1, self.settings.page_size)

    def time_key(self, value: object) -> object:
        """A stored time as read, normalised so it can be bound again and compared."""
        return text_of(value) if self.layout.codec.kind == "text" else value

    def probe(
        self, start: datetime, *, tenant_match: str | None = None
    ) -> tuple[int, datetime | None]:
        """(rows with time >= ``start``, newest such time): a cheap change detector on the index."""
        query = queries.probe(self.layout, self.layout.codec.to_db(start), tenant_match)
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        count, newest = row[0], row[1]
        return int(count or 0), to_time(newest, self.layout.codec.zone)

    def page_query(
        self, start: datetime, end: datetime, *, tenant_match: str | None = None
    ) -> queries.Query:
        """The first page's statement of ``read_window``, for ``EXPLAIN`` (check, tests)."""
        layout = self.layout
        cols = [queries.raw(layout, layout.time_column, "k_time"), *self._page_columns()]
        lower, upper = layout.codec.to_db(start), layout.codec.to_db(end)
        return queries.page(
            layout, cols, lower, upper, inclusive=True, match=tenant_match, limit=self.page_size
        )

    def columns_report(self) -> dict[str, Any]:
        """Shape and column mapping, for ``check``."""
        layout = self.layout
        optional = self._optional_columns()
        return {
            "table": layout.name,
            "dialect": layout.dialect,
            "flavor": layout.flavor,
            "shape": layout.shape,
            "time_column": layout.time_column.name,
            "time_storage": layout.codec.kind,
            "columns": {name: col.name for name, col in layout.columns.items()},
            "optional_present": [c for c in optional if layout.has(c)],
            "optional_missing": [c for c in optional if not layout.has(c)],
            "tenant_column": layout.tenant.name if layout.tenant is not None else None,
        }

    def _optional_columns(self) -> tuple[str, ...]:
        return ()

    # -- the window ----------------------------------------------------------------------------

    def _page_columns(self) -> list[ColumnElement[Any]]:
        """Columns phase 1 selects besides the stored time (``k_time``)."""
        raise NotImplementedError

    def _finish_page(
        self, conn: sa.Connection, rows: Sequence[sa.Row[Any]], window: Window
    ) -> list[RowT]:
        """Turn one page of phase-1 rows into records (runs inside the page's connection)."""
        raise NotImplementedError

    def _window(
        self, start: datetime, end: datetime, tenant_match: str | None
    ) -> Iterator[list[RowT]]:
        layout = self.layout
        if tenant_match is not None and layout.tenant is None:
            raise SourceError(
                f"source table {layout.name!r}: tenant_match needs source.tenant_column"
            )
        window = Window(layout.codec.to_db(start), layout.codec.to_db(end), tenant_match)
        cols = [queries.raw(layout, layout.time_column, "k_time"), *self._page_columns()]
        cursor, inclusive, limit = window.lower, True, self.page_size
        while True:
            with self.engine.connect() as conn:
                query = queries.page(
                    layout, cols, cursor, window.upper,
                    inclusive=inclusive, match=tenant_match, limit=limit,
                )  # fmt: skip
                rows: list[sa.Row[Any]] = list(conn.execute(query).all())
                if not rows:
                    return
                full = len(rows) >= limit
                last = self.time_key(rows[-1].k_time)
                if full:
                    rows = self._with_ties(conn, cols, rows, last, tenant_match)
                window.first = self.time_key(rows[0].k_time)
                records = self._finish_page(conn, rows, window)
            if records:
                yield records
            if not full:
                return
            cursor, inclusive = last, False

    def _with_ties(
        self,
        conn: sa.Connection,
        cols: list[ColumnElement[Any]],
        rows: list[sa.Row[Any]],
        last: object,
        tenant_match: str | None,
    ) -> list[sa.Row[Any]]:
        head = [r for r in rows if not compare_eq(self.time_key(r.k_time), last)]
        ties = list(conn.execute(queries.at_time(self.layout, cols, last, tenant_match)).all())
        # Fewer ties than the page already holds means the stored value did not survive the
        # round trip (undecodable text); keep what was read rather than drop rows.
        return head + ties if len(ties) >= len(rows) - len(head) else rows
