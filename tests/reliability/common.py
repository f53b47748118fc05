"""What the reliability scenarios share: the size switch, processes, waiting and counting.

Every scenario runs the product as an operator does — ``retailcrm-sync once`` or ``run`` in a
child process, configured by a TOML file — against a real PostgreSQL database and the RetailCRM
emulator served over HTTP from the test process. Each child's stderr goes to a file under the
test's ``tmp_path``, which the conftest registers, so the final secrets scenario can read
every log, stderr capture and ``status`` output the suite produced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from sync import config, db
from sync.calls.legs import Leg
from sync.emulator import Emulator, RecordedRequest
from sync.engine.store import Store
from sync.sources.cdr_table import copy_legs, create_cdr_table, insert_legs
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, expected_payloads, fill_cdr, write_config

ROOT = Path(__file__).resolve().parents[2]
UPLOAD = "/api/v5/telephony/calls/upload"
STATUSES = ("pending", "sending", "sent", "failed", "dead", "skipped")

SIZE = (os.environ.get("RELIABILITY_SIZE") or "full").strip().lower()
"""``full``: what issue 7 asks for. ``ci``: the reduced run CI can afford (~6 minutes)."""

T = TypeVar("T")


def sized(full: T, ci: T) -> T:
    return full if SIZE == "full" else ci


# -- figures ------------------------------------------------------------------------------------

FIGURES: list[tuple[str, dict[str, Any]]] = []
"""(scenario, figures) in the order measured; printed in pytest's terminal summary."""


def figure(scenario: str, **values: Any) -> None:
    FIGURES.append((scenario, values))
    text = " ".join(f"{k}={v}" for k, v in values.items())
    print(f"[reliability:{SIZE}] {scenario}: {text}", flush=True)


# -- what the secrets scenario reads --------------------------------------------------------------


@dataclass
class Artifacts:
    """Folders whose files must never contain a secret, and the secrets to look for."""

    folders: list[Path] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=lambda: {"default test key": API_KEY})

    def watch(self, folder: Path) -> None:
        if folder not in self.folders:
            self.folders.append(folder)

    def secret(self, label: str, value: str) -> None:
        self.secrets[label] = value

    def files(self) -> Iterator[Path]:
        for folder in self.folders:
            if folder.exists():
                yield from (p for p in sorted(folder.rglob("*")) if p.is_file())


ARTIFACTS = Artifacts()


# -- processes ----------------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, KEY_ENV: API_KEY, "PYTHONPATH": str(ROOT), **extra}


def command(path: Path, *args: str, level: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "sync", "--config", str(path)]
    if level:
        cmd += ["--log-level", level]
    return [*cmd, *args]


