"""Logging: loguru to stderr for people, JSON lines to a rotating file for machines.

Standard-library loggers (SQLAlchemy, urllib3, APScheduler, Alembic) are routed through loguru
so that one redaction filter sees every message: configured secrets never reach a sink.
No sink prints the values of local variables in a traceback (loguru's ``diagnose``): they are
formatted after the redactor ran and would carry conninfos, payloads and keys to the journal.

Each long-running process family writes its own file, so a rotation by one never races another
process writing the same file: ``run`` -> ``retailcrm-sync.jsonl``, ``serve`` ->
``retailcrm-sync-serve.jsonl``, ``once`` -> ``retailcrm-sync-once.jsonl``. Operator commands
(``resync``, ``requeue``, ``db``, ``source``, ...) log to stderr only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

    from sync.config import LoggingSettings

STDERR_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} {level: <7} {message}"
DAEMON_LOG = "retailcrm-sync.jsonl"
"""The file of ``run`` (and of the demo, in its own folder)."""
ONCE_LOG = "retailcrm-sync-once.jsonl"
SERVE_LOG = "retailcrm-sync-serve.jsonl"
REDACTED = "***"


class Redactor:
    """Replaces every configured secret in a record's message and extras."""

    def __init__(self) -> None:
        self.secrets: tuple[str, ...] = ()

    def set(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is removed whole.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(self, record: Record) -> None:
        if not self.secrets:
            return
        record["message"] = self.scrub(record["message"])
        for key, value in record["extra"].items():
            if isinstance(value, str):
                record["extra"][key] = self.scrub(value)
        exc = record["exception"]
        if exc is not None and exc.value is not None:
            scrubbed = self.scrub(str(exc.value))
            if scrubbed != str(exc.value):
                exc.value.args = (scrubbed,)


redactor = Redactor()


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup(
    level: str = "INFO",
    settings: LoggingSettings | None = None,
    secrets: Iterable[str] = (),
    stderr: bool = True,
    file_name: str = DAEMON_LOG,
) -> Path | None:
    """Configure every sink; returns the JSON log file's path when one is written.

    ``settings`` None: stderr only (operator commands). ``file_name`` is the process family's
    own file in ``settings.dir``.
    """
    redactor.set(secrets)
    logger.remove()
    logger.configure(patcher=redactor)
    if stderr:
        logger.add(
            sys.stderr,
            level=level,
            format=STDERR_FORMAT,
            colorize=None,
            backtrace=False,
            diagnose=False,
        )
    log_file = None
    if settings is not None:
        directory = Path(settings.dir)
        directory.mkdir(parents=True, exist_ok=True)
        log_file = directory / file_name
        logger.add(
            log_file,
            level=level,
            serialize=True,
            rotation=settings.rotation,
            retention=settings.retention,
            enqueue=False,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    for name in ("sqlalchemy", "urllib3", "apscheduler", "alembic"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("apscheduler").setLevel(logging.INFO if level != "DEBUG" else logging.DEBUG)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return log_file
