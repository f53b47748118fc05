"""``pbx-emulator``: the AMI emulator (design §6.4) on its own, for manual tries of ``serve``."""

from __future__ import annotations

import argparse
import os

from sync.pbx_emulator import run_standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5038, help="port (default 5038, 0: any)")
    parser.add_argument(
        "--secret",
        default=None,
        help="the AMI user's secret (default: $AMI_SECRET)",
    )
    parser.add_argument("--username", default="retailcrm", help="the AMI user name")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("AMI_SECRET", "")
    if not secret:
        from sync.cli import CliError

        raise CliError("pbx-emulator: give --secret or set AMI_SECRET", 2)
    run_standalone(args.host, args.port, secret, args.username)
    return 0
