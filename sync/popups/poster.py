"""``POST telephony/call/event`` on a keep-alive ``http.client`` connection per sender thread.

Why not ``RetailCRMClient`` (requests + tenacity): it costs ~1 ms of CPU per request in our
process, and ``serve``'s CPU is what 100 phones ringing at once wait for (bench ``popups``);
this costs ~0.1 ms. What matters is kept: the key's process-wide rate-limit bucket (shared with
every other client of the key, with urgent slots), the same form encoding and error classes
(``error_from_response``), retries of 429/503/5xx/timeouts only inside the deadline, and
nothing is sent once the deadline has passed. The key is sent as a header and never logged.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from sync import __version__
from sync.config import TenantSettings
from sync.crm.client import encode_form
from sync.crm.errors import RetriableError, TransportError, error_from_response, parse_retry_after
from sync.crm.ratelimit import limits_for

PATH = "/api/v5/telephony/call/event"
BACKOFF_FIRST = 0.05
MIN_TIMEOUT = 0.05


class EventPoster:
    """Thread-safe: each thread keeps its own connection."""

    def __init__(
        self,
        tenant: TenantSettings,
        *,
        connect_timeout: float,
        read_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base = tenant.url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"tenant {tenant.name}: base URL {tenant.url!r} is not http(s)")
        self.tenant = tenant.name
        self.site = tenant.site
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path + PATH
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._clock = clock
        self._sleep = sleep
        api_key = tenant.api_key.reveal()
        self._headers = {
            "X-API-KEY": api_key,
            "User-Agent": f"retailcrm-sync/{__version__}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self._bucket = limits_for(
            base, api_key, telephony_rps=tenant.rate_limit, general_rps=10
        ).telephony
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, event: Mapping[str, Any], budget: float) -> dict[str, Any]:
        """The CRM's answer; ``RetriableError`` once the budget is spent, ``FatalError`` at
        once for any other refusal."""
        if self.site:
            event = {"site": self.site, **event}
        body = urlencode(encode_form({"event": event}))
        deadline = self._clock() + budget
        attempt = 0
        while True:
            self._bucket.acquire(urgent=True)
            left = deadline - self._clock()
            if left <= 0:
                raise self._transport("deadline passed waiting for the rate limit; not sent")
            try:
                return self._once(body, max(min(self._read_timeout, left), MIN_TIMEOUT))
            except RetriableError as error:
                wait = error.retry_after or BACKOFF_FIRST * 2**attempt * random.uniform(0.5, 1)
                if self._clock() + wait >= deadline:
                    raise
                self._sleep(wait)
                attempt += 1

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=self._connect_timeout)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _once(self, body: str, timeout: float) -> dict[str, Any]:
        conn = self._connection()
        try:
            if conn.sock is None:
                conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(timeout)
            conn.request("POST", self._path, body, self._headers)
            answer = conn.getresponse()
            text = answer.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise self._transport(f"connection error ({reason})") from None
        if answer.will_close:
            self._drop(conn)
        if 200 <= answer.status <= 299:
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("success") is True:
                return data
        raise error_from_response(
            tenant=self.tenant,
            method="POST",
            path=PATH,
            status=answer.status,
            body=text,
            retry_after=parse_retry_after(answer.getheader("Retry-After")),
        )

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            if conn in self._opened:
                self._opened.remove(conn)

    def _transport(self, message: str) -> TransportError:
        return TransportError(
            read_timeout=False,
            maybe_applied=False,
            error_msg=message,
            tenant=self.tenant,
            method="POST",
            path=PATH,
        )
