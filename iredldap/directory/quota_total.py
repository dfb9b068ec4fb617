"""The sum of a domain's mailbox quotas, kept on the domain entry.

`domainCurrentQuotaSize` (iRedMail's schema; an IA5String that holds the
byte count as decimal text, the way iRedAdmin writes it when a global admin
lists a domain's users) holds the sum of the `mailQuota` of the domain's
users: the catch-all and the users without a quota (unlimited) count 0.  The
domain quota (`accountSetting domainQuota:<MB>`) and a normal admin's
maxQuota are checked against it, so a create reads one value, not every
user of the domain.

slapd increments only INTEGER attributes, so the total is moved by a
compare-and-swap: one modify that deletes the value read and adds the new
one.  If another request moved it meanwhile, the value read is gone, the
modify fails as a whole (noSuchAttribute) and the total is read again.  A
raise is written *before* the quota it is for (a reservation: each of racing
creates sees the others' reservations, so the limit checked in the swap holds
whatever their order), a lowering after the quota is lowered, and a batch
that is undone gives its reservation back, by a swap too.

When the total is kept: on every domain entry that has it.  A domain without
it (made by other tools, or by versions that did not keep it) gets it when a
limit needs it -- a domain quota, or the maxQuota of an admin of the domain:
the users' quotas are added up once and the sum is written by one atomic add
that every racing request tries before its own change (as the counters are
started, `Addresses.start_counter`), so the sum counts no reservation of a
request still running.  A value that is not a number is taken for absent
and counted again the same way.  A value written by another tool is trusted
(iRedAdmin writes the real sum), but a sum it wrote while one of our writes
was under way may be off by that write; a resumed journal, an LDIF import
and `iredldap check --repair` set it to the real sum.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Sequence

from iredldap.errors import Conflict, InvalidInput, IredldapError, ValueAlreadyPresent, ValueMissing
from iredldap.model.accounts import USER
from iredldap.directory.connection import ADD, DELETE, LEVEL, Batch, Directory, Entry, as_int
from iredldap.directory.tree import Tree

QUOTA_TOTAL = "domainCurrentQuotaSize"

# A swap that keeps losing to others gives up after this many tries (each
# loss means another request moved the total: with a few workers it takes a
# handful at the most).
SWAP_ATTEMPTS = 60
# A limit on the total: at most this many bytes, else this refusal.
Bound = tuple[int, Callable[[], IredldapError]]
_LONGEST_PAUSE = 0.02


def total_of(entry: Entry | None) -> int | None:
    """The total the domain entry holds; None if it has none (or not a number)."""
    if entry is None:
        return None
    raw = entry.first(QUOTA_TOTAL).strip()
    return int(raw) if raw.isdigit() else None


def quota_of(user: Entry) -> int:
    """A user's `mailQuota` in bytes as the total counts it: 0 when it has
    none (unlimited) or holds no positive number."""
    quota = as_int(user.first("mailQuota"))
    return quota if quota is not None and quota > 0 else 0


def real_total(directory: Directory, users_dn: str) -> int:
    """The `mailQuota` of the users below `users_dn` (a domain's ou=Users) added up, in bytes."""
    return sum(quota_of(user) for user in
               directory.paged_search(users_dn, USER.filter(), scope=LEVEL, attrs=("mailQuota",)))


class QuotaTotals:
    def __init__(self, directory: Directory, tree: Tree):
        self.dir = directory
        self.tree = tree

    def real(self, domain: str) -> int:
        return real_total(self.dir, self.tree.container(domain, USER.container))

    def start(self, domain: str, *, entry: Entry | None = None) -> None:
        """Give the domain its total if it has none (see the module's docstring)."""
        if total_of(entry) is not None:
            return
        dn = self.tree.domain(domain)
        current = self.dir.get(dn, attrs=(QUOTA_TOTAL,))
        if current is None or total_of(current) is not None:
            return
        replaced = [(DELETE, current.get(QUOTA_TOTAL)[:1])] if current.get(QUOTA_TOTAL) else []
        try:
            self.dir.modify(dn, {QUOTA_TOTAL: [*replaced, (ADD, [str(self.real(domain))])]})
        except (ValueAlreadyPresent, ValueMissing, InvalidInput):
            pass  # a parallel request started it first (a second value of a single-valued attribute)

    def move(self, domain: str, delta: int, *, bounds: Sequence[Bound] = (),
             read: Callable[[], tuple[Entry | None, list[Bound]]] | None = None,
             known: Entry | None = None) -> int | None:
        """Move the domain's total by `delta` bytes; returns the total written
        (None: the domain keeps none, and no bound asks for one).

        `bounds`: (most, refusal) pairs; a raise that would take the total
        above a `most` is refused with its `refusal()`, and nothing is
        written.  `read`: reads the domain entry together with more bounds
        (an admin's limit less what its other domains hold), at each try.
        `known`: the domain entry as the request read it, for the first try
        (saves a read).
        """
        entry = known
        more: list[Bound] = []
        for attempt in range(SWAP_ATTEMPTS):
            if entry is None:
                entry, more = read() if read is not None else \
                    (self.dir.get(self.tree.domain(domain), attrs=(QUOTA_TOTAL,)), [])
                if entry is None:
                    return None     # the domain is gone
            current = total_of(entry)
            if current is None and entry is known:
                entry = None    # read before it was started, maybe: read it now
                continue
            if current is None:
                if not bounds and read is None:
                    return None
                self.start(domain)  # a limit needs it: counted now
                entry = None
                continue
            # (Below 0 only if the total was already too low: it stays at 0
            # until `iredldap check --repair` counts it again.)
            new = max(current + delta, 0)
            for most, refusal in (*bounds, *more) if delta > 0 else ():
                if new > most:
                    raise refusal()
            if new == current:
                return current
            try:
                self.dir.modify(self.tree.domain(domain),
                                {QUOTA_TOTAL: [(DELETE, entry.get(QUOTA_TOTAL)[:1]), (ADD, [str(new)])]})
                return new
            except ValueMissing:
                # Moved by another request since it was read: read it again.
                entry = None
                time.sleep(random.uniform(0, min(_LONGEST_PAUSE, 0.001 * 2 ** attempt)))
        raise Conflict(f"the quota total of {domain} keeps changing; try again")

    def reserve(self, batch: Batch, domain: str, delta: int, *, bounds: Sequence[Bound] = (),
                read: Callable[[], tuple[Entry | None, list[Bound]]] | None = None,
                known: Entry | None = None) -> list[int | None]:
        """Queue `move` as a step of `batch` (sent with the rest of its plan,
        in order); undone -- the reservation given back -- with the batch.
        Returns a list that gets the total this move wrote (None: none is
        kept) once it is sent."""
        seen: list[int | None] = []
        batch.plan_total(self.tree.domain(domain), QUOTA_TOTAL, delta,
                         send=lambda: seen.append(self.move(domain, delta, bounds=bounds, read=read, known=known)),
                         undo=lambda: self.move(domain, -delta))
        return seen

    def release(self, batch: Batch, domain: str, delta: int) -> None:
        """Queue lowering the total by `delta` bytes (sent with the rest of the batch's plan)."""
        if delta:
            batch.plan_total(self.tree.domain(domain), QUOTA_TOTAL, -delta,
                             send=lambda: self.move(domain, -delta), undo=lambda: self.move(domain, delta))

