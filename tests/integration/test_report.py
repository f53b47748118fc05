"""`once` then `report` on PostgreSQL and SQLite, orders from the emulator over HTTP."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import db
from sync.cli import main
from sync.emulator import Emulator
from sync.report.demo import add_orders
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/own.db"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        return url
    return str(request.getfixturevalue("pg_url"))


def _age_refreshes(url: str) -> None:
    """As if customers_interval had passed since the last map and orders refresh."""
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE sync_run SET started_at = :old WHERE kind IN ('customers', 'orders')"),
            {"old": datetime(2000, 1, 1)},
        )
    engine.dispose()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(query))]
    engine.dispose()
    return rows


def test_once_then_report_with_orders_from_the_crm(
    tmp_path: Path,
    db_url: str,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    emulator.register_module()
    fill_cdr(db_url, generated(120, hours_ago=1))
    path = str(write_config(tmp_path, db_url=db_url, crm_url=emulator.base_url))
    assert main(["--config", path, "once"]) == 0
    orders = add_orders(emulator, emulator.calls)
    assert orders >= 3
    first_order = min(emulator.orders)
    emulator.set_order_status(first_order, "complete")  # an orders/history status entry
    _age_refreshes(db_url)
    assert main(["--config", path, "once"]) == 0
    stored: dict[Any, Any] = dict(
        _rows(db_url, "SELECT order_id, status_group FROM retailcrm_orders")
    )
    assert len(stored) == orders
    assert stored[first_order] == "complete"
    assert sorted(stored.values()).count("cancel") == 1
    sent = _rows(db_url, "SELECT count(*) FROM call_sync WHERE status = 'sent'")[0][0]

    now = datetime.now(UTC)
    first, last = (now - timedelta(hours=4)).date(), now.date()
    span = ["--from", str(first), "--to", str(last)]
    capsys.readouterr()
    assert main(["--config", path, "report", *span, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tenant"] == "shop" and report["period"]["timezone"] == "UTC"
    assert report["inbound"]["offered"] + report["outbound"]["attempts"] == sent
    assert report["orders"]["attributed"] == orders - 1  # the cancelled one never counts
    assert sum(m["orders"] for m in report["managers"]) == orders - 1
    assert report["skipped"] and not report["empty"]
    customers = report["customers"]  # every generated number calls for the first time
    assert customers["new_numbers"] == customers["new_number_calls"] > 0

    assert main(["--config", path, "report", *span]) == 0
    text = capsys.readouterr().out
    assert f"Report for shop: {first} .. {last} (UTC)" in text
    assert str(report["inbound"]["offered"]) in text
    assert "Definitions" in text

    out = tmp_path / "csv"
    assert main(["--config", path, "report", *span, "--format", "csv", "--output", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "by_day.csv",
        "by_hour.csv",
        "definitions.csv",
        "lost_numbers.csv",
        "managers.csv",
        "summary.csv",
    ]
    with (out / "summary.csv").open() as f:
        summary = {row["metric"]: row["value"] for row in csv.DictReader(f)}
    assert summary["inbound.answered"] == str(report["inbound"]["answered"])
    with (out / "managers.csv").open() as f:
        assert next(csv.reader(f))[:3] == ["code", "name", "answered_in"]

    page = tmp_path / "r.html"
    args = ["--config", path, "report", *span, "--format", "html", "--output", str(page)]
    assert main(args) == 0
    first_bytes = page.read_bytes()
    assert first_bytes.count(b"<svg") >= 5 and b"<script" not in first_bytes.lower()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-02-30"], "not a date"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "is after --to"),
        (["--tenant", "nope"], "unknown tenant"),
        (["--manager", "999"], "unknown manager"),
        (["--format", "csv", "--output", "/proc/no-such/dir"], "cannot write"),
        (["--format", "csv"], "needs --output"),
        (["--format", "html", "--output", "/tmp"], "is a folder"),
        (["--period", "yesterday", "--from", "2026-03-01"], "not both"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    url = f"sqlite:///{tmp_path}/own.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    path = str(write_config(tmp_path, db_url=url, crm_url=emulator.base_url))
    assert main(["--config", path, "report", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize(
    "args",
    [["--format", "pdf"], ["--bogus"], ["--sl", "soon"], ["--period", "decade"]],
)
def test_parser_errors_are_one_line_too(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("retailcrm-sync report: ")


def test_an_empty_period_says_so(
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    url = f"sqlite:///{tmp_path}/own.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    path = str(write_config(tmp_path, db_url=url, crm_url=emulator.base_url))
    assert main(["--config", path, "report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["empty"] and report["inbound"]["answer_rate"] is None
    assert main(["--config", path, "report"]) == 0
    assert "No calls in this period" in capsys.readouterr().out
