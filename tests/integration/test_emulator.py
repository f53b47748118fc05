"""The emulator against the spec's rules (spec §10), spoken to with plain HTTP requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from sync.emulator import Emulator
from tests.crm_fixtures import API_KEY

pytestmark = pytest.mark.integration

UPLOAD = "/api/v5/telephony/calls/upload"


def make_call(external_id: str, **overrides: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "date": "2026-03-02 10:00:00",
        "type": "in",
        "phone": "+375291234567",
        "result": "answered",
        "duration": 10,
        "externalId": external_id,
    }
    call.update(overrides)
    return call


def get(emu: Emulator, path: str, key: str | None = API_KEY, **params: Any) -> requests.Response:
    headers = {"X-API-KEY": key} if key else {}
    return requests.get(emu.base_url + path, params=params, headers=headers, timeout=5)


def post(
    emu: Emulator, path: str, data: dict[str, Any], key: str | None = API_KEY
) -> requests.Response:
    headers = {"X-API-KEY": key} if key else {}
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return requests.post(emu.base_url + path, data=form, headers=headers, timeout=5)


def upload(emu: Emulator, calls: object, key: str = API_KEY) -> requests.Response:
    return post(emu, UPLOAD, {"calls": calls}, key)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The emulator with its rate limit off and a telephony module, for rule tests."""
    emulator.rate_limits(telephony_rps=None, general_rps=None)
    emulator.register_module()
    return emulator


# -- routing and auth -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v5/credentials"),
        ("GET", "/api/v5/api-versions"),
        ("GET", "//api/credentials"),
        ("GET", "/api//v5/customers"),
        ("GET", "/api/v5/customers/"),
        ("GET", "/api/v5/sites"),
        ("GET", "/api/versions"),
        ("POST", "/api/v4/telephony/setting/asterisk/edit"),
        ("POST", "/api/v5/telephony/setting/asterisk/edit"),
        ("GET", "/api/v5/telephony/calls/upload"),
        ("DELETE", "/api/v5/customers/1"),
    ],
)
def test_unknown_paths_are_404_even_without_a_key(emu: Emulator, method: str, path: str) -> None:
    answer = requests.request(method, emu.base_url + path, timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"success": False, "errorMsg": "API method not found"}


def test_unversioned_methods(emu: Emulator) -> None:
    credentials = get(emu, "/api/credentials").json()
    assert credentials["siteAccess"] == "access_full"
    assert credentials["sitesAvailable"] == ["shop"]
    assert "telephony_write" in credentials["scopes"]
    assert "/api/v5/telephony/calls/upload" in credentials["credentials"]
    assert get(emu, "/api/api-versions").json()["versions"] == ["3.0", "4.0", "5.0"]
    info = get(emu, "/api/system-info").json()
    assert info["success"] is True and info["publicUrl"] == emu.base_url


def test_authentication(emu: Emulator) -> None:
    missing = get(emu, "/api/credentials", key=None)
    assert (missing.status_code, missing.json()["errorMsg"]) == (403, '"apiKey" is missing.')
    wrong = get(emu, "/api/credentials", key="nope")
    assert (wrong.status_code, wrong.json()["errorMsg"]) == (403, 'Wrong "apiKey" value.')
    by_param = get(emu, "/api/credentials", key=None, apiKey=API_KEY)
    assert by_param.status_code == 200
    form = requests.post(
        emu.base_url + UPLOAD,
        data={"apiKey": API_KEY, "calls": json.dumps([make_call("1")])},
        timeout=5,
    )
    assert form.status_code == 200
    records = emu.requests
    assert [(r.key_label, r.key_via) for r in records] == [
        (None, None),
        (None, "header"),
        ("default", "param"),
        ("default", "param"),
    ]
    assert API_KEY not in repr(records)


def test_scopes(emu: Emulator) -> None:
    emu.add_key("reader", ["customer_read"], label="reader")
    assert get(emu, "/api/v5/customers", key="reader").status_code == 200
    assert get(emu, "/api/credentials", key="reader").json()["scopes"] == ["customer_read"]
    denied = post(emu, "/api/v5/customers/create", {"customer": {}}, key="reader")
    assert (denied.status_code, denied.json()["errorMsg"]) == (403, "Access denied.")
    assert get(emu, "/api/v5/reference/sites", key="reader").status_code == 403


def test_unknown_account_answers_html(emu: Emulator) -> None:
    emu.unknown_account = True
    answer = upload(emu, [make_call("1")])
    assert answer.status_code == 405
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<html>")
    assert get(emu, "/api/credentials").status_code == 404
    assert emu.calls == []


