"""The emulator over real HTTP: ``Emulator`` (in-process, for tests and the demo) and
``run_standalone`` (the ``retailcrm-sync emulator`` command).

Each request goes through the same steps as on the real service: injected faults and latency,
the account switch, decoding, exact routing (404), the key (403), the key's rate-limit bucket
(503), the method's scope (403), then the method itself. Every request is recorded with the
label of the key it used, never the key.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qsl

from loguru import logger

from sync.emulator.api import ACCESS_DENIED, METHOD_NOT_FOUND, ApiError, ApiRequest, find_route
from sync.emulator.callbacks import Callbacks
from sync.emulator.faults import Answer, Faults, html_answer, json_answer
from sync.emulator.forms import decode_json_fields, form_pairs, nest
from sync.emulator.state import CrmState, JsonDict

DEFAULT_KEY_LABEL = "default"
ADMIN_PATHS = ("/_emulator/click", "/_emulator/activity")
"""The emulator's own controls over HTTP (a person trying ``serve`` by hand), not the API."""
MAX_RECORDED = 100_000


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it; ``fields`` are the raw pairs minus ``apiKey``."""

    method: str
    path: str
    params: JsonDict
    """Decoded: brackets nested, JSON form fields parsed."""
    key_label: str | None
    """Label of the configured key used; ``None`` when missing or unknown."""
    status: int | None
    """``None`` when the connection was dropped without an answer."""
    at: float
    """``time.monotonic()`` at arrival."""
    fields: tuple[tuple[str, str], ...] = ()
    key_via: str | None = None
    """``header`` (``X-API-KEY``), ``param`` (``apiKey``) or ``None``."""


class Emulator(CrmState, Faults, Callbacks):
    """A RetailCRM account served on 127.0.0.1, controlled and inspected from Python.

    ``Emulator(api_key="test-key")`` starts with that key (label ``default``, every scope,
    full shop access) and one shop ``shop``; ``api_key=None`` starts with no key.
    """

    def __init__(self, api_key: str | None = "test-key") -> None:
        CrmState.__init__(self)
        Faults.__init__(self)
        self.base_url = ""
        # Bounded, so a standalone emulator left running does not grow without end.
        self._recorded: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._recorded_lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0
        """Most requests ever handled at once: tests see parallel service without a stopwatch."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.add_site("shop", "Shop")
        if api_key:
            self.add_key(api_key, label=DEFAULT_KEY_LABEL)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve in a daemon thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        server = _Server((host, port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        bound_host, bound_port = server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        return self.base_url

    def stop(self) -> None:
        """Stop serving and cut open connections; hanging answers end at once."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- introspection -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._recorded_lock:
            return list(self._recorded)

    def clear_requests(self) -> None:
        with self._recorded_lock:
            self._recorded.clear()

    # -- the request pipeline ----------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one HTTP request; ``headers`` keys are lower-case."""
        arrived = time.monotonic()
        with self._recorded_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            return self._handle(method, target, headers, body, arrived)
        finally:
            with self._recorded_lock:
                self._in_flight -= 1

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, arrived: float
    ) -> Answer:
        path, _, query = target.partition("?")  # not urlsplit: "//api/x" is a path here
        injected = self.take_faults(path)
        self._pause(self.latency)
        params: JsonDict = {}
        pairs: list[tuple[str, str]] = []
        label: str | None = None
        via: str | None = None
        if injected.fail is not None:
            answer = injected.fail
        elif self.unknown_account:
            answer = html_answer(405 if method == "POST" else 404)
        else:
            try:
                pairs = parse_qsl(query, keep_blank_values=True)
                if method == "POST":
                    pairs += form_pairs(headers.get("content-type", ""), body)
            except ValueError:
                answer = _error(400, "Errors in the input parameters")
            else:
                key, via = _api_key(headers, pairs)
                pairs = [(n, v) for n, v in pairs if n != "apiKey"]
                params = nest(pairs)
                answer, label = self._dispatch(method, path, params, key)
            if injected.hang_seconds:
                self._pause(injected.hang_seconds)
        status = None if injected.drop else answer.status
        self._record_request(
            RecordedRequest(method, path, params, label, status, arrived, tuple(pairs), via)
        )
        logger.debug("emulator: {} {} -> {} (key {})", method, path, status, label)
        return replace(answer, drop=True) if injected.drop else answer

    def _dispatch(
        self, method: str, path: str, params: JsonDict, key: str | None
    ) -> tuple[Answer, str | None]:
        if path in ADMIN_PATHS and method == "POST":
            return self._admin(path, params, key)
        found = find_route(method, path)
        if found is None:
            return _error(404, METHOD_NOT_FOUND), None
        route, groups = found
        if not key:
            return _error(403, '"apiKey" is missing.'), None
        config = self.key_config(key)
        if config is None:
            return _error(403, 'Wrong "apiKey" value.'), None
        limited = self.rate_limited(config.label, path)
        if limited is not None:
            return limited, config.label
        if route.scope is not None and route.scope not in config.scopes:
            return _error(403, ACCESS_DENIED), config.label
        invalid = decode_json_fields(params)
        request = ApiRequest(method, path, params, config, self.base_url, groups, invalid)
        with self.lock:
            try:
                status, body = route.handler(self, request)
            except ApiError as error:
                return json_answer(error.status, error.body()), config.label
        return json_answer(status, body), config.label

    def _admin(self, path: str, params: JsonDict, key: str | None) -> tuple[Answer, str | None]:
        """Not RetailCRM's API: lets a person at the standalone emulator act as a CRM user
        (``curl -X POST 'http://127.0.0.1:PORT/_emulator/click?apiKey=K&code=101&phone=...'``)."""
        config = self.key_config(key) if key else None
        if config is None:
            return _error(403, 'Wrong "apiKey" value.'), None
        text = {k: str(v) for k, v in params.items()}
        try:
            if path == "/_emulator/click":
                user = text.get("userId")
                answer = self.click(text.get("code", ""), text.get("phone", ""),
                                    int(user) if user and user.isdigit() else None)  # fmt: skip
            else:
                answer = self.set_activity(
                    text.get("active", "true") == "true", text.get("freeze", "false") == "true"
                )
        except LookupError as exc:
            return _error(404, str(exc)), config.label
        body = {"success": True, "status": answer.status, "answer": answer.body}
        return json_answer(200, body), config.label

    def _record_request(self, request: RecordedRequest) -> None:
        with self._recorded_lock:
            self._recorded.append(request)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def _error(status: int, error_msg: str) -> Answer:
    return json_answer(status, ApiError(status, error_msg).body())


def _api_key(
    headers: Mapping[str, str], pairs: list[tuple[str, str]]
) -> tuple[str | None, str | None]:
    if headers.get("x-api-key"):
        return headers["x-api-key"], "header"
    from_params = [v for n, v in pairs if n == "apiKey"]
    return (from_params[-1], "param") if from_params else (None, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) resets the connection: expected, not worth a traceback.
        logger.opt(exception=True).debug("emulator: connection error from {}", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    timeout = 60  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        # self.path has leading slashes collapsed; the CRM answers "//api/..." with a 404.
        words = self.requestline.split()
        target = words[1] if len(words) == 3 else self.path
        answer = self.server.emulator.handle(self.command, target, headers, body)
        if answer.drop:
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client is gone (it timed out while the answer hung)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: ``Emulator.handle`` logs each request at debug level, without the key."""


def run_standalone(host: str, port: int, api_key: str) -> None:
    """Serve until Ctrl+C or SIGTERM; prints one line with the URL (never the key)."""
    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # The handler goes in before the URL is printed: whoever reads the line may send SIGTERM
    # at once (a handler installed after the print lost that race on a busy machine).
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    emulator = Emulator(api_key=api_key)
    url = emulator.start(port=port, host=host)
    print(
        f"RetailCRM API emulator listening on {url} (key label {DEFAULT_KEY_LABEL!r})", flush=True
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
