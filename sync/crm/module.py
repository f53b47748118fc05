"""The telephony integration module (spec §5): what we want registered, and registering it.

The CRM replaces the module with what is sent, so the full desired state goes every time:
every extension of ``[tenants.extensions]`` as ``additionalCodes``, every DID of
``[tenants.external_phones]``, and with ``[serve]`` the callback URLs derived from its
``public_url`` (design §6.1). ``clientId`` and the trigger token are generated once per tenant
and kept in our database, so re-registering never changes them. The module is then read back
and the CRM's own report of unknown user ids and shop codes is returned.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sync.config import ServeSettings, TenantSettings
from sync.crm.client import RetailCRMClient
from sync.crm.errors import CRMError
from sync.engine.store import Store

V = TypeVar("V")

OK, FAIL, WARN = "✓", "✗", "!"
ACTIVITY_PATH = "/activity"


def additional_codes(extensions: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"userId": user, "code": ext} for ext, user in sorted(extensions.items())]


def callback_urls(serve: ServeSettings) -> dict[str, str]:
    """The URLs RetailCRM calls, from ``[serve] public_url``."""
    base = serve.public_url.rstrip("/")
    return {
        "makeCallUrl": f"{base}/make-call",
        "changeUserStatusUrl": f"{base}/user-status",
        "baseUrl": base,
    }


def desired_module(
    tenant: TenantSettings, client_id: str, serve: ServeSettings | None = None
) -> dict[str, Any]:
    """The module as this tenant's configuration describes it (spec §5.1, design §6.1)."""
    events = serve is not None and serve.popup_on != "off"
    telephony: dict[str, Any] = {
        "allowEdit": False,  # the config file is the one place extensions are edited
        "inputEventSupported": events,
        "outputEventSupported": events,
        "hangupEventSupported": events,
        "additionalCodes": additional_codes(tenant.extensions),
        "externalPhones": [
            {"siteCode": site, "externalPhone": did}
            for did, site in sorted(tenant.external_phones.items())
        ],
    }
    module: dict[str, Any] = {
        "code": tenant.integration_code,
        "integrationCode": tenant.integration_code,
        "active": True,
        "name": tenant.integration_name,
        "logo": tenant.logo_url,
        "clientId": client_id,
    }
    if serve is not None:
        urls = callback_urls(serve)
        telephony["makeCallUrl"] = urls["makeCallUrl"]
        telephony["changeUserStatusUrl"] = urls["changeUserStatusUrl"]
        module["baseUrl"] = urls["baseUrl"]
        module["actions"] = {"activity": ACTIVITY_PATH}
    # An explicit per-tenant URL (a PBX's own click-to-call service) wins over the derived one.
    if tenant.make_call_url:
        telephony["makeCallUrl"] = tenant.make_call_url
    if tenant.change_user_status_url:
        telephony["changeUserStatusUrl"] = tenant.change_user_status_url
    module["integrations"] = {"telephony": telephony}
    return module


def stored_codes(module: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(userId, code) pairs of a module as the CRM returns it (userId may come as text)."""
    telephony = (module.get("integrations") or {}).get("telephony") or {}
    codes = telephony.get("additionalCodes") or []
    return {(str(c.get("userId")), str(c.get("code"))) for c in codes if isinstance(c, dict)}


def client_id_of(store: Store, tenant: str) -> str:
    """The tenant's clientId, generated on first use; a concurrent register keeps the first."""
    state = store.tenant(tenant)
    if state is None or state.client_id is None:
        store.set_client_id(tenant, secrets.token_hex(16))
        state = store.tenant(tenant)
    assert state is not None and state.client_id is not None
    return state.client_id


def trigger_token_of(store: Store, tenant: str) -> str:
    """The tenant's token for ``/trigger/{token}`` and ``/route/{token}``, made on first use."""
    state = store.tenant(tenant)
    if state is None or state.trigger_token is None:
        store.set_trigger_token(tenant, secrets.token_urlsafe(24))
        state = store.tenant(tenant)
    assert state is not None and state.trigger_token is not None
    return state.trigger_token


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def add(self, mark: str, text: str) -> None:
        self.lines.append(f"{mark} {text}")
        self.failed = self.failed or mark == FAIL


def register_tenant(
    store: Store,
    tenant: TenantSettings,
    client: RetailCRMClient,
    serve: ServeSettings | None = None,
) -> Outcome:
    """Send the module, read it back, report what the CRM does not know."""
    out = Outcome()
    who = f"tenant {tenant.name}: module {tenant.integration_code}"
    if serve is not None:
        trigger_token_of(store, tenant.name)
    module = desired_module(tenant, client_id_of(store, tenant.name), serve)
    try:
        info = client.edit_integration_module(module)
        stored = client.integration_module(tenant.integration_code)
    except CRMError as exc:
        out.add(FAIL, f"{who}: {exc}")
        return out
    if stored is None:
        out.add(FAIL, f"{who}: not found right after the edit; run register again")
        return out
    n_ext, n_did = len(tenant.extensions), len(tenant.external_phones)
    state = "active" if stored.get("active") is True and not stored.get("freeze") else "INACTIVE"
    live = ", click-to-call and callbacks" if serve is not None else ""
    out.add(
        OK if state == "active" else FAIL,
        f"{who}: registered, {state}, {n_ext} extensions, {n_did} external phones{live}",
    )
    by_user = _keys_by_value(tenant.extensions)
    for user in info.not_exist_user_ids:
        exts = ", ".join(sorted(by_user.get(user, []))) or "?"
        out.add(
            FAIL,
            f"{who}: user id {user} (extension {exts}) does not exist in RetailCRM; "
            "fix [tenants.extensions] (Settings → Users shows each user's id)",
        )
    by_site = _keys_by_value(tenant.external_phones)
    for site in info.not_exist_site_codes:
        dids = ", ".join(sorted(by_site.get(site, []))) or "?"
        out.add(
            FAIL,
            f"{who}: shop code {site!r} (DID {dids}) does not exist; "
            "fix [tenants.external_phones] (Settings → Shops shows the codes)",
        )
    sent = stored_codes(module)
    if stored_codes(stored) != sent:
        out.add(
            WARN,
            f"{who}: the CRM keeps {len(stored_codes(stored))} of {len(sent)} extensions "
            "as sent; the unknown users above are the usual reason",
        )
    return out


def _keys_by_value(mapping: Mapping[str, V]) -> dict[V, list[str]]:
    """Extensions per user id, DIDs per shop code: to name them in the CRM's complaints."""
    inverted: dict[V, list[str]] = {}
    for key, value in mapping.items():
        inverted.setdefault(value, []).append(key)
    return inverted
