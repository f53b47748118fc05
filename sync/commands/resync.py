"""``resync``: re-read a window of the call log and (re)upload it now, through the same lease
as the daemon, so it never races a running instance. ``--dry-run`` only reads and prints."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from sync.calls.builder import build_page
from sync.cli import CliError
from sync.commands.common import (
    check_tenants,
    exit_code,
    load_settings,
    open_database,
    start_logging,
)
from sync.commands.progress import upload_bar
from sync.config import Settings
from sync.engine.cycle import ResyncWindow
from sync.engine.runner import Runner
from sync.timeutil import utc_to_local, utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, metavar="T", help="window start")
    parser.add_argument("--until", metavar="T", help="window end (default: now)")
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the payloads; send and change nothing"
    )
    parser.set_defaults(handler=run)


def parse_when(value: str, tz: str) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` or ISO 8601; no offset means the source zone (design §5)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(f"{value!r}: expected 'YYYY-MM-DD HH:MM[:SS]' or ISO 8601", 2) from None
    if moment.tzinfo is None:
        return moment
    return utc_to_local(moment.astimezone(UTC).replace(tzinfo=None), tz)


def window_of(args: argparse.Namespace, settings: Settings) -> ResyncWindow:
    tz = settings.source.timezone
    since = parse_when(args.since, tz)
    until = parse_when(args.until, tz) if args.until else utc_to_local(utcnow(), tz)
    if until <= since:
        raise CliError("--until must be after --since", 2)
    return ResyncWindow(since, until)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, args.tenant)
    window = window_of(args, settings)
    start_logging(args, settings)
    if args.dry_run:
        return dry_run(settings, window, args.tenant)
    runner = Runner(settings, engine=open_database(settings))
    try:
        with upload_bar("resync") as progress:
            reports = runner.once(args.tenant, window=window, progress=progress)
    finally:
        runner.close()
    return exit_code(reports)


def dry_run(settings: Settings, window: ResyncWindow, tenants: list[str] | None) -> int:
    """Read and build only: no lease, no table write, no CRM request."""
    from sync.sources import open_source

    source = open_source(settings.source)
    options = settings.build_options()
    now = utcnow()
    shown = 0
    try:
        for tenant in [t for t in settings.tenants if not tenants or t.name in tenants]:
            for page in source.read_window(window.since, window.until, tenant_match=tenant.match):
                for call in build_page(page, options, now):
                    if call.tenant == tenant.name and call.status == "ready":
                        line = {"tenant": tenant.name, "call": call.payload}
                        print(json.dumps(line, ensure_ascii=False))
                        shown += 1
    finally:
        source.close()
    print(f"dry run: {shown} calls would be uploaded; nothing was sent or changed", file=sys.stderr)
    return 0
