"""The daemon's pieces without a database: sd_notify, liveness, watchdog, signals, listener."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from loguru import logger
from sqlalchemy.exc import OperationalError

from jobs import signals
from jobs.daemon import on_job_event
from jobs.notify import Liveness, Notifier, one_line, watchdog_seconds
from jobs.tasks import Busy, Tasks, status_line
from sync.engine.cycle import CycleOutcome, CycleReport


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    folder = tempfile.mkdtemp(prefix="rcs-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def test_messages_reach_the_notify_socket(notify_socket: socket.socket) -> None:
    notifier = Notifier()
    notifier.ready("running")
    notifier.status("line one\nline two")
    notifier.watchdog()
    notifier.stopping("stopping")
    received = [notify_socket.recv(4096).decode() for _ in range(4)]
    assert received == [
        "READY=1\nSTATUS=running",
        "STATUS=line one line two",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_abstract_socket_names_work(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"rcs-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        Notifier().ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_without_systemd_every_message_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier(environ={})
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping("y")
    assert notifier.watchdog_seconds is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "4242"}, 4.0),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, None),
    ],
)
def test_watchdog_interval_is_ours_only_for_our_pid(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_seconds(environ, pid=4242) == expected


def test_status_values_stay_on_one_line_and_short() -> None:
    assert one_line("a\n b\tc") == "a b c"
    assert len(one_line("x" * 1000)) == 400


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_liveness_counts_finished_runs_and_upload_progress() -> None:
    clock = FakeClock()
    liveness = Liveness(max_quiet=60, clock=clock)
    clock.now += 61
    assert not liveness.alive()
    liveness.progress(10, 100)
    assert liveness.alive()
    clock.now += 59
    assert liveness.alive()
    clock.now += 2
    liveness.beat()
    assert liveness.quiet_for() == 0


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def watchdog(self) -> None:
        self.sent.append("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.sent.append(f"STATUS={text}")


@pytest.fixture
def messages() -> Iterator[list[str]]:
    lines: list[str] = []

    def sink(message: Any) -> None:
        record = message.record
        traceback = " [traceback]" if record["exception"] else ""
        lines.append(f"{record['level'].name} {record['message']}{traceback}")

    handle = logger.add(sink)
    yield lines
    logger.remove(handle)


def make_tasks(notifier: Any, liveness: Liveness, runner: Any = None, clock: Any = None) -> Tasks:
    daemon = SimpleNamespace(keep_days=30, interval=10, jitter=1)
    settings: Any = SimpleNamespace(tenants=(), daemon=daemon)
    return Tasks(settings, runner, notifier, liveness, threading.Event(), clock or FakeClock())


def test_a_pass_longer_than_the_interval_is_followed_at_once_by_the_next() -> None:
    clock = FakeClock()
    took = [25.0, 12.0, 3.0]  # the first two overran the 10 s interval: ticks were skipped

    class Busy:
        passes = 0

        def once(self, **_: object) -> list[CycleReport]:
            clock.now += took[self.passes]
            self.passes += 1
            return []

        def lease_retry(self, reports: object, within: float) -> None:
            return None

    runner = Busy()
    tasks = make_tasks(RecordingNotifier(), Liveness(max_quiet=60, clock=clock), runner, clock)
    tasks.sync()
    assert runner.passes == 3, "two late passes, each followed at once; the third on time"


def test_busy_tenants_whose_lease_expires_before_the_tick_get_a_pass_of_their_own() -> None:
    clock = FakeClock()
    busy = CycleReport("held", outcome=CycleOutcome.BUSY)

    class PeerDied:
        def __init__(self) -> None:
            self.passes: list[object] = []
            self.asked: list[float] = []

        def once(self, tenants: object = None, **_: object) -> list[CycleReport]:
            self.passes.append(tenants)
            clock.now += 2.0
            return [CycleReport("mine"), busy] if tenants is None else [CycleReport("held")]

        def lease_retry(
            self, reports: list[CycleReport], within: float
        ) -> tuple[list[str], float] | None:
            self.asked.append(within)
            return (["held"], 0.0) if busy in reports else None

    runner = PeerDied()
    notifier = RecordingNotifier()
    tasks = make_tasks(notifier, Liveness(max_quiet=60, clock=clock), runner, clock)
    tasks.sync()
    assert runner.passes == [None, ["held"]], "a full pass, then the busy tenant at its expiry"
    assert runner.asked == pytest.approx([6.8, 4.8]), "to end before the tick (10 s - 1 s jitter)"
    assert notifier.sent[-1].startswith("STATUS=last cycle") and "held ok" in notifier.sent[-1]
    assert "mine ok" in notifier.sent[-1], "the status line keeps the full pass's tenants"


def test_a_retry_that_ran_into_the_tick_is_followed_at_once_by_a_full_pass() -> None:
    clock = FakeClock()
    took = {None: 2.0, "held": 9.0}  # the held tenant's backlog outlasted the tick

    class SlowRetry:
        def __init__(self) -> None:
            self.passes: list[object] = []

        def once(self, tenants: list[str] | None = None, **_: object) -> list[CycleReport]:
            self.passes.append(tenants)
            clock.now += took[tenants[0] if tenants else None]
            busy = CycleReport("held", outcome=CycleOutcome.BUSY)
            return [busy] if len(self.passes) == 1 else []

        def lease_retry(self, reports: list[CycleReport], within: float) -> object:
            return (["held"], 0.0) if reports else None

    runner = SlowRetry()
    tasks = make_tasks(RecordingNotifier(), Liveness(max_quiet=60, clock=clock), runner, clock)
    tasks.sync()
    assert runner.passes == [None, ["held"], None], "the skipped tick's full pass, at once"


def test_the_heartbeat_stops_while_passes_make_no_progress(messages: list[str]) -> None:
    clock = FakeClock()

    class Announcing:
        beats = 0
        fail = False

        def announce(self) -> None:
            if self.fail:
                raise OperationalError("INSERT", {}, Exception("server closed the connection"))
            self.beats += 1

    runner = Announcing()
    tasks = make_tasks(RecordingNotifier(), Liveness(max_quiet=10, clock=clock), runner)
    tasks.presence()
    assert runner.beats == 1
    clock.now += 11  # hung: its peers must see it silent and take its tenants
    tasks.presence()
    assert runner.beats == 1
    tasks.liveness.beat()
    runner.fail = True
    tasks.presence()
    tasks.presence()
    assert sum("heartbeat: cannot write to sync_owner" in m for m in messages) == 1
    runner.fail = False
    tasks.presence()
    assert runner.beats == 2
    tasks.stop.set()
    tasks.presence()
    assert runner.beats == 2, "a stopping daemon no longer says it is alive"


def test_watchdog_pings_only_while_cycles_make_progress(messages: list[str]) -> None:
    clock = FakeClock()
    notifier = RecordingNotifier()
    tasks = make_tasks(notifier, Liveness(max_quiet=10, clock=clock))
    tasks.watchdog()
    assert notifier.sent == ["WATCHDOG=1"]
    clock.now += 11
    tasks.watchdog()
    tasks.watchdog()
    assert notifier.sent == ["WATCHDOG=1"], "a hung daemon is left to systemd's watchdog"
    assert sum("no longer pinging systemd" in m for m in messages) == 1
    tasks.liveness.beat()
    tasks.watchdog()
    assert notifier.sent == ["WATCHDOG=1", "WATCHDOG=1"]


def test_a_failing_sync_run_still_counts_as_alive_and_reraises() -> None:
    clock = FakeClock()
    liveness = Liveness(max_quiet=10, clock=clock)
    notifier = RecordingNotifier()

    class LostDatabase:
        def once(self, **_: object) -> list[CycleReport]:
            clock.now += 100
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    tasks = make_tasks(notifier, liveness, LostDatabase())
    with pytest.raises(OperationalError):
        tasks.sync()
    assert liveness.alive()
    assert notifier.sent[-1].startswith("STATUS=sync failed at")
    assert tasks.busy.wait_idle(0)


def test_status_line_summarises_each_tenant() -> None:
    ok = CycleReport("shop", sent=3, lag_seconds=4.2)
    bad = CycleReport("other", outcome=CycleOutcome.PAUSED, error="403 Access denied.")
    line = status_line([ok, bad])
    assert line.startswith("last cycle ")
    assert "shop ok sent=3 failed=0 dead=0 lag=4s" in line
    assert "other paused sent=0 failed=0 dead=0 lag=- (403 Access denied.)" in line


def test_busy_waits_for_running_jobs_until_the_deadline() -> None:
    busy = Busy()
    release = threading.Event()

    def job() -> None:
        with busy.running():
            release.wait(5)

    thread = threading.Thread(target=job)
    thread.start()
    try:
        while busy.wait_idle(0):
            pass  # until the job has started
        assert not busy.wait_idle(0.05)
    finally:
        release.set()
    assert busy.wait_idle(5)
    thread.join()


def test_first_signal_stops_an_echo_is_ignored_a_second_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    called = threading.Event()
    exits: list[int] = []
    clock = FakeClock()
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(os, "write", lambda fd, data: len(data))
    handler = signals.StopSignals(stop, lambda name: called.set(), clock=clock)
    handler._handle(signal.SIGTERM, None)
    assert stop.is_set() and called.wait(2)
    clock.now += 0.01
    handler._handle(signal.SIGTERM, None)
    assert exits == [], "the same request delivered twice is not a second signal"
    clock.now += 5
    handler._handle(signal.SIGINT, None)
    assert exits == [128 + signal.SIGINT]


def test_listener_names_the_job_in_one_warning(messages: list[str]) -> None:
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    lost = OperationalError("SELECT 1", {}, Exception("terminating connection\nDETAIL: x"))
    on_job_event(JobExecutionEvent(EVENT_JOB_ERROR, "sync", "default", when, exception=lost))
    on_job_event(JobExecutionEvent(EVENT_JOB_MISSED, "customers", "default", when))
    on_job_event(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "sync", "default", [when]))
    assert messages == [
        "WARNING job sync failed: OperationalError: terminating connection; "
        "the next run tries again",
        "WARNING job customers missed its run at 10:00:00 (the process was suspended or "
        "overloaded); the next run catches up",
        "WARNING job sync skipped a run: the previous run is still going",
    ]


def test_an_unexpected_job_error_is_logged_with_its_traceback(messages: list[str]) -> None:
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    try:
        raise KeyError("bug")
    except KeyError as exc:
        error = exc
    event = JobExecutionEvent(EVENT_JOB_ERROR, "housekeeping", "default", when, exception=error)
    on_job_event(event)
    assert messages == [
        "ERROR job housekeeping failed unexpectedly: KeyError: 'bug'; the next run tries again"
        " [traceback]"
    ]
