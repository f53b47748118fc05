"""What every callback shares: reading parameters however RetailCRM sends them, the JSON
answers, and a guard that turns surprises into 400/500 without a traceback or a parameter in
the answer or the log."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[Request], Awaitable[Response]]


def ok() -> JSONResponse:
    return JSONResponse({"success": True})


def fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "errorMsg": message}, status_code=status)


async def params_of(request: Request) -> dict[str, Any]:
    """Query parameters, then a form or JSON body on top (RetailCRM's method is undocumented)."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method != "POST":
        return params
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ValueError("request body too large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" and body:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        params.update(data)
    elif body:
        # RetailCRM posts application/x-www-form-urlencoded; no multipart parser needed.
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def text(params: dict[str, Any], name: str) -> str:
    value = params.get(name, "")
    return value if isinstance(value, str) else str(value)


def guarded(handler: Handler) -> Handler:
    """Bad bodies are 400, anything unexpected a 500 with a logged reason, never a traceback
    in the answer (and never the request's parameters in the log)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (ValueError, UnicodeDecodeError) as exc:
            return fail(400, f"bad request: {type(exc).__name__}")
        except Exception:
            logger.opt(exception=True).error(f"{request.url.path.split('/')[1]}: handler failed")
            return fail(500, "internal error")

    return wrapped
