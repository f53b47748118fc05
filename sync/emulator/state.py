"""The emulated account: keys, shops, users, customers and their history, modules, calls.

One re-entrant lock guards everything; the HTTP handlers and the Python handle (tests, demo)
both go through it, and no method holds it while sleeping or doing I/O. Calls are kept in a
list (upload order) plus a dict by ``externalId``, so dedup stays O(1) per call however many
were uploaded.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sync.emulator.orders import STATUSES, created_between, history_entry
from sync.emulator.validation import DATETIME_FORMAT

JsonDict = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")

ALL_SCOPES: tuple[str, ...] = (
    "order_read",
    "order_write",
    "customer_read",
    "customer_write",
    "store_read",
    "store_write",
    "reference_read",
    "reference_write",
    "analytics_write",
    "telephony_read",
    "telephony_write",
    "delivery_read",
    "delivery_write",
    "user_read",
    "user_write",
    "segment_read",
    "custom_fields_read",
    "custom_fields_write",
    "task_read",
    "task_write",
    "integration_read",
    "integration_write",
    "cost_read",
    "cost_write",
    "payments_read",
    "payments_write",
    "file_read",
    "file_write",
    "loyalty_read",
    "loyalty_write",
    "verification_read",
    "verification_write",
)
MIN_PHONE_DIGITS = 7
_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class KeyConfig:
    """A configured API key, known to tests only by its ``label``."""

    label: str
    scopes: frozenset[str]
    site_access: str
    """``access_full`` (every shop) or ``access_selective`` (``sites`` only)."""
    sites: tuple[str, ...]


@dataclass(frozen=True)
class _HistoryRecord:
    entry: JsonDict
    key_label: str | None
    """Which key made the change (``None``: an operator in the CRM's UI)."""


@dataclass
class _Module:
    module: JsonDict
    owner: str
    """Label of the key that registered it: telephony methods use the caller's module."""


def _locked(
    method: Callable[Concatenate[CrmState, P], R],
) -> Callable[Concatenate[CrmState, P], R]:
    """Run the method under the state's re-entrant lock."""

    @functools.wraps(method)
    def locked(self: CrmState, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


def now_text() -> str:
    return datetime.now().strftime(DATETIME_FORMAT)


def digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def phones_match(query_digits: str, number: str) -> bool:
    """Digit-only forms match when one ends with the other and the shorter has 7+ digits.

    The real matching rules are undocumented (Q9); this accepts ``+375291234567``,
    ``80291234567`` and ``291234567`` for one number while keeping short fragments apart.
    """
    stored = digits(number)
    shorter, longer = sorted((query_digits, stored), key=len)
    return len(shorter) >= MIN_PHONE_DIGITS and longer.endswith(shorter)


class CrmState:
    """Data of one emulated RetailCRM account, and the operations tests perform on it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.require_module = True
        """Telephony uploads and events need an active module registered by the caller's key."""
        self._keys: dict[str, KeyConfig] = {}
        self._default_key: str | None = None
        self._sites: dict[str, JsonDict] = {}
        self._users: dict[int, JsonDict] = {}
        self._customers: dict[int, JsonDict] = {}
        self._history: list[_HistoryRecord] = []
        self._modules: dict[str, _Module] = {}
        self._calls: list[JsonDict] = []
        self._calls_by_id: dict[str, JsonDict] = {}
        self._events: list[JsonDict] = []
        self._event_times: list[float] = []
        self._orders: dict[int, JsonDict] = {}
        self._order_history: list[JsonDict] = []
        self._customer_ids = itertools.count(1)
        self._order_ids = itertools.count(1)

    # -- configuration ---------------------------------------------------------------------

    def add_key(
        self,
        key: str,
        scopes: Iterable[str] = ALL_SCOPES,
        site_access: str = "access_full",
        sites: Iterable[str] = ("shop",),
        *,
        label: str | None = None,
    ) -> str:
        """Accept ``key``; returns the label that recorded requests show instead of it."""
        if site_access not in ("access_full", "access_selective"):
            raise ValueError("site_access must be access_full or access_selective")
        with self.lock:
            label = label or f"key{len(self._keys) + 1}"
            self._keys[key] = KeyConfig(label, frozenset(scopes), site_access, tuple(sites))
            if self._default_key is None:
                self._default_key = key
            return label

    def key_config(self, key: str) -> KeyConfig | None:
        with self.lock:
            return self._keys.get(key)

    def add_site(self, code: str, name: str) -> None:
        with self.lock:
            self._sites[code] = {
                "id": len(self._sites) + 1,
                "code": code,
                "name": name,
                "url": f"https://{code}.example.com",
                "defaultForCrm": not self._sites,
                "countryIso": "BY",
                "currency": "BYN",
            }

    def add_user(
        self,
        id: int,
        first_name: str = "Manager",
        active: bool = True,
        *,
        last_name: str = "",
        email: str | None = None,
    ) -> None:
        with self.lock:
            self._users[id] = {
                "id": id,
                "createdAt": now_text(),
                "active": active,
                "email": email or f"user{id}@example.com",
                "firstName": first_name,
                "lastName": last_name,
                "status": "free",
                "online": active,
                "isAdmin": False,
                "isManager": True,
                "groups": [],
            }

    def register_module(
        self,
        code: str = "asterisk",
        key: str | None = None,
        additional_codes: Mapping[str, int] | None = None,
    ) -> None:
        """An active telephony module for ``key`` (default: the first key), as ``register``."""
        with self.lock:
            owner = self._keys[key or self._require_default_key()].label
            codes = [{"userId": u, "code": c} for c, u in (additional_codes or {}).items()]
            module = {
                "code": code,
                "integrationCode": code,
                "active": True,
                "name": "Asterisk",
                "logo": "https://pbx.example.com/logo.svg",
                "clientId": "emulator",
                "integrations": {
                    "telephony": {
                        "allowEdit": False,
                        "inputEventSupported": False,
                        "outputEventSupported": False,
                        "hangupEventSupported": False,
                        "additionalCodes": codes,
                        "externalPhones": [],
                    }
                },
            }
            self._modules[code] = _Module(module, owner)

    def _require_default_key(self) -> str:
        if self._default_key is None:
            raise ValueError("no API key configured")
        return self._default_key

    # -- operator actions (history entries with apiKey.current false) ------------------------

    def add_customer(
        self,
        first_name: str,
        phones: Iterable[str],
        site: str = "shop",
        *,
        external_id: str | None = None,
        manager_id: int | None = None,
    ) -> int:
        data: JsonDict = {"firstName": first_name, "phones": [{"number": p} for p in phones]}
        if external_id is not None:
            data["externalId"] = external_id
        if manager_id is not None:
            data["managerId"] = manager_id
        with self.lock:
            return self.create_customer(data, site, key_label=None)

    def edit_customer_phones(
        self, id: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        removed = set(remove)
        with self.lock:
            customer = self._customers[id]
            numbers = [p["number"] for p in customer["phones"] if p["number"] not in removed]
            numbers += [n for n in add if n not in numbers]
            self.edit_customer(id, {"phones": [{"number": n} for n in numbers]}, key_label=None)

    def delete_customer(self, id: int) -> None:
        with self.lock:
            customer = self._customers.pop(id)
            self._add_history(customer, None, deleted=True, field="id", oldValue=id)

    def merge_customers(self, source_id: int, into_id: int) -> None:
        """Combine like the CRM's merge: numbers move to ``into``, the source is deleted.

        The deleted source's entry carries ``combinedTo: {id: into}`` (spec §7.5).
        """
        with self.lock:
            source, target = self._customers[source_id], self._customers[into_id]
            have = [p["number"] for p in target["phones"]]
            moved = [p["number"] for p in source["phones"] if p["number"] not in have]
            if moved:
                phones = [{"number": n} for n in have + moved]
                self.edit_customer(into_id, {"phones": phones}, key_label=None)
            del self._customers[source_id]
            self._add_history(
                source,
                None,
                deleted=True,
                field="id",
                oldValue=source_id,
                combinedTo={"id": into_id},
            )

    # -- introspection -----------------------------------------------------------------------

    @property
    def calls(self) -> list[JsonDict]:
        """Stored calls in upload order (duplicates are not stored)."""
        with self.lock:
            return list(self._calls)

    def call(self, external_id: str) -> JsonDict | None:
        with self.lock:
            return self._calls_by_id.get(external_id)

    @property
    def customers(self) -> dict[int, JsonDict]:
        with self.lock:
            return copy.deepcopy(self._customers)

    @property
    def history(self) -> list[JsonDict]:
        with self.lock:
            return [copy.deepcopy(r.entry) for r in self._history]

    @property
    def modules(self) -> dict[str, JsonDict]:
        with self.lock:
            return {code: copy.deepcopy(m.module) for code, m in self._modules.items()}

    @property
    def events(self) -> list[JsonDict]:
        with self.lock:
            return list(self._events)

    @property
    def event_times(self) -> list[float]:
        """``time.perf_counter()`` at which each of ``events`` was stored (benchmarks)."""
        with self.lock:
            return list(self._event_times)

    @property
    def orders(self) -> dict[int, JsonDict]:
        with self.lock:
            return copy.deepcopy(self._orders)

    # -- operations behind the API (a request holds the lock throughout; so may tests) --------

    @_locked
    def keys_sites(self, key: KeyConfig) -> tuple[str, ...]:
        if key.site_access == "access_full":
            return tuple(self._sites)
        return tuple(s for s in key.sites if s in self._sites)

    @_locked
    def site_exists(self, code: str) -> bool:
        return code in self._sites

    @_locked
    def sites(self) -> dict[str, JsonDict]:
        return copy.deepcopy(self._sites)

    @_locked
    def users(self) -> list[JsonDict]:
        return [copy.deepcopy(self._users[i]) for i in sorted(self._users)]

    @_locked
    def user(self, id: int) -> JsonDict | None:
        user = self._users.get(id)
        return copy.deepcopy(user) if user else None

    @_locked
    def module(self, code: str) -> JsonDict | None:
        record = self._modules.get(code)
        return copy.deepcopy(record.module) if record else None

    @_locked
    def put_module(self, code: str, module: JsonDict, owner: str) -> bool:
        """Store ``module`` as sent (replace, not merge); True when it was created."""
        created = code not in self._modules
        self._modules[code] = _Module(copy.deepcopy(module), owner)
        return created

    @_locked
    def set_user_status(self, id: int, status: str) -> None:
        """The user picks a status in the CRM (free, busy, dinner, break)."""
        self._users[id]["status"] = status

    @_locked
    def set_module_flags(self, code: str, active: bool, freeze: bool) -> None:
        """The account owner (de)activates the module, or billing freezes it."""
        record = self._modules[code]
        record.module["active"], record.module["freeze"] = active, freeze

    @_locked
    def unknown_user_ids(self, ids: Iterable[int]) -> list[int]:
        return [i for i in ids if i not in self._users]

    @_locked
    def telephony_module(self, key: KeyConfig) -> JsonDict | None:
        """The caller's active, unfrozen telephony module."""
        for record in self._modules.values():
            module = record.module
            integrations = module.get("integrations")
            if (
                record.owner == key.label
                and module.get("active") is True
                and not module.get("freeze")
                and isinstance(integrations, dict)
                and isinstance(integrations.get("telephony"), dict)
            ):
                return module
        return None

    @_locked
    def store_calls(self, calls: list[JsonDict]) -> tuple[int, list[str]]:
        """Store new calls; known ``externalId`` values (also repeats in the batch) are skipped."""
        processed, duplicates = 0, []
        for call in calls:
            external_id = call.get("externalId")
            if external_id is not None and external_id in self._calls_by_id:
                duplicates.append(external_id)
                continue
            stored = copy.deepcopy(call)
            self._calls.append(stored)
            if external_id is not None:
                self._calls_by_id[external_id] = stored
            processed += 1
        return processed, duplicates

    @_locked
    def store_event(self, event: JsonDict) -> None:
        self._events.append(copy.deepcopy(event))
        self._event_times.append(time.perf_counter())

    @_locked
    def customer(self, id: int) -> JsonDict | None:
        customer = self._customers.get(id)
        return copy.deepcopy(customer) if customer else None

    @_locked
    def customer_by_external_id(self, external_id: str) -> JsonDict | None:
        for customer in self._customers.values():
            if customer.get("externalId") == external_id:
                return copy.deepcopy(customer)
        return None

    @_locked
    def customers_list(self, sites: Iterable[str]) -> list[JsonDict]:
        visible = set(sites)
        return [
            copy.deepcopy(c) for i, c in sorted(self._customers.items()) if c["site"] in visible
        ]

    @_locked
    def create_customer(self, data: JsonDict, site: str, *, key_label: str | None) -> int:
        id = next(self._customer_ids)
        customer: JsonDict = {
            "type": "customer",
            **copy.deepcopy(data),
            "id": id,
            "site": site,
            "createdAt": now_text(),
        }
        customer.setdefault("phones", [])
        self._customers[id] = customer
        self._add_history(customer, key_label, created=True, field="id", newValue=id)
        return id

    @_locked
    def edit_customer(self, id: int, data: JsonDict, *, key_label: str | None) -> None:
        """Apply ``data``; each number added or removed is one ``phones`` history entry."""
        customer = self._customers[id]
        old = [p.get("number") for p in customer["phones"]]
        customer.update(copy.deepcopy({k: v for k, v in data.items() if k not in ("id", "site")}))
        new = [p.get("number") for p in customer["phones"]]
        for number in old:
            if number not in new:
                self._add_history(
                    customer, key_label, field="phones", oldValue=number, newValue=None
                )
        for number in new:
            if number not in old:
                self._add_history(
                    customer, key_label, field="phones", oldValue=None, newValue=number
                )

    @_locked
    def history_since(self, since_id: int) -> list[tuple[JsonDict, str | None]]:
        """Entries with an id above ``since_id``; ids are 1, 2, 3..., so this is a slice."""
        return [(r.entry, r.key_label) for r in self._history[max(since_id, 0) :]]

    @_locked
    def find_customers(self, query: str, sites: Iterable[str]) -> list[JsonDict]:
        """``filter[name]``: a name substring, or a phone number (see ``phones_match``)."""
        text, query_digits = query.strip().lower(), digits(query)
        found = []
        for customer in self.customers_list(sites):
            name = " ".join(
                str(customer.get(k) or "") for k in ("firstName", "lastName", "patronymic")
            )
            numbers = [str(p.get("number") or "") for p in customer["phones"]]
            if (text and text in name.lower()) or any(
                phones_match(query_digits, n) for n in numbers
            ):
                found.append(customer)
        return found

    @_locked
    def create_order(self, data: JsonDict, site: str, *, by_api: bool = True) -> JsonDict:
        """Store an order; ``createdAt`` is now unless given (operator orders typed in later)."""
        id = next(self._order_ids)
        items = data.get("items") or []
        total = sum(
            float(i.get("initialPrice", 0)) * float(i.get("quantity", 1))
            for i in items
            if isinstance(i, dict)
        )
        order: JsonDict = {
            "status": "new",
            "currency": "BYN",
            "totalSumm": total,
            **copy.deepcopy(data),
            "id": id,
            "number": f"{id}A",
            "site": site,
            "createdAt": data.get("createdAt") or now_text(),
        }
        self._orders[id] = order
        self._order_changed(order, by_api=by_api, created=True, field="id", newValue=id)
        return copy.deepcopy(order)

    def add_order(
        self,
        customer_id: int,
        *,
        created_at: str | None = None,
        status: str = "new",
        total: float = 0.0,
        manager_id: int | None = None,
        site: str = "shop",
    ) -> int:
        """An operator's order (history entries with ``source: user``) for tests and the demo."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        data: JsonDict = {"customer": {"id": customer_id}, "status": status, "totalSumm": total}
        if created_at is not None:
            data["createdAt"] = created_at
        if manager_id is not None:
            data["managerId"] = manager_id
        with self.lock:
            return int(self.create_order(data, site, by_api=False)["id"])

    def set_order_status(self, id: int, status: str) -> None:
        """An operator moves an order to another status (one ``status`` history entry)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.lock:
            order = self._orders[id]
            old, order["status"] = order["status"], status
            self._order_changed(
                order,
                by_api=False,
                field="status",
                oldValue={"code": old},
                newValue={"code": status},
            )

    @_locked
    def orders_list(
        self,
        customer_id: int | None,
        sites: Iterable[str],
        *,
        created_from: str | None = None,
        created_to: str | None = None,
    ) -> list[JsonDict]:
        visible = set(sites)
        return [
            copy.deepcopy(o)
            for _, o in sorted(self._orders.items())
            if o["site"] in visible
            and (customer_id is None or (o.get("customer") or {}).get("id") == customer_id)
            and created_between(o, created_from, created_to)
        ]

    @_locked
    def order_history_since(self, since_id: int, sites: Iterable[str]) -> list[JsonDict]:
        """Entries with an id above ``since_id`` of the shops the key may see."""
        visible = set(sites)
        return [
            copy.deepcopy(e)
            for e in self._order_history[max(since_id, 0) :]
            if e["order"].get("site") in visible
        ]

    def _order_changed(self, order: JsonDict, *, by_api: bool, **fields: Any) -> None:
        entry_id = len(self._order_history) + 1
        entry = history_entry(entry_id, order, datetime.now(), by_api=by_api, **fields)
        self._order_history.append(entry)

    def _add_history(self, customer: JsonDict, key_label: str | None, **fields: Any) -> None:
        whole = fields.get("created") or fields.get("deleted")
        ref = {k: customer[k] for k in ("id", "externalId", "site") if k in customer}
        entry: JsonDict = {
            "id": len(self._history) + 1,
            "createdAt": now_text(),
            "source": "api" if key_label else "user",
            **fields,
            "customer": copy.deepcopy(customer) if whole else ref,
        }
        self._history.append(_HistoryRecord(entry, key_label))
