"""``retailcrm-sync serve`` as a real process, and the CLI around it: SIGTERM finishes the
request in flight and exits 0; no ``[serve]`` is exit 2; ``register`` sends the callback URLs
and ``--show-tokens`` prints the trigger URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sync import db
from sync.ami.probe import probe_sync
from sync.cli import main
from sync.emulator import Emulator
from sync.engine.store import Store
from sync.pbx_emulator import PbxEmulator
from tests.crm_fixtures import API_KEY, emulator  # noqa: F401
from tests.engine_fixtures import KEY_ENV, write_config
from tests.integration.test_daemon import NotifySocket
from tests.live_fixtures import AMI_ENV, AMI_SECRET, USERS, free_port, live_config, wait_for

pytestmark = pytest.mark.integration
PROGRAM = Path(sys.executable).with_name("retailcrm-sync")


@pytest.fixture
def pbx() -> Iterator[PbxEmulator]:
    with PbxEmulator(secret=AMI_SECRET) as server:
        yield server


def environment() -> dict[str, str]:
    return {**os.environ, KEY_ENV: API_KEY, AMI_ENV: AMI_SECRET}


def prepared(tmp_path: Path, crm: Emulator, pbx: PbxEmulator, port: int) -> Path:
    for ext, user in USERS.items():
        crm.add_user(user, f"User {ext}")
    path = live_config(tmp_path, crm, port=port, ami_port=pbx.port)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    db.upgrade(engine)
    engine.dispose()
    return path


def test_serve_without_a_serve_table_exits_2(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    path = write_config(tmp_path, db_url=f"sqlite:///{tmp_path}/s.db", crm_url=emulator.base_url)
    assert main(["--config", str(path), "serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no [serve] table" in err[0]


def test_register_sends_the_callbacks_and_shows_tokens(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(AMI_ENV, AMI_SECRET)
    port = free_port()
    path = prepared(tmp_path, emulator, pbx, port)
    assert main(["--config", str(path), "register"]) == 0
    module = emulator.module("asterisk")
    assert module is not None
    telephony = module["integrations"]["telephony"]
    assert telephony["makeCallUrl"] == f"http://127.0.0.1:{port}/make-call"
    assert telephony["changeUserStatusUrl"] == f"http://127.0.0.1:{port}/user-status"
    assert module["baseUrl"] == f"http://127.0.0.1:{port}"
    assert module["actions"] == {"activity": "/activity"}
    assert telephony["inputEventSupported"] is True
    capsys.readouterr()
    assert main(["--config", str(path), "register", "--show-tokens"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    state = Store(engine).tenant("shop")
    engine.dispose()
    assert state is not None and state.trigger_token
    assert line == f"tenant shop: http://127.0.0.1:{port}/trigger/{state.trigger_token}"
    # registering again keeps the token and the clientId
    assert main(["--config", str(path), "register"]) == 0
    assert emulator.module("asterisk")["clientId"] == state.client_id  # type: ignore[index]


def test_sigterm_finishes_the_request_in_flight_and_exits_0(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    port = free_port()
    path = prepared(tmp_path, emulator, pbx, port)
    notify = NotifySocket()
    env = environment() | {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1500000"}
    subprocess.run(
        [str(PROGRAM), "--config", str(path), "register"], env=env, check=True, capture_output=True
    )
    process = subprocess.Popen(
        [str(PROGRAM), "--config", str(path), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return requests.get(base + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, "serve to be up and connected", 30)
        wait_for(lambda: "WATCHDOG=1" in notify.assignments(), "the watchdog to be fed", 30)
        said = notify.assignments()
        assert "READY=1" in said and "STATUS=AMI connected" in said
        assert said.index("READY=1") < said.index("WATCHDOG=1")
        pbx.stall()  # the Originate will wait for its answer (2 s) while we send SIGTERM
        answers: list[int] = []
        clicking = threading.Thread(
            target=lambda: answers.append(emulator.click("101", "+375291234567", 11).status)
        )
        clicking.start()
        wait_for(lambda: pbx.actions_named("Originate"), "the Originate to reach the PBX")
        process.send_signal(signal.SIGTERM)
        clicking.join(30)
        assert answers == [502]  # answered (no answer from the PBX in time), not cut off
        assert process.wait(30) == 0
        assert "STOPPING=1" in notify.assignments()
    finally:
        notify.close()
        pbx.stall(False)
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
    assert len(pbx.actions_named("Originate")) == 1
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    state = Store(engine).tenant("shop")
    engine.dispose()
    assert state is not None and state.client_id and state.trigger_token
    logged = "".join(p.read_text() for p in (tmp_path / "logs").glob("*") if p.is_file())
    assert "click c2c-" in logged  # the log is there, and it holds no secret
    for secret in (API_KEY, AMI_SECRET, state.client_id, state.trigger_token):
        assert secret not in logged


def test_check_reports_the_ami_login_permissions_and_public_url(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(AMI_ENV, AMI_SECRET)
    with PbxEmulator(secret=AMI_SECRET, write_classes=("call", "reporting")) as narrow:
        path = prepared(tmp_path, emulator, narrow, free_port())
        main(["--config", str(path), "check"])
        lines = capsys.readouterr().out.splitlines()
    ami = [line for line in lines if "AMI retailcrm@" in line]
    assert ami[0].startswith("✓") and "login accepted" in ami[0]
    assert ami[1].startswith("✗") and "Originate" in ami[1] and "QueuePause" in ami[1]
    assert any(line.startswith("✗ serve: public_url") and "cannot reach" in line for line in lines)
    other = tmp_path / "other"
    other.mkdir()
    with PbxEmulator(secret="other") as wrong:
        path = prepared(other, emulator, wrong, free_port())
        assert main(["--config", str(path), "check"]) == 1
        lines = capsys.readouterr().out.splitlines()
    assert any("login refused (Authentication failed)" in line for line in lines)
    assert not any(AMI_SECRET in line for line in lines)


def test_pbx_emulator_command_serves_ami_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [str(PROGRAM), "pbx-emulator", "--port", "0", "--secret", "try-secret"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        port = int(first.split(" on 127.0.0.1:")[1].split()[0])
        probe = probe_sync("127.0.0.1", port, "retailcrm", "try-secret", 5)
        assert probe.ok and "Originate" in probe.actions
        refused = probe_sync("127.0.0.1", port, "retailcrm", "wrong", 5)
        assert not refused.ok and "Authentication failed" in refused.reason
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = proc.communicate()
    assert "try-secret" not in first + out + err


def test_a_port_in_use_is_exit_1_with_one_line(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(AMI_ENV, AMI_SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = prepared(tmp_path, emulator, pbx, taken.getsockname()[1])
        assert main(["--config", str(path), "serve"]) == 1
    err = capsys.readouterr().err
    assert "retailcrm-sync: serve: cannot listen on 127.0.0.1:" in err
    assert "Traceback" not in err
