"""The decision rule of ceilings.py on hand-made holders: who loses, who waits, who stays."""

from __future__ import annotations

import threading
import time

import pytest

from iredldap.directory.ceilings import Ceiling, hold
from iredldap.directory.connection import Entry
from iredldap.errors import AlreadyExists, LimitExceeded


def entry(name: str, csn: str = "", created: str = "", quota: str = "") -> Entry:
    attrs = {"entryCSN": [csn] if csn else [], "createTimestamp": [created] if created else []}
    if quota:
        attrs["mailQuota"] = [quota]
    return Entry(f"mail={name},ou=Users,domainName=t.test,o=domains,dc=example,dc=com", attrs)


def csn(n: int) -> str:
    return f"20261201120000.{n:06d}Z#000000#000#000000"


def unique(holders: list[Entry]) -> Ceiling:
    return Ceiling(1, lambda: list(holders), lambda: AlreadyExists("taken"))


def test_alone_stays_at_once():
    a = entry("a", csn(1))
    started = time.monotonic()
    hold(a.dn, [unique([a])])
    assert time.monotonic() - started < 1


def test_of_two_that_see_each_other_the_later_goes_and_the_earlier_stays():
    a, b = entry("a", csn(1)), entry("b", csn(2))
    holders = [a, b]
    with pytest.raises(AlreadyExists):
        hold(b.dn, [unique(holders)], patience=5)
    # The earlier one waits until the later one has undone its write.
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (hold(a.dn, [unique(holders)], patience=5), done.set()))
    waiter.start()
    time.sleep(0.2)
    assert not done.is_set()
    holders.remove(b)
    waiter.join(5)
    assert done.is_set()


def test_the_earlier_gives_up_when_the_later_stays():
    """The later writer stayed on a read that did not see us yet: we lose, one holder remains."""
    a, b = entry("a", csn(1)), entry("b", csn(2))
    started = time.monotonic()
    with pytest.raises(AlreadyExists):
        hold(a.dn, [unique([a, b])], patience=0.3)
    assert time.monotonic() - started >= 0.3


def test_without_server_stamps_the_newcomer_loses():
    """MOCK_SYNC keeps no entryCSN: a clash found after the write is the writer's loss."""
    old, mine = entry("old"), entry("mine")
    with pytest.raises(AlreadyExists):
        hold(mine.dn, [unique([mine, old])], patience=5)


def test_a_limit_keeps_the_first_ones_in_creation_order():
    # "old" was changed last (newest entryCSN) but created first: it counts first.
    old = entry("old", csn(9), created="20261201110000Z")
    racers = [entry(f"r{i}", csn(i), created="20261201120000Z") for i in range(1, 5)]
    holders = [old, *racers]

    def limit():
        return Ceiling(3, lambda: list(holders), lambda: LimitExceeded("full"), by_creation=True)

    for loser in racers[2:]:
        with pytest.raises(LimitExceeded):
            hold(loser.dn, [limit()], patience=5)
    for loser in racers[2:]:
        holders.remove(loser)
    for winner in racers[:2]:
        hold(winner.dn, [limit()], patience=1)


def test_a_quota_limit_adds_up_the_weights():
    mib = 1024 * 1024
    users = [entry(f"q{i}", csn(i), created="20261201120000Z", quota=str(100 * mib)) for i in range(1, 5)]

    def quota():
        return Ceiling(250, lambda: list(users), lambda: LimitExceeded("quota"), by_creation=True,
                       weight=lambda e: int(e.first("mailQuota")) // mib)

    with pytest.raises(LimitExceeded):
        hold(users[2].dn, [quota()], patience=5)  # 300 MB with the two before it
    del users[2:]
    hold(users[1].dn, [quota()], patience=1)


def test_an_undone_write_is_not_kept():
    a, b = entry("a", csn(1)), entry("b", csn(2))
    with pytest.raises(AlreadyExists):
        hold(a.dn, [unique([b])], patience=5)


def test_of_waiters_behind_a_stayer_the_later_ranked_gives_up_first():
    """Two inside a limit of 2 and a later entry that stays (on its domains'
    counters, say): the second waiter gives up, then the first one stays."""
    first, second, stayer = entry("w1", csn(1)), entry("w2", csn(2)), entry("x", csn(3))
    holders = [first, second, stayer]

    def limit():
        return Ceiling(2, lambda: list(holders), lambda: LimitExceeded("full"))

    outcome: dict[str, str] = {}

    def wait(who: Entry) -> None:
        try:
            hold(who.dn, [limit()], patience=0.5)
            outcome[who.dn] = "stayed"
        except LimitExceeded:
            outcome[who.dn] = "gave up"
            holders.remove(who)     # its batch undoes its write

    threads = [threading.Thread(target=wait, args=(e,)) for e in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert outcome == {first.dn: "stayed", second.dn: "gave up"}
    assert holders == [first, stayer]
