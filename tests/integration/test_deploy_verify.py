"""deploy/: the systemd units pass `systemd-analyze verify` without a word. Needs the system
tool: a skip on a machine without systemd, a failure in CI (``tests.conftest.missing``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.unit.test_deploy import DEPLOY, INSTALLED, UNITS

pytestmark = pytest.mark.integration


@pytest.fixture
def analyze() -> str:
    """``systemd-analyze``: a skip on a machine without systemd, a failure in CI."""
    found = shutil.which("systemd-analyze")
    if found is None:
        missing("systemd-analyze is not installed (apt-get install systemd)")
    return found


def prepare(folder: Path) -> None:
    """Copies of the units whose ExecStart points at a stub executable: the real path exists
    only on an installed host, and verify rightly refuses a missing program."""
    stub = folder / "retailcrm-sync"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8").replace(INSTALLED, str(stub))
        (folder / name).write_text(text, encoding="utf-8")


def verify(analyze: str, folder: Path, *names: str) -> str:
    """Everything `systemd-analyze verify` says about ``names`` in ``folder``, and its exit."""
    done = subprocess.run(
        [analyze, "verify", *(str(folder / n) for n in names)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}".strip()


def test_units_pass_systemd_analyze_verify_without_a_word(tmp_path: Path, analyze: str) -> None:
    prepare(tmp_path)
    assert verify(analyze, tmp_path, *UNITS) == "exit 0"


def test_verify_would_catch_a_broken_unit(tmp_path: Path, analyze: str) -> None:
    """The check above is meaningful: the same call reports a typo and a missing program."""
    prepare(tmp_path)
    unit_file = tmp_path / "retailcrm-sync.service"
    text = unit_file.read_text(encoding="utf-8")
    unit_file.write_text(text.replace("WatchdogSec=", "WatchdogSecs="), encoding="utf-8")
    assert "Unknown key 'WatchdogSecs'" in verify(analyze, tmp_path, unit_file.name)
    unit_file.write_text(text.replace(str(tmp_path / "retailcrm-sync"), "/nonexistent/x"))
    assert "is not executable" in verify(analyze, tmp_path, unit_file.name)
