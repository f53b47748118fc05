"""Scenario 7a: a call log seeded with garbage never crashes a cycle.

Beside 100 well-formed generated calls, the CDR table holds garbage as PBXs and their
operators produce it: NULL linkedid, NULL ids, NULL times, negative and huge durations, an end
before the start, non-numeric, Unicode-digit and very long numbers, unknown and empty
dispositions, wrong encodings, NUL characters, unparsable and zero dates. The same garbage goes
into three tables: SQLite (typeless: anything in any column), PostgreSQL with text columns,
and MariaDB with the typed Asterisk schema written in a non-strict SQL mode (the server coerces
what it cannot store, as a sloppy PBX database does).

``once`` runs twice: exit 0 or 1, no traceback, no failed cycle, every good call in the CRM,
and every garbage call that was read recorded as ``skipped`` (with its reason), ``failed``
(with the CRM's words) or ``sent`` — never left ``pending`` or ``sending``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import config, db
from sync.emulator import Emulator
from sync.sources.cdr_table import create_cdr_table, insert_legs
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, generated, write_config
from tests.reliability.common import figure, no_traceback, query, run_cli, stored

pytestmark = [pytest.mark.slow, pytest.mark.integration]

COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "userfield",
    "uniqueid",
    "linkedid",
    "peeraccount",
    "sequence",
    "recordingfile",
)
CP1251_NAME = "Иван Петров".encode("cp1251")  # not UTF-8


@dataclass
class Garbage:
    """One garbage call: its legs as column -> value overrides of a plausible inbound leg."""

    name: str
    legs: list[dict[str, Any]]
    read: bool = True
    """The poller sees it: at least one leg has a start inside the window."""
    only: tuple[str, ...] = ()
    """Dialects that can store it (empty: all)."""
    id: str = field(default="")
    """Its externalId; ``""`` for the calls without any id (recorded under ``""``)."""


def _at(minutes: int) -> str:
    moment = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def garbage() -> list[Garbage]:
    t1, t2 = _at(59), _at(58)
    cases = [
        Garbage("null linkedid", [{"linkedid": None}]),
        Garbage("null linkedid and uniqueid", [{"linkedid": None, "uniqueid": None}]),
        Garbage("null answer and end", [{"answer": None, "end": None, "billsec": None}]),
        Garbage("null start", [{"start": None}], read=False),
        Garbage("second leg without start", [{}, {"start": None, "sequence": 2}]),
        Garbage("negative durations", [{"duration": -65, "billsec": -60}]),
        Garbage("end before start", [{"end": _at(120)}]),
        Garbage("non-numeric number", [{"src": "abc!@#$%^&*()", "clid": "garbage <x>"}]),
        Garbage("very long number", [{"src": "8" + "9" * 78, "clid": ""}]),
        Garbage("unicode digits", [{"src": "٨٠٢٩١٢٣٤٥٦٧", "clid": ""}]),
        Garbage("number with spaces and +", [{"src": " +375 (29) 123-45-67 ", "clid": ""}]),
        Garbage("unknown disposition", [{"disposition": "WHATEVER"}]),
        Garbage("empty disposition", [{"disposition": ""}]),
        Garbage("numeric disposition", [{"disposition": "42"}]),
        Garbage("cp1251 caller name", [{"clid": CP1251_NAME}], only=("sqlite", "mysql")),
        Garbage("mojibake caller name", [{"clid": "Ð˜Ð²Ð°Ð½ ÐŸÐµÑ‚Ñ€Ð¾Ð²"}]),
        Garbage("invalid utf-8 number", [{"src": b"\xff\xfe8029"}], only=("sqlite",)),
        Garbage("NUL in number", [{"src": "8029\x001234567"}], only=("sqlite",)),
        Garbage("unparsable answer", [{"answer": "2026-13-45 25:61:00", "end": "yesterday"}]),
        Garbage("zero dates", [{"answer": "0000-00-00 00:00:00", "end": "0000-00-00 00:00:00"}]),
        Garbage("huge duration", [{"duration": 2**31 - 1, "billsec": 2**31 - 1}]),
        Garbage("non-numeric duration", [{"duration": "abc", "billsec": "1e999"}]),
        Garbage("non-numeric sequence", [{}, {"sequence": "abc", "start": t1}]),
        Garbage("epoch start on a second leg", [{}, {"start": 1, "sequence": 2}]),
        Garbage("empty channels", [{"channel": "", "dstchannel": None, "lastapp": None}]),
        Garbage("internal, no numbers", [{"src": "", "dst": "", "clid": None}]),
        Garbage("huge userfield", [{"userfield": "u" * 5000, "recordingfile": "r" * 3000}]),
        Garbage("whitespace ids", [{"linkedid": "   ", "uniqueid": " \t "}]),
        Garbage("duplicate rows", [{}, {}, {"start": t2}]),
        Garbage(
            "recording URL with a space", [{"recordingfile": "https://pbx.example.com/a b.wav"}]
        ),
        Garbage("recording URL with a bracket", [{"recordingfile": "http://[::1/x.wav"}]),
    ]
    for n, case in enumerate(cases):
        id_less = case.legs[0].get("uniqueid", "x") in (None, " \t ")
        case.id = "" if id_less else f"1700000{n:03d}.{n}"
    return cases


def leg_row(case: Garbage, index: int, leg: dict[str, Any]) -> dict[str, Any]:
    start = _at(60)
    row: dict[str, Any] = {
        "accountcode": "",
        "src": "80291234567",
        "dst": "101",
        "dcontext": "from-trunk",
        "clid": '"Caller" <80291234567>',
        "channel": f"PJSIP/beltelecom-{index:08x}",
        "dstchannel": f"PJSIP/101-{index:08x}",
        "lastapp": "Dial",
        "lastdata": "PJSIP/101,30",
        "start": start,
        "answer": _at(59),
        "end": _at(58),
        "duration": 120,
        "billsec": 60,
        "disposition": "ANSWERED",
        "amaflags": "DOCUMENTATION",
        "userfield": "",
        "uniqueid": case.id or "unused",
        "linkedid": case.id or "unused",
        "peeraccount": "",
        "sequence": 1,
        "recordingfile": "",
    }
    row.update(leg)
    return row


# -- the three tables -----------------------------------------------------------------------------


def pg_text_table(engine: sa.Engine) -> None:
    cols = ", ".join(f'"{c}" text' for c in COLUMNS)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE cdr ({cols})"))
        conn.execute(sa.text('CREATE INDEX cdr_start ON cdr ("start")'))
        conn.execute(sa.text("CREATE INDEX cdr_linkedid ON cdr (linkedid)"))


def mysql_table(engine: sa.Engine) -> None:
    create_cdr_table(engine, recordingfile=True)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE cdr MODIFY clid VARBINARY(80)"))


def sqlite_table(engine: sa.Engine) -> None:
    create_cdr_table(engine, recordingfile=True)


def to_text(value: Any) -> Any:
    """PostgreSQL text columns: every value as text (no NUL, valid UTF-8 only)."""
    return None if value is None else str(value)


DIALECTS: dict[str, tuple[Callable[[sa.Engine], None], Callable[[Any], Any]]] = {
    "sqlite": (sqlite_table, lambda v: v),
    "postgresql": (pg_text_table, to_text),
    "mysql": (mysql_table, lambda v: v),
}


def fill(url: str, dialect: str, cases: list[Garbage], good: list[Any]) -> int:
    make, convert = DIALECTS[dialect]
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    rows: list[dict[str, Any]] = []
    for case in cases:
        for i, leg in enumerate(case.legs):
            row = leg_row(case, len(rows) + i, leg)
            rows.append({c: convert(row[c]) for c in COLUMNS})
    try:
        make(engine)
        insert_legs(engine, good)
        cols = ", ".join(f'"{c}"' if dialect != "mysql" else f"`{c}`" for c in COLUMNS)
        params = ", ".join(f":{c}" for c in COLUMNS)
        with engine.begin() as conn:
            if dialect == "mysql":  # coerce what the typed columns cannot hold, with warnings
                conn.execute(sa.text("SET SESSION sql_mode = ''"))
            conn.execute(sa.text(f"INSERT INTO cdr ({cols}) VALUES ({params})"), rows)
    finally:
        engine.dispose()
    return len(rows)


def source_url(dialect: str, tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path}/cdr.db"
    if dialect == "postgresql":
        return pg_url
    return str(request.getfixturevalue("mysql_url"))


def run_garbage(
    dialect: str, cases: list[Garbage], tmp_path: Path, pg_url: str, emulator: Emulator, source: str
) -> dict[str, Any]:
    """Fill the table, run ``once`` twice and check what a crash-free poller must give."""
    emulator.register_module()
    good = generated(100, seed=17, spacing_seconds=20.0, hours_ago=2)
    rows = fill(source, dialect, cases, good)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        source={"url": source, "settle_seconds": 60},
        sync={"max_attempts": 2, "retry_base_seconds": 1},
    )
    expected = expected_payloads(config.load(path, {KEY_ENV: API_KEY}), good)
    codes = []
    for run in range(2):
        done = run_cli(path, "once", keep=tmp_path / f"once-{run}", level="INFO")
        codes.append(done.code)
        no_traceback(done.stderr, f"once #{run}")
        assert done.code in (0, 1), done.stderr[-3000:]
        assert "cycle failed" not in done.stderr, done.stderr[-3000:]
        assert "tenant shop: ok " in done.stderr or "tenant shop: idle " in done.stderr
    crm = stored(emulator)
    assert {k: crm.get(k) for k in expected} == expected, "every good call went through"
    # An unset time (epoch 1) is a missing time, not a call of 1970 with a 56-year wait.
    assert [k for k, call in crm.items() if call["date"] < "2000"] == []
    states = query(
        pg_url, "SELECT external_id, status, skip_reason, last_error FROM call_sync ORDER BY 1"
    )
    by_id = {r.external_id: r for r in states}
    outcome = {}
    for case in cases:
        row = by_id.get(case.id)
        outcome[case.name] = (
            "not read" if row is None else f"{row.status}: {row.skip_reason or row.last_error}"
        )
        if case.id in crm:
            outcome[case.name] += f" {json.dumps(crm[case.id], ensure_ascii=False)}"
    (tmp_path / "outcomes.txt").write_text(
        "".join(f"{k}: {v}\n" for k, v in outcome.items()), encoding="utf-8"
    )
    for row in states:
        assert row.status in ("sent", "skipped", "failed", "dead"), row
        if row.status == "skipped":
            assert row.skip_reason, row
        if row.status in ("failed", "dead"):
            assert row.last_error, row
    statuses = Counter(by_id[c.id].status for c in cases if c.id in by_id)
    return {
        "garbage_calls": len(cases),
        "garbage_rows": rows,
        "once_exit_codes": codes,
        **{f"garbage_{k}": v for k, v in sorted(statuses.items())},
        "good_calls_delivered": len(expected),
        "outcome": outcome,
    }


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_garbage_in_the_call_log_gives_reasons_never_a_crashed_cycle(
    dialect: str,
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    request: pytest.FixtureRequest,
) -> None:
    cases = [c for c in garbage() if not c.only or dialect in c.only]
    source = source_url(dialect, tmp_path, pg_url, request)
    result = run_garbage(dialect, cases, tmp_path, pg_url, emulator, source)
    outcome = result.pop("outcome")
    figure(f"7 bad input ({dialect})", **result)
    unread = [c.name for c in cases if c.read and outcome[c.name] == "not read"]
    assert unread == [], f"garbage calls the poller never recorded: {unread}"


FAR_AHEAD = [
    pytest.param(
        "9999-12-31 23:59:59",
        id="end-in-9999",
    ),
    pytest.param(
        "2099-01-01 00:00:00",
        id="end-in-2099",
    ),
]


@pytest.mark.parametrize("end", FAR_AHEAD)
def test_a_leg_ending_far_in_the_future_is_malformed_not_a_stuck_or_failed_cycle(
    end: str, tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    case = Garbage("end far ahead", [{"end": end, "duration": 2**31 - 1}])
    case.id = "1800000000.1"
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=60)
    result = run_garbage("postgresql", [case], tmp_path, pg_url, emulator, pg_url)
    assert result["outcome"]["end far ahead"].startswith("skipped: malformed")
    cursor = query(pg_url, "SELECT cursor FROM sync_tenant WHERE name = 'shop'")[0].cursor
    assert cursor > started + timedelta(minutes=30), f"cursor pinned at {cursor}"
