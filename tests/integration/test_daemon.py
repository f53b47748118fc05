"""`retailcrm-sync run` as a real process against PostgreSQL and the emulator.

What an operator relies on: calls written while the daemon runs arrive; SIGTERM in the middle
of an upload lets the batch in flight finish and exits 0 within stop_timeout, leaving nothing
`sending` and no lease held; a database that drops every connection is recovered on the next
tick; systemd hears READY, STATUS, WATCHDOG and STOPPING on its notify socket; its presence row
(``sync_owner``) is there while it runs and gone after a clean stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import db
from sync.calls.legs import Leg
from sync.emulator import Emulator
from sync.engine.store import Store
from sync.sources.cdr_table import insert_legs
from tests.crm_fixtures import API_KEY, emulator  # noqa: F401
from tests.engine_fixtures import (
    KEY_ENV,
    expected_payloads,
    fill_cdr,
    generated,
    load,
    write_config,
)
from tests.polling import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 8
DAEMON = f"""
[daemon]
interval = 1
jitter = 0
customers_interval = 10
stop_timeout = {STOP_TIMEOUT}
"""


def connections(admin: sa.Engine, database: str) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).scalar_one()
        )


class NotifySocket:
    """A stand-in for systemd's notify socket: collects every datagram sent to it."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="rcs-")  # AF_UNIX paths must stay short
        self.path = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def assignments(self) -> list[str]:
        return [line for message in list(self.messages) for line in message.split("\n")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def daemon(path: Path, tmp_path: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    environ = {**os.environ, KEY_ENV: API_KEY, "PYTHONPATH": str(ROOT), **env}
    with open(tmp_path / "daemon.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(path), "run"],
            env=environ,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def uploaded(emu: Emulator) -> set[str]:
    return {str(c["externalId"]) for c in emu.calls}


def counts(url: str) -> dict[str, int]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return Store(engine).status_counts().get("shop", {})
    finally:
        engine.dispose()


def presences(url: str) -> list[str]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return [p.owner for p in Store(engine).presences()]
    finally:
        engine.dispose()


def config(tmp_path: Path, url: str, emu: Emulator, **sync: int) -> Path:
    return write_config(tmp_path, db_url=url, crm_url=emu.base_url, sync=sync, extra=DAEMON)


def add_calls(url: str, n: int, seed: int, hours_ago: float) -> list[Leg]:
    legs = generated(n, seed=seed, hours_ago=hours_ago)
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        insert_legs(engine, legs)
    finally:
        engine.dispose()
    return legs


def test_calls_added_while_running_arrive_and_systemd_is_told(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,  # noqa: F811
) -> None:
    emulator.register_module()
    first = generated(20, seed=3)
    fill_cdr(pg_url, first)
    path = config(tmp_path, pg_url, emulator)
    settings = load(path, {KEY_ENV: API_KEY})
    notify = NotifySocket()
    try:
        with daemon(path, tmp_path, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="2000000") as proc:
            want = set(expected_payloads(settings, first))
            wait_for(lambda: want <= uploaded(emulator), "the first calls")
            assert presences(pg_url) == [f"{socket.gethostname()}:{proc.pid}"], "it says so"
            later = add_calls(pg_url, 15, seed=4, hours_ago=1)
            want_later = set(expected_payloads(settings, later))
            assert want_later and not want_later & want
            wait_for(lambda: want_later <= uploaded(emulator), "calls added later")
            wait_for(lambda: "WATCHDOG=1" in notify.assignments(), "a watchdog ping")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=STOP_TIMEOUT + 2) == 0
        wait_for(lambda: "STOPPING=1" in notify.assignments(), "STOPPING=1", deadline=2)
        sent = notify.assignments()
        assert presences(pg_url) == [], "a clean stop leaves no presence row behind"
    finally:
        notify.close()
    assert sent[0] == "READY=1"
    assert any(a.startswith("STATUS=last cycle") and "shop ok" in a for a in sent)
    assert sent.index("READY=1") < sent.index("WATCHDOG=1") < sent.index("STOPPING=1")
    assert len(emulator.calls) == len(want | want_later), "nothing uploaded twice"
    log = (tmp_path / "daemon.err").read_text()
    assert "daemon stopped" in log and "Traceback" not in log
    assert API_KEY not in log


def test_sigterm_during_an_upload_finishes_the_batch_and_exits_0(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,  # noqa: F811
) -> None:
    emulator.register_module()
    emulator.latency = 1.5
    fill_cdr(pg_url, generated(60, seed=5))
    path = config(tmp_path, pg_url, emulator, batch_size=5, max_in_flight=2)
    with daemon(path, tmp_path) as proc:
        wait_for(lambda: counts(pg_url).get("sending", 0) > 0, "a batch in flight")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_TIMEOUT)  # the contract: gone within stop_timeout
    assert code == 0
    after = counts(pg_url)
    assert after["sending"] == 0
    assert after["sent"] > 0, "the batches in flight were allowed to finish"
    assert after["pending"] > 0, "no new batch was claimed after SIGTERM"
    engine = db.make_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        state = Store(engine).tenant("shop")
    finally:
        engine.dispose()
    assert state is not None and state.lease_owner is None, "the lease was released"


def test_a_killed_database_connection_recovers_on_the_next_tick(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,  # noqa: F811
) -> None:
    emulator.register_module()
    first = generated(10, seed=6)
    fill_cdr(pg_url, first)
    path = config(tmp_path, pg_url, emulator)
    settings = load(path, {KEY_ENV: API_KEY})
    name = str(sa.engine.make_url(pg_url).database)
    admin = sa.create_engine(
        sa.engine.make_url(pg_url).set(database="postgres"), poolclass=sa.pool.NullPool
    )
    try:
        with daemon(path, tmp_path) as proc:
            want = set(expected_payloads(settings, first))
            wait_for(lambda: want <= uploaded(emulator), "the first calls")
            # Kill every connection of the daemon, again and again for a few ticks, so that
            # some kills land in the middle of a cycle's transaction.
            killed = 0
            for _ in range(10):
                with admin.begin() as conn:
                    killed += conn.execute(
                        sa.text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": name},
                    ).scalar_one()
                # The next tick connects again: kill that connection too.
                wait_for(lambda: connections(admin, name) > 0, "a new connection")
            assert killed, "the daemon held connections to kill"
            later = add_calls(pg_url, 10, seed=7, hours_ago=1)
            want_later = set(expected_payloads(settings, later))
            wait_for(lambda: want_later <= uploaded(emulator), "calls after the kill")
            assert proc.poll() is None, "the daemon survived"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=STOP_TIMEOUT + 2) == 0
    finally:
        admin.dispose()
