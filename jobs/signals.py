"""SIGTERM and SIGINT: the first asks for an orderly stop, the second ends the process at once;
SIGHUP reloads the configuration.

The handler only sets the stop Event and hands the rest to a thread: a signal handler runs
between two bytecodes of the main thread, which may hold the scheduler's or the logger's lock
at that moment. After a second signal the leases are left to expire (a dead ``host:pid`` owner
on this host is taken over at once), which is safe by design.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
ECHO_SECONDS = 1.0
"""A repeat this soon is one request delivered twice (GNU ``timeout`` signals the process and
then its whole process group), not an operator asking a second time."""


class StopSignals:
    """Turns the first stop signal into ``stop.set()`` + ``on_stop(name)`` in a new thread."""

    def __init__(
        self,
        stop: threading.Event,
        on_stop: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop = stop
        self.on_stop = on_stop
        self._clock = clock
        self._first = 0.0

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            if self._clock() - self._first < ECHO_SECONDS:
                return
            os.write(2, f"retailcrm-sync: second {name}: exiting now\n".encode())
            os._exit(128 + signum)
        self._first = self._clock()
        self.stop.set()
        threading.Thread(target=self.on_stop, args=(name,), name="stop", daemon=True).start()


class ReloadSignal:
    """SIGHUP: ``on_reload()`` in a new thread (never inside the handler, see above); a reload
    already running makes a second one wait for it, not run beside it."""

    def __init__(self, on_reload: Callable[[], None]) -> None:
        self.on_reload = on_reload

    def install(self) -> None:
        signal.signal(signal.SIGHUP, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=self.on_reload, name="reload", daemon=True).start()
