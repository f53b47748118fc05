"""``run``: the daemon (jobs/daemon.py) under systemd, a terminal or any supervisor.

Start-up fails fast (exit 1, one line) when our database is unreachable or not migrated, so
systemd's ``Restart=on-failure`` retries; once running, every failure is retried by the next
run of its job and never ends the process.
"""

from __future__ import annotations

import argparse
import threading

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from jobs.daemon import Daemon
from sync import logs
from sync.cli import CliError
from sync.commands.common import _safe_url, _short, load_settings, open_database, start_logging
from sync.config import Settings
from sync.engine.runner import Runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    start_logging(args, settings, logs.DAEMON_LOG)
    warn_stop_timeout(settings)
    engine = open_database(settings)
    stop = threading.Event()
    try:
        runner = Runner(settings, stop=stop, engine=engine)
    except SQLAlchemyError as exc:
        where = _safe_url(settings.database.url)
        raise CliError(f"database {where} unreachable: {_short(exc)}") from None
    return Daemon(settings, runner, stop).run()


def warn_stop_timeout(settings: Settings) -> None:
    """A batch in flight may spend its whole retry budget; a shorter stop_timeout cuts it."""
    budget, timeout = settings.sync.upload_budget_seconds, settings.daemon.stop_timeout
    if timeout < budget:
        logger.warning(
            f"daemon.stop_timeout ({timeout:g} s) is shorter than sync.upload_budget_seconds "
            f"({budget:g} s): a batch in flight at shutdown may be cut off and sent again "
            "by the next run"
        )
