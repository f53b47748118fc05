"""CRM clients made on demand and kept in a small LRU, so open HTTP pools follow the workers.

A client is built the first time a tenant needs one and closed when it falls out of the cache
(at most ``size`` idle ones are kept; a client in use is never closed under its user). Rate
limits live in ``sync.crm.ratelimit``'s process-wide registry, keyed by (account, key), so a
client built again starts with the same buckets: evicting one loses no rate state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sync.config import TenantSettings
from sync.crm import RetailCRMClient

Factory = Callable[[TenantSettings], RetailCRMClient]


def signature(tenant: TenantSettings) -> tuple[object, ...]:
    """What a client is built from: a tenant whose signature changed (reload) gets a new one."""
    return (tenant.url, tenant.api_key.reveal(), tenant.rate_limit, tenant.site, tenant.name)


@dataclass
class _Entry:
    client: RetailCRMClient
    signature: tuple[object, ...]
    users: int = 0
    stale: bool = False


class ClientCache:
    def __init__(self, factory: Factory, size: int) -> None:
        self._factory = factory
        self._size = max(1, size)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.created = 0
        """Clients built so far (tests, bench)."""

    @contextmanager
    def use(self, tenant: TenantSettings) -> Iterator[RetailCRMClient]:
        entry = self._acquire(tenant)
        try:
            yield entry.client
        finally:
            self._release(entry)

    def _acquire(self, tenant: TenantSettings) -> _Entry:
        wanted = signature(tenant)
        doomed: list[RetailCRMClient] = []
        with self._lock:
            entry = self._entries.get(tenant.name)
            if entry is not None and entry.signature != wanted:
                self._drop(tenant.name, doomed)
                entry = None
            if entry is None:
                entry = _Entry(self._factory(tenant), wanted)
                self.created += 1
                self._entries[tenant.name] = entry
            self._entries.move_to_end(tenant.name)
            entry.users += 1
            self._evict(doomed)
        _close(doomed)
        return entry

    def _release(self, entry: _Entry) -> None:
        doomed: list[RetailCRMClient] = []
        with self._lock:
            entry.users -= 1
            if entry.stale and entry.users == 0:
                doomed.append(entry.client)
            self._evict(doomed)
        _close(doomed)

    def _drop(self, name: str, doomed: list[RetailCRMClient]) -> None:
        entry = self._entries.pop(name)
        if entry.users:
            entry.stale = True  # its last user closes it
        else:
            doomed.append(entry.client)

    def _evict(self, doomed: list[RetailCRMClient]) -> None:
        """Close the least recently used idle clients beyond ``size``."""
        extra = len(self._entries) - self._size
        for name in [n for n, e in self._entries.items() if not e.users][: max(0, extra)]:
            self._drop(name, doomed)

    def retain(self, names: set[str]) -> None:
        """Close the clients of tenants no longer configured (after a reload)."""
        doomed: list[RetailCRMClient] = []
        with self._lock:
            for name in [n for n in self._entries if n not in names]:
                self._drop(name, doomed)
        _close(doomed)

    def open_count(self) -> int:
        with self._lock:
            return len(self._entries)

    def close(self) -> None:
        with self._lock:
            doomed = [e.client for e in self._entries.values()]
            self._entries.clear()
        _close(doomed)


def _close(clients: list[RetailCRMClient]) -> None:
    for client in clients:
        client.close()