# -- calls upload -----------------------------------------------------------------------------


def test_upload_parameter_errors(emu: Emulator) -> None:
    missing = post(emu, UPLOAD, {"site": "shop"})
    assert (missing.status_code, missing.json()["errorMsg"]) == (
        400,
        "Parameter 'calls' is missing",
    )
    bad_json = upload(emu, "[{not json")
    assert bad_json.status_code == 400 and "calls" in bad_json.json()["errors"]
    too_many = upload(emu, [make_call(str(i)) for i in range(51)])
    assert too_many.status_code == 400 and list(too_many.json()["errors"]) == ["calls"]
    assert upload(emu, {"0": make_call("1")}).status_code == 400
    assert emu.calls == []


def test_one_invalid_call_rejects_the_whole_batch(emu: Emulator) -> None:
    batch = [make_call("1"), make_call("2", date="2026-03-02T10:00:00"), make_call("3")]
    answer = upload(emu, batch)
    assert answer.status_code == 400
    assert answer.json()["errorMsg"] == "Errors in the entity format"
    assert list(answer.json()["errors"]) == ["calls[1].date"]
    assert emu.calls == []


def test_dedup_by_external_id(emu: Emulator) -> None:
    first = upload(emu, [make_call("a"), make_call("b"), make_call("b")]).json()
    assert first == {"success": True, "processedCallsCount": 2, "duplicateCalls": ["b"]}
    late = make_call("a", recordUrl="https://pbx.example.com/rec/a.wav")
    second = upload(emu, [late, make_call("c")]).json()
    assert (second["processedCallsCount"], second["duplicateCalls"]) == (1, ["a"])
    assert "recordUrl" not in (emu.call("a") or {})  # a duplicate does not update
    assert [c["externalId"] for c in emu.calls] == ["a", "b", "c"]
    assert emu.call("zzz") is None


def test_dates_are_stored_verbatim(emu: Emulator) -> None:
    upload(emu, [make_call("a", date="2026-12-31 23:59:59")])
    assert emu.calls[0]["date"] == "2026-12-31 23:59:59"


def test_multipart_upload_is_accepted(emu: Emulator) -> None:
    answer = requests.post(
        emu.base_url + UPLOAD,
        files={"calls": (None, json.dumps([make_call("m")]))},
        headers={"X-API-KEY": API_KEY},
        timeout=5,
    )
    assert answer.status_code == 200
    assert emu.call("m") is not None


def test_telephony_needs_the_callers_active_module(emulator: Emulator) -> None:
    emulator.rate_limits(None, None)
    answer = upload(emulator, [make_call("1")])
    assert answer.status_code == 400
    assert answer.json()["errorMsg"] == "Telephony not enabled or not supports calls upload"
    emulator.add_key("other", label="other")
    emulator.register_module(key="other")
    assert upload(emulator, [make_call("1")]).status_code == 400  # another key's module
    emulator.require_module = False
    assert upload(emulator, [make_call("1")]).status_code == 200


def test_call_site_must_be_allowed(emu: Emulator) -> None:
    answer = upload(emu, [make_call("1", site="elsewhere")])
    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["calls[0].site"]


def test_throughput_forty_uploads_of_fifty_calls_with_latency(emu: Emulator) -> None:
    emu.latency = 0.1
    batches = [[make_call(f"{b}-{i}") for i in range(50)] for b in range(40)]
    sessions = [requests.Session() for _ in range(4)]

    def send(index: int) -> None:
        for batch in batches[index::4]:
            answer = sessions[index].post(
                emu.base_url + UPLOAD,
                data={"calls": json.dumps(batch)},
                headers={"X-API-KEY": API_KEY},
                timeout=5,
            )
            assert answer.status_code == 200

    with ThreadPoolExecutor(4) as pool:  # map() re-raises a sender's failed assertion
        list(pool.map(send, range(4)))
    for session in sessions:
        session.close()
    assert len(emu.calls) == 2000
    # Served in parallel: with 0.1 s of latency each, the four senders overlap.
    assert emu.peak_in_flight >= 2


# -- integration module -----------------------------------------------------------------------


def module(code: str = "asterisk", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": code,
        "integrationCode": code,
        "active": True,
        "name": "Asterisk",
        "logo": "https://pbx.example.com/logo.svg",
        "integrations": {"telephony": {"additionalCodes": [], "externalPhones": []}},
    }
    data.update(overrides)
    return data


def edit_module(emu: Emulator, data: dict[str, Any], code: str = "pbx") -> requests.Response:
    return post(emu, f"/api/v5/integration-modules/{code}/edit", {"integrationModule": data})


