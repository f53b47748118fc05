"""What most commands share: loading settings, logging, and opening our database."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from sync import config, db, logs
from sync.cli import CliError
from sync.engine.cycle import CycleReport
from sync.errors import first_line


def load_settings(args: argparse.Namespace) -> config.Settings:
    """Settings from the config file; ConfigError propagates (exit 2)."""
    return config.load(config.resolve_path(getattr(args, "config", None)))


def start_logging(
    args: argparse.Namespace, settings: config.Settings, file_name: str | None = None
) -> Path | None:
    """Logging for a command: stderr, plus the JSON file ``file_name`` for the process
    families that own one (``run``, ``serve``, ``once``; see sync.logs). Operator commands pass
    None and never rotate a daemon's file."""
    level = getattr(args, "log_level", None) or settings.logging.level
    try:
        if file_name is None:
            return logs.setup(level, None, settings.secrets())
        return logs.setup(level, settings.logging, settings.secrets(), file_name=file_name)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        where = f"{settings.path}: logging.dir"
        message = f"{where}: cannot write logs in {settings.logging.dir!r}: {reason}"
        raise config.ConfigError([message]) from None


def open_database(settings: config.Settings, *, require_head: bool = True) -> sa.Engine:
    """Our own database, checked reachable and (by default) migrated to the newest revision."""
    engine = db.make_engine(settings.database.url)
    try:
        current, head = db.revisions(engine)
    except SQLAlchemyError as exc:
        where = _safe_url(settings.database.url)
        raise CliError(f"database {where} unreachable: {_short(exc)}") from None
    if require_head and current != head:
        raise CliError(
            f"database {_safe_url(settings.database.url)} is at revision {current or 'none'}, "
            f"expected {head}: run `retailcrm-sync db upgrade`"
        )
    return engine


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _short(exc: BaseException) -> str:
    return first_line(exc)


def check_tenants(settings: config.Settings, names: Sequence[str] | None) -> None:
    """Unknown tenant names are usage errors (exit 2), not silently ignored."""
    known = {t.name for t in settings.tenants}
    for name in names or ():
        if name not in known:
            raise CliError(f"unknown tenant {name!r} (configured: {', '.join(sorted(known))})", 2)


def exit_code(reports: list[CycleReport]) -> int:
    """0 when every tenant finished cleanly; 1 when calls failed or a tenant errored."""
    return 1 if any(r.troubled for r in reports) else 0
