"""The embedded demo: the whole product on one machine, in a temporary folder, in seconds.

A simulated Asterisk writes a few hundred calls of every scenario into an SQLite call log; the
built-in RetailCRM emulator plays the CRM. Then the real code runs exactly as in production:
migrations, ``register``, one cycle through ``Runner``, with the same config file format, so
the folder left behind can be explored with ``status`` and ``explain``.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sync import config, db, logs
from sync.bridge.service import ServiceThread
from sync.calls.demo_cdr import generate_legs
from sync.crm.factory import one_off_client
from sync.crm.module import register_tenant
from sync.emulator import Emulator
from sync.engine.cycle import CycleReport, Progress
from sync.engine.runner import Runner
from sync.engine.store import Store
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios import ClickCall
from sync.popups.demo import ring_a_few
from sync.report.demo import demo_report
from sync.sources.cdr_table import create_cdr_table, insert_legs
from sync.timeutil import utc_to_local, utcnow

ZONE = "Europe/Minsk"
FIRST_NAMES = (
    "Alena", "Andrei", "Darya", "Dzmitry", "Hanna", "Ihar", "Iryna", "Kiryl", "Maryia", "Mikita",
    "Natallia", "Pavel", "Sviatlana", "Siarhei", "Tatsiana", "Uladzimir", "Volha", "Yauhen",
    "Yuliya", "Aliaksandr",
)  # fmt: skip
MANAGERS = {str(101 + i): (11 + i, name) for i, name in enumerate(FIRST_NAMES)}
"""Extension -> (RetailCRM user id, first name): the generator's extensions 101-120."""
CONFIG = """\
# Written by `retailcrm-sync demo`; the CRM it names (the emulator) is gone after the demo,
# but `status` and `explain` work: retailcrm-sync --config {path} status
[database]
url = "sqlite:///{folder}/sync.db"

[source]
url = "sqlite:///{folder}/asterisk.db"
table = "cdr"
timezone = "{zone}"

[pbx]
country = "BY"
external_id_prefix = "{prefix}"
recording_url = "https://pbx.example.com/monitor/{{date}}/{{recordingfile}}"

[logging]
dir = "{folder}/logs"

[[tenants]]
name = "demo-shop"
url = "{url}"
api_key_file = "{folder}/api-key"
timezone = "{zone}"
logo_url = "https://pbx.example.com/asterisk.svg"

[tenants.extensions]
{extensions}

# The live bridge (`retailcrm-sync serve`): gone with the demo, like the CRM emulator.
[serve]
listen = "127.0.0.1:{serve_port}"
public_url = "http://127.0.0.1:{serve_port}"

[ami]
port = {ami_port}
secret_file = "{folder}/ami-secret"
"""


PREFIX = "pbx1-"
"""``[pbx] external_id_prefix`` of the demo: shows that a click's id is uploaded with it."""
CLICK_EXTENSION, CLICK_PHONE = "101", "+375 29 555-01-23"


@dataclass
class ClickTrip:
    """The click-to-call round trip the demo shows, each step as it happened."""

    status: int
    answer: dict[str, Any]
    originate: dict[str, str]
    outcome: str
    legs: int
    uploaded: dict[str, Any] | None


@dataclass
class DemoResult:
    folder: Path
    config_path: Path
    log_file: Path | None
    legs: int
    register_lines: list[str]
    report: CycleReport
    crm_calls: list[dict[str, Any]]
    skipped: list[tuple[str, int]]
    seconds: float
    report_lines: list[str]
    click: ClickTrip | None = None
    popup_lines: list[str] = field(default_factory=list)


def write_config(
    folder: Path, crm_url: str, api_key: str, *, ami_port: int, ami_secret: str, serve_port: int
) -> config.Settings:
    """A real config file, so the demo reads its settings the way production does."""
    for name, secret in (("api-key", api_key), ("ami-secret", ami_secret)):
        key_file = folder / name
        key_file.write_text(secret, encoding="utf-8")
        key_file.chmod(0o600)
    path = folder / "retailcrm-sync.toml"
    extensions = "\n".join(f'"{ext}" = {user}' for ext, (user, _) in MANAGERS.items())
    text = CONFIG.format(
        path=path,
        folder=folder,
        zone=ZONE,
        url=crm_url,
        extensions=extensions,
        prefix=PREFIX,
        ami_port=ami_port,
        serve_port=serve_port,
    )
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return config.load(path)


