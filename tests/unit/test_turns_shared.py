"""Fair share between daemons (issue 15): rendezvous hashing over the live processes and the
order of a daemon's pass. Pure: owners, turns and time are given."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sync.engine.store import Presence
from sync.engine.turns import (
    HELP_TICKS,
    due_first,
    freed,
    heartbeat_seconds,
    lease_retry,
    live_owners,
    orphans,
    preferred_owner,
    presence_window,
    ranked_owners,
    refresh_turn,
    shared_pass,
)

NOW = datetime(2026, 3, 2, 10, 0, 0)
GRACE = timedelta(seconds=10)
HELP = HELP_TICKS * GRACE
"""How long a busy (beating) peer's tenant lags before the second in line helps."""
TENANTS = [f"e{i:05d}" for i in range(3_000)]
THREE = ["pbx-a:101", "pbx-b:202", "pbx-c:303"]


def owners_of(names: list[str], owners: list[str]) -> dict[str, str]:
    return {n: preferred_owner(n, owners) for n in names}


def test_three_owners_each_get_a_third_within_ten_percent() -> None:
    shares = Counter(owners_of(TENANTS, THREE).values())
    assert set(shares) == set(THREE)
    assert all(900 <= count <= 1_100 for count in shares.values()), shares


def test_the_answer_depends_on_the_set_of_owners_not_their_order() -> None:
    assert owners_of(TENANTS[:200], THREE) == owners_of(TENANTS[:200], THREE[::-1])


def test_a_fourth_owner_takes_about_a_quarter_and_only_from_the_others() -> None:
    before = owners_of(TENANTS, THREE)
    after = owners_of(TENANTS, [*THREE, "pbx-d:404"])
    moved = [n for n in TENANTS if before[n] != after[n]]
    assert all(after[n] == "pbx-d:404" for n in moved), "no tenant moves between the old three"
    assert 0.20 * len(TENANTS) <= len(moved) <= 0.30 * len(TENANTS), len(moved)


def test_a_gone_owner_hands_over_only_its_own_tenants() -> None:
    before = owners_of(TENANTS, THREE)
    after = owners_of(TENANTS, THREE[1:])
    moved = {n for n in TENANTS if before[n] != after[n]}
    assert moved == {n for n in TENANTS if before[n] == THREE[0]}
    shares = Counter(after.values())
    assert all(1_350 <= count <= 1_650 for count in shares.values()), shares


def turns_for(names: list[str], at: datetime | None) -> dict[str, datetime | None]:
    return dict.fromkeys(names, at)


def test_own_tenants_first_then_a_busy_peers_lagging_ones_fresh_ones_left_out() -> None:
    names = TENANTS[:90]
    me, peer, other = THREE
    started = NOW - timedelta(hours=1)
    owners = dict.fromkeys(THREE, started)
    of = owners_of(names, THREE)
    mine = [n for n in names if of[n] == me]
    theirs = [n for n in names if of[n] != me]
    overdue, fresh = theirs[::2], theirs[1::2]
    next_run: dict[str, datetime | None] = {}
    next_run |= turns_for(mine, NOW - timedelta(seconds=1))
    next_run |= turns_for(overdue, NOW - HELP - timedelta(seconds=1))  # three ticks behind
    next_run |= turns_for(fresh, NOW - HELP + timedelta(seconds=1))  # late, not that late
    next_run[mine[0]] = NOW - timedelta(minutes=5)  # yielded long ago: still first
    order = shared_pass(names, next_run, me, owners, NOW, GRACE)
    second = [n for n in overdue if ranked_owners(n, THREE)[1] == me]
    assert order[: len(mine)] == due_first(mine, next_run, me)
    assert order[0] == mine[0]
    assert order[len(mine) :] == due_first(second, next_run, me), "second in line takes them"
    assert not set(order) & set(fresh)
    assert {of[n] for n in second} == {peer, other}, "both peers' late tenants are taken"
    # One more tick late: the third in line steps in too.
    next_run |= turns_for(overdue, NOW - HELP - GRACE - timedelta(seconds=1))
    later = shared_pass(names, next_run, me, owners, NOW, GRACE)
    assert later[len(mine) :] == due_first(overdue, next_run, me)


def test_a_lagging_peers_tenants_are_split_among_the_others_not_taken_by_each() -> None:
    names = TENANTS[:600]
    owners = dict.fromkeys(THREE, NOW - timedelta(hours=1))
    of = owners_of(names, THREE)
    dead = THREE[0]
    next_run = turns_for(names, NOW) | turns_for(
        [n for n in names if of[n] == dead], NOW - HELP - timedelta(seconds=1)
    )
    taken = [
        [n for n in shared_pass(names, next_run, me, owners, NOW, GRACE) if of[n] == dead]
        for me in THREE[1:]
    ]
    assert sorted(taken[0] + taken[1]) == sorted(n for n in names if of[n] == dead), "once"
    assert all(80 <= len(t) <= 120 for t in taken), [len(t) for t in taken]


