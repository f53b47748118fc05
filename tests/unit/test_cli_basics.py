"""CLI contract: exit 2 with `file: key: reason`, init writes a private valid file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sync.cli import main


def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[sync]\nbatch_size = 500\n[[tenants]]\nname="s"\nurl="https://a.ru"\napi_key_env="K"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: sync.batch_size: must be between 1 and 50" in err
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_init_writes_owner_only_file_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "retailcrm-sync.toml"
    assert main(["init", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["init", str(path)]) == 2
    assert "exists; use --force" in capsys.readouterr().err


def test_db_upgrade_creates_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RETAILCRM_API_KEY", "k" * 20)
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert main(["db", "upgrade", "--config", "retailcrm-sync.toml"]) == 0
    assert "upgraded from empty" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "already at revision" in capsys.readouterr().out
