"""The client's pure pieces: error classification, request encoding, token buckets."""

from __future__ import annotations

import json

import pytest

from sync.crm import (
    AccountNotFoundError,
    AuthError,
    CRMError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
    encode_form,
    encode_query,
)
from sync.crm.errors import error_from_response, normalise_errors, parse_retry_after
from sync.crm.ratelimit import TokenBucket, limits_for

HTML = "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"


def classify(status: int, body: str = "", retry_after: float | None = None) -> CRMError:
    return error_from_response(
        tenant="shop",
        method="POST",
        path="/api/v5/telephony/calls/upload",
        status=status,
        body=body,
        retry_after=retry_after,
    )


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (503, HTML, RateLimitedError),
        (503, "", RateLimitedError),
        (429, '{"success": false, "errorMsg": "Rate limit exceeded"}', RateLimitedError),
        (500, "oops", ServerError),
        (502, HTML, ServerError),
        (400, '{"success": false, "errorMsg": "Errors in the entity format"}', ValidationError),
        (400, "not json", ValidationError),
        (403, '{"success": false, "errorMsg": "Wrong \\"apiKey\\" value."}', AuthError),
        (401, "", AuthError),
        (404, '{"success": false, "errorMsg": "Not found"}', NotFoundError),
        (405, "", AccountNotFoundError),
        (404, "  <!DOCTYPE html><html></html>", AccountNotFoundError),
        (402, '{"success": false, "errorMsg": "Account does not exist."}', AccountNotFoundError),
        (460, '{"success": false}', FatalError),
        (200, '{"success": false, "errorMsg": "Internal error"}', UnexpectedResponseError),
        (201, "<html></html>", UnexpectedResponseError),
        (200, "", UnexpectedResponseError),
    ],
)
def test_class_is_chosen_by_status(status: int, body: str, cls: type[CRMError]) -> None:
    error = classify(status, body)
    assert type(error) is cls
    assert error.status == status


def test_retriable_and_fatal_families() -> None:
    assert isinstance(classify(503), RetriableError)
    assert isinstance(classify(400), FatalError)
    assert not isinstance(classify(500), FatalError)


def test_message_names_tenant_endpoint_status_and_errors() -> None:
    body = json.dumps(
        {
            "success": False,
            "errorMsg": "Errors in the entity format",
            "errors": {"calls[3].result": "The value you selected is not a valid choice."},
        }
    )
    error = classify(400, body)
    assert str(error) == (
        "tenant shop: POST /api/v5/telephony/calls/upload: 400 Errors in the entity format "
        "(calls[3].result: The value you selected is not a valid choice.)"
    )
    assert error.raw_errors == {"calls[3].result": "The value you selected is not a valid choice."}


def test_errors_as_list_and_html_fallback_message() -> None:
    error = classify(400, '{"success": false, "errorMsg": "Bad", "errors": ["one", "two"]}')
    assert error.errors == ["one", "two"]
    assert str(error).endswith("400 Bad (one; two)")
    assert classify(503, HTML).error_msg == "HTML page instead of a JSON answer"
    assert classify(500, "").error_msg == "Internal Server Error"


def test_normalise_errors() -> None:
    assert normalise_errors({"a": "x", "b": 1}) == ["a: x", "b: 1"]
    assert normalise_errors(["x", 2]) == ["x", "2"]
    assert normalise_errors(None) == []
    assert normalise_errors("text") == []


def test_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after(None) is None
    error = classify(503, "", retry_after=1.5)
    assert isinstance(error, RetriableError)
    assert error.retry_after == 1.5


def test_encode_query_uses_php_brackets() -> None:
    params = {
        "filter": {
            "name": "+375 29",
            "ids": [1, 2],
            "sites": ("shop",),
            "customFields": {"vip": {"min": 3}},
            "online": True,
            "email": None,
        },
        "items": [{"code": "a"}],
        "details": False,
        "page": 2,
    }
    assert encode_query(params) == [
        ("filter[name]", "+375 29"),
        ("filter[ids][]", "1"),
        ("filter[ids][]", "2"),
        ("filter[sites][]", "shop"),
        ("filter[customFields][vip][min]", "3"),
        ("filter[online]", "1"),
        ("items[0][code]", "a"),
        ("details", "0"),
        ("page", "2"),
    ]


def test_encode_form_puts_objects_in_one_json_field() -> None:
    form = encode_form({"customer": {"firstName": "Аня", "phones": [{"number": "1"}]}, "site": "s"})
    assert form == {
        "customer": '{"firstName":"Аня","phones":[{"number":"1"}]}',
        "site": "s",
    }
    assert encode_form({"calls": [{"a": 1}], "by": "id", "x": None, "f": True}) == {
        "calls": '[{"a":1}]',
        "by": "id",
        "f": "1",
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_paces_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(12):
        bucket.acquire()
    assert clock.slept == pytest.approx([0.1] * 10)
    assert clock.now == pytest.approx(101.0)


def test_token_bucket_reserves_slots_in_order() -> None:
    """Callers that arrive together get consecutive slots (threads sleep outside the lock)."""
    clock = FakeClock()
    bucket = TokenBucket(4, burst=1, clock=clock, sleep=lambda s: clock.slept.append(s))
    for _ in range(4):
        bucket.acquire()
    assert clock.slept == pytest.approx([0.25, 0.5, 0.75])


def test_try_acquire_never_waits() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, burst=2, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert bucket.try_acquire()
    assert clock.slept == []


def test_key_limits_are_shared_per_key_and_the_lowest_rate_wins() -> None:
    first = limits_for("https://a.example", "key-1", telephony_rps=40, general_rps=10)
    again = limits_for("https://a.example", "key-1", telephony_rps=20, general_rps=10)
    other = limits_for("https://a.example", "key-2", telephony_rps=40, general_rps=10)
    assert again is first
    assert other is not first
    assert first.telephony.rate == 20
    assert first.bucket_for("/api/v5/telephony/calls/upload") is first.telephony
    assert first.bucket_for("/api/v5/customers") is first.general
    assert first.bucket_for("/api/credentials") is first.general
