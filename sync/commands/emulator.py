"""``emulator``: the built-in RetailCRM API emulator as a server, to try the product by hand.

Point a tenant's ``url`` at it and give the same key; it accepts every scope. The key is not
printed: it is the one given here (or the documented default), so nothing secret is echoed.
"""

from __future__ import annotations

import argparse
import os

from sync import logs
from sync.cli import CliError
from sync.emulator import run_standalone

KEY_ENV = "RETAILCRM_EMULATOR_KEY"
DEFAULT_KEY = "emulator-key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument(
        "--api-key",
        metavar="K",
        help=f"the API key it accepts (default: ${KEY_ENV}, else {DEFAULT_KEY!r})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    key: str = args.api_key or os.environ.get(KEY_ENV) or DEFAULT_KEY
    logs.setup(args.log_level or "INFO", None, [key])
    try:
        run_standalone(args.host, args.port, key)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return 0
