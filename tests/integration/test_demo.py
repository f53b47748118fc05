"""`demo` and `emulator`, the ways to try the product: no config needed, clean exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sync.cli import main
from sync.demo import MANAGERS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_demo_from_an_empty_folder_prints_the_summary_fast(tmp_path: Path) -> None:
    """As `make demo` runs it: no config file anywhere, default size, a new temporary folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    env.pop("RETAILCRM_SYNC_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "sync", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("retailcrm-sync demo: 301 calls")  # 300 generated + 1 click-to-call
    for heading in (
        "Calls in RetailCRM by direction and result",
        "How RetailCRM now shows some of them",
        "Skipped: recorded with a reason, not uploaded",
        "Log:     ",
    ):
        assert heading in out
    assert "Traceback" not in done.stderr
    (folder,) = tmp_path.glob("retailcrm-sync-demo-*")
    assert (folder / "logs" / "retailcrm-sync.jsonl").stat().st_size > 0
    assert (folder / "api-key").read_text() not in out + done.stderr


def test_demo_numbers_add_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path / "d"), "--calls", "120", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    cycle = next(line for line in lines if line.startswith("cycle: "))
    fields = dict(part.split("=", 1) for part in cycle.split() if "=" in part)
    assert fields["read"] == "121" and fields["failed"] == "0"  # 120 + the click's call
    sent, skipped = int(fields["sent"]), int(fields["skipped"])
    assert sent + skipped == 121
    total = next(line for line in lines if line.strip().startswith("total"))
    assert total.split()[-1] == str(sent), "the CRM holds every uploaded call"
    assert f"Calls in RetailCRM by direction and result ({sent})" in out
    assert f"not uploaded ({skipped})" in out
    assert "✓ tenant demo-shop: module asterisk: registered, active, 20 extensions" in out
    assert any(f"{ext} {name}" in out for ext, (_, name) in MANAGERS.items())
    assert "▶ https://pbx.example.com/monitor/" in out
    assert "Report for demo-shop:" in out and "Missed calls: episodes" in out
    page = tmp_path / "d" / "report.html"
    assert f"Report:  {page}" in out and page.read_text().count("<svg") == 6
    click = out[out.index("Click-to-call round trip") :].splitlines()
    channel_id = click[2].split("ChannelId=")[1]
    assert channel_id.startswith("c2c-") and "→ 200" in click[1]
    assert "Channel=Local/101@originate-skipvm" in click[2] and "Exten=80295550123" in click[2]
    assert f"externalId pbx1-{channel_id} (out, answered, code 101" in click[4]
    cards = out[out.index("Pop-ups (AMI events") :].splitlines()[1:10]
    assert [line.split()[0:3] for line in cards] == [
        ["in", "codes", "101,102,103"],
        ["hangup", "codes", "101"],
        ["hangup", "codes", "103"],
        ["hangup", "codes", "102"],
        ["in", "codes", "104,105"],
        ["hangup", "codes", "104"],
        ["hangup", "codes", "105"],
        ["out", "codes", "106"],
        ["hangup", "codes", "106"],
    ], "the CRM emulator's cards, in order"
    assert main(["demo", "--dir", str(tmp_path / "d")]) == 2, "refuses a folder in use"


def test_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync", "emulator", "--port", "0", "--api-key", "try-key-123"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" listening on ")[1].split()[0]
        key = {"X-API-KEY": "try-key-123"}
        answer = requests.get(f"{url}/api/credentials", headers=key, timeout=5)
        assert answer.status_code == 200 and "telephony_write" in answer.json()["scopes"]
        assert requests.get(f"{url}/api/credentials", timeout=5).status_code == 403
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = proc.communicate()
    assert "try-key-123" not in first + out + err
