"""Prometheus metrics of ``serve`` (names fixed by design §6.5), in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sync.engine.store import Store
from sync.timeutil import utcnow

STATUSES = ("pending", "sending", "sent", "failed", "dead", "skipped")


class _SyncState(Collector):
    """Per tenant calls by status and lag, read from our tables at scrape time."""

    def __init__(self, store: Store, names: Callable[[], list[str]]) -> None:
        self.store = store
        self.names = names

    def collect(self) -> Iterator[Any]:
        calls = GaugeMetricFamily(
            "retailcrm_sync_calls", "Calls in our sync table by status", labels=["tenant", "status"]
        )
        lag = GaugeMetricFamily(
            "retailcrm_sync_lag_seconds",
            "Age of the oldest call not yet in the CRM",
            labels=["tenant"],
        )
        try:
            counts = self.store.status_counts()
            now = utcnow()
            for name in self.names():
                row = counts.get(name, {})
                for status in STATUSES:
                    calls.add_metric([name, status], float(row.get(status, 0)))
                oldest = self.store.oldest_unsent(name)
                age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
                lag.add_metric([name], age)
        except Exception as exc:  # a database hiccup must not break the scrape of live metrics
            logger.warning(f"metrics: sync state unavailable: {type(exc).__name__}")
        yield calls
        yield lag


class Metrics:
    def __init__(self, store: Store | None = None, names: Callable[[], list[str]] | None = None):
        self.registry = CollectorRegistry()
        self.popups = Counter(
            "retailcrm_sync_popups",
            "call/event pop-ups by outcome",
            ["tenant", "type", "outcome"],
            registry=self.registry,
        )
        self.popup_calls_ignored = Counter(
            "retailcrm_sync_popup_calls_ignored",
            "Calls or pop-ups not shown: no tenant, no usable number, tenant inactive/frozen",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.ami_events = Counter(
            "retailcrm_sync_ami_events_read",
            "AMI events read by the pop-up machine",
            registry=self.registry,
        )
        self.clicks = Counter(
            "retailcrm_sync_clicks",
            "Click-to-call requests by result",
            ["tenant", "result"],
            registry=self.registry,
        )
        self.originate = Counter(
            "retailcrm_sync_originate",
            "OriginateResponse by reason",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.ami_connected = Gauge(
            "retailcrm_sync_ami_connected",
            "1 while the AMI connection is up",
            registry=self.registry,
        )
        if store is not None and names is not None:
            self.registry.register(_SyncState(store, names))

    def render(self) -> bytes:
        return generate_latest(self.registry)
