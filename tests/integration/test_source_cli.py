"""`source indexes [--apply]`: prints what is missing with the statement, creates it online."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import db
from sync.cli import main
from sync.sources.cdr_table import create_cdr_table
from tests.engine_fixtures import KEY_ENV, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_table(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database whose CDR table has no index at all, as Asterisk creates it."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        create_cdr_table(engine, "cdr", indexes=False, tenant_column=None)
    finally:
        engine.dispose()
    return str(url)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prints_then_applies_the_missing_indexes(
    bare_table: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, "k" * 20)
    path = str(write_config(tmp_path, db_url=bare_table, crm_url="https://shop.retailcrm.ru"))
    code, out, _ = run(["--config", path, "source", "indexes"], capsys)
    assert code == 0
    assert "✗ cdr (start): window range on the time column; missing, create with:" in out
    assert "✗ cdr (linkedid)" in out
    assert "CREATE INDEX" in out
    code, out, _ = run(["source", "indexes", "--apply", "--config", path], capsys)
    assert code == 0
    assert "created ix_cdr_start" in out and "created ix_cdr_linkedid" in out
    code, out, _ = run(["--config", path, "source", "indexes", "--apply"], capsys)
    assert code == 0
    assert "✓ cdr (start)" in out and "✓ cdr (linkedid)" in out
    assert "nothing to create" in out


def test_a_missing_table_is_one_line_not_a_traceback(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, "k" * 20)
    path = write_config(tmp_path, db_url=sqlite_url, crm_url="https://shop.retailcrm.ru")
    code, _, err = run(["--config", str(path), "source", "indexes"], capsys)
    assert code == 1
    assert err.startswith("retailcrm-sync: source sqlite:///") and "cdr" in err
    assert len(err.strip().splitlines()) == 1
