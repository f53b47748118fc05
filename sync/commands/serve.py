"""``serve``: the live bridge (design §6) — RetailCRM's callbacks, click-to-call, ``/metrics``.

Without ``[serve]`` it exits 2 with the reason; an unreachable or unmigrated database exits 1
before READY (systemd's ``Restart=on-failure`` retries). Asterisk being down is not a start-up
failure: the AMI connection retries with backoff and ``/healthz`` says 503 meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio

from jobs.notify import Notifier
from sync import logs
from sync.bridge.service import ListenError, run_service
from sync.cli import CliError
from sync.commands.common import check_tenants, load_settings, open_database, start_logging
from sync.engine.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings.serve is None:
        raise CliError(
            f"{settings.path}: serve: no [serve] table; add one with listen and public_url "
            "(docs/configuration.md)",
            2,
        )
    check_tenants(settings, None)
    start_logging(args, settings, logs.SERVE_LOG)
    engine = open_database(settings)
    store = Store(engine)
    store.ensure_tenants(t.name for t in settings.tenants)
    try:
        return asyncio.run(run_service(settings, store, Notifier()))
    except ListenError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
