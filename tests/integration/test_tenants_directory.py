"""Tenants from a directory table on PostgreSQL, and reloading a running daemon with SIGHUP.

The table is shaped like the hosting plan's ``enterprises``: one row per enterprise, its
RetailCRM address and its API key encrypted with the installation's Fernet key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from sync import db
from sync.calls.legs import Leg
from sync.cli import main
from sync.commands.common import read_settings
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.reload import Reloader
from sync.sources.cdr_table import insert_legs
from tests.engine_fixtures import expected_payloads, fill_cdr, generated, write_config
from tests.polling import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FERNET = Fernet.generate_key()
QUERY = (
    "select enterprise_number as name, enterprise_number as match, crm_url as url, "
    "crm_key as api_key_encrypted, tz as timezone from enterprises where active"
)
TABLE = """
create table enterprises (
    enterprise_number text primary key,
    crm_url text not null,
    crm_key text,
    tz text,
    active boolean not null default true
)
"""


def key_of(name: str) -> str:
    return f"dir-key-{name}-0123456789abcdef"


def token(name: str, fernet_key: bytes = FERNET) -> str:
    return Fernet(fernet_key).encrypt(key_of(name).encode()).decode()


def execute(url: str, sql: str, **params: object) -> None:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def add_row(url: str, name: str, crm_url: str, *, key: str | None = None) -> None:
    execute(
        url,
        "insert into enterprises (enterprise_number, crm_url, crm_key, tz) "
        "values (:n, :u, :k, 'UTC')",
        n=name,
        u=crm_url,
        k=key if key is not None else token(name),
    )


def setup(tmp_path: Path, pg_url: str, emulator: Emulator, file_tenants: list[str]) -> Path:
    emulator.require_module = False
    execute(pg_url, TABLE)
    key_file = tmp_path / "directory.key"
    key_file.write_bytes(FERNET)
    key_file.chmod(0o600)
    extra = f"""
