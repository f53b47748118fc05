"""Several daemons share the tenants evenly (issue 15): presence rows in ``sync_owner`` and
rendezvous hashing decide who starts on which tenant; the leases still guard every cycle.

Real PostgreSQL for our tables and the call log, the CRM emulator over HTTP with one key per
tenant. Time is an input (each ``Runner``'s clock): a peer falling behind is a step of the
clock, never a wait.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import db
from sync.cli import main
from sync.emulator import Emulator, RecordedRequest
from sync.engine.cycle import CycleReport
from sync.engine.runner import Runner
from sync.engine.store import Presence, Store
from sync.engine.turns import HELP_TICKS, due_first, preferred_owner, presence_window
from sync.sources.cdr_table import insert_legs
from sync.timeutil import utcnow
from tests.engine_fixtures import generated
from tests.integration.test_many_tenants import key_of, tenants_setup, unsent
from tests.reliability.common import UPLOAD, ids_of

pytestmark = pytest.mark.integration

OWNERS = ["pbx-a:101", "pbx-b:202", "pbx-c:303"]
"""Other hosts' ``host:pid``: alive as far as this host can tell."""


class StepClock:
    """The runners' clock: moves only when the test says so."""

    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def share_of(names: list[str], owners: list[str]) -> dict[str, set[str]]:
    """Who is preferred for what: deterministic, given the owners' names."""
    shares: dict[str, set[str]] = {o: set() for o in owners}
    for name in names:
        shares[preferred_owner(name, owners)].add(name)
    return shares


def uploads(emulator: Emulator, since: int = 0) -> list[RecordedRequest]:
    """Successful upload requests from the ``since``-th request the emulator saw."""
    return [
        r
        for r in emulator.requests[since:]
        if r.path == UPLOAD and r.status is not None and r.status < 300
    ]


def sent_ids(emulator: Emulator) -> list[str]:
    """externalIds of successful uploads, one entry per upload (a repeat shows twice)."""
    return [i for r in uploads(emulator) for i in ids_of(r)]


def labels_uploaded(emulator: Emulator, since: int) -> set[str]:
    return {r.key_label or "?" for r in uploads(emulator, since)}


def presences(url: str) -> list[Presence]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return Store(engine).presences()
    finally:
        engine.dispose()


def tenants_of(reports: list[CycleReport]) -> set[str]:
    return {r.tenant for r in reports}


UPLOADERS = (
    "select owner, count(distinct tenant) from sync_run "
    "where kind = 'sync' and sent > 0 group by owner"
)


def test_three_daemons_each_start_on_their_third_and_send_every_call_once(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:03d}" for i in range(150)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=150)  # one call each
    clock = StepClock()
    runners = [Runner(settings, owner=owner, clock=clock) for owner in OWNERS]
    try:
        for runner in runners:  # the three have been running: each has ticked before
            runner.store.announce(runner.owner, clock())
        with ThreadPoolExecutor(len(runners)) as pool:
            passes = list(pool.map(lambda r: r.once(drain=False), runners))
        with runners[0].engine.connect() as conn:
            uploaders = {o: int(n) for o, n in conn.execute(sa.text(UPLOADERS))}
    finally:
        for runner in runners:
            runner.close()
    shares = share_of(names, OWNERS)
    assert sorted(len(s) for s in shares.values()) == [49, 49, 52], "the hash, for these names"
    for owner, reports in zip(OWNERS, passes, strict=True):
        assert tenants_of(reports) == shares[owner], f"{owner} took only its own tenants"
        assert all(r.outcome == "ok" for r in reports), [r.summary() for r in reports]
    # Every process uploaded, for no more than its share, and together for every call.
    assert set(uploaders) == set(OWNERS)
    assert all(uploaders[o] <= len(shares[o]) for o in OWNERS), uploaders
    ids = sent_ids(emulator)
    assert len(ids) == len(set(ids)) > 100, "no call sent twice"
    assert unsent(pg_url) == 0
    assert presences(pg_url) == [], "a clean close removes each process's row"


