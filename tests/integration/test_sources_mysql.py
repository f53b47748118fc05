"""Source readers on MariaDB: FreePBX's ``asteriskcdrdb.cdr`` (calldate shape with ``did``,
``recordingfile``, ``cnum``, ``outbound_cnum``), plain Issabel without ``linkedid``, garbage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from sync.sources.cdr_table import create_cdr_table, insert_legs
from tests.integration.test_sources_sqlite import (
    W0,
    W1,
    assert_window,
    leg_settings,
    open_legs,
    scenario,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(mysql_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(mysql_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def test_freepbx_window_tenant_and_extras(engine: sa.Engine) -> None:
    legs = [
        replace(leg, outbound_cnum="80172999999") if leg.sequence % 5 == 0 else leg  # type: ignore[operator]
        for leg in scenario(seed=13, extras=True)
    ]
    create_cdr_table(engine, freepbx=True)
    insert_legs(engine, legs)
    source = open_legs(
        leg_settings(str(engine.url), flavor="freepbx", tenant_column="accountcode"), engine
    )
    report = source.columns_report()
    assert report["shape"] == "calldate"
    assert {"did", "recordingfile", "outbound_cnum", "linkedid", "sequence"} <= set(
        report["optional_present"]
    )
    pages = assert_window(source, legs)
    assert len(pages) > 5
    flat = [leg for page in pages for leg in page]
    assert any(leg.did for leg in flat) and any(leg.outbound_cnum for leg in flat)
    assert any(leg.recordingfile.endswith(".wav") for leg in flat)
    answered = next(leg for leg in flat if leg.disposition == "ANSWERED")
    assert answered.start and answered.duration is not None and answered.billsec is not None
    assert answered.answer == answered.start + timedelta(
        seconds=answered.duration - answered.billsec
    )
    for match in ("A", "B"):
        tenants = {leg.tenant for page in assert_window(source, legs, match=match) for leg in page}
        assert tenants == {match, ""}


def test_issabel_without_linkedid_groups_by_uniqueid(engine: sa.Engine) -> None:
    legs = scenario(seed=17, extras=True)
    create_cdr_table(engine, freepbx=True, linkedid=False, mysql_engine="MyISAM")
    insert_legs(engine, legs)
    source = open_legs(
        leg_settings(str(engine.url), flavor="freepbx", tenant_column="accountcode"), engine
    )
    assert source.columns_report()["grouped_by"] == "uniqueid"
    stored = [replace(leg, linkedid="", sequence=None) for leg in legs]
    pages = assert_window(source, stored)
    # A transfer's second leg (same uniqueid, minutes later) still comes with its call.
    flat = [leg for page in pages for leg in page]
    assert any(leg.start and leg.start >= W1 for leg in flat)
    assert_window(source, stored, match="A")
    assert source.legs_of([legs[0].uniqueid])


def test_garbage_rows_never_raise(engine: sa.Engine) -> None:
    create_cdr_table(engine, freepbx=True)
    with engine.begin() as conn:
        # Bytes in a binary column and a zero date are what old FreePBX tables hold.
        conn.exec_driver_sql("ALTER TABLE cdr MODIFY userfield VARBINARY(255) NOT NULL DEFAULT ''")
        conn.exec_driver_sql("SET SESSION sql_mode = ''")
        t = (W0 + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
        conn.exec_driver_sql(
            "INSERT INTO cdr (calldate, src, dst, channel, dstchannel, duration, billsec, "
            "disposition, uniqueid, linkedid, sequence, userfield, accountcode) VALUES "
            f"('{t}', '101', '80291234567', 'PJSIP/101-1', 'SIP/fpbx-1-2cSnGYAnRDnB-0000000a', "
            "-7, 0, 'FAILED', 'x.1', 'x.1', 1, X'C3FF41', 'A'),"
            "('0000-00-00 00:00:00', '', '', '', '', 3, 3, 'ANSWERED', 'x.2', 'x.1', 2, '', ''),"
            f"('{t}', '', '', '', '', 0, 0, '', '', '', 0, '', 'A'),"
            f"('{t}', '', '', '', '', 0, 0, 'ANSWERED', 'x.3', '', 0, '', 'A')"
        )
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    legs = {leg.uniqueid: leg for page in source.read_window(W0, W1) for leg in page}
    assert set(legs) == {"x.1", "x.2", "x.3", ""}
    bad = legs["x.1"]
    assert bad.userfield == "\ufffd\ufffdA" and bad.duration == -7
    assert bad.end == bad.start - timedelta(seconds=7)  # type: ignore[operator]
    assert legs["x.2"].start is None and legs["x.2"].end is None
    assert legs["x.3"].linkedid == "" and legs["x.3"].answer == legs["x.3"].start
    count, newest = source.probe(W0)
    assert count == 3 and newest == W0 + timedelta(minutes=1)
