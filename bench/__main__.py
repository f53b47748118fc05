"""``make bench``: prints a table and writes bench/results.json. Not part of ``make test``.

BENCH_N sets N (default 100 000 calls); BENCH_IDLE_LEGS the idle-poll table (5 000 000 legs);
BENCH_BASELINE the calls of the naive baseline (200); BENCH_REPORT_N the calls of the report
benchmark (1 000 000); BENCH_TENANTS the tenants of the many-tenants part (2 000; see
bench/tenants.py for its other knobs). Each part also runs on its own: ``python -m bench
builder|backfill|idle|report|clicks|popups|tenants`` (or ``make bench BENCH_ONLY=popups``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import backfill, builder, clicks, idle, popups, report, tenants
from sync import logs

RESULTS = Path(__file__).resolve().parent / "results.json"
TARGETS = {
    "backfill_ratio": (">=", 0.9),
    "idle_poll_ms": ("<", 50.0),
    "rss_mb_4n": ("<", 250.0),
    "rss_growth": ("<=", 0.2),
    "builder_legs_per_s": (">=", 50_000),
    "tenants_rss_mb": ("<", 400.0),
    "tenants_delivered_ratio": (">=", 1.0),
    "tenants_share_spread": ("<=", 0.15),
    "tenants_lag_p99_s": ("<=", tenants.INTERVAL + 10),
    "tenants_lag_p99_three_s": ("<=", tenants.INTERVAL + 10),
    "tenants_takeover_s": ("<=", tenants.LEASE + tenants.INTERVAL),
    "report_scan_ratio": ("<=", 3.0),
    "report_rss_mb": ("<", 300.0),
    "report_html_kb": ("<", 300.0),
    "click_p99_ms": ("<", 50.0),
    "serve_rss_growth": ("<", 0.1),
    "popup_p99_ms": ("<", 100.0),
}


def main(parts: list[str]) -> int:
    logs.setup("WARNING", None, ())
    n = int(os.environ.get("BENCH_N", "100000"))
    idle_legs = int(os.environ.get("BENCH_IDLE_LEGS", "5000000"))
    sample = int(os.environ.get("BENCH_BASELINE", "200"))
    report_n = int(os.environ.get("BENCH_REPORT_N", "1000000"))
    parts = parts or ["builder", "backfill", "idle", "report", "clicks", "popups", "tenants"]
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "builder" in parts:
            results.update(builder.measure())
        if "backfill" in parts:
            at_n = backfill.backfill(n, _dir(work, "n"))
            at_4n = backfill.backfill(4 * n, _dir(work, "4n"))
            base = backfill.baseline(sample, _dir(work, "baseline"))
            results.update(
                n=n,
                backfill_calls_per_s=at_n["calls_per_s"],
                ceiling_calls_per_s=backfill.CEILING,
                backfill_ratio=round(at_n["calls_per_s"] / backfill.CEILING, 3),
                backfill_total_seconds=at_n["total_seconds"],
                backfill_4n_calls_per_s=at_4n["calls_per_s"],
                baseline_calls_per_s=base["calls_per_s"],
                speedup_vs_baseline=round(at_n["calls_per_s"] / base["calls_per_s"], 1),
                rss_mb_n=at_n["peak_rss_mb"],
                rss_mb_4n=at_4n["peak_rss_mb"],
                rss_growth=round(at_4n["peak_rss_mb"] / at_n["peak_rss_mb"] - 1, 3),
                backfill_detail={"n": at_n, "4n": at_4n, "baseline": base},
            )
        if "idle" in parts:
            poll = idle.idle_poll(idle_legs, _dir(work, "idle"))
            results.update(idle_poll_ms=poll["db_ms"], idle_detail=poll)
        if "tenants" in parts:
            results.update(tenants.measure(_dir(work, "tenants")))
        if "report" in parts:
            results.update(report.measure(report_n, _dir(work, "report")))
        if "clicks" in parts:
            results.update(clicks.measure(_dir(work, "clicks")))
        if "popups" in parts:
            results.update(popups.measure(_dir(work, "popups")))
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _print(results)
    return 0


def _dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def _print(results: dict[str, Any]) -> None:
    print(f"\n{'figure':<26}{'value':>14}  target      status")
    for key in (
        "builder_legs_per_s",
        "reference_loop_s",
        "backfill_calls_per_s",
        "ceiling_calls_per_s",
        "backfill_ratio",
        "baseline_calls_per_s",
        "speedup_vs_baseline",
        "idle_poll_ms",
        "rss_mb_n",
        "rss_mb_4n",
        "rss_growth",
        "tenants_n",
        "tenants_idle_cycle_s",
        "tenants_lag_p99_s",
        "tenants_lag_p99_three_s",
        "tenants_peak_threads",
        "tenants_peak_db_connections",
        "tenants_rss_mb",
        "tenants_delivered_ratio",
        "engine_calls_per_s_per_core",
        "tenants_share_spread",
        "tenants_takeover_s",
        "report_calls",
        "report_scan_seconds",
        "report_seconds",
        "report_scan_ratio",
        "report_rss_mb",
        "report_html_kb",
        "click_p50_ms",
        "click_p99_ms",
        "serve_cpu_ms_per_click",
        "serve_rss_idle_mb",
        "serve_rss_after_clicks_mb",
        "serve_rss_growth",
        "popup_p50_ms",
        "popup_p99_ms",
        "popup_one_account_p99_ms",
        "popup_group_window_ms",
        "popup_serve_events_per_s",
        "popup_emulator_events_per_s",
        "popup_serve_cpu_ms_per_1000_events",
    ):
        if key not in results:
            continue
        target = TARGETS.get(key)
        status = ""
        if target:
            op, bound = target
            ok = {
                "<": results[key] < bound,
                "<=": results[key] <= bound,
                ">=": results[key] >= bound,
            }[op]
            status = "met" if ok else "MISSED"
        shown = f"{op} {bound:g}" if target else ""
        print(f"{key:<26}{results[key]:>14}  {shown:<10}  {status}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
