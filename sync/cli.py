"""The ``retailcrm-sync`` command line: few verbs, one-line errors, exit codes per design §5.

Exit 0 success, 1 the work failed (database or CRM unreachable, calls failed, unknown id),
2 usage or configuration error. Expected failures never end in a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from sync import __version__
from sync.config import LOG_LEVELS, ConfigError

# command -> (module in sync.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "write a commented example config"),
    "db": ("db", "manage our own tables (db upgrade)"),
    "once": ("once", "one full cycle for every tenant, then exit (cron, timers)"),
    "resync": ("resync", "re-read a window of the call log and (re)upload it now"),
    "status": ("status", "calls per state, lag, last success and error per tenant"),
    "requeue": ("requeue", "failed (and --dead) calls back to pending"),
    "explain": ("explain", "legs, derived call, payload and sync history of one call"),
    "run": ("run", "the daemon: sync, customer map and housekeeping on a schedule"),
    "check": ("check", "configuration, databases, CRM key, scopes, module and extensions"),
    "register": ("register", "create or update the telephony integration module"),
    "source": ("source", "the PBX call log: recommended indexes (source indexes [--apply])"),
    "demo": ("demo", "SQLite call log + built-in CRM emulator + one cycle, then a summary"),
    "emulator": ("emulator", "serve the RetailCRM API emulator for manual tries"),
    "report": ("report", "call and sales report from our tables: text, json, csv or html"),
    "serve": ("serve", "the live bridge: click-to-call, RetailCRM callbacks, /metrics"),
    "pbx-emulator": ("pbx_emulator", "serve the Asterisk AMI emulator for manual tries"),
}

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """An expected failure: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_global_options(parser: argparse.ArgumentParser, suppress: bool = True) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $RETAILCRM_SYNC_CONFIG, else ./retailcrm-sync.toml)",
    )
    parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        help="override [logging] level",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retailcrm-sync",
        description="Upload finished Asterisk calls to RetailCRM and keep the customer map fresh.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        # Global options are accepted after the command too (a kindness, design §5).
        add_global_options(command)
        import_module(f"sync.commands.{module}").add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"retailcrm-sync: {line}", file=sys.stderr)
        return 2
    except CliError as exc:
        from sync.logs import redactor

        print(f"retailcrm-sync: {redactor.scrub(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("retailcrm-sync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
