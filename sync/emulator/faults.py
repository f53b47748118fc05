"""Test controls of the emulator: latency, injected failures, hangs, drops and rate limits.

Rules are consumed per matching request (path prefix), under their own lock, so tests can arm
them while client threads are running.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from sync.crm.ratelimit import TELEPHONY_PREFIX, TokenBucket

BodyKind = Literal["json", "html", "errors_list", "success_false"]
_ERROR_MESSAGES = {
    400: "Errors in the entity format",
    403: "Access denied.",
    404: "Not found",
    429: "Rate limit exceeded",
    503: "Rate limit exceeded",
}


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer sends; ``drop`` closes the connection without any answer."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


@dataclass
class _Rule:
    prefix: str
    remaining: int
    status: int = 503
    body: BodyKind = "json"
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Injected:
    """The faults taken for one request."""

    fail: Answer | None = None
    hang_seconds: float = 0.0
    drop: bool = False


def json_answer(status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(body, ensure_ascii=False).encode(), headers=headers)


def html_answer(status: int) -> Answer:
    title = f"{status} {_phrase(status)}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Answer(status, page.encode(), "text/html")


def failure_answer(status: int, kind: BodyKind, retry_after: float | None = None) -> Answer:
    headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
    if kind == "html":
        page = html_answer(status)
        return Answer(status, page.body, page.content_type, headers)
    message = _ERROR_MESSAGES.get(status, _phrase(status))
    body: dict[str, object] = {"success": False, "errorMsg": message}
    if kind == "errors_list":
        body["errors"] = [f"Injected failure {status}", "Second message"]
    elif kind == "success_false":
        body["errorMsg"] = "Internal error"
    return json_answer(status, body, headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Faults:
    """Fault injection and the server-side rate limit; mixed into ``Emulator``."""

    def __init__(self) -> None:
        self._faults_lock = threading.Lock()
        self._fail_rules: list[_Rule] = []
        self._hang_rules: list[_Rule] = []
        self._drop_rules: list[_Rule] = []
        self._latency = 0.0
        self.unknown_account = False
        """Answer like a subdomain without an account: POST 405 and GET 404, HTML pages."""
        self._rates: dict[str, float | None] = {"telephony": 40.0, "general": 10.0}
        self._rate_status = 503
        self._rate_body: BodyKind = "html"
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    @property
    def latency(self) -> float:
        """Seconds added before every answer."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = max(0.0, seconds)

    def fail_next(
        self,
        path_prefix: str,
        n: int = 1,
        status: int = 503,
        body: BodyKind = "json",
        *,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``n`` requests under ``path_prefix`` with ``status``, unprocessed."""
        with self._faults_lock:
            self._fail_rules.append(_Rule(path_prefix, n, status, body, retry_after))

    def clear_faults(self) -> None:
        """Forget every pending fail/hang/drop rule: the account is healthy again."""
        with self._faults_lock:
            self._fail_rules.clear()
            self._hang_rules.clear()
            self._drop_rules.clear()

    def hang_next(self, path_prefix: str, n: int = 1, seconds: float = 5.0) -> None:
        """Process the next ``n`` requests, then wait ``seconds`` before answering."""
        with self._faults_lock:
            self._hang_rules.append(_Rule(path_prefix, n, seconds=seconds))

    def drop_after_store_next(self, path_prefix: str, n: int = 1) -> None:
        """Process the next ``n`` requests, then close the connection without an answer."""
        with self._faults_lock:
            self._drop_rules.append(_Rule(path_prefix, n))

    def rate_limits(
        self,
        telephony_rps: float | None = 40,
        general_rps: float | None = 10,
        status: int = 503,
        body: BodyKind = "html",
    ) -> None:
        """Per key and bucket, like the CRM (``None`` disables a bucket); no ``Retry-After``."""
        with self._faults_lock:
            self._rates = {"telephony": telephony_rps, "general": general_rps}
            self._rate_status = status
            self._rate_body = body
            self._buckets.clear()

    def take_faults(self, path: str) -> Injected:
        with self._faults_lock:
            fail = _take(self._fail_rules, path)
            hang = _take(self._hang_rules, path)
            drop = _take(self._drop_rules, path)
        return Injected(
            fail=failure_answer(fail.status, fail.body, fail.retry_after) if fail else None,
            hang_seconds=hang.seconds if hang else 0.0,
            drop=drop is not None,
        )

    def rate_limited(self, key_label: str, path: str) -> Answer | None:
        """The over-limit answer when this key's bucket for ``path`` is empty, else ``None``."""
        bucket_name = "telephony" if path.startswith(TELEPHONY_PREFIX) else "general"
        with self._faults_lock:
            rate = self._rates[bucket_name]
            if rate is None:
                return None
            bucket = self._buckets.get((key_label, bucket_name))
            if bucket is None:
                # One second's worth of burst: a client pacing itself at the limit never trips.
                bucket = self._buckets[(key_label, bucket_name)] = TokenBucket(rate, max(rate, 1))
            status, body = self._rate_status, self._rate_body
        return None if bucket.try_acquire() else failure_answer(status, body)


def _take(rules: list[_Rule], path: str) -> _Rule | None:
    for rule in rules:
        if path.startswith(rule.prefix):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return None
