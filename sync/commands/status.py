"""``status``: per tenant, how many calls are where, how old the oldest waiting one is, and
which process holds its lease; then the live daemons and how many tenants each is preferred
for. Three statements in all, whatever the number of tenants or processes."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sync.commands.common import check_tenants, load_settings, open_database
from sync.config import Settings
from sync.engine.store import Presence, Store, TenantState, owner_is_dead
from sync.engine.turns import live_owners, preferred_owner, presence_window
from sync.timeutil import utcnow

COLUMNS = ("pending", "sending", "sent", "failed", "dead", "skipped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.set_defaults(handler=run)


def collect(store: Store, names: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    return rows(store.status_summary(), store.tenant_states(), names, now)


def rows(
    counts: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, TenantState],
    names: Sequence[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """The status lines of ``names`` from the two statements' results (pure)."""
    result = []
    for name in names:
        row = counts.get(name, {})
        state = states.get(name)
        oldest = row.get("oldest_unsent")
        result.append(
            {
                "name": name,
                **{c: int(row.get(c, 0)) for c in COLUMNS},
                "oldest_pending_age_seconds": (
                    None if oldest is None else max(0, int((now - oldest).total_seconds()))
                ),
                "last_success_at": _iso(state.last_success_at if state else None),
                "last_error": (state.crm_paused or state.last_error) if state else None,
                "paused": bool(state and (state.paused or state.crm_paused)),
                "owner": _owner(state, now),
            }
        )
    return result


def processes(
    settings: Settings,
    presences: Sequence[Presence],
    now: datetime,
    is_dead: Callable[[str], bool] = owner_is_dead,
) -> list[dict[str, Any]]:
    """The live daemons (as their peers see them) and how many of the configured tenants
    each is preferred for; rows of gone processes are left out."""
    window = presence_window(settings.daemon.interval)
    live = live_owners(presences, now, window, is_dead)
    preferred = Counter(preferred_owner(t.name, live) for t in settings.tenants) if live else {}
    return [
        {
            "owner": p.owner,
            "started_at": _iso(p.started_at),
            "seen_seconds_ago": max(0, int((now - p.seen_at).total_seconds())),
            "preferred_tenants": preferred.get(p.owner, 0),
        }
        for p in presences
        if p.owner in live
    ]


def _owner(state: TenantState | None, now: datetime) -> str | None:
    """The process (``host:pid``) holding the tenant's lease now, if any."""
    if state is None or not state.lease_owner or state.lease_expires_at is None:
        return None
    return state.lease_owner if state.lease_expires_at > now else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, args.tenant)
    engine = open_database(settings)
    names = args.tenant or [t.name for t in settings.tenants]
    store = Store(engine)
    now = utcnow()
    try:
        tenants = collect(store, names, now)
        daemons = processes(settings, store.presences(), now)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"tenants": tenants, "processes": daemons}, ensure_ascii=False))
        return 0
    width = max([16, *(len(t["name"]) + 2 for t in tenants)])
    header = f"{'tenant':<{width}}" + "".join(f"{c:>9}" for c in COLUMNS)
    print(header + "  lag      last success          owner")
    for t in tenants:
        age = t["oldest_pending_age_seconds"]
        lag = "-" if age is None else f"{age}s"
        line = f"{t['name']:<{width}}" + "".join(f"{t[c]:>9}" for c in COLUMNS)
        print(f"{line}  {lag:<8} {t['last_success_at'] or 'never':<21} {t['owner'] or '-'}")
        if t["last_error"]:
            state = "PAUSED: " if t["paused"] else "last error: "
            print(f"{'':<{width}}{state}{t['last_error']}")
    _print_processes(daemons, presence_window(settings.daemon.interval))
    return 0


def _print_processes(daemons: Sequence[Mapping[str, Any]], window: timedelta) -> None:
    if not daemons:
        print(f"\nno daemon (`run`) seen in the last {window.total_seconds():g} s")
        return
    print(f"\n{len(daemons)} daemon(s) (`run`) share the tenants:")
    width = max(len(d["owner"]) for d in daemons) + 2
    for d in daemons:
        print(
            f"  {d['owner']:<{width}} seen {d['seen_seconds_ago']}s ago, "
            f"preferred for {d['preferred_tenants']} tenants, started {d['started_at']}"
        )
