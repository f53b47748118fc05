"""``source indexes [--apply]``: the indexes the poller needs on the PBX's call-log table.

Printing is the default because the PBX's tables are not ours (design §3): an operator reads
the statements, and either runs them as the table's owner or passes ``--apply``. Creation is
online (``CONCURRENTLY`` on PostgreSQL, ``ALGORITHM=INPLACE, LOCK=NONE`` on InnoDB), so the
PBX keeps writing calls meanwhile.
"""

from __future__ import annotations

import argparse

from sqlalchemy.exc import SQLAlchemyError

from sync.cli import CliError, add_global_options
from sync.commands.common import _safe_url, _short, load_settings, start_logging
from sync.sources import SourceError, open_source
from sync.sources.indexes import apply_indexes, describe_indexes, missing_indexes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source_command", metavar="ACTION", required=True)
    indexes = sub.add_parser(
        "indexes",
        help="print the recommended indexes of the call-log table (or create them)",
        description="print the recommended indexes of the call-log table (or create them)",
    )
    add_global_options(indexes)
    indexes.add_argument(
        "--apply", action="store_true", help="create the missing ones online (needs DDL rights)"
    )
    indexes.set_defaults(handler=run_indexes)


def run_indexes(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    start_logging(args, settings)
    where = _safe_url(settings.source.url)
    try:
        source = open_source(settings.source)
    except SourceError as exc:
        raise CliError(f"source {where}: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"source database {where} unreachable: {_short(exc)}") from None
    try:
        for line in describe_indexes(source):
            print(line)
        if not args.apply:
            return 0
        missing = missing_indexes(source)
        if not missing:
            print("nothing to create")
            return 0
        try:
            created = apply_indexes(source.engine, missing)
        except SQLAlchemyError as exc:
            raise CliError(
                f"creating an index on {settings.source.table} failed: {_short(exc)} "
                "(run the statements above as the table's owner)"
            ) from None
        for name in created:
            print(f"created {name}")
    finally:
        source.close()
    return 0
