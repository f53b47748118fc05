"""Source readers on SQLite (``cdr_sqlite3_custom``: untyped columns, text times).

Also holds the scenario and the window contract the PostgreSQL and MariaDB tests share
(``scenario``, ``assert_window``): every call with a leg in the window comes out exactly
once, whole, on one page, across many pages of a tiny page size with many ties.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
import sqlalchemy as sa

from sync.calls.legs import CallRow, Leg
from sync.config import SourceSettings
from sync.sources import CallSource, LegSource, SourceError, leg_sort_key, open_source
from sync.sources.cdr_table import create_cdr_table, insert_legs

pytestmark = pytest.mark.integration

W0 = datetime(2026, 3, 2, 10, 0, 0)
W1 = W0 + timedelta(minutes=10)
PAGE = 7


# -- shared scenario ---------------------------------------------------------------------------


def make_leg(
    uniqueid: str,
    linkedid: str,
    sequence: int,
    start: datetime | None,
    *,
    tenant: str = "",
    ring: int = 5,
    talk: int = 0,
    disposition: str | None = None,
    channel: str = "PJSIP/beltelecom-00000010",
    dstchannel: str = "PJSIP/101-00000011",
    src: str = "80291234567",
    dst: str = "101",
    lastapp: str = "Dial",
    extras: bool = False,
) -> Leg:
    """A consistent leg: answer/end/duration/billsec agree, as the calldate shape needs."""
    answer = start + timedelta(seconds=ring) if start and talk > 0 else None
    end = start + timedelta(seconds=ring + talk) if start else None
    return Leg(
        uniqueid=uniqueid,
        linkedid=linkedid,
        sequence=sequence,
        start=start,
        answer=answer,
        end=end,
        src=src,
        dst=dst,
        clid=f'"Caller" <{src}>',
        channel=channel,
        dstchannel=dstchannel,
        lastapp=lastapp,
        disposition=disposition or ("ANSWERED" if talk > 0 else "NO ANSWER"),
        duration=ring + talk if start else None,
        billsec=talk if start else None,
        recordingfile=f"in-{dst}-{src}-20260302-100000-{uniqueid}.wav" if extras and talk else "",
        userfield="",
        did="80172000000" if extras and sequence % 3 == 0 else "",
        outbound_cnum="",
        tenant=tenant,
    )


def scenario(seed: int = 7, groups: int = 70, *, extras: bool = False) -> list[Leg]:
    """Calls around ``[W0, W1)`` on a 15 s grid (many share a second), of several kinds.

    Ring groups (legs sharing the caller's start), queue members on Local ``;2`` halves with
    an empty tenant, transfers whose second leg starts minutes later (often past ``W1``) and
    consultations that started before the caller's leg (often before ``W0``).
    """
    rng = random.Random(seed)
    legs: list[Leg] = []
    seq = 0

    def add(uniqueid: str, linkedid: str, start: datetime, **kwargs: Any) -> None:
        nonlocal seq
        seq += 1
        legs.append(make_leg(uniqueid, linkedid, seq, start, extras=extras, **kwargs))

    for g in range(groups):
        start = W0 - timedelta(minutes=3) + timedelta(seconds=15 * rng.randrange(64))
        caller = f"{1772438000 + g}.{g}"
        tenant = rng.choice("AB")
        kind = rng.choice(["basic", "ringgroup", "queue", "transfer", "early"])
        if kind == "basic":
            add(caller, caller, start, tenant=tenant, talk=rng.choice([0, 30]))
        elif kind == "ringgroup":
            winner = rng.randrange(3)
            for k in range(3):
                add(
                    caller, caller, start, tenant=tenant,
                    dstchannel=f"PJSIP/10{k}-0000{g:04d}", talk=40 if k == winner else 0,
                )  # fmt: skip
        elif kind == "queue":
            add(caller, caller, start, tenant=tenant, lastapp="Queue", talk=60)
            for k in range(2):
                add(
                    f"{caller}{k}", caller, start + timedelta(seconds=2),
                    channel=f"Local/10{k}@from-queue-0000;2", talk=60 if k == 0 else 0,
                )  # fmt: skip
        elif kind == "transfer":
            add(caller, caller, start, tenant=tenant, talk=20)
            add(caller, caller, start + timedelta(seconds=400), tenant=tenant, talk=50)
            add(f"{caller}b", caller, start + timedelta(seconds=25), talk=10)
        else:
            add(f"{caller}c", caller, start - timedelta(seconds=200), talk=15)
            add(caller, caller, start, tenant=tenant, talk=35)
    return legs


def garbage_legs() -> list[Leg]:
    """Rows a real table holds too: no linkedid, no start, negative duration, no ids at all."""
    return [
        # No linkedid: grouped by uniqueid, one leg in the window and one after it.
        make_leg("1772430000.1", "", 1, W0 + timedelta(minutes=1), tenant="A", talk=5),
        make_leg("1772430000.1", "", 2, W1 + timedelta(minutes=5), tenant="A", talk=5),
        # No start: follows its call (1772438000.0 is the scenario's first call).
        make_leg("1772438000.0z", "1772438000.0", 3, None),
        # Negative duration (a clock step on the PBX).
        replace(
            make_leg("1772430002.2", "1772430002.2", 4, W0 + timedelta(minutes=2), tenant="B"),
            duration=-5,
            billsec=0,
            end=W0 + timedelta(minutes=2) - timedelta(seconds=5),
        ),
        # Neither linkedid nor uniqueid.
        make_leg("", "", 5, W0 + timedelta(minutes=3), tenant="A"),
    ]


def group_key(leg: Leg) -> str:
    return leg.linkedid or leg.uniqueid


def expected_groups(
    legs: Iterable[Leg], lo: datetime, hi: datetime, match: str | None = None
) -> tuple[dict[str, list[Leg]], list[Leg]]:
    """R1 groups with a (tenant-matching) leg in ``[lo, hi)``, and the in-window keyless legs."""
    groups: dict[str, list[Leg]] = defaultdict(list)
    keyless: list[Leg] = []

    def counts(leg: Leg) -> bool:
        in_window = leg.start is not None and lo <= leg.start < hi
        return in_window and (match is None or leg.tenant == match)

    for leg in legs:
        if group_key(leg):
            groups[group_key(leg)].append(leg)
        elif counts(leg):
            keyless.append(leg)
    wanted = {k: g for k, g in groups.items() if any(counts(leg) for leg in g)}
    return wanted, keyless


def assert_window(
    source: LegSource,
    written: Sequence[Leg],
    lo: datetime = W0,
    hi: datetime = W1,
    match: str | None = None,
) -> list[list[Leg]]:
    """The window contract; ``written`` as the table gives them back."""
    pages = list(source.read_window(lo, hi, tenant_match=match))
    page_of: dict[str, int] = {}
    got: dict[str, list[Leg]] = defaultdict(list)
    keyless: list[Leg] = []
    for number, page in enumerate(pages):
        assert page, "empty pages are not yielded"
        for leg in page:
            key = group_key(leg)
            if not key:
                keyless.append(leg)
                continue
            assert page_of.setdefault(key, number) == number, f"{key} on two pages"
            got[key].append(leg)
    want, want_keyless = expected_groups(written, lo, hi, match)
    assert sorted(got) == sorted(want)
    for key, legs in got.items():
        assert Counter(legs) == Counter(want[key]), key
        assert legs == sorted(legs, key=leg_sort_key)
    assert Counter(keyless) == Counter(want_keyless)
    return pages


def leg_settings(url: str, **kwargs: object) -> SourceSettings:
    kwargs.setdefault("page_size", PAGE)
    if "columns" in kwargs:
        kwargs["columns"] = MappingProxyType(dict(kwargs["columns"]))  # type: ignore[call-overload]
    return SourceSettings(url=url, **kwargs)  # type: ignore[arg-type]


def open_legs(settings: SourceSettings, engine: sa.Engine) -> LegSource:
    source = open_source(settings, engine)
    assert isinstance(source, LegSource)
    return source


# -- SQLite ------------------------------------------------------------------------------------


@pytest.fixture
def engine(sqlite_url: str) -> sa.Engine:
    return sa.create_engine(sqlite_url)


def test_window_start_shape_every_call_once_whole(engine: sa.Engine) -> None:
    legs = scenario() + garbage_legs()
    create_cdr_table(engine, indexes=True)
    assert insert_legs(engine, legs, batch=50) == len(legs)
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    pages = assert_window(source, legs)
    assert len(pages) > 5
    # The no-start leg follows its call, the no-linkedid call keeps its out-of-window leg.
    flat = [leg for page in pages for leg in page]
    assert any(leg.start is None for leg in flat)
    assert sum(leg.uniqueid == "1772430000.1" for leg in flat) == 2
    assert any(leg.duration == -5 for leg in flat)


@pytest.mark.parametrize("match", ["A", "B"])
def test_tenant_window_keeps_local_halves(engine: sa.Engine, match: str) -> None:
    legs = scenario(seed=11)
    create_cdr_table(engine)
    insert_legs(engine, legs)
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    pages = assert_window(source, legs, match=match)
    tenants = {leg.tenant for page in pages for leg in page}
    assert tenants == {match, ""}


def test_window_edges(engine: sa.Engine) -> None:
    legs = [
        make_leg("1.1", "1.1", 1, W0, talk=5),  # at the start: in
        make_leg("2.2", "2.2", 2, W1, talk=5),  # at the end: out
        make_leg("3.3", "3.3", 3, W1 - timedelta(seconds=1), talk=5),
        make_leg("4.4", "4.4", 4, W0 - timedelta(seconds=1), talk=5),
    ]
    create_cdr_table(engine)
    insert_legs(engine, legs)
    source = open_legs(leg_settings(str(engine.url)), engine)
    flat = [leg.uniqueid for page in source.read_window(W0, W1) for leg in page]
    assert flat == ["1.1", "3.3"]
    assert list(source.read_window(W1, W1 + timedelta(hours=1))) == [[legs[1]]]
    assert list(source.read_window(W0 - timedelta(days=1), W0 - timedelta(hours=1))) == []


def test_legs_of_probe_and_report(engine: sa.Engine) -> None:
    legs = scenario(groups=20) + garbage_legs()
    create_cdr_table(engine, tenant_column="accountcode")
    insert_legs(engine, legs)
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    key = legs[0].linkedid
    assert source.legs_of([key]) == sorted(
        (leg for leg in legs if group_key(leg) == key), key=leg_sort_key
    )
    assert [leg.sequence for leg in source.legs_of(["1772430000.1"])] == [1, 2]
    assert source.legs_of(["nope"]) == []
    starts = [leg.start for leg in legs if leg.start and leg.start >= W0]
    assert source.probe(W0) == (len(starts), max(starts))
    assert source.probe(W1 + timedelta(days=1)) == (0, None)
    count, _ = source.probe(W0, tenant_match="A")
    assert 0 < count < len(starts)
    report = source.columns_report()
    assert report["shape"] == "start"
    assert report["grouped_by"] == "linkedid"
    assert report["tenant_column"] == "accountcode"
    assert report["time_storage"] == "text"
    assert "recordingfile" in report["optional_missing"]


CUSTOM_DDL = (
    "CREATE TABLE cdr (AcctId INTEGER PRIMARY KEY, calldate, clid, src, dst, dcontext, "
    "channel, dstchannel, lastapp, lastdata, duration, billsec, disposition, amaflags, "
    "accountcode, uniqueid, linkedid, sequence, userfield, recordingfile)"
)


def test_cdr_sqlite3_custom_table_with_garbage(engine: sa.Engine) -> None:
    """Untyped columns as ``cdr_sqlite3_custom`` creates them; values written as text."""
    with engine.begin() as conn:
        conn.exec_driver_sql(CUSTOM_DDL)
    legs = scenario(seed=3, groups=40)
    insert_legs(engine, legs)

    def t(minutes: int) -> str:
        return (W0 + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")

    with engine.begin() as conn:
        # cdr_sqlite3_custom quotes every value: numbers arrive as text.
        conn.exec_driver_sql(
            "INSERT INTO cdr (calldate, src, dst, channel, dstchannel, duration, billsec, "
            "disposition, uniqueid, linkedid, sequence, accountcode) VALUES "
            f"('{t(4)}', '102', '80291234567', 'PJSIP/102-1', 'PJSIP/trunk-2', '75', '60', "
            "'ANSWERED', 'g.1', 'g.1', '7', 'A'),"
            f"('{t(4)}', 'x', 'y', 'c', 'd', 'abc', '', 'ANSWERED', 'g.2', 'g.2', 'seq', 'A'),"
            f"('{t(5)}', CAST(X'C3FF41' AS TEXT), 'y', 'c', 'd', 10, 0, 'FAILED', 'g.3', "
            "'g.3', 1, CAST(X'FF' AS TEXT)),"
            "('garbage', 'x', 'y', 'c', 'd', 1, 0, 'FAILED', 'g.4', 'g.1', 1, 'A'),"
            "('0000-00-00 00:00:00', 'x', 'y', 'c', 'd', 1, 0, 'FAILED', 'g.5', 'g.1', 2, 'A'),"
            "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'g.6', 'g.1', NULL, NULL)"
        )
    source = open_legs(leg_settings(str(engine.url), tenant_column="accountcode"), engine)
    assert source.layout.shape == "calldate"
    assert source.layout.codec.kind == "text"
    pages = list(source.read_window(W0, W1))
    flat = {(leg.uniqueid, leg.sequence): leg for page in pages for leg in page}
    good = flat[("g.1", 7)]
    assert good.start == W0 + timedelta(minutes=4)
    assert good.end == good.start + timedelta(seconds=75)
    assert good.answer == good.start + timedelta(seconds=15)
    assert (good.duration, good.billsec, good.disposition) == (75, 60, "ANSWERED")
    bad = flat[("g.2", None)]
    assert (bad.duration, bad.billsec, bad.answer, bad.end) == (None, None, None, None)
    utf = flat[("g.3", 1)]
    assert utf.src == "\ufffd\ufffdA" and utf.tenant == "\ufffd"
    # Unreadable times follow their call (g.1) with no times.
    assert flat[("g.4", 1)].start is None and flat[("g.5", 2)].start is None
    assert flat[("g.6", None)].disposition == ""
    # Scenario legs come back intact from an untyped table.
    stored = {(leg.uniqueid, leg.sequence): leg for leg in legs}
    for ident, leg in flat.items():
        if ident in stored:
            assert leg == stored[ident]
    # Keyset paging over the text column still gives every call once.
    assert_window(source, [*legs, *(flat[k] for k in flat if k[0].startswith("g."))])


def test_iso_text_times_use_their_separator(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(CUSTOM_DDL)
        for i in range(20):
            conn.exec_driver_sql(
                "INSERT INTO cdr (calldate, uniqueid, linkedid, src, dst, channel, dstchannel, "
                f"disposition, duration, billsec) VALUES ('2026-03-02T10:00:{i:02d}', "
                f"'u{i}', 'L{i // 4}', '1', '2', 'c', 'd', 'ANSWERED', 5, 5)"
            )
    source = open_legs(leg_settings(str(engine.url)), engine)
    assert source.layout.codec.separator == "T"
    window = list(source.read_window(W0 + timedelta(seconds=4), W0 + timedelta(seconds=12)))
    got = sorted(leg.uniqueid for page in window for leg in page)
    assert got == sorted(f"u{i}" for i in range(4, 12))


def test_open_source_errors_name_table_and_column(engine: sa.Engine) -> None:
    url = str(engine.url)
    with pytest.raises(SourceError, match=r"'cdr' not found"):
        open_source(leg_settings(url), engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE cdr (calldate TEXT, uniqueid TEXT, src TEXT)")
        conn.exec_driver_sql("CREATE TABLE notimes (x TEXT)")
    with pytest.raises(SourceError, match=r"'cdr'.*'dst' not found"):
        open_source(leg_settings(url), engine)
    with pytest.raises(SourceError, match=r"'notimes'.*neither 'start'"):
        open_source(leg_settings(url, table="notimes"), engine)
    create_cdr_table(engine, "cdr2", tenant_column=None, indexes=False)
    with pytest.raises(SourceError, match=r"'cdr2'.*'pbx_tenant'"):
        open_source(leg_settings(url, table="cdr2", tenant_column="pbx_tenant"), engine)
    with pytest.raises(SourceError, match=r"'cdr2'.*'call_start' \(source.columns.start\)"):
        open_source(leg_settings(url, table="cdr2", columns={"start": "call_start"}), engine)


def test_unreachable_database_is_one_line_without_the_password() -> None:
    settings = SourceSettings(url="postgresql+psycopg://reader:s3cret@127.0.0.1:1/asterisk")
    with pytest.raises(SourceError, match="source database: cannot read table 'cdr'") as err:
        open_source(settings)
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)


def test_own_engine_leaves_the_pbx_file_alone(engine: sa.Engine) -> None:
    create_cdr_table(engine)
    insert_legs(engine, scenario(groups=5))
    source = open_source(leg_settings(str(engine.url)))
    assert isinstance(source, LegSource)
    with source:
        assert list(source.read_window(W0, W1))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"


def test_tenant_match_without_tenant_column_is_refused(engine: sa.Engine) -> None:
    create_cdr_table(engine, tenant_column=None)
    source = open_legs(leg_settings(str(engine.url)), engine)
    with pytest.raises(SourceError, match="tenant_column"):
        list(source.read_window(W0, W1, tenant_match="A"))


def test_column_overrides_and_missing_optional_columns(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE calllog ("Began" TEXT, "Answered" TEXT, "Ended" TEXT, uid TEXT, '
            "src TEXT, dst TEXT, channel TEXT, dstchannel TEXT, disposition TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO calllog VALUES ('2026-03-02 10:00:00', '2026-03-02 10:00:07', "
            "'2026-03-02 10:01:07', 'u1', '1', '2', 'c', 'd', 'ANSWERED')"
        )
    columns = {"start": "began", "answer": "Answered", "end": "Ended", "uniqueid": "uid"}
    settings = leg_settings(str(engine.url), table="calllog", columns=columns)
    source = open_legs(settings, engine)
    [[leg]] = list(source.read_window(W0, W1))
    # duration and billsec are derived from the times when the table lacks them.
    assert (leg.uniqueid, leg.linkedid, leg.sequence) == ("u1", "", None)
    assert (leg.duration, leg.billsec) == (67, 60)
    assert source.columns_report()["grouped_by"] == "uniqueid"


# -- calls flavor ------------------------------------------------------------------------------

CALLS_DDL = (
    "CREATE TABLE webhook_calls (call_id INTEGER PRIMARY KEY, began DATETIME, finished DATETIME, "
    "dir TEXT, number TEXT, ext TEXT, outcome TEXT, talk TEXT, ring INTEGER, rec TEXT, shop TEXT)"
)
CALL_COLUMNS = {
    "id": "call_id",
    "started_at": "began",
    "ended_at": "finished",
    "direction": "dir",
    "phone": "number",
    "extension": "ext",
    "result": "outcome",
    "duration": "talk",
    "wait": "ring",
    "recording": "rec",
}


def test_calls_flavor_pages_ties_and_tenant(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(CALLS_DDL)
        for i in range(60):
            began = W0 + timedelta(seconds=20 * (i // 5) - 60)
            conn.execute(
                sa.text(
                    "INSERT INTO webhook_calls VALUES (:id, :b, :f, 'in', ' +375291234567 ', "
                    "'101', 'answered', :talk, 4, NULL, :shop)"
                ),
                {
                    "id": i,
                    "b": began.strftime("%Y-%m-%d %H:%M:%S"),
                    "f": None if i % 7 == 0 else began.strftime("%Y-%m-%d %H:%M:%S"),
                    "talk": "n/a" if i == 17 else str(i),
                    "shop": "A" if i % 2 else "B",
                },
            )
    settings = SourceSettings(
        url=str(engine.url),
        table="webhook_calls",
        flavor="calls",
        tenant_column="shop",
        page_size=PAGE,
        columns=MappingProxyType(CALL_COLUMNS),
    )
    source = open_source(settings, engine)
    assert isinstance(source, CallSource)
    pages = list(source.read_window(W0, W1))
    assert len(pages) > 3
    ids = [row.id for page in pages for row in page]
    expected = [i for i in range(60) if W0 <= W0 + timedelta(seconds=20 * (i // 5) - 60) < W1]
    assert sorted(map(int, ids)) == expected and len(ids) == len(set(ids))
    rows = {row.id: row for page in pages for row in page}
    assert rows["15"] == CallRow(
        id="15",
        started_at=W0,
        ended_at=W0,
        direction="in",
        phone="+375291234567",
        extension="101",
        result="answered",
        duration=15,
        wait=4,
        recording=None,
        tenant="A",
    )
    assert rows["21"].ended_at is None and rows["17"].duration is None
    shop_a = [row for page in source.read_window(W0, W1, tenant_match="A") for row in page]
    assert {row.tenant for row in shop_a} == {"A"} and len(shop_a) == sum(i % 2 for i in expected)
    assert [row.id for row in source.rows_of(["15", "3"])] == ["3", "15"]
    assert source.probe(W0)[0] == len(expected)
