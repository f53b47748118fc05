"""What every benchmark needs: a scratch PostgreSQL database, a config, a timed subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync import db

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789abcdef"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated PostgreSQL database of its own, dropped afterwards."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"rcs_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str


def run_cli(config: Path, *args: str, env_key: str) -> Run:
    """Run ``retailcrm-sync`` in a child process, sampling its peak RSS (VmHWM)."""
    env = {**os.environ, env_key: KEY, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sync", "--config", str(config), "--log-level", "WARNING", *args]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mb(proc.pid))
        time.sleep(0.2)
    stderr = proc.stderr.read() if proc.stderr else ""
    return Run(time.monotonic() - began, peak, proc.returncode, stderr)


def _hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
