"""RetailCRM calling the module, as the real account does: a user clicks a number, changes
status, or the module is (de)activated. The URLs and the clientId come from the module as
``register`` stored it, so a test drives ``serve`` exactly along the path production takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from sync.emulator.state import JsonDict

TIMEOUT = 10.0


@dataclass(frozen=True)
class CallbackAnswer:
    status: int
    body: JsonDict
    text: str


class Callbacks:
    """Mixed into ``Emulator``: needs ``module(code)`` and ``modules``."""

    def module(self, code: str) -> JsonDict | None:  # provided by CrmState
        raise NotImplementedError

    def set_module_flags(self, code: str, active: bool, freeze: bool) -> None:  # CrmState
        raise NotImplementedError

    def set_user_status(self, id: int, status: str) -> None:  # CrmState
        raise NotImplementedError

    def _telephony(self, code: str) -> tuple[JsonDict, JsonDict]:
        module = self.module(code)
        if module is None:
            raise LookupError(f"no module {code!r} registered")
        telephony = (module.get("integrations") or {}).get("telephony") or {}
        return module, telephony

    def click(
        self,
        code: str,
        phone: str,
        user_id: int | None = None,
        *,
        external_phone: str = "",
        module_code: str = "asterisk",
        method: str = "GET",
        client_id: str | None = None,
    ) -> CallbackAnswer:
        """A user with extension ``code`` clicks ``phone``: RetailCRM requests ``makeCallUrl``."""
        module, telephony = self._telephony(module_code)
        url = telephony.get("makeCallUrl")
        if not isinstance(url, str) or not url:
            raise LookupError("the module has no makeCallUrl: no phone icons in the CRM")
        params: dict[str, Any] = {
            "clientId": module.get("clientId") if client_id is None else client_id,
            "code": code,
            "phone": phone,
        }
        if user_id is not None:
            params["userId"] = user_id
        if external_phone:
            params["externalPhone"] = external_phone
        return _send(url, params, method)

    def change_status(
        self, code: str, status: str, user_id: int, *, module_code: str = "asterisk"
    ) -> CallbackAnswer:
        """A user's status changes (free, busy, dinner, break): ``changeUserStatusUrl``."""
        self.set_user_status(user_id, status)
        module, telephony = self._telephony(module_code)
        url = str(telephony.get("changeUserStatusUrl") or "")
        params = {"clientId": module.get("clientId"), "code": code, "status": status}
        return _send(url, params | {"userId": user_id}, "POST")

    def set_activity(
        self, active: bool, freeze: bool = False, *, module_code: str = "asterisk"
    ) -> CallbackAnswer:
        """The module is (de)activated or frozen: a form POST to ``baseUrl`` + the action."""
        module, _ = self._telephony(module_code)
        self.set_module_flags(module_code, active, freeze)
        base = str(module.get("baseUrl") or "")
        path = str((module.get("actions") or {}).get("activity") or "")
        params = {
            "clientId": module.get("clientId"),
            "systemUrl": "https://demo.retailcrm.ru",
            "activity": json.dumps({"active": active, "freeze": freeze}),
        }
        return _send(base + path, params, "POST")


def _send(url: str, params: dict[str, Any], method: str) -> CallbackAnswer:
    fields = {k: str(v) for k, v in params.items()}
    try:
        if method == "GET":
            answer = requests.get(url, params=fields, timeout=TIMEOUT)
        else:
            answer = requests.post(url, data=fields, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return CallbackAnswer(0, {}, type(exc).__name__)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    return CallbackAnswer(answer.status_code, body if isinstance(body, dict) else {}, answer.text)
