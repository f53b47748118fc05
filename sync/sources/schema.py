"""What the configured call-log table looks like: reflected once, mapped to logical names.

The reader never assumes a schema. It reflects the table, maps each logical column (``start``,
``linkedid``, ...) to an actual one (``[source.columns]`` overrides first, then the Asterisk
name, case-insensitively), decides the shape (``start``/``answer``/``end`` or ``calldate``)
and how the time column stores time (``TimeCodec``), so that window bounds are bound in the
column's own representation and the range predicate stays sargable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from sync.calls.legs import CALL_COLUMNS
from sync.errors import first_line
from sync.settings import SourceSettings
from sync.sources.queries import sample_time

Shape = Literal["start", "calldate", "calls"]
TimeKind = Literal["naive", "aware", "epoch_int", "epoch_float", "epoch_decimal", "text"]

# Needed by the call builder in both shapes (spec §9); duration/billsec are derived from the
# times when a start-shape table lacks them.
LEG_REQUIRED = ("uniqueid", "src", "dst", "channel", "dstchannel", "disposition")
SHAPE_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "start": ("start", "answer", "end"),
    "calldate": ("calldate", "duration", "billsec"),
}
LEG_OPTIONAL = (
    "linkedid",
    "sequence",
    "clid",
    "lastapp",
    "recordingfile",
    "userfield",
    "did",
    "outbound_cnum",
    "duration",
    "billsec",
)
CALL_REQUIRED = ("id", "started_at")


class SourceError(Exception):
    """The call log cannot be read as configured; the message says which table and column."""


@dataclass(frozen=True, slots=True)
class TimeCodec:
    """How one time column stores time, and how to bind a naive source-zone time against it.

    ``cdr_pgsql`` writes epoch seconds into integer columns and epoch with microseconds into
    float ones; SQLite stores text; ``timestamptz`` needs an aware value (binding a naive one
    would make PostgreSQL convert the column and skip the index).
    """

    kind: TimeKind
    zone: ZoneInfo
    separator: str = " "

    @property
    def bind_type(self) -> sa.types.TypeEngine[Any]:
        types: dict[str, sa.types.TypeEngine[Any]] = {
            "naive": sa.DateTime(),
            "aware": sa.DateTime(timezone=True),
            "epoch_int": sa.BigInteger(),
            "epoch_float": sa.Float(),
            "epoch_decimal": sa.Numeric(),
            "text": sa.String(),
        }
        return types[self.kind]

    def to_db(self, moment: datetime) -> object:
        """``moment`` (naive, source zone) as a value comparable with the stored column."""
        if self.kind == "naive":
            return moment
        aware = moment.replace(tzinfo=self.zone)
        if self.kind == "aware":
            return aware
        if self.kind == "epoch_int":
            # x >= s  <=>  x >= ceil(s) for integer x; the same holds for x < e.
            return math.ceil(aware.timestamp())
        if self.kind == "epoch_float":
            return aware.timestamp()
        if self.kind == "epoch_decimal":
            return Decimal(str(aware.timestamp()))
        text = moment.strftime(f"%Y-%m-%d{self.separator}%H:%M:%S")
        return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text


@dataclass(frozen=True)
class Layout:
    """The reflected table and what each logical column is called in it."""

    table: sa.Table
    flavor: str
    shape: Shape
    columns: Mapping[str, sa.Column[object]]
    time: str
    """Logical name of the window column: ``start``, ``calldate`` or ``started_at``."""
    codec: TimeCodec
    tenant: sa.Column[object] | None
    dialect: str

    @property
    def name(self) -> str:
        return self.table.fullname

    @property
    def time_column(self) -> sa.Column[object]:
        return self.columns[self.time]

    def has(self, logical: str) -> bool:
        return logical in self.columns


def split_name(table: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` -> (schema, table)."""
    schema, _, name = table.rpartition(".")
    return schema or None, name


