"""Whose turn it is: the order due tenants are cycled in, which daemon starts on which
tenant, and one report from several slices.

Pure: no I/O. The runner asks the store for ``next_run_at`` and the live processes and hands
them here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from sync.engine.cycle import FAILED_OUTCOMES, CycleOutcome, CycleReport
from sync.engine.store import Presence, TenantState

_EPOCH = datetime(1970, 1, 1)
COUNTS = (
    "read",
    "new",
    "sent",
    "duplicates",
    "failed",
    "dead",
    "skipped",
    "incomplete",
    "unrouted",
    "changed_after_upload",
)


def due_first(
    names: Iterable[str], next_run: Mapping[str, datetime | None], salt: str = ""
) -> list[str]:
    """Never-run tenants first, then by ``next_run_at`` oldest first.

    A tenant that yielded its slice has ``next_run_at`` = the end of that slice, older than
    any tenant that finished (now + interval), so it is first in line next tick. Ties (idle
    tenants share one ``next_run_at``) go in an order of their own per ``salt`` (the process):
    several processes then start on different tenants instead of queueing behind each other's
    leases, and share the work more evenly.
    """

    def key(name: str) -> tuple[bool, datetime, str]:
        at = next_run.get(name)
        spread = hashlib.blake2b(f"{salt}/{name}".encode(), digest_size=8).hexdigest()
        return (at is not None, at or _EPOCH, spread if salt else name)

    return sorted(names, key=key)


def _weight(tenant: str, owner: str) -> int:
    digest = hashlib.blake2b(f"{owner}\0{tenant}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def preferred_owner(tenant: str, owners: Iterable[str]) -> str:
    """The process that starts on ``tenant``: rendezvous (highest random weight) hashing.

    Every process computes the same answer from the same set of owners with no messages; the
    tenants spread evenly, and when a process comes or goes only the tenants it gains or loses
    change hands (about 1/n of them), so next_run_at history stays meaningful.
    """
    return max(owners, key=lambda owner: (_weight(tenant, owner), owner))


def ranked_owners(tenant: str, owners: Iterable[str]) -> list[str]:
    """``owners`` in the order they step in for ``tenant``: its preferred owner first, then
    who takes it when that one falls behind, and so on (the same weights as
    ``preferred_owner``)."""
    return sorted(owners, key=lambda owner: (_weight(tenant, owner), owner), reverse=True)


HELP_TICKS = 3
"""How many whole ticks a beating (busy) peer's tenant may lag before the next in line helps."""


def heartbeat_seconds(interval: float) -> float:
    """How often a daemon says it is alive (its own job, apart from the passes): three times
    an interval, so a dead one is known after one interval; at least once a second."""
    return max(1.0, interval / 3)


def presence_window(interval: float) -> timedelta:
    """How long a presence row counts as a live process: three heartbeats. A busy daemon keeps
    beating through a long pass; one that stopped (killed, hung: the heartbeat stops when its
    passes make no progress) drops out of the hash after this, and its tenants are the next
    in line's own."""
    return timedelta(seconds=max(3.0, interval))  # 3 × heartbeat_seconds, without rounding


def live_owners(
    rows: Iterable[Presence],
    now: datetime,
    window: timedelta,
    is_dead: Callable[[str], bool],
) -> dict[str, datetime]:
    """Owner -> started_at of the processes seen within ``window`` whose pid is not known dead
    (``is_dead`` can only tell for this host; another host's row ages out instead)."""
    return {
        row.owner: row.started_at
        for row in rows
        if row.seen_at >= now - window and not is_dead(row.owner)
    }


def shared_pass(
    names: Collection[str],
    next_run: Mapping[str, datetime | None],
    owner: str,
    owners: Mapping[str, datetime],
    now: datetime,
    grace: timedelta,
) -> list[str]:
    """The tenants a daemon takes in this pass, in order, given the live ``owners``
    (owner -> started_at, this process included or not).

    First the tenants this process is preferred for among the live daemons (``due_first``
    order): a daemon that fell silent is not among them, so its tenants are already the next
    in line's own. Then a busy peer's tenants that lag: the second in line for a tenant
    (``ranked_owners``) helps once its ``next_run_at`` is ``HELP_TICKS`` ticks (interval +
    jitter each, ``grace``) old, the third one tick later, and so on: a peer that beats but
    cannot keep up (a wave, a slow host) gets help, not a race for its tenants on every tick.
    A tenant never run counts from its preferred owner's start. Alone, it is ``due_first`` of
    every name: the order before processes shared.
    """
    peers = set(owners) - {owner}
    if not peers:
        return due_first(names, next_run, owner)
    everyone = sorted(peers | {owner})
    own: list[str] = []
    lagging: list[str] = []
    for name in names:
        ranks = ranked_owners(name, everyone)
        place = ranks.index(owner)
        if place == 0:
            own.append(name)
        elif (next_run.get(name) or owners[ranks[0]]) < now - (HELP_TICKS + place - 1) * grace:
            lagging.append(name)
    return due_first(own, next_run, owner) + due_first(lagging, next_run, owner)


