"""The live bridge for integration tests: our SQLite database, the CRM emulator, the AMI
emulator and ``serve`` (``BridgeService``) in a thread, all on 127.0.0.1 with real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from loguru import logger

from sync import config, db
from sync.bridge.service import ServiceThread
from sync.crm.factory import one_off_client
from sync.crm.module import register_tenant
from sync.emulator import Emulator
from sync.engine.store import Store
from sync.pbx_emulator import PbxEmulator
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import KEY_ENV, write_config
from tests.polling import wait_for as wait_for

AMI_SECRET = "ami-secret-4f9c2e71"
AMI_ENV = "TEST_AMI_SECRET"
USERS = {"101": 11, "102": 12}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Live:
    settings: config.Settings
    store: Store
    crm: Emulator
    pbx: PbxEmulator
    serve: ServiceThread
    base: str
    logs: list[str] = field(default_factory=list)

    @property
    def ami(self) -> Any:
        return self.serve.service.ami

    @property
    def client_id(self) -> str:
        state = self.store.tenant("shop")
        assert state is not None and state.client_id
        return state.client_id

    @property
    def token(self) -> str:
        state = self.store.tenant("shop")
        assert state is not None and state.trigger_token
        return state.trigger_token

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.base + path, params=params, timeout=10)

    def post(self, path: str, **form: Any) -> requests.Response:
        return requests.post(self.base + path, data=form, timeout=10)

    def originates(self) -> list[Any]:
        return self.pbx.actions_named("Originate")

    def secrets(self) -> list[str]:
        return [API_KEY, AMI_SECRET, self.client_id, self.token]


def live_config(
    tmp_path: Path,
    crm: Emulator,
    *,
    port: int,
    ami_port: int,
    originate: str = "",
    serve: str = "",
    db_url: str | None = None,
) -> Path:
    extensions = "".join(f'"{ext}" = {user}\n' for ext, user in USERS.items())
    extra = (
        f"[tenants.extensions]\n{extensions}\n"
        f'[serve]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n{serve}\n'
        f'[ami]\nport = {ami_port}\nsecret_env = "{AMI_ENV}"\nping_seconds = 2\n\n'
        f"[originate]\n{originate}\n"
    )
    return write_config(
        tmp_path,
        db_url=db_url or f"sqlite:///{tmp_path / 'sync.db'}",
        crm_url=crm.base_url,
        tenants=[{"name": "shop", "logo_url": "https://pbx.example.com/asterisk.svg"}],
        source={"url": f"sqlite:///{tmp_path / 'asterisk.db'}"},
        extra=extra,
    )


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(AMI_ENV, AMI_SECRET)


@contextmanager
def live_bridge(
    tmp_path: Path,
    crm: Emulator,
    pbx: PbxEmulator,
    *,
    ami_port: int | None = None,
    originate: str = "",
    serve: str = "",
    register: bool = True,
    db_url: str | None = None,
) -> Iterator[Live]:
    logs: list[str] = []
    sink = logger.add(lambda m: logs.append(str(m)), level="DEBUG", format="{message}")
    for ext, user in USERS.items():
        crm.add_user(user, f"User {ext}")
    port = free_port()
    path = live_config(
        tmp_path,
        crm,
        port=port,
        ami_port=ami_port or pbx.port,
        originate=originate,
        serve=serve,
        db_url=db_url,
    )
    settings = config.load(path)
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    store = Store(engine)
    store.ensure_tenants(["shop"])
    if register:
        with one_off_client(settings, settings.tenants[0]) as client:
            outcome = register_tenant(store, settings.tenants[0], client, settings.serve)
        assert not outcome.failed, outcome.lines
    service = ServiceThread(settings, store)
    service.start()
    live = Live(settings, store, crm, pbx, service, f"http://127.0.0.1:{port}", logs)
    try:
        yield live
    finally:
        service.stop()
        logger.remove(sink)
        engine.dispose()
