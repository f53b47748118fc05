"""``once``: one full cycle for every tenant (or one), then exit — for cron and timers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sync import logs
from sync.cli import CliError
from sync.commands.common import load_settings, open_database, start_logging
from sync.commands.progress import upload_bar
from sync.config import Settings
from sync.engine.cycle import CycleReport
from sync.engine.runner import Runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.set_defaults(handler=run)


def exit_code(reports: list[CycleReport]) -> int:
    """0 when every tenant finished cleanly; 1 when calls failed or a tenant errored."""
    return 1 if any(r.troubled for r in reports) else 0


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, args.tenant)
    start_logging(args, settings, logs.ONCE_LOG)
    engine = open_database(settings)
    runner = Runner(settings, engine=engine)
    try:
        with upload_bar("uploading") as progress:
            reports = runner.once(args.tenant, progress=progress)
        # Without a daemon, `once` keeps the phone -> customer map fresh on the same schedule.
        maps = runner.refresh_customers(args.tenant, older_than=settings.daemon.customers_interval)
    finally:
        runner.close()
    return exit_code(reports) or (1 if any(m.error for m in maps) else 0)


def check_tenants(settings: Settings, names: Sequence[str] | None) -> None:
    """Unknown tenant names are usage errors (exit 2), not silently ignored."""
    known = {t.name for t in settings.tenants}
    for name in names or ():
        if name not in known:
            raise CliError(f"unknown tenant {name!r} (configured: {', '.join(sorted(known))})", 2)
