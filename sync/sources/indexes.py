"""The indexes the poller needs on the PBX table, and creating them without stopping the PBX.

Asterisk creates its CDR table with no index at all (spec §11). The reader needs two: one on
the time column for the window range (led by the tenant column when rows are routed by it,
since every per-tenant window filters on it), and one on ``linkedid`` for fetching whole calls
(``uniqueid`` on tables without ``linkedid``, where it is the group key). An existing index
counts when its leading columns are these. Creation must not block Asterisk's inserts:
``CONCURRENTLY`` on PostgreSQL, online ``ALTER TABLE`` on InnoDB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from sync.sources import LegSource, Source
from sync.sources.schema import split_name

MAX_NAME = 60
"""PostgreSQL truncates identifiers at 63 bytes, MySQL refuses more than 64."""
_ONLINE_ENGINES = ("innodb", "xtradb")


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One recommended index; ``sql`` is the exact statement for the source's database."""

    name: str
    table: str
    columns: tuple[str, ...]
    sql: str
    purpose: str
    note: str = ""


def index_name(table: str, columns: tuple[str, ...]) -> str:
    """``ix_<table>_<columns>``, shortened with a hash when too long for the database."""
    _, bare = split_name(table)
    name = "_".join(("ix", bare, *columns)).lower()
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def plan(
    table: str, time_column: str, tenant_column: str | None, key_column: str | None
) -> list[tuple[str, tuple[str, ...], str]]:
    """(name, columns, purpose) of the recommended indexes, independent of the database."""
    time_cols = (tenant_column, time_column) if tenant_column else (time_column,)
    wanted: list[tuple[tuple[str, ...], str]] = [(time_cols, "window range on the time column")]
    if key_column:
        wanted.append(((key_column,), f"whole calls by {key_column}"))
    return [(index_name(table, cols), cols, purpose) for cols, purpose in wanted]


def recommended_indexes(source: Source) -> list[IndexSpec]:
    """The indexes ``source`` needs, with the statement that creates each one online."""
    layout = source.layout
    tenant = layout.tenant.name if layout.tenant is not None else None
    key: str | None = None
    if isinstance(source, LegSource):
        key = layout.columns["linkedid" if layout.has("linkedid") else "uniqueid"].name
    engine_name = _mysql_engine(source.engine, layout.name) if layout.dialect != "sqlite" else ""
    return [
        _spec(source.engine, layout.name, name, cols, purpose, engine_name)
        for name, cols, purpose in plan(layout.name, layout.time_column.name, tenant, key)
    ]


def _spec(
    engine: sa.Engine,
    table: str,
    name: str,
    columns: tuple[str, ...],
    purpose: str,
    storage: str,
) -> IndexSpec:
    quote = engine.dialect.identifier_preparer.quote
    schema, bare = split_name(table)
    target = ".".join(quote(p) for p in (schema, bare) if p)
    cols = ", ".join(quote(c) for c in columns)
    dialect = engine.dialect.name
    note = ""
    if dialect == "postgresql":
        sql = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} ON {target} ({cols})"
    elif dialect in ("mysql", "mariadb"):
        sql = f"ALTER TABLE {target} ADD INDEX {quote(name)} ({cols})"
        if storage.lower() in _ONLINE_ENGINES:
            sql += ", ALGORITHM=INPLACE, LOCK=NONE"
        else:
            note = (
                f"{storage or 'this'} table: the build locks it and Asterisk's CDR inserts wait; "
                "run it in a quiet hour"
            )
    else:
        prefix = f"{quote(schema)}." if schema else ""
        sql = f"CREATE INDEX IF NOT EXISTS {prefix}{quote(name)} ON {quote(bare)} ({cols})"
    return IndexSpec(name, table, columns, sql, purpose, note)


def _mysql_engine(engine: sa.Engine, table: str) -> str:
    if engine.dialect.name not in ("mysql", "mariadb"):
        return ""
    schema, bare = split_name(table)
    options = sa.inspect(engine).get_table_options(bare, schema=schema)
    return str(options.get(f"{engine.dialect.name}_engine") or options.get("mysql_engine") or "")


