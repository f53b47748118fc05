"""`check` on a good setup and on each kind of broken one; `register` round trip.

Everything real but the CRM: SQLite (and PostgreSQL for the good setup) for both our tables and
the call log, the emulator over HTTP. `check` must name the broken thing in a ✗ line with a
hint and exit 1, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync import db
from sync.cli import main
from sync.emulator import ALL_SCOPES, Emulator
from sync.engine.store import Store
from sync.sources.cdr_table import create_cdr_table
from tests.crm_fixtures import API_KEY, emulator  # noqa: F401
from tests.engine_fixtures import KEY_ENV, fill_cdr, generated, write_config

pytestmark = pytest.mark.integration
LOGO = "https://pbx.example.com/asterisk.svg"
EXTENSIONS = '\n[tenants.extensions]\n"101" = 11\n"102" = 12\n'


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.fixture
def crm(emulator: Emulator) -> Emulator:  # noqa: F811
    emulator.add_user(11, "Alena")
    emulator.add_user(12, "Pavel")
    emulator.register_module(additional_codes={"101": 11, "102": 12})
    return emulator


def make_setup(tmp_path: Path, url: str, crm: Emulator) -> Callable[..., Path]:
    """A working setup on ``url`` (migrated); keyword arguments break one piece of it."""
    fill_cdr(url, generated(5), tenant_column=None)

    def make(
        db_url: str = url,
        source: dict[str, Any] | None = None,
        extra: str = EXTENSIONS,
        **tenant: Any,
    ) -> Path:
        src = {"url": url, **(source or {})}
        tenants = [{"name": "shop", "logo_url": LOGO, **tenant}]
        return write_config(
            tmp_path, db_url=db_url, crm_url=crm.base_url, tenants=tenants, source=src, extra=extra
        )

    return make


@pytest.fixture
def setup(
    tmp_path: Path, sqlite_url: str, crm: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """SQLite keeps the many broken setups fast; the good one also runs on PostgreSQL."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    engine = db.make_engine(sqlite_url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    return make_setup(tmp_path, sqlite_url, crm)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_check_passes_on_a_good_setup(
    database: str,
    setup: Callable[..., Path],
    tmp_path: Path,
    crm: Emulator,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if database == "postgresql":
        setup = make_setup(tmp_path, request.getfixturevalue("pg_url"), crm)
    code, lines, err = run(["--config", str(setup()), "check"], capsys)
    assert code == 0, lines
    assert all(line.startswith("✓") for line in lines), lines
    text = "\n".join(lines)
    for expected in (
        "own database",
        "migrated",
        "source table cdr",
        "source indexes on cdr: present",
        "tenant shop: API key: valid",
        "scopes: telephony_write, customer_read, integration_read present",
        "API v5 available",
        "integration module asterisk: registered and active",
        "extensions: all 2 user ids exist",
    ):
        assert expected in text
    assert API_KEY not in text + err


def _freeze(crm: Emulator) -> None:
    module = crm.modules["asterisk"]
    with crm.lock:
        crm.put_module("asterisk", {**module, "freeze": True}, "default")


def _unregister(crm: Emulator) -> None:
    with crm.lock:
        crm._modules.clear()


def _then(action: Callable[[], object], make: Callable[[], Path]) -> Path:
    """Break the setup first, then write the config."""
    action()
    return make()


