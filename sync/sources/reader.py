"""The leg reader: ``asterisk`` and ``freepbx`` flavors, both table shapes.

A call (R1 group: ``linkedid``, else ``uniqueid``) is yielded once per window, whole: the
legs that made it enter the window plus every other leg of its group, including legs before
or after the window and legs of another tenant value (Local halves, transfer legs carry an
empty ``accountcode``, R11). Phase 1 pages the window on the time column (``base``); phase 2
fetches the page's groups by ``linkedid`` through its index. A group belongs to the page that
holds its earliest in-window row; later pages see that row in the fetched group and skip it,
which keeps the reader stateless and each group on one page.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from sync.batches import chunks
from sync.calls.legs import LEG_COLUMNS, Leg
from sync.sources import queries
from sync.sources.base import IN_CHUNK, TableSource, Window, compare_lt, text_of
from sync.sources.coerce import derive_calldate_times, to_disposition, to_int, to_str, to_time
from sync.sources.schema import LEG_OPTIONAL

_FIELDS = (*LEG_COLUMNS, "tenant")
"""The logical columns in the order ``_leg`` unpacks them (``Leg``'s vocabulary)."""
_TIME = len(_FIELDS)
_TENANT = _TIME + 1
"""Positions of the stored time and tenant after the fields in ``_leg_columns``."""
_NEVER = datetime.max


def _key_text(value: object) -> str:
    """A ``linkedid``/``uniqueid`` exactly as stored (not stripped), for binding it back."""
    if type(value) is str:
        return value
    value = text_of(value)
    return "" if value is None else str(value)


def leg_sort_key(leg: Leg) -> tuple[bool, datetime, bool, int, str]:
    """Earliest first by (start, sequence), NULLs last (spec 9.1 "earliest leg")."""
    return (
        leg.start is None,
        leg.start or _NEVER,
        leg.sequence is None,
        leg.sequence or 0,
        leg.uniqueid,
    )


class LegSource(TableSource[Leg]):
    """Reads ``Leg`` records from an Asterisk CDR table (``start`` or ``calldate`` shape)."""

    def _optional_columns(self) -> tuple[str, ...]:
        return LEG_OPTIONAL

    @property
    def grouped_by(self) -> str:
        return "linkedid" if self.layout.has("linkedid") else "uniqueid"

    def columns_report(self) -> dict[str, Any]:
        report = super().columns_report()
        report["grouped_by"] = self.grouped_by
        return report

    def read_window(
        self, start: datetime, end: datetime, *, tenant_match: str | None = None
    ) -> Iterator[list[Leg]]:
        """Pages of whole calls with a leg whose time is in ``[start, end)``.

        ``start``/``end`` are naive wall times in ``source.timezone``. With ``tenant_match``
        only calls with such a leg whose tenant column equals it. Each call appears once, on
        one page, legs sorted by (start, sequence); a page holds about ``page_size`` rows of
        the window plus the rest of their calls.
        """
        return self._window(start, end, tenant_match)

    def legs_of(self, keys: Sequence[str]) -> list[Leg]:
        """Every leg of the given ``linkedid``s (R1: ``uniqueid`` for rows without one).

        For ``explain``. Keys that match no ``linkedid`` are looked up by ``uniqueid``, which
        may scan the table when it has no index on ``uniqueid``.
        """
        wanted = list(dict.fromkeys(k for k in keys if k))
        cols = self._leg_columns()
        rows: list[sa.Row[Any]] = []
        with self.engine.connect() as conn:
            found: set[str] = set()
            if self.layout.has("linkedid"):
                for chunk in chunks(wanted, IN_CHUNK):
                    got = conn.execute(queries.by_linkedid(self.layout, cols, chunk)).all()
                    rows.extend(got)
                    found.update(_key_text(r.linkedid) for r in got)
            rest = [k for k in wanted if k not in found]
            for chunk in chunks(rest, IN_CHUNK):
                rows.extend(conn.execute(queries.by_uniqueid(self.layout, cols, chunk)).all())
        return sorted((self._leg(r) for r in rows), key=leg_sort_key)

    # -- paging --------------------------------------------------------------------------------

    def _page_columns(self) -> list[ColumnElement[Any]]:
        return queries.fields(self.layout, ("uniqueid", "linkedid"))

    def _leg_columns(self) -> list[ColumnElement[Any]]:
        """Every ``_FIELDS`` name in order (NULL when absent), then the stored time and tenant."""
        layout = self.layout
        cols = queries.fields_or_null(layout, _FIELDS)
        cols.append(queries.raw(layout, layout.time_column, "k_time"))
        tenant = layout.tenant
        cols.append(queries.raw(layout, tenant, "k_tenant") if tenant is not None else sa.null())
        return cols

    def _finish_page(
        self, conn: sa.Connection, rows: Sequence[sa.Row[Any]], window: Window
    ) -> list[Leg]:
        has_linkedid = self.layout.has("linkedid")
        by_link: dict[str, None] = {}
        by_uid: dict[str, None] = {}
        keyless: dict[object, None] = {}
        for row in rows:
            linkedid = _key_text(row.linkedid) if has_linkedid else ""
            uniqueid = _key_text(row.uniqueid)
            if linkedid:
                by_link[linkedid] = None
            elif uniqueid:
                by_uid[uniqueid] = None
            else:
                keyless[self.time_key(row.k_time)] = None
        order = list(dict.fromkeys([*by_link, *by_uid]))
        groups: dict[str, list[sa.Row[Any]]] = {key: [] for key in order}
        cols = self._leg_columns()
        if has_linkedid:
            for chunk in chunks(order, IN_CHUNK):
                for row in conn.execute(queries.by_linkedid(self.layout, cols, chunk)).all():
                    members = groups.get(_key_text(row.linkedid))
                    if members is not None:  # None: a collation-equal variant; its own group
                        members.append(row)
        for chunk in chunks(list(by_uid), IN_CHUNK):
            for row in conn.execute(queries.by_uniqueid(self.layout, cols, chunk)).all():
                members = groups.get(_key_text(row.uniqueid))
                if members is not None:
                    members.append(row)
        out: list[Leg] = []
        for key in order:
            legs = self._owned(key, groups[key], window, has_linkedid)
            if legs:
                out.extend(legs)
        if keyless:
            query = queries.keyless(self.layout, cols, list(keyless), window.match)
            stray = [self._leg(r) for r in conn.execute(query)]
            out.extend(sorted(stray, key=leg_sort_key))
        return out

    def _owned(
        self, key: str, rows: list[sa.Row[Any]], window: Window, has_linkedid: bool
    ) -> list[Leg]:
        """The group's legs if this page holds its earliest in-window row, else nothing."""
        if key in window.emitted_mixed:
            return []
        for row in rows:
            t = self.time_key(row[_TIME])
            if window.counts(t, row[_TENANT]) and compare_lt(t, window.first):
                return []
        legs = sorted((self._leg(r) for r in rows), key=leg_sort_key)
        if has_linkedid and any(not leg.linkedid for leg in legs):
            # Rows without linkedid join a linkedid group only when fetched by uniqueid;
            # remember the key so a later page fetching it by linkedid alone skips it.
            window.emitted_mixed.add(key)
        return legs

    # -- one row -------------------------------------------------------------------------------

    def _leg(self, row: Sequence[Any]) -> Leg:
        """One row of ``_leg_columns`` as a ``Leg`` (positional: this runs per leg read)."""
        (
            uniqueid, linkedid, sequence, start, answer, end, calldate, src, dst, clid,
            channel, dstchannel, lastapp, disposition, duration, billsec, recordingfile,
            userfield, did, outbound_cnum, tenant,
        ) = row[:_TIME]  # fmt: skip
        zone = self.layout.codec.zone
        disposition = to_disposition(disposition)
        duration, billsec = to_int(duration), to_int(billsec)
        if self.layout.shape == "calldate":
            start = to_time(calldate, zone)
            answer, end = derive_calldate_times(start, duration, billsec, disposition)
        else:
            start, answer, end = to_time(start, zone), to_time(answer, zone), to_time(end, zone)
            if not self.layout.has("duration") and start and end:
                duration = int((end - start).total_seconds())
            if not self.layout.has("billsec") and end:
                billsec = int((end - answer).total_seconds()) if answer else 0
        return Leg(
            uniqueid=to_str(uniqueid),
            linkedid=to_str(linkedid),
            sequence=to_int(sequence),
            start=start,
            answer=answer,
            end=end,
            src=to_str(src),
            dst=to_str(dst),
            clid=to_str(clid),
            channel=to_str(channel),
            dstchannel=to_str(dstchannel),
            lastapp=to_str(lastapp),
            disposition=disposition,
            duration=duration,
            billsec=billsec,
            recordingfile=to_str(recordingfile),
            userfield=to_str(userfield),
            did=to_str(did),
            outbound_cnum=to_str(outbound_cnum),
            tenant=to_str(tenant),
        )
