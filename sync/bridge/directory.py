"""Which tenant a callback is for: clientId and token lookups in constant time, flags cached.

RetailCRM identifies the account by the clientId ``register`` generated; the dialplan and the
CRM's triggers by the per-tenant token. Both live in our database. Every lookup compares the
given value with every tenant's value by ``hmac.compare_digest`` (no early exit on the first
match either), so response time says nothing about how close a guess was.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass

from sync.config import Settings, TenantSettings
from sync.engine.store import Store
from sync.logs import redactor

RELOAD_SECONDS = 5.0
"""A newly registered tenant is found within this long (or at once on a miss, once a second)."""


@dataclass(frozen=True, slots=True)
class LiveTenant:
    settings: TenantSettings
    client_id: str
    token: str
    active: bool
    frozen: bool

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def enabled(self) -> bool:
        return self.active and not self.frozen


def _same(given: str, stored: str) -> bool:
    return bool(stored) and hmac.compare_digest(given.encode(), stored.encode())


class TenantDirectory:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._tenants: list[LiveTenant] = []
        self._loaded_at = float("-inf")
        self._missed_at = float("-inf")
        self._lock = threading.Lock()

    def load(self) -> list[LiveTenant]:
        """Every tenant's clientId, token and flags in one statement (thousands of tenants
        must not cost a query each every few seconds)."""
        tenants = []
        states = self.store.tenant_states()
        for tenant in self.settings.tenants:
            state = states.get(tenant.name)
            if state is None:
                continue
            tenants.append(
                LiveTenant(
                    settings=tenant,
                    client_id=state.client_id or "",
                    token=state.trigger_token or "",
                    active=state.crm_active,
                    frozen=state.crm_frozen,
                )
            )
        with self._lock:
            self._tenants = tenants
            self._loaded_at = time.monotonic()
        # clientIds and tokens are secrets too: the log redactor learns them as they appear.
        known = [*self.settings.secrets()]
        known += [v for t in tenants for v in (t.client_id, t.token) if v]
        if set(known) - set(redactor.secrets):
            redactor.set([*redactor.secrets, *known])
        return tenants

    def _current(self) -> list[LiveTenant]:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            return self.load()
        return self._tenants

    def _find(self, given: str, field: str) -> LiveTenant | None:
        found = None
        for tenant in self._current():
            if _same(given, getattr(tenant, field)) and found is None:
                found = tenant
        if found is None and time.monotonic() - self._missed_at > 1.0:
            self._missed_at = time.monotonic()
            for tenant in self.load():
                if _same(given, getattr(tenant, field)) and found is None:
                    found = tenant
        return found

    def cached_by_client_id(self, client_id: str) -> LiveTenant | None:
        """From memory only, never the database (``serve`` reloads it in the background every
        ``RELOAD_SECONDS``): None when unknown, then ``by_client_id`` in a thread decides."""
        if not client_id:
            return None
        found = None
        for tenant in self._tenants:
            if _same(client_id, tenant.client_id) and found is None:
                found = tenant
        return found

    def cached_by_name(self, name: str) -> LiveTenant | None:
        """The tenant's flags from memory (pop-ups ask once per event, on the loop)."""
        return next((t for t in self._tenants if t.name == name), None)

    def by_client_id(self, client_id: str) -> LiveTenant | None:
        """Blocking (may read the database): call from a worker thread."""
        return self._find(client_id, "client_id") if client_id else None

    def by_token(self, token: str) -> LiveTenant | None:
        return self._find(token, "token") if token else None

    def names(self) -> list[str]:
        return [t.name for t in self.settings.tenants]
