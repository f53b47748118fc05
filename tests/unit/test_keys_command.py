"""``retailcrm-sync keys``: an owner-only Fernet key file, and tokens made from stdin."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from sync.cli import main


def test_generate_writes_an_owner_only_key_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "directory.key"
    assert main(["keys", "generate", "--key-file", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes().strip()
    Fernet(key)  # a valid key
    assert main(["keys", "generate", "--key-file", str(path)]) == 2
    assert path.read_bytes().strip() == key
    assert "exists" in capsys.readouterr().err


def test_encrypt_reads_the_api_key_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "directory.key"
    assert main(["keys", "generate", "--key-file", str(path)]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("my-crm-key-0123456789\n"))
    assert main(["keys", "encrypt", "--key-file", str(path)]) == 0
    out = capsys.readouterr().out.strip()
    assert "my-crm-key" not in out
    assert Fernet(path.read_bytes().strip()).decrypt(out.encode()) == b"my-crm-key-0123456789"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["keys", "encrypt", "--key-file", str(path)]) == 2


def test_encrypt_refuses_a_file_that_is_not_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "not.key"
    path.write_text("hello\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("k\n"))
    assert main(["keys", "encrypt", "--key-file", str(path)]) == 2
