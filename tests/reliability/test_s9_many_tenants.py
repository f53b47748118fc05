"""Scenario 9: three processes share many tenants from a directory table; kill -9 of one.

Tenants come from a directory table, each with its own key on the emulator. Three
``retailcrm-sync run`` processes share them (each starts on the tenants it is preferred for;
the leases guard every cycle): each uploads for some of them. Calls arrive in waves; one
process is killed with SIGKILL in the middle of a wave. Its tenants must be served again within
``lease_seconds`` + interval (on this host a dead ``host:pid`` owner is taken over at once;
another host waits for the lease to expire), every call reaches the CRM, and ``status --json``
names no dead owner afterwards. Run twice: the victim on this host, and under a host name of
its own (``unshare --uts``), where only its silent heartbeat and its leases' expiry tell.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import db
from sync.calls.legs import Leg
from sync.commands.common import read_settings
from sync.emulator import Emulator
from tests.engine_fixtures import expected_payloads, generated, write_config
from tests.reliability.common import (
    Daemon,
    append_legs,
    cli_env,
    delivered,
    figure,
    load_cdr,
    no_traceback,
    query,
    sized,
    split_calls,
    status_json,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TENANTS = sized(300, 60)
CALLS = sized(6_000, 1_200)
WAVES = 6
LEASE = 20
INTERVAL = 1


def key_of(name: str) -> str:
    return f"s9-{name}-0123456789abcdef"


def directory(url: str, names: list[str], crm: str) -> None:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table enterprises (number text, url text, key text)"))
            conn.execute(
                sa.text("insert into enterprises values (:n, :u, :k)"),
                [{"n": n, "u": crm, "k": key_of(n)} for n in names],
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("victim_host", [None, "s9-other-host"], ids=["same-host", "other-host"])
def test_three_processes_share_the_tenants_and_survive_a_kill_9(
    tmp_path: Path, pg_url: str, emulator: Emulator, victim_host: str | None
) -> None:
    names = [f"ent{i:04d}" for i in range(TENANTS)]
    emulator.require_module = False
    emulator.latency = 0.02
    for name in names:
        emulator.add_key(key_of(name), label=name)
    directory(pg_url, names, emulator.base_url)
    legs = generated(CALLS, seed=9, tenants=tuple(names), spacing_seconds=1.0)
    first, *waves = split_calls(legs, [0.4] + [0.6 / WAVES] * WAVES)
    load_cdr(pg_url, first)
    extra = f"""
[tenants_directory]
url = "{pg_url}"
query = "select number as name, number as match, url, key as api_key from enterprises"
[daemon]
interval = {INTERVAL}
jitter = 0
workers = 4
customers_interval = 600
stop_timeout = 15
"""
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        tenants=[],
        source={"tenant_column": "accountcode"},
        sync={"lease_seconds": LEASE, "upload_budget_seconds": 5},
        extra=extra,
    )
    expected = expected_payloads(read_settings(path), legs)
    started = datetime.now(UTC).replace(tzinfo=None)
    daemons = [
        Daemon(
            path, tmp_path / f"daemon-{i}.err", env=cli_env(), host=victim_host if i == 0 else None
        )
        for i in range(3)
    ]
    victim, survivors = daemons[0], daemons[1:]
    takeover = 0.0
    try:
        first_ids = set(expected_payloads(read_settings(path), first))
        wait_for(
            lambda: first_ids <= delivered(emulator),
            timeout=120 + len(first_ids) / 50,
            what="the first calls",
            daemons=daemons,
            every=0.5,
        )
        owners = {r.owner for r in query(pg_url, UPLOADERS, since=started)}
        for index, wave in enumerate(waves):
            append_legs(pg_url, wave)
            if index == WAVES // 2:
                victim.proc.kill()  # SIGKILL: leases, 'sending' calls and all left behind
                victim.proc.wait()
                killed = time.monotonic()
                want = wave_ids(path, wave)

                def arrived(wanted: set[str] = want) -> bool:
                    return wanted <= delivered(emulator)

                wait_for(
                    arrived,
                    timeout=LEASE + INTERVAL + 60,
                    what="the killed process's share of a wave",
                    daemons=survivors,
                    every=0.2,
                )
                takeover = time.monotonic() - killed
            time.sleep(0.5)
        wait_for(
            lambda: set(expected) <= delivered(emulator),
            timeout=120 + len(expected) / 50,
            what="every call in the CRM",
            daemons=survivors,
            every=0.5,
        )
        shown = status_json(path, tmp_path / "status", env=cli_env())
        codes = [d.stop() for d in survivors]
    finally:
        for d in daemons:
            d.__exit__()
    dead_owner = f":{victim.proc.pid}"
    figure(
        f"9 three processes, many tenants, victim on {'another' if victim_host else 'this'} host",
        tenants=TENANTS,
        calls=len(expected),
        processes_that_uploaded_before_the_kill=len(owners),
        takeover_seconds=round(takeover, 1),
    )
    assert codes == [0, 0]
    for d in survivors:
        no_traceback(d.stderr(), d.stderr_path.name)
    assert len(owners) == 3, f"every process worked some tenants: {owners}"
    assert takeover <= LEASE + INTERVAL + 30
    assert set(shown) == set(names)
    assert not any((t["owner"] or "").endswith(dead_owner) for t in shown.values())
    assert all(t["pending"] == t["failed"] == t["dead"] == 0 for t in shown.values())


UPLOADERS = (
    "SELECT DISTINCT owner FROM sync_run WHERE kind = 'sync' AND sent > 0 AND started_at >= :since"
)


def wave_ids(path: Path, wave: list[Leg]) -> set[str]:
    return set(expected_payloads(read_settings(path), wave))