def spawn(
    path: Path,
    *args: str,
    stderr: Path,
    env: dict[str, str] | None = None,
    level: str | None = None,
    host: str | None = None,
) -> subprocess.Popen[bytes]:
    """A ``retailcrm-sync`` child whose stderr is kept in ``stderr``; with ``host``, under
    that host name in a UTS namespace of its own (``unshare --uts``, root): its ``host:pid``
    then stands for a process on another host, whose death this host cannot see."""
    prefix = []
    if host is not None:
        prefix = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh"]
    with open(stderr, "wb") as err:
        return subprocess.Popen(
            prefix + command(path, *args, level=level),
            env=env or cli_env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str


def run_cli(
    path: Path,
    *args: str,
    keep: Path,
    env: dict[str, str] | None = None,
    level: str | None = None,
    timeout: float = 300,
) -> Done:
    """Run a command to its end; stdout and stderr are kept as ``keep``.out / ``keep``.err."""
    proc = subprocess.run(
        command(path, *args, level=level),
        env=env or cli_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    keep.with_suffix(".out").write_text(out, encoding="utf-8")
    keep.with_suffix(".err").write_text(err, encoding="utf-8")
    return Done(proc.returncode, out, err)


def status_json(
    path: Path, keep: Path, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """``status --json`` by tenant name (the table form is run and kept as well)."""
    done = run_cli(path, "status", "--json", keep=keep, env=env)
    assert done.code == 0, done.stderr[-2000:]
    run_cli(path, "status", keep=keep.with_name(keep.name + "-table"), env=env)
    return {t["name"]: t for t in json.loads(done.stdout)["tenants"]}


def no_traceback(text: str, where: str) -> None:
    assert "Traceback" not in text, f"{where} printed a traceback:\n{text[-3000:]}"


class Daemon:
    """``retailcrm-sync run`` as a child process; killed on exit if still running."""

    def __init__(
        self,
        path: Path,
        stderr: Path,
        env: dict[str, str] | None = None,
        level: str | None = None,
        host: str | None = None,
    ) -> None:
        self.path = path
        self.stderr_path = stderr
        self.proc = spawn(path, "run", stderr=stderr, env=env, level=level, host=host)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (an orderly stop is 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    daemons: Sequence[Daemon] = (),
    every: float = 0.1,
) -> float:
    """Poll until ``condition()``; returns the seconds waited. A daemon that dies fails it."""
    began = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - began
        for d in daemons:
            if not d.alive():
                raise AssertionError(
                    f"the daemon exited ({d.proc.returncode}) while waiting for {what}:\n"
                    + d.stderr()[-3000:]
                )
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# -- databases ----------------------------------------------------------------------------------


def load_cdr(url: str, legs: Iterable[Leg], **table: Any) -> int:
    """A CDR table filled with ``legs``: COPY + VACUUM ANALYZE on PostgreSQL, inserts elsewhere."""
    if not url.startswith("postgresql"):
        return fill_cdr(url, legs, **table)
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    table.setdefault("recordingfile", True)
    try:
        create_cdr_table(engine, **table)
        return copy_legs(engine, legs, vacuum=True)
    finally:
        engine.dispose()


def daemon_section(*, stop_timeout: int = 15, customers_interval: int = 60) -> str:
    """The ``[daemon]`` table of the scenarios: a tick a second, no jitter."""
    return (
        f"[daemon]\ninterval = 1\njitter = 0\ncustomers_interval = {customers_interval}\n"
        f"stop_timeout = {stop_timeout}\n"
    )


def prepare_scenario(
    tmp_path: Path,
    pg_url: str,
    emulator: Emulator,
    legs: Sequence[Leg],
    *,
    latency: float,
    sync: dict[str, Any],
    daemon: str = "",
    loaded: Sequence[Leg] | None = None,
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """How most scenarios start: the module registered, the CRM's latency set, ``loaded`` (all
    of ``legs`` unless given) in the call log, a config. Returns the config and the payloads
    every call of ``legs`` must end up with in the CRM."""
    emulator.register_module()
    emulator.latency = latency
    load_cdr(pg_url, legs if loaded is None else loaded)
    path = write_config(tmp_path, db_url=pg_url, crm_url=emulator.base_url, sync=sync, extra=daemon)
    return path, expected_payloads(config.load(path, {KEY_ENV: API_KEY}), legs)


def split_calls(legs: Sequence[Leg], parts: Sequence[float]) -> list[list[Leg]]:
    """``legs`` cut at call boundaries into portions of the given shares of the calls."""
    calls: dict[str, list[Leg]] = {}
    for leg in legs:
        calls.setdefault(leg.linkedid or leg.uniqueid or "", []).append(leg)
    groups = list(calls.values())
    portions: list[list[Leg]] = []
    start = 0
    for i, share in enumerate(parts):
        end = len(groups) if i == len(parts) - 1 else start + round(share * len(groups))
        portions.append([leg for group in groups[start:end] for leg in group])
        start = end
    return portions


def append_legs(url: str, legs: Iterable[Leg]) -> int:
    """More legs into the existing ``cdr`` table, as the PBX writes them."""
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        return insert_legs(engine, legs)
    finally:
        engine.dispose()


def counts(url: str, tenant: str = "shop") -> dict[str, int]:
    """Calls per state in ``call_sync`` (every state present, 0 when none)."""
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        got = Store(engine).status_counts().get(tenant, {})
    finally:
        engine.dispose()
    return {s: int(got.get(s, 0)) for s in STATUSES}


def query(url: str, sql: str, **params: Any) -> list[sa.Row[Any]]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


# -- the emulator -------------------------------------------------------------------------------


def successful_uploads(emu: Emulator) -> list[RecordedRequest]:
    """Upload requests the CRM answered 2xx, in arrival order."""
    done = [r for r in emu.requests if r.path == UPLOAD and r.status is not None and r.status < 300]
    return sorted(done, key=lambda r: r.at)


def ids_of(request: RecordedRequest) -> list[str]:
    return [str(c["externalId"]) for c in request.params.get("calls", [])]


def repeats(emu: Emulator) -> tuple[int, int]:
    """(successful upload requests that repeated an externalId an earlier one carried,
    externalIds carried by more than one successful upload)."""
    seen: set[str] = set()
    requests = 0
    for request in successful_uploads(emu):
        ids = ids_of(request)
        requests += any(i in seen for i in ids)
        seen.update(ids)
    per_id = Counter(i for r in successful_uploads(emu) for i in ids_of(r))
    return requests, sum(1 for n in per_id.values() if n > 1)


def stored(emu: Emulator) -> dict[str, dict[str, Any]]:
    """The CRM's calls by externalId; fails if one is stored twice."""
    calls = emu.calls
    by_id = {str(c["externalId"]): c for c in calls}
    assert len(by_id) == len(calls), "the CRM holds an externalId twice"
    return by_id


def delivered(emu: Emulator) -> set[str]:
    return {str(c["externalId"]) for c in emu.calls}
