"""Click-to-call latency and ``serve``'s memory (issue #12).

A real ``retailcrm-sync serve`` process, the AMI emulator in a process of its own (so the
load generator's threads do not delay its reads), the CRM emulator in this one: latency is
from sending ``/make-call`` to the Originate arriving at the AMI emulator (``perf_counter`` is
CLOCK_MONOTONIC, one clock for every process of the machine), over 1 000 clicks with 20 in
flight; RSS of the serve process idle and after 10 000 clicks.
"""

from __future__ import annotations

import gc
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from bench.common import KEY, ROOT, scratch_database
from sync import config, db
from sync.crm.factory import one_off_client
from sync.crm.module import register_tenant
from sync.emulator import Emulator
from sync.engine.store import Store
from sync.pbx_emulator import PbxEmulator
from tests.engine_fixtures import KEY_ENV
from tests.live_fixtures import AMI_ENV, AMI_SECRET, free_port, live_config

EXTENSIONS = [str(e) for e in range(101, 121)]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PbxProcess:
    """The AMI emulator in a child process, asked for its Originate arrival times."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_pbx_main, args=(child,), daemon=True)
        self.process.start()
        self.port: int = self.conn.recv()

    @property
    def arrivals(self) -> dict[str, float]:
        self.conn.send("arrivals")
        arrivals: dict[str, float] = self.conn.recv()
        return arrivals

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(30)


def _pbx_main(conn: Any) -> None:
    with PbxEmulator(secret=AMI_SECRET) as pbx:
        conn.send(pbx.port)
        while (command := conn.recv()) != "stop":
            if command == "arrivals":
                conn.send(pbx.arrivals)


def _clicks(
    base: str, client_id: str, first: int, count: int, concurrency: int, pbx: PbxProcess
) -> list[float]:
    """Send ``count`` distinct clicks; returns each click's request→Originate latency (ms).

    A bare keep-alive ``http.client`` connection per thread: the load generator's own cost
    (and its threads' wait for the GIL) is kept out of the figure as far as possible.
    """
    host, port = base.removeprefix("http://").split(":")
    connections = threading.local()

    def one(i: int) -> tuple[str, float]:
        if not hasattr(connections, "conn"):
            connections.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        query = urlencode(
            {
                "clientId": client_id,
                "code": ext,
                "userId": str(11 + EXTENSIONS.index(ext)),
                "phone": f"+375291{first + i:06d}",
            }
        )
        began = time.perf_counter()
        connections.conn.request("GET", f"/make-call?{query}")
        answer = connections.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"click answered {answer.status}: {body!r}")
        return json.loads(body)["callExternalId"], began

    # The load generator's own garbage collections would pause its threads mid-request and
    # show up as click latency: none during the measurement.
    gc.collect()
    gc.disable()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            sent = list(pool.map(one, range(count)))
    finally:
        gc.enable()
    arrived = pbx.arrivals
    return [(arrived[action_id] - began) * 1000 for action_id, began in sent]


def measure(workdir: Path, clicks: int = 1000, rss_clicks: int = 10_000) -> dict[str, Any]:
    pbx = PbxProcess()
    with scratch_database() as url, Emulator(api_key=KEY) as crm:
        for ext in EXTENSIONS:
            crm.add_user(11 + EXTENSIONS.index(ext), f"User {ext}")
        port = free_port()
        path = live_config(workdir, crm, port=port, ami_port=pbx.port)
        text = path.read_text().replace(
            f'url = "sqlite:///{workdir / "sync.db"}"', f'url = "{url}"'
        )
        text = text.replace('"101" = 11\n"102" = 12\n', "".join(
            f'"{e}" = {11 + i}\n' for i, e in enumerate(EXTENSIONS)))  # fmt: skip
        path.write_text(text)
        env = {**os.environ, KEY_ENV: KEY, AMI_ENV: AMI_SECRET, "PYTHONPATH": str(ROOT)}
        settings = config.load(path, env)
        engine = db.make_engine(settings.database.url)
        store = Store(engine)
        store.ensure_tenants(["shop"])
        with one_off_client(settings, settings.tenants[0]) as client:
            register_tenant(store, settings.tenants[0], client, settings.serve)
        state = store.tenant("shop")
        assert state is not None and state.client_id
        engine.dispose()
        cmd = [sys.executable, "-m", "sync", "--config", str(path), "--log-level", "WARNING"]
        proc = subprocess.Popen([*cmd, "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("serve did not come up")
                time.sleep(0.1)
            _clicks(base, state.client_id, 0, 100, 20, pbx)  # warm-up
            time.sleep(2)
            rss_idle = _rss_mb(proc.pid)
            cpu_before = _cpu_seconds(proc.pid)
            latencies = _clicks(base, state.client_id, 1000, clicks, 20, pbx)
            cpu_per_click = (_cpu_seconds(proc.pid) - cpu_before) / clicks * 1000
            _clicks(base, state.client_id, 100_000, rss_clicks - clicks, 20, pbx)
            time.sleep(2)
            rss_after = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            code = proc.wait(60)
            if proc.stderr:
                proc.stderr.close()
            pbx.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "click_p50_ms": round(statistics.median(latencies), 2),
        "click_p99_ms": round(quantiles[98], 2),
        "click_max_ms": round(max(latencies), 2),
        "serve_cpu_ms_per_click": round(cpu_per_click, 2),
        "clicks": clicks,
        "click_concurrency": 20,
        "serve_rss_idle_mb": round(rss_idle, 1),
        "serve_rss_after_clicks_mb": round(rss_after, 1),
        "serve_rss_clicks": rss_clicks,
        "serve_rss_growth": round(rss_after / rss_idle - 1, 3),
        "serve_exit_code": code,
    }
