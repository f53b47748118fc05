"""The report's tables as rows (header + values), shared by the text and CSV renderers."""

from __future__ import annotations

from typing import Any

SUMMARY_SECTIONS = ("inbound", "outbound", "missed", "customers", "orders")
MANAGER_KEYS = (
    "code",
    "name",
    "answered_in",
    "missed_first_rung",
    "out_attempts",
    "out_connected",
    "talk_seconds",
    "callbacks",
    "orders",
    "revenue",
    "asa_seconds",
    "avg_talk_seconds",
    "calls_per_active_day",
    "callback_median_seconds",
    "call_conversion",
)
"""Every key of a ``managers`` entry, in its order (design §7.1: the CSV header)."""
DAY_KEYS = (
    "date",
    "hours",
    "offered",
    "answered",
    "unanswered",
    "short_abandons",
    "outbound",
    "out_connected",
)
HOUR_KEYS = ("hour", "offered", "answered", "unanswered", "outbound")
LOST_KEYS = ("phone", "attempts", "first_miss", "last_miss", "customer_id", "customer_url")


def summary(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(dotted name, value)`` of every scalar figure, e.g. ``inbound.answered``."""
    rows: list[tuple[str, Any]] = [
        ("tenant", report["tenant"]),
        ("period.from", report["period"]["from"]),
        ("period.to", report["period"]["to"]),
        ("period.timezone", report["period"]["timezone"]),
    ]
    for name, value in report["parameters"].items():
        if not isinstance(value, list):
            rows.append((f"parameters.{name}", value))
    for section in SUMMARY_SECTIONS:
        for name, value in report[section].items():
            _flatten(f"{section}.{name}", value, rows)
    for reason, count in report["skipped"].items():
        rows.append((f"skipped.{reason}", count))
    return rows


def _flatten(prefix: str, value: Any, rows: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, rows)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and ("label" in item or "window" in item):
                label = item.get("label") or item.get("window")
                rest = {k: v for k, v in item.items() if k not in ("label", "window")}
                _flatten(f"{prefix}.{label}", rest, rows)
            elif isinstance(item, dict) and "seconds" in item:
                rest = {k: v for k, v in item.items() if k != "seconds"}
                _flatten(f"{prefix}.{item['seconds']}s", rest, rows)
    else:
        rows.append((prefix, value))


def table(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[Any]]:
    return [[item.get(k) for k in keys] for item in items]
