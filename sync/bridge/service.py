"""``serve`` as a process: one asyncio loop with uvicorn, the AMI connection and sd_notify.

READY goes out once the database answered and the HTTP socket listens; WATCHDOG only while
both the AMI task (connected or retrying: a down Asterisk is not a reason for systemd to
restart us) and the HTTP loop are alive. SIGTERM: stop accepting, let requests in flight finish
(bounded by ``[daemon] stop_timeout``), close AMI, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from loguru import logger

from jobs.notify import Notifier
from sync.ami import AmiClient
from sync.bridge.app import Bridge, build_app
from sync.bridge.directory import RELOAD_SECONDS
from sync.config import Settings
from sync.engine.store import Store
from sync.reload import Reloader

DB_WORKERS = 16


class ListenError(Exception):
    """The HTTP port could not be opened (in use, no permission)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours stops it, and it must not re-raise the
    signal after a graceful stop (that would end the process with -15 instead of 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_ami(settings: Settings) -> AmiClient | None:
    if settings.ami is None:
        return None
    ami = settings.ami
    return AmiClient(
        ami.host,
        ami.port,
        ami.username,
        ami.secret.reveal(),
        ping_seconds=ami.ping_seconds,
        connect_timeout=ami.connect_timeout,
    )


def make_server(bridge: Bridge, stop_timeout: float) -> _Server:
    serve = bridge.serve
    config = uvicorn.Config(
        build_app(bridge),
        host=serve.listen_host,
        port=serve.listen_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(stop_timeout) - 1),
        server_header=False,
    )
    return _Server(config)


class BridgeService:
    """The running bridge; ``run()`` until ``stop()`` (or SIGTERM when ``signals``)."""

    def __init__(self, settings: Settings, store: Store, notifier: Notifier | None = None):
        self.settings = settings
        self.notifier = notifier or Notifier({})
        self.ami = make_ami(settings)
        self.bridge = Bridge(settings, store, self.ami)
        self.server = make_server(self.bridge, settings.daemon.stop_timeout)
        self.port = 0
        self.reloader = Reloader(settings, self._apply)

    def _apply(self, settings: Settings) -> None:
        self.bridge.reload(settings)
        self.settings = settings

    def _on_hup(self) -> None:
        """SIGHUP: the config file and the tenants directory again, off the event loop."""
        asyncio.get_running_loop().run_in_executor(None, self.reloader.reload, "SIGHUP")

    def stop(self) -> None:
        if not self.server.should_exit:
            logger.info("serve: stopping (finishing requests in flight)")
            self.notifier.stopping("finishing requests in flight")
        self.server.should_exit = True

    async def _reload_directory(self) -> None:
        """clientIds, tokens and /activity flags from the database, off the request path (a
        click never waits for this read; an unknown clientId still reloads at once)."""
        tenants_read = time.monotonic()
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await asyncio.to_thread(self.bridge.directory.load)
            except Exception as exc:  # the database may be away for a while; keep serving
                logger.warning(f"serve: tenant directory not reloaded: {type(exc).__name__}")
            # The [tenants_directory] table too, on its own schedule (sync/reload.py).
            directory = self.settings.directory
            if (
                directory is not None
                and time.monotonic() - tenants_read >= directory.reload_seconds
            ):
                tenants_read = time.monotonic()
                await asyncio.to_thread(
                    self.reloader.reload, "tenants directory", quiet_if_same=True
                )

    async def _serve_http(self) -> None:
        try:
            await self.server.serve()
        except SystemExit:  # uvicorn exits (3) when it cannot bind; it logged the reason
            serve = self.settings.serve
            where = f"{serve.listen_host}:{serve.listen_port}" if serve else "?"
            raise ListenError(f"serve: cannot listen on {where} (reason logged above)") from None

    async def run(self, *, signals: bool = True) -> int:
        loop = asyncio.get_running_loop()
        # Database lookups of clicks and callbacks; CRM calls have their own pool (app.py).
        loop.set_default_executor(ThreadPoolExecutor(DB_WORKERS, thread_name_prefix="db"))
        await asyncio.to_thread(self.bridge.directory.load)
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        if self.ami is not None:
            gauge = self.bridge.metrics.ami_connected
            self.ami.on_state(lambda state: self.notifier.status(f"AMI {state}"))
            self.ami.on_state(lambda state: gauge.set(1 if state == "connected" else 0))
        popups = self.bridge.popups
        if popups is not None:
            popups.start()
        ami_task = self.ami.start() if self.ami is not None else None
        http_task = asyncio.create_task(self._serve_http(), name="http")
        watchdog = asyncio.create_task(
            _feed_watchdog(self.notifier, self.server, ami_task, http_task)
        )
        reloader = asyncio.create_task(self._reload_directory())
        try:
            while not self.server.started and not http_task.done():
                await asyncio.sleep(0.02)
            if http_task.done():
                http_task.result()  # raises ListenError
                return 1
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
            where = f"{self.settings.serve.listen_host if self.settings.serve else '?'}:{self.port}"
            logger.info(f"serve: listening on {where}")
            self.notifier.ready(f"listening on {where}")
            await http_task
        finally:
            watchdog.cancel()
            reloader.cancel()
            if self.ami is not None:
                await self.ami.close()
            if popups is not None:
                await popups.close()
            self.bridge.refresher.cancel()
            self.bridge.crm_pool.shutdown(wait=False, cancel_futures=True)
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
        logger.info("serve: stopped")
        return 0


async def run_service(settings: Settings, store: Store, notifier: Notifier) -> int:
    return await BridgeService(settings, store, notifier).run()


async def _feed_watchdog(
    notifier: Notifier,
    server: uvicorn.Server,
    ami_task: asyncio.Task[None] | None,
    http_task: asyncio.Task[None],
) -> None:
    period = notifier.watchdog_seconds
    if period is None:
        return
    while True:
        await asyncio.sleep(period / 3)
        alive = not http_task.done() and (ami_task is None or not ami_task.done())
        if alive and server.started:
            notifier.watchdog()


class ServiceThread:
    """``serve`` in a thread with its own loop, for the demo, tests and benchmarks;
    ``stop()`` does what SIGTERM does."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.service = BridgeService(settings, store)
        self.loop = asyncio.new_event_loop()
        self.result: int | None = None
        self.thread = threading.Thread(target=self._run, name="serve", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.loop.run_until_complete(self.service.run(signals=False))
        finally:
            self.loop.close()

    def start(self, timeout: float = 30.0) -> int:
        """Start and wait until it listens; returns the port."""
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.service.port and self.thread.is_alive() and time.monotonic() < end:
            time.sleep(0.01)
        if not self.service.port:
            raise RuntimeError("serve did not start listening")
        return self.service.port

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.service.stop)
            self.thread.join(60)
