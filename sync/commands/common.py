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


def load_settings(args: argparse.Namespace) -> config.Settings:
    """Settings from the config file; ConfigError propagates (exit 2)."""
    return config.load(config.resolve_path(getattr(args, "config", None)))


def start_logging(args: argparse.Namespace, settings: config.Settings) -> Path | None:
    level = getattr(args, "log_level", None) or settings.logging.level
    try:
        return logs.setup(level, settings.logging, settings.secrets())
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
    """First line of a driver error, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_tenants(settings: config.Settings, names: Sequence[str] | None) -> None:
    """Unknown tenant names are usage errors (exit 2), not silently ignored."""
    known = {t.name for t in settings.tenants}
    for name in names or ():
        if name not in known:
            raise CliError(f"unknown tenant {name!r} (configured: {', '.join(sorted(known))})", 2)


def exit_code(reports: list[CycleReport]) -> int:
    """0 when every tenant finished cleanly; 1 when calls failed or a tenant errored."""
    bad = any(r.failed or r.dead or r.outcome in ("error", "paused", "lease-lost") for r in reports)
    return 1 if bad else 0
