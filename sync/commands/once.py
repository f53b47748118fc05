"""``once``: one full cycle for every tenant (or one), then exit — for cron and timers."""

from __future__ import annotations

import argparse

from sync import logs
from sync.commands import common
from sync.commands.progress import upload_bar
from sync.engine.runner import Runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = common.load_settings(args)
    common.check_tenants(settings, args.tenant)
    common.start_logging(args, settings, logs.ONCE_LOG)
    engine = common.open_database(settings)
    runner = Runner(settings, engine=engine)
    try:
        with upload_bar("uploading") as progress:
            reports = runner.once(args.tenant, progress=progress)
        # Without a daemon, `once` keeps the phone -> customer map fresh on the same schedule.
        maps = runner.refresh_customers(args.tenant, older_than=settings.daemon.customers_interval)
    finally:
        runner.close()
    return common.exit_code(reports) or (1 if any(m.error for m in maps) else 0)
