"""``POST telephony/call/event`` from the event loop itself, on keep-alive connections.

Why not ``RetailCRMClient`` (requests + tenacity in a worker thread): it costs ~1 ms of CPU per
request, and threads wait for the GIL behind the loop that reads AMI; 100 phones ringing at once
wait for exactly that (bench ``popups``). A request here is a few lines of HTTP/1.1 written and
read with asyncio streams. What matters is kept: the key's process-wide rate-limit bucket
(shared with every other client of the key, urgent slots first), the same form encoding and
error classes (``error_from_response``), retries of 429/503/5xx/timeouts only inside the
deadline, nothing sent once the deadline has passed. The key is a header, never logged.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from sync import __version__
from sync.config import TenantSettings
from sync.crm.client import encode_form
from sync.crm.errors import RetriableError, TransportError, error_from_response, parse_retry_after
from sync.crm.ratelimit import limits_for

PATH = "/api/v5/telephony/call/event"
BACKOFF_FIRST = 0.05
MAX_HEADER_LINES = 100
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class EventPoster:
    """One tenant's ``call/event`` sender; idle connections are reused (keep-alive)."""

    def __init__(
        self,
        tenant: TenantSettings,
        *,
        connect_timeout: float,
        read_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        base = tenant.url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"tenant {tenant.name}: base URL {tenant.url!r} is not http(s)")
        self.tenant = tenant.name
        self.site = tenant.site
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host = parts.hostname
        self._port = parts.port or (443 if self._ssl else 80)
        host_header = parts.netloc.rpartition("@")[2]
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._clock = clock
        self._sleep = sleep
        api_key = tenant.api_key.reveal()
        self._head = (
            f"POST {quote(parts.path)}{PATH} HTTP/1.1\r\nHost: {host_header}\r\n"
            f"X-API-KEY: {api_key}\r\nUser-Agent: retailcrm-sync/{__version__}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        ).encode()
        self._bucket = limits_for(
            base, api_key, telephony_rps=tenant.rate_limit, general_rps=10
        ).telephony
        self._idle: list[Connection] = []

    async def post(self, event: Mapping[str, Any], budget: float) -> dict[str, Any]:
        """The CRM's answer; ``RetriableError`` once the budget is spent, ``FatalError`` at
        once for any other refusal."""
        if self.site:
            event = {"site": self.site, **event}
        body = urlencode(encode_form({"event": event})).encode()
        deadline = self._clock() + budget
        attempt = 0
        while True:
            wait = self._bucket.reserve(urgent=True)
            # A pop-up is worthless late: no waiting for a slot that comes after its deadline.
            late = self._clock() + max(wait, 0.0) >= deadline
            try:
                if wait > 0 and not late:
                    await self._sleep(wait)
            finally:
                self._bucket.release_urgent()
            left = deadline - self._clock()
            if late or left <= 0:
                raise self._transport("deadline passed waiting for the rate limit; not sent")
            try:
                return await self._exchange(body, min(self._read_timeout, left))
            except RetriableError as error:
                pause = error.retry_after or BACKOFF_FIRST * 2**attempt * random.uniform(0.5, 1)
                if self._clock() + pause >= deadline:
                    raise
                await self._sleep(pause)
                attempt += 1

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def _exchange(self, body: bytes, timeout: float) -> dict[str, Any]:
        """One request; a reused connection the server had closed is retried once at once."""
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            try:
                return await self._request(reader, writer, body, timeout)
            except _Stale:
                continue
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, ssl=self._ssl),
                min(self._connect_timeout, timeout),
            )
        except (OSError, TimeoutError) as exc:
            raise self._transport(f"cannot connect ({_reason(exc)})") from None
        try:
            return await self._request(reader, writer, body, timeout)
        except _Stale:
            raise self._transport("connection closed by the CRM") from None

    async def _request(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytes,
        timeout: float,
    ) -> dict[str, Any]:
        try:
            writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status, headers, text = await asyncio.wait_for(_response(reader), timeout)
        except _Stale:
            writer.close()
            raise
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise self._transport(f"connection error ({_reason(exc)})") from None
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        if 200 <= status <= 299:
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
            status=status,
            body=text,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )

    def _transport(self, message: str) -> TransportError:
        return TransportError(
            read_timeout=False,
            maybe_applied=False,
            error_msg=message,
            tenant=self.tenant,
            method="POST",
            path=PATH,
        )


class _Stale(Exception):
    """The connection closed before a single byte of the answer: nothing was processed."""


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], str]:
    line = await reader.readline()
    if not line:
        raise _Stale
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("not an HTTP answer")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        data = b"".join(chunks)
    elif "content-length" in headers:
        data = await reader.readexactly(int(headers["content-length"]))
    else:
        data = await reader.read()
        headers["connection"] = "close"
    return status, headers, data.decode("utf-8", errors="replace")


def _reason(exc: BaseException) -> str:
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
