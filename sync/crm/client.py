"""RetailCRM API v5 client: the one place where the product talks HTTP to the CRM.

Encoding follows the API rules (spec §1): GET parameters in the query string with PHP brackets,
POST bodies form-encoded with every object or array parameter as one JSON-string field, the key
only in the ``X-API-KEY`` header so it never reaches an access log. Every request passes the
key's rate-limit bucket, has connect and read timeouts, and is retried on transient failures
within a time budget (see docs/crm-client.md).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from http.cookiejar import DefaultCookiePolicy
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from loguru import logger
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from sync import __version__
from sync.crm.errors import (
    NotFoundError,
    RateLimitedError,
    RetriableError,
    TransportError,
    error_from_response,
    parse_retry_after,
)
from sync.crm.ratelimit import TELEPHONY_PREFIX, limits_for
from sync.crm.types import Credentials, HistoryPage, JsonDict, ModuleEditInfo, Page, UploadResult

MAX_CALLS_PER_UPLOAD = 50
PAGE_LIMIT = 100
BACKOFF_TELEPHONY = 0.2
BACKOFF_GENERAL = 0.5
BACKOFF_CAP = 10.0
MIN_READ_TIMEOUT = 1.0


def encode_query(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested parameters into PHP bracket pairs: ``filter[ids][]=1``.

    Lists of scalars use ``[]``, lists of objects use indexes (``[0][code]``); booleans become
    ``1``/``0`` (PHP reads ``True`` as a string) and ``None`` is left out.
    """
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        _encode_value(str(name), value, pairs)
    return pairs


def _encode_value(name: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _encode_value(f"{name}[{key}]", item, pairs)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            nested = isinstance(item, Mapping | list | tuple)
            _encode_value(f"{name}[{index}]" if nested else f"{name}[]", item, pairs)
    elif isinstance(value, bool):
        pairs.append((name, "1" if value else "0"))
    else:
        pairs.append((name, str(value)))


def encode_form(fields: Mapping[str, Any]) -> dict[str, str]:
    """POST fields: objects and arrays as one JSON string each, scalars as plain values."""
    form: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Mapping | list | tuple):
            form[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif isinstance(value, bool):
            form[name] = "1" if value else "0"
        else:
            form[name] = str(value)
    return form


class _Backoff:
    """Exponential backoff with equal jitter, never shorter than the server's ``Retry-After``."""

    def __init__(self, initial: float) -> None:
        self._initial = initial

    def __call__(self, state: RetryCallState) -> float:
        ceiling = min(BACKOFF_CAP, self._initial * 2.0 ** (state.attempt_number - 1))
        backoff = ceiling / 2 + random.uniform(0, ceiling / 2)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetriableError) and error.retry_after is not None:
            return max(error.retry_after, backoff)
        return backoff