def _narrow_key(crm: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "narrow-key-0123456789"
    crm.add_key(key, scopes=[s for s in ALL_SCOPES if s != "telephony_write"])
    monkeypatch.setenv(KEY_ENV, key)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("bad_key", '✗ tenant shop: API key: rejected (Wrong "apiKey" value.)'),
        ("missing_scope", "✗ tenant shop: scopes: missing telephony_write"),
        ("module_missing", "✗ tenant shop: integration module asterisk: not registered"),
        ("module_frozen", "✗ tenant shop: integration module asterisk: frozen"),
        ("unknown_user", "✗ tenant shop: extensions: user ids that do not exist: 105 → 999"),
        ("no_table", "✗ source table:"),
        ("not_migrated", "✗ own database"),
        ("bad_site", "✗ tenant shop: site 'elsewhere': no such shop"),
        ("bad_config", "✗ configuration:"),
    ],
    ids=lambda value: value if value.isidentifier() else "",
)
def test_check_names_each_broken_piece(
    broken: str,
    expected: str,
    setup: Callable[..., Path],
    crm: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = {
        "bad_key": lambda: _then(
            lambda: monkeypatch.setenv(KEY_ENV, "wrong-key-0123456789"), setup
        ),
        "missing_scope": lambda: _then(lambda: _narrow_key(crm, monkeypatch), setup),
        "module_missing": lambda: _then(lambda: _unregister(crm), setup),
        "module_frozen": lambda: _then(lambda: _freeze(crm), setup),
        "unknown_user": lambda: setup(extra=EXTENSIONS + '"105" = 999\n'),
        "no_table": lambda: setup(source={"table": "no_such_cdr"}),
        "not_migrated": lambda: setup(db_url=f"sqlite:///{tmp_path}/empty.db"),
        "bad_site": lambda: setup(site="elsewhere"),
        "bad_config": lambda: setup(rate_limit=500),
    }[broken]()
    code, lines, err = run(["--config", str(config), "check"], capsys)
    assert code == 1
    failures = [line for line in lines if line.startswith("✗")]
    assert any(line.startswith(expected) for line in failures), lines
    assert all(" → " in line for line in failures), "every failure carries a hint"
    assert "Traceback" not in err


def test_check_without_indexes_warns_but_passes(
    setup: Callable[..., Path], sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = db.make_engine(sqlite_url)
    try:
        create_cdr_table(engine, "bare_cdr", indexes=False, tenant_column=None)
    finally:
        engine.dispose()
    code, lines, _ = run(["--config", str(setup(source={"table": "bare_cdr"})), "check"], capsys)
    assert code == 0
    assert any(line.startswith("! source indexes on bare_cdr: missing (start)") for line in lines)


def test_register_round_trip_reports_unknown_users_and_shops(
    setup: Callable[..., Path], crm: Emulator, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _unregister(crm)
    extra = (
        '\n[tenants.extensions]\n"101" = 11\n"102" = 12\n"105" = 999\n'
        '[tenants.external_phones]\n"375171112233" = "shop"\n"375174445566" = "nowhere"\n'
    )
    path = setup(extra=extra, make_call_url="https://pbx.example.com/call")
    code, lines, err = run(["--config", str(path), "register"], capsys)
    assert code == 1, lines
    text = "\n".join(lines)
    assert "✓ tenant shop: module asterisk: registered, active, 3 extensions" in text
    assert "✗ tenant shop: module asterisk: user id 999 (extension 105) does not exist" in text
    assert "✗ tenant shop: module asterisk: shop code 'nowhere' (DID 375174445566)" in text
    module = crm.modules["asterisk"]
    telephony = module["integrations"]["telephony"]
    assert module["active"] is True and module["logo"] == LOGO
    assert {(c["code"], c["userId"]) for c in telephony["additionalCodes"]} == {
        ("101", 11),
        ("102", 12),
        ("105", 999),
    }
    assert len(telephony["externalPhones"]) == 2
    assert telephony["makeCallUrl"] == "https://pbx.example.com/call"
    client_id = module["clientId"]
    assert client_id not in text + err
    engine = db.make_engine(sqlite_url)
    try:
        state = Store(engine).tenant("shop")
    finally:
        engine.dispose()
    assert state is not None and state.client_id == client_id

    # Fixed configuration: exit 0, and the clientId generated the first time is kept.
    code, lines, _ = run(["--config", str(setup()), "register"], capsys)
    assert code == 0, lines
    assert crm.modules["asterisk"]["clientId"] == client_id
    assert len(crm.modules["asterisk"]["integrations"]["telephony"]["additionalCodes"]) == 2


def test_register_needs_a_logo(
    setup: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--config", str(setup(logo_url="")), "register"], capsys)
    assert code == 2
    assert "tenants[0].logo_url: required by register" in err
