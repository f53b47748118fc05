"""Scenario 8 (runs last): no API key in any log file, stderr capture or ``status`` output.

Every earlier scenario kept what its processes wrote — the JSON log folder, each child's
stderr, ``status`` and ``status --json`` — under its ``tmp_path``, registered by the conftest.
This scenario adds one run at DEBUG level through the paths that talk about the CRM the most
(503 retries, an upload that hangs past the read timeout, a revoked key and the paused tenant's
``last_error``, ``check``, ``explain``), then reads every byte of every registered file for
every key the suite used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.emulator import Emulator
from tests.crm_fixtures import API_KEY
from tests.engine_fixtures import generated, write_config
from tests.reliability.common import (
    UPLOAD,
    Artifacts,
    append_legs,
    figure,
    load_cdr,
    no_traceback,
    query,
    run_cli,
    split_calls,
    status_json,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_no_api_key_in_any_log_stderr_or_status_output(
    tmp_path: Path, pg_url: str, emulator: Emulator, artifacts: Artifacts
) -> None:
    emulator.register_module()
    first_calls, more_calls, last_calls = split_calls(
        generated(300, seed=31, spacing_seconds=20.0), [0.4, 0.3, 0.3]
    )
    load_cdr(pg_url, first_calls)
    path = write_config(
        tmp_path,
        db_url=pg_url,
        crm_url=emulator.base_url,
        sync={
            "max_in_flight": 2,
            "read_timeout": 1,
            "upload_budget_seconds": 3,
            "retry_base_seconds": 1,
        },
    )
    emulator.hang_next(UPLOAD, n=1, seconds=2.0)
    first = run_cli(path, "once", keep=tmp_path / "debug-once-1", level="DEBUG")
    assert first.code in (0, 1), first.stderr[-2000:]
    assert "read timeout" in first.stderr
    append_legs(pg_url, more_calls)
    emulator.fail_next(UPLOAD, n=2, status=503)
    second = run_cli(path, "once", keep=tmp_path / "debug-once-2", level="DEBUG")
    assert "503" in second.stderr
    append_legs(pg_url, last_calls)
    emulator.add_key(API_KEY, scopes=(), label="default")  # revoked: 403
    third = run_cli(path, "once", keep=tmp_path / "debug-once-3", level="DEBUG")
    assert third.code == 1, third.stderr[-2000:]
    check = run_cli(path, "check", keep=tmp_path / "debug-check", level="DEBUG")
    assert check.code == 1
    some_id = query(pg_url, "SELECT external_id FROM call_sync LIMIT 1")[0].external_id
    run_cli(path, "explain", some_id, keep=tmp_path / "debug-explain", level="DEBUG")
    state = status_json(path, tmp_path / "debug-status")["shop"]
    assert state["paused"] and "403" in (state["last_error"] or "")
    for done in (first, second, third, check):
        no_traceback(done.stderr, "a DEBUG run")
    assert "DEBUG" in first.stderr, "the run really logged at DEBUG"

    leaks = []
    files = 0
    size = 0
    for file in artifacts.files():
        data = file.read_bytes()
        files += 1
        size += len(data)
        for label, secret in artifacts.secrets.items():
            if secret.encode() in data:
                leaks.append(f"{label} in {file}")
    figure(
        "8 secrets",
        folders=len(artifacts.folders),
        files_read=files,
        megabytes_read=round(size / 1e6, 1),
        secrets_looked_for=len(artifacts.secrets),
        leaks=len(leaks),
    )
    assert files > 10
    assert leaks == [], "\n".join(leaks)