class _OutOfBudget:
    """Stop when the next wait would end past the request's deadline (``clock`` seconds)."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + state.upcoming_sleep >= self._deadline


def _always(error: BaseException) -> bool:
    return isinstance(error, RetriableError)


def _not_applied(error: BaseException) -> bool:
    """Creates are not idempotent: repeat them only when the CRM surely did not process them."""
    if isinstance(error, TransportError):
        return not error.maybe_applied
    return isinstance(error, RateLimitedError)


class RetailCRMClient:
    """One RetailCRM account seen through one API key; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        tenant: str,
        telephony_rps: float = 40,
        general_rps: float = 10,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        pool_size: int = 4,
        site: str = "",
        budget_seconds: float = 30,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``sleep`` and ``clock`` (monotonic seconds) are the retry loop's time: tests pass a
        fake pair and check the waits without spending them."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"tenant {tenant}: base URL {base_url!r} is not an http(s) URL")
        if not api_key:
            raise ValueError(f"tenant {tenant}: the API key is empty")
        # A trailing slash would double the one of every path: the CRM answers 404 (spec §1).
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.site = site
        self.budget_seconds = budget_seconds
        self._sleep = sleep
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._limits = limits_for(
            self.base_url, api_key, telephony_rps=telephony_rps, general_rps=general_rps
        )
        self._session = requests.Session()
        # pool_block: extra threads wait for a connection instead of opening throwaway ones.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {"X-API-KEY": api_key, "User-Agent": f"retailcrm-sync/{__version__}"}
        )
        # No cookies: nothing needs them, and a jar shared by threads is state we do not want.
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def __repr__(self) -> str:
        return f"RetailCRMClient(tenant={self.tenant!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RetailCRMClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- API methods -------------------------------------------------------------------------

    def credentials(self) -> Credentials:
        body = self._get("/api/credentials")
        return Credentials(
            scopes=tuple(body.get("scopes") or ()),
            site_access=str(body.get("siteAccess", "")),
            sites_available=tuple(body.get("sitesAvailable") or ()),
            raw=body,
        )

    def api_versions(self) -> list[str]:
        return [str(v) for v in self._get("/api/api-versions").get("versions") or ()]

    def integration_module(self, code: str) -> JsonDict | None:
        """The module as stored, or ``None`` when this account has no module ``code``."""
        try:
            body = self._get(f"/api/v5/integration-modules/{quote(code, safe='')}")
        except NotFoundError as error:
            if error.unknown_method:
                raise
            return None
        module: JsonDict = body["integrationModule"]
        return module

    def edit_integration_module(self, module: Mapping[str, Any]) -> ModuleEditInfo:
        """Create or replace the module: the CRM keeps exactly what is sent (spec §5.1)."""
        code = module.get("code")
        if not isinstance(code, str) or not code:
            raise ValueError("integration module needs a non-empty 'code'")
        body = self._post(
            f"/api/v5/integration-modules/{quote(code, safe='')}/edit",
            {"integrationModule": module},
        )
        info = body.get("info")
        info = info if isinstance(info, dict) else {}  # `[]` when there is nothing to report
        return ModuleEditInfo(
            not_exist_user_ids=tuple(int(i) for i in info.get("notExistUsersIds") or ()),
            not_exist_site_codes=tuple(str(c) for c in info.get("notExistSiteCodes") or ()),
            raw=info,
        )

    def upload_calls(self, calls: list[JsonDict], *, budget_seconds: float) -> UploadResult:
        """Upload 1 to 50 finished calls; safe to repeat because ``externalId`` deduplicates."""
        if not calls or len(calls) > MAX_CALLS_PER_UPLOAD:
            raise ValueError(f"a calls upload takes 1 to 50 calls, not {len(calls)}")
        if self.site:
            calls = [{"site": self.site, **call} for call in calls]
        body = self._request(
            "POST",
            "/api/v5/telephony/calls/upload",
            form={"calls": calls},
            budget=budget_seconds,
            batch_size=len(calls),
        )
        return UploadResult(
            processed=int(body.get("processedCallsCount") or 0),
            duplicates=tuple(str(i) for i in body.get("duplicateCalls") or ()),
        )

    def call_event(self, event: Mapping[str, Any], *, budget: float | None = None) -> JsonDict:
        """Live call notification; the answer lists ``notExistCodes`` / ``notExistUsers``.

        ``budget``: the pop-up's deadline. Retries (429, 503, 5xx, timeouts) stay inside it, it
        goes before other requests of the key, and it is never sent once the budget is spent
        (a pop-up seconds late is worse than none)."""
        if self.site:
            event = {"site": self.site, **event}
        form = {"event": event}
        return self._request(
            "POST", "/api/v5/telephony/call/event", form=form, budget=budget, urgent=True
        )

    def manager_by_phone(self, phone: str, details: bool = True) -> JsonDict:
        """``telephony/manager``: the responsible manager and, with details, the customer."""
        return self._get("/api/v5/telephony/manager", {"phone": phone, "details": details})

    def customers(
        self, filter: Mapping[str, Any], page: int = 1, limit: int = PAGE_LIMIT
    ) -> Page[JsonDict]:
        body = self._get("/api/v5/customers", {"filter": filter, "page": page, "limit": limit})
        return _page(body, "customers")

    def customers_by_phone(self, phone: str) -> list[JsonDict]:
        """There is no ``filter[phone]``: ``filter[name]`` matches names and numbers (spec §12)."""
        return _all_pages(lambda page: self.customers({"name": phone}, page))

    def customer(self, id: int) -> JsonDict | None:
        try:
            body = self._get(f"/api/v5/customers/{id}", {"by": "id", "site": self.site or None})
        except NotFoundError as error:
            if error.unknown_method:
                raise
            return None
        customer: JsonDict = body["customer"]
        return customer

    def create_customer(self, customer: Mapping[str, Any]) -> int:
        """Not idempotent: retried only when the CRM surely did not see the request."""
        body = self._request(
            "POST",
            "/api/v5/customers/create",
            form={"customer": customer, "site": self.site or None},
            idempotent=False,
        )
        return int(body["id"])

    def edit_customer(self, id: int, customer: Mapping[str, Any]) -> int:
        body = self._post(
            f"/api/v5/customers/{id}/edit",
            {"customer": customer, "by": "id", "site": self.site or None},
        )
        return int(body["id"])

    def customers_history(
        self, since_id: int | None, *, start_date: str | None = None
    ) -> Iterator[HistoryPage]:
        """Follow the change feed from ``since_id`` (or ``start_date`` on a first run).

        Pages by ``sinceId`` with ``page=1`` as the official modules do, until a page is
        empty or the last one (spec §7.5). Each request happens when the next page is asked for.
        """
        return self._history("/api/v5/customers/history", since_id, start_date)

    def orders_history(
        self, since_id: int | None, *, start_date: str | None = None
    ) -> Iterator[HistoryPage]:
        """``orders/history``, followed exactly like ``customers/history`` (analytics §B.2)."""
        return self._history("/api/v5/orders/history", since_id, start_date)

    def _history(
        self, path: str, since_id: int | None, start_date: str | None
    ) -> Iterator[HistoryPage]:
        while True:
            if since_id is not None:
                flt: JsonDict = {"sinceId": since_id}
            else:
                flt = {"startDate": start_date} if start_date else {}
            body = self._get(path, {"filter": flt, "page": 1, "limit": PAGE_LIMIT})
            entries = tuple(body.get("history") or ())
            if not entries:
                return
            since_id = max(int(entry["id"]) for entry in entries)
            yield HistoryPage(entries=entries, last_id=since_id)
            if _page(body, "history").is_last:
                return

    def orders(
        self, filter: Mapping[str, Any], page: int = 1, limit: int = PAGE_LIMIT
    ) -> Page[JsonDict]:
        body = self._get("/api/v5/orders", {"filter": filter, "page": page, "limit": limit})
        return _page(body, "orders")

    def status_groups(self) -> dict[str, str]:
        """Order status code -> its group code (``cancel`` marks cancelled orders)."""
        statuses = self._get("/api/v5/reference/statuses").get("statuses") or {}
        items = statuses if isinstance(statuses, list) else list(statuses.values())
        return {str(s["code"]): str(s.get("group") or "") for s in items}

    def orders_by_customer(self, customer_id: int) -> list[JsonDict]:
        def orders(page: int) -> Page[JsonDict]:
            flt = {"customerId": customer_id}
            body = self._get("/api/v5/orders", {"filter": flt, "page": page, "limit": PAGE_LIMIT})
            return _page(body, "orders")

        return _all_pages(orders)

    def create_order(self, order: Mapping[str, Any]) -> int:
        """Not idempotent, like ``create_customer``."""
        body = self._request(
            "POST",
            "/api/v5/orders/create",
            form={"order": order, "site": self.site or None},
            idempotent=False,
        )
        return int(body["id"])

    def users(self, page: int = 1, limit: int = PAGE_LIMIT) -> Page[JsonDict]:
        return _page(self._get("/api/v5/users", {"page": page, "limit": limit}), "users")

    def all_users(self) -> list[JsonDict]:
        return _all_pages(self.users)

    def sites(self) -> dict[str, JsonDict]:
        """Shops keyed by code; the CRM sends an object (an empty one is PHP's ``[]``)."""
        sites = self._get("/api/v5/reference/sites").get("sites") or {}
        if isinstance(sites, list):
            return {str(site["code"]): site for site in sites}
        return {str(code): site for code, site in sites.items()}

    # -- transport ---------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> JsonDict:
        return self._request("GET", path, params=params)

    def _post(self, path: str, form: Mapping[str, Any]) -> JsonDict:
        return self._request("POST", path, form=form)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        budget: float | None = None,
        idempotent: bool = True,
        batch_size: int | None = None,
        urgent: bool = False,
    ) -> JsonDict:
        budget = self.budget_seconds if budget is None else budget
        deadline = self._clock() + budget
        telephony = path.startswith(TELEPHONY_PREFIX)
        retrying = Retrying(
            sleep=self._sleep,
            retry=retry_if_exception(_always if idempotent else _not_applied),
            stop=_OutOfBudget(deadline, self._clock),
            wait=_Backoff(BACKOFF_TELEPHONY if telephony else BACKOFF_GENERAL),
            before_sleep=self._log_retry,
            reraise=True,
        )
        query = encode_query(params) if params else None
        data = encode_form(form) if form is not None else None
        result: JsonDict = retrying(
            self._attempt, method, path, query, data, deadline, batch_size, urgent
        )
        return result

    def _attempt(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None,
        data: dict[str, str] | None,
        deadline: float,
        batch_size: int | None,
        urgent: bool = False,
    ) -> JsonDict:
        self._limits.bucket_for(path).acquire(urgent=urgent)
        if urgent and time.monotonic() >= deadline:
            raise TransportError(
                read_timeout=False,
                maybe_applied=False,
                error_msg="deadline passed while waiting for the rate limit; not sent",
                tenant=self.tenant,
                method=method,
                path=path,
            )
        # The budget bounds the whole call, so one slow attempt may not outlive it by much.
        read_timeout = min(self._read_timeout, max(deadline - self._clock(), MIN_READ_TIMEOUT))
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=query,
                data=data,
                timeout=(self._connect_timeout, read_timeout),
            )
        except requests.RequestException as exc:
            raise self._transport_error(method, path, exc, read_timeout) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug(
            "tenant {}: {} {} -> {} in {:.0f} ms{}",
            self.tenant,
            method,
            path,
            response.status_code,
            elapsed_ms,
            f" ({batch_size} calls)" if batch_size is not None else "",
        )
        if 200 <= response.status_code <= 299:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("success") is True:
                return body
        raise error_from_response(
            tenant=self.tenant,
            method=method,
            path=path,
            status=response.status_code,
            body=response.text,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, read_timeout: float
    ) -> TransportError:
        where = {"tenant": self.tenant, "method": method, "path": path}
        if isinstance(exc, requests.ConnectTimeout):
            message = f"connect timeout after {self._connect_timeout:g} s"
            return TransportError(
                read_timeout=False, maybe_applied=False, error_msg=message, **where
            )
        if isinstance(exc, requests.ReadTimeout):
            message = f"read timeout after {read_timeout:g} s"
            return TransportError(read_timeout=True, maybe_applied=True, error_msg=message, **where)
        causes = _causes(exc)
        # Refused or unreachable: the request never left; anything else may have been applied.
        not_sent = any(isinstance(c, NewConnectionError | ConnectTimeoutError) for c in causes)
        message = f"connection error ({type(causes[-1]).__name__})"
        return TransportError(
            read_timeout=False, maybe_applied=not not_sent, error_msg=message, **where
        )

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        # The error's text already names the tenant, the endpoint and the status or fault.
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "{}; attempt {} failed, retrying in {:.2f} s", error, state.attempt_number, wait
        )


def _all_pages(fetch: Callable[[int], Page[JsonDict]]) -> list[JsonDict]:
    result: list[JsonDict] = []
    page_no = 1
    while True:
        page = fetch(page_no)
        result.extend(page.items)
        if page.is_last:
            return result
        page_no += 1


def _causes(exc: BaseException) -> list[BaseException]:
    """The exceptions requests and urllib3 wrapped, outermost first (``reason`` or in ``args``)."""
    chain = [exc]
    while len(chain) < 10:
        current = chain[-1]
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        chain.append(inner)
    return chain


def _page(body: JsonDict, key: str) -> Page[JsonDict]:
    items = tuple(body.get(key) or ())
    pagination = body.get("pagination") or {}
    return Page(
        items=items,
        current_page=int(pagination.get("currentPage", 1)),
        total_pages=int(pagination.get("totalPageCount", 1)),
        total_count=int(pagination.get("totalCount", len(items))),
        limit=int(pagination.get("limit", len(items))),
    )
