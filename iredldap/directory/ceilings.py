"""Uniqueness and limits that hold under concurrent requests.

A check before the write cannot hold: two requests both check, both find
room, both write.  So every write that may break a rule is checked after it
was made, inside its `Batch`, with `hold()`; the request that loses raises,
and its batch undoes what it wrote.  A rule is a `Ceiling`: at most `most`
(counted by `weight`) of the entries `holders()` finds may stay.  A unique
address or domain name is a ceiling of 1 over the entries holding it; a
limit like numberOfUsers or maxUsers a ceiling over the entries it counts.

Who loses is decided so that racers agree without talking to each other:
the holders are put in the order the server wrote them (`entryCSN`, which
slapd stamps on every write with microseconds and a sequence number; for
limits `createTimestamp` first, so that an old entry changed meanwhile
still counts as old), and the entries past the ceiling in that order lose
and undo themselves at once.  An entry inside the ceiling stays only once
it has *seen* the total within the ceiling, i.e. after the losers have gone;
until then it reads again.  That last rule is what makes the result safe
whatever the order says: of the requests that stay, the one that read last
saw all the others (each wrote before its own final read), so at most
`most` can stay.  The order only decides that, normally, exactly `most`
stay: if a loser does not go away within `PATIENCE_SECONDS` (it may have
stayed on a read that did not see us yet), the waiting one gives up and
loses instead; then there is still one winner, never two.  Of several
waiting behind such a stayer, the later-ranked give up first (`STAGGER`), so
that normally only as many go as must.

An admin's limits over all its domains (maxUsers, maxAliases, maxLists,
maxQuota) are judged first from what each domain entry counts --
`domainCurrent*Number`, the quota total (quota_total.py) -- not from the
entries: a `SharedCeiling`.  After its own write (the increment, the
reservation) a request reads its admin's domains' values, one search
whatever their size; if they add up to at most `most` it stays: that is a read after its write that saw the total within
the ceiling, the same condition on which `hold` lets an entry stay, so the
argument above holds for both kinds of stayers together.  Only when the
values are over the limit -- requests racing for the last places -- is the
`ranked` ceiling held as above (reading the entries), to decide which of
them go.  A request that stayed on the values may be ranked late among the
entries: those ranked before it wait for it in vain and give up, the
later-ranked first, until the entries are within `most`.  When the admin manages one domain only, the value the write
itself made (the Post-Read value of the increment, the total the
reservation wrote) ranks the request among its racers, as for a domain's
own numberOfUsers: no read at all.

Entries without the operational attributes (ldap3's MOCK_SYNC does not keep
them) are taken as older than our own entry: offline there is no race, and
a clash found after the write is then always the newcomer's loss.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from iredldap.errors import IredldapError
from iredldap.directory.connection import Entry

log = logging.getLogger(__name__)

# What the ordering reads; every `holders()` search asks for these.
ORDER_ATTRS = ("createTimestamp", "entryCSN")

# How long an entry inside a ceiling waits for the entries past it to go.
PATIENCE_SECONDS = 10.0
# The first-ranked waiters wait longer, by this part of the patience a
# place (over the last few places): of waiters stuck behind entries that
# stay, the later-ranked give up first, one after another, and the earlier
# ones then see the total within the ceiling and stay.
STAGGER, STAGGER_PLACES = 0.1, 5
_FIRST_PAUSE, _LONGEST_PAUSE = 0.01, 0.2


@dataclass(frozen=True)
class Ceiling:
    """At most `most` (summing `weight`) of the entries `holders()` returns may stay."""

    most: int
    holders: Callable[[], Iterable[Entry]]
    refusal: Callable[[], IredldapError]
    # Limits count entries by when they were created; uniqueness by when they
    # were last written (an address added to an old entry is a new claim).
    by_creation: bool = False
    weight: Callable[[Entry], int] = lambda entry: 1


@dataclass(frozen=True)
class SharedCeiling:
    """At most `most` of the value `attr` of the `domains`' entries added up
    (an admin's limit, in the attribute's unit); `ranked` decides among
    racers once the values are over it."""

    most: int
    attr: str
    domains: tuple[str, ...]
    ranked: Ceiling

    def refusal(self) -> IredldapError:
        return self.ranked.refusal()


def shared_ceilings(domain: str, made: dict[str, int | None], limits: Sequence[SharedCeiling],
                    held: Callable[[list[str], tuple[str, ...]], dict[str, dict[str, int]]]) -> list[Ceiling]:
    """Hold an admin's limits over its domains for a write that just made
    the values `made` (attribute -> the value its increment or reservation
    made in `domain`; None: not known).  `held(domains, attrs)`: those
    values of each domain (lower case), read from the domain entries.

    Raises the refusal of a limit the write is past; returns the ranked
    ceilings of the limits found over `most`, for the caller to hold
    (racers for the last places)."""
    domain = domain.lower()
    spread: list[SharedCeiling] = []
    for limit in limits:
        if limit.attr not in made or domain not in limit.domains:
            continue
        mine = made[limit.attr]
        if limit.domains == (domain,) and mine is not None:
            # Alone in its domain: the value the write made ranks it.
            if mine > limit.most:
                raise limit.refusal()
        else:
            spread.append(limit)
    if not spread:
        return []
    values = held(sorted({d for c in spread for d in c.domains}), tuple({c.attr for c in spread}))
    return [c.ranked for c in spread if sum(values[d][c.attr] for d in c.domains) > c.most]


def ranked_room(rank: int | None, room: Ceiling) -> list[Ceiling]:
    """A domain's own limit (numberOfUsers, numberOfAliases ...) for an
    entry whose counter increment made `rank`: each of racing creates sees
    its own value, so it ranks them without reading any entry; raises
    `room`'s refusal past it.  `rank` None (the counter was just set to the
    real count): `room` itself, to hold by ranking the entries."""
    if rank is None:
        return [room]
    if rank > room.most:
        raise room.refusal()
    return []


_LOST, _WON, _WAIT = "lost", "won", "wait"


def hold(mine: str, ceilings: Sequence[Ceiling], *, patience: float = PATIENCE_SECONDS) -> None:
    """Raise the refusal of the first ceiling the entry `mine` (a DN, just
    written) loses; return once it is within all of them."""
    pending = list(ceilings)
    started = time.monotonic()
    pause = _FIRST_PAUSE
    while pending:
        waiting = []
        ahead = STAGGER_PLACES
        for ceiling in pending:
            verdict, before_mine = _judge(ceiling, mine)
            if verdict == _LOST:
                raise ceiling.refusal()
            if verdict == _WAIT:
                waiting.append(ceiling)
                ahead = min(ahead, before_mine)
        if not waiting:
            return
        if time.monotonic() >= started + patience * (1 + STAGGER * (STAGGER_PLACES - ahead)):
            # A holder ranked after us is still there: it decided to stay
            # before it could see us (or on its domains' counters), so we
            # are the one to go.
            log.warning("gave up %s after %.0f s: a later writer stayed", mine, time.monotonic() - started)
            raise waiting[0].refusal()
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
        pending = waiting


def _judge(ceiling: Ceiling, mine: str) -> tuple[str, int]:
    """The verdict, and how many entries are ranked before ours."""
    mine_key = _dn_key(mine)
    entries = list(ceiling.holders())
    if not any(_dn_key(e.dn) == mine_key for e in entries):
        return _LOST, 0  # our write is not there (undone meanwhile): nothing to keep
    ranked = sorted(entries, key=lambda e: _order_key(e, mine_key, ceiling.by_creation))
    before = 0
    for place, entry in enumerate(ranked):
        before += ceiling.weight(entry)
        if _dn_key(entry.dn) == mine_key:
            break
    if before > ceiling.most:
        return _LOST, place
    if sum(ceiling.weight(e) for e in entries) <= ceiling.most:
        return _WON, place
    return _WAIT, place


def _order_key(entry: Entry, mine_key: str, by_creation: bool) -> tuple:
    dn = _dn_key(entry.dn)
    csn = entry.first("entryCSN")
    if not csn:
        # No server stamp (MOCK_SYNC): ours is the newest.
        return (1 if dn == mine_key else 0, "", "", dn)
    created = entry.first("createTimestamp") if by_creation else ""
    return (0, created, csn, dn)


def _dn_key(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))
