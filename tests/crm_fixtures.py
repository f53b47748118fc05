"""Fixtures for tests that talk to the RetailCRM emulator over HTTP on 127.0.0.1.

Registered for every test by ``pytest_plugins`` in ``tests/conftest.py``: take a parameter
named ``emulator`` or ``crm``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sync.crm import RetailCRMClient
from sync.emulator import Emulator

API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(name="emulator")
def emulator_fixture() -> Iterator[Emulator]:
    """A fresh emulated account (key ``API_KEY``, shop ``shop``), served for one test."""
    with Emulator(api_key=API_KEY) as emu:
        yield emu


class FakeTime:
    """The client's retry time: ``sleep`` moves ``clock`` on and is recorded, never spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(emu: Emulator, api_key: str = API_KEY, **options: Any) -> RetailCRMClient:
    """A client of ``emu``; small budgets and timeouts keep failure tests fast."""
    settings: dict[str, Any] = {"tenant": "shop", "budget_seconds": 5, "read_timeout": 5}
    settings.update(options)
    return RetailCRMClient(emu.base_url, api_key, **settings)


emulator = emulator_fixture


@pytest.fixture(name="crm")
def crm_fixture(emulator: Emulator) -> Iterator[RetailCRMClient]:
    """A client with the default rates (40/s telephony, 10/s general) against ``emulator``."""
    with make_client(emulator) as client:
        yield client
