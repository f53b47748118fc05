"""``register``: create or update each tenant's telephony integration module (spec §5).

The CRM replaces the module with what is sent, so the full desired state goes every time:
every extension of ``[tenants.extensions]`` as ``additionalCodes``, every DID of
``[tenants.external_phones]``. ``clientId`` is generated once per tenant and kept in our
database, so re-registering never changes it. The module is then read back and the CRM's own
report of unknown user ids and shop codes is shown; either makes the command exit 1.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync import logs
from sync.cli import CliError
from sync.commands.common import check_tenants, load_settings, open_database
from sync.config import Settings, TenantSettings
from sync.crm import CRMError, RetailCRMClient
from sync.engine.store import Store

OK, FAIL, WARN = "✓", "✗", "!"
CLIENT_TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.set_defaults(handler=run)


def make_client(settings: Settings, tenant: TenantSettings) -> RetailCRMClient:
    """A client for one-off commands: short budget, so a dead CRM is reported in seconds."""
    return RetailCRMClient(
        tenant.url,
        tenant.api_key.reveal(),
        tenant=tenant.name,
        connect_timeout=settings.sync.connect_timeout,
        read_timeout=min(settings.sync.read_timeout, CLIENT_TIMEOUT),
        site=tenant.site,
        budget_seconds=CLIENT_TIMEOUT,
    )


def additional_codes(extensions: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"userId": user, "code": ext} for ext, user in sorted(extensions.items())]


def desired_module(tenant: TenantSettings, client_id: str) -> dict[str, Any]:
    """The module as this tenant's configuration describes it (spec §5.1)."""
    telephony: dict[str, Any] = {
        "allowEdit": False,  # the config file is the one place extensions are edited
        "inputEventSupported": False,
        "outputEventSupported": False,
        "hangupEventSupported": False,
        "additionalCodes": additional_codes(tenant.extensions),
        "externalPhones": [
            {"siteCode": site, "externalPhone": did}
            for did, site in sorted(tenant.external_phones.items())
        ],
    }
    if tenant.make_call_url:
        telephony["makeCallUrl"] = tenant.make_call_url
    if tenant.change_user_status_url:
        telephony["changeUserStatusUrl"] = tenant.change_user_status_url
    return {
        "code": tenant.integration_code,
        "integrationCode": tenant.integration_code,
        "active": True,
        "name": tenant.integration_name,
        "logo": tenant.logo_url,
        "clientId": client_id,
        "integrations": {"telephony": telephony},
    }


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


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def add(self, mark: str, text: str) -> None:
        self.lines.append(f"{mark} {text}")
        self.failed = self.failed or mark == FAIL


def register_tenant(store: Store, tenant: TenantSettings, client: RetailCRMClient) -> Outcome:
    """Send the module, read it back, report what the CRM does not know."""
    out = Outcome()
    who = f"tenant {tenant.name}: module {tenant.integration_code}"
    module = desired_module(tenant, client_id_of(store, tenant.name))
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
    out.add(
        OK if state == "active" else FAIL,
        f"{who}: registered, {state}, {n_ext} extensions, {n_did} external phones",
    )
    by_user: dict[int, list[str]] = {}
    for ext, user in tenant.extensions.items():
        by_user.setdefault(user, []).append(ext)
    for user in info.not_exist_user_ids:
        exts = ", ".join(sorted(by_user.get(user, []))) or "?"
        out.add(
            FAIL,
            f"{who}: user id {user} (extension {exts}) does not exist in RetailCRM; "
            "fix [tenants.extensions] (Settings → Users shows each user's id)",
        )
    by_site: dict[str, list[str]] = {}
    for did, site in tenant.external_phones.items():
        by_site.setdefault(site, []).append(did)
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


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    check_tenants(settings, args.tenant)
    chosen = [t for t in settings.tenants if not args.tenant or t.name in args.tenant]
    for tenant in chosen:
        if not tenant.logo_url:
            index = settings.tenants.index(tenant)
            raise CliError(
                f"{settings.path}: tenants[{index}].logo_url: required by register (RetailCRM "
                "needs an SVG logo for a module outside its Marketplace), e.g. "
                '"https://pbx.example.com/asterisk.svg"',
                2,
            )
    logs.setup(args.log_level or "ERROR", None, settings.secrets())
    store = Store(open_database(settings))
    failed = False
    try:
        store.ensure_tenants(t.name for t in chosen)
        for tenant in chosen:
            with make_client(settings, tenant) as client:
                outcome = register_tenant(store, tenant, client)
            for line in outcome.lines:
                print(line)
            failed = failed or outcome.failed
    finally:
        store.engine.dispose()
    return 1 if failed else 0
