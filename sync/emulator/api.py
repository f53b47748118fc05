"""The emulated API methods: exact routes, their scopes, and answers shaped like the server's.

Every handler gets the decoded parameters and the caller's key, runs under the state lock and
returns ``(status, body)`` or raises ``ApiError``. Error texts are those the official clients
match on (spec §4) where one is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from sync.emulator.orders import STATUSES, is_date, statuses_reference
from sync.emulator.state import CrmState, JsonDict, KeyConfig, digits, now_text, phones_match
from sync.emulator.validation import is_datetime, is_http_url, validate_calls

Reply = tuple[int, JsonDict]
Handler = Callable[[CrmState, "ApiRequest"], Reply]

INPUT_ERRORS = "Errors in the input parameters"
ENTITY_ERRORS = "Errors in the entity format"
NOT_FOUND = "Not found"
METHOD_NOT_FOUND = "API method not found"
ACCESS_DENIED = "Access denied."
NO_TELEPHONY = "Telephony not enabled or not supports calls upload"
PAGE_LIMITS = (20, 50, 100)
EVENT_TYPES = frozenset({"in", "out", "hangup"})
MODULE_ACTIONS = frozenset({"activity"})
"""Callback actions a module may declare (spec §2; anything else is an invalid choice)."""
HANGUP_STATUSES = frozenset({"answered", "busy", "cancel", "failed", "no answered"})


class ApiError(Exception):
    """An error answer: ``{"success": false, "errorMsg": ..., "errors": ...}``."""

    def __init__(self, status: int, error_msg: str, errors: object = None) -> None:
        super().__init__(error_msg)
        self.status = status
        self.error_msg = error_msg
        self.errors = errors

    def body(self) -> JsonDict:
        body: JsonDict = {"success": False, "errorMsg": self.error_msg}
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    params: JsonDict
    """Decoded parameters; the JSON form fields (``calls``, ``customer``...) already parsed."""
    key: KeyConfig
    base_url: str
    groups: tuple[str, ...] = ()
    invalid_json: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    scope: str | None
    """``None``: any valid key may call it."""
    handler: Handler
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def _route(method: str, template: str, scope: str | None) -> Callable[[Handler], Handler]:
    pattern = re.compile(re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)))

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, template, scope, handler, pattern))
        return handler

    return register


def find_route(method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
    """The route for exactly this path; double slashes and unknown paths match nothing."""
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, tuple(unquote(g) for g in match.groups())
    return None


# -- parameter helpers ------------------------------------------------------------------------


def _json_param(req: ApiRequest, name: str) -> object:
    if name not in req.params:
        raise ApiError(400, f"Parameter '{name}' is missing")
    if name in req.invalid_json:
        raise ApiError(400, INPUT_ERRORS, {name: "This value is not valid JSON."})
    return req.params[name]


def _json_object(req: ApiRequest, name: str) -> JsonDict:
    value = _json_param(req, name)
    if not isinstance(value, dict):
        raise ApiError(400, INPUT_ERRORS, {name: "This value should be a JSON object."})
    return value


def _filter(req: ApiRequest) -> JsonDict:
    value = req.params.get("filter", {})
    if not isinstance(value, dict):
        raise ApiError(400, INPUT_ERRORS, {"filter": "This value should be of type array."})
    return value


def _int(value: object, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ApiError(400, INPUT_ERRORS, {name: "This value should be a positive integer."})


def _flag(req: ApiRequest, name: str) -> bool:
    """Booleans are ``1``/``0``: ``True`` (the official Python client's bug) is rejected."""
    value: object = req.params.get(name, "0")
    if value not in ("0", "1"):
        raise ApiError(400, INPUT_ERRORS, {name: "This value should be 0 or 1."})
    return value == "1"


def _history_page(req: ApiRequest, entries: list[JsonDict]) -> Reply:
    """One page of a ``*/history`` answer (customers and orders alike)."""
    page, pagination = _paginate(req, entries)
    return 200, {
        "success": True,
        "generatedAt": now_text(),
        "history": page,
        "pagination": pagination,
    }


def _paginate(req: ApiRequest, items: list[JsonDict]) -> tuple[list[JsonDict], JsonDict]:
    limit_text, page_text = req.params.get("limit", "20"), req.params.get("page", "1")
    if limit_text not in tuple(str(n) for n in PAGE_LIMITS):
        raise ApiError(
            400, INPUT_ERRORS, {"limit": "The value you selected is not a valid choice."}
        )
    page = _int(page_text, "page")
    if page < 1:
        raise ApiError(400, INPUT_ERRORS, {"page": "This value should be 1 or more."})
    limit = int(limit_text)
    pagination = {
        "limit": limit,
        "totalCount": len(items),
        "currentPage": page,
        "totalPageCount": -(-len(items) // limit),
    }
    return items[(page - 1) * limit : page * limit], pagination


def _site(state: CrmState, req: ApiRequest, given: object) -> str:
    """The shop of a write: the ``site`` field, else the key's only (or first) shop."""
    sites = state.keys_sites(req.key)
    site = req.params.get("site") or given
    if site:
        if not isinstance(site, str) or not state.site_exists(site):
            raise ApiError(400, INPUT_ERRORS, {"site": f"Site '{site}' does not exist."})
        if site not in sites:
            raise ApiError(403, ACCESS_DENIED)
        return site
    if not sites or (req.key.site_access == "access_selective" and len(sites) > 1):
        raise ApiError(400, "Parameter 'site' is missing")
    return sites[0]


def _phones_problems(data: JsonDict) -> dict[str, str]:
    phones = data.get("phones", [])
    if not isinstance(phones, list) or not all(
        isinstance(p, dict) and isinstance(p.get("number"), str) for p in phones
    ):
        return {"phones": "This value should be a list of {number} objects."}
    return {}


def _require_telephony(state: CrmState, req: ApiRequest, error_msg: str) -> JsonDict | None:
    module = state.telephony_module(req.key)
    if module is None and state.require_module:
        raise ApiError(400, error_msg)
    return module


def _additional_codes(module: JsonDict | None) -> list[JsonDict]:
    telephony = ((module or {}).get("integrations") or {}).get("telephony") or {}
    codes = telephony.get("additionalCodes") or []
    return [c for c in codes if isinstance(c, dict)]


# -- unversioned ------------------------------------------------------------------------------


@_route("GET", "/api/credentials", None)
def _credentials(state: CrmState, req: ApiRequest) -> Reply:
    allowed = [r.template for r in ROUTES if r.scope is None or r.scope in req.key.scopes]
    return 200, {
        "success": True,
        "scopes": sorted(req.key.scopes),
        "credentials": sorted(set(allowed)),
        "siteAccess": req.key.site_access,
        "sitesAvailable": list(state.keys_sites(req.key)),
    }


@_route("GET", "/api/api-versions", None)
def _api_versions(state: CrmState, req: ApiRequest) -> Reply:
    return 200, {"success": True, "versions": ["3.0", "4.0", "5.0"]}


@_route("GET", "/api/system-info", None)
def _system_info(state: CrmState, req: ApiRequest) -> Reply:
    url = req.base_url
    return 200, {
        "success": True,
        "systemVersion": "8.0.0-emulator",
        "publicUrl": url,
        "technicalUrl": url,
    }


# -- integration modules ----------------------------------------------------------------------


@_route("GET", "/api/v5/integration-modules/{code}", "integration_read")
def _module_get(state: CrmState, req: ApiRequest) -> Reply:
    module = state.module(req.groups[0])
    if module is None:
        raise ApiError(404, NOT_FOUND)
    return 200, {"success": True, "integrationModule": module}


@_route("POST", "/api/v5/integration-modules/{code}/edit", "integration_write")
def _module_edit(state: CrmState, req: ApiRequest) -> Reply:
    code = req.groups[0]
    module = _json_object(req, "integrationModule")
    errors = _module_problems(code, module)
    telephony = (module.get("integrations") or {}).get("telephony")
    telephony = telephony if isinstance(telephony, dict) else {}
    errors.update(_telephony_problems(telephony))
    if errors:
        raise ApiError(400, ENTITY_ERRORS, errors)
    user_ids = [int(c["userId"]) for c in telephony.get("additionalCodes") or []]
    site_codes = [p["siteCode"] for p in telephony.get("externalPhones") or []]
    unknown_users = state.unknown_user_ids(user_ids)
    unknown_sites = [c for c in site_codes if not state.site_exists(c)]
    created = state.put_module(code, module, req.key.label)
    info: JsonDict | list[Any] = []  # PHP encodes an empty info as `[]`
    if unknown_users or unknown_sites:
        info = {"notExistUsersIds": unknown_users, "notExistSiteCodes": unknown_sites}
    return (201 if created else 200), {"success": True, "info": info}


def _module_problems(code: str, module: JsonDict) -> dict[str, str]:
    """Rules of spec §5.1 and Pitfall 4 (name and an SVG logo for unpublished modules)."""
    errors: dict[str, str] = {}
    if module.get("code") != code:
        errors["code"] = "The code must equal the code in the URL."
    for name in ("integrationCode", "name"):
        if not isinstance(module.get(name), str) or not module[name]:
            errors[name] = "This value should not be blank."
    logo = module.get("logo")
    if not is_http_url(logo) or not str(logo).split("?")[0].lower().endswith(".svg"):
        errors["logo"] = "The logo must be a link to an SVG image."
    for name in ("active", "freeze"):
        if name in module and not isinstance(module[name], bool):
            errors[name] = "This value should be of type bool."
    integrations = module.get("integrations", {})
    if not isinstance(integrations, dict):
        errors["integrations"] = "This value should be of type object."
    if "baseUrl" in module and not is_http_url(module["baseUrl"]):
        errors["baseUrl"] = "This value is not a valid URL."
    actions = module.get("actions")
    if actions is not None:
        if not isinstance(actions, dict):
            errors["actions"] = "This value should be of type object."
        else:
            for name, path in actions.items():
                if name not in MODULE_ACTIONS:
                    errors[f"actions[{name}]"] = "The value you selected is not a valid choice."
                elif not isinstance(path, str) or not path.startswith("/"):
                    errors[f"actions[{name}]"] = "This value should be a relative path."
            if not module.get("baseUrl"):
                errors["baseUrl"] = "This value should not be blank."
    return errors


def _telephony_problems(telephony: JsonDict) -> dict[str, str]:
    errors: dict[str, str] = {}
    prefix = "integrations.telephony"
    for index, item in enumerate(telephony.get("additionalCodes") or []):
        user_id = item.get("userId") if isinstance(item, dict) else None
        user_ok = (type(user_id) is int) or (isinstance(user_id, str) and user_id.isdigit())
        if not isinstance(item, dict) or not user_ok or not isinstance(item.get("code"), str):
            errors[f"{prefix}.additionalCodes[{index}]"] = "Expected {userId, code}."
    for index, item in enumerate(telephony.get("externalPhones") or []):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("siteCode", "externalPhone")
        ):
            errors[f"{prefix}.externalPhones[{index}]"] = "Expected {siteCode, externalPhone}."
    for name in ("makeCallUrl", "changeUserStatusUrl"):
        if name in telephony and not is_http_url(telephony[name]):
            errors[f"{prefix}.{name}"] = "This value is not a valid URL."
    return errors


# -- telephony --------------------------------------------------------------------------------


@_route("POST", "/api/v5/telephony/calls/upload", "telephony_write")
def _calls_upload(state: CrmState, req: ApiRequest) -> Reply:
    _require_telephony(state, req, NO_TELEPHONY)
    calls = _json_param(req, "calls")
    errors = validate_calls(calls)
    if errors or not isinstance(calls, list):
        raise ApiError(400, ENTITY_ERRORS, errors)
    allowed = state.keys_sites(req.key)
    for index, call in enumerate(calls):
        if call.get("site") is not None and call["site"] not in allowed:
            errors[f"calls[{index}].site"] = "Site does not exist or is not allowed."
    if errors:
        raise ApiError(400, ENTITY_ERRORS, errors)
    processed, duplicates = state.store_calls(calls)
    return 200, {"success": True, "processedCallsCount": processed, "duplicateCalls": duplicates}


@_route("POST", "/api/v5/telephony/call/event", "telephony_write")
def _call_event(state: CrmState, req: ApiRequest) -> Reply:
    module = _require_telephony(state, req, "Telephony not enabled")
    event = _json_object(req, "event")
    errors = _event_problems(event)
    if errors:
        raise ApiError(400, ENTITY_ERRORS, errors)
    known = {c.get("code") for c in _additional_codes(module)}
    state.store_event(event)
    return 200, {
        "success": True,
        "notExistCodes": [c for c in event.get("codes") or [] if c not in known],
        "notExistUsers": state.unknown_user_ids(event.get("userIds") or []),
    }


def _event_problems(event: JsonDict) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(event.get("phone"), str) or not event["phone"]:
        errors["phone"] = "This value should not be blank."
    if event.get("type") not in EVENT_TYPES:
        errors["type"] = "The value you selected is not a valid choice."
    if "hangupStatus" in event and event["hangupStatus"] not in HANGUP_STATUSES:
        errors["hangupStatus"] = "The value you selected is not a valid choice."
    codes, user_ids = event.get("codes", []), event.get("userIds", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        errors["codes"] = "This value should be a list of strings."
    if not isinstance(user_ids, list) or not all(type(u) is int for u in user_ids):
        errors["userIds"] = "This value should be a list of integers."
    return errors


@_route("GET", "/api/v5/telephony/manager", "telephony_read")
def _manager(state: CrmState, req: ApiRequest) -> Reply:
    phone = req.params.get("phone")
    if not isinstance(phone, str) or not phone:
        raise ApiError(400, "Parameter 'phone' is missing")
    details = _flag(req, "details")
    ignore_status = _flag(req, "ignoreStatus")
    query = digits(phone)
    customer = next(
        (
            c
            for c in state.customers_list(state.keys_sites(req.key))
            if any(phones_match(query, str(p.get("number") or "")) for p in c["phones"])
        ),
        None,
    )
    body: JsonDict = {"success": True}
    user = state.user(customer["managerId"]) if customer and "managerId" in customer else None
    if user is not None and not ignore_status and user.get("status") != "free":
        user = None  # "the manager is returned only when their status allows taking the call"
    if user is not None:
        module = state.telephony_module(req.key)
        code = next(
            (
                c.get("code")
                for c in _additional_codes(module)
                if str(c.get("userId")) == str(user["id"])
            ),
            None,
        )
        body["manager"] = {
            k: user.get(k) for k in ("id", "firstName", "lastName", "patronymic", "email")
        } | {"code": code}
    if details:
        base, number = req.base_url, quote(phone)
        links = {
            "newOrderLink": f"{base}/orders/add?phone={number}",
            "newCustomerLink": f"{base}/customers/add?phone={number}",
        }
        if customer is not None:
            body["customer"] = {
                k: customer[k]
                for k in ("id", "externalId", "firstName", "lastName", "patronymic", "email")
                if k in customer
            } | {"phones": customer["phones"]}
            links["customerLink"] = f"{base}/customers/{customer['id']}"
        body["links"] = links
    return 200, body


# -- customers --------------------------------------------------------------------------------


@_route("GET", "/api/v5/customers", "customer_read")
def _customers(state: CrmState, req: ApiRequest) -> Reply:
    flt = _filter(req)
    sites = state.keys_sites(req.key)
    name = flt.get("name")
    items = state.find_customers(str(name), sites) if name else state.customers_list(sites)
    if "ids" in flt:
        ids = {_int(i, "filter[ids]") for i in _as_list(flt["ids"])}
        items = [c for c in items if c["id"] in ids]
    if "externalIds" in flt:
        external = set(_as_list(flt["externalIds"]))
        items = [c for c in items if c.get("externalId") in external]
    if "sites" in flt:
        wanted = set(_as_list(flt["sites"]))
        items = [c for c in items if c["site"] in wanted]
    if "email" in flt:
        items = [c for c in items if c.get("email") == flt["email"]]
    page, pagination = _paginate(req, items)
    return 200, {"success": True, "pagination": pagination, "customers": page}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


@_route("GET", "/api/v5/customers/history", "customer_read")
def _customers_history(state: CrmState, req: ApiRequest) -> Reply:
    flt = _filter(req)
    since = _int(flt["sinceId"], "filter[sinceId]") if "sinceId" in flt else 0
    for name in ("startDate", "endDate"):
        if name in flt and not is_datetime(flt[name]):
            raise ApiError(400, INPUT_ERRORS, {f"filter[{name}]": "Expected Y-m-d H:i:s."})
    entries = []
    for entry, key_label in state.history_since(since):
        if ("startDate" in flt and entry["createdAt"] < flt["startDate"]) or (
            "endDate" in flt and entry["createdAt"] > flt["endDate"]
        ):
            continue
        if "customerId" in flt and str(entry["customer"]["id"]) != flt["customerId"]:
            continue
        entries.append(entry | {"apiKey": {"current": key_label == req.key.label}})
    return _history_page(req, entries)


@_route("POST", "/api/v5/customers/create", "customer_write")
def _customer_create(state: CrmState, req: ApiRequest) -> Reply:
    customer = _json_object(req, "customer")
    site = _site(state, req, customer.get("site"))
    errors = _phones_problems(customer)
    external_id = customer.get("externalId")
    if external_id is not None and state.customer_by_external_id(str(external_id)):
        errors["externalId"] = "Customer with this externalId already exists."
    if errors:
        raise ApiError(400, ENTITY_ERRORS, errors)
    return 201, {
        "success": True,
        "id": state.create_customer(customer, site, key_label=req.key.label),
    }


def _find_customer(state: CrmState, req: ApiRequest) -> JsonDict:
    by = req.params.get("by", "externalId")
    if by not in ("id", "externalId"):
        raise ApiError(400, INPUT_ERRORS, {"by": "The value you selected is not a valid choice."})
    ident = req.groups[0]
    if by == "id":
        customer = state.customer(int(ident)) if ident.isdigit() else None
    else:
        customer = state.customer_by_external_id(ident)
    site = req.params.get("site")
    if (
        customer is None
        or customer["site"] not in state.keys_sites(req.key)
        or (site and customer["site"] != site)
    ):
        raise ApiError(404, NOT_FOUND)
    return customer


@_route("GET", "/api/v5/customers/{id}", "customer_read")
def _customer_get(state: CrmState, req: ApiRequest) -> Reply:
    return 200, {"success": True, "customer": _find_customer(state, req)}


@_route("POST", "/api/v5/customers/{id}/edit", "customer_write")
def _customer_edit(state: CrmState, req: ApiRequest) -> Reply:
    customer = _find_customer(state, req)
    data = _json_object(req, "customer")
    errors = _phones_problems(data)
    if errors:
        raise ApiError(400, ENTITY_ERRORS, errors)
    state.edit_customer(customer["id"], data, key_label=req.key.label)
    return 200, {"success": True, "id": customer["id"]}


# -- orders, users, shops ---------------------------------------------------------------------


@_route("GET", "/api/v5/orders", "order_read")
def _orders(state: CrmState, req: ApiRequest) -> Reply:
    flt = _filter(req)
    customer_id = _int(flt["customerId"], "filter[customerId]") if "customerId" in flt else None
    for name in ("createdAtFrom", "createdAtTo"):
        if name in flt and not is_date(flt[name]):
            raise ApiError(400, INPUT_ERRORS, {f"filter[{name}]": "Expected Y-m-d."})
    items = state.orders_list(
        customer_id,
        state.keys_sites(req.key),
        created_from=flt.get("createdAtFrom"),
        created_to=flt.get("createdAtTo"),
    )
    if "ids" in flt:
        ids = {_int(i, "filter[ids]") for i in _as_list(flt["ids"])}
        items = [o for o in items if o["id"] in ids]
    if "sites" in flt:
        wanted = set(_as_list(flt["sites"]))
        items = [o for o in items if o["site"] in wanted]
    page, pagination = _paginate(req, items)
    return 200, {"success": True, "pagination": pagination, "orders": page}


@_route("GET", "/api/v5/orders/history", "order_read")
def _orders_history(state: CrmState, req: ApiRequest) -> Reply:
    flt = _filter(req)
    since = _int(flt["sinceId"], "filter[sinceId]") if "sinceId" in flt else 0
    for name in ("startDate", "endDate"):
        if name in flt and not is_datetime(flt[name]):
            raise ApiError(400, INPUT_ERRORS, {f"filter[{name}]": "Expected Y-m-d H:i:s."})
    order_id = _int(flt["orderId"], "filter[orderId]") if "orderId" in flt else None
    entries = [
        e
        for e in state.order_history_since(since, state.keys_sites(req.key))
        if ("startDate" not in flt or e["createdAt"] >= flt["startDate"])
        and ("endDate" not in flt or e["createdAt"] <= flt["endDate"])
        and (order_id is None or e["order"].get("id") == order_id)
    ]
    return _history_page(req, entries)


@_route("GET", "/api/v5/reference/statuses", "reference_read")
def _statuses(state: CrmState, req: ApiRequest) -> Reply:
    return 200, {"success": True, "statuses": statuses_reference()}


@_route("POST", "/api/v5/orders/create", "order_write")
def _order_create(state: CrmState, req: ApiRequest) -> Reply:
    order = _json_object(req, "order")
    site = _site(state, req, order.get("site"))
    ref = order.get("customer")
    if ref is not None and (not isinstance(ref, dict) or state.customer(ref.get("id", 0)) is None):
        raise ApiError(400, "Order is not loaded", {"customer": "Customer not found."})
    status = order.get("status", "new")
    if status not in STATUSES:
        raise ApiError(400, "Order is not loaded", {"status": f"Status '{status}' does not exist."})
    created = state.create_order(order, site)
    return 201, {"success": True, "id": created["id"], "order": created}


@_route("GET", "/api/v5/users", "user_read")
def _users(state: CrmState, req: ApiRequest) -> Reply:
    page, pagination = _paginate(req, state.users())
    return 200, {"success": True, "pagination": pagination, "users": page}


@_route("GET", "/api/v5/users/{id}", "user_read")
def _user(state: CrmState, req: ApiRequest) -> Reply:
    ident = req.groups[0]
    user = state.user(int(ident)) if ident.isdigit() else None
    if user is None:
        raise ApiError(404, NOT_FOUND)
    return 200, {"success": True, "user": user}


@_route("GET", "/api/v5/reference/sites", "reference_read")
def _sites(state: CrmState, req: ApiRequest) -> Reply:
    return 200, {"success": True, "sites": state.sites() or []}
