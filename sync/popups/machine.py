"""The pop-up state machine (design §6.3 P1–P5, P7, §6.5): pure, one instance per ``serve``.

Fed typed AMI events (each with the time it was read) and returns the ``call/event``s to send;
``tick(now)`` closes grouping windows, ``reconcile`` rebuilds state from ``CoreShowChannels``
after a reconnect. No I/O and no clock inside, so every rule is a unit test without waiting.

Per (call, extension) the events alternate ``in``/``out`` → ``hangup`` → ``in`` …: an extension
is *shown* from its ``in``/``out`` to its ``hangup``, and the root channel's hangup closes every
extension still shown. Ringing is counted per physical channel, so one extension with two
registered phones is shown once and closed when the last of them stops ringing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from sync.calls.channels import channel_extension
from sync.calls.context import Context
from sync.calls.draft import find_tenant
from sync.popups.events import RINGING, UP, AmiEvent, HangupStatus, Popup, PopupType

V = TypeVar("V")
PopupOn = Literal["ring", "answer", "off"]

DIAL_HANGUP: dict[str, HangupStatus] = {
    "ANSWER": "answered",
    "NOANSWER": "no answered",
    "BUSY": "busy",
    "CANCEL": "cancel",
    "CHANUNAVAIL": "failed",
    "CONGESTION": "failed",
}
"""§6.5: ``hangupStatus`` of an extension closed early, from its own ``DialEnd``."""
STALE_SECONDS = 6 * 3600.0
"""A call with no event for this long is closed and forgotten (its hangup was lost)."""
ENDED_SECONDS = 60.0
"""How long an ended call's linkedid is remembered, so its late events are ignored. The
channels still up when the root hangs up report their own ``Hangup`` within moments (the same
second on a real PBX): a minute is ample. An event of a call forgotten sooner still shows
nothing (without its root channel a call is never shown); it only costs a record that the
stale sweep removes."""
ENDED_MEMORY = 2_000
"""At most this many ended calls remembered: a call storm shortens the minute above instead of
growing the table (2 000 calls ending within a minute is far beyond a real switchboard, and at
the click benchmark's rate of hundreds a second an ended call is still remembered for seconds,
while its late events follow within milliseconds)."""
CLICK_SECONDS = 60.0
"""How long a click waits for its call's root channel (which Asterisk creates as it runs the
``Originate``, before the manager's phone even rings); a click whose call never came (the PBX
refused it, the connection broke) is forgotten after this."""
CLICK_MEMORY = 2_000
"""At most this many clicks waiting for their call at once (the AMI event queue holds the
events of some 600 clicks, so a backlog never pushes out a click whose call is still coming)."""


@dataclass(frozen=True, slots=True)
class MachineOptions:
    popup_on: PopupOn = "ring"
    group_seconds: float = 0.3
    external_id_prefix: str = ""


@dataclass(slots=True)
class _Channel:
    uniqueid: str
    name: str
    extension: str | None
    """The extension of an extension channel (R4), ``None`` for a trunk."""
    local: bool
    ringing: bool = False
    up: bool = False
    dial_status: str = ""

    @property
    def phone(self) -> bool:
        """A physical extension channel: the only kind that is ever a pop-up target."""
        return self.extension is not None and not self.local


@dataclass(slots=True)
class _Call:
    linkedid: str
    root_seen: bool = False
    inbound: bool = True
    tenant: str | None = None
    phone: str | None = None
    did: str = ""
    ignored: str = ""
    channels: dict[str, _Channel] = field(default_factory=dict)
    shown: dict[str, PopupType] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    window_end: float | None = None
    window_used: bool = False
    answered: bool = False
    dial_statuses: list[str] = field(default_factory=list)
    trunk_status: str = ""
    out_extension: str = ""
    dialled: str = ""
    """The root's ``Exten`` of an outbound call: what the extension dialled."""
    last_at: float = 0.0
    aliases: list[str] = field(default_factory=list)
    """Linkedids of consultation calls merged into this one (attended transfers)."""

    def ext_channels(self, ext: str) -> list[_Channel]:
        return [c for c in self.channels.values() if c.extension == ext and c.phone]

    def ext_busy(self, ext: str) -> bool:
        """Some phone of ``ext`` still rings or talks."""
        return any(c.ringing or c.up for c in self.ext_channels(ext))


