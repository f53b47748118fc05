"""Configuration rules added after the first reader (issue 11): ``[pbx] area_code``, MySQL
refused for our own tables, and defaults that come from the settings dataclasses only."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from sync import config
from sync.calls.options import BuildOptions
from sync.cli import main
from sync.settings import PbxSettings, SourceSettings
from tests.unit.test_config import ENV, MINIMAL, problems, write


def test_area_code_defaults_to_empty_and_reaches_the_builder(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    assert settings.pbx.area_code == "" and settings.build_options().area_code == ""
    given = config.load(write(tmp_path, MINIMAL + '\n[pbx]\narea_code = "3012"\n'), ENV)
    assert given.pbx.area_code == "3012"
    assert given.build_options().area_code == "3012"


@pytest.mark.parametrize("value", ['"+3012"', '"30-12"', '"(3012)"', '"1234567"', '"٣٠١٢"', "3012"])
def test_area_code_must_be_digits(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, MINIMAL + f"\n[pbx]\narea_code = {value}\n")
    assert len(found) == 1 and found[0].startswith("pbx.area_code: "), found
    if value != "3012":  # a TOML integer is a type error, like every other string key
        assert "digits only" in found[0]


@pytest.mark.parametrize(
    "url", ["mysql+pymysql://sync@127.0.0.1/sync", "mariadb+pymysql://sync@db/sync", "mysql://x/y"]
)
def test_mysql_refused_for_our_own_tables(tmp_path: Path, url: str) -> None:
    found = problems(tmp_path, MINIMAL + f'\n[database]\nurl = "{url}"\n')
    assert len(found) == 1, found
    assert found[0].startswith("database.url: MySQL/MariaDB is for the call log only")
    assert "PostgreSQL or SQLite" in found[0] and "\n" not in found[0]


def test_mysql_still_allowed_for_the_call_log(tmp_path: Path) -> None:
    text = MINIMAL + '\n[source]\nurl = "mysql+pymysql://reader@127.0.0.1/asteriskcdrdb"\n'
    settings = config.load(write(tmp_path, text), ENV)
    assert settings.source.url.startswith("mysql+pymysql://")
    assert settings.database.url == config.DatabaseSettings.url


def test_mysql_database_url_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL + '\n[database]\nurl = "mysql+pymysql://root@127.0.0.1/x"\n')
    assert (
        main(
            ["--config", str(path), "status"],
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"{path}: database.url: MySQL/MariaDB is for the call log only" in err
    assert "Traceback" not in err


def test_defaults_are_the_settings_dataclasses(tmp_path: Path) -> None:
    """The parser and BuildOptions take every default from the settings dataclasses."""
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    assert settings.pbx == PbxSettings()
    assert settings.source == SourceSettings(url=config.DatabaseSettings.url)
    assert settings.sync == config.SyncSettings()
    assert settings.daemon == config.DaemonSettings()
    assert settings.logging == config.LoggingSettings()
    tenant = settings.tenants[0]
    blank = config.TenantSettings(name=tenant.name, url=tenant.url, api_key=tenant.api_key)
    assert tenant == blank
    options, built = BuildOptions(), settings.build_options()
    for name in (f.name for f in fields(BuildOptions)):
        if name not in ("tenants", "has_ended_at"):
            assert getattr(options, name) == getattr(built, name), name