def test_module_create_then_replace(emu: Emulator) -> None:
    emu.add_user(16)
    codes = [{"userId": 16, "code": "151"}, {"userId": "17", "code": "152"}]
    phones = [{"siteCode": "shop", "externalPhone": "1"}, {"siteCode": "x", "externalPhone": "2"}]
    telephony = {"additionalCodes": codes, "externalPhones": phones}
    created = edit_module(emu, module("pbx", integrations={"telephony": telephony}))
    assert created.status_code == 201
    assert created.json()["info"] == {"notExistUsersIds": [17], "notExistSiteCodes": ["x"]}
    replaced = edit_module(emu, module("pbx", integrations={"telephony": {}}))
    assert (replaced.status_code, replaced.json()) == (200, {"success": True, "info": []})
    stored = get(emu, "/api/v5/integration-modules/pbx").json()["integrationModule"]
    assert stored["integrations"] == {"telephony": {}}
    assert emu.modules["pbx"] == stored
    unknown = get(emu, "/api/v5/integration-modules/nothing")
    assert (unknown.status_code, unknown.json()["errorMsg"]) == (404, "Not found")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "other"}, "code"),
        ({"name": ""}, "name"),
        ({"logo": "https://pbx.example.com/logo.png"}, "logo"),
        ({"active": "yes"}, "active"),
        (
            {"integrations": {"telephony": {"additionalCodes": [{"userId": "x", "code": "1"}]}}},
            "integrations.telephony.additionalCodes[0]",
        ),
    ],
)
def test_module_edit_rejections(emu: Emulator, overrides: dict[str, Any], field: str) -> None:
    answer = edit_module(emu, module("pbx") | overrides)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_call_event(emu: Emulator) -> None:
    emu.add_user(16)
    emu.register_module(additional_codes={"151": 16})
    event = {"phone": "+375291234567", "type": "in", "codes": ["151", "9"], "userIds": [16, 3]}
    answer = post(emu, "/api/v5/telephony/call/event", {"event": event}).json()
    assert (answer["notExistCodes"], answer["notExistUsers"]) == (["9"], [3])
    wrong = {"phone": "1", "type": "hangup", "hangupStatus": "no answer"}
    assert post(emu, "/api/v5/telephony/call/event", {"event": wrong}).status_code == 400
    assert emu.events == [event]


def test_manager_lookup_and_boolean_spelling(emu: Emulator) -> None:
    emu.add_user(16, "Ivan")
    emu.register_module(additional_codes={"151": 16})
    emu.add_customer("Anna", ["8 029 123 45 67", "+375291234567"], manager_id=16)
    answer = get(emu, "/api/v5/telephony/manager", phone="291234567", details="1").json()
    assert answer["manager"]["code"] == "151"
    assert answer["customer"]["firstName"] == "Anna"
    assert set(answer["links"]) == {"newOrderLink", "newCustomerLink", "customerLink"}
    nobody = get(emu, "/api/v5/telephony/manager", phone="+375290000000", details="1").json()
    assert "manager" not in nobody and "customer" not in nobody
    python_bool = get(emu, "/api/v5/telephony/manager", phone="1", details="True")
    assert python_bool.status_code == 400


# -- customers, history, paging ---------------------------------------------------------------


def test_filter_name_matches_names_and_phone_digits(emu: Emulator) -> None:
    anna = emu.add_customer("Anna", ["+375 (29) 123-45-67"])
    boris = emu.add_customer("Boris", ["80297654321"])

    def found(**params: Any) -> list[int]:
        return [c["id"] for c in get(emu, "/api/v5/customers", **params).json()["customers"]]

    assert found(**{"filter[name]": "375291234567"}) == [anna]
    assert found(**{"filter[name]": "29 765-43-21"}) == [boris]
    assert found(**{"filter[name]": "+375297654321"}) == []  # 80... and +375... differ
    assert found(**{"filter[name]": "anN"}) == [anna]
    assert found(**{"filter[name]": "45-67"}) == []  # fewer than 7 digits: no phone match
    assert found(**{"filter[ids][]": [anna, boris]}) == [anna, boris]
    assert found(**{"filter[ids][0]": boris}) == [boris]


