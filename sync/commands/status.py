"""``status``: per tenant, how many calls are where, how old the oldest waiting one is."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from sync.commands.common import load_settings, open_database
from sync.engine.store import Store
from sync.timeutil import utcnow

COLUMNS = ("pending", "sending", "sent", "failed", "dead", "skipped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.set_defaults(handler=run)


def collect(store: Store, names: list[str], now: datetime) -> list[dict[str, Any]]:
    counts = store.status_counts()
    result = []
    for name in names:
        row = counts.get(name, {})
        state = store.tenant(name)
        oldest = store.oldest_unsent(name)
        result.append(
            {
                "name": name,
                **{c: int(row.get(c, 0)) for c in COLUMNS},
                "oldest_pending_age_seconds": (
                    None if oldest is None else int((now - oldest).total_seconds())
                ),
                "last_success_at": _iso(state.last_success_at if state else None),
                "last_error": (state.crm_paused or state.last_error) if state else None,
                "paused": bool(state and (state.paused or state.crm_paused)),
            }
        )
    return result


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = Store(open_database(settings))
    tenants = collect(store, [t.name for t in settings.tenants], utcnow())
    if args.json:
        print(json.dumps({"tenants": tenants}, ensure_ascii=False))
        return 0
    header = f"{'tenant':<16}" + "".join(f"{c:>9}" for c in COLUMNS) + "  lag      last success"
    print(header)
    for t in tenants:
        age = t["oldest_pending_age_seconds"]
        lag = "-" if age is None else f"{age}s"
        line = f"{t['name']:<16}" + "".join(f"{t[c]:>9}" for c in COLUMNS)
        print(f"{line}  {lag:<8} {t['last_success_at'] or 'never'}")
        if t["last_error"]:
            state = "PAUSED: " if t["paused"] else "last error: "
            print(f"{'':<16}{state}{t['last_error']}")
    return 0