class PopupMachine:
    """Live calls keyed by linkedid; ``feed`` / ``tick`` / ``reconcile`` return pop-ups."""

    def __init__(self, ctx: Context, options: MachineOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.calls: dict[str, _Call] = {}
        self.ignored: list[tuple[str, str]] = []
        """(tenant or "-", reason) per call that gets no pop-up; the caller drains it."""
        self._ended: _Recent[None] = _Recent(ENDED_SECONDS, ENDED_MEMORY)
        self._aliases: dict[str, str] = {}
        """Consultation linkedid → the call it was merged into, while that call lives."""
        self._clicks: _Recent[str] = _Recent(CLICK_SECONDS, CLICK_MEMORY)
        self._windows: dict[str, float] = {}
        self._gone: set[str] = set()
        self._tracking = False
        self._touched: set[str] = set()
        self._fresh: set[str] = set()

    # -- inputs ------------------------------------------------------------------------------

    def expect_click(self, linkedid: str, tenant: str, now: float) -> None:
        """The call a click's Originate creates (linkedid = its ``ChannelId``) is that
        tenant's, whatever the root channel's tenant field says."""
        self._clicks.add(linkedid, tenant, now)

    def login(self) -> None:
        """A new AMI session starts. Until ``reconcile`` runs, what events say about channels
        and calls is newer than the ``CoreShowChannels`` snapshot and wins over it."""
        self._gone, self._touched, self._fresh = set(), set(), set()
        self._tracking = True

    def feed(self, ev: AmiEvent) -> list[Popup]:
        out = self.tick(ev.at)
        if ev.name == "BlindTransfer":
            return out + self._blind_transfer(ev)
        if ev.name == "AttendedTransfer":
            return out + self._attended_transfer(ev)
        lid = self._aliases.get(ev.linkedid, ev.linkedid)
        if not lid or lid in self._ended:
            return out
        if self._tracking:
            self._touched.update((ev.uniqueid, ev.dest_uniqueid))
            self._fresh.add(lid)
        call = self.calls.get(lid)
        if call is None:
            call = self.calls[lid] = _Call(lid)
        call.last_at = ev.at
        if ev.name == "Newchannel":
            channel = self._channel(call, ev.uniqueid, ev.channel)
            if ev.uniqueid == ev.linkedid and not call.root_seen:
                self._root(call, ev, channel)
        elif ev.name == "Newstate":
            out += self._newstate(call, ev)
        elif ev.name == "DialBegin":
            out += self._dial_begin(call, ev)
        elif ev.name == "DialEnd":
            out += self._dial_end(call, ev)
        elif ev.name == "Hangup":
            out += self._hangup(call, ev)
        return out

    def tick(self, now: float) -> list[Popup]:
        """Close the grouping windows that ended by ``now``."""
        out: list[Popup] = []
        for lid, end in list(self._windows.items()):
            if now >= end:
                out += self._flush(self.calls[lid], end)
        return out

    def expire(self, now: float, stale_seconds: float = STALE_SECONDS) -> list[Popup]:
        """Close calls silent for ``stale_seconds``: their end was lost (an AMI reader that
        fell behind drops events); without this their cards and state would stay forever."""
        out: list[Popup] = []
        for call in list(self.calls.values()):
            if now - call.last_at >= stale_seconds:
                out += self._end(call, "answered" if call.answered else "no answered", now)
        return out

    def next_deadline(self) -> float | None:
        """When ``tick`` has something to do next (``None``: nothing waits)."""
        return min(self._windows.values(), default=None)

    # -- channels and the root ---------------------------------------------------------------

    def _channel(self, call: _Call, uniqueid: str, name: str) -> _Channel:
        channel = call.channels.get(uniqueid)
        if channel is None:
            extension, _ = channel_extension(name, self.ctx)
            channel = _Channel(uniqueid, name, extension, name.startswith("Local/"))
            call.channels[uniqueid] = channel
        return channel

    def _root(self, call: _Call, ev: AmiEvent, channel: _Channel) -> None:
        """P2/P8: direction, tenant, caller and DID come from the root channel."""
        call.root_seen = True
        call.inbound = channel.extension is None
        click_tenant = self._clicks.pop(call.linkedid)
        if click_tenant is not None:
            call.tenant = click_tenant
        else:
            route, _ = find_tenant([ev.tenant_value], self.ctx)
            call.tenant = route.name if route is not None else None
        if call.tenant is None:
            self._ignore(call, "no tenant")
            return
        call.dialled = "" if call.inbound else ev.exten
        if call.inbound:
            call.phone = self._number(ev.caller)
            if call.phone is None:
                self._ignore(call, "no number")
                return
            did = self.ctx.phone(ev.exten, memo=False)
            call.did = did.value or "" if did.kind == "e164" else ""

    def _number(self, raw: str, *, outbound: bool = False) -> str | None:
        """A live call's number in E.164 (or raw digits). Not memoised: nearly every call
        brings a number of its own, and a memo would keep them all (sync/phones.py)."""
        return self.ctx.phone(raw, outbound=outbound, memo=False).value

    def _ignore(self, call: _Call, reason: str) -> None:
        if not call.ignored:
            call.ignored = reason
            self.ignored.append((call.tenant or "-", reason))

    def _live(self, call: _Call) -> bool:
        return call.root_seen and not call.ignored and self.options.popup_on != "off"

    # -- events ------------------------------------------------------------------------------

    def _newstate(self, call: _Call, ev: AmiEvent) -> list[Popup]:
        channel = self._channel(call, ev.uniqueid, ev.channel)
        if not channel.phone or ev.uniqueid == call.linkedid:
            return []
        if ev.state == RINGING and not channel.up:
            channel.ringing = True
            return self._ring(call, channel, ev.at)
        if ev.state == UP:
            return self._answer(call, channel, ev.at)
        return []

    def _dial_begin(self, call: _Call, ev: AmiEvent) -> list[Popup]:
        """P3: an extension channel (a phone, or the Local half of a click) dials a trunk."""
        self._channel(call, ev.uniqueid, ev.channel)
        dest = self._channel(call, ev.dest_uniqueid, ev.dest_channel)
        if call.inbound or dest.extension is not None or not ev.dest_channel:
            return []
        ext, _ = channel_extension(ev.channel, self.ctx)
        if ext is None or not self._live(call):
            return []
        # The trunk leg's caller ID is the number dialled; else the root's Exten, else the dial
        # string (``PJSIP/80291234567@provider`` → ``80291234567``).
        dialled = ev.dest_caller or call.dialled or ev.dial_string.rpartition("/")[2].split("@")[0]
        phone = self._number(dialled, outbound=True)
        if phone is None:
            self._ignore(call, "no number")
            return []
        call.phone = phone
        call.out_extension = ext
        if self.options.popup_on == "ring" and ext not in call.shown:
            return [self._show(call, "out", [ext], ev.at)]
        return []

    def _dial_end(self, call: _Call, ev: AmiEvent) -> list[Popup]:
        dest = call.channels.get(ev.dest_uniqueid)
        if dest is None:
            return []
        status = ev.dial_status
        if dest.extension is None:
            if not call.inbound:
                call.trunk_status = status
                ext = call.out_extension
                answer_shows = self.options.popup_on == "answer" and self._live(call)
                if status == "ANSWER" and ext and answer_shows and ext not in call.shown:
                    return [self._show(call, "out", [ext], ev.at)]
            return []
        if not dest.phone:
            return []
        call.dial_statuses.append(status)
        if status == "ANSWER":
            return self._answer(call, dest, ev.at)
        dest.dial_status = status
        return self._stop_ringing(call, dest, ev.at)

    def _hangup(self, call: _Call, ev: AmiEvent) -> list[Popup]:
        if self._tracking:  # only between a login and its reconcile: kept longer, it grows
            self._gone.add(ev.uniqueid)
        if ev.uniqueid == call.linkedid:
            return self._end(call, self._root_status(call), ev.at)
        channel = call.channels.pop(ev.uniqueid, None)
        if channel is None or not channel.phone:
            return []
        channel.up = False
        return self._stop_ringing(call, channel, ev.at)

    # -- showing and closing -----------------------------------------------------------------

    def _ring(self, call: _Call, channel: _Channel, at: float) -> list[Popup]:
        """P2 and the grouping window of §6.5 (one window per call, from its first ring)."""
        ext = channel.extension
        if ext is None or not call.inbound or not self._live(call):
            return []
        if self.options.popup_on != "ring" or ext in call.shown or ext in call.pending:
            return []
        if not call.window_used:
            call.window_used = True
            call.pending.append(ext)
            call.window_end = at + self.options.group_seconds
            self._windows[call.linkedid] = call.window_end
            return self.tick(at)
        if call.window_end is not None and at <= call.window_end:
            call.pending.append(ext)
            return []
        return [self._show(call, "in", [ext], at)]

    def _answer(self, call: _Call, channel: _Channel, at: float) -> list[Popup]:
        channel.ringing, channel.up = False, True
        ext = channel.extension
        if ext is None or not call.inbound:
            return []
        call.answered = True
        if not self._live(call):
            return []
        if ext in call.pending:
            return self._flush(call, at)
        if ext not in call.shown:
            return [self._show(call, "in", [ext], at)]
        return []

    def _stop_ringing(self, call: _Call, channel: _Channel, at: float) -> list[Popup]:
        """P4: an extension whose last phone stopped ringing unanswered is closed now."""
        channel.ringing = False
        ext = channel.extension
        if ext is None or call.ext_busy(ext):
            return []
        if ext in call.pending:
            call.pending.remove(ext)
            return []
        if call.shown.get(ext) != "in":
            return []  # an ``out`` lasts until the call ends
        status = "answered" if call.answered else DIAL_HANGUP.get(channel.dial_status)
        return [self._close(call, ext, status or "no answered", at)]

    def _flush(self, call: _Call, at: float) -> list[Popup]:
        self._windows.pop(call.linkedid, None)
        call.window_end = None
        codes = [ext for ext in call.pending if ext not in call.shown]
        call.pending = []
        return [self._show(call, "in", codes, at)] if codes else []

    def _show(self, call: _Call, kind: PopupType, codes: list[str], at: float) -> Popup:
        for ext in codes:
            call.shown[ext] = kind
        return self._popup(call, kind, codes, at)

    def _close(self, call: _Call, ext: str, status: HangupStatus, at: float) -> Popup:
        del call.shown[ext]
        return self._popup(call, "hangup", [ext], at, status)

    def _popup(
        self,
        call: _Call,
        kind: PopupType,
        codes: list[str],
        at: float,
        status: HangupStatus | None = None,
    ) -> Popup:
        assert call.tenant is not None and call.phone is not None
        return Popup(
            tenant=call.tenant,
            type=kind,
            codes=tuple(codes),
            phone=call.phone,
            call_external_id=self.options.external_id_prefix + call.linkedid,
            linkedid=call.linkedid,
            at=at,
            external_phone=call.did if kind != "out" else "",
            hangup_status=status,
        )

    def _root_status(self, call: _Call) -> HangupStatus:
        """§6.5: what the root's hangup says to every extension still shown."""
        if call.answered:
            return "answered"
        if not call.inbound:
            return DIAL_HANGUP.get(call.trunk_status, "cancel")
        if any(c.ringing for c in call.channels.values() if c.phone):
            return "cancel"  # the caller gave up while phones rang
        statuses = set(call.dial_statuses)
        if statuses and statuses <= {"BUSY"}:
            return "busy"
        if statuses and statuses <= {"CHANUNAVAIL", "CONGESTION"}:
            return "failed"
        return "no answered"

    def _end(self, call: _Call, status: HangupStatus, at: float) -> list[Popup]:
        out = [self._close(call, ext, status, at) for ext in list(call.shown)]
        self._windows.pop(call.linkedid, None)
        self.calls.pop(call.linkedid, None)
        for lid in (call.linkedid, *call.aliases):
            self._aliases.pop(lid, None)
            self._ended.add(lid, None, at)
        return out

    # -- transfers ---------------------------------------------------------------------------

    def _blind_transfer(self, ev: AmiEvent) -> list[Popup]:
        """The transferer's card closes now; the target is shown when it rings."""
        lid = ev.extra.get("TransfererLinkedid", "")
        call = self.calls.get(self._aliases.get(lid, lid))
        if call is None:
            return []
        channel = call.channels.get(ev.extra.get("TransfererUniqueid", ""))
        if channel is None or channel.extension is None:
            return []
        channel.up = channel.ringing = False
        ext = channel.extension
        if ext in call.shown and not call.ext_busy(ext):
            return [self._close(call, ext, "answered", ev.at)]
        return []

    def _attended_transfer(self, ev: AmiEvent) -> list[Popup]:
        """The consultation call (its own linkedid) becomes part of the original call: the
        transferer is closed and the target, now talking to the customer, is shown."""
        first = ev.extra.get("OrigTransfererLinkedid", "")
        second = ev.extra.get("SecondTransfererLinkedid", "")
        first = self._aliases.get(first, first)
        call = self.calls.get(first)
        if call is None or not second or second == first:
            return []
        out: list[Popup] = []
        consultation = self.calls.pop(second, None)
        merged = [second, *(consultation.aliases if consultation is not None else ())]
        for lid in merged:
            self._aliases[lid] = first
        call.aliases += merged
        if consultation is not None:
            out += [
                self._close(consultation, e, "answered", ev.at) for e in list(consultation.shown)
            ]
            self._windows.pop(second, None)
            call.channels.update(consultation.channels)
        for key in ("OrigTransfererUniqueid", "SecondTransfererUniqueid"):
            channel = call.channels.get(ev.extra.get(key, ""))
            if channel is not None:
                channel.up = channel.ringing = False
        transferer, _ = channel_extension(ev.extra.get("OrigTransfererChannel", ""), self.ctx)
        if transferer is not None and transferer in call.shown and not call.ext_busy(transferer):
            out.append(self._close(call, transferer, "answered", ev.at))
        target = self._channel(
            call,
            ev.extra.get("TransferTargetUniqueid", ""),
            ev.extra.get("TransferTargetChannel", ""),
        )
        if target.phone:
            out += self._answer(call, target, ev.at)
        return out

    # -- reconnect ---------------------------------------------------------------------------

    def reconcile(self, listed: list[AmiEvent], now: float) -> list[Popup]:
        """P7: ``CoreShowChannel`` events after a login are the truth. Calls shown before the
        break that are gone get their ``hangup``; extensions no longer ringing are closed;
        ringing phones not shown yet are shown now (one event per call); nothing is shown
        twice."""
        out = self.tick(now)
        by_call: dict[str, list[AmiEvent]] = {}
        for ev in listed:
            lid = self._aliases.get(ev.linkedid, ev.linkedid)
            if ev.uniqueid in self._gone or lid in self._ended or not lid:
                continue
            by_call.setdefault(lid, []).append(ev)
        for lid, call in list(self.calls.items()):
            if lid not in by_call and lid not in self._fresh:
                out += self._end(call, "answered" if call.answered else "no answered", now)
        for lid, channels in by_call.items():
            out += self._rebuild(lid, channels, now)
        self._tracking = False
        self._gone, self._touched, self._fresh = set(), set(), set()
        return out

    def _rebuild(self, lid: str, listed: list[AmiEvent], now: float) -> list[Popup]:
        call = self.calls.get(lid)
        if call is None:
            call = self.calls[lid] = _Call(lid)
        call.last_at = now
        present = {ev.uniqueid for ev in listed} | self._touched
        for uniqueid in [u for u in call.channels if u not in present]:
            del call.channels[uniqueid]
        for ev in listed:
            channel = self._channel(call, ev.uniqueid, ev.channel)
            if ev.uniqueid == lid and not call.root_seen:
                self._root(call, ev, channel)
            if channel.phone and ev.uniqueid != lid and ev.uniqueid not in self._touched:
                channel.ringing, channel.up = ev.state == RINGING, ev.state == UP
                call.answered = call.answered or (channel.up and call.inbound)
        out: list[Popup] = []
        for ext in list(call.shown):
            if not call.ext_busy(ext) and call.shown[ext] == "in":
                out.append(
                    self._close(call, ext, "answered" if call.answered else "no answered", now)
                )
        call.pending = [ext for ext in call.pending if call.ext_busy(ext)]
        if not self._live(call) or not call.inbound:
            return out + self._rebuild_outbound(call, listed, now)
        if self.options.popup_on == "ring":
            wanted = {c.extension for c in call.channels.values() if c.phone and c.ringing}
        else:
            wanted = {c.extension for c in call.channels.values() if c.phone and c.up}
        codes = sorted(e for e in wanted if e is not None and e not in call.shown)
        codes = [e for e in codes if e not in call.pending]
        if codes:
            call.window_used = True
            out.append(self._show(call, "in", codes, now))
        return out

    def _rebuild_outbound(self, call: _Call, listed: list[AmiEvent], now: float) -> list[Popup]:
        if call.inbound or not self._live(call) or call.shown or self.options.popup_on != "ring":
            return []
        root = next((ev for ev in listed if ev.uniqueid == call.linkedid), None)
        trunk = any(c.extension is None for c in call.channels.values())
        ext = call.channels[root.uniqueid].extension if root is not None else None
        if root is None or ext is None or not trunk:
            return []
        phone = self._number(root.exten, outbound=True)
        if phone is None:
            return []
        call.phone, call.out_extension = phone, ext
        return [self._show(call, "out", [ext], now)]


class _Recent(Generic[V]):
    """Keys remembered for ``seconds`` after they were added and at most ``limit`` of them,
    the oldest forgotten first: a table kept per call stays bounded on a PBX that runs for
    months, whatever its call rate. Expired keys go as new ones are added."""

    __slots__ = ("_items", "limit", "seconds")

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def add(self, key: str, value: V, at: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (at, value)
        items, oldest = self._items, at - self.seconds
        while items and (len(items) > self.limit or next(iter(items.values()))[0] < oldest):
            items.popitem(last=False)

    def pop(self, key: str) -> V | None:
        found = self._items.pop(key, None)
        return None if found is None else found[1]