def two_daemons_and_a_wave(
    tmp_path: Path, pg_url: str, emulator: Emulator, clock: StepClock
) -> tuple[Runner, Runner, dict[str, set[str]], list[str]]:
    """Two daemons that each passed once over their own 20 of 40 tenants (all sent), then a
    new call for every tenant."""
    names = [f"t{i:03d}" for i in range(40)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=40)
    alive, other = OWNERS[0], OWNERS[1]
    shares = share_of(names, [alive, other])
    a = Runner(settings, owner=alive, clock=clock)
    b = Runner(settings, owner=other, clock=clock)
    a.store.announce(alive, clock())
    b.store.announce(other, clock())
    assert tenants_of(a.once(drain=False)) == shares[alive]
    assert tenants_of(b.once(drain=False)) == shares[other]
    assert unsent(pg_url) == 0
    wave = generated(40, tenants=tuple(names), hours_ago=0.5, seed=11, spacing_seconds=1.0)
    insert_legs(a.engine, wave)
    return a, b, shares, names


def test_a_peer_that_falls_silent_hands_over_its_tenants_after_the_presence_window(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    clock = StepClock()
    a, b, shares, names = two_daemons_and_a_wave(tmp_path, pg_url, emulator, clock)
    window = presence_window(a.settings.daemon.interval)  # 5 s: three heartbeats
    try:
        # b is killed on another host here: no heartbeat, no pass. Its lease-less tenants
        # are not late yet.
        before = len(emulator.requests)
        clock.advance(window.total_seconds() - 1)  # a's next tick: b may just be slow
        assert tenants_of(a.once(drain=False)) == shares[OWNERS[0]]
        assert labels_uploaded(emulator, before) <= shares[OWNERS[0]], "b's are left to b"
        clock.advance(2)  # b silent for longer than the window: out of the hash
        third = {r.tenant: r for r in a.once(drain=False)}
        live = a._live_owners(clock())
    finally:
        a.close()
    assert list(live) == [OWNERS[0]]
    assert set(third) == set(names), "its own (now idle) and b's, its own now"
    assert all(third[n].outcome == "ok" for n in shares[OWNERS[1]]), list(third.values())
    assert labels_uploaded(emulator, before) & shares[OWNERS[1]], "a uploaded b's new calls"
    assert unsent(pg_url) == 0, "every call of the wave delivered"
    ids = sent_ids(emulator)
    assert len(ids) == len(set(ids)), "no call sent twice"
    assert [p.owner for p in presences(pg_url)] == [OWNERS[1]], "a's clean close removed a's row"
    b.close()


def test_a_peer_that_falls_silent_during_a_pass_has_its_tenants_joined_to_that_pass(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    clock = StepClock()
    a, b, shares, names = two_daemons_and_a_wave(tmp_path, pg_url, emulator, clock)
    window = presence_window(a.settings.daemon.interval)
    jumped: list[int] = []

    def upload_takes_a_while(done: int, known: int) -> None:
        # a's first upload of the wave outlasts the presence window; b, killed on another
        # host just as the wave came, has said nothing since.
        if not jumped:
            jumped.append(done)
            clock.advance(window.total_seconds() + 1)

    try:
        b.announce()
        before = len(emulator.requests)
        reports = {r.tenant: r for r in a.once(drain=False, progress=upload_takes_a_while)}
    finally:
        a.close()
    assert jumped, "a uploaded"
    assert set(reports) == set(names), "b's tenants joined a's running pass"
    assert all(r.outcome == "ok" for r in reports.values()), [r.summary() for r in reports.values()]
    assert labels_uploaded(emulator, before) >= shares[OWNERS[1]], "a uploaded b's new calls"
    assert unsent(pg_url) == 0, "every call of the wave delivered in that one pass"
    ids = sent_ids(emulator)
    assert len(ids) == len(set(ids)), "no call sent twice"
    b.close()


def test_a_busy_peer_that_beats_keeps_its_tenants_until_they_lag_three_ticks(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    clock = StepClock()
    a, b, shares, names = two_daemons_and_a_wave(tmp_path, pg_url, emulator, clock)
    daemon = a.settings.daemon
    grace = daemon.interval + daemon.jitter  # 5 s and 3 s
    try:
        before = len(emulator.requests)
        # b's heartbeat goes on; its pass is stuck in a backlog. Its tenants were due at its
        # next tick, an interval after its pass; a helps three whole ticks after that.
        for step in (daemon.interval, *[grace] * (HELP_TICKS - 1), grace - 1):
            clock.advance(step)
            b.announce()
            assert tenants_of(a.once(drain=False)) == shares[OWNERS[0]], "b's are left to b"
        assert labels_uploaded(emulator, before) <= shares[OWNERS[0]]
        clock.advance(2)
        b.announce()
        fourth = {r.tenant: r for r in a.once(drain=False)}
        live = a._live_owners(clock())
    finally:
        a.close()
        b.close()
    assert sorted(live) == OWNERS[:2], "b still beats: lagging is what made a help"
    assert set(fourth) == set(names)
    assert all(fourth[n].outcome == "ok" for n in shares[OWNERS[1]]), list(fourth.values())
    assert unsent(pg_url) == 0, "every call of the wave delivered"
    ids = sent_ids(emulator)
    assert len(ids) == len(set(ids)), "no call sent twice"


def test_a_lease_left_by_a_dead_peer_on_another_host_is_tried_again_at_its_expiry(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:02d}" for i in range(10)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=10)
    interval, lease = settings.daemon.interval, settings.sync.lease_seconds
    clock = StepClock()
    a = Runner(settings, owner=OWNERS[0], clock=clock)
    try:
        # A daemon of another host took t03's lease, then was killed: nobody releases it.
        assert a.store.claim("t03", OWNERS[1], lease, clock()) is not None
        first = {r.tenant: r for r in a.once(drain=False)}
        assert first["t03"].outcome == "busy"
        assert a.lease_retry(first.values(), within=interval) is None, "expires after the tick"
        clock.advance(lease - 2)  # a tick later: the lease expires 2 s before the next one
        late = {r.tenant: r for r in a.once(drain=False)}
        assert late["t03"].outcome == "busy"
        retry = a.lease_retry(late.values(), within=interval)
        assert retry == (["t03"], 2.0)
        clock.advance(retry[1])
        again = a.once(["t03"], drain=False)
    finally:
        a.close()
    assert [(r.tenant, r.outcome, r.sent) for r in again] == [("t03", "ok", 1)]
    assert unsent(pg_url) == 0


def test_a_lease_that_expires_during_a_long_pass_is_tried_again_in_that_pass(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:02d}" for i in range(10)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=40, workers=1)
    lease = settings.sync.lease_seconds
    clock = StepClock()
    a = Runner(settings, owner=OWNERS[0], clock=clock)
    held = due_first(names, {}, OWNERS[0])[0]  # the first a's pass tries
    jumped: list[int] = []

    def upload_takes_a_while(done: int, known: int) -> None:
        if not jumped:  # the next tenant's upload outlasts the dead peer's lease
            jumped.append(done)
            clock.advance(lease + 1)

    try:
        # A daemon of another host took that tenant's lease, then was killed.
        assert a.store.claim(held, OWNERS[1], lease, clock()) is not None
        reports = {r.tenant: r for r in a.once(drain=False, progress=upload_takes_a_while)}
    finally:
        a.close()
    assert jumped, "a uploaded"
    assert reports[held].outcome == "ok", "busy at first, taken once its lease expired"
    assert reports[held].sent >= 1
    assert all(r.outcome == "ok" for r in reports.values()), [r.summary() for r in reports.values()]
    assert unsent(pg_url) == 0, "every call delivered in that one pass"


@pytest.mark.parametrize("url", ["pg_url", "sqlite_url"])
def test_presence_rows_on_each_database(url: str, request: pytest.FixtureRequest) -> None:
    engine = db.make_engine(request.getfixturevalue(url), poolclass=sa.pool.NullPool)
    try:
        db.upgrade(engine)
        store = Store(engine)
        t0 = datetime(2026, 3, 2, 10, 0, 0)
        store.announce("pbx-a:101", t0)
        store.announce("pbx-b:202", t0 + timedelta(seconds=1))
        store.announce("pbx-a:101", t0 + timedelta(seconds=30))  # its next pass
        assert store.presences() == [
            Presence("pbx-a:101", t0, t0 + timedelta(seconds=30)),
            Presence("pbx-b:202", t0 + timedelta(seconds=1), t0 + timedelta(seconds=1)),
        ]
        assert [p.owner for p in store.presences(t0 + timedelta(seconds=2))] == ["pbx-a:101"]
        assert store.forget_presences(t0 + timedelta(seconds=2)) == 1
        store.retire("pbx-a:101")
        store.retire("pbx-a:101")  # twice is harmless
        assert store.presences() == []
    finally:
        engine.dispose()


def test_once_writes_no_presence_and_a_daemon_pass_keeps_its_start(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    settings = tenants_setup(tmp_path, pg_url, emulator, ["a", "b", "c"], calls=6)
    clock = StepClock()
    runner = Runner(settings, owner=OWNERS[0], clock=clock)
    try:
        runner.once()
        assert presences(pg_url) == [], "once and resync are not daemons"
        start = clock()
        runner.once(drain=False)
        clock.advance(5)
        runner.once(drain=False)
        assert presences(pg_url) == [Presence(OWNERS[0], start, clock())]
    finally:
        runner.close()
    assert presences(pg_url) == []


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_status_lists_the_live_daemons_and_their_shares_in_one_more_statement(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = [f"t{i:02d}" for i in range(30)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=30)
    for name in names:
        monkeypatch.setenv(f"RCS_KEY_{name.upper()}", key_of(name))
    now = utcnow()
    engine = db.make_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        store = Store(engine)
        store.announce(OWNERS[0], now - timedelta(seconds=2))
        store.announce(OWNERS[1], now - timedelta(seconds=3))  # the window is 5 s
        store.announce("pbx-gone:7", now - timedelta(hours=1))  # older than the window
        store.announce(f"{socket.gethostname()}:{dead_pid()}", now)  # killed on this host
    finally:
        engine.dispose()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "sync_owner" in statement:
            statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        assert main(["--config", str(settings.path), "status", "--json"]) == 0
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    shown = json.loads(capsys.readouterr().out)
    assert len(statements) == 1, statements
    assert len(shown["tenants"]) == 30
    shares = Counter(preferred_owner(n, OWNERS[:2]) for n in names)
    by_owner = {p["owner"]: p for p in shown["processes"]}
    assert set(by_owner) == set(OWNERS[:2]), "gone and dead processes are not listed"
    for owner in OWNERS[:2]:
        assert by_owner[owner]["preferred_tenants"] == shares[owner]
    assert 1 <= by_owner[OWNERS[0]]["seen_seconds_ago"] <= 2
    assert 3 <= by_owner[OWNERS[1]]["seen_seconds_ago"] <= 4
    assert main(["--config", str(settings.path), "status"]) == 0
    text = capsys.readouterr().out
    assert "2 daemon(s)" in text
    assert f"{OWNERS[0]}" in text and f"preferred for {shares[OWNERS[0]]} tenants" in text
    assert "pbx-gone" not in text


def test_three_daemons_split_the_customer_maps_and_a_restart_does_not_redo_them(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    names = [f"t{i:03d}" for i in range(60)]
    settings = tenants_setup(tmp_path, pg_url, emulator, names, calls=60)
    clock = StepClock()
    runners = [Runner(settings, owner=owner, clock=clock) for owner in OWNERS]
    try:
        for runner in runners:
            runner.store.announce(runner.owner, clock())
        maps = [{m.tenant for m in r.refresh_customers(shared=True)} for r in runners]
        clock.advance(60)  # a daemon restarted a minute later: nothing is due yet
        again = runners[0].refresh_customers(shared=True)
        clock.advance(settings.daemon.customers_interval)
        for runner in runners:  # their sync passes went on meanwhile
            runner.store.announce(runner.owner, clock())
        later = {m.tenant for m in runners[0].refresh_customers(shared=True)}
    finally:
        for runner in runners:
            runner.close()
    shares = share_of(names, OWNERS)
    assert maps == [shares[o] for o in OWNERS], "each daemon refreshed its own share"
    assert again == []
    assert later == shares[OWNERS[0]], "its own, due again; the peers' are not overdue yet"