def test_a_tenant_the_peer_never_ran_counts_from_the_peers_start() -> None:
    names = TENANTS[:60]
    me, peer, _ = THREE
    of = owners_of(names, THREE[:2])
    theirs = {n for n in names if of[n] == peer}
    never: dict[str, datetime | None] = dict.fromkeys(names)
    just_started = {me: NOW, peer: NOW - HELP + timedelta(seconds=1)}
    assert set(shared_pass(names, never, me, just_started, NOW, GRACE)) == set(names) - theirs
    long_ago = {me: NOW, peer: NOW - HELP - timedelta(seconds=1)}
    assert set(shared_pass(names, never, me, long_ago, NOW, GRACE)) == set(names)


def test_alone_the_pass_is_the_order_before_sharing() -> None:
    names = TENANTS[:50]
    next_run = {n: NOW - timedelta(seconds=i % 7) for i, n in enumerate(names)} | {"new": None}
    me = THREE[0]
    expected = due_first([*names, "new"], next_run, me)
    assert shared_pass([*names, "new"], next_run, me, {}, NOW, GRACE) == expected
    assert shared_pass([*names, "new"], next_run, me, {me: NOW}, NOW, GRACE) == expected


def test_every_tenant_is_someones_in_every_pass_of_three_on_time() -> None:
    """No tenant falls between the processes: each is in its preferred owner's pass."""
    names = TENANTS[:300]
    next_run = turns_for(names, NOW)
    owners = dict.fromkeys(THREE, NOW - timedelta(hours=1))
    passes = [shared_pass(names, next_run, me, owners, NOW, GRACE) for me in THREE]
    assert sorted(n for p in passes for n in p) == sorted(names), "each exactly once"


def test_a_silent_daemons_tenants_are_the_next_in_lines_own_at_once() -> None:
    """Out of the live set (no heartbeat for a window), a daemon's tenants need not lag: each
    is its second in line's own, in that one's first part of the pass."""
    names = TENANTS[:300]
    of = owners_of(names, THREE)
    silent = THREE[0]
    next_run = turns_for(names, NOW)  # nothing lags
    beating = dict.fromkeys(THREE[1:], NOW - timedelta(hours=1))
    passes = {me: shared_pass(names, next_run, me, beating, NOW, GRACE) for me in THREE[1:]}
    for me, order in passes.items():
        taken = {n for n in order if of[n] == silent}
        assert taken == {n for n in names if of[n] == silent and ranked_owners(n, THREE)[1] == me}
    assert sorted(n for p in passes.values() for n in p) == sorted(names), "each exactly once"


def test_mid_pass_the_survivors_split_a_silent_daemons_tenants_exactly_once() -> None:
    dead, *survivors = THREE
    before = owners_of(TENANTS, THREE)
    taken = {
        owner: orphans([n for n in TENANTS if before[n] != owner], THREE, survivors, owner)
        for owner in survivors
    }
    theirs = sorted(n for n, o in before.items() if o == dead)
    assert sorted(taken[survivors[0]] + taken[survivors[1]]) == theirs
    assert not set(taken[survivors[0]]) & set(taken[survivors[1]])
    # Each takes what its next pass would: the hash over the survivors.
    for owner, names in taken.items():
        assert all(preferred_owner(n, survivors) == owner for n in names)


def test_no_orphans_while_every_daemon_beats_or_when_one_joins() -> None:
    me = THREE[1]
    assert orphans(TENANTS, THREE, THREE, me) == []
    assert orphans(TENANTS, THREE, [*THREE, "pbx-d:404"], me) == []
    assert orphans(TENANTS, THREE[:2], THREE[:2], me) == []


def test_the_heartbeat_tells_a_dead_daemon_within_one_interval() -> None:
    assert heartbeat_seconds(30) == 10
    assert presence_window(30) == timedelta(seconds=30), "three heartbeats"
    assert heartbeat_seconds(2) == 1, "at least once a second"
    assert presence_window(2) == timedelta(seconds=3)


