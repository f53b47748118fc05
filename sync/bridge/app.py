"""The HTTP side of ``serve``: RetailCRM's callbacks, the dialplan's ``/route``, health, metrics.

Handlers only decide (with the pure rules of ``dialing`` and ``clicks``) and then act: an AMI
action on the event loop, database and CRM calls in worker threads. Every answer is JSON
``{"success": ...}``; no answer and no log line ever carries a clientId, token or key.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sync.ami import AmiClient, AmiError, AmiUnavailable, Message
from sync.ami.events import OriginateResponse
from sync.bridge.clicks import (
    Click,
    Dedup,
    check_caller,
    http_originate_url,
    new_click_id,
    originate_fields,
    originate_reason,
)
from sync.bridge.dialing import Refusal, dial_string, dialable_e164, phone_text_problem
from sync.bridge.directory import LiveTenant, TenantDirectory
from sync.bridge.http import fail, guarded, ok, params_of, text
from sync.bridge.lookups import CRM_WORKERS, ManagerRouter, MapRefresher
from sync.bridge.metrics import Metrics
from sync.config import ServeSettings, Settings
from sync.engine.store import Store
from sync.phones import normalize_phone
from sync.popups.live import LivePopups
from sync.timeutil import utcnow

ORIGINATE_REPLY_SECONDS = 2.0
HTTP_ORIGINATE_SECONDS = 3.0


@dataclass
class Bridge:
    """Everything the handlers share; one per ``serve`` process (or per test)."""

    settings: Settings
    store: Store
    ami: AmiClient | None
    directory: TenantDirectory = field(init=False)
    metrics: Metrics = field(init=False)
    dedup: Dedup = field(init=False)
    clicks: dict[str, Click] = field(default_factory=dict)
    """Clicks waiting for their ``OriginateResponse``, by ActionID (= ChannelId)."""
    crm_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(CRM_WORKERS, thread_name_prefix="crm")
    )
    router: ManagerRouter = field(init=False)
    refresher: MapRefresher = field(init=False)
    popups: LivePopups | None = field(init=False, default=None)
    """AMI events → ``call/event`` (issue #13); ``None`` without AMI or with popup_on = off."""

    def __post_init__(self) -> None:
        self.directory = TenantDirectory(self.settings, self.store)
        self.metrics = Metrics(self.store, self.directory.names)
        self.dedup = Dedup(self.serve.click_dedup_seconds)
        self.router = ManagerRouter(self.settings, self.crm_pool)
        self.refresher = MapRefresher(self.settings, self.store, self.crm_pool)
        if self.ami is not None:
            self.ami.subscribe(self.on_event)
            if self.serve.popup_on != "off":
                self.popups = LivePopups(self.settings, self.ami, self.directory, self.metrics)

    @property
    def serve(self) -> ServeSettings:
        assert self.settings.serve is not None
        return self.settings.serve

    def reload(self, settings: Settings) -> None:
        """A re-read configuration (SIGHUP, sync/reload.py): tenants added, changed or removed
        count from the next request (clicks, callbacks, routes, triggers). ``[serve] listen``,
        ``[ami]`` and the pop-ups' tenant routing (built once in ``LivePopups``) still need a
        restart."""
        for part in (self, self.directory, self.router, self.refresher):
            part.settings = settings
        self.directory.load()

    # -- AMI events --------------------------------------------------------------------------

    def on_event(self, message: Message) -> None:
        response = OriginateResponse.parse(message)
        if response is None:
            return
        click = self.clicks.pop(response.action_id, None)
        if click is None:
            return
        reason = originate_reason(response.success, response.reason)
        self.metrics.originate.labels(click.tenant, reason).inc()
        logger.info(
            f"click {click.click_id}: tenant {click.tenant}, extension {click.extension}: "
            f"originate {reason} (Reason {response.reason or '-'})"
        )

    # -- helpers -----------------------------------------------------------------------------

    async def tenant_for(self, params: dict[str, Any], route: str) -> LiveTenant | None:
        client_id = text(params, "clientId")
        # The usual case is answered from memory on the loop, without a thread hop.
        tenant = self.directory.cached_by_client_id(client_id) or await asyncio.to_thread(
            self.directory.by_client_id, client_id
        )
        if tenant is None:
            logger.warning(f"{route}: unknown clientId refused (value not logged)")
        return tenant

    # -- /make-call --------------------------------------------------------------------------

    async def make_call(self, request: Request) -> Response:
        params = await params_of(request)
        tenant = await self.tenant_for(params, "make-call")
        if tenant is None:
            self.metrics.clicks.labels("-", "refused").inc()
            return fail(403, "unknown clientId")
        answer, result = await self._make_call(tenant, params)
        self.metrics.clicks.labels(tenant.name, result).inc()
        return answer

    async def _make_call(self, tenant: LiveTenant, params: dict[str, Any]) -> tuple[Response, str]:
        """The answer and its metric label: queued, duplicate, refused (4xx) or failed (5xx)."""
        answer = await self._decide_and_dial(tenant, params)
        if isinstance(answer, str):
            return ok(), answer
        return answer, "queued" if answer.status_code == 200 else (
            "refused" if answer.status_code < 500 else "failed"
        )

    async def _decide_and_dial(self, tenant: LiveTenant, params: dict[str, Any]) -> Response | str:
        if not tenant.enabled:
            return fail(403, "the integration module is inactive or frozen in RetailCRM")
        code, phone = text(params, "code"), text(params, "phone")
        refusal = check_caller(tenant.settings.extensions, code, text(params, "userId"))
        if refusal is not None:
            logger.warning(f"make-call: tenant {tenant.name}: {refusal.reason} (code {code!r})")
            return fail(refusal.status, refusal.reason)
        pbx, originate = self.settings.pbx, self.settings.originate
        e164 = dialable_e164(
            phone,
            country=pbx.country,
            extension_pattern=pbx.extension_pattern,
            allow=originate.allow,
        )
        if isinstance(e164, Refusal):
            logger.warning(f"make-call: tenant {tenant.name}, extension {code}: {e164.reason}")
            return fail(e164.status, e164.reason)
        if not self.dedup.first(tenant.name, code, e164):
            return "duplicate"
        dial = dial_string(
            e164,
            dial_format=originate.dial_format,
            country=pbx.country,
            dial_prefixes=pbx.dial_prefixes,
        )
        act = self._originate_ami if originate.method == "ami" else self._originate_http
        answer = await act(tenant, code, dial, e164)
        if answer.status_code != 200:
            self.dedup.forget(tenant.name, code, e164)
        return answer

    async def _originate_ami(self, tenant: LiveTenant, code: str, dial: str, e164: str) -> Response:
        if self.ami is None or not self.ami.connected:
            return fail(503, "PBX not connected")
        click_id = new_click_id()
        fields = originate_fields(
            self.settings.originate, extension=code, dial=dial, e164=e164, click_id=click_id
        )
        self.clicks[click_id] = Click(click_id, tenant.name, code, e164)
        if self.popups is not None:  # its events may come before the Originate's reply
            self.popups.expect_click(click_id, tenant.name)
        try:
            reply = await self.ami.send(
                "Originate", fields, timeout=ORIGINATE_REPLY_SECONDS, action_id=click_id
            )
        except AmiUnavailable:
            self.clicks.pop(click_id, None)
            return fail(503, "PBX not connected")
        except AmiError as exc:
            self.clicks.pop(click_id, None)
            logger.warning(f"click {click_id}: tenant {tenant.name}: {exc}")
            return fail(502, "PBX did not answer in time")
        if not reply.success:
            self.clicks.pop(click_id, None)
            message = reply.get("Message") or "refused"
            logger.warning(f"click {click_id}: tenant {tenant.name}, extension {code}: {message}")
            return fail(502, f"PBX refused: {message}")
        if len(self.clicks) > 10_000:  # responses that never came: keep the table bounded
            for old in list(self.clicks)[:5000]:
                self.clicks.pop(old, None)
        logger.info(f"click {click_id}: tenant {tenant.name}, extension {code}: originate queued")
        return JSONResponse({"success": True, "callExternalId": self._external_id(click_id)})

    def _external_id(self, click_id: str) -> str:
        return self.settings.pbx.external_id_prefix + click_id

    async def _originate_http(
        self, tenant: LiveTenant, code: str, dial: str, e164: str
    ) -> Response:
        url = http_originate_url(self.settings.originate, extension=code, dial=dial, e164=e164)

        def get() -> int:
            try:
                return requests.get(url, timeout=HTTP_ORIGINATE_SECONDS).status_code
            except requests.RequestException:
                return 0

        status = await asyncio.to_thread(get)
        if 200 <= status < 300:
            logger.info(f"make-call: tenant {tenant.name}, extension {code}: PBX accepted (HTTP)")
            return ok()
        logger.warning(
            f"make-call: tenant {tenant.name}, extension {code}: PBX HTTP originate answered "
            f"{status or 'nothing'}"
        )
        return fail(502, "PBX refused the call" if status else "PBX unreachable")

    # -- /user-status ------------------------------------------------------------------------

    async def user_status(self, request: Request) -> Response:
        params = await params_of(request)
        tenant = await self.tenant_for(params, "user-status")
        if tenant is None:
            return fail(403, "unknown clientId")
        code, status = text(params, "code"), text(params, "status")
        refusal = check_caller(tenant.settings.extensions, code, text(params, "userId"))
        if refusal is not None:
            return fail(refusal.status, refusal.reason)
        if status in self.serve.pause_on_status:
            paused = True
        elif status == "free":
            paused = False
        else:
            return ok()
        if self.ami is None or not self.ami.connected:
            return fail(503, "PBX not connected")
        fields = {
            "Interface": self.serve.queue_interface.replace("{extension}", code),
            "Paused": "true" if paused else "false",
            "Reason": f"RetailCRM status {status}",
        }
        try:
            reply = await self.ami.send("QueuePause", fields, timeout=ORIGINATE_REPLY_SECONDS)
        except AmiUnavailable:
            return fail(503, "PBX not connected")
        except AmiError:
            return fail(502, "PBX did not answer in time")
        if not reply.success:
            return fail(502, f"PBX refused: {reply.get('Message') or 'refused'}")
        logger.info(f"user-status: tenant {tenant.name}, extension {code}: {status}")
        return ok()

    # -- /activity ---------------------------------------------------------------------------

    async def activity(self, request: Request) -> Response:
        params = await params_of(request)
        tenant = await self.tenant_for(params, "activity")
        if tenant is None:
            return fail(400, "Wrong data")
        raw = params.get("activity")
        try:
            flags = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            flags = None
        if (
            not isinstance(flags, dict)
            or not isinstance(flags.get("active"), bool)
            or not isinstance(flags.get("freeze", False), bool)
        ):
            return fail(400, "Wrong data")
        active, frozen = flags["active"], bool(flags.get("freeze", False))
        await asyncio.to_thread(
            self.store.set_activity, tenant.name, active=active, frozen=frozen, now=utcnow()
        )
        await asyncio.to_thread(self.directory.load)
        logger.info(f"activity: tenant {tenant.name}: active={active} freeze={frozen}")
        return ok()

    # -- /trigger/{token} --------------------------------------------------------------------

    async def trigger(self, request: Request) -> Response:
        tenant = await asyncio.to_thread(self.directory.by_token, request.path_params["token"])
        if tenant is None:
            logger.warning("trigger: unknown token refused (value not logged)")
            return fail(404, "Not found")
        self.refresher.hint(tenant)
        return ok()

    # -- /route/{token} ----------------------------------------------------------------------

    async def route(self, request: Request) -> Response:
        params = await params_of(request)
        tenant = await asyncio.to_thread(self.directory.by_token, request.path_params["token"])
        if tenant is None:
            return PlainTextResponse("", status_code=404)
        phone = text(params, "phone")
        if phone_text_problem(phone):
            return PlainTextResponse("", status_code=404)
        pbx = self.settings.pbx
        number = normalize_phone(
            phone, country=pbx.country, extension_pattern=pbx.extension_pattern, memo=False
        ).value
        if number is None:
            return PlainTextResponse("", status_code=404)
        code = await self.router.extension(tenant, number)
        if not code:
            return PlainTextResponse("", status_code=404)
        return PlainTextResponse(code)

    # -- /healthz, /metrics ------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        connected = self.ami is not None and self.ami.connected
        needed = self.settings.originate.method == "ami" or self.ami is not None
        body = {
            "ami": "connected" if connected else (self.ami.state if self.ami else "not configured"),
            "tenants": len(self.settings.tenants),
        }
        healthy = connected or not needed
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics_page(self, request: Request) -> Response:
        self.metrics.ami_connected.set(1 if self.ami is not None and self.ami.connected else 0)
        payload = await asyncio.to_thread(self.metrics.render)
        return Response(payload, media_type="text/plain; version=0.0.4; charset=utf-8")


def build_app(bridge: Bridge) -> Starlette:
    both = ["GET", "POST"]
    routes = [
        Route("/make-call", guarded(bridge.make_call), methods=both),
        Route("/user-status", guarded(bridge.user_status), methods=both),
        Route("/activity", guarded(bridge.activity), methods=both),
        Route("/trigger/{token}", guarded(bridge.trigger), methods=both),
        Route("/route/{token}", guarded(bridge.route), methods=both),
        Route("/healthz", bridge.healthz, methods=["GET"]),
        Route("/metrics", bridge.metrics_page, methods=["GET"]),
    ]
    return Starlette(routes=routes)
