"""Helpers for engine tests: a real config file, a CDR table filled with generated calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync import config, db
from sync.calls.builder import build_calls
from sync.calls.demo_cdr import generate_legs
from sync.calls.legs import Leg
from sync.sources.cdr_table import create_cdr_table, insert_legs

KEY_ENV = "TEST_RETAILCRM_KEY"


def write_config(
    tmp_path: Path,
    *,
    db_url: str,
    crm_url: str,
    tenants: Sequence[dict[str, Any]] = ({"name": "shop"},),
    source: dict[str, Any] | None = None,
    sync: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """A TOML config as an operator would write it; keys come from environment variables."""
    src = {"table": "cdr", "timezone": "UTC", "settle_seconds": 60, "lookback_hours": 24}
    src.update(source or {})
    lines = [f'[database]\nurl = "{db_url}"', "[source]"]
    lines += [f"{k} = {_toml(v)}" for k, v in src.items()]
    lines.append(
        '[pbx]\ncountry = "BY"\nrecording_url = "https://pbx.example.com/rec/{recordingfile}"'
    )
    syn = {
        "retry_base_seconds": 1,
        "lease_seconds": 30,
        "upload_budget_seconds": 5,
        "read_timeout": 5,
    }
    syn.update(sync or {})
    lines.append("[sync]")
    lines += [f"{k} = {_toml(v)}" for k, v in syn.items()]
    lines.append(f'[logging]\ndir = "{tmp_path / "logs"}"\nlevel = "INFO"')
    for tenant in tenants:
        t = {"url": crm_url, "api_key_env": KEY_ENV, "timezone": "UTC"}
        t.update(tenant)
        lines.append("[[tenants]]")
        lines += [f"{k} = {_toml(v)}" for k, v in t.items()]
    path = tmp_path / "retailcrm-sync.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    path.chmod(0o600)
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(path: Path, env: dict[str, str]) -> config.Settings:
    return config.load(path, env)


def fill_cdr(url: str, legs: Iterable[Leg], **table: Any) -> int:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    table.setdefault("recordingfile", True)
    try:
        create_cdr_table(engine, **table)
        return insert_legs(engine, legs)
    finally:
        engine.dispose()


def generated(n_calls: int, *, hours_ago: float = 1, seed: int = 7, **kw: Any) -> list[Leg]:
    """Calls whose last one started ``hours_ago`` hours ago: all complete, all in the window."""
    spacing = kw.get("spacing_seconds", 20.0)
    span = timedelta(hours=hours_ago, seconds=n_calls * spacing)
    start = (datetime.now(UTC) - span).replace(tzinfo=None, microsecond=0)
    return list(generate_legs(n_calls, start=start, seed=seed, **kw))


def expected_payloads(settings: config.Settings, legs: Sequence[Leg]) -> dict[str, dict[str, Any]]:
    """What the CRM must end up holding: every ready call the builder derives."""
    calls = build_calls(legs, settings.build_options(), datetime.now(UTC))
    return {c.external_id: c.payload for c in calls if c.status == "ready" and c.payload}
