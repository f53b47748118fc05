"""Pop-ups end to end: the AMI emulator plays scripted calls to ``serve``, which sends
``call/event`` to the CRM emulator; three tenants by ``AccountCode`` (A, B; C is inactive)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from sync import config, db
from sync.bridge.service import ServiceThread
from sync.crm.factory import one_off_client
from sync.crm.module import register_tenant
from sync.emulator import Emulator
from sync.engine.store import Store
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios.common import Event
from sync.popups.live import LivePopups
from sync.timeutil import utcnow
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import write_config
from tests.live_fixtures import AMI_ENV, AMI_SECRET, free_port, wait_for

TENANTS = {"c": "C", "b": "B", "a": "A"}
"""name -> AccountCode; ``a`` last so ``[tenants.extensions]`` below is its table."""
PREFIX = "pbx1-"


@dataclass
class PopupRig:
    settings: config.Settings
    store: Store
    crm: Emulator
    pbx: PbxEmulator
    serve: ServiceThread
    base: str
    logs: list[str] = field(default_factory=list)

    @property
    def popups(self) -> LivePopups:
        popups = self.serve.service.bridge.popups
        assert popups is not None
        return popups

    def play(self, events: Sequence[Event]) -> None:
        """Play and wait until ``serve`` read every event and every pop-up settled."""
        sent = self.pbx.events_sent + len(events)
        self.pbx.play(events)
        wait_for(lambda: self.pbx.events_sent >= sent, "the AMI emulator to send", 60)
        wait_for(lambda: self.popups.events_read >= sent, "serve to read the events", 60)
        self.settle()

    def settle(self) -> None:
        wait_for(
            lambda: self.popups.sender.settled >= self.popups.submitted,
            "every pop-up to be sent or dropped",
            60,
        )

    def drop_and_reconnect(self, lost: Sequence[Event] = ()) -> None:
        """Drop the AMI connection, play ``lost`` while it is down, wait for the resync."""
        resyncs = self.popups.resyncs
        self.pbx.drop_connections()
        self.pbx.play(lost)  # nobody is logged in: these never reach serve
        wait_for(lambda: self.popups.resyncs > resyncs, "reconnect and resync", 60)
        self.settle()

    def events_by_call(self) -> dict[str, list[dict[str, Any]]]:
        calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.crm.events:
            calls[str(event["callExternalId"])].append(event)
        return calls


def rig_config(tmp_path: Path, crm: Emulator, *, port: int, ami_port: int, serve: str) -> Path:
    extra = (
        '[tenants.extensions]\n"101" = 11\n"102" = 12\n\n'
        f'[serve]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n{serve}\n'
        f'[ami]\nport = {ami_port}\nsecret_env = "{AMI_ENV}"\nping_seconds = 2\n'
        'tenant_field = "AccountCode"\n'
    )
    tenants = [
        {"name": name, "match": match, "logo_url": "https://pbx.example.com/asterisk.svg"}
        for name, match in TENANTS.items()
    ]
    path = write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'sync.db'}",
        crm_url=crm.base_url,
        tenants=tenants,
        source={"url": f"sqlite:///{tmp_path / 'asterisk.db'}", "tenant_column": "accountcode"},
        extra=extra,
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[pbx]\n", f'[pbx]\nexternal_id_prefix = "{PREFIX}"\n'))
    return path


@contextmanager
def popup_rig(
    tmp_path: Path, crm: Emulator, pbx: PbxEmulator, *, serve: str = ""
) -> Iterator[PopupRig]:
    logs: list[str] = []
    sink = logger.add(lambda m: logs.append(str(m)), level="DEBUG", format="{message}")
    crm.add_user(11, "User 101")
    crm.add_user(12, "User 102")
    port = free_port()
    path = rig_config(tmp_path, crm, port=port, ami_port=pbx.port, serve=serve)
    settings = config.load(path)
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    store = Store(engine)
    store.ensure_tenants(TENANTS)
    for tenant in settings.tenants:
        with one_off_client(settings, tenant) as client:
            outcome = register_tenant(store, tenant, client, settings.serve)
        assert not outcome.failed, outcome.lines
    store.set_activity("c", active=False, frozen=False, now=utcnow())
    service = ServiceThread(settings, store)
    service.start()
    rig = PopupRig(settings, store, crm, pbx, service, f"http://127.0.0.1:{port}", logs)
    try:
        wait_for(lambda: rig.popups.resyncs >= 1, "AMI login and the first resync")
        yield rig
    finally:
        service.stop()
        logger.remove(sink)
        engine.dispose()


__all__ = ["AMI_SECRET", "API_KEY", "PopupRig", "popup_rig"]
