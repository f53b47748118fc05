"""The sync engine end to end: generated CDR in a real database -> cycle -> emulator over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import db
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.engine.store import Store
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration
ENV = {KEY_ENV: API_KEY}
UPLOAD = "/api/v5/telephony/calls/upload"


def uploads(emu: Emulator) -> list[list[str]]:
    return [
        [c["externalId"] for c in r.params["calls"]]
        for r in emu.requests
        if r.path == UPLOAD and r.status is not None and r.status < 300
    ]


def statuses(url: str) -> dict[str, int]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return {
            k: v for k, v in Store(engine).status_counts()["shop"].items() if isinstance(v, int)
        }
    finally:
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/own.db"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        return url
    return str(request.getfixturevalue("pg_url"))


def test_generated_calls_arrive_exactly_once(
    tmp_path: Path,
    db_url: str,
    emulator: Emulator,
) -> None:
    emulator.register_module()
    legs = generated(300)
    fill_cdr(db_url, legs)
    settings = write_config(tmp_path, db_url=db_url, crm_url=emulator.base_url)
    from sync import config

    settings_obj = config.load(settings, ENV)
    expected = expected_payloads(settings_obj, legs)
    assert len(expected) > 200

    runner = Runner(settings_obj)
    try:
        (report,) = runner.once()
        assert report.outcome == "ok", report.error
        assert {c["externalId"]: c for c in emulator.calls} == expected
        assert report.sent == len(expected) and report.duplicates == 0
        sent_ids = [i for batch in uploads(emulator) for i in batch]
        assert len(sent_ids) == len(set(sent_ids)) == len(expected)
        assert all(len(batch) <= 50 for batch in uploads(emulator))

        before = len(emulator.requests)
        (again,) = runner.once()
        assert again.outcome == "ok" and again.sent == 0 and again.new == 0
        assert [r for r in emulator.requests[before:] if r.path == UPLOAD] == []
    finally:
        runner.close()
    counts = statuses(db_url)
    assert counts["sent"] == len(expected)
    assert counts["pending"] == counts["sending"] == counts["failed"] == 0
    assert counts["skipped"] > 0


def test_unsent_calls_follow_their_latest_derivation(
    tmp_path: Path, sqlite_url: str, emulator: Emulator
) -> None:
    """R10b: a skipped call whose legs change (here: the number appears) is uploaded."""
    from sync import config

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    emulator.register_module()
    legs = generated(60)
    fill_cdr(sqlite_url, legs)
    settings = config.load(
        write_config(tmp_path, db_url=sqlite_url, crm_url=emulator.base_url), ENV
    )
    runner = Runner(settings)
    try:
        runner.once()
        with engine.connect() as conn:
            skipped = (
                conn.execute(
                    sa.text("select external_id from call_sync where skip_reason = 'no number'")
                )
                .scalars()
                .all()
            )
        assert skipped, "the generator makes anonymous callers"
        target = skipped[0]
        with engine.begin() as conn:
            conn.execute(
                sa.text("update cdr set src = '80291112233', clid = '' where linkedid = :k"),
                {"k": target},
            )
        (report,) = runner.once()
    finally:
        runner.close()
        engine.dispose()
    assert emulator.call(target) is not None
    assert emulator.call(target)["phone"] == "+375291112233"
    assert report.sent == 1
