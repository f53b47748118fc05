"""Every statement the readers run against the PBX table, in one place.

Rules kept here: predicates compare the bare time column with values already converted to the
column's storage (``TimeCodec``), so each database can use the index on it; values are selected
raw (no SQLAlchemy result processing, which would raise on a malformed SQLite date) and turned
into ``Leg`` fields by ``coerce``; on SQLite text is selected as BLOB because the driver raises
on invalid UTF-8, and ``coerce`` decodes it with replacement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from sync.sources.coerce import to_int

if TYPE_CHECKING:
    from sync.sources.schema import Layout

Cols = Sequence[ColumnElement[Any]]
Query: TypeAlias = "sa.Select[*tuple[Any, ...]]"


def raw(layout: Layout, column: sa.Column[object], label: str) -> ColumnElement[Any]:
    """``column`` as the driver returns it, labelled ``label``."""
    if layout.dialect == "sqlite" and not (
        column is layout.time_column and layout.codec.kind != "text"
    ):
        expr: ColumnElement[Any] = sa.cast(column, sa.LargeBinary)
    else:
        expr = column
    return sa.type_coerce(expr, sa.types.NullType()).label(label)


def fields(layout: Layout, names: Iterable[str]) -> list[ColumnElement[Any]]:
    """The raw values of the given logical columns that exist, labelled by logical name."""
    return [raw(layout, layout.columns[n], n) for n in names if n in layout.columns]


def fields_or_null(layout: Layout, names: Iterable[str]) -> list[ColumnElement[Any]]:
    """Like ``fields`` but every name gets a column (NULL when absent): rows unpack by position."""
    return [
        raw(layout, layout.columns[n], n) if n in layout.columns else sa.null().label(n)
        for n in names
    ]


def _bound(layout: Layout, value: object) -> ColumnElement[Any]:
    return sa.literal(value, layout.codec.bind_type)


def _tenant(layout: Layout, match: str | None) -> list[ColumnElement[bool]]:
    if match is None or layout.tenant is None:
        return []
    return [layout.tenant == match]


def page(
    layout: Layout,
    cols: Cols,
    lower: object,
    upper: object,
    *,
    inclusive: bool,
    match: str | None,
    limit: int,
) -> Query:
    """One keyset page: ``lower <= t < upper`` (``lower < t`` after the first page)."""
    t = layout.time_column
    low = t >= _bound(layout, lower) if inclusive else t > _bound(layout, lower)
    return (
        sa.select(*cols)
        .where(low, t < _bound(layout, upper), *_tenant(layout, match))
        .order_by(t)
        .limit(limit)
    )


def at_time(layout: Layout, cols: Cols, at: object, match: str | None) -> Query:
    """All rows sharing the page's last time, so ties never straddle two pages."""
    t = layout.time_column
    return sa.select(*cols).where(t == _bound(layout, at), *_tenant(layout, match))


def _empty(column: sa.Column[object]) -> ColumnElement[bool]:
    return sa.or_(column.is_(None), column == "")


def _in(layout: Layout, column: sa.Column[Any], keys: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (keys)``; on PostgreSQL ``= ANY(array)``: one statement text for any
    number of keys, so neither SQLAlchemy nor the server re-parses it per page."""
    if layout.dialect == "postgresql" and isinstance(column.type, sa.String):
        array = sa.bindparam("keys", list(keys), type_=postgresql.ARRAY(sa.String()))
        return column == sa.any_(array)
    return column.in_(sa.bindparam("keys", list(keys), expanding=True, type_=column.type))


def by_linkedid(layout: Layout, cols: Cols, keys: Sequence[str]) -> Query:
    return sa.select(*cols).where(_in(layout, layout.columns["linkedid"], keys))


def by_uniqueid(layout: Layout, cols: Cols, keys: Sequence[str]) -> Query:
    """Rows grouped by ``uniqueid`` (R1 fallback): those without a ``linkedid``."""
    query = sa.select(*cols).where(_in(layout, layout.columns["uniqueid"], keys))
    if layout.has("linkedid"):
        query = query.where(_empty(layout.columns["linkedid"]))
    return query


def keyless(layout: Layout, cols: Cols, times: Sequence[object], match: str | None) -> Query:
    """Rows with neither ``linkedid`` nor ``uniqueid`` at the given times (garbage, kept)."""
    t = layout.time_column
    conditions = [_empty(layout.columns["uniqueid"])]
    if layout.has("linkedid"):
        conditions.append(_empty(layout.columns["linkedid"]))
    at = sa.bindparam("times", list(times), expanding=True, type_=layout.codec.bind_type)
    return sa.select(*cols).where(t.in_(at), *conditions, *_tenant(layout, match))


def by_id(layout: Layout, cols: Cols, ids: Sequence[str]) -> Query:
    """``calls`` flavor rows by their id column."""
    column = layout.columns["id"]
    if isinstance(column.type, sa.Integer):  # "externalId" text back to the column's type
        numbers = [n for n in (to_int(i) for i in ids) if n is not None]
        return sa.select(*cols).where(column.in_(numbers))
    return sa.select(*cols).where(_in(layout, column, ids))


def sample_time(column: sa.Column[Any]) -> Query:
    """One arbitrary stored value of a text time column, to learn its format (``schema``)."""
    raw_value = sa.type_coerce(column, sa.types.NullType())
    return sa.select(raw_value).where(column.is_not(None)).limit(1)


def probe(layout: Layout, lower: object, match: str | None) -> Query:
    """Count and newest time at or after ``lower``: an index-only change detector."""
    t = layout.time_column
    newest: ColumnElement[Any] = sa.func.max(t)
    if layout.dialect == "sqlite" and layout.codec.kind == "text":
        newest = sa.cast(newest, sa.LargeBinary)
    return sa.select(sa.func.count(), sa.type_coerce(newest, sa.types.NullType())).where(
        t >= _bound(layout, lower), *_tenant(layout, match)
    )


def probe_many(layout: Layout, probes: Sequence[tuple[object, str | None]]) -> Query:
    """``probe`` of several tenants in one statement: UNION ALL of one aggregate per tenant,
    each an index range on (tenant column, time); row ``k`` answers ``probes[k]``."""
    parts = []
    for k, (lower, match) in enumerate(probes):
        one = probe(layout, lower, match)
        parts.append(one.add_columns(sa.literal(k, sa.Integer).label("k")))
    return sa.union_all(*parts)  # type: ignore[return-value]