def fill_call_log(settings: config.Settings, calls: int, seed: int) -> int:
    """``calls`` generated calls spread over the three hours before now: all finished."""
    start = utc_to_local(utcnow() - timedelta(hours=3), ZONE).replace(microsecond=0)
    spacing = 2 * 3600 / max(calls, 1)
    legs = generate_legs(
        calls, start=start, seed=seed, spacing_seconds=spacing, source_timezone=ZONE
    )
    engine = db.make_engine(settings.source.url)
    try:
        create_cdr_table(engine, "cdr", tenant_column=None, recordingfile=True)
        return insert_legs(engine, legs, "cdr", tenant_column=None, timezone=ZONE)
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(condition: Callable[[], object], seconds: float = 20.0) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def click_to_call(emulator: Emulator, pbx: PbxEmulator, written: list[ClickCall]) -> ClickTrip:
    """Manager 101 clicks a number in RetailCRM; follow it to the PBX and its CDR legs."""
    user_id = MANAGERS[CLICK_EXTENSION][0]
    answer = emulator.click(CLICK_EXTENSION, CLICK_PHONE, user_id)
    originates = pbx.actions_named("Originate")
    _wait(lambda: written)
    call = written[0] if written else None
    return ClickTrip(
        status=answer.status,
        answer=answer.body,
        originate=originates[0].as_dict() if originates else {},
        outcome=call.outcome if call else "no call",
        legs=len(call.legs()) if call else 0,
        uploaded=None,
    )


def run_demo(
    folder: Path,
    *,
    calls: int,
    seed: int,
    progress: Callable[[], AbstractContextManager[Progress]],
) -> DemoResult:
    started = time.monotonic()
    api_key, ami_secret = secrets.token_hex(16), secrets.token_hex(12)
    # The emulated PBX dates an originated call ten minutes back, so the demo's one cycle finds
    # it settled (settle_seconds) instead of waiting for it.
    clock = lambda: utc_to_local(utcnow() - timedelta(minutes=10), ZONE).replace(microsecond=0)  # noqa: E731
    with Emulator(api_key=api_key) as emulator, PbxEmulator(secret=ami_secret, clock=clock) as pbx:
        for user, name in MANAGERS.values():
            emulator.add_user(user, name)
        settings = write_config(
            folder,
            emulator.base_url,
            api_key,
            ami_port=pbx.port,
            ami_secret=ami_secret,
            serve_port=_free_port(),
        )
        tenant = settings.tenants[0]
        log_file = logs.setup("INFO", settings.logging, settings.secrets(), stderr=False)
        legs = fill_call_log(settings, calls, seed)
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
        store = Store(engine)
        store.ensure_tenants([tenant.name])
        with one_off_client(settings, tenant) as client:
            registered = register_tenant(store, tenant, client, settings.serve)
        written: list[ClickCall] = []

        def write_legs(call: ClickCall) -> None:
            source = db.make_engine(settings.source.url)
            try:
                insert_legs(source, call.legs(), "cdr", tenant_column=None, timezone=ZONE)
            finally:
                source.dispose()
            written.append(call)

        pbx.on_call(write_legs)
        service = ServiceThread(settings, store)
        service.start()
        try:
            _wait(lambda: service.service.ami is not None and service.service.ami.connected)
            click = click_to_call(emulator, pbx, written)
            popup_lines = ring_a_few(emulator, pbx, service)  # issue 13
        finally:
            service.stop()
        runner = Runner(settings, engine=engine)
        try:
            with progress() as bar:
                report = runner.once(progress=bar)[0]
            skipped = store.skip_reasons(tenant.name)
            report_lines = demo_report(emulator, runner, settings, folder)  # issue 14
        finally:
            runner.close()
        external_id = PREFIX + click.originate.get("ChannelId", "?")
        click.uploaded = emulator.call(external_id)
        return DemoResult(
            folder=folder,
            config_path=settings.path,
            log_file=log_file,
            legs=legs,
            register_lines=registered.lines,
            report=report,
            crm_calls=emulator.calls,
            skipped=skipped,
            seconds=time.monotonic() - started,
            report_lines=report_lines,
            click=click,
            popup_lines=popup_lines,
        )


# -- the summary -----------------------------------------------------------------------------

