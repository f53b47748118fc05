"""``requeue``: failed (and with --dead, dead) calls back to pending, tried on the next cycle."""

from __future__ import annotations

import argparse

from sync.commands.common import check_tenants, load_settings, open_database, start_logging
from sync.engine.store import Store
from sync.timeutil import utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dead", action="store_true", help="dead calls too")
    parser.add_argument("--tenant", metavar="NAME", help="only this tenant")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, [args.tenant] if args.tenant else None)
    start_logging(args, settings)
    count = Store(open_database(settings)).requeue(args.tenant, args.dead, utcnow())
    which = "failed and dead" if args.dead else "failed"
    print(f"{count} {which} calls back to pending; they go with the next cycle")
    return 0
