"""Error classes of the RetailCRM client, and the mapping from an HTTP answer to one of them.

The sync decides what to do by class alone: ``RetriableError`` is retried with backoff (and a
batch that still fails stays ``failed`` for a later cycle), ``ValidationError`` bisects a call
batch, every other ``FatalError`` stops the tenant or fails the item. The class is chosen by
HTTP status, never by a body that has to parse: a 503 from a proxy is an HTML page (spec §4).
Messages name the tenant and the endpoint; the API key is never part of any of them.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

ACCOUNT_NOT_FOUND_MSG = "Account does not exist."
METHOD_NOT_FOUND_MSG = "API method not found"


class CRMError(Exception):
    """A request to RetailCRM failed; ``errors`` holds the CRM's details as display strings."""

    def __init__(
        self,
        *,
        tenant: str,
        method: str,
        path: str,
        status: int | None,
        error_msg: str,
        errors: object = None,
    ) -> None:
        self.tenant = tenant
        self.method = method
        self.path = path
        self.status = status
        self.error_msg = error_msg
        self.raw_errors = errors
        """``errors`` as the CRM sent it: a field map, a list of strings, or ``None``."""
        self.errors = normalise_errors(errors)
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"tenant {self.tenant}: {self.method} {self.path}: "
        head += f"{self.status} {self.error_msg}" if self.status is not None else self.error_msg
        return f"{head} ({'; '.join(self.errors)})" if self.errors else head


class RetriableError(CRMError):
    """A transient failure: the same request may succeed later."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        """Seconds from a ``Retry-After`` header, when the server sent one."""
        super().__init__(**kwargs)


class RateLimitedError(RetriableError):
    """503 or 429: over the rate limit; the request was not processed."""


class ServerError(RetriableError):
    """Any other 5xx; the request may or may not have been applied."""


class TransportError(RetriableError):
    """No HTTP answer: connection refused or dropped, or a timeout."""

    def __init__(self, *, read_timeout: bool, maybe_applied: bool, **kwargs: Any) -> None:
        self.read_timeout = read_timeout
        self.maybe_applied = maybe_applied
        """False only when the request never reached the server (connect failure)."""
        super().__init__(status=None, **kwargs)


class FatalError(CRMError):
    """Repeating the same request cannot succeed."""


class ValidationError(FatalError):
    """400: the CRM rejected the parameters or the entity (``errors`` names the fields)."""


class AuthError(FatalError):
    """403 (or 401): wrong API key, a scope the key lacks, or a shop it may not use."""


class NotFoundError(FatalError):
    """404: the entity does not exist, or the method path is unknown (a configuration error)."""

    @property
    def unknown_method(self) -> bool:
        return self.error_msg == METHOD_NOT_FOUND_MSG


class AccountNotFoundError(FatalError):
    """405 or an HTML error page: the account (subdomain) does not exist."""


class UnexpectedResponseError(FatalError):
    """A 2xx answer without ``success: true`` or without a JSON body."""


def normalise_errors(errors: object) -> list[str]:
    """``{"field": "msg"}`` or ``["msg"]`` as display strings; anything else as nothing."""
    if isinstance(errors, dict):
        return [f"{field}: {message}" for field, message in errors.items()]
    if isinstance(errors, list):
        return [str(message) for message in errors]
    return []


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header; the HTTP-date form is ignored (never seen here)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(
    *,
    tenant: str,
    method: str,
    path: str,
    status: int,
    body: str,
    retry_after: float | None = None,
) -> CRMError:
    """The error for an HTTP answer that is not a 2xx with ``success: true``."""
    html = body.lstrip().startswith("<")
    data = None if html else _json_object(body)
    error_msg = data.get("errorMsg") if data is not None else None
    if not isinstance(error_msg, str) or not error_msg:
        error_msg = _fallback_message(status, html, data is not None)
    where: dict[str, Any] = {"tenant": tenant, "method": method, "path": path, "status": status}
    details: dict[str, Any] = {"error_msg": error_msg, "errors": (data or {}).get("errors")}
    retriable = _retriable_class(status)
    if retriable is not None:
        return retriable(retry_after=retry_after, **where, **details)
    return _fatal_class(status, html, error_msg)(**where, **details)


def _retriable_class(status: int) -> type[RetriableError] | None:
    if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        return RateLimitedError
    if 500 <= status <= 599:
        return ServerError
    return None


def _fatal_class(status: int, html: bool, error_msg: str) -> type[FatalError]:
    if 200 <= status <= 299:
        return UnexpectedResponseError
    if status == HTTPStatus.METHOD_NOT_ALLOWED or html or error_msg == ACCOUNT_NOT_FOUND_MSG:
        return AccountNotFoundError
    by_status: dict[int, type[FatalError]] = {
        HTTPStatus.BAD_REQUEST: ValidationError,
        HTTPStatus.UNAUTHORIZED: AuthError,
        HTTPStatus.FORBIDDEN: AuthError,
        HTTPStatus.NOT_FOUND: NotFoundError,
    }
    return by_status.get(status, FatalError)


def _json_object(body: str) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _fallback_message(status: int, html: bool, parsed: bool) -> str:
    if html:
        return "HTML page instead of a JSON answer"
    if 200 <= status <= 299:
        return "answer without success: true" if parsed else "answer is not JSON"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unexpected HTTP status"