def test_pagination_block_and_limits(emu: Emulator) -> None:
    for i in range(45):
        emu.add_customer(f"C{i}", [])
    answer = get(emu, "/api/v5/customers", limit=20, page=3).json()
    assert answer["pagination"] == {
        "limit": 20,
        "totalCount": 45,
        "currentPage": 3,
        "totalPageCount": 3,
    }
    assert len(answer["customers"]) == 5
    assert get(emu, "/api/v5/customers").json()["pagination"]["limit"] == 20
    for bad in ({"limit": 25}, {"limit": 250}, {"page": 0}, {"page": "x"}):
        assert get(emu, "/api/v5/customers", **bad).status_code == 400
        assert get(emu, "/api/v5/customers/history", **bad).status_code == 400


def test_customer_create_get_edit(emu: Emulator) -> None:
    created = post(emu, "/api/v5/customers/create", {"customer": {"externalId": "e1"}})
    assert created.status_code == 201
    customer_id = created.json()["id"]
    assert (
        get(emu, f"/api/v5/customers/{customer_id}", by="id").json()["customer"]["site"] == "shop"
    )
    assert get(emu, "/api/v5/customers/e1").json()["customer"]["id"] == customer_id
    assert get(emu, "/api/v5/customers/e2").status_code == 404
    assert (
        post(emu, "/api/v5/customers/create", {"customer": {"externalId": "e1"}}).status_code == 400
    )
    edit = {"customer": {"phones": [{"number": "+375291234567"}]}, "by": "id"}
    edited = post(emu, f"/api/v5/customers/{customer_id}/edit", edit)
    assert (edited.status_code, edited.json()) == (200, {"success": True, "id": customer_id})


def test_history_records_creates_phone_changes_deletes_and_merges(emu: Emulator) -> None:
    emu.add_key("other-key", label="other")
    via_api = post(emu, "/api/v5/customers/create", {"customer": {"firstName": "A"}}).json()["id"]
    kept = emu.add_customer("Kept", ["+375291111111"])
    gone = emu.add_customer("Gone", ["+375292222222", "+375291111111"])
    emu.edit_customer_phones(kept, add=["+375293333333"], remove=["+375291111111"])
    emu.merge_customers(gone, kept)
    emu.delete_customer(via_api)

    history = get(emu, "/api/v5/customers/history", limit=100).json()["history"]
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    summary = [
        (e["customer"]["id"], e["field"], e.get("oldValue"), e.get("newValue"))
        for e in history
        if not e.get("created")
    ]
    assert summary == [
        (kept, "phones", "+375291111111", None),
        (kept, "phones", None, "+375293333333"),
        (kept, "phones", None, "+375292222222"),
        (kept, "phones", None, "+375291111111"),
        (gone, "id", gone, None),
        (via_api, "id", via_api, None),
    ]
    merged = history[-2]
    assert merged["deleted"] is True and merged["combinedTo"] == {"id": kept}
    assert [e["apiKey"]["current"] for e in history[:2]] == [True, False]
    as_other = get(emu, "/api/v5/customers/history", key="other-key", limit=100).json()["history"]
    assert as_other[0]["apiKey"]["current"] is False
    since_six: dict[str, Any] = {"filter[sinceId]": 6}
    since = get(emu, "/api/v5/customers/history", **since_six).json()["history"]
    assert [e["id"] for e in since] == [7, 8, 9]
    assert emu.history == [{k: v for k, v in e.items() if k != "apiKey"} for e in history]
    assert set(emu.customers) == {kept}


def test_history_date_filter_must_be_a_datetime(emu: Emulator) -> None:
    answer = get(emu, "/api/v5/customers/history", **{"filter[startDate]": "2026-01-01"})
    assert answer.status_code == 400


def test_selective_key_and_site_rules(emu: Emulator) -> None:
    emu.add_site("second", "Second")
    emu.add_site("third", "Third")
    emu.add_key("two-shops", site_access="access_selective", sites=["second", "third"])
    create = "/api/v5/customers/create"
    ambiguous = post(emu, create, {"customer": {}}, key="two-shops")
    assert (ambiguous.status_code, ambiguous.json()["errorMsg"]) == (
        400,
        "Parameter 'site' is missing",
    )
    assert post(emu, create, {"customer": {}, "site": "shop"}, key="two-shops").status_code == 403
    assert post(emu, create, {"customer": {}, "site": "third"}, key="two-shops").status_code == 201
    assert get(emu, "/api/credentials", key="two-shops").json()["sitesAvailable"] == [
        "second",
        "third",
    ]


