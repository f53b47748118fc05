"""The sync engine end to end: generated CDR in a real database -> cycle -> emulator over HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import db
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.engine.store import Store
from sync.sources.cdr_table import insert_legs
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
        assert again.outcome == "idle" and again.sent == 0 and again.read == 0
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
    """R10b: an internal (skipped) call whose late leg goes out a trunk becomes an upload."""
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
            internal = (
                conn.execute(
                    sa.text("select external_id from call_sync where skip_reason = 'internal'")
                )
                .scalars()
                .all()
            )
        assert internal, "the generator makes internal calls"
        target = internal[0]
        first = min(
            (leg for leg in legs if leg.linkedid == target), key=lambda g: g.start or datetime.min
        )
        assert first.start is not None
        late = replace(
            first,
            sequence=(first.sequence or 0) + 1000,
            start=first.start + timedelta(seconds=30),
            answer=first.start + timedelta(seconds=35),
            end=first.start + timedelta(seconds=65),
            dstchannel="PJSIP/beltelecom-000000ff",
            dst="80291112233",
            disposition="ANSWERED",
            duration=35,
            billsec=30,
        )
        insert_legs(engine, [late])
        (report,) = runner.once()
    finally:
        runner.close()
        engine.dispose()
    uploaded = emulator.call(target)
    assert uploaded is not None
    assert (uploaded["type"], uploaded["phone"]) == ("out", "+375291112233")
    assert report.sent == 1


def test_idle_cycle_reads_again_when_a_settling_call_is_due(
    tmp_path: Path, sqlite_url: str, emulator: Emulator
) -> None:
    """A window with no new rows is skipped, except when a settling call has become complete."""
    from sync import config
    from sync.calls.legs import Leg
    from sync.timeutil import utcnow

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    emulator.register_module()
    ended = utcnow().replace(microsecond=0)
    leg = Leg(
        uniqueid="1700000000.1",
        linkedid="1700000000.1",
        sequence=1,
        start=ended - timedelta(seconds=60),
        answer=ended - timedelta(seconds=50),
        end=ended,
        src="80291234567",
        dst="101",
        channel="PJSIP/beltelecom-00000001",
        dstchannel="PJSIP/101-00000002",
        disposition="ANSWERED",
        duration=60,
        billsec=50,
    )
    fill_cdr(sqlite_url, [leg])
    path = write_config(
        tmp_path, db_url=sqlite_url, crm_url=emulator.base_url, source={"settle_seconds": 3}
    )
    now = [ended + timedelta(seconds=1)]
    runner = Runner(config.load(path, ENV), clock=lambda: now[0])
    try:
        (first,) = runner.once()
        assert (first.outcome, first.incomplete, first.sent) == ("ok", 1, 0)
        now[0] += timedelta(seconds=1)
        (second,) = runner.once()  # nothing new, not yet due: the window is not read
        assert (second.outcome, second.read) == ("idle", 0)
        now[0] += timedelta(seconds=2)  # 4 s after the call ended: settle_seconds = 3
        (third,) = runner.once()
        assert (third.outcome, third.sent) == ("ok", 1)
    finally:
        runner.close()
        engine.dispose()
    assert emulator.call("1700000000.1") is not None
