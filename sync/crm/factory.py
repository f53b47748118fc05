"""The one place RetailCRM clients are made from settings: one-off commands and the daemon."""

from __future__ import annotations

from sync.config import Settings, TenantSettings
from sync.crm.client import RetailCRMClient

ONE_OFF_TIMEOUT = 10.0
"""Budget of a one-off command's request: a dead CRM is reported in seconds."""


def one_off_client(
    settings: Settings, tenant: TenantSettings, *, budget: float = ONE_OFF_TIMEOUT
) -> RetailCRMClient:
    """A client for commands (``check``, ``register``, the demo, ``serve``'s callbacks)."""
    return RetailCRMClient(
        tenant.url,
        tenant.api_key.reveal(),
        tenant=tenant.name,
        connect_timeout=min(settings.sync.connect_timeout, budget),
        read_timeout=min(settings.sync.read_timeout, budget),
        site=tenant.site,
        budget_seconds=budget,
    )


def daemon_client(settings: Settings, tenant: TenantSettings) -> RetailCRMClient:
    """A client for the sync cycles: the tenant's rate limit and a pool per upload in flight."""
    return RetailCRMClient(
        tenant.url,
        tenant.api_key.reveal(),
        tenant=tenant.name,
        telephony_rps=tenant.rate_limit,
        connect_timeout=settings.sync.connect_timeout,
        read_timeout=settings.sync.read_timeout,
        pool_size=settings.sync.max_in_flight,
        site=tenant.site,
    )