RESULTS = ("answered", "no answer", "busy", "failed", "unknown")
DIRECTIONS = {"in": "inbound", "out": "outbound"}


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: int = 1) -> list[str]:
    """Plain aligned columns; columns from index ``right`` on are right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i >= right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  " + "  ".join(cells).rstrip()

    return [line(header), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


def by_direction(calls: list[dict[str, Any]]) -> list[str]:
    counts = Counter((c.get("type"), c.get("result")) for c in calls)
    results = [r for r in RESULTS if any(res == r for _, res in counts)]
    rows = []
    for code, label in DIRECTIONS.items():
        row = [counts[(code, r)] for r in results]
        rows.append((label, *map(str, row), str(sum(row))))
    totals = [sum(counts[(d, r)] for d in DIRECTIONS) for r in results]
    rows.append(("total", *map(str, totals), str(sum(totals))))
    return _table(("direction", *results, "total"), rows)


def samples(calls: list[dict[str, Any]], limit: int = 6) -> list[dict[str, Any]]:
    """The most recent call of each (type, result), newest first: one of every kind."""
    chosen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for call in sorted(calls, key=lambda c: str(c.get("date")), reverse=True):
        chosen.setdefault((call.get("type"), call.get("result")), call)
    return list(chosen.values())[:limit]


def _duration(seconds: object) -> str:
    value = int(seconds) if isinstance(seconds, int | float | str) and str(seconds) else 0
    return f"{value // 60}:{value % 60:02d}"


def as_shown(calls: list[dict[str, Any]]) -> list[str]:
    names = {ext: name for ext, (_, name) in MANAGERS.items()}
    rows = []
    links = []
    for call in samples(calls):
        code = str(call.get("code") or "")
        manager = f"{code} {names[code]}" if code in names else (code or "-")
        rows.append(
            (
                str(call.get("date")),
                DIRECTIONS.get(str(call.get("type")), str(call.get("type"))),
                str(call.get("phone") or "-"),
                manager,
                str(call.get("result")),
                _duration(call.get("duration", 0)),
            )
        )
        links.append(str(call.get("recordUrl") or "no recording"))
    lines = _table(("date", "type", "phone", "manager", "result", "talk"), rows, right=5)
    out = lines[:2]
    for row_line, link in zip(lines[2:], links, strict=True):
        out += [row_line, f"    ▶ {link}"]
    return out


def render(result: DemoResult) -> str:
    r = result.report
    lines = [
        f"retailcrm-sync demo: {r.read} calls ({result.legs} CDR legs) from a simulated "
        f"Asterisk, one sync cycle to the built-in RetailCRM emulator, {result.seconds:.1f} s",
        "",
        *result.register_lines,
        f"cycle: {r.summary()}",
        "",
        f"Calls in RetailCRM by direction and result ({len(result.crm_calls)}):",
        *by_direction(result.crm_calls),
        "",
        f"How RetailCRM now shows some of them (dates in {ZONE}, the account's zone):",
        *as_shown(result.crm_calls),
        "",
        f"Skipped: recorded with a reason, not uploaded ({sum(n for _, n in result.skipped)}):",
        *_table(("reason", "calls"), [(reason, str(n)) for reason, n in result.skipped]),
        "",
        *click_lines(result.click),
        *result.popup_lines,
        f"Folder:  {result.folder} (call log asterisk.db, sync state sync.db)",
        f"Config:  {result.config_path}",
        f"Log:     {result.log_file}",
        f"Explore: retailcrm-sync --config {result.config_path} status",
    ]
    if result.crm_calls:
        example = samples(result.crm_calls)[0].get("externalId")
        lines.append(f"         retailcrm-sync --config {result.config_path} explain {example}")
    return "\n".join([*lines, "", *result.report_lines])


def click_lines(click: ClickTrip | None) -> list[str]:
    """The click-to-call round trip, step by step, as the reader should follow it."""
    if click is None:
        return []
    name = MANAGERS[CLICK_EXTENSION][1]
    o = click.originate
    lines = [
        "Click-to-call round trip (the live bridge, `retailcrm-sync serve`, on the AMI emulator):",
        f"  1. RetailCRM: {CLICK_EXTENSION} {name} clicks {CLICK_PHONE} → makeCallUrl "
        f"/make-call → {click.status} {json.dumps(click.answer, ensure_ascii=False)}",
        f"  2. Asterisk AMI: Originate Channel={o.get('Channel')} Context={o.get('Context')} "
        f"Exten={o.get('Exten')} ChannelId={o.get('ChannelId')}",
        f"  3. The call: {click.outcome}; {click.legs} CDR legs written with linkedid "
        f"{o.get('ChannelId')}",
    ]
    up = click.uploaded
    if up is None:
        lines.append("  4. Upload: not in RetailCRM (see the log)")
    else:
        lines.append(
            f"  4. Upload: externalId {up.get('externalId')} ({up.get('type')}, "
            f"{up.get('result')}, code {up.get('code')}, talk {_duration(up.get('duration', 0))})"
            " — the click's ChannelId with [pbx] external_id_prefix"
        )
    return [*lines, ""]
