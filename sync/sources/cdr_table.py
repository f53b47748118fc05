"""Creating and filling an Asterisk CDR table, for the demo, the tests and the benchmarks.

The only code here that writes a call-log table; the product never writes the PBX's table in
production (design §3). Tables follow the real schemas (spec §1.1, §1.2, §2) so that readers
are tested against what PBXs actually have. Rows are written the way the PBX backends write
them: naive wall time in ``timezone``, text times on SQLite (``cdr_sqlite3_custom``), epoch
seconds into integer time columns, codes into an integer ``disposition``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sync.calls.legs import DISPOSITION_CODES, Leg
from sync.sources.coerce import to_int
from sync.sources.indexes import index_name, plan
from sync.sources.schema import TimeCodec, split_name

_V80 = sa.String(80)
_AMA_DOCUMENTATION = 3


def _text(name: str, length: int, strict: bool) -> sa.Column[Any]:
    if strict:
        return sa.Column(name, sa.String(length), nullable=False, server_default="")
    return sa.Column(name, sa.String(length))


def _int(name: str, strict: bool) -> sa.Column[Any]:
    if strict:
        return sa.Column(name, sa.Integer, nullable=False, server_default="0")
    return sa.Column(name, sa.Integer)


def create_cdr_table(
    engine: sa.Engine,
    table: str = "cdr",
    *,
    shape: Literal["start", "calldate"] = "start",
    freepbx: bool = False,
    tenant_column: str | None = "accountcode",
    integer_disposition: bool = False,
    indexes: bool = True,
    linkedid: bool = True,
    recordingfile: bool = False,
    mysql_engine: str = "InnoDB",
) -> sa.Table:
    """Create a CDR table of the given shape; returns it (reflection not needed).

    ``shape="start"``: the Asterisk Alembic schema, every column nullable, no key.
    ``shape="calldate"``: the older schema (NOT NULL with defaults). ``freepbx=True`` implies
    ``calldate`` and adds FreePBX's columns and its own indexes (``did``, ``recordingfile``,
    ``uniqueid``). ``linkedid=False`` leaves out ``linkedid``/``peeraccount``/``sequence``
    (plain Issabel). A ``tenant_column`` other than ``accountcode`` is added as varchar(80).
    ``indexes=True`` adds the recommended indexes (``sync.sources.indexes``).
    """
    if freepbx:
        shape = "calldate"
    strict = shape == "calldate"
    disposition: sa.types.TypeEngine[Any] = sa.Integer() if integer_disposition else sa.String(45)
    cols: list[sa.Column[Any]]
    if shape == "start":
        cols = [sa.Column(n, _V80) for n in ("accountcode", "src", "dst", "dcontext", "clid")]
        cols += [sa.Column(n, _V80) for n in ("channel", "dstchannel", "lastapp", "lastdata")]
        cols += [sa.Column(n, sa.DateTime) for n in ("start", "answer", "end")]
        cols += [sa.Column("duration", sa.Integer), sa.Column("billsec", sa.Integer)]
        cols += [sa.Column("disposition", disposition), sa.Column("amaflags", sa.String(45))]
        cols += [sa.Column("userfield", sa.String(256)), sa.Column("uniqueid", sa.String(150))]
        if linkedid:
            cols += [sa.Column("linkedid", sa.String(150)), sa.Column("peeraccount", _V80)]
            cols += [sa.Column("sequence", sa.Integer)]
    else:
        id_len = 32 if freepbx else 150
        cols = [sa.Column("calldate", sa.DateTime, nullable=False)]
        names = ("clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata")
        cols += [_text(n, 80, strict) for n in names]
        cols += [_int("duration", strict), _int("billsec", strict)]
        if integer_disposition:
            cols.append(_int("disposition", strict))
        else:
            cols.append(_text("disposition", 45, strict))
        cols += [_int("amaflags", strict), _text("accountcode", 80 if freepbx else 20, strict)]
        cols += [_text("uniqueid", id_len, strict), _text("userfield", 255, strict)]
        if freepbx:
            cols += [_text("did", 50, strict), _text("recordingfile", 255, strict)]
            extras = ("cnum", "cnam", "outbound_cnum", "outbound_cnam", "dst_cnam")
            cols += [_text(n, 80, strict) for n in extras]
        if linkedid:
            cols.append(_text("linkedid", id_len, strict))
            cols.append(_text("peeraccount", 80 if freepbx else 20, strict))
            cols.append(_int("sequence", strict))
    if recordingfile and not freepbx:
        cols.append(_text("recordingfile", 255, strict))
    if tenant_column and tenant_column not in {c.name for c in cols}:
        cols.append(_text(tenant_column, 80, strict))
    schema, bare = split_name(table)
    tbl = sa.Table(bare, sa.MetaData(), *cols, schema=schema, mysql_engine=mysql_engine)
    native: list[tuple[str, ...]] = []
    if freepbx:
        native = [("did",), ("recordingfile",), ("uniqueid",)]
        for columns in native:
            sa.Index(index_name(table, columns), *(tbl.c[c] for c in columns))
    if indexes:
        time = "start" if shape == "start" else "calldate"
        key = "linkedid" if linkedid else "uniqueid"
        for name, columns, _ in plan(table, time, tenant_column, key):
            if any(n[: len(columns)] == columns for n in native):
                continue
            sa.Index(name, *(tbl.c[c] for c in columns))
    tbl.create(engine)
    return tbl


# -- writing legs ------------------------------------------------------------------------------

Getter = Callable[[Leg], object]


def _seconds(a: datetime | None, b: datetime | None) -> int | None:
    return int((a - b).total_seconds()) if a is not None and b is not None else None


def _duration(leg: Leg) -> int | None:
    return leg.duration if leg.duration is not None else _seconds(leg.end, leg.start)


def _billsec(leg: Leg) -> int | None:
    if leg.billsec is not None:
        return leg.billsec
    if leg.answer is None:
        return 0 if leg.end is not None else None
    return _seconds(leg.end, leg.answer)


def _disposition_code(text: str) -> int | None:
    code = DISPOSITION_CODES.get(text.upper())
    return code if code is not None else to_int(text)


class _RowPlan:
    """Which value each column of the reflected table gets from a ``Leg``."""

    def __init__(
        self, table: sa.Table, dialect: str, tenant_column: str | None, zone: ZoneInfo
    ) -> None:
        self.columns: list[str] = []
        self.getters: list[Getter] = []
        for column in table.c:
            getter = self._getter(column, dialect, tenant_column, zone)
            if getter is not None:
                self.columns.append(column.name)
                self.getters.append(getter)

    def row(self, leg: Leg) -> tuple[object, ...]:
        return tuple(get(leg) for get in self.getters)

    @staticmethod
    def _getter(
        column: sa.Column[Any], dialect: str, tenant_column: str | None, zone: ZoneInfo
    ) -> Getter | None:
        name = column.name.lower()
        kind = column.type
        numeric = isinstance(kind, sa.Integer | sa.Numeric)
        strict = not column.nullable

        def fill(get: Callable[[Leg], object]) -> Getter:
            if not strict:
                return get
            default: object = 0 if numeric else ""
            return lambda leg: default if (v := get(leg)) is None else v

        if name in ("start", "answer", "end", "calldate"):
            attr = "start" if name == "calldate" else name
            return _time_getter(column, dialect, zone, attr)
        if tenant_column and name == tenant_column.lower():
            return fill(lambda leg: leg.tenant)
        if name == "disposition":
            if numeric:
                return fill(lambda leg: _disposition_code(leg.disposition))
            return fill(lambda leg: leg.disposition)
        if name == "duration":
            return fill(_duration)
        if name == "billsec":
            return fill(_billsec)
        if name == "amaflags":
            return fill(lambda leg: _AMA_DOCUMENTATION if numeric else "DOCUMENTATION")
        if name in Leg.__dataclass_fields__ and name not in ("tenant",):
            return fill(_attr(name))
        if strict and column.server_default is None:
            return fill(lambda leg: None)
        return None


def _attr(name: str) -> Getter:
    getter: Getter = attrgetter(name)  # C speed: this runs per column per leg
    return getter


def _time_getter(column: sa.Column[Any], dialect: str, zone: ZoneInfo, attr: str) -> Getter:
    kind = column.type
    if isinstance(kind, sa.Integer):
        codec = TimeCodec("epoch_int", zone)
    elif isinstance(kind, sa.Float):
        codec = TimeCodec("epoch_float", zone)
    elif isinstance(kind, sa.Numeric) and dialect != "sqlite":
        codec = TimeCodec("epoch_decimal", zone)
    elif dialect == "sqlite":
        codec = TimeCodec("text", zone)
    elif isinstance(kind, sa.DateTime) and kind.timezone:
        codec = TimeCodec("aware", zone)
    else:
        codec = TimeCodec("naive", zone)

    def get(leg: Leg) -> object:
        moment: datetime | None = getattr(leg, attr)
        if moment is None:
            return None
        if codec.kind == "epoch_int":
            # Backends truncate; to_db rounds up, which suits window bounds only.
            return int(moment.replace(tzinfo=zone).timestamp() // 1)
        return codec.to_db(moment)

    return get


def _reflect(engine: sa.Engine, table: str) -> sa.Table:
    schema, bare = split_name(table)
    return sa.Table(bare, sa.MetaData(), schema=schema, autoload_with=engine)


def _batches(legs: Iterable[Leg], size: int) -> Iterator[list[Leg]]:
    it = iter(legs)
    while chunk := list(islice(it, size)):
        yield chunk


def insert_legs(
    engine: sa.Engine,
    legs: Iterable[Leg],
    table: str = "cdr",
    *,
    batch: int = 5000,
    tenant_column: str | None = "accountcode",
    timezone: str = "UTC",
) -> int:
    """Insert ``legs`` (executemany, one transaction per batch); returns the row count.

    ``Leg.tenant`` goes into ``tenant_column``; ``duration``/``billsec`` come from the leg or,
    when unset, from its times (what a ``calldate`` table needs to give back answer and end).
    """
    reflected = _reflect(engine, table)
    row_plan = _RowPlan(reflected, engine.dialect.name, tenant_column, ZoneInfo(timezone))
    schema, bare = split_name(table)
    # Untyped columns: values go to the driver as prepared here (text times on SQLite).
    target = sa.table(bare, *(sa.column(c) for c in row_plan.columns), schema=schema)
    statement = sa.insert(target)
    total = 0
    for chunk in _batches(legs, max(1, batch)):
        rows = [dict(zip(row_plan.columns, row_plan.row(leg), strict=True)) for leg in chunk]
        with engine.begin() as conn:
            conn.execute(statement, rows)
        total += len(rows)
    return total


def copy_legs(
    engine: sa.Engine,
    legs: Iterable[Leg],
    table: str = "cdr",
    *,
    tenant_column: str | None = "accountcode",
    timezone: str = "UTC",
    vacuum: bool = False,
) -> int:
    """PostgreSQL only: stream ``legs`` with ``COPY FROM STDIN`` (millions of rows a minute).

    ``vacuum`` runs ``VACUUM ANALYZE`` afterwards, as autovacuum would in time: a bulk-loaded
    table then has statistics for the planner and a visibility map for index-only scans."""
    if engine.dialect.name != "postgresql":
        raise ValueError("copy_legs needs PostgreSQL; use insert_legs elsewhere")
    reflected = _reflect(engine, table)
    row_plan = _RowPlan(reflected, "postgresql", tenant_column, ZoneInfo(timezone))
    quote = engine.dialect.identifier_preparer.quote
    target = ".".join(quote(p) for p in split_name(table) if p)
    cols = ", ".join(quote(c) for c in row_plan.columns)
    total = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
            for leg in legs:
                copy.write_row(row_plan.row(leg))
                total += 1
        raw.commit()
    finally:
        raw.close()
    if vacuum:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM ANALYZE {target}"))
    return total


__all__ = ["copy_legs", "create_cdr_table", "insert_legs"]
