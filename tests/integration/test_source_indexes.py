"""``source indexes``: what is recommended, what is missing, and creating it online."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from sync.config import SourceSettings
from sync.sources import open_source
from sync.sources.cdr_table import create_cdr_table, insert_legs
from sync.sources.indexes import (
    apply_indexes,
    describe_indexes,
    existing_indexes,
    index_name,
    missing_indexes,
    recommended_indexes,
)
from tests.integration.test_sources_sqlite import leg_settings, open_legs, scenario

pytestmark = pytest.mark.integration


def _engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def pg(pg_empty_url: str) -> Iterator[sa.Engine]:
    yield from _engine(pg_empty_url)


@pytest.fixture
def mysql(mysql_url: str) -> Iterator[sa.Engine]:
    yield from _engine(mysql_url)


@pytest.fixture
def sqlite(sqlite_url: str) -> Iterator[sa.Engine]:
    yield from _engine(sqlite_url)


def test_postgres_concurrently_and_invalid_leftovers(pg: sa.Engine) -> None:
    create_cdr_table(pg, tenant_column="accountcode", indexes=False)
    insert_legs(pg, scenario(groups=10))
    source = open_legs(leg_settings(str(pg.url), tenant_column="accountcode"), pg)
    specs = recommended_indexes(source)
    assert [(s.name, s.columns) for s in specs] == [
        ("ix_cdr_accountcode_start", ("accountcode", "start")),
        ("ix_cdr_linkedid", ("linkedid",)),
    ]
    assert specs[0].sql == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_cdr_accountcode_start "
        "ON cdr (accountcode, start)"
    )
    lines = describe_indexes(source)
    assert lines[0].startswith("✗ cdr (accountcode, start)") and "CONCURRENTLY" in lines[1]
    # A failed concurrent build leaves an INVALID index that IF NOT EXISTS would keep.
    with pg.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(sa.exc.IntegrityError):
            conn.exec_driver_sql(
                "CREATE UNIQUE INDEX CONCURRENTLY ix_cdr_linkedid ON cdr (linkedid)"
            )
    assert "ix_cdr_linkedid" not in existing_indexes(pg, "cdr")
    assert any(
        "DROP INDEX CONCURRENTLY ix_cdr_linkedid" in line for line in describe_indexes(source)
    )
    assert [s.name for s in missing_indexes(source)] == [s.name for s in specs]
    assert apply_indexes(pg, missing_indexes(source)) == [s.name for s in specs]
    assert missing_indexes(source) == []
    assert all(line.startswith("✓") for line in describe_indexes(source))
    assert apply_indexes(pg, specs) == []  # idempotent


def test_postgres_existing_index_with_matching_leading_columns_counts(pg: sa.Engine) -> None:
    create_cdr_table(pg, tenant_column=None, indexes=False)
    with pg.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX cdr_keyset ON cdr (start, uniqueid, sequence)")
        conn.exec_driver_sql("CREATE INDEX cdr_by_uniqueid ON cdr (uniqueid, linkedid)")
    source = open_legs(leg_settings(str(pg.url)), pg)
    assert [s.columns for s in missing_indexes(source)] == [("linkedid",)]
    assert describe_indexes(source)[0] == (
        "✓ cdr (start): window range on the time column; present as cdr_keyset"
    )


def test_mysql_online_alter_for_innodb_and_note_for_myisam(mysql: sa.Engine) -> None:
    create_cdr_table(mysql, freepbx=True, indexes=False)
    create_cdr_table(
        mysql, "issabel", freepbx=True, linkedid=False, indexes=False, mysql_engine="MyISAM"
    )
    url = str(mysql.url)
    innodb = open_legs(leg_settings(url, tenant_column="accountcode"), mysql)
    specs = missing_indexes(innodb)
    assert specs[0].sql == (
        "ALTER TABLE cdr ADD INDEX ix_cdr_accountcode_calldate (accountcode, calldate), "
        "ALGORITHM=INPLACE, LOCK=NONE"
    )
    assert apply_indexes(mysql, specs) == ["ix_cdr_accountcode_calldate", "ix_cdr_linkedid"]
    assert missing_indexes(innodb) == [] and apply_indexes(mysql, specs) == []
    # Issabel: MyISAM, no linkedid; its own uniqueid index already serves the grouping.
    issabel = open_legs(leg_settings(url, table="issabel"), mysql)
    [spec] = missing_indexes(issabel)
    assert spec.sql == "ALTER TABLE issabel ADD INDEX ix_issabel_calldate (calldate)"
    assert "locks" in spec.note
    lines = describe_indexes(issabel)
    assert lines[-1].startswith("✓ issabel (uniqueid)") and "quiet hour" in "\n".join(lines)
    apply_indexes(mysql, [spec])
    assert missing_indexes(issabel) == []


def test_sqlite_and_calls_flavor(sqlite: sa.Engine) -> None:
    create_cdr_table(sqlite, indexes=False, tenant_column=None)
    source = open_legs(leg_settings(str(sqlite.url)), sqlite)
    specs = missing_indexes(source)
    assert [s.sql for s in specs] == [
        "CREATE INDEX IF NOT EXISTS ix_cdr_start ON cdr (start)",
        "CREATE INDEX IF NOT EXISTS ix_cdr_linkedid ON cdr (linkedid)",
    ]
    assert apply_indexes(sqlite, specs) == ["ix_cdr_start", "ix_cdr_linkedid"]
    assert missing_indexes(source) == []
    # A table made with indexes=True needs nothing more.
    create_cdr_table(sqlite, "cdr2", shape="calldate", tenant_column="pbx_tenant")
    cdr2 = open_legs(
        leg_settings(str(sqlite.url), table="cdr2", tenant_column="pbx_tenant"), sqlite
    )
    assert missing_indexes(cdr2) == []
    with sqlite.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE calls (id TEXT, started TEXT, shop TEXT)")
    settings = SourceSettings(
        url=str(sqlite.url),
        table="calls",
        flavor="calls",
        tenant_column="shop",
        columns=MappingProxyType({"id": "id", "started_at": "started"}),
    )
    [spec] = recommended_indexes(open_source(settings, sqlite))
    assert spec.columns == ("shop", "started")


def test_long_names_are_shortened() -> None:
    name = index_name("a_very_long_call_detail_record_table_name", ("tenant_identifier", "start"))
    assert len(name) <= 60 and name.startswith("ix_a_very_long")
