"""Reloading the configuration of a running process (SIGHUP, and every ``reload_seconds``
when a tenants directory is configured); ``run`` uses it, and ``serve`` is meant to.

A new configuration is read whole (file and directory) before anything changes: a bad one is
refused with one log line and the running one stays. A good one is handed to ``apply``, and
the log redactor learns the new keys (keeping the old ones: lines about a removed tenant may
still come from a cycle in flight).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from loguru import logger

from sync import logs, tenants_directory
from sync.config import ConfigError, Settings, TenantSettings
from sync.engine.clients import signature

Apply = Callable[[Settings], None]


def changes(old: Settings, new: Settings) -> str:
    """``+added -removed ~changed`` tenant counts (pure)."""
    before = {t.name: t for t in old.tenants}
    after = {t.name: t for t in new.tenants}
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changed = sum(1 for n in after.keys() & before.keys() if _differs(before[n], after[n]))
    return f"{len(after)} tenants (+{added} -{removed} ~{changed})"


def _differs(a: TenantSettings, b: TenantSettings) -> bool:
    if signature(a) != signature(b):
        return True
    return (a.match, a.timezone, a.create_customers, dict(a.extensions)) != (
        b.match,
        b.timezone,
        b.create_customers,
        dict(b.extensions),
    )


class Reloader:
    def __init__(self, current: Settings, apply: Apply) -> None:
        self.current = current
        self._apply = apply
        self._lock = threading.Lock()

    def reload(self, why: str, *, quiet_if_same: bool = False) -> bool:
        """Read and apply; False (one error line) when the new configuration is refused."""
        with self._lock:
            old = self.current
            try:
                new = tenants_directory.load_settings(old.path, os.environ)
            except ConfigError as exc:
                more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
                logger.error(
                    f"{why}: new configuration refused, the running one stays: "
                    f"{exc.problems[0]}{more}"
                )
                return False
            except tenants_directory.DirectoryError as exc:
                logger.error(f"{why}: tenants directory not read, the running tenants stay: {exc}")
                return False
            logs.redactor.set([*logs.redactor.secrets, *new.secrets()])
            summary = changes(old, new)
            self._apply(new)
            self.current = new
            same = summary.endswith("(+0 -0 ~0)") and new.skipped == old.skipped
            if not (quiet_if_same and same):
                logger.info(f"{why}: configuration reloaded: {summary}")
            return True
