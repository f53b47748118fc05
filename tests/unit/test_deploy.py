"""deploy/: the systemd units agree with the example config and the daemon (credentials, stop
timeout, notify, watchdog, sandboxing). `systemd-analyze verify` needs the system tool and runs
in tests/integration/test_deploy_verify.py."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from sync import config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED = "/opt/retailcrm-sync/bin/retailcrm-sync"
UNITS = (
    "retailcrm-sync.service",
    "retailcrm-sync@.service",
    "retailcrm-sync-once.service",
    "retailcrm-sync-once.timer",
    "retailcrm-sync-serve.service",
)
SERVICES = [u for u in UNITS if u.endswith(".service")]


def unit(name: str) -> dict[str, list[str]]:
    """``Section.Key`` -> values, in order (systemd allows a key more than once)."""
    values: dict[str, list[str]] = defaultdict(list)
    section = ""
    for raw in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values[f"{section}.{key}"].append(value)
    return values


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_the_installed_program_sandboxed(name: str) -> None:
    u = unit(name)
    (exec_start,) = u["Service.ExecStart"]
    assert exec_start.startswith(f"{INSTALLED} --config /etc/retailcrm-sync/")
    assert u["Service.User"] == ["retailcrm-sync"]
    assert u["Service.LoadCredential"], "API keys come from systemd credentials"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert u[f"Service.{key}"] == [value], key
    assert u["Service.LogsDirectory"][0].startswith("retailcrm-sync")


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("retailcrm-sync.service", "run"),
        ("retailcrm-sync@.service", "run"),
        ("retailcrm-sync-serve.service", "serve"),
    ],
)
def test_daemons_notify_have_a_watchdog_and_restart(name: str, command: str) -> None:
    u = unit(name)
    assert u["Service.Type"] == ["notify"]
    assert u["Service.WatchdogSec"] and u["Service.Restart"] == ["on-failure"]
    assert u["Service.ExecStart"][0].endswith(f" {command}")


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_example_config_loads_with_the_units_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production example is valid as systemd would start it: each relative api_key_file
    names a LoadCredential= of the service, and stop_timeout fits in TimeoutStopSec=."""
    service = unit("retailcrm-sync.service")
    for credential in service["Service.LoadCredential"]:
        name, _, source = credential.partition(":")
        assert source == f"/etc/retailcrm-sync/credentials/{name}"
        (tmp_path / name).write_text("k" * 32, encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = config.load(DEPLOY / "retailcrm-sync.toml")
    assert settings.database.url.startswith("postgresql+psycopg://")
    assert settings.logging.dir == "/var/log/retailcrm-sync"
    assert all(t.api_key.reveal() == "k" * 32 for t in settings.tenants)
    (stop,) = service["Service.TimeoutStopSec"]
    assert settings.daemon.stop_timeout + 10 <= seconds(stop)
    (watchdog,) = service["Service.WatchdogSec"]
    assert seconds(watchdog) > 2 * settings.daemon.interval


def test_the_timer_starts_the_oneshot_and_cron_uses_flock() -> None:
    once = unit("retailcrm-sync-once.service")
    assert once["Service.Type"] == ["oneshot"]
    assert once["Service.ExecStart"][0].endswith(" once")
    assert unit("retailcrm-sync-once.timer")["Timer.OnUnitInactiveSec"]
    jobs = [
        line
        for line in (DEPLOY / "cron.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(jobs) == 1
    fields = jobs[0].split()
    assert fields[:6] == ["*", "*", "*", "*", "*", "retailcrm-sync"]
    assert fields[6:9] == ["flock", "-n", "/run/lock/retailcrm-sync.lock"]
    assert fields[9] == INSTALLED and fields[10] == "once"
