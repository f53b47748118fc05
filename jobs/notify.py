"""systemd ``Type=notify`` support: READY, STATUS, WATCHDOG and STOPPING through sd_notify.

Without systemd (no ``NOTIFY_SOCKET``) every message is dropped silently, so the daemon runs the
same from a terminal, under cron or in tests. The watchdog is fed only while the daemon shows
progress, so systemd restarts a daemon whose cycles hang instead of one that merely idles.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping

import sdnotify


def watchdog_seconds(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """``WatchdogSec=`` as systemd passes it (``WATCHDOG_USEC``), or None when not for us.

    Like ``sd_watchdog_enabled``: a ``WATCHDOG_PID`` naming another process (a child that
    inherited the environment) means the watchdog is not ours to feed.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1_000_000


def one_line(text: str, limit: int = 400) -> str:
    """A STATUS value: sd_notify separates assignments by newlines, so none may be inside."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Notifier:
    """Messages to the service manager; every method is a no-op outside systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._socket = sdnotify.SystemdNotifier()  # connects to $NOTIFY_SOCKET, if any
        self._lock = threading.Lock()
        self.watchdog_seconds = watchdog_seconds(env)

    def send(self, *assignments: str) -> None:
        with self._lock:
            self._socket.notify("\n".join(assignments))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={one_line(status)}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={one_line(text)}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={one_line(status)}")


class Liveness:
    """When the daemon last made progress: a sync run ended or an upload batch settled.

    A run that ended in an error counts too: the daemon is alive and retrying (a lost database
    must not turn into a restart loop), only a run that never ends is a hang.
    """

    def __init__(self, max_quiet: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_quiet = max_quiet
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def progress(self, done: int, known: int) -> None:
        """The engine's upload progress callback: a long backlog cycle is progress too."""
        self.beat()

    def quiet_for(self) -> float:
        return self._clock() - self._last

    def alive(self) -> bool:
        return self.quiet_for() <= self.max_quiet
