"""Scenario 5: the PostgreSQL server restarts mid-cycle; the daemon survives and finishes.

A daemon is uploading a backlog (slow CRM answers keep it mid-upload) when the real server is
restarted with ``pg_ctlcluster … restart``: every connection dies, writes in flight fail, the
lease cannot be released. The daemon must keep running, take the tenant again on a later tick
(its own lease), resend what was left ``sending`` and deliver every call exactly once.

Restarting the server affects every session on it: run this suite alone (``make
reliability`` runs its tests one after the other).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.emulator import Emulator
from tests.conftest import missing
from tests.engine_fixtures import generated
from tests.reliability.common import (
    Daemon,
    counts,
    daemon_section,
    figure,
    no_traceback,
    prepare_scenario,
    repeats,
    sized,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CALLS = sized(6_000, 2_000)
RESTART_AT = sized((0.25, 0.6), (0.3,))  # restart when this share of the calls is sent
DAEMON = daemon_section()


def cluster() -> list[str]:
    """``pg_ctlcluster`` arguments of the local server, or a skip (a fail in CI)."""
    etc = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not etc.is_dir():
        missing("needs the local PostgreSQL cluster and pg_ctlcluster to restart it")
    versions = sorted((p.name for p in etc.iterdir()), key=lambda v: [int(x) for x in v.split(".")])
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def restart(pg_ctl: list[str], url: str) -> float:
    """Restart the server; returns the seconds until it accepts connections again."""
    began = time.monotonic()
    subprocess.run([*pg_ctl, "restart"], check=True, capture_output=True, timeout=120)

    def ready() -> bool:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return True
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    wait_for(ready, timeout=60, what="PostgreSQL back after the restart", every=0.2)
    return time.monotonic() - began


def sent_or_zero(url: str) -> int:
    try:
        return counts(url)["sent"]
    except sa.exc.OperationalError:  # the server is restarting
        return 0


def test_daemon_survives_a_database_restart_and_finishes(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    pg_ctl = cluster()
    legs = generated(CALLS, seed=13, spacing_seconds=2.0)
    path, expected = prepare_scenario(
        tmp_path,
        pg_url,
        emulator,
        legs,
        latency=0.3,  # 2 in flight: ~7 requests/s, the backlog takes a while
        sync={"max_in_flight": 2, "lease_seconds": 30, "upload_budget_seconds": 10},
        daemon=DAEMON,
    )
    downtime = []
    sending_at_restart = []
    with Daemon(path, tmp_path / "daemon.err") as daemon:
        for share in RESTART_AT:

            def reached(share: float = share) -> bool:
                return sent_or_zero(pg_url) >= share * len(expected)

            wait_for(
                reached,
                timeout=120,
                what=f"{share:.0%} of the calls sent",
                daemons=[daemon],
                every=0.2,
            )
            sending_at_restart.append(counts(pg_url)["sending"])
            downtime.append(round(restart(pg_ctl, pg_url), 1))
        wait_for(
            lambda: sent_or_zero(pg_url) >= len(expected),
            timeout=180,
            what="every call sent after the restart",
            daemons=[daemon],
            every=0.5,
        )
        survived = daemon.alive()
        code = daemon.stop()
        log = daemon.stderr()
    requests, ids = repeats(emulator)
    figure(
        "5 database restart",
        calls=len(expected),
        restarts=len(RESTART_AT),
        restart_seconds=downtime,
        sending_at_restart=sending_at_restart,
        failed_jobs_or_cycles_logged=log.count("job sync failed") + log.count("cycle failed"),
        uploads_repeating_an_id=requests,
        ids_sent_twice=ids,
    )
    assert survived, "the daemon exited"
    assert code == 0
    assert any(n > 0 for n in sending_at_restart), "no restart hit a batch in flight"
    no_traceback(log, "the daemon")
    assert stored(emulator) == expected
    state = counts(pg_url)
    assert state["sent"] == len(expected)
    assert state["pending"] == state["sending"] == state["failed"] == state["dead"] == 0
