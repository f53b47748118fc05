"""Report over a million calls in PostgreSQL (issue 14): time as a ratio to one full scan of
``call_sync`` in the same run, peak RSS of the ``report`` process, size of the HTML page.

The rows are made by ``generate_series`` in SQL (no Python inserts): 29 days of calls, 5 %
skipped, 200 000 phones, 20 extensions, 50 000 customers and 20 000 orders. The scan baseline
streams every row's ``started_at`` and ``payload`` to Python, the least any client-side report
must do. Run alone: ``python -m bench report`` (BENCH_REPORT_N sets the number of calls).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import run_cli, scratch_database
from sync import db
from tests.engine_fixtures import KEY_ENV, write_config

FILL_CALLS = """
INSERT INTO call_sync (tenant, external_id, status, started_at, payload, attempts, skip_reason)
SELECT 'shop', 'b' || g,
  CASE WHEN g % 20 = 0 THEN 'skipped' ELSE 'sent' END,
  timestamp '2026-10-01 00:00:00' + g * (interval '2505600 seconds' / :n),
  CASE WHEN g % 20 = 0 THEN NULL ELSE jsonb_build_object(
    'type', CASE WHEN g % 4 = 0 THEN 'out' ELSE 'in' END,
    'phone', '+37529' || lpad(((g * 2654435761) % 200000)::text, 7, '0'),
    'code', CASE WHEN g % 50 = 1 THEN NULL ELSE (101 + (g * 7) % 20)::text END,
    'result', (ARRAY['answered','answered','answered','no answer','answered','busy',
                     'answered','answered','failed','answered'])[1 + (g * 7) % 10],
    'duration', (g * 13) % 400, 'durationWaiting', (g * 17) % 60,
    'externalId', 'b' || g) END,
  1,
  CASE WHEN g % 20 = 0 THEN 'internal' END
FROM generate_series(1, :n) AS g
"""
FILL_CUSTOMERS = """
INSERT INTO retailcrm_customers (phone, retailcrm_customer_id, enterprise_number)
SELECT '+37529' || lpad((c * 4)::text, 7, '0'), c, 'shop' FROM generate_series(1, 50000) AS c
"""
FILL_ORDERS = """
INSERT INTO retailcrm_orders (tenant, order_id, customer_id, created_at, status, status_group,
  total, currency)
SELECT 'shop', o, 1 + (o * 7919) % 50000,
  timestamp '2026-10-01 00:00:00' + o * interval '125 seconds',
  CASE WHEN o % 10 = 0 THEN 'cancel-other' ELSE 'new' END,
  CASE WHEN o % 10 = 0 THEN 'cancel' ELSE 'new' END, 20 + o % 300, 'BYN'
FROM generate_series(1, 20000) AS o
"""


def fill(url: str, n: int) -> float:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    began = time.monotonic()
    with engine.begin() as conn:
        conn.execute(sa.text(FILL_CALLS), {"n": n})
        conn.execute(sa.text(FILL_CUSTOMERS))
        conn.execute(sa.text(FILL_ORDERS))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE call_sync"))
        conn.execute(sa.text("ANALYZE retailcrm_orders"))
        conn.execute(sa.text("ANALYZE retailcrm_customers"))
    engine.dispose()
    return time.monotonic() - began


def full_scan(url: str) -> float:
    """Seconds to stream every row (``started_at``, decoded ``payload``) of call_sync."""
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    began = time.monotonic()
    rows = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(
            sa.text("SELECT started_at, payload FROM call_sync WHERE tenant = 'shop'")
        )
        for _ in result:
            rows += 1
    engine.dispose()
    return time.monotonic() - began


def measure(n: int, workdir: Path) -> dict[str, Any]:
    with scratch_database() as url:
        fill_seconds = fill(url, n)
        path = write_config(
            workdir,
            db_url=url,
            crm_url="http://127.0.0.1:9",
            tenants=({"name": "shop", "timezone": "Europe/Minsk"},),
        )
        scan = full_scan(url)
        page = workdir / "report.html"
        run = run_cli(
            path,
            "report",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "html",
            "--output",
            str(page),
            env_key=KEY_ENV,
        )
        if run.returncode != 0:
            raise RuntimeError(f"report failed: {run.stderr[-500:]}")
        scan_again = full_scan(url)
    scan_seconds = min(scan, scan_again)
    return {
        "report_calls": n,
        "report_fill_seconds": round(fill_seconds, 1),
        "report_scan_seconds": round(scan_seconds, 2),
        "report_seconds": round(run.seconds, 2),
        "report_scan_ratio": round(run.seconds / scan_seconds, 2),
        "report_rss_mb": round(run.peak_rss_mb, 1),
        "report_html_kb": round(page.stat().st_size / 1024, 1),
    }
