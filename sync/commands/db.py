"""``db upgrade``: create or migrate our own tables (Alembic, to the newest revision)."""

from __future__ import annotations

import argparse

from sqlalchemy.exc import SQLAlchemyError

from sync import db
from sync.cli import CliError, add_global_options
from sync.commands.common import _safe_url, _short, load_settings, start_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = sub.add_parser("upgrade", help="apply migrations up to the newest revision")
    add_global_options(upgrade)
    upgrade.set_defaults(handler=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args, directory=False)  # migrating needs no tenant
    start_logging(args, settings)
    engine = db.make_engine(settings.database.url)
    where = _safe_url(settings.database.url)
    try:
        before, head = db.revisions(engine)
        db.upgrade(engine)
    except SQLAlchemyError as exc:
        raise CliError(f"database {where}: upgrade failed: {_short(exc)}") from None
    finally:
        engine.dispose()
    if before == head:
        print(f"{where}: already at revision {head}")
    else:
        print(f"{where}: upgraded from {before or 'empty'} to {head}")
    return 0
