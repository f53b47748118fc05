"""``serve`` over real sockets: the CRM emulator clicks, the AMI emulator answers.

Every route and every row of issue #12's "Bad input" table: refused clicks never reach the
PBX, nothing secret reaches a log line, AMI trouble is a 503 at once and one log line per state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import sqlalchemy as sa

from models import RetailcrmCustomer
from sync import phones
from sync.commands.status import collect
from sync.emulator import Emulator
from sync.engine.runner import Runner
from sync.pbx_emulator import PbxEmulator
from tests.crm_fixtures import API_KEY, emulator  # noqa: F401
from tests.live_fixtures import (
    AMI_SECRET,
    Live,
    free_port,
    live_bridge,
    live_env,  # noqa: F401
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("live_env")]
PHONE = "+375 29 123-45-67"


@pytest.fixture
def pbx() -> Iterator[PbxEmulator]:
    with PbxEmulator(secret=AMI_SECRET) as server:
        yield server


@pytest.fixture
def live(tmp_path: Path, emulator: Emulator, pbx: PbxEmulator) -> Iterator[Live]:  # noqa: F811
    with live_bridge(tmp_path, emulator, pbx) as running:
        yield running


def connected(live: Live) -> bool:
    return bool(live.ami.connected)


def assert_no_secrets(live: Live) -> None:
    text = "\n".join(live.logs)
    for secret in live.secrets():
        assert secret not in text


# -- click-to-call -----------------------------------------------------------------------------


def test_click_reaches_the_pbx_as_one_originate(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    answer = live.crm.click("101", PHONE, 11)
    assert answer.status == 200 and answer.body["success"] is True
    (originate,) = live.originates()
    fields = originate.as_dict()
    assert fields["Channel"] == "Local/101@originate-skipvm"
    assert fields["Context"] == "from-internal" and fields["Exten"] == "80291234567"
    assert fields["CallerID"] == '"+375291234567" <+375291234567>'
    assert fields["Async"] == "true" and fields["Timeout"] == "30000"
    assert fields["ChannelId"] == fields["ActionID"] == answer.body["callExternalId"]
    assert fields["ChannelId"].startswith("c2c-") and len(fields["ChannelId"]) == 28
    (call,) = wait_for(lambda: live.pbx.originated, "the originated call to play")
    assert call.linkedid == fields["ChannelId"]
    metrics = wait_for(
        lambda: (
            text
            if 'retailcrm_sync_originate_total{reason="answered",tenant="shop"} 1.0'
            in (text := live.get("/metrics").text)
            else None
        ),
        "OriginateResponse to be counted",
    )
    assert 'retailcrm_sync_clicks_total{result="queued",tenant="shop"} 1.0' in metrics
    assert_no_secrets(live)


def test_post_form_and_json_bodies_are_accepted(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    assert live.crm.click("101", PHONE, 11, method="POST").status == 200
    body = {"clientId": live.client_id, "code": "102", "phone": PHONE, "userId": 12}
    answer = requests.post(live.base + "/make-call", json=body, timeout=10)
    assert answer.status_code == 200
    assert len(live.originates()) == 2


def test_unknown_client_id_is_403_and_never_logged(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    guess = "f" * 32
    answer = live.crm.click("101", PHONE, 11, client_id=guess)
    assert answer.status == 403 and answer.body["success"] is False
    assert guess not in answer.text
    assert live.originates() == []
    assert any("unknown clientId" in line for line in live.logs)
    assert not any(guess in line for line in live.logs)


def test_a_colleagues_extension_is_403(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    assert live.crm.click("101", PHONE, 12).status == 403
    assert live.crm.click("999", PHONE).status == 403
    assert live.originates() == []


@pytest.mark.parametrize(
    "phone",
    [
        "80291234567\r\nAction: Hangup",
        "80291234567\nChannel: PJSIP/evil",
        "Exten: 80291234567",
        "80291234567;x",
        "+48 22 123 45 67",  # outside allow (default: BY only): toll fraud
        "+882 345 678 901",
        "101",
        "",
    ],
)
def test_bad_phone_is_400_and_nothing_reaches_the_pbx(live: Live, phone: str) -> None:
    wait_for(lambda: connected(live), "AMI login")
    answer = live.crm.click("101", phone, 11)
    assert answer.status == 400 and answer.body["success"] is False
    assert live.originates() == []
    assert sum(a.get("Action") == "Originate" for a in live.pbx.actions) == 0


def test_repeated_click_is_one_originate(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    answers = [live.crm.click("101", PHONE, 11) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert len(live.originates()) == 1
    assert 'retailcrm_sync_clicks_total{result="duplicate",tenant="shop"} 2.0' in (
        live.get("/metrics").text
    )


def test_clicks_leave_nothing_per_number_behind_once_their_calls_ended(live: Live) -> None:
    """Issue #12, flat memory: each click dials a number of its own. Once its call ended only
    the dedup window remembers it; no memo, pending table or pop-up state keeps the number."""
    wait_for(lambda: connected(live), "AMI login")
    bridge = live.serve.service.bridge
    popups = bridge.popups
    assert popups is not None
    phones._normalize_cached.cache_clear()
    for n in range(20):
        assert live.crm.click("101", f"+375 29 100-{n:02d}-00", 11).status == 200
    wait_for(lambda: len(live.pbx.originated) == 20, "every originated call to play")
    wait_for(lambda: popups.events_read >= live.pbx.events_sent, "serve to read the events")
    wait_for(lambda: popups.sender.settled >= popups.submitted, "the pop-ups to settle")
    assert popups.submitted == 40, "each click's call was shown (out) and closed (hangup)"
    assert bridge.clicks == {} and popups.machine.calls == {} and not popups.machine._clicks
    assert len(bridge.dedup) == 20
    assert phones.memoised() == 0


def test_pbx_refusal_is_502_with_its_message(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    with live_bridge(tmp_path, emulator, pbx, originate='context = "nowhere"') as live:
        wait_for(lambda: connected(live), "AMI login")
        answer = live.crm.click("101", PHONE, 11)
        assert answer.status == 502
        assert answer.body["errorMsg"] == "PBX refused: Extension does not exist."
        # refused: the same click may be tried again at once (no dedup of failures)
        assert live.crm.click("101", PHONE, 11).status == 502
        assert len(live.originates()) == 2


def test_ami_down_is_503_at_once_and_healthz_says_so(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
) -> None:
    closed = free_port()
    with (
        PbxEmulator(secret=AMI_SECRET) as unused,
        live_bridge(tmp_path, emulator, unused, ami_port=closed) as live,
    ):
        answer = live.crm.click("101", PHONE, 11)  # whatever the AMI task is doing now
        assert answer.status == 503 and answer.body["errorMsg"] == "PBX not connected"
        wait_for(lambda: live.ami.state.startswith("unreachable"), "the first failed attempt")
        health = live.get("/healthz")
        assert health.status_code == 503 and health.json()["ami"].startswith("unreachable")
        # two failed attempts (1 s backoff between), still one line for the state
        wait_for(lambda: live.ami.attempts >= 2, "a second connection attempt")
        assert sum("unreachable" in line for line in live.logs) == 1
        assert live.serve.thread.is_alive()


def test_wrong_ami_secret_keeps_serve_running_with_one_line_per_state(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
) -> None:
    with (
        PbxEmulator(secret="another-secret") as pbx,
        live_bridge(tmp_path, emulator, pbx) as live,
    ):
        wait_for(lambda: len(pbx.actions_named("Login")) >= 2, "a retried login", 20)
        assert live.get("/healthz").status_code == 503
        assert sum("login refused" in line for line in live.logs) == 1
        assert live.crm.click("101", PHONE, 11).status == 503
        assert all(a.get("Secret") == "***" for a in pbx.actions_named("Login"))
        assert_no_secrets(live)


def test_reconnects_after_the_pbx_drops_and_never_resends(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    assert live.get("/healthz").json()["ami"] == "connected"
    live.pbx.stall()
    answer = live.crm.click("101", PHONE, 11)  # the PBX holds its answer: 502 (no answer)
    assert answer.status == 502
    live.pbx.drop_connections()
    live.pbx.stall(False)
    wait_for(lambda: live.pbx.logins >= 2 and connected(live), "the reconnect", 20)
    assert live.get("/healthz").status_code == 200
    assert live.crm.click("102", PHONE, 12).status == 200
    originates = live.originates()
    assert [o.get("Channel") for o in originates] == [
        "Local/101@originate-skipvm",
        "Local/102@originate-skipvm",
    ]


def test_inactive_or_frozen_tenant_refuses_clicks_and_uploads_nothing(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    assert live.crm.set_activity(active=True, freeze=True).status == 200
    state = live.store.tenant("shop")
    assert state is not None and state.crm_frozen and state.crm_active
    assert live.crm.click("101", PHONE, 11).status == 403
    assert live.originates() == []
    report = Runner(live.settings, engine=live.store.engine).once()[0]
    assert report.outcome == "paused" and report.sent == 0
    assert "frozen" in (report.error or "")
    (row,) = collect(live.store, ["shop"], report.started)
    assert row["paused"] is True and "frozen" in row["last_error"]
    assert live.crm.set_activity(active=True, freeze=False).status == 200
    assert live.crm.click("101", PHONE, 11).status == 200


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"activity": "{not json"}, 400),
        ({"activity": '{"active": "yes"}'}, 400),
        ({}, 400),
    ],
)
def test_activity_bad_input(live: Live, form: dict[str, str], status: int) -> None:
    answer = live.post("/activity", clientId=live.client_id, **form)
    assert answer.status_code == status and answer.json()["success"] is False


def test_activity_unknown_client_id_is_400(live: Live) -> None:
    answer = live.post("/activity", clientId="x" * 32, activity='{"active": false}')
    assert answer.status_code == 400
    state = live.store.tenant("shop")
    assert state is not None and state.crm_active


# -- user status -------------------------------------------------------------------------------


def test_user_status_pauses_and_unpauses_the_queue_member(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    assert live.crm.change_status("101", "dinner", 11).status == 200
    assert live.crm.change_status("101", "busy", 11).status == 200  # not in pause_on_status
    assert live.crm.change_status("101", "free", 11).status == 200
    pauses = [p.as_dict() for p in live.pbx.actions_named("QueuePause")]
    assert [(p["Interface"], p["Paused"]) for p in pauses] == [
        ("PJSIP/101", "true"),
        ("PJSIP/101", "false"),
    ]
    assert live.crm.change_status("101", "dinner", 12).status == 403
    unknown = live.post("/user-status", clientId="0" * 32, code="101", status="dinner")
    assert unknown.status_code == 403
    assert len(live.pbx.actions_named("QueuePause")) == 2


# -- trigger and route -------------------------------------------------------------------------


def test_trigger_refreshes_the_customer_map(live: Live) -> None:
    live.crm.add_customer("Olga", ["+375291112233"])
    assert live.get("/trigger/not-a-token").status_code == 404
    assert live.post(f"/trigger/{live.token}").status_code == 200
    table = RetailcrmCustomer.__table__

    def mapped() -> int:
        with live.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    wait_for(mapped, "the customer map to be refreshed")
    assert not any(live.token in line for line in live.logs)


def test_route_answers_the_customers_manager(live: Live) -> None:
    live.crm.add_customer("Olga", ["+375291112233"], manager_id=12)
    answer = live.get(f"/route/{live.token}", phone="80291112233")
    assert answer.status_code == 200 and answer.text == "102"
    assert live.get(f"/route/{live.token}", phone="80299999999").status_code == 404
    assert live.get("/route/wrong-token", phone="80291112233").status_code == 404
    assert live.get(f"/route/{live.token}", phone="8029\r\n111").status_code == 404
    before = len(live.crm.requests)
    assert live.get(f"/route/{live.token}", phone="+375291112233").text == "102"
    assert len(live.crm.requests) == before  # cached for 60 s
    live.crm.add_customer("Ivan", ["+375293334455"], manager_id=12)
    live.crm.set_user_status(12, "dinner")  # the manager's status is respected: no manager
    assert live.get(f"/route/{live.token}", phone="80293334455").status_code == 404


def test_route_is_404_when_the_crm_is_slow(live: Live) -> None:
    live.crm.add_customer("Olga", ["+375291112233"], manager_id=12)
    live.crm.latency = 3.0
    answer = live.get(f"/route/{live.token}", phone="80291112233")
    assert answer.status_code == 404


# -- http originate ----------------------------------------------------------------------------


class _PbxHttp(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []
    status = 200

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_http_originate(tmp_path: Path, emulator: Emulator, pbx: PbxEmulator) -> None:  # noqa: F811
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PbxHttp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/makecallexternal"
    originate = (
        'method = "http"\n'
        f'http_url = "{url}?code={{extension}}&phone={{number}}'
        '&e164={phone}&clientId={secret}"\n'
        f'http_secret_env = "TEST_AMI_SECRET"\n'
    )
    try:
        with live_bridge(tmp_path, emulator, pbx, originate=originate) as live:
            assert live.crm.click("101", PHONE, 11).status == 200
            assert _PbxHttp.seen == [
                "/api/makecallexternal?code=101&phone=80291234567&e164=%2B375291234567"
                f"&clientId={AMI_SECRET}"
            ]
            _PbxHttp.status = 500
            assert live.crm.click("102", PHONE, 12).status == 502
            assert live.originates() == []
            assert_no_secrets(live)
    finally:
        server.shutdown()
        server.server_close()
        _PbxHttp.status = 200


# -- health and metrics ------------------------------------------------------------------------


def test_healthz_and_metrics(live: Live) -> None:
    wait_for(lambda: connected(live), "AMI login")
    health = live.get("/healthz")
    assert health.status_code == 200 and health.json()["ami"] == "connected"
    text = live.get("/metrics").text
    for name in (
        "retailcrm_sync_ami_connected 1.0",
        'retailcrm_sync_calls{status="pending",tenant="shop"}',
        'retailcrm_sync_lag_seconds{tenant="shop"}',
    ):
        assert name in text


def test_clicks_and_activity_on_postgresql(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
    pg_url: str,
) -> None:
    """The same bridge on PostgreSQL, our production database."""
    with live_bridge(tmp_path, emulator, pbx, db_url=pg_url) as live:
        wait_for(lambda: connected(live), "AMI login")
        assert live.crm.click("101", PHONE, 11).status == 200
        assert live.crm.set_activity(active=False).status == 200
        state = live.store.tenant("shop")
        assert state is not None and not state.crm_active
        assert live.crm.click("102", PHONE, 12).status == 403
        report = Runner(live.settings, engine=live.store.engine).once()[0]
        assert report.outcome == "paused" and "deactivated" in (report.error or "")
        assert len(live.originates()) == 1


def test_the_standalone_emulator_clicks_over_http(live: Live) -> None:
    """`retailcrm-sync emulator` users click with one POST to the emulator's own control."""
    wait_for(lambda: connected(live), "AMI login")
    url = live.crm.base_url + "/_emulator/click"
    params = {"apiKey": API_KEY, "code": "101", "phone": PHONE, "userId": "11"}
    answer = requests.post(url, params=params, timeout=10).json()
    assert answer["status"] == 200 and answer["answer"]["success"] is True
    assert len(live.originates()) == 1
    denied = requests.post(url, params={**params, "apiKey": "nope"}, timeout=10)
    assert denied.status_code == 403
