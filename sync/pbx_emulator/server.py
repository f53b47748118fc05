"""A TCP server speaking AMI on 127.0.0.1: enough of Asterisk for ``serve`` to be tested for real.

It runs its own asyncio loop in a thread, so synchronous tests, the demo and benchmarks drive
it the same way. What it does (spec/realtime-bridge.md B1, B5): Login (a wrong secret is
refused), Ping, Events, Logoff, ListCommands (only what the user may run, as Asterisk does),
Originate (``Extension does not exist.`` for an unknown context or extension, else queued, then
the originated call's events and ``OriginateResponse``), CoreShowChannels, QueuePause,
ExtensionState; permissions per action class; faults: drop every connection, stall (read but
never answer), refuse logins. Scripted calls (``scenarios``) are played to every session.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import FrameType, TracebackType

from loguru import logger

from sync.ami.protocol import Message, Parser, ProtocolError, encode_action
from sync.pbx_emulator.scenarios import ClickCall

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
ALL_CLASSES = frozenset({"originate", "call", "reporting", "agent", "system"})
# Write classes that allow each action (any one suffices: manager.c, writeperm & authority).
ACTION_CLASSES: dict[str, frozenset[str]] = {
    "originate": frozenset({"originate"}),
    "coreshowchannels": frozenset({"system", "reporting"}),
    "queuepause": frozenset({"agent"}),
    "extensionstate": frozenset({"call", "reporting"}),
}
DEMO_EXTENSIONS = tuple(str(number) for number in range(101, 121))
OPEN_ACTIONS = ("Ping", "Events", "Logoff", "ListCommands", "Login")
Event = Mapping[str, str]


class _Session:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.logged_in = False
        self.events_on = True

    def send(self, fields: Mapping[str, str]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_action(fields))


class PbxEmulator:
    """``with PbxEmulator(secret=...) as pbx: pbx.port`` — an AMI server on 127.0.0.1."""

    def __init__(
        self,
        secret: str,
        username: str = "retailcrm",
        *,
        extensions: Iterable[str] = DEMO_EXTENSIONS,
        dialplan: Mapping[str, str] | None = None,
        write_classes: Iterable[str] = ("originate", "call", "reporting", "agent"),
        event_gap: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.username = username
        self._secret = secret
        self.extensions = set(extensions)
        self.dialplan = {
            k: re.compile(v) for k, v in (dialplan or {"from-internal": r"^\+?\d{3,20}$"}).items()
        }
        self.write_classes = frozenset(write_classes)
        self.event_gap = event_gap
        self.clock = clock or (lambda: datetime.now().replace(microsecond=0))
        """Wall time (the call log's zone) an originated call starts at, for its CDR legs."""
        self.refuse_login = False
        self.outcomes: dict[str, str] = {}
        """Extension -> outcome of the manager's phone for an Originate (default answered)."""
        self.host = "127.0.0.1"
        self.port = 0
        self.lock = threading.Lock()
        self._actions: list[Message] = []
        self._arrivals: dict[str, float] = {}
        self._originated: list[ClickCall] = []
        self._on_call: list[Callable[[ClickCall], None]] = []
        self._sessions: set[_Session] = set()
        self._channels: dict[str, dict[str, str]] = {}
        self._stalled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.logins = 0
        self.events_sent = 0
        """Played events that reached at least one logged-in session."""
        self.first_ring: dict[str, float] = {}
        """Linkedid -> ``time.perf_counter()`` when its first ``Newstate`` Ringing was sent."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        ready = threading.Event()
        self.host = host

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._client, host, port, reuse_address=True)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="pbx-emulator", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for session in list(self._sessions):
                session.writer.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> PbxEmulator:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call_soon(self, fn: Callable[[], None]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    # -- inspection --------------------------------------------------------------------------

    @property
    def actions(self) -> list[Message]:
        """Every action received, the Login secret blanked."""
        with self.lock:
            return list(self._actions)

    @property
    def arrivals(self) -> dict[str, float]:
        """ActionID of each Originate -> ``time.perf_counter()`` at its arrival (benchmarks)."""
        with self.lock:
            return dict(self._arrivals)

    def actions_named(self, name: str) -> list[Message]:
        return [a for a in self.actions if a.get("Action").lower() == name.lower()]

    @property
    def originated(self) -> list[ClickCall]:
        with self.lock:
            return list(self._originated)

    @property
    def sessions(self) -> int:
        return sum(1 for s in self._sessions if s.logged_in)

    def on_call(self, callback: Callable[[ClickCall], None]) -> None:
        """``callback(call)`` once an originated call has played all its events."""
        self._on_call.append(callback)

    # -- faults ------------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every client connection at once, as an Asterisk restart does."""

        def drop() -> None:
            for session in list(self._sessions):
                session.writer.close()

        self._call_soon(drop)

    def stall(self, stalled: bool = True) -> None:
        """Keep connections open but answer nothing (a hung Asterisk)."""
        self._stalled = stalled

    # -- scripted events ---------------------------------------------------------------------

    def play(self, events: Sequence[Event]) -> None:
        """Send ``events`` (from ``scenarios``) to every logged-in session, in order."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._play(list(events)), self._loop)

    async def _play(self, events: Sequence[Event]) -> None:
        for event in events:
            self._track(event)
            reached = False
            for session in list(self._sessions):
                if session.logged_in and session.events_on and not session.writer.is_closing():
                    session.send(event)
                    reached = True
            self.events_sent += reached
            if reached and event.get("ChannelState") == "5" and event.get("Event") == "Newstate":
                self.first_ring.setdefault(event.get("Linkedid", ""), time.perf_counter())
            if self.event_gap:
                await asyncio.sleep(self.event_gap)

    def _track(self, event: Event) -> None:
        name, uid = event.get("Event"), event.get("Uniqueid", "")
        if name == "Newchannel":
            self._channels[uid] = dict(event)
        elif name == "Newstate" and uid in self._channels:
            self._channels[uid].update(event)
        elif name == "DialEnd" and event.get("DialStatus") == "ANSWER":
            dest = self._channels.get(event.get("DestUniqueid", ""))
            if dest is not None:  # answered: CoreShowChannels lists it Up
                dest.update(ChannelState="6", ChannelStateDesc="Up")
        elif name == "Hangup":
            self._channels.pop(uid, None)

    # -- the protocol ------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        self._sessions.add(session)
        parser = Parser()
        try:
            writer.write(BANNER)
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for message in parser.feed(data):
                    self._record(message)
                    while self._stalled and not writer.is_closing():
                        await asyncio.sleep(0.05)
                    self._handle(session, message)
                    if writer.is_closing():
                        return
                await writer.drain()
        except (ConnectionError, ProtocolError, OSError):
            return
        finally:
            self._sessions.discard(session)
            writer.close()

    def _record(self, message: Message) -> None:
        """Every action as it arrives (a stalled PBX has still received it)."""
        blanked = tuple((k, "***" if k.lower() == "secret" else v) for k, v in message.headers)
        with self.lock:
            self._actions.append(Message(blanked))
            if message.get("Action").lower() == "originate":
                self._arrivals[message.action_id] = time.perf_counter()

    def _handle(self, session: _Session, message: Message) -> None:
        name = message.get("Action")
        action_id = message.action_id
        reply: dict[str, str] = {"Response": "Error", "ActionID": action_id}
        lower = name.lower()
        if lower == "login":
            reply |= self._login(session, message)
        elif not session.logged_in:
            reply["Message"] = "Authentication Required"
        elif lower in ACTION_CLASSES and not (ACTION_CLASSES[lower] & self.write_classes):
            reply["Message"] = "Permission denied"
        elif lower == "ping":
            reply |= {"Response": "Success", "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}
        elif lower == "events":
            session.events_on = message.get("EventMask", "on").lower() != "off"
            reply |= {"Response": "Success", "Events": "On" if session.events_on else "Off"}
        elif lower == "logoff":
            session.send(
                {
                    "Response": "Goodbye",
                    "ActionID": action_id,
                    "Message": "Thanks for all the fish.",
                }
            )
            session.writer.close()
            return
        elif lower == "listcommands":
            reply |= {"Response": "Success"}
            reply |= {a: a for a in OPEN_ACTIONS}
            reply |= {
                a: a
                for a in ("Originate", "CoreShowChannels", "QueuePause", "ExtensionState")
                if ACTION_CLASSES[a.lower()] & self.write_classes
            }
        elif lower == "originate":
            reply |= self._originate(message)
        elif lower == "coreshowchannels":
            self._show_channels(session, action_id)
            return
        elif lower == "queuepause":
            interface = message.get("Interface")
            if re.match(r"^(PJSIP|SIP|IAX2|Local)/\S+$", interface):
                paused = message.get("Paused").lower() in ("true", "yes", "1")
                verb = "paused" if paused else "unpaused"
                reply |= {"Response": "Success", "Message": f"Interface {verb} successfully"}
            else:
                reply["Message"] = "Interface not found"
        elif lower == "extensionstate":
            known = message.get("Exten") in self.extensions
            reply |= {
                "Response": "Success",
                "Message": "Extension Status",
                "Exten": message.get("Exten"),
                "Context": message.get("Context"),
                "Status": "0" if known else "-1",
                "StatusText": "Idle" if known else "Unknown",
            }
        else:
            reply["Message"] = "Invalid/unknown command"
        session.send(reply)

    def _login(self, session: _Session, message: Message) -> dict[str, str]:
        ok = (
            not self.refuse_login
            and message.get("Username") == self.username
            and message.get("Secret") == self._secret
        )
        if not ok:
            return {"Message": "Authentication failed"}
        session.logged_in = True
        session.events_on = message.get("Events", "on").lower() != "off"
        self.logins += 1
        self._call_soon(lambda: session.send({"Event": "FullyBooted", "Status": "Fully Booted"}))
        return {"Response": "Success", "Message": "Authentication accepted"}

    def _originate(self, message: Message) -> dict[str, str]:
        channel, context, exten = (
            message.get("Channel"),
            message.get("Context"),
            message.get("Exten"),
        )
        if not channel:
            return {"Message": "Channel not specified"}
        if "/" not in channel:
            return {"Message": "Invalid channel"}
        if message.get("Priority", "1") != "1":
            return {"Message": "Invalid priority"}
        if len(message.get("ChannelId")) > 149:
            return {"Message": "Uniqueid length exceeds maximum"}
        pattern = self.dialplan.get(context)
        if pattern is None or not pattern.fullmatch(exten):
            return {"Message": "Extension does not exist."}
        match = re.match(r"^Local/([^@]+)@([^/]+)$", channel)
        extension = match.group(1) if match else channel.split("/", 1)[1]
        outcome = self.outcomes.get(extension, "answered")
        if extension not in self.extensions:
            outcome = "failed"
        self._seq += 4
        call = ClickCall(
            linkedid=message.get("ChannelId") or f"{time.time():.6f}",
            action_id=message.action_id,
            extension=extension,
            number=exten,
            start=self.clock(),
            outcome=outcome,
            context=match.group(2) if match else "originate",
            seq=self._seq,
        )
        if self._loop is not None:
            self._loop.create_task(self._play_originated(call))
        return {"Response": "Success", "Message": "Originate successfully queued"}

    async def _play_originated(self, call: ClickCall) -> None:
        await asyncio.sleep(0)  # the queued reply goes first, as in Asterisk
        await self._play(call.events())
        with self.lock:
            self._originated.append(call)
        for callback in self._on_call:
            try:
                callback(call)
            except Exception:
                logger.opt(exception=True).error("pbx emulator: on_call callback failed")

    def _show_channels(self, session: _Session, action_id: str) -> None:
        session.send(
            {
                "Response": "Success",
                "ActionID": action_id,
                "EventList": "start",
                "Message": "Channels will follow",
            }
        )
        for channel in list(self._channels.values()):
            fields = {"Event": "CoreShowChannel", "ActionID": action_id}
            fields |= {k: v for k, v in channel.items() if k != "Event"}
            session.send(fields)
        session.send(
            {
                "Event": "CoreShowChannelsComplete",
                "ActionID": action_id,
                "EventList": "Complete",
                "ListItems": str(len(self._channels)),
            }
        )


def run_standalone(host: str, port: int, secret: str, username: str = "retailcrm") -> None:
    """``retailcrm-sync pbx-emulator``: serve until SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    emulator = PbxEmulator(secret=secret, username=username)
    emulator.start(port, host)
    print(f"AMI emulator on {host}:{emulator.port} (user {username})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.5):
            pass
    emulator.stop()
