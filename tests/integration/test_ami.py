"""Our AMI client against the AMI emulator over real sockets: login, scripted events in order,
event lists, the ping watchdog, reconnect with no resend, refused logins and closed ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

import pytest

from sync.ami import AmiClient, AmiError, AmiUnavailable, Message
from sync.ami.client import backoff_delays
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios import RingGroupCall
from tests.live_fixtures import free_port

pytestmark = pytest.mark.integration
SECRET = "emulated-secret"


@pytest.fixture
def pbx() -> Iterator[PbxEmulator]:
    with PbxEmulator(secret=SECRET) as server:
        yield server


async def until(condition: Callable[[], object], what: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run(test: Callable[[], Awaitable[None]]) -> None:
    """A hang (say a close() that never returns) fails the test instead of the suite."""
    asyncio.run(asyncio.wait_for(test(), 60))


def client(pbx: PbxEmulator, secret: str = SECRET, **options: float) -> AmiClient:
    return AmiClient("127.0.0.1", pbx.port, "retailcrm", secret, backoff=[0.05, 0.1], **options)


def test_backoff_is_1_2_4_up_to_30() -> None:
    assert backoff_delays() == [1, 2, 4, 8, 16, 30]


def test_scripted_call_reaches_subscribers_in_order_and_show_channels_lists_it(
    pbx: PbxEmulator,
) -> None:
    call = RingGroupCall("1764.1", "80291234567", "80172000000", ("101", "102"),
                         datetime(2026, 11, 30, 10), answered_by="101")  # fmt: skip
    events = call.events()

    async def test() -> None:
        ami = client(pbx)
        seen: list[Message] = []
        ami.subscribe(lambda m: seen.append(m) if m.event != "FullyBooted" else None)
        ami.start()
        await until(lambda: ami.connected, "login")
        pbx.play(events[:4])  # trunk and the first member created, the dial started
        await until(lambda: len(seen) == 4, "the first events")
        listed = await ami.send_list("CoreShowChannels")
        channels = [m.get("Channel") for m in listed if m.event == "CoreShowChannel"]
        created = [e["Channel"] for e in events[:4] if e["Event"] == "Newchannel"]
        assert channels == created and len(created) == 3
        assert listed[-1].event == "CoreShowChannelsComplete"
        pbx.play(events[4:])
        await until(lambda: len(seen) == len(events), "every event")
        assert [m.as_dict() for m in seen] == events
        state = await ami.send("ExtensionState", {"Exten": "101", "Context": "from-internal"})
        assert state.get("Status") == "0"
        await ami.close()

    run(test)


def test_watchdog_reconnects_a_stalled_pbx_and_waiting_actions_fail_without_resend(
    pbx: PbxEmulator,
) -> None:
    async def test() -> None:
        ami = client(pbx, ping_seconds=1)
        ami.start()
        await until(lambda: ami.connected, "login")
        pbx.stall()
        with pytest.raises(AmiError):
            await ami.send("QueuePause", {"Interface": "PJSIP/101", "Paused": "true"},
                           timeout=0.5)  # fmt: skip
        await until(lambda: not ami.connected, "the watchdog to drop the connection")
        pbx.stall(False)
        await until(lambda: ami.connected and pbx.logins >= 2, "the reconnect")
        await asyncio.sleep(0)  # let any (wrongly) re-sent action reach the emulator
        assert len(pbx.actions_named("QueuePause")) == 1
        await ami.close()

    run(test)


def test_a_dropped_connection_fails_the_action_in_flight(pbx: PbxEmulator) -> None:
    async def test() -> None:
        ami = client(pbx)
        ami.start()
        await until(lambda: ami.connected, "login")
        pbx.stall()
        waiting = asyncio.create_task(ami.send("Ping", timeout=10))
        await until(lambda: pbx.actions_named("Ping"), "the Ping to arrive")
        pbx.drop_connections()
        with pytest.raises(AmiUnavailable):
            await waiting
        pbx.stall(False)
        await until(lambda: ami.connected, "the reconnect")
        assert (await ami.send("Ping")).get("Ping") == "Pong"
        await ami.close()

    run(test)


def test_refused_login_and_closed_port_retry_with_one_state_each(pbx: PbxEmulator) -> None:
    async def test() -> None:
        wrong = client(pbx, secret="wrong")
        wrong.start()
        await until(lambda: len(pbx.actions_named("Login")) >= 3, "three login attempts")
        assert not wrong.connected and wrong.state.startswith("login refused")
        with pytest.raises(AmiUnavailable):
            await wrong.send("Ping")
        await wrong.close()
        pbx.refuse_login = True  # the fault: even the right secret is refused
        right = client(pbx)
        right.start()
        await until(lambda: right.state.startswith("login refused"), "the refused login")
        pbx.refuse_login = False
        await until(lambda: right.connected, "the login once accepted again")
        await right.close()
        closed = AmiClient("127.0.0.1", free_port(), "retailcrm", SECRET, backoff=[0.05])
        closed.start()
        await until(lambda: closed.state.startswith("unreachable"), "the connect to fail")
        await closed.close()

    run(test)
