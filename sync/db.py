"""Connections to our own database and its migrations.

One place decides how engines are made (SQLite gets WAL and a busy timeout so the CLI and the
daemon can share a file; servers get pre-ping so a restarted database is noticed on the next
checkout instead of failing a cycle) and how Alembic is driven.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

import models

ALEMBIC_DIR = Path(models.__file__).resolve().parent.parent / "alembic"


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def pool_options(url: str, workers: int) -> dict[str, Any]:
    """Pool size for ``workers`` tenant cycles at once: each holds at most one connection at
    a time, plus the scheduler's jobs; a bounded overflow absorbs the customer refresh."""
    if make_url(url).get_backend_name() == "sqlite":
        return {}
    return {"pool_size": workers + 2, "max_overflow": workers, "pool_timeout": 30}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision of the database, newest revision shipped)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