def existing_indexes(engine: sa.Engine, table: str) -> dict[str, tuple[str, ...]]:
    """Usable indexes of ``table``: name -> columns (lowercased). Primary key included;
    PostgreSQL indexes left invalid by a failed concurrent build are not usable."""
    schema, bare = split_name(table)
    inspector = sa.inspect(engine)
    found: dict[str, tuple[str, ...]] = {}
    for index in inspector.get_indexes(bare, schema=schema):
        names = tuple(str(c).lower() for c in index["column_names"] if c is not None)
        if index["name"] and names:
            found[index["name"]] = names
    pk = inspector.get_pk_constraint(bare, schema=schema)
    if pk.get("constrained_columns"):
        found[pk.get("name") or "PRIMARY"] = tuple(c.lower() for c in pk["constrained_columns"])
    for name in invalid_indexes(engine, table):
        found.pop(name, None)
    return found


def invalid_indexes(engine: sa.Engine, table: str) -> list[str]:
    """PostgreSQL indexes marked invalid (a ``CONCURRENTLY`` build that failed or was cancelled)."""
    if engine.dialect.name != "postgresql":
        return []
    query = sa.text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisvalid"
    )
    quote = engine.dialect.identifier_preparer.quote
    target = ".".join(quote(p) for p in split_name(table) if p)
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(query, {"t": target})]


def _covered(spec: IndexSpec, existing: dict[str, tuple[str, ...]]) -> str | None:
    want = tuple(c.lower() for c in spec.columns)
    for name, cols in existing.items():
        if cols[: len(want)] == want:
            return name
    return None


def missing_indexes(source: Source) -> list[IndexSpec]:
    """Recommended indexes that no existing index serves (matching leading columns)."""
    existing = existing_indexes(source.engine, source.layout.name)
    return [s for s in recommended_indexes(source) if _covered(s, existing) is None]


def describe_indexes(source: Source) -> list[str]:
    """One line per recommended index for ``source indexes``: ✓ present, ✗ missing + SQL."""
    table = source.layout.name
    existing = existing_indexes(source.engine, table)
    invalid = set(invalid_indexes(source.engine, table))
    lines: list[str] = []
    for spec in recommended_indexes(source):
        cols = ", ".join(spec.columns)
        present = _covered(spec, existing)
        if present:
            lines.append(f"✓ {table} ({cols}): {spec.purpose}; present as {present}")
            continue
        lines.append(f"✗ {table} ({cols}): {spec.purpose}; missing, create with:")
        if spec.name in invalid:
            lines.append(
                f"    DROP INDEX CONCURRENTLY {spec.name};  -- left invalid by a failed build"
            )
        lines.append(f"    {spec.sql};")
        if spec.note:
            lines.append(f"    -- {spec.note}")
    return lines


def apply_indexes(engine: sa.Engine, specs: list[IndexSpec]) -> list[str]:
    """Create ``specs`` without blocking the PBX's inserts; returns the names created.

    PostgreSQL: ``CREATE INDEX CONCURRENTLY`` in autocommit (it cannot run in a transaction),
    after dropping an invalid leftover of the same name, which ``IF NOT EXISTS`` would keep.
    MySQL/MariaDB: online ``ALTER TABLE`` (InnoDB), skipping names that already exist.
    """
    created: list[str] = []
    quote = engine.dialect.identifier_preparer.quote
    for spec in specs:
        existing = existing_indexes(engine, spec.table)
        if spec.name in existing or _covered(spec, existing):
            continue
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if spec.name in invalid_indexes(engine, spec.table):
                schema, _ = split_name(spec.table)
                target = ".".join(quote(p) for p in (schema, spec.name) if p)
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {target}")
            conn.exec_driver_sql(spec.sql)
        created.append(spec.name)
    return created
