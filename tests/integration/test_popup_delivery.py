"""Sending one pop-up (P6, §6.5 retries) against the CRM emulator, with injected time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from sync import config
from sync.bridge.metrics import Metrics
from sync.config import Secret, TenantSettings
from sync.crm.client import RetailCRMClient
from sync.crm.errors import FatalError, RetriableError
from sync.crm.module import desired_module
from sync.emulator import Emulator
from sync.popups.delivery import PopupSender
from sync.popups.events import Popup
from sync.popups.poster import PATH, EventPoster
from tests.crm_fixtures import API_KEY, FakeTime, emulator  # noqa: F401
from tests.live_fixtures import live_config

pytestmark = pytest.mark.integration
EVENT = {"phone": "+375291234567", "type": "in", "codes": ["101"], "callExternalId": "x-1"}


def tenant(emu: Emulator) -> TenantSettings:
    return TenantSettings(
        name="shop",
        url=emu.base_url,
        api_key=Secret(API_KEY),
        logo_url="https://pbx.example.com/a.svg",
        extensions=MappingProxyType({"101": 11}),
    )


def registered(emu: Emulator) -> TenantSettings:
    settings = tenant(emu)
    emu.add_user(11, "User 101")
    with RetailCRMClient(emu.base_url, API_KEY, tenant="shop") as client:
        client.edit_integration_module(desired_module(settings, "c" * 32, None))
    return settings


def poster(settings: TenantSettings, fake: FakeTime) -> EventPoster:
    async def sleep(seconds: float) -> None:
        fake.sleep(seconds)

    return EventPoster(settings, connect_timeout=1, read_timeout=1, clock=fake.clock, sleep=sleep)


def post(sender: EventPoster, event: dict[str, Any], budget: float) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        try:
            return await sender.post(event, budget)
        finally:
            sender.close()

    return asyncio.run(run())


def test_503_is_retried_inside_the_deadline(emulator: Emulator) -> None:  # noqa: F811
    fake = FakeTime()
    sender = poster(registered(emulator), fake)
    emulator.fail_next(PATH, n=2, status=503)
    answer = post(sender, EVENT, budget=3)
    assert answer["success"] is True and answer["notExistCodes"] == []
    assert len(emulator.events) == 1 and len(fake.sleeps) == 2 and sum(fake.sleeps) < 3


def test_nothing_is_sent_once_the_deadline_has_passed(emulator: Emulator) -> None:  # noqa: F811
    fake = FakeTime()
    sender = poster(registered(emulator), fake)
    emulator.fail_next(PATH, n=1000, status=503)
    with pytest.raises(RetriableError):
        post(sender, EVENT, budget=0.5)
    assert emulator.events == [] and sum(fake.sleeps) < 0.5
    sent = len([r for r in emulator.requests if r.path == PATH])
    emulator.clear_faults()
    fake.now += 100
    with pytest.raises(RetriableError, match="not sent"):
        post(sender, EVENT, budget=-1)
    assert len([r for r in emulator.requests if r.path == PATH]) == sent


def test_other_4xx_is_not_retried(emulator: Emulator) -> None:  # noqa: F811
    fake = FakeTime()
    sender = poster(registered(emulator), fake)
    with pytest.raises(FatalError):
        post(sender, {**EVENT, "phone": ""}, budget=3)
    assert fake.sleeps == [] and len([r for r in emulator.requests if r.path == PATH]) == 1


def test_sender_drops_stale_popups_and_reports_unknown_codes_once(
    emulator: Emulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = live_config(tmp_path, emulator, port=1, ami_port=2)
    settings = config.load(path, {"TEST_RETAILCRM_KEY": API_KEY, "TEST_AMI_SECRET": "s"})
    registered(emulator)
    metrics = Metrics()
    now = [100.0]
    sender = PopupSender(settings, metrics, clock=lambda: now[0], workers=2)
    outcomes: list[str] = []
    sender.on_delivered.append(lambda popup, outcome: outcomes.append(outcome))

    def popup(at: float, code: str) -> Popup:
        return Popup("shop", "in", (code,), "+375291234567", "x-1", "1", at)

    async def run() -> None:
        sender.start()
        sender.submit(popup(90.0, "101"))  # 10 s old: dropped without a request
        sender.submit(popup(100.0, "555"))
        sender.submit(popup(100.0, "555"))
        while len(outcomes) < 3:
            await asyncio.sleep(0.01)
        await sender.close()

    asyncio.run(run())
    assert outcomes == ["dropped", "sent", "sent"]
    assert len(emulator.events) == 2
    text = metrics.render().decode()
    assert 'retailcrm_sync_popups_total{outcome="dropped",tenant="shop",type="in"} 1.0' in text
    assert 'retailcrm_sync_popups_total{outcome="sent",tenant="shop",type="in"} 2.0' in text
    assert ("shop", "code 555") in sender._logged