[tenants_directory]
url = "{pg_url}"
query = "{QUERY}"
key_file = "{key_file}"
reload_seconds = 3600
[daemon]
interval = 1
jitter = 0
"""
    return write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        source={"tenant_column": "accountcode"},
        tenants=[{"name": n, "match": n, "api_key_env": f"KEY_{n.upper()}"} for n in file_tenants],
        extra=extra,
    )


def uploaded_by(emulator: Emulator) -> dict[str, set[str]]:
    """externalIds per key label (each tenant has its own key)."""
    found: dict[str, set[str]] = {}
    for request in emulator.requests:
        if request.path.endswith("/calls/upload") and request.status == 200:
            calls = request.params.get("calls") or []
            found.setdefault(request.key_label or "?", set()).update(
                str(c["externalId"]) for c in calls
            )
    return found


def test_directory_rows_add_change_remove_bad_row_and_keys(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("e1", "e2", "e3", "e4"):
        emulator.add_key(key_of(name), label=name)
    path = setup(tmp_path, pg_url, emulator, [])
    monkeypatch.setenv("RETAILCRM_SYNC_CONFIG", str(path))
    add_row(pg_url, "e1", emulator.base_url)
    add_row(pg_url, "e2", emulator.base_url)
    add_row(pg_url, "bad", "not a url")
    add_row(pg_url, "wrongkey", emulator.base_url, key=token("wrongkey", Fernet.generate_key()))
    legs = generated(40, tenants=("e1", "e2", "e3"), spacing_seconds=5.0)
    fill_cdr(pg_url, legs)

    settings = read_settings(path)
    assert [t.name for t in settings.tenants] == ["e1", "e2"]
    reasons = "\n".join(settings.skipped)
    assert "tenants_directory[row 3 'bad'].url: not a URL" in reasons
    assert "tenants_directory[row 4 'wrongkey'].api_key_encrypted: cannot be decrypted" in reasons
    assert key_of("wrongkey") not in reasons

    assert main(["check"]) == 1  # the two bad rows are check lines of their own
    out = capsys.readouterr().out
    assert "row skipped: " in out and "'bad'].url: not a URL" in out and FERNET.decode() not in out

    assert main(["once"]) == 0
    want = expected_payloads(settings, legs)
    by_key = uploaded_by(emulator)
    calls_of = {n: {i for i, p in want.items() if i in by_key.get(n, set())} for n in ("e1", "e2")}
    assert calls_of["e1"] and calls_of["e2"], "each tenant sent with its decrypted key"

    runner = Runner(settings)
    reloader = Reloader(settings, runner.reload)
    try:
        for tenant in settings.tenants:  # clients are made on first use: make both now
            with runner.clients.use(tenant):
                pass
        assert runner.clients.open_count() == 2
        add_row(pg_url, "e3", emulator.base_url)  # added
        execute(pg_url, "update enterprises set crm_key = :k where enterprise_number = 'e2'",
                k=token("e4"))  # changed: e2 now uses e4's key  # fmt: skip
        execute(pg_url, "update enterprises set active = false where enterprise_number = 'e1'")
        assert reloader.reload("test")
        names = {t.name for t in runner.settings.tenants}
        assert names == {"e2", "e3"}, "e1 removed, e3 added"
        assert runner.settings.tenant("e2").api_key.reveal() == key_of("e4")
        assert runner.clients.open_count() == 1, "the removed tenant's client is closed"
        reports = {r.tenant: r for r in runner.once()}
        assert set(reports) == {"e2", "e3"} and reports["e3"].outcome == "ok"
        assert reports["e3"].sent > 0 and uploaded_by(emulator).get("e3"), (
            "the added tenant's calls went out at the next cycle, with its own key"
        )
    finally:
        runner.close()


@contextmanager
def daemon(path: Path, err: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with open(err, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync", "--config", str(path), "run"],
            env=environ,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def append(url: str, legs: list[Leg]) -> None:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        insert_legs(engine, legs)
    finally:
        engine.dispose()


def test_sighup_takes_a_good_config_and_refuses_a_bad_one(
    tmp_path: Path, pg_url: str, emulator: Emulator
) -> None:
    for name in ("fa", "fc", "d1", "d2"):
        emulator.add_key(key_of(name), label=name)
    path = setup(tmp_path, pg_url, emulator, ["fa"])
    add_row(pg_url, "d1", emulator.base_url)
    env = {"KEY_FA": key_of("fa"), "KEY_FC": key_of("fc")}
    fill_cdr(pg_url, generated(20, tenants=("fa", "d1"), spacing_seconds=5.0, seed=1))
    good = path.read_text()
    err = tmp_path / "daemon.err"

    def log() -> str:
        return err.read_text(errors="replace")

    def arrived(name: str) -> bool:
        return bool(uploaded_by(emulator).get(name))

    with daemon(path, err, env) as proc:
        wait_for(lambda: arrived("fa") and arrived("d1"), deadline=30, what="first tenants")
        # A bad file: refused with one line, the running tenants go on.
        path.write_text(good.replace("[sync]", "[sync]\nbatch_size = 999"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "new configuration refused" in log(), deadline=20, what="the refusal")
        refusals = [line for line in log().splitlines() if "new configuration refused" in line]
        assert len(refusals) == 1 and "sync.batch_size" in refusals[0]
        # A good file with one more [[tenants]], and one more directory row.
        path.write_text(good.replace("[[tenants]]", '[[tenants]]\nname = "fc"\nmatch = "fc"\n'
                        f'api_key_env = "KEY_FC"\nurl = "{emulator.base_url}"\ntimezone = "UTC"\n'
                        "[[tenants]]", 1))  # fmt: skip
        add_row(pg_url, "d2", emulator.base_url)
        append(pg_url, generated(20, tenants=("fc", "d2"), spacing_seconds=5.0, seed=2))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in log(), deadline=20, what="the reload")
        wait_for(lambda: arrived("fc") and arrived("d2"), deadline=30, what="the added tenants")
        assert proc.poll() is None
    text = log()
    assert "Traceback" not in text and "+2 -0" in text
    assert all(key_of(n) not in text for n in ("fa", "fc", "d1", "d2"))
