"""The phone -> RetailCRM customer map (``retailcrm_customers``) and customer creation.

The map is seeded once by a full ``customers`` scan, then follows ``customers/history`` by
``sinceId`` (spec §7.5): creates and phone additions add rows, phone removals and deletes drop
them, a merge (``combinedTo``) moves the merged customer's numbers to the surviving one. Every
change is idempotent, so replaying a page after a crash gives the same map; the history cursor
is stored only after its page is applied.

With ``create_customers = true`` an unknown number of an answered or missed call gets a CRM
customer before the call is uploaded. ``customers/create`` is not idempotent (spec pitfall 17),
so a number is first claimed in ``customer_claim`` (one winner across workers), then searched
in the CRM, and only created when the search finds nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from loguru import logger

from sync.crm import CRMError
from sync.engine.customer_changes import Change, changes_from_entry, phone_values
from sync.engine.store import DueCall
from sync.engine.tenant_job import TenantJob
from sync.phones import normalize_phone
from sync.timeutil import utc_to_local

CREATE_FOR_RESULTS = ("answered", "no answer")
CLAIM_STALE_AFTER = timedelta(minutes=10)


@dataclass
class MapReport:
    tenant: str
    seeded: int = 0
    entries: int = 0
    changes: int = 0
    created: int = 0
    error: str | None = None

    def summary(self) -> str:
        text = (
            f"tenant {self.tenant}: customer map seeded={self.seeded} history={self.entries} "
            f"changes={self.changes} created={self.created}"
        )
        return text + (f" error: {self.error}" if self.error else "")


@dataclass
class CustomerMap(TenantJob):
    """The phone -> customer map of one tenant, and customer creation for its new numbers."""

    def normalize(self, raw: str) -> str | None:
        result = normalize_phone(
            raw,
            country=self.settings.pbx.country,
            extension_pattern=self.settings.pbx.extension_pattern,
            area_code=self.settings.pbx.area_code,
        )
        return result.value if result.kind in ("e164", "raw") else None

    def refresh(self) -> MapReport:
        """Seed the map when it never was, then apply the history since the stored id."""
        report = MapReport(self.tenant.name)
        started = self.clock()
        try:
            state = self.store.tenant(self.tenant.name)
            since_id = state.customers_since_id if state else None
            seeded_at = state.customers_seeded_at if state else None
            if seeded_at is None:
                seeded_at = self.clock()
                report.seeded = self._seed()
                self.store.set_customers_cursor(self.tenant.name, None, seeded_at)
            start_date = None
            if since_id is None:
                local = utc_to_local(seeded_at, self.tenant.timezone)
                start_date = local.strftime("%Y-%m-%d %H:%M:%S")
            for page in self.client.customers_history(since_id, start_date=start_date):
                if self.stop.is_set():
                    break  # the cursor is stored per page: the next refresh goes on from here
                changes = [c for e in page.entries for c in changes_from_entry(e, self.normalize)]
                self.store.apply_map_changes(self.tenant.name, changes, self.clock())
                self.store.set_customers_cursor(self.tenant.name, page.last_id, seeded_at)
                report.entries += len(page.entries)
                report.changes += len(changes)
        except CRMError as exc:
            report.error = str(exc)
        log = logger.warning if report.error else logger.info
        log(report.summary())
        self.store.record_run(
            {
                "tenant": self.tenant.name,
                "kind": "customers",
                "started_at": started,
                "finished_at": self.clock(),
                "read": report.entries,
                "error": report.error,
            }
        )
        return report

    def _seed(self) -> int:
        """Every customer's numbers, page by page (100 a page, the general rate limit)."""
        added = 0
        page_no = 1
        while True:
            page = self.client.customers({}, page=page_no, limit=100)
            pairs = [
                (phone, int(c["id"]))
                for c in page.items
                for raw in phone_values(c.get("phones"))
                if (phone := self.normalize(raw))
            ]
            changes = [Change("add", cid, phone) for phone, cid in pairs]
            self.store.apply_map_changes(self.tenant.name, changes, self.clock())
            added += len(changes)
            if page.is_last or self.stop.is_set():
                return added
            page_no += 1

    def ensure_customers(
        self, calls: Sequence[DueCall], owner: str, *, budget_seconds: float | None = None
    ) -> int:
        """Create CRM customers for unknown numbers of answered or missed calls; returns count.

        Within ``budget_seconds`` (the caller's lease must outlive it): numbers left when it is
        spent are uploaded without a customer of their own and logged.
        """
        wanted = _numbers_to_create(calls)
        if not wanted:
            return 0
        unknown = sorted(set(wanted) - self.store.known_phones(self.tenant.name, wanted))
        created = 0
        start = self.clock()
        for index, phone in enumerate(unknown):
            now = self.clock()
            if budget_seconds is not None and (now - start).total_seconds() >= budget_seconds:
                logger.warning(
                    f"tenant {self.tenant.name}: customer creation ran out of its "
                    f"{budget_seconds:.0f} s budget; {len(unknown) - index} numbers go "
                    "without a new customer"
                )
                break
            if not self.store.claim_phone(self.tenant.name, phone, owner, now, CLAIM_STALE_AFTER):
                continue  # another worker creates (or created) it
            try:
                found = self.client.customers_by_phone(phone)
                if found:
                    customer_id = int(found[0]["id"])
                else:
                    customer = {"firstName": phone, "phones": [{"number": phone}]}
                    customer_id = self.client.create_customer(customer)
                    created += 1
                    logger.info(
                        f"tenant {self.tenant.name}: created customer {customer_id} for {phone}"
                    )
            except CRMError as exc:
                self.store.release_phone(self.tenant.name, phone)
                logger.warning(f"tenant {self.tenant.name}: customer for {phone}: {exc}")
                continue
            self.store.apply_map_changes(
                self.tenant.name, [Change("add", customer_id, phone)], self.clock()
            )
            self.store.finish_phone_claim(self.tenant.name, phone, customer_id)
        return created


def _numbers_to_create(calls: Iterable[DueCall]) -> list[str]:
    """E.164 numbers of answered or missed calls (busy/failed lines are rarely customers)."""
    numbers = []
    for call in calls:
        phone = str(call.payload.get("phone") or "")
        if phone.startswith("+") and call.payload.get("result") in CREATE_FOR_RESULTS:
            numbers.append(phone)
    return numbers
