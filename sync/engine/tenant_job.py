"""What every per-tenant job (a sync cycle, the customer map, the orders mirror) works with."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sync.config import Settings, TenantSettings
from sync.crm import RetailCRMClient
from sync.engine.store import Store
from sync.timeutil import Clock, utcnow


@dataclass
class TenantJob:
    """One tenant's settings, our store, its CRM client, the process's stop flag and a clock
    (time is an input: tests move it instead of waiting)."""

    settings: Settings
    tenant: TenantSettings
    store: Store
    client: RetailCRMClient
    stop: threading.Event = field(default_factory=threading.Event, kw_only=True)
    clock: Clock = field(default=utcnow, kw_only=True)
