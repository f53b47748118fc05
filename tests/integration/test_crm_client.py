"""The RetailCRM client against the emulator over real HTTP: every method, every error class,
retries, budgets, timeouts, rate limits, encoding, and the key staying out of logs."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from sync.crm import (
    AccountNotFoundError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    RetailCRMClient,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from sync.emulator import Emulator
from tests.crm_fixtures import API_KEY, FakeTime, make_client

pytestmark = pytest.mark.integration

UPLOAD = "/api/v5/telephony/calls/upload"


def make_call(external_id: str, **overrides: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "date": "2026-03-02 10:00:00",
        "type": "in",
        "phone": "+375291234567",
        "code": "101",
        "result": "answered",
        "duration": 120,
        "durationWaiting": 7,
        "externalId": external_id,
    }
    call.update(overrides)
    return call


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{level} {message} {extra}")
    yield lines
    logger.remove(sink)


def last_request(emu: Emulator, path: str) -> Any:
    return [r for r in emu.requests if r.path == path][-1]


# -- methods ----------------------------------------------------------------------------------


def test_credentials_and_api_versions(emulator: Emulator, crm: RetailCRMClient) -> None:
    credentials = crm.credentials()
    assert "telephony_write" in credentials.scopes
    assert credentials.site_access == "access_full"
    assert credentials.sites_available == ("shop",)
    assert credentials.raw["success"] is True
    assert "5.0" in crm.api_versions()
    assert [r.path for r in emulator.requests] == ["/api/credentials", "/api/api-versions"]


def test_selective_key_credentials(emulator: Emulator) -> None:
    emulator.add_site("second", "Second shop")
    emulator.add_key("narrow-key", ["telephony_write"], "access_selective", ["second"])
    with make_client(emulator, "narrow-key") as client:
        credentials = client.credentials()
    assert credentials.scopes == ("telephony_write",)
    assert credentials.site_access == "access_selective"
    assert credentials.sites_available == ("second",)


def test_sites_are_keyed_by_code(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.add_site("outlet", "Outlet")
    sites = crm.sites()
    assert set(sites) == {"shop", "outlet"}
    assert sites["outlet"]["name"] == "Outlet"


def test_integration_module_create_get_replace(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.add_user(16, "Ivan")
    module = {
        "code": "asterisk",
        "integrationCode": "asterisk",
        "active": True,
        "name": "Asterisk",
        "logo": "https://pbx.example.com/logo.svg",
        "clientId": "token",
        "integrations": {
            "telephony": {
                "additionalCodes": [{"userId": 16, "code": "151"}, {"userId": 99, "code": "152"}],
                "externalPhones": [{"siteCode": "nowhere", "externalPhone": "+375170000000"}],
            }
        },
    }
    assert crm.integration_module("asterisk") is None
    info = crm.edit_integration_module(module)
    assert info.not_exist_user_ids == (99,)
    assert info.not_exist_site_codes == ("nowhere",)
    assert crm.integration_module("asterisk") == module

    module["integrations"] = {"telephony": {"additionalCodes": [{"userId": 16, "code": "151"}]}}
    info = crm.edit_integration_module(module)
    assert info.not_exist_user_ids == () and info.not_exist_site_codes == ()
    assert info.raw == {}  # the CRM sent `[]`
    stored = crm.integration_module("asterisk")
    assert stored is not None
    assert "externalPhones" not in stored["integrations"]["telephony"]  # replaced, not merged
    statuses = [r.status for r in emulator.requests if r.path.endswith("/edit")]
    assert statuses == [201, 200]


def test_edit_module_needs_a_code(crm: RetailCRMClient) -> None:
    with pytest.raises(ValueError, match="code"):
        crm.edit_integration_module({"name": "x"})


def test_upload_calls_and_duplicates(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.register_module()
    first = crm.upload_calls([make_call("1"), make_call("2")], budget_seconds=5)
    assert (first.processed, first.duplicates) == (2, ())
    again = crm.upload_calls([make_call("2"), make_call("3"), make_call("3")], budget_seconds=5)
    assert (again.processed, again.duplicates) == (1, ("2", "3"))
    assert [c["externalId"] for c in emulator.calls] == ["1", "2", "3"]


def test_upload_batch_size_is_checked_before_sending(
    emulator: Emulator, crm: RetailCRMClient
) -> None:
    with pytest.raises(ValueError):
        crm.upload_calls([], budget_seconds=5)
    with pytest.raises(ValueError):
        crm.upload_calls([make_call(str(i)) for i in range(51)], budget_seconds=5)
    assert emulator.requests == []


def test_site_is_sent_on_uploads_events_and_creates(emulator: Emulator) -> None:
    emulator.register_module()
    with make_client(emulator, site="shop") as client:
        client.upload_calls([make_call("1")], budget_seconds=5)
        client.call_event({"phone": "+375291234567", "type": "in"})
        client.create_customer({"firstName": "Anna"})
    assert emulator.call("1") is not None
    assert emulator.call("1")["site"] == "shop"  # type: ignore[index]
    assert emulator.events[0]["site"] == "shop"
    assert last_request(emulator, "/api/v5/customers/create").params["site"] == "shop"


def test_call_event_reports_unknown_codes(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.add_user(16)
    emulator.register_module(additional_codes={"151": 16})
    answer = crm.call_event({"phone": "+375291234567", "type": "in", "codes": ["151", "999"]})
    assert answer["notExistCodes"] == ["999"]


def test_manager_by_phone_sends_numeric_booleans(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.add_user(16, "Ivan")
    emulator.register_module(additional_codes={"151": 16})
    customer_id = emulator.add_customer("Anna", ["+375 29 123-45-67"], manager_id=16)
    answer = crm.manager_by_phone("+375291234567")
    assert answer["manager"]["code"] == "151"
    assert answer["customer"]["id"] == customer_id
    assert "customer" not in crm.manager_by_phone("+375291234567", details=False)
    details = [r.params["details"] for r in emulator.requests if r.path.endswith("/manager")]
    assert details == ["1", "0"]


def test_customers_search_get_create_edit(emulator: Emulator, crm: RetailCRMClient) -> None:
    anna = emulator.add_customer("Anna", ["+375 (29) 123-45-67"])
    emulator.add_customer("Boris", ["+375297654321"])
    assert [c["id"] for c in crm.customers_by_phone("+375291234567")] == [anna]
    page = crm.customers({"name": "bor"}, limit=20)
    assert [c["firstName"] for c in page.items] == ["Boris"]
    assert (page.current_page, page.total_pages, page.total_count, page.limit) == (1, 1, 1, 20)

    new_id = crm.create_customer({"firstName": "Vera", "phones": [{"number": "+375290000001"}]})
    assert crm.edit_customer(new_id, {"phones": [{"number": "+375290000002"}]}) == new_id
    customer = crm.customer(new_id)
    assert customer is not None
    assert customer["phones"] == [{"number": "+375290000002"}]
    assert crm.customer(12345) is None


def test_customers_history_follows_since_id(emulator: Emulator, crm: RetailCRMClient) -> None:
    for i in range(230):
        emulator.add_customer(f"C{i}", [f"+37529{i:07d}"])
    pages = list(crm.customers_history(None))
    assert [len(p.entries) for p in pages] == [100, 100, 30]
    assert [p.last_id for p in pages] == [100, 200, 230]
    assert list(crm.customers_history(230)) == []
    sent = [r.params.get("filter", {}) for r in emulator.requests]
    assert sent == [{}, {"sinceId": "100"}, {"sinceId": "200"}, {"sinceId": "230"}]
    assert all(r.params["limit"] == "100" and r.params["page"] == "1" for r in emulator.requests)


def test_customers_history_first_run_by_start_date(
    emulator: Emulator, crm: RetailCRMClient
) -> None:
    emulator.add_customer("Anna", ["+375291234567"])
    pages = list(crm.customers_history(None, start_date="2000-01-01 00:00:00"))
    assert pages[0].entries[0]["created"] is True
    assert pages[0].entries[0]["apiKey"] == {"current": False}
    assert emulator.requests[0].params["filter"] == {"startDate": "2000-01-01 00:00:00"}


def test_orders_by_customer_and_create(emulator: Emulator, crm: RetailCRMClient) -> None:
    customer_id = emulator.add_customer("Anna", ["+375291234567"])
    order_id = crm.create_order({"customer": {"id": customer_id}, "orderMethod": "phone"})
    assert [o["id"] for o in crm.orders_by_customer(customer_id)] == [order_id]
    assert crm.orders_by_customer(customer_id + 1) == []


def test_users_pages(emulator: Emulator, crm: RetailCRMClient) -> None:
    for user_id in range(1, 106):
        emulator.add_user(user_id)
    first = crm.users()
    assert len(first.items) == 100 and not first.is_last
    assert [u["id"] for u in crm.all_users()] == list(range(1, 106))


# -- encoding ---------------------------------------------------------------------------------


def test_nested_filters_use_brackets(emulator: Emulator, crm: RetailCRMClient) -> None:
    crm.customers({"ids": [1, 2], "sites": ["shop"], "name": "Anna"}, page=1, limit=50)
    request = emulator.requests[-1]
    assert request.fields == (
        ("filter[ids][]", "1"),
        ("filter[ids][]", "2"),
        ("filter[sites][]", "shop"),
        ("filter[name]", "Anna"),
        ("page", "1"),
        ("limit", "50"),
    )
    assert request.params["filter"] == {"ids": ["1", "2"], "sites": ["shop"], "name": "Anna"}


def test_objects_are_one_json_form_field_and_the_key_is_a_header(
    emulator: Emulator, crm: RetailCRMClient
) -> None:
    emulator.register_module()
    calls = [make_call("1", phone="+375 29 тест")]
    crm.upload_calls(calls, budget_seconds=5)
    request = emulator.requests[-1]
    assert [name for name, _ in request.fields] == ["calls"]
    assert json.loads(request.fields[0][1]) == calls
    assert request.params["calls"] == calls
    assert request.key_via == "header"


def test_trailing_slash_of_the_base_url_is_harmless(emulator: Emulator) -> None:
    with RetailCRMClient(emulator.base_url + "/", API_KEY, tenant="shop") as client:
        assert client.api_versions()
    assert emulator.requests[0].path == "/api/api-versions"


# -- error classes ----------------------------------------------------------------------------


def test_validation_error_carries_the_field_map(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.register_module()
    batch = [make_call("1"), make_call("2", result="no answered")]
    with pytest.raises(ValidationError) as caught:
        crm.upload_calls(batch, budget_seconds=5)
    assert caught.value.errors == ["calls[1].result: The value you selected is not a valid choice."]
    assert str(caught.value).startswith(
        f"tenant shop: POST {UPLOAD}: 400 Errors in the entity format (calls[1].result: "
    )
    assert emulator.calls == []
    assert len(emulator.requests) == 1  # fatal: not retried


def test_validation_error_with_an_error_list(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.fail_next("/api/v5/customers", 1, status=400, body="errors_list")
    with pytest.raises(ValidationError) as caught:
        crm.customers({})
    assert caught.value.errors == ["Injected failure 400", "Second message"]


def test_no_telephony_module_is_a_validation_error(crm: RetailCRMClient) -> None:
    with pytest.raises(ValidationError, match="Telephony not enabled"):
        crm.upload_calls([make_call("1")], budget_seconds=5)


def test_wrong_key_and_missing_scope_are_auth_errors(emulator: Emulator) -> None:
    with make_client(emulator, "wrong-key") as client, pytest.raises(AuthError) as caught:
        client.credentials()
    assert caught.value.error_msg == 'Wrong "apiKey" value.'
    emulator.add_key("reader", ["customer_read"])
    with make_client(emulator, "reader") as client, pytest.raises(AuthError) as caught:
        client.upload_calls([make_call("1")], budget_seconds=5)
    assert caught.value.error_msg == "Access denied."


def test_unknown_method_path_is_not_mistaken_for_a_missing_entity(emulator: Emulator) -> None:
    with RetailCRMClient(emulator.base_url + "/crm", API_KEY, tenant="shop") as client:
        with pytest.raises(NotFoundError) as caught:
            client.integration_module("asterisk")
        assert caught.value.unknown_method
        assert caught.value.error_msg == "API method not found"
        with pytest.raises(NotFoundError):
            client.customer(1)


def test_unknown_account_answers_html(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.unknown_account = True
    with pytest.raises(AccountNotFoundError) as caught:
        crm.create_customer({"firstName": "Anna"})
    assert caught.value.status == 405
    with pytest.raises(AccountNotFoundError):
        crm.credentials()


def test_success_false_on_2xx_is_unexpected(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.fail_next("/api/v5/users", 1, status=200, body="success_false")
    with pytest.raises(UnexpectedResponseError, match="200 Internal error"):
        crm.users()
    assert len(emulator.requests) == 1


# -- retries, budgets, timeouts ---------------------------------------------------------------


def test_rate_limited_html_then_success(
    emulator: Emulator, crm: RetailCRMClient, log_lines: list[str]
) -> None:
    emulator.register_module()
    emulator.fail_next(UPLOAD, 2, status=503, body="html")
    result = crm.upload_calls([make_call("1")], budget_seconds=5)
    assert result.processed == 1
    assert [r.status for r in emulator.requests] == [503, 503, 200]
    warnings = [line for line in log_lines if line.startswith("WARNING")]
    assert len(warnings) == 2
    assert f"tenant shop: POST {UPLOAD}: 503 HTML page" in warnings[0]
    assert "attempt 1 failed, retrying in" in warnings[0]
    debug = [line for line in log_lines if "(1 calls)" in line]
    assert len(debug) == 3


def test_429_and_server_errors_are_retried(emulator: Emulator, crm: RetailCRMClient) -> None:
    emulator.fail_next("/api/v5/users", 1, status=429)
    emulator.fail_next("/api/v5/users", 1, status=502, body="html")
    assert crm.users().items == ()
    assert [r.status for r in emulator.requests] == [429, 502, 200]


def test_retries_stop_when_the_budget_is_spent(emulator: Emulator) -> None:
    emulator.register_module()
    emulator.fail_next(UPLOAD, 100, status=500)
    fake = FakeTime()
    client = make_client(emulator, sleep=fake.sleep, clock=fake.clock)
    with client, pytest.raises(ServerError) as caught:
        client.upload_calls([make_call("1")], budget_seconds=1.5)
    assert caught.value.status == 500
    # A 1.5 s budget, not the 100 failures queued: every wait fits in it, the next would not.
    assert len(emulator.requests) == len(fake.sleeps) + 1 >= 3
    assert sum(fake.sleeps) < 1.5
    assert fake.sleeps == sorted(fake.sleeps)  # backing off


def test_retry_after_is_honoured(emulator: Emulator) -> None:
    emulator.fail_next("/api/v5/users", 1, status=503, retry_after=1)
    fake = FakeTime()
    with make_client(emulator, sleep=fake.sleep, clock=fake.clock) as client:
        client.users()
    assert len(emulator.requests) == 2
    (waited,) = fake.sleeps
    assert 1.0 <= waited < 1.5  # max(Retry-After, backoff); the first backoff is below 0.5 s


def test_retry_after_beyond_the_budget_gives_up(emulator: Emulator) -> None:
    emulator.fail_next("/api/v5/users", 1, status=503, retry_after=30)
    with make_client(emulator, budget_seconds=2) as client, pytest.raises(RateLimitedError):
        client.users()
    assert len(emulator.requests) == 1


def test_read_timeout_is_retried_and_dedup_makes_it_safe(emulator: Emulator) -> None:
    emulator.register_module()
    emulator.hang_next(UPLOAD, 1, seconds=2)
    with make_client(emulator, read_timeout=0.3) as client:
        result = client.upload_calls([make_call("1"), make_call("2")], budget_seconds=5)
    assert (result.processed, result.duplicates) == (0, ("1", "2"))
    assert len(emulator.calls) == 2


def test_read_timeout_exhausted(emulator: Emulator) -> None:
    emulator.hang_next("/api/v5/users", 10, seconds=2)
    client = make_client(emulator, read_timeout=0.3, budget_seconds=0.5)
    with client, pytest.raises(TransportError) as caught:
        client.users()
    assert caught.value.read_timeout and caught.value.maybe_applied
    assert caught.value.status is None
    assert "read timeout after 0.3 s" in str(caught.value)


def test_dropped_connection_after_store_is_retried(
    emulator: Emulator, crm: RetailCRMClient
) -> None:
    emulator.register_module()
    emulator.drop_after_store_next(UPLOAD, 1)
    result = crm.upload_calls([make_call("1")], budget_seconds=5)
    assert (result.processed, result.duplicates) == (0, ("1",))
    assert [r.status for r in emulator.requests] == [None, 200]


def test_creates_are_not_repeated_when_they_may_have_been_applied(
    emulator: Emulator, crm: RetailCRMClient
) -> None:
    emulator.drop_after_store_next("/api/v5/customers/create", 1)
    with pytest.raises(TransportError) as caught:
        crm.create_customer({"firstName": "Anna"})
    assert caught.value.maybe_applied and not caught.value.read_timeout
    assert len(emulator.customers) == 1
    emulator.fail_next("/api/v5/customers/create", 1, status=503)
    crm.create_customer({"firstName": "Boris"})  # a 503 was surely not applied: retried
    assert len(emulator.customers) == 2


def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RetailCRMClient(f"http://127.0.0.1:{port}", API_KEY, tenant="shop", budget_seconds=0.3)
    with client, pytest.raises(TransportError) as caught:
        client.credentials()
    assert not caught.value.maybe_applied
    assert "connection error" in caught.value.error_msg


# -- rate limiting ----------------------------------------------------------------------------


def test_default_rates_keep_the_emulator_from_limiting(emulator: Emulator) -> None:
    """The emulator limits like the CRM (10/s general); the client paces itself below that."""
    with make_client(emulator, general_rps=10) as client:
        for _ in range(15):
            client.api_versions()
    assert {r.status for r in emulator.requests} == {200}


# -- secrets ----------------------------------------------------------------------------------


def test_the_key_never_reaches_logs_errors_or_records(
    emulator: Emulator, log_lines: list[str]
) -> None:
    secret = "SECRET-retailcrm-key-42"
    emulator.add_key(secret, label="tenant-key")
    emulator.register_module(key=secret)
    emulator.fail_next(UPLOAD, 1, status=503)
    emulator.hang_next("/api/v5/users", 1, seconds=1)
    errors: list[Exception] = []
    with make_client(emulator, secret, read_timeout=0.2, budget_seconds=0.3) as client:
        client.upload_calls([make_call("1")], budget_seconds=5)  # one 503, retried
        with pytest.raises(TransportError) as timeout:
            client.users()
        with pytest.raises(ValidationError) as invalid:
            client.upload_calls([make_call("2", type="x")], budget_seconds=1)
        assert client.customer(77) is None
        assert secret not in repr(client)
        errors += [timeout.value, invalid.value]
    with make_client(emulator, secret + "-wrong") as client, pytest.raises(AuthError) as denied:
        client.credentials()
    errors.append(denied.value)
    assert log_lines and not [line for line in log_lines if secret in line]
    assert not [e for e in errors if secret in f"{e!s} {e!r} {vars(e)}"]
    records = repr(emulator.requests)
    assert secret not in records and "tenant-key" in records