def orphans(
    names: Iterable[str], before: Collection[str], after: Collection[str], owner: str
) -> list[str]:
    """The tenants of ``names`` a pass takes on when live daemons fell silent during it: those
    whose preferred owner among ``before`` (the daemons live at the pass's start, this one
    included) is no longer among ``after``, and whose preferred owner among ``after`` is this
    one. Each survivor finds its own part of the silent daemon's tenants, the part its next
    pass would take, without waiting for its running pass to end."""
    gone = set(before) - set(after) - {owner}
    if not gone:
        return []
    was = sorted(set(before) | {owner})
    now = sorted(set(after) | {owner})
    return [
        n for n in names if preferred_owner(n, was) in gone and preferred_owner(n, now) == owner
    ]


def lease_retry(
    expiries: Mapping[str, datetime | None], now: datetime, before: datetime
) -> tuple[list[str], datetime] | None:
    """When to try again the tenants of a pass whose lease another process held: the
    earliest expiry (and those within a second of it), if it comes before the next tick
    (``before``). A peer that died holding leases then hands them over at their expiry, not
    up to an interval later; a live holder renews its lease while it works, so its expiry
    stays past the next tick and costs no retry."""
    soon = {n: at for n, at in expiries.items() if at is not None and at < before}
    if not soon:
        return None
    first = min(soon.values())
    group = sorted(n for n, at in soon.items() if at <= first + timedelta(seconds=1))
    return group, max(max(soon[n] for n in group), now)


def freed(
    names: Iterable[str],
    held: Mapping[str, tuple[str, datetime]],
    now: datetime,
    is_dead: Callable[[str], bool],
) -> list[str]:
    """The tenants of ``names`` a claim would now get, by ``held`` (tenant -> holder, expiry
    of the leases still set): not held, expired, or held by a pid dead on this host; the rule
    of ``Store.claim``, on what a pass read."""
    return [n for n in names if n not in held or held[n][1] <= now or is_dead(held[n][0])]


def refresh_turn(
    names: Iterable[str],
    last: Mapping[str, datetime],
    owner: str,
    owners: Mapping[str, datetime],
    now: datetime,
    every: timedelta,
) -> list[str]:
    """The tenants whose customer map (and orders mirror) a daemon refreshes in this run of
    its customers job, given each tenant's ``last`` refresh and the live ``owners``.

    Its own tenants (``preferred_owner``; all of them when alone) once their last refresh is
    half of ``every`` old or never happened: a restarted daemon does not redo what was done a
    minute ago, and a run that took a while does not push a tenant past its next turn. A
    peer's tenants only when two ``every`` old for the second in line, three for the third, …
    (counted from the peer's start when never): the peer missed its turn. Several daemons
    thus share the CRM requests instead of each refreshing every tenant.
    """
    everyone = sorted(set(owners) | {owner})
    due: list[str] = []
    for name in names:
        ranks = ranked_owners(name, everyone)
        place = ranks.index(owner)
        at = last.get(name)
        if place == 0:
            if at is None or now - at >= every / 2:
                due.append(name)
        elif now - (at or owners[ranks[0]]) >= (1 + place) * every:
            due.append(name)
    return due


def merged(first: CycleReport, later: CycleReport) -> CycleReport:
    """One report for a tenant cycled in several slices (``once`` drains a backlog)."""
    counts = {name: getattr(first, name) + getattr(later, name) for name in COUNTS}
    outcome = later.outcome
    if later.outcome is CycleOutcome.IDLE and first.outcome is not CycleOutcome.IDLE:
        outcome = first.outcome
    if first.outcome in FAILED_OUTCOMES and later.outcome not in FAILED_OUTCOMES:
        outcome = first.outcome
    return replace(
        later,
        outcome=outcome,
        error=later.error or first.error,
        started=first.started,
        **counts,
    )


def may_be_idle(state: TenantState | None, has_work: bool, now: datetime) -> bool:
    """Whether a tenant can skip its cycle if the call log's probe is unchanged: it has a
    fingerprint of its last full read, no settling call became due, and nothing to send."""
    if state is None or has_work or state.probe_from is None or state.probe_count is None:
        return False
    if state.crm_paused is not None:
        return False  # its cycle reports it paused (design §6.1 /activity)
    return state.recheck_at is None or state.recheck_at > now


def unchanged(state: TenantState, seen: tuple[int, datetime | None]) -> bool:
    """The probe finds what the last full read left (the cycle's own ``_unchanged`` test)."""
    return seen == (state.probe_count, state.probe_max)
