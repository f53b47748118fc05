"""Source readers on PostgreSQL: both Asterisk shapes, integer dispositions, epoch-integer and
``timestamptz`` time columns, garbage rows, and the window query planned on the index."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta, timezone
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from sync.calls.demo_cdr import generate_legs
from sync.calls.legs import DISPOSITION_CODES, Leg
from sync.config import SourceSettings
from sync.sources import CallSource, leg_sort_key, open_source, queries
from sync.sources.cdr_table import copy_legs, create_cdr_table, insert_legs
from tests.integration.test_sources_sqlite import (
    W0,
    W1,
    assert_window,
    garbage_legs,
    group_key,
    leg_settings,
    make_leg,
    open_legs,
    scenario,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(pg_empty_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_empty_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def test_start_shape_window_tenant_and_garbage(engine: sa.Engine) -> None:
    legs = scenario() + garbage_legs()
    create_cdr_table(engine)
    insert_legs(engine, legs)
    with engine.begin() as conn:  # real NULLs, as an old or broken backend leaves them
        conn.exec_driver_sql("UPDATE cdr SET linkedid = NULL WHERE linkedid = ''")
        conn.exec_driver_sql("UPDATE cdr SET uniqueid = NULL WHERE uniqueid = ''")
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    assert source.layout.codec.kind == "naive"
    assert len(assert_window(source, legs)) > 5
    for match in ("A", "B"):
        pages = assert_window(source, legs, match=match)
        assert {leg.tenant for page in pages for leg in page} == {match, ""}
    key = legs[0].linkedid
    assert source.legs_of([key]) == sorted(
        (leg for leg in legs if group_key(leg) == key), key=leg_sort_key
    )
    starts = [leg.start for leg in legs if leg.start and leg.start >= W0]
    assert source.probe(W0) == (len(starts), max(starts))


def test_demo_scenarios_round_trip(engine: sa.Engine) -> None:
    """The demo generator's catalogue (transfers, parks, queues, forwards) read back whole."""
    legs = list(
        generate_legs(250, start=W0 - timedelta(minutes=15), seed=3, tenants=("A", "B"),
                      spacing_seconds=8)
    )  # fmt: skip
    create_cdr_table(engine, recordingfile=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE cdr ADD did varchar(50), ADD outbound_cnum varchar(80)")
    insert_legs(engine, legs)
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    assert len(assert_window(source, legs)) > 10
    assert_window(source, legs, match="B")


def test_calldate_shape_integer_disposition(engine: sa.Engine) -> None:
    legs = scenario(seed=5)
    create_cdr_table(engine, shape="calldate", integer_disposition=True)
    insert_legs(engine, legs)
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    assert source.layout.shape == "calldate"
    stored = [replace(leg, disposition=str(DISPOSITION_CODES[leg.disposition])) for leg in legs]
    pages = assert_window(source, stored)
    answered = next(leg for page in pages for leg in page if leg.disposition == "8")
    assert answered.start and answered.duration and answered.billsec
    assert answered.end == answered.start + timedelta(seconds=answered.duration)
    assert answered.answer == answered.end - timedelta(seconds=answered.billsec)
    assert_window(source, stored, match="A")


ALEMBIC_WITH = """CREATE TABLE {table} (
    accountcode varchar(80), src varchar(80), dst varchar(80), dcontext varchar(80),
    clid varchar(80), channel varchar(80), dstchannel varchar(80), lastapp varchar(80),
    lastdata varchar(80), start {t}, answer {t}, "end" {t}, duration integer,
    billsec integer, disposition varchar(45), amaflags varchar(45), userfield varchar(256),
    uniqueid varchar(150), linkedid varchar(150), peeraccount varchar(80), sequence integer)"""


@pytest.mark.parametrize(
    ("column_type", "kind"),
    [("bigint", "epoch_int"), ("double precision", "epoch_float"), ("timestamptz", "aware")],
)
def test_time_column_storage(engine: sa.Engine, column_type: str, kind: str) -> None:
    """``cdr_pgsql`` writes epoch seconds into numeric columns; some schemas use timestamptz."""
    with engine.begin() as conn:
        conn.exec_driver_sql(ALEMBIC_WITH.format(table="cdr", t=column_type))
        conn.exec_driver_sql("CREATE INDEX ix_cdr_start ON cdr (start)")
        # The session zone must not matter (NullPool: later connections pick this up).
        db = engine.url.database
        conn.exec_driver_sql(f"ALTER DATABASE \"{db}\" SET timezone = 'America/New_York'")
    legs = scenario(seed=9)
    insert_legs(engine, legs, timezone="Europe/Minsk")
    settings = leg_settings(str(engine.url), tenant_column="accountcode", timezone="Europe/Minsk")
    source = open_legs(settings, engine)
    assert source.layout.codec.kind == kind
    assert_window(source, legs)
    assert_window(source, legs, match="B")
    if kind == "epoch_int":
        with engine.connect() as conn:
            first = conn.exec_driver_sql("SELECT min(start) FROM cdr").scalar()
        earliest = min(leg.start for leg in legs if leg.start)
        # Wall time in Minsk (UTC+3, no DST) as UTC epoch seconds.
        assert first == int(earliest.replace(tzinfo=timezone(timedelta(hours=3))).timestamp())


def _bulk_legs(days: int = 20, per_hour: int = 60) -> Iterator[Leg]:
    """Realistic volume: a call a minute for 20 days, two legs each, two tenants."""
    rng = random.Random(1)
    start = W0 - timedelta(days=days - 1)
    for n in range(days * 24 * per_hour):
        at = start + timedelta(seconds=n * 3600 // per_hour + rng.randrange(30))
        caller = f"{1770000000 + n}.{n}"
        tenant = "A" if n % 3 else "B"
        yield make_leg(caller, caller, 2 * n, at, tenant=tenant, talk=rng.choice([0, 45]))
        yield make_leg(f"{caller}l", caller, 2 * n + 1, at + timedelta(seconds=1), talk=30)


def _plan(conn: sa.Connection, statement: sa.ClauseElement) -> str:
    compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
    rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
    return "\n".join(r[0] for r in rows)


def test_copy_with_vacuum_leaves_statistics_for_the_planner(engine: sa.Engine) -> None:
    create_cdr_table(engine, tenant_column=None)
    legs = [make_leg(f"{1770000000 + n}.{n}", f"{1770000000 + n}.{n}", n, W0) for n in range(50)]
    assert copy_legs(engine, legs, tenant_column=None, vacuum=True) == 50
    with engine.connect() as conn:
        # Written by VACUUM ANALYZE in the catalog (a fresh COPY leaves -1 and 0).
        tuples, all_visible = conn.exec_driver_sql(
            "SELECT reltuples, relallvisible FROM pg_class WHERE relname = 'cdr'"
        ).one()
    assert tuples == 50 and all_visible > 0


@pytest.mark.parametrize("tenant", [None, "accountcode"])
def test_window_query_uses_the_time_index(engine: sa.Engine, tenant: str | None) -> None:
    create_cdr_table(engine, tenant_column=tenant, indexes=False)
    assert copy_legs(engine, _bulk_legs(), tenant_column=tenant) == 57_600
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        time_index = "ix_cdr_accountcode_start" if tenant else "ix_cdr_start"
        cols = "accountcode, start" if tenant else "start"
        conn.exec_driver_sql(f"CREATE INDEX {time_index} ON cdr ({cols})")
        conn.exec_driver_sql("CREATE INDEX ix_cdr_linkedid ON cdr (linkedid)")
        conn.exec_driver_sql("ANALYZE cdr")
    settings = leg_settings(str(engine.url), tenant_column=tenant or "", page_size=5000)
    source = open_legs(settings, engine)
    match = "A" if tenant else None
    lo, hi = W0 - timedelta(hours=2), W0 - timedelta(hours=1)
    page = source.page_query(lo, hi, tenant_match=match)
    keys = [f"{1770000000 + n}.{n}" for n in range(18 * 1440, 18 * 1440 + 50)]
    fields = queries.fields(source.layout, ("uniqueid", "sequence"))
    with engine.connect() as conn:
        plan = _plan(conn, page)
        assert time_index in plan, plan
        assert "Seq Scan" not in plan, plan
        legs_plan = _plan(conn, queries.by_linkedid(source.layout, fields, keys))
        assert "ix_cdr_linkedid" in legs_plan, legs_plan
    # The hour holds 60 calls; per tenant two thirds or one third of them.
    calls = {
        leg.linkedid for page in source.read_window(lo, hi, tenant_match=match) for leg in page
    }
    assert len(calls) == (40 if tenant else 60)


def test_calls_flavor(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE calls (id bigint, started timestamptz, ended timestamptz, "
            "direction text, phone text, ext text, result text, talk integer, shop text)"
        )
        conn.exec_driver_sql("CREATE INDEX ix_calls_started ON calls (started)")
        conn.execute(
            sa.text(
                "INSERT INTO calls VALUES (:id, :s, :s, 'out', '+375291234567', '102', "
                "'busy', 0, :shop)"
            ),
            [
                {
                    "id": i,
                    "s": f"{(W0 + timedelta(seconds=30 * (i // 4))).isoformat()}+03:00",
                    "shop": "AB"[i % 2],
                }
                for i in range(40)
            ],
        )
    columns = {
        "id": "id",
        "started_at": "started",
        "ended_at": "ended",
        "direction": "direction",
        "phone": "phone",
        "extension": "ext",
        "result": "result",
        "duration": "talk",
    }
    settings = SourceSettings(
        url=str(engine.url),
        table="calls",
        flavor="calls",
        timezone="Europe/Minsk",
        tenant_column="shop",
        page_size=3,
        columns=MappingProxyType(columns),
    )
    source = open_source(settings, engine)
    assert isinstance(source, CallSource)
    rows = [row for page in source.read_window(W0, W0 + timedelta(minutes=2)) for row in page]
    assert sorted(int(r.id) for r in rows) == list(range(16))
    assert [r.started_at for r in rows] == sorted(r.started_at for r in rows)  # type: ignore[type-var]
    assert rows[0].started_at == W0 and rows[0].tenant == "A" and rows[0].wait is None
    shop_b = [row for page in source.read_window(W0, W1, tenant_match="B") for row in page]
    assert sorted(int(r.id) for r in shop_b) == list(range(1, 40, 2))
    assert [row.id for row in source.rows_of(["7", "3"])] == ["3", "7"]