def test_busy_tenants_are_tried_again_at_the_earliest_expiry_before_the_next_tick() -> None:
    tick = NOW + timedelta(seconds=10)
    at = NOW + timedelta(seconds=4)
    expiries: dict[str, datetime | None] = {
        "held-by-dead": at,
        "same-moment": at + timedelta(milliseconds=600),
        "a-bit-later": at + timedelta(seconds=3),
        "renewed-by-a-live-holder": NOW + timedelta(seconds=19),
        "released": None,
    }
    assert lease_retry(expiries, NOW, tick) == (
        ["held-by-dead", "same-moment"],
        at + timedelta(milliseconds=600),
    )
    del expiries["held-by-dead"], expiries["same-moment"]
    assert lease_retry(expiries, NOW, tick) == (["a-bit-later"], at + timedelta(seconds=3))
    expired = {"holder-gone": NOW - timedelta(seconds=2)}
    assert lease_retry(expired, NOW, tick) == (["holder-gone"], NOW), "at once"
    assert lease_retry({"renewed": NOW + timedelta(seconds=19)}, NOW, tick) is None
    assert lease_retry({}, NOW, tick) is None


def test_busy_tenants_are_free_again_when_released_expired_or_their_holder_died_here() -> None:
    held = {
        "live": ("pbx-b:202", NOW + GRACE),
        "expired": ("pbx-b:202", NOW),
        "dead": ("vm:999", NOW + GRACE),
    }
    names = ["released", "live", "expired", "dead"]
    assert freed(names, held, NOW, lambda owner: owner == "vm:999") == [
        "released",
        "expired",
        "dead",
    ]


def test_live_owners_drop_stale_rows_and_dead_pids() -> None:
    window = presence_window(interval=10)
    assert window == timedelta(seconds=10)
    rows = [
        Presence("pbx-a:101", NOW - timedelta(hours=2), NOW - timedelta(seconds=5)),
        Presence("pbx-b:202", NOW - timedelta(hours=2), NOW - window - timedelta(seconds=1)),
        Presence("pbx-c:303", NOW - timedelta(hours=1), NOW - window),
        Presence("here:404", NOW - timedelta(minutes=1), NOW),
    ]
    live = live_owners(rows, NOW, window, lambda owner: owner == "here:404")
    assert live == {"pbx-a:101": NOW - timedelta(hours=2), "pbx-c:303": NOW - timedelta(hours=1)}


EVERY = timedelta(minutes=5)


def test_alone_a_daemon_refreshes_every_map_not_refreshed_within_half_an_interval() -> None:
    last = {
        "fresh": NOW - timedelta(minutes=1),
        "half": NOW - timedelta(seconds=150),
        "old": NOW - timedelta(minutes=6),
    }
    names = ["fresh", "half", "old", "never"]
    assert refresh_turn(names, last, "me:1", {}, NOW, EVERY) == ["half", "old", "never"]
    assert refresh_turn(names, last, "me:1", {"me:1": NOW}, NOW, EVERY) == [
        "half",
        "old",
        "never",
    ]


def test_three_daemons_split_the_maps_and_take_a_peers_only_when_it_missed_its_turn() -> None:
    owners = dict.fromkeys(THREE, NOW)  # all three just started: no map refreshed yet
    names = TENANTS[:300]
    turns = [refresh_turn(names, {}, me, owners, NOW, EVERY) for me in THREE]
    assert sorted(n for turn in turns for n in turn) == sorted(names), "each map once"
    assert all(80 <= len(t) <= 120 for t in turns), [len(t) for t in turns]
    peer = [n for n in names if preferred_owner(n, THREE) == THREE[1]]
    late = dict.fromkeys(names, NOW - timedelta(minutes=1))
    late.update(dict.fromkeys(peer, NOW - 2 * EVERY))
    mine = refresh_turn(names, late, THREE[0], owners, NOW, EVERY)
    second = {n for n in peer if ranked_owners(n, THREE)[1] == THREE[0]}
    assert set(mine) == second, "the peer's overdue maps where it is second in line; no other"
    late.update(dict.fromkeys(peer, NOW - 3 * EVERY))
    assert set(refresh_turn(names, late, THREE[0], owners, NOW, EVERY)) == set(peer)


def test_a_new_peers_never_refreshed_maps_are_left_to_it_until_overdue() -> None:
    owners = {THREE[0]: NOW - timedelta(hours=1), THREE[1]: NOW - timedelta(minutes=1)}
    names = TENANTS[:100]
    theirs = {n for n in names if preferred_owner(n, THREE[:2]) == THREE[1]}
    mine = set(refresh_turn(names, {}, THREE[0], owners, NOW, EVERY))
    assert mine == set(names) - theirs
    owners[THREE[1]] = NOW - 2 * EVERY
    assert set(refresh_turn(names, {}, THREE[0], owners, NOW, EVERY)) == set(names)
