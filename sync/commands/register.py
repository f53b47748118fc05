"""``register``: create or update each tenant's telephony integration module (spec §5).

A thin layer over ``sync.crm.module``: choose tenants, open the database, print the outcome.
``--show-tokens`` prints each tenant's trigger URL (design §6.5) for RetailCRM's triggers and
the dialplan's ``/route``; that is the only place a token is ever shown.
"""

from __future__ import annotations

import argparse

from sync import logs
from sync.cli import CliError
from sync.commands.common import check_tenants, load_settings, open_database
from sync.config import Settings
from sync.crm.factory import one_off_client
from sync.crm.module import register_tenant, trigger_token_of
from sync.engine.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.add_argument(
        "--show-tokens",
        action="store_true",
        help="print each tenant's trigger URL (PUBLIC_URL/trigger/TOKEN) and exit",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, args.tenant)
    chosen = [t for t in settings.tenants if not args.tenant or t.name in args.tenant]
    if args.show_tokens:
        return show_tokens(settings, [t.name for t in chosen])
    for tenant in chosen:
        if not tenant.logo_url:
            index = settings.tenants.index(tenant)
            raise CliError(
                f"{settings.path}: tenants[{index}].logo_url: required by register (RetailCRM "
                "needs an SVG logo for a module outside its Marketplace), e.g. "
                '"https://pbx.example.com/asterisk.svg"',
                2,
            )
    logs.setup(args.log_level or "ERROR", None, settings.secrets())
    store = Store(open_database(settings))
    failed = False
    try:
        store.ensure_tenants(t.name for t in chosen)
        for tenant in chosen:
            with one_off_client(settings, tenant) as client:
                outcome = register_tenant(store, tenant, client, settings.serve)
            for line in outcome.lines:
                print(line)
            failed = failed or outcome.failed
    finally:
        store.engine.dispose()
    return 1 if failed else 0


def show_tokens(settings: Settings, names: list[str]) -> int:
    if settings.serve is None:
        raise CliError(f"{settings.path}: serve: --show-tokens needs a [serve] table", 2)
    store = Store(open_database(settings))
    try:
        store.ensure_tenants(names)
        for name in names:
            token = trigger_token_of(store, name)
            print(f"tenant {name}: {settings.serve.public_url}/trigger/{token}")
    finally:
        store.engine.dispose()
    return 0