def test_sites_users_orders(emu: Emulator) -> None:
    sites = get(emu, "/api/v5/reference/sites").json()["sites"]
    assert isinstance(sites, dict) and sites["shop"]["code"] == "shop"
    emu.add_user(5, "Olga")
    assert get(emu, "/api/v5/users/5").json()["user"]["firstName"] == "Olga"
    assert get(emu, "/api/v5/users/6").status_code == 404
    customer_id = emu.add_customer("Anna", [])
    order = post(emu, "/api/v5/orders/create", {"order": {"customer": {"id": customer_id}}})
    assert order.status_code == 201 and order.json()["order"]["number"] == "1A"
    orphan = post(emu, "/api/v5/orders/create", {"order": {"customer": {"id": 999}}})
    assert orphan.status_code == 400
    by_customer: dict[str, Any] = {"filter[customerId]": customer_id}
    listed = get(emu, "/api/v5/orders", **by_customer).json()["orders"]
    assert [o["id"] for o in listed] == [1]
    assert list(emu.orders) == [1]


# -- rate limits and fault injection ----------------------------------------------------------


def test_rate_limit_per_key_and_bucket(emulator: Emulator) -> None:
    emulator.register_module()
    emulator.add_key("second-key")
    answers = [get(emulator, "/api/api-versions") for _ in range(15)]
    statuses = [a.status_code for a in answers]
    assert 10 <= statuses.count(200) <= 12 and statuses.count(503) >= 3
    limited = answers[statuses.index(503)]
    assert limited.headers["Content-Type"].startswith("text/html")
    assert "Retry-After" not in limited.headers
    assert upload(emulator, [make_call("1")]).status_code == 200  # telephony bucket
    assert get(emulator, "/api/api-versions", key="second-key").status_code == 200


def test_rate_limit_can_answer_429_json(emulator: Emulator) -> None:
    emulator.rate_limits(telephony_rps=40, general_rps=1, status=429, body="json")
    statuses = [get(emulator, "/api/api-versions").status_code for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses
    answer = get(emulator, "/api/api-versions")
    assert answer.json() == {"success": False, "errorMsg": "Rate limit exceeded"}


def test_fail_next_shapes(emu: Emulator) -> None:
    get(emu, "/api/api-versions")
    emu.clear_requests()
    emu.fail_next("/api/v5/users", 1, status=500, body="errors_list")
    emu.fail_next("/api/v5/users", 1, status=200, body="success_false")
    emu.fail_next("/api/v5/users", 1, status=503, body="html", retry_after=2)
    listed = get(emu, "/api/v5/users")
    assert listed.status_code == 500 and isinstance(listed.json()["errors"], list)
    false = get(emu, "/api/v5/users")
    assert (false.status_code, false.json()["success"]) == (200, False)
    html = get(emu, "/api/v5/users")
    assert html.status_code == 503 and html.headers["Retry-After"] == "2"
    assert html.text.lstrip().startswith("<")
    assert get(emu, "/api/v5/users").status_code == 200
    assert [r.status for r in emu.requests] == [500, 200, 503, 200]


def test_latency_and_hang(emu: Emulator) -> None:
    emu.latency = 0.2
    assert get(emu, "/api/api-versions").status_code == 200
    emu.latency = 0
    emu.hang_next(UPLOAD, 1, seconds=0.5)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            emu.base_url + UPLOAD,
            data={"calls": json.dumps([make_call("h")])},
            headers={"X-API-KEY": API_KEY},
            timeout=(1, 0.2),
        )
    assert emu.call("h") is not None  # processed before the hang


def test_drop_after_store(emu: Emulator) -> None:
    emu.drop_after_store_next(UPLOAD, 1)
    with pytest.raises(requests.ConnectionError):
        upload(emu, [make_call("d")])
    assert emu.call("d") is not None
    assert emu.requests[-1].status is None
    assert upload(emu, [make_call("d")]).json()["duplicateCalls"] == ["d"]


def test_stop_cuts_hanging_answers(emulator: Emulator) -> None:
    emulator.hang_next("/api/api-versions", 1, seconds=30)
    result: list[object] = []

    def call() -> None:
        try:
            result.append(get(emulator, "/api/api-versions").status_code)
        except requests.RequestException as error:
            result.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    for _ in range(1000):  # until the request is in; its answer hangs for 30 s
        if emulator.peak_in_flight:
            break
        thread.join(timeout=0.01)
    emulator.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and result  # cut, not answered after 30 s


def test_run_standalone_serves_until_sigterm() -> None:
    code = (
        "from sync.emulator import run_standalone; run_standalone('127.0.0.1', 0, 'standalone-key')"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        _serve_then_sigterm(process)


def _serve_then_sigterm(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "standalone-key" not in line
        url = line.split(" on ")[1].split()[0]
        answer = requests.get(
            url + "/api/credentials", headers={"X-API-KEY": "standalone-key"}, timeout=5
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
