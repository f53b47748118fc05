"""The operator verbs through the real CLI on SQLite: once, status --json, explain, requeue,
resync (and --dry-run, which must change nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import config, db
from sync.cli import main
from sync.emulator import Emulator
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration
UPLOAD = "/api/v5/telephony/calls/upload"


@pytest.fixture
def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> tuple[Path, str, dict[str, dict[str, object]]]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    url = f"sqlite:///{tmp_path}/own.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    emulator.register_module()
    legs = generated(80)
    fill_cdr(url, legs)
    path = write_config(tmp_path, db_url=url, crm_url=emulator.base_url)
    return path, url, expected_payloads(config.load(path), legs)


def status(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--config", str(path), "status", "--json"]) == 0
    (tenant,) = json.loads(capsys.readouterr().out)["tenants"]
    return dict(tenant)


def test_once_status_explain(
    setup: tuple[Path, str, dict[str, dict[str, object]]],
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, expected = setup
    assert main(["--config", str(path), "once"]) == 0
    assert len(emulator.calls) == len(expected)
    shown = status(path, capsys)
    assert set(shown) == {
        "name",
        "pending",
        "sending",
        "sent",
        "failed",
        "dead",
        "skipped",
        "oldest_pending_age_seconds",
        "last_success_at",
        "last_error",
        "paused",
    }
    assert shown["sent"] == len(expected) and shown["pending"] == 0
    assert shown["oldest_pending_age_seconds"] is None and shown["last_error"] is None
    assert API_KEY not in json.dumps(shown)

    external_id = next(iter(expected))
    assert main(["--config", str(path), "explain", external_id]) == 0
    out = capsys.readouterr().out
    assert f"externalId {external_id}" in out and "derived: ready" in out
    assert "result:" in out and "tenant shop: sent" in out
    assert main(["--config", str(path), "explain", "no.such.call"]) == 1
    assert "unknown call 'no.such.call'" in capsys.readouterr().err


def test_requeue_and_resync(
    setup: tuple[Path, str, dict[str, dict[str, object]]],
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, url, expected = setup
    emulator.fail_next(UPLOAD, 100, status=503)
    assert main(["--config", str(path), "once"]) == 1  # the CRM is down: calls failed
    shown = status(path, capsys)
    assert shown["failed"] > 0 and "503" in str(shown["last_error"])
    emulator.clear_faults()
    assert main(["--config", str(path), "requeue", "--dead"]) == 0
    assert "back to pending" in capsys.readouterr().out
    assert main(["--config", str(path), "once"]) == 0
    assert {c["externalId"] for c in emulator.calls} == set(expected)

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        before = conn.execute(
            sa.text("select status, count(*) from call_sync group by status")
        ).all()
    uploads = len([r for r in emulator.requests if r.path == UPLOAD])
    mark = len(emulator.requests)
    since = "2000-01-01 00:00"
    assert main(["--config", str(path), "resync", "--since", since, "--dry-run"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["call"]["externalId"] for x in lines} == set(expected)
    assert len([r for r in emulator.requests if r.path == UPLOAD]) == uploads
    with engine.connect() as conn:
        after = conn.execute(
            sa.text("select status, count(*) from call_sync group by status")
        ).all()
    assert after == before  # the dry run changed nothing

    assert main(["--config", str(path), "resync", "--since", since]) == 0
    resent = [
        c["externalId"]
        for r in emulator.requests[mark:]
        if r.path == UPLOAD
        for c in r.params["calls"]
    ]
    assert sorted(resent) == sorted(expected)  # every call of the window went again...
    assert len(emulator.calls) == len(expected)  # ...and the CRM kept one of each
    engine.dispose()


def test_bad_since_is_a_usage_error(
    setup: tuple[Path, str, dict[str, dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = setup
    assert main(["--config", str(path), "resync", "--since", "last tuesday"]) == 2
    assert "expected 'YYYY-MM-DD HH:MM[:SS]'" in capsys.readouterr().err
    assert main(["--config", str(path), "once", "--tenant", "nope"]) == 2


def test_once_keeps_the_customer_map_fresh_on_its_interval(
    setup: tuple[Path, str, dict[str, dict[str, object]]], emulator: Emulator
) -> None:
    path, url, _ = setup
    emulator.add_customer("Anna", ["+375291234567"])
    assert main(["--config", str(path), "once"]) == 0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        mapped = conn.execute(sa.text("select phone from retailcrm_customers")).scalars().all()
    assert mapped == ["+375291234567"]
    history = len([r for r in emulator.requests if r.path == "/api/v5/customers/history"])
    assert main(["--config", str(path), "once"]) == 0  # within customers_interval: no refresh
    again = len([r for r in emulator.requests if r.path == "/api/v5/customers/history"])
    assert again == history
    engine.dispose()
