"""The pure pop-up machine, rule by rule (design §6.3 P1–P5, P7, §6.5), fed the AMI events of
the emulator's scenario objects (the same ones that write the CDR legs) or hand-made ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sync import phones
from sync.ami.protocol import Message
from sync.calls.context import Context
from sync.calls.options import BuildOptions, TenantRoute
from sync.pbx_emulator.scenarios import (
    AttendedTransferCall,
    BlindTransferCall,
    ClickCall,
    OutboundCall,
    QueueCall,
    RingGroupCall,
)
from sync.popups.events import AmiEvent, Popup
from sync.popups.machine import (
    CLICK_MEMORY,
    CLICK_SECONDS,
    ENDED_MEMORY,
    ENDED_SECONDS,
    MachineOptions,
    PopupMachine,
    PopupOn,
)

START = datetime(2026, 12, 1, 10, 0, 0)
CUSTOMER, E164 = "80291234567", "+375291234567"
DID, DID_E164 = "80172000000", "+375172000000"
PREFIX = "pbx1-"
ONE = (TenantRoute("shop", None),)
TWO = (TenantRoute("a", "A"), TenantRoute("b", "B"))


def machine(
    popup_on: PopupOn = "ring", group: float = 0.3, tenants: tuple[TenantRoute, ...] = ONE
) -> PopupMachine:
    ctx = Context(BuildOptions(tenants=tenants))
    return PopupMachine(ctx, MachineOptions(popup_on, group, PREFIX))


ENDINGS = frozenset({"DialEnd", "Hangup", "BlindTransfer", "AttendedTransfer"})


def feed(m: PopupMachine, events: Iterable[Mapping[str, str]], t0: float = 0.0) -> list[Popup]:
    """Events a millisecond apart, but a second before each ending event: phones that ring
    together fall in one grouping window, and every ring lasts longer than the window."""
    out: list[Popup] = []
    at = t0
    for event in events:
        at += 1.0 if event.get("Event") in ENDINGS else 0.001
        out += m.feed(AmiEvent.parse(Message.of(event), at, "AccountCode"))
    return out + m.tick(at + 60)


def brief(popups: list[Popup]) -> list[tuple[str, tuple[str, ...], str]]:
    return [(p.type, p.codes, p.hangup_status or "") for p in popups]


def assert_alternates(popups: list[Popup]) -> None:
    """P4: per (call, extension) show, hangup, show, hangup …, and nothing left shown."""
    shown: dict[tuple[str, str], bool] = {}
    for p in popups:
        for code in p.codes:
            key = (p.linkedid, code)
            if p.type == "hangup":
                assert shown.get(key), f"hangup without a show: {key}"
                shown[key] = False
            else:
                assert not shown.get(key), f"shown twice without a hangup: {key}"
                shown[key] = True
    assert not any(shown.values()), f"left shown: {[k for k, v in shown.items() if v]}"


# -- P2 inbound, grouping, hangupStatus --------------------------------------------------------


def test_ring_group_is_one_event_and_every_member_is_closed() -> None:
    call = RingGroupCall("1.1", CUSTOMER, DID, ("101", "102", "103"), START, answered_by="102")
    popups = feed(machine(), call.events())
    assert brief(popups) == [
        ("in", ("101", "102", "103"), ""),
        ("hangup", ("101",), "answered"),
        ("hangup", ("103",), "answered"),
        ("hangup", ("102",), "answered"),
    ]
    first = popups[0].payload()
    assert first == {
        "phone": E164,
        "type": "in",
        "codes": ["101", "102", "103"],
        "callExternalId": "pbx1-1.1",
        "externalPhone": DID_E164,
    }
    assert {p.call_external_id for p in popups} == {"pbx1-1.1"}
    assert {p.phone for p in popups} == {E164}
    assert_alternates(popups)


def test_grouping_window_opens_at_the_first_ring() -> None:
    m = machine(group=0.3)
    root = {"Event": "Newchannel", "Channel": "PJSIP/trunk-1", "Uniqueid": "L",
            "Linkedid": "L", "CallerIDNum": CUSTOMER, "Exten": DID}  # fmt: skip

    def ring(ext: str, at: float) -> list[Popup]:
        fields = {"Event": "Newstate", "Channel": f"PJSIP/{ext}-1", "Uniqueid": f"L.{ext}",
                  "Linkedid": "L", "ChannelState": "5"}  # fmt: skip
        return m.feed(AmiEvent.parse(Message.of(fields), at))

    assert m.feed(AmiEvent.parse(Message.of(root), 0.0)) == []
    assert ring("101", 1.0) == [] and ring("102", 1.2) == []
    assert m.next_deadline() == 1.3
    assert m.tick(1.29) == []
    assert brief(m.tick(1.3)) == [("in", ("101", "102"), "")]
    assert m.next_deadline() is None
    assert brief(ring("103", 1.31)) == [("in", ("103",), "")], "a ring after the window"


def test_hangup_status_of_an_extension_closed_early_comes_from_its_dial_end() -> None:
    for status, expected in [("NOANSWER", "no answered"), ("BUSY", "busy"),
                             ("CANCEL", "cancel"), ("CHANUNAVAIL", "failed"),
                             ("CONGESTION", "failed")]:  # fmt: skip
        m = machine(group=0)
        trunk = {"Channel": "PJSIP/trunk-1", "Uniqueid": "L", "Linkedid": "L"}
        phone = {"Channel": "PJSIP/101-1", "Uniqueid": "L.1", "Linkedid": "L"}
        events = [
            {"Event": "Newchannel", **trunk, "CallerIDNum": CUSTOMER},
            {"Event": "Newchannel", **phone},
            {"Event": "Newstate", **phone, "ChannelState": "5"},
            {"Event": "DialEnd", **trunk, "DestChannel": "PJSIP/101-1", "DestUniqueid": "L.1",
             "DialStatus": status},
        ]  # fmt: skip
        assert brief(feed(m, events)) == [("in", ("101",), ""), ("hangup", ("101",), expected)]


def test_root_hangup_closes_what_is_still_shown_with_the_calls_outcome() -> None:
    gave_up = RingGroupCall("1.2", CUSTOMER, DID, ("101", "102"), START, caller_gave_up=True)
    popups = feed(machine(), gave_up.events())
    assert brief(popups)[1:] == [("hangup", ("101",), "cancel"), ("hangup", ("102",), "cancel")]
    no_answer = RingGroupCall("1.3", CUSTOMER, DID, ("101",), START)
    assert brief(feed(machine(), no_answer.events()))[1:] == [("hangup", ("101",), "no answered")]
    # a phone still ringing when the caller hangs up, without a DialEnd first
    m = machine(group=0)
    events = [
        {"Event": "Newchannel", "Channel": "PJSIP/t-1", "Uniqueid": "L", "Linkedid": "L",
         "CallerIDNum": CUSTOMER},
        {"Event": "Newstate", "Channel": "PJSIP/101-1", "Uniqueid": "L.1", "Linkedid": "L",
         "ChannelState": "5"},
        {"Event": "Hangup", "Channel": "PJSIP/t-1", "Uniqueid": "L", "Linkedid": "L"},
    ]  # fmt: skip
    assert brief(feed(m, events)) == [("in", ("101",), ""), ("hangup", ("101",), "cancel")]


def test_busy_members_never_ring_and_are_never_shown() -> None:
    call = RingGroupCall("1.4", CUSTOMER, DID, ("101", "102"), START, busy=("101",))
    assert brief(feed(machine(), call.events())) == [
        ("in", ("102",), ""),
        ("hangup", ("102",), "no answered"),
    ]
    everyone_busy = RingGroupCall("1.5", CUSTOMER, DID, ("101", "102"), START, busy=("101", "102"))
    assert feed(machine(), everyone_busy.events()) == []


def test_one_extension_with_two_phones_is_shown_and_closed_once() -> None:
    call = RingGroupCall("1.6", CUSTOMER, DID, ("101", "101", "102"), START)
    popups = feed(machine(), call.events())
    assert brief(popups) == [
        ("in", ("101", "102"), ""),
        ("hangup", ("101",), "no answered"),
        ("hangup", ("102",), "no answered"),
    ]
    # one phone stops ringing, the other still rings: 101 stays shown
    m = machine(group=0)
    trunk = {"Channel": "PJSIP/t-1", "Uniqueid": "L", "Linkedid": "L"}
    events = [
        {"Event": "Newchannel", **trunk, "CallerIDNum": CUSTOMER},
        {"Event": "Newstate", "Channel": "PJSIP/101-a", "Uniqueid": "L.a", "Linkedid": "L",
         "ChannelState": "5"},
        {"Event": "Newstate", "Channel": "PJSIP/101-b", "Uniqueid": "L.b", "Linkedid": "L",
         "ChannelState": "5"},
        {"Event": "Hangup", "Channel": "PJSIP/101-a", "Uniqueid": "L.a", "Linkedid": "L"},
    ]  # fmt: skip
    assert brief(feed(m, events)) == [("in", ("101",), "")]


# -- queues: Local members, retry rounds, round-robin -----------------------------------------


def test_queue_shows_phones_never_local_halves() -> None:
    call = QueueCall("2.1", CUSTOMER, "702", ("104", "105"), "105", START)
    popups = feed(machine(), call.events())
    assert brief(popups) == [
        ("in", ("104", "105"), ""),
        ("hangup", ("104",), "answered"),
        ("hangup", ("105",), "answered"),
    ]
    assert all(not code.startswith("Local") for p in popups for code in p.codes)
    assert popups[0].external_phone == "", "the queue number is no DID"
    assert_alternates(popups)


def test_ring_all_retry_round_shows_again_after_a_hangup() -> None:
    call = QueueCall("2.2", CUSTOMER, "702", ("104", "105"), "105", START, retry_rounds=1)
    popups = feed(machine(group=0.05), call.events())
    assert_alternates(popups)
    for ext in ("104", "105"):
        kinds = [p.type for p in popups if ext in p.codes]
        assert kinds == ["in", "hangup", "in", "hangup"], (ext, kinds)


def test_round_robin_queue_shows_each_member_in_turn() -> None:
    call = QueueCall("2.3", CUSTOMER, "702", ("104", "105"), "105", START, one_at_a_time=True)
    popups = feed(machine(group=0.05), call.events())
    assert brief(popups) == [
        ("in", ("104",), ""),
        ("hangup", ("104",), "no answered"),
        ("in", ("105",), ""),
        ("hangup", ("105",), "answered"),
    ]


def test_local_channel_ringing_is_never_a_target() -> None:
    m = machine(group=0)
    events = [
        {"Event": "Newchannel", "Channel": "PJSIP/t-1", "Uniqueid": "L", "Linkedid": "L",
         "CallerIDNum": CUSTOMER},
        {"Event": "Newstate", "Channel": "Local/101@from-queue-1;2", "Uniqueid": "L.2",
         "Linkedid": "L", "ChannelState": "5"},
        {"Event": "Hangup", "Channel": "PJSIP/t-1", "Uniqueid": "L", "Linkedid": "L"},
    ]  # fmt: skip
    assert feed(m, events) == []


# -- P3 outbound, the click's own call ---------------------------------------------------------


def test_outbound_is_out_on_dial_begin_to_a_trunk() -> None:
    popups = feed(machine(), OutboundCall("3.1", "106", CUSTOMER, START).events())
    assert brief(popups) == [("out", ("106",), ""), ("hangup", ("106",), "answered")]
    assert popups[0].payload() == {
        "phone": E164, "type": "out", "codes": ["106"], "callExternalId": "pbx1-3.1"
    }  # fmt: skip
    for outcome, status in [("busy", "busy"), ("no answer", "no answered"), ("failed", "failed")]:
        call = OutboundCall("3.2", "106", CUSTOMER, START, outcome=outcome)
        assert brief(feed(machine(), call.events()))[-1] == ("hangup", ("106",), status)


def test_internal_call_gets_nothing() -> None:
    m = machine(group=0)
    events = [
        {"Event": "Newchannel", "Channel": "PJSIP/101-1", "Uniqueid": "L", "Linkedid": "L",
         "CallerIDNum": "101", "Exten": "102"},
        {"Event": "DialBegin", "Channel": "PJSIP/101-1", "Uniqueid": "L", "Linkedid": "L",
         "DestChannel": "PJSIP/102-2", "DestUniqueid": "L.2"},
        {"Event": "Newstate", "Channel": "PJSIP/102-2", "Uniqueid": "L.2", "Linkedid": "L",
         "ChannelState": "5"},
        {"Event": "Hangup", "Channel": "PJSIP/101-1", "Uniqueid": "L", "Linkedid": "L"},
    ]  # fmt: skip
    assert feed(m, events) == []


def test_click_call_has_no_in_for_the_managers_phone_and_out_for_the_customer() -> None:
    click = ClickCall("c2c-0123456789abcdef01234567", "a-1", "109", CUSTOMER, START)
    m = machine(tenants=TWO)
    m.expect_click(click.linkedid, "b", 0.0)
    popups = feed(m, click.events())
    assert brief(popups) == [("out", ("109",), ""), ("hangup", ("109",), "answered")]
    assert {p.tenant for p in popups} == {"b"}
    assert popups[0].phone == E164
    assert popups[0].call_external_id == PREFIX + click.linkedid
    refused = ClickCall("c2c-1", "a-2", "109", CUSTOMER, START, outcome="no answer")
    m.expect_click(refused.linkedid, "b", 0.0)
    assert feed(m, refused.events()) == [], "the manager never answered: no customer leg"


# -- transfers ---------------------------------------------------------------------------------


def test_blind_transfer_closes_the_old_extension_and_shows_the_new_one() -> None:
    call = BlindTransferCall("4.1", CUSTOMER, "107", "108", START)
    popups = feed(machine(group=0.01), call.events())
    assert brief(popups) == [
        ("in", ("107",), ""),
        ("hangup", ("107",), "answered"),
        ("in", ("108",), ""),
        ("hangup", ("108",), "answered"),
    ]


def test_attended_transfer_maps_the_consultation_onto_the_original_call() -> None:
    call = AttendedTransferCall("4.2", CUSTOMER, DID, "110", "111", START)
    popups = feed(machine(group=0.01), call.events())
    assert brief(popups) == [
        ("in", ("110",), ""),
        ("hangup", ("110",), "answered"),
        ("in", ("111",), ""),
        ("hangup", ("111",), "answered"),
    ]
    assert {p.call_external_id for p in popups} == {"pbx1-4.2"}
    assert {p.phone for p in popups} == {E164}


# -- P5 popup_on, P8 tenants, numbers ----------------------------------------------------------


def test_popup_on_answer_shows_only_the_answering_extension() -> None:
    call = RingGroupCall("5.1", CUSTOMER, DID, ("101", "102", "103"), START, answered_by="102")
    assert brief(feed(machine("answer"), call.events())) == [
        ("in", ("102",), ""),
        ("hangup", ("102",), "answered"),
    ]
    out = OutboundCall("5.2", "106", CUSTOMER, START)
    assert brief(feed(machine("answer"), out.events())) == [
        ("out", ("106",), ""),
        ("hangup", ("106",), "answered"),
    ]
    assert feed(machine("off"), call.events()) == []


def test_tenant_comes_from_the_root_channel_and_tenantless_calls_get_nothing() -> None:
    m = machine(tenants=TWO)
    popups = feed(m, RingGroupCall("6.1", CUSTOMER, DID, ("101",), START, tenant="B").events())
    assert {p.tenant for p in popups} == {"b"} and popups
    assert feed(m, RingGroupCall("6.2", CUSTOMER, DID, ("101",), START, tenant="Z").events()) == []
    assert feed(m, RingGroupCall("6.3", CUSTOMER, DID, ("101",), START).events()) == []
    assert m.ignored == [("-", "no tenant"), ("-", "no tenant")]


def test_caller_without_a_usable_number_gets_no_popup_and_is_counted() -> None:
    m = machine()
    for i, caller in enumerate(["", "anonymous", "Unknown", "restricted", "101"]):
        call = RingGroupCall(f"7.{i}", caller, DID, ("101",), START)
        assert feed(m, call.events()) == []
    assert m.ignored == [("shop", "no number")] * 5


def test_late_events_of_an_ended_call_never_reopen_it() -> None:
    m = machine(group=0)
    call = RingGroupCall("8.1", CUSTOMER, DID, ("101",), START)
    events = call.events()
    popups = feed(m, events)
    ringing = next(e for e in events if e.get("ChannelState") == "5")
    assert feed(m, [ringing], t0=100) == []
    assert_alternates(popups)


# -- P7 reconnect ------------------------------------------------------------------------------


def listing(*channels: tuple[str, str, str, str]) -> list[AmiEvent]:
    """(channel, uniqueid, linkedid, state) as ``CoreShowChannel`` events."""
    return [
        AmiEvent.parse(
            Message.of({"Event": "CoreShowChannel", "Channel": c, "Uniqueid": u, "Linkedid": lid,
                        "ChannelState": s, "CallerIDNum": CUSTOMER, "Exten": DID}),
            0.0,
        )
        for c, u, lid, s in channels
    ]  # fmt: skip


def test_reconnect_closes_calls_that_ended_during_the_break() -> None:
    m = machine(group=0)
    events = RingGroupCall("9.1", CUSTOMER, DID, ("101", "102"), START).events()
    first = feed(m, events[:7])
    assert brief(first) == [("in", ("101",), ""), ("in", ("102",), "")]
    m.login()
    gone = m.reconcile([], 10.0)
    assert brief(gone) == [("hangup", ("101",), "no answered"), ("hangup", ("102",), "no answered")]
    assert_alternates(first + gone)
    assert feed(m, events[7:], t0=11) == [], "the rest of the call is ignored"


def test_reconnect_does_not_show_again_and_shows_what_started_ringing_in_the_break() -> None:
    m = machine(group=0)
    events = RingGroupCall("9.2", CUSTOMER, DID, ("101", "102"), START).events()
    shown = feed(m, events[:6])  # 101 rings, 102 not yet
    assert brief(shown) == [("in", ("101",), "")]
    m.login()
    trunk, p101, p102 = "PJSIP/beltelecom-00000001", "PJSIP/101-00000002", "PJSIP/102-00000003"
    now = listing(
        (trunk, "9.2", "9.2", "4"), (p101, "9.2.1", "9.2", "5"), (p102, "9.2.2", "9.2", "5")
    )
    assert brief(m.reconcile(now, 10.0)) == [("in", ("102",), "")]
    assert m.reconcile(now, 11.0) == [], "nothing is shown twice"
    stopped = listing((trunk, "9.2", "9.2", "4"), (p102, "9.2.2", "9.2", "5"))
    assert brief(m.reconcile(stopped, 12.0)) == [("hangup", ("101",), "no answered")]


def test_reconnect_builds_calls_it_never_saw_and_ignores_channels_gone_since_login() -> None:
    m = machine(group=0)
    m.login()
    hung = {"Event": "Hangup", "Channel": "PJSIP/103-9", "Uniqueid": "X.3", "Linkedid": "X"}
    m.feed(AmiEvent.parse(Message.of(hung), 1.0))
    now = listing(
        ("PJSIP/trunk-1", "X", "X", "4"),
        ("PJSIP/101-1", "X.1", "X", "5"),
        ("Local/102@from-queue-1;2", "X.2", "X", "5"),
        ("PJSIP/103-9", "X.3", "X", "5"),
    )
    popups = m.reconcile(now, 2.0)
    assert brief(popups) == [("in", ("101",), "")]
    assert popups[0].phone == E164 and popups[0].external_phone == DID_E164


def test_events_after_login_win_over_the_older_snapshot() -> None:
    m = machine(group=0)
    root = {
        "Event": "Newchannel",
        "Channel": "PJSIP/t-1",
        "Uniqueid": "Y",
        "Linkedid": "Y",
        "CallerIDNum": CUSTOMER,
    }
    ring = {"Event": "Newstate", "Channel": "PJSIP/101-1", "Uniqueid": "Y.1", "Linkedid": "Y",
            "ChannelState": "5"}  # fmt: skip
    m.login()
    shown = feed(m, [root, ring])
    assert brief(shown) == [("in", ("101",), "")]
    # the snapshot was taken before the ring (phone still Down): it must not close 101
    snapshot = listing(("PJSIP/t-1", "Y", "Y", "4"), ("PJSIP/101-1", "Y.1", "Y", "0"))
    assert m.reconcile(snapshot, 5.0) == []
    # a call that began after the snapshot is not taken for one that ended in the break
    m.login()
    feed(m, [{**root, "Uniqueid": "Z", "Linkedid": "Z"}], t0=6)
    closed = m.reconcile([], 7.0)
    assert brief(closed) == [("hangup", ("101",), "no answered")], "Y ended in the break"
    assert "Z" in m.calls and "Y" not in m.calls


def test_a_call_whose_end_was_lost_is_closed_after_hours_of_silence() -> None:
    m = machine(group=0)
    events = RingGroupCall("10.1", CUSTOMER, DID, ("101",), START).events()
    shown = feed(m, events[:4])
    assert brief(shown) == [("in", ("101",), "")]
    assert m.expire(now=3600.0) == [], "an hour of talk is nothing unusual"
    closed = m.expire(now=7 * 3600.0)
    assert brief(closed) == [("hangup", ("101",), "no answered")] and not m.calls


def test_a_long_session_keeps_no_memory_per_finished_call() -> None:
    """Hung-up channels are remembered only between a login and its reconcile; otherwise a
    session of weeks would grow without bound."""
    m = machine()
    for n in range(50):
        click = ClickCall(f"c2c-{n:024x}", f"a-{n}", "109", CUSTOMER, START)
        m.expect_click(click.linkedid, "b", n * 10.0)
        feed(m, click.events(), t0=n * 10.0)
    assert m.calls == {} and not m._gone


def test_live_calls_keep_their_numbers_out_of_the_phone_memo() -> None:
    """Nearly every call of a live PBX brings a number of its own: memoised, each one stayed
    (~0.4 KB, two per click: most of serve's growth in the click benchmark)."""
    phones._normalize_cached.cache_clear()
    m = machine(tenants=TWO)
    shown: set[str] = set()
    for n in range(40):
        number = f"8029{1_000_000 + n}"
        click = ClickCall(f"c2c-{n:024x}", f"a-{n}", "109", number, START)
        m.expect_click(click.linkedid, "b", n * 100.0)
        inbound = RingGroupCall(f"in.{n}", number, DID, ("101",), START, tenant="A")
        popups = feed(m, click.events(), t0=n * 100.0) + feed(m, inbound.events(), n * 100.0 + 50)
        shown |= {p.phone for p in popups}
    assert len(shown) == 40, "every call was shown with its number"
    assert phones.memoised() == 0


def test_ended_calls_are_remembered_for_a_minute_and_never_more_than_a_bounded_number() -> None:
    """Late events of an ended call follow within moments; remembering more (it was the last
    10 000 calls) only costs memory on a busy PBX."""
    m = machine()
    for n in range(ENDED_MEMORY + 500):  # a storm: every call ends inside the same minute
        call = RingGroupCall(f"s.{n}", CUSTOMER, DID, ("101",), START)
        feed(m, call.events(), t0=n * 0.01)
    assert len(m._ended) == ENDED_MEMORY and m.calls == {}
    events = RingGroupCall("late", CUSTOMER, DID, ("101",), START).events()
    popups = feed(m, events, t0=1000.0)
    ringing = next(e for e in events if e.get("ChannelState") == "5")
    assert feed(m, [ringing], t0=1000.0 + ENDED_SECONDS / 2) == [], "still an ended call"
    assert_alternates(popups)
    assert len(m._ended) == 1, "the calls that ended more than a minute before are forgotten"


def test_clicks_whose_call_never_came_are_forgotten() -> None:
    m = machine(tenants=TWO)
    for n in range(CLICK_MEMORY + 500):
        m.expect_click(f"c2c-{n:024x}", "b", n * 0.001)
    assert len(m._clicks) == CLICK_MEMORY
    click = ClickCall("c2c-" + "f" * 24, "a-1", "109", CUSTOMER, START)
    m.expect_click(click.linkedid, "b", CLICK_SECONDS * 2)
    assert len(m._clicks) == 1, "clicks older than CLICK_SECONDS are gone"
    popups = feed(m, click.events(), t0=CLICK_SECONDS * 2)
    assert {p.tenant for p in popups} == {"b"} and not m._clicks


def test_attended_transfers_are_forgotten_with_their_call() -> None:
    m = machine(group=0.01)
    for n in range(20):
        call = AttendedTransferCall(f"4.{n}", CUSTOMER, DID, "110", "111", START)
        assert_alternates(feed(m, call.events(), t0=n * 100.0))
    assert m.calls == {} and m._aliases == {}
    late = {"Event": "Newstate", "Channel": "PJSIP/111-000000ff", "Uniqueid": "4.19.c.9",
            "Linkedid": "4.19.c", "ChannelState": "5"}  # fmt: skip
    assert m.feed(AmiEvent.parse(Message.of(late), 1950.0)) == []
    assert m.calls == {}, "a late event of the consultation is one of an ended call"
