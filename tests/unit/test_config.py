"""Configuration: defaults, every kind of bad value named by key, and secret handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import config
from sync.commands.init import example

MINIMAL = """
[[tenants]]
name = "shop"
url = "https://shop.retailcrm.ru"
api_key_env = "SHOP_KEY"
"""
ENV = {"SHOP_KEY": "s3cr3t-key-value"}


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "retailcrm-sync.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path, ENV if env is None else env)
    assert all(line.startswith(f"{path}: ") for line in info.value.problems)
    return [line.removeprefix(f"{path}: ") for line in info.value.problems]


def test_minimal_config_takes_the_documented_defaults(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    assert settings.database.url == "sqlite:///retailcrm-sync.db"
    assert settings.source.url == settings.database.url
    assert settings.source.table == "cdr" and settings.source.flavor == "asterisk"
    assert (settings.source.settle_seconds, settings.source.lookback_hours) == (120, 24)
    assert settings.pbx.extension_pattern == r"^\d{2,5}$" and settings.pbx.responsible == "first"
    assert (settings.sync.batch_size, settings.sync.max_in_flight) == (50, 4)
    assert (settings.daemon.interval, settings.daemon.customers_interval) == (30, 300)
    assert settings.logging.dir == "./logs"
    tenant = settings.tenants[0]
    assert tenant.api_key.reveal() == "s3cr3t-key-value"
    assert tenant.match is None and tenant.rate_limit == 40


def test_example_written_by_init_is_valid(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, example()), {"RETAILCRM_API_KEY": "k" * 32})
    assert settings.source.timezone == "Europe/Minsk"
    assert settings.build_options().tenants[0].timezone == "Europe/Minsk"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("[sync]\nbatch_size = 51", "sync.batch_size: must be between 1 and 50"),
        ('[sync]\nbatch_size = "50"', "sync.batch_size: expected an integer, got '50'"),
        ("[sync]\nbatchsize = 50", "sync.batchsize: unknown key"),
        ('[source]\ntimezone = "Mars/Olympus"', "source.timezone: unknown time zone"),
        ('[source]\nflavor = "cel"', "source.flavor: must be one of asterisk, freepbx, calls"),
        ('[source]\nurl = "oracle://x/y"', "source.url: unsupported database 'oracle'"),
        ('[source]\nurl = "not a url"', "source.url: not a database URL"),
        ("[source]\nlookback_hours = 0.25", "source.lookback_hours: must cover"),
        ('[source]\nstart_date = "yesterday"', "source.start_date: expected 'YYYY-MM-DD"),
        ('[source]\ntable = "cdr; drop table x"', "source.table: not a plain table"),
        ('[source.columns]\nanswr = "a"', "source.columns.answr: unknown column name"),
        ('[pbx]\ncountry = "XX"', "pbx.country: unknown country code 'XX'"),
        ('[pbx]\nextension_pattern = "("', "pbx.extension_pattern: not a valid regular"),
        ('[pbx]\nresponsible = "middle"', "pbx.responsible: must be one of first, last"),
        ("[pbx]\ndial_prefixes = [9]", "pbx.dial_prefixes: expected a list of digit strings"),
        ('[pbx]\nrecording_url = "ftp://x/{f}"', "pbx.recording_url: must be an http(s)"),
        ('[pbx]\nrecording_url = "https://x/{file}"', "pbx.recording_url: unknown placeholder"),
        ('[pbx]\nextension_channel_pattern = "PJSIP/\\\\d+"', "needs exactly one group"),
        ("[daemon]\ninterval = true", "daemon.interval: expected a number, got True"),
        ('[logging]\nlevel = "LOUD"', "logging.level: must be one of"),
        ('[logging]\nrotation = "big"', "logging.rotation: expected a size"),
        ("[database]\nurl = 5", "database.url: expected a string, got 5"),
        (
            "[sync]\nupload_budget_seconds = 90",
            "sync.upload_budget_seconds: plus sync.read_timeout must be shorter",
        ),
    ],
)
def test_bad_values_are_named_by_key(tmp_path: Path, snippet: str, expected: str) -> None:
    found = problems(tmp_path, MINIMAL + "\n" + snippet + "\n")
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ('name = "shop"\nurl = "https://a.retailcrm.ru"', "tenants[0].api_key_env: required"),
        ('url = "https://a.retailcrm.ru"\napi_key_env = "SHOP_KEY"', "tenants[0].name: required"),
        ('name = "shop"\nurl = "shop.retailcrm.ru"\napi_key_env = "SHOP_KEY"', "not a URL"),
        (
            'name = "s"\nurl = "https://a.retailcrm.ru/api/v5"\napi_key_env = "SHOP_KEY"',
            "tenants[0].url: must be the account address only",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "NOPE"',
            "tenants[0].api_key_env: environment variable NOPE is not set",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\napi_key = "x"',
            "set exactly one of",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_file = "/nonexistent/key"',
            "tenants[0].api_key_file: cannot read /nonexistent/key",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\nrate_limit = 100',
            "tenants[0].rate_limit: must be between",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\n'
            '[tenants.extensions]\n"101" = "sixteen"',
            "tenants[0].extensions.101: expected an integer",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\nmatch = "1"',
            "tenants[0].match: needs source.tenant_column",
        ),
        (
            'name = "s"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\nlogo_url = "https://a.ru/l.png"',
            "tenants[0].logo_url: must link to an SVG file",
        ),
    ],
)
def test_bad_tenants_are_named_by_key(tmp_path: Path, tenant: str, expected: str) -> None:
    found = problems(tmp_path, f"[[tenants]]\n{tenant}\n")
    assert any(expected in line for line in found), found


def test_two_tenants_need_matches_and_distinct_names(tmp_path: Path) -> None:
    one = 'name = "a"\nurl = "https://a.ru"\napi_key_env = "SHOP_KEY"\n'
    found = problems(tmp_path, f"[[tenants]]\n{one}[[tenants]]\n{one}")
    assert "tenants[1].name: duplicate tenant name 'a'" in found
    assert "tenants[0].match: required when there are several tenants" in found


def test_missing_tenants_and_bad_toml(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["tenants: at least one [[tenants]] table is required"]
    assert problems(tmp_path, "[sync\n")[0].startswith("invalid TOML")


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="retailcrm-sync init"):
        config.load(tmp_path / "absent.toml", ENV)


def test_literal_key_refused_when_file_readable_by_others(tmp_path: Path) -> None:
    text = '[[tenants]]\nname = "s"\nurl = "https://a.ru"\napi_key = "literal-key-1234"\n'
    with pytest.raises(config.ConfigError, match="chmod 600") as info:
        config.load(write(tmp_path, text, mode=0o644), {})
    assert "literal-key-1234" not in str(info.value)
    settings = config.load(write(tmp_path, text, mode=0o600), {})
    assert settings.tenants[0].api_key.reveal() == "literal-key-1234"


def test_key_file_relative_to_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "shop").write_text("file-key-5678\n", encoding="utf-8")
    text = '[[tenants]]\nname = "s"\nurl = "https://a.ru"\napi_key_file = "shop"\n'
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    settings = config.load(write(tmp_path, text), env)
    assert settings.tenants[0].api_key.reveal() == "file-key-5678"


def test_no_repr_or_str_shows_a_secret(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "[[tenants]]", '[database]\nurl = "postgresql+psycopg://u:dbpass99@h/d"\n[[tenants]]'
    )
    settings = config.load(write(tmp_path, text), ENV)
    for shown in (
        repr(settings),
        str(settings),
        repr(settings.tenants[0]),
        str(settings.tenants[0].api_key),
    ):
        assert "s3cr3t-key-value" not in shown
    assert set(settings.secrets()) == {"s3cr3t-key-value", "dbpass99"}


def test_config_path_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert config.resolve_path(None) == Path("retailcrm-sync.toml")
    monkeypatch.setenv(config.ENV_VAR, "/etc/retailcrm-sync.toml")
    assert config.resolve_path(None) == Path("/etc/retailcrm-sync.toml")
    assert config.resolve_path("/x.toml") == Path("/x.toml")


def test_calls_flavor_requires_its_columns(tmp_path: Path) -> None:
    found = problems(
        tmp_path, MINIMAL + '[source]\nflavor = "calls"\n[source.columns]\nid = "id"\n'
    )
    assert "source.columns.started_at: required for flavor 'calls'" in found


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    with pytest.raises(AttributeError):
        settings.sync.batch_size = 10  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.tenants[0].extensions["1"] = 2  # type: ignore[index]
