"""One-shot AMI check for ``check``: can we log in, and may we run what ``serve`` needs?

``ListCommands`` lists only the actions the user's ``write=`` classes allow (Asterisk's
``manager.c``), so it tells the permissions without trying an Originate.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sync.ami.protocol import Message, Parser, encode_action

NEEDED = {
    "Originate": "click-to-call (write=originate)",
    "QueuePause": "user status → queue pause (write=agent)",
    "CoreShowChannels": "pop-ups after a reconnect (write=reporting)",
}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str = ""
    actions: frozenset[str] = frozenset()


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    parser: Parser,
    action: dict[str, str],
) -> Message:
    writer.write(encode_action(action))
    await writer.drain()
    while True:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("closed by the PBX")
        for message in parser.feed(data):
            if message.is_response and message.action_id == action["ActionID"]:
                return message


async def probe(host: str, port: int, username: str, secret: str, timeout: float) -> ProbeResult:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return ProbeResult(False, f"unreachable ({reason})")
    parser = Parser()
    try:
        login = await asyncio.wait_for(
            _exchange(reader, writer, parser, {
                "Action": "Login", "ActionID": "check-1", "Username": username,
                "Secret": secret, "Events": "off",
            }),
            timeout,
        )  # fmt: skip
        if not login.success:
            return ProbeResult(False, f"login refused ({login.get('Message') or 'no reason'})")
        listed = await asyncio.wait_for(
            _exchange(reader, writer, parser, {"Action": "ListCommands", "ActionID": "check-2"}),
            timeout,
        )
        actions = frozenset(k for k, _ in listed.headers if k not in ("Response", "ActionID"))
        with contextlib.suppress(Exception):
            writer.write(encode_action({"Action": "Logoff", "ActionID": "check-3"}))
            await writer.drain()
        return ProbeResult(True, actions=actions)
    except (OSError, TimeoutError, ConnectionError) as exc:
        return ProbeResult(False, f"no answer ({type(exc).__name__})")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def probe_sync(host: str, port: int, username: str, secret: str, timeout: float) -> ProbeResult:
    return asyncio.run(probe(host, port, username, secret, timeout))
