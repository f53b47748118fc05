"""Logging: secrets are redacted in every sink, the file gets JSON lines, stdlib is routed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from sync import logs
from sync.config import LoggingSettings


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    logs.setup("INFO", None, (), stderr=False)


def test_secrets_never_reach_stderr_or_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "key-" + "ABCDEF123"  # built at run time: tracebacks quote source lines
    log_file = logs.setup("DEBUG", LoggingSettings(dir=str(tmp_path)), [secret])
    assert log_file == tmp_path / "retailcrm-sync.jsonl"
    logger.bind(header=f"X-API-KEY: {secret}").warning(f"request with {secret} failed")
    logging.getLogger("urllib3.connectionpool").warning(f"GET /?apiKey={secret}")
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        logger.exception("upload failed")
    err = capsys.readouterr().err
    text = log_file.read_text(encoding="utf-8")
    assert secret not in err and secret not in text
    assert "RuntimeError: boom ***" in err
    assert "request with *** failed" in err and "GET /?apiKey=***" in err
    records = [json.loads(line) for line in text.splitlines()]
    messages = [r["record"]["message"] for r in records]
    assert messages[:2] == ["request with *** failed", "GET /?apiKey=***"]
    assert records[0]["record"]["extra"]["header"] == "X-API-KEY: ***"


def test_level_filters_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("WARNING", None, ())
    logger.info("quiet")
    logger.warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err and "loud" in err


def test_scrub_removes_longest_secret_first() -> None:
    redactor = logs.Redactor()
    redactor.set(["abcd", "abcdefgh", "ab"])
    assert redactor.scrub("x abcdefgh y abcd z ab") == "x *** y *** z ab"


def test_a_traceback_never_prints_local_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """loguru's ``diagnose`` would print ``conninfo``'s value under the failing line, after the
    redactor ran; no sink may do that, whatever the secret is."""
    secret = "pw-" + "Q7z9XkLm2"
    log_file = logs.setup("DEBUG", LoggingSettings(dir=str(tmp_path)), [secret])
    conninfo = f"postgresql://sync:{secret}@db/pbx"
    try:
        if conninfo:  # the failing line names the local holding the secret
            raise ConnectionError("database unreachable")
    except ConnectionError:
        logger.exception("cycle failed")
    err = capsys.readouterr().err
    assert log_file is not None
    text = log_file.read_text(encoding="utf-8")
    assert "ConnectionError: database unreachable" in err
    assert "cycle failed" in text
    for sink in (err, text):
        assert secret not in sink and "Q7z9" not in sink
        assert "postgresql://sync" not in sink


def test_each_process_family_writes_its_own_file(tmp_path: Path) -> None:
    settings = LoggingSettings(dir=str(tmp_path))
    assert logs.setup("INFO", settings, (), stderr=False) == tmp_path / logs.DAEMON_LOG
    once = logs.setup("INFO", settings, (), stderr=False, file_name=logs.ONCE_LOG)
    assert once == tmp_path / "retailcrm-sync-once.jsonl"
    logger.info("from once")
    assert "from once" in once.read_text(encoding="utf-8")
    assert not (tmp_path / logs.DAEMON_LOG).read_text(encoding="utf-8")