def reflect(engine: sa.Engine, settings: SourceSettings) -> Layout:
    """Reflect ``settings.table`` and map its columns; raises ``SourceError`` when unusable."""
    schema, name = split_name(settings.table)
    try:
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
    except NoSuchTableError:
        raise SourceError(
            f"source table {settings.table!r} not found (check source.url and source.table)"
        ) from None
    except SQLAlchemyError as exc:
        reason = first_line(exc)
        raise SourceError(
            f"source database: cannot read table {settings.table!r}: {reason}"
        ) from None
    zone = ZoneInfo(settings.timezone)
    dialect = engine.dialect.name
    if settings.flavor == "calls":
        columns = _map(table, settings, CALL_COLUMNS, CALL_REQUIRED)
        shape: Shape = "calls"
        time = "started_at"
    else:
        shape = _leg_shape(table, settings)
        required = (*LEG_REQUIRED, *SHAPE_REQUIRED[shape])
        optional = tuple(c for c in LEG_OPTIONAL if c not in required)
        columns = _map(table, settings, (*required, *optional), required)
        time = "start" if shape == "start" else "calldate"
    tenant = columns.get("tenant")
    if settings.tenant_column and tenant is None:
        raise SourceError(
            f"source table {table.fullname!r}: tenant column {settings.tenant_column!r} "
            "(source.tenant_column) not found"
        )
    codec = TimeCodec(_time_kind(columns[time], dialect), zone)
    if codec.kind == "text":
        codec = TimeCodec("text", zone, _text_separator(engine, columns[time]))
    return Layout(table, settings.flavor, shape, columns, time, codec, tenant, dialect)


def _find(table: sa.Table, name: str) -> sa.Column[object] | None:
    if name in table.c:
        column: sa.Column[object] = table.c[name]
        return column
    lowered = name.lower()
    for candidate in table.c:
        if candidate.name.lower() == lowered:
            return candidate
    return None


def _leg_shape(table: sa.Table, settings: SourceSettings) -> Literal["start", "calldate"]:
    mapped = settings.columns
    if "calldate" in mapped:
        return "calldate"
    if "start" in mapped or _find(table, "start") is not None:
        return "start"
    if _find(table, "calldate") is not None:
        return "calldate"
    raise SourceError(
        f"source table {table.fullname!r}: no time column: neither 'start' (Asterisk schema) "
        "nor 'calldate' (older schema) exists; map one in [source.columns]"
    )


def _map(
    table: sa.Table,
    settings: SourceSettings,
    logical: tuple[str, ...],
    required: tuple[str, ...],
) -> dict[str, sa.Column[object]]:
    found: dict[str, sa.Column[object]] = {}
    for name in logical:
        if name == "tenant":
            continue
        actual = settings.columns.get(name, name)
        column = _find(table, actual)
        if column is not None:
            found[name] = column
        elif name in settings.columns:
            raise SourceError(
                f"source table {table.fullname!r}: column {actual!r} "
                f"(source.columns.{name}) not found"
            )
        elif name in required:
            raise SourceError(
                f"source table {table.fullname!r}: required column {actual!r} not found; "
                f"map it with source.columns.{name}"
            )
    tenant_name = settings.tenant_column or settings.columns.get("tenant", "")
    if tenant_name:
        column = _find(table, tenant_name)
        if column is not None:
            found["tenant"] = column
    return found


def _time_kind(column: sa.Column[object], dialect: str) -> TimeKind:
    kind = column.type
    if isinstance(kind, sa.Integer):
        return "epoch_int"
    if isinstance(kind, sa.Float):
        return "epoch_float"
    if isinstance(kind, sa.Numeric):
        # SQLite's NUMERIC affinity (also DATETIME) keeps non-numeric text as text.
        return "text" if dialect == "sqlite" else "epoch_decimal"
    if dialect == "sqlite":
        return "text"
    if isinstance(kind, sa.DateTime):
        return "aware" if kind.timezone else "naive"
    if isinstance(kind, sa.Date):
        return "naive"
    return "text"


def _text_separator(engine: sa.Engine, column: sa.Column[object]) -> str:
    """``T`` when the stored text is ISO style (``2026-03-02T11:05:00``), else a space.

    Text compares byte by byte, so the bound must use the stored separator. One arbitrary
    non-null row decides; a table of mixed styles cannot be windowed correctly anyway.
    """
    try:
        with engine.connect() as conn:
            sample = conn.execute(sample_time(column)).scalar()
    except SQLAlchemyError:
        return " "
    if isinstance(sample, bytes):
        sample = sample.decode("utf-8", "replace")
    return "T" if isinstance(sample, str) and sample[10:11] == "T" else " "
