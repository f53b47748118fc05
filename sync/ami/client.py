"""One AMI connection kept alive: login, ping watchdog, reconnect with backoff, typed actions.

Rules that matter for a PBX that places real calls:
- an action is written once; a reconnect fails every action still waiting (``AmiUnavailable``)
  instead of re-sending it, so a click never dials twice;
- the reader only parses and routes: events go to a bounded queue drained by another task, so
  a slow handler never stalls the socket (Asterisk drops a slow reader after ``writetimeout``);
- one log line per change of state (``connected``, ``login refused``, ``unreachable``...), not
  one per retry, and never the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Callable, Mapping

from loguru import logger

from sync.ami.protocol import Message, Parser, ProtocolError, encode_action

EventHandler = Callable[[Message], None]
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
EVENT_QUEUE = 10_000


class AmiError(Exception):
    """The PBX answered an action with ``Response: Error`` (or did not answer in time)."""


class AmiUnavailable(AmiError):
    """No AMI connection now, or it broke while the action waited: nothing was (re)sent."""


def backoff_delays(start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> list[float]:
    """1, 2, 4 … 30: the waits between failed attempts (the last repeats)."""
    delays, delay = [], start
    while delay < cap:
        delays.append(delay)
        delay *= 2
    return [*delays, cap]


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_seconds: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: list[float] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.ping_seconds = ping_seconds
        self.connect_timeout = connect_timeout
        self.backoff = backoff or backoff_delays()
        self.state = "starting"
        self.connected = False
        self.dropped_events = 0
        self.logins = 0
        self.attempts = 0
        """Connection attempts so far (tests, diagnostics)."""
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, list[Message]] = {}
        self._list_done: dict[str, asyncio.Future[list[Message]]] = {}
        self._events: asyncio.Queue[Message] = asyncio.Queue(maxsize=EVENT_QUEUE)
        self._handlers: list[EventHandler] = []
        self._on_login: list[Callable[[], None]] = []
        self._on_state: list[Callable[[str], None]] = []
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(3)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"AmiClient({self.username}@{self.host}:{self.port}, {self.state})"

    # -- lifecycle ---------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        """``handler`` gets every event, in order, outside the reader."""
        self._handlers.append(handler)

    def on_login(self, callback: Callable[[], None]) -> None:
        self._on_login.append(callback)

    def on_state(self, callback: Callable[[str], None]) -> None:
        """``callback(state)`` on every change of state (systemd STATUS=, metrics)."""
        self._on_state.append(callback)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="ami")
        return self._task

    async def close(self) -> None:
        """Stop for good. The cancel is repeated until the task ends: Python 3.11's
        ``wait_for`` can lose a cancellation that meets an answer arriving at the same moment,
        and ``_closing`` ends the loop at its next turn even then."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    async def run(self) -> None:
        """Connect, serve, reconnect, until cancelled."""
        dispatcher = asyncio.create_task(self._dispatch(), name="ami-events")
        attempt = 0
        try:
            while not self._closing:
                logged_in = await self._session()
                attempt = 0 if logged_in else attempt + 1
                await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        where = f"AMI {self.username}@{self.host}:{self.port}"
        if state == "connected":
            logger.info(f"{where}: connected")
        else:
            logger.warning(f"{where}: {state}; retrying with backoff up to {self.backoff[-1]:g} s")
        for callback in self._on_state:
            callback(state)

    async def _session(self) -> bool:
        """One connection from open to close; True when the login succeeded."""
        self.attempts += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self._set_state(f"unreachable ({_os_reason(exc)})")
            return False
        self._writer = writer
        reading = asyncio.create_task(self._read(reader), name="ami-reader")
        pinging: asyncio.Task[None] | None = None
        try:
            try:
                answer = await self._action(
                    "Login",
                    {"Username": self.username, "Secret": self._secret, "Events": "on"},
                    self.connect_timeout,
                )
            except AmiError as exc:
                self._set_state(f"login failed ({exc})")
                return False
            if not answer.success:
                self._set_state(f"login refused ({answer.get('Message') or 'no reason'})")
                return False
            self.logins += 1
            self.connected = True
            self._set_state("connected")
            for callback in self._on_login:
                callback()
            pinging = asyncio.create_task(self._ping_loop(), name="ami-ping")
            done, _ = await asyncio.wait({reading, pinging}, return_when=asyncio.FIRST_COMPLETED)
            reason = "connection closed by the PBX" if reading in done else "no answer to Ping"
            self._set_state(f"disconnected ({reason})")
            return True
        finally:
            self.connected = False
            self._writer = None
            # Closed before any await: a cancellation arriving below must not leak the socket.
            writer.close()
            helpers = [task for task in (reading, pinging) if task is not None]
            for task in helpers:
                task.cancel()
            try:
                # gather, not `suppress(CancelledError)`: a close() arriving right now must
                # still cancel us (swallowing it would leave run() reconnecting forever).
                await asyncio.gather(*helpers, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1)
            finally:
                self._fail_waiting()

    def _fail_waiting(self) -> None:
        """Every action still waiting fails now; none is ever sent again."""
        futures: list[asyncio.Future[Message] | asyncio.Future[list[Message]]] = [
            *self._pending.values(),
            *self._list_done.values(),
        ]
        for future in futures:
            if not future.done():
                future.set_exception(
                    AmiUnavailable("AMI connection lost; the action was not re-sent")
                )
        self._pending.clear()
        self._lists.clear()
        self._list_done.clear()

    # -- reading -----------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = Parser()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            try:
                messages = parser.feed(data)
            except ProtocolError as exc:
                logger.warning(f"AMI {self.host}:{self.port}: {exc}; reconnecting")
                return
            for message in messages:
                self._route(message)

    def _route(self, message: Message) -> None:
        action_id = message.action_id
        if message.is_response:
            future = self._pending.pop(action_id, None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        if action_id in self._lists:
            self._lists[action_id].append(message)
            if message.event.endswith("Complete"):
                done = self._list_done.pop(action_id, None)
                events = self._lists.pop(action_id)
                if done is not None and not done.done():
                    done.set_result(events)
            return
        try:
            self._events.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped_events += 1

    async def _dispatch(self) -> None:
        while True:
            message = await self._events.get()
            for handler in self._handlers:
                try:
                    handler(message)
                except Exception:
                    logger.opt(exception=True).error(f"AMI event handler failed on {message.event}")

    # -- actions -----------------------------------------------------------------------------

    async def send(
        self,
        action: str,
        fields: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        action_id: str | None = None,
    ) -> Message:
        """Send once and return the response; ``AmiUnavailable`` at once when not connected."""
        if not self.connected:
            raise AmiUnavailable(f"AMI not connected ({self.state})")
        return await self._action(action, dict(fields or {}), timeout, action_id)

    async def send_list(
        self, action: str, fields: Mapping[str, str] | None = None, *, timeout: float = 10.0
    ) -> list[Message]:
        """An action answered by an event list (``CoreShowChannels``): its events, in order."""
        if not self.connected:
            raise AmiUnavailable(f"AMI not connected ({self.state})")
        action_id = self._new_id()
        self._lists[action_id] = []
        done: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._list_done[action_id] = done
        try:
            answer = await self._action(action, dict(fields or {}), timeout, action_id)
            if not answer.success:
                raise AmiError(answer.get("Message") or f"{action} refused")
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise AmiError(f"{action}: event list not complete within {timeout:g} s") from None
        finally:
            self._lists.pop(action_id, None)
            self._list_done.pop(action_id, None)

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def _action(
        self, action: str, fields: dict[str, str], timeout: float, action_id: str | None = None
    ) -> Message:
        writer = self._writer
        if writer is None:
            raise AmiUnavailable("AMI not connected")
        action_id = action_id or self._new_id()
        payload = encode_action({"Action": action, "ActionID": action_id, **fields})
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), timeout)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AmiError(f"{action}: no answer within {timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise AmiUnavailable(f"AMI connection lost ({_os_reason(exc)})") from None
        finally:
            self._pending.pop(action_id, None)

    async def _ping_loop(self) -> None:
        """Watchdog: a ``Ping`` every ``ping_seconds``; no answer within half of it ends it."""
        while True:
            await asyncio.sleep(self.ping_seconds)
            try:
                await self._action("Ping", {}, self.ping_seconds / 2)
            except AmiError:
                return


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or type(exc).__name__
