"""A durable journal of multi-entry writes, so "all or none" survives the
directory (or the worker) going away in the middle of a request.

Compensation (`Batch` undoing what it wrote) cannot run when the directory is
gone, and not at all when the worker is killed.  So before a journaled batch
sends a write, the write is recorded in iRedAdmin's database
(`iredldap.db.journal`) with what it takes to undo it (for a delete: the
whole entry); after it lands, the row's `done` counter moves on.  Deletes and
renames record their whole plan before the first write, so they can be
finished.

A row left unfinished -- the request lost the directory (state `open`), or
its process died (state `running` with a dead owner) -- is finished by the
next request touching one of its targets (`settle`), at each worker start
and by `iredldap check --repair` (`resume_all`):

* `resume = forward` (deletes, renames: the client asked for them): the
  steps from `done` on are redone;
* `resume = back` (creates and updates): unless every step of a sealed plan
  landed, the steps up to `done` (which may or may not have landed) are
  undone in reverse.

Redo and undo are tolerant: an entry already added or already gone, a value
already there or already removed, counts as done.  Counter increments are
never replayed (replaying one twice would drift): the domain counters of
every domain a resumed journal touched are set to the real count instead,
and its quota total (quota_total.py, moved by compare-and-swap steps
journaled like increments) to the real sum.

Steps hold entries as written or read, password *hashes* included (a deleted
user put back must keep its login); never a clear-text password, which the
stores never see.  A closed row loses its steps.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterable

from ldap3.utils.dn import parse_dn

from iredldap.errors import AlreadyExists, DirectoryUnavailable, IredldapError, NoSuchAccount, ValueAlreadyPresent, \
    ValueMissing
from iredldap.model.accounts import ACCOUNT_TYPES, DOMAIN, USER, any_of, sharing
from iredldap.directory.connection import ADD, DELETE, LEVEL, REPLACE, Attrs, Changes, Directory, Entry, without_operational
from iredldap.directory.quota_total import QUOTA_TOTAL, real_total

log = logging.getLogger(__name__)

INCREMENT = "MODIFY_INCREMENT"
# A `running` row of another host whose heartbeat is older than this is taken
# for dead (a request never runs this long between two steps).
STALE_AFTER = timedelta(minutes=10)
# Counter attribute of a domain -> (container, account types, filter) of what
# it counts (model/accounts.py: the catch-all, a mailUser too, is no user;
# both kinds of mailing list count as lists).
COUNTERS = {t.counter: (t.container, sharing(t), any_of(sharing(t))) for t in ACCOUNT_TYPES if t.counter}
# What a resumed journal or an import sets right on a domain entry: the
# counters and the sum of the users' quotas (quota_total.py).
RECOUNTED = (*COUNTERS, QUOTA_TOTAL)


# -- steps ---------------------------------------------------------------------

def _changes_out(changes: Changes) -> list:
    return [[attr, op, list(values)] for attr, ops in changes.items() for op, values in ops]


def _changes_in(items: list) -> Changes:
    changes: Changes = {}
    for attr, op, values in items:
        changes.setdefault(attr, []).append((op, list(values)))
    return changes


def add_step(dn: str, attrs: Attrs) -> dict:
    return {"op": "add", "dn": dn, "attrs": {k: list(v) for k, v in attrs.items()}}


def modify_step(dn: str, changes: Changes, undo: Changes) -> dict:
    return {"op": "modify", "dn": dn, "changes": _changes_out(changes), "undo": _changes_out(undo)}


def delete_step(dn: str, snapshot: Entry | None) -> dict:
    return {"op": "delete", "dn": dn, "entry": without_operational(snapshot) if snapshot is not None else None}


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def domain_of_dn(dn: str, domains_dn: str) -> str | None:
    """The `domainName` of the domain entry `dn` is (or is below), if any."""
    try:
        parts = parse_dn(dn)
    except Exception:  # noqa: BLE001 - a DN we cannot parse names no domain
        return None
    for attr, value, _ in parts:
        if attr.lower() == "domainname":
            return value.lower()
    return None


class Applier:
    """Tolerant redo and undo of journal steps on the directory."""

    def __init__(self, directory: Directory):
        self.dir = directory

    def redo(self, step: dict) -> None:
        op, dn = step["op"], step["dn"]
        if op == "add":
            self._add(dn, step["attrs"])
        elif op == "delete":
            self._delete(dn)
        elif op == "modify":
            self._modify(dn, _changes_in(step["changes"]))

    def undo(self, step: dict) -> None:
        op, dn = step["op"], step["dn"]
        if op == "add":
            if self._is_ours(dn, step["attrs"]):
                self._delete(dn)
        elif op == "delete":
            if step.get("entry"):
                self._add(dn, step["entry"])
        elif op == "modify":
            self._modify(dn, _changes_in(step["undo"]))

    def landed(self, step: dict) -> bool | None:
        """Did this step land?  None when it cannot be told (an increment)."""
        op, dn = step["op"], step["dn"]
        if op == "add":
            return self._is_ours(dn, step["attrs"])
        if op == "delete":
            return not self.dir.exists(dn)
        changes = step["changes"]
        if any(o == INCREMENT for _, o, _ in changes):
            return None
        entry = self.dir.get(dn, attrs=sorted({a for a, _, _ in changes}))
        if entry is None:
            return False
        for attr, o, values in changes:
            have = {v.lower() for v in entry.get(attr)}
            if o == ADD and not all(v.lower() in have for v in values):
                return False
            if o == DELETE and (any(v.lower() in have for v in values) if values else have):
                return False
            if o == REPLACE and have != {v.lower() for v in values}:
                return False
        return True

    def _is_ours(self, dn: str, attrs: Attrs) -> bool:
        """Is the entry at `dn` the one the step added (not one made since by someone else)?"""
        entry = self.dir.get(dn, attrs=[a for a in attrs if a.lower() != "userpassword"] or ["1.1"])
        if entry is None:
            return False
        for attr, values in attrs.items():
            if attr.lower() in ("userpassword", "objectclass"):
                continue
            if not all(entry.has_value(attr, v) for v in values):
                return False
        return True

    def _add(self, dn: str, attrs: Attrs) -> None:
        try:
            self.dir.add(dn, {k: list(v) for k, v in attrs.items()})
        except AlreadyExists:
            pass

    def _delete(self, dn: str) -> None:
        try:
            self.dir.delete(dn)
        except NoSuchAccount:
            pass

    def _modify(self, dn: str, changes: Changes) -> None:
        changes = {a: [(op, v) for op, v in ops if op != INCREMENT] for a, ops in changes.items()}
        changes = {a: ops for a, ops in changes.items() if ops}
        if not changes:
            return
        try:
            self.dir.modify(dn, changes)
            return
        except NoSuchAccount:
            return
        except (ValueAlreadyPresent, ValueMissing):
            pass
        # Some of it is there already: one value at a time.
        for attr, ops in changes.items():
            for op, values in ops:
                pieces = [[v] for v in values] if op in (ADD, DELETE) and values else [values]
                for piece in pieces:
                    try:
                        self.dir.modify(dn, {attr: [(op, piece)]})
                    except (ValueAlreadyPresent, ValueMissing, NoSuchAccount):
                        pass

    def recount(self, domain_dn: str, attrs: Iterable[str] | None = None) -> None:
        """Set the domain's counters and quota total (RECOUNTED) to the real
        count and sum (those it has, or `attrs`)."""
        entry = self.dir.get(domain_dn, attrs=RECOUNTED, filterstr=DOMAIN.filter())
        if entry is None:
            return
        wanted = set(attrs or ()) | {a for a in RECOUNTED if entry.get(a)}
        changes: Changes = {}
        for attr in sorted(wanted):
            if attr == QUOTA_TOTAL:
                real = real_total(self.dir, f"ou={USER.container},{domain_dn}")
            else:
                ou, _, flt = COUNTERS[attr]
                real = sum(1 for _ in self.dir.paged_search(f"ou={ou},{domain_dn}", flt, scope=LEVEL,
                                                            attrs=("1.1",)))
            if entry.first(attr) != str(real):
                changes[attr] = [(REPLACE, [str(real)])]
        if changes:
            self.dir.modify(domain_dn, changes)


# -- one batch's journal row ---------------------------------------------------------

class JournalEntry:
    """The journal row of one `Batch`; opened at its first write."""

    def __init__(self, journal: "WriteJournal", kind: str, targets: list[str], resume: str):
        self.journal = journal
        self.kind = kind
        self.targets = targets
        self.resume = resume
        self.id: int | None = None
        self.written = 0      # steps in the row
        self.done = 0         # steps landed
        self.planned_only = False   # the row is `planned`: nothing sent yet

    def plan(self, steps: list[dict], *, sealed: bool, sending: bool = False) -> None:
        """Write down steps that will follow (before the first of them is sent).

        `sending`: the first of them is sent right after, so a new row is
        opened `running` at once (one transaction less than `planned` and
        then `running`; a row left behind is finished either way)."""
        self._write(steps, sealed=sealed, planned=not sending)

    def before(self, step: dict) -> None:
        """A step is about to be sent; record it unless it was planned."""
        if self.written > self.done:
            if self.planned_only:
                # From here on the directory may change: a row left behind is
                # finished (forward or back), no longer simply dropped.
                self.journal.table.set_state(self.id, "running")
                self.planned_only = False
            return  # the planned step now sent
        self._write([step], sealed=False)

    def _write(self, steps: list[dict], *, sealed: bool, planned: bool = False) -> None:
        if self.id is None:
            # Opened and marked active in one step for the other threads of
            # this process: one settling the same targets meanwhile would
            # otherwise take the new row, ours, for one a dead batch left, and
            # roll back what this batch is sending.
            with _ACTIVE_LOCK:
                self.id = self.journal.table.open(kind=self.kind, targets=self.targets, resume=self.resume,
                                                  owner=self.journal.owner, steps=steps, sealed=sealed,
                                                  state="planned" if planned else "running")
                self.journal.active.add(self.id)
            self.planned_only = planned
        else:
            self.journal.table.append(self.id, self.written, steps, sealed=sealed)
        self.written += len(steps)

    def rejected(self) -> None:
        """The step just sent was refused: forget it and the plan after it."""
        if self.id is not None and self.written > self.done:
            self.journal.table.truncate(self.id, self.done)
            self.written = self.done

    def landed(self) -> None:
        self.done += 1
        self.journal.table.mark_done(self.id, self.done)

    def finish(self) -> None:
        if self.id is not None:
            self.journal.table.close(self.id, "done")
            self.journal.active.discard(self.id)

    def undone(self) -> None:
        if self.id is not None:
            self.journal.table.close(self.id, "undone")
            self.journal.active.discard(self.id)

    def leave_open(self, reason: str) -> None:
        """The directory is gone: whoever comes next finishes this."""
        if self.id is None:
            return
        self.journal.active.discard(self.id)
        try:
            self.journal.table.set_state(self.id, "open", reason)
        except IredldapError as err:
            # Still `running` with our owner: taken for dead after STALE_AFTER,
            # or at once when this process is gone.
            log.error("journal %s: cannot mark it open: %s", self.id, err.code)


# -- the journal -------------------------------------------------------------------

_ACTIVE: set[int] = set()
_ACTIVE_LOCK = threading.Lock()


class WriteJournal:
    def __init__(self, table, directory: Directory, domains_dn: str):
        self.table = table
        self.dir = directory
        self.domains_dn = domains_dn
        self.owner = owner_id()
        # Rows this process is writing now (a `running` row of ours not in
        # here was left by a batch that died without closing it); shared by
        # every journal of the process.
        self.active = _ACTIVE
        self._lock = threading.Lock()

    def begin(self, kind: str, targets: Iterable[str], resume: str) -> JournalEntry:
        return JournalEntry(self, kind, [t.lower() for t in targets], resume)

    # -- finishing what others left ------------------------------------------------

    def resumable(self, row) -> bool:
        if row.state == "open":
            return True
        if row.owner == self.owner:
            with _ACTIVE_LOCK:   # a row being opened now is in `active` once we get the lock
                return row.id not in self.active  # ours, and no live batch of ours holds it
        if row.id in self.active:
            return False
        host, _, pid = row.owner.rpartition(":")
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
            except (ValueError, ProcessLookupError):
                return True
            except PermissionError:
                pass
        updated = row.updated
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return now - updated > STALE_AFTER

    def settle(self, targets: Iterable[str]) -> int:
        """Finish unfinished rows naming any of `targets`; returns how many."""
        wanted = {t.lower() for t in targets}
        rows = [r for r in self.table.unfinished() if wanted & set(r.targets)]
        return sum(1 for r in rows if self.resumable(r) and self.resume(r))

    def resume_all(self) -> list[tuple[int, str]]:
        """Finish every resumable row; returns (id, outcome) of each."""
        out = []
        for row in self.table.unfinished():
            if self.resumable(row) and self.resume(row):
                closed = self.table.get(row.id)
                out.append((row.id, closed.state if closed else "?"))
        return out

    def resume(self, row) -> bool:
        """Finish one row (claimed first, so two resumers never race)."""
        if not self.table.claim(row, self.owner):
            return False
        if row.state == "planned":
            # Nothing was sent (e.g. the SQL writes before a delete failed):
            # the directory is as it was.
            self.table.close(row.id, "undone", "nothing was sent")
            return True
        steps = self.table.steps(row.id)
        applier = Applier(self.dir)
        try:
            if row.resume == "forward":
                for step in steps[row.done:]:
                    applier.redo(step)
                outcome, note = "done", "rolled forward"
            elif row.sealed and self._complete(applier, steps, row.done):
                outcome, note = "done", "complete"
            else:
                for step in reversed(steps[:row.done + 1]):
                    applier.undo(step)
                outcome, note = "undone", "rolled back"
            for domain_dn, counters in self._touched_domains(steps).items():
                applier.recount(domain_dn, counters)
        except DirectoryUnavailable as err:
            self.table.set_state(row.id, "open", f"resume stopped: {err.reason}")
            raise
        except IredldapError as err:
            self.table.set_state(row.id, "open", f"resume failed: {err.code} {err.reason}")
            log.error("journal %s: resume failed: %s", row.id, err.code)
            return False
        self.table.close(row.id, outcome, note)
        log.warning("journal %s (%s %s): %s", row.id, row.kind, " ".join(row.targets), note)
        return True

    @staticmethod
    def _complete(applier: Applier, steps: list[dict], done: int) -> bool:
        if done >= len(steps):
            return True
        # Only the last step unconfirmed: it may have landed (a timeout).
        return done == len(steps) - 1 and applier.landed(steps[-1]) is True

    def _touched_domains(self, steps: list[dict]) -> dict[str, set[str]]:
        touched: dict[str, set[str]] = {}
        for step in steps:
            domain = domain_of_dn(step["dn"], self.domains_dn)
            if domain is None:
                continue
            dn = f"domainName={domain},{self.domains_dn}"
            counters = touched.setdefault(dn, set())
            if step["op"] == "modify":
                counters.update(a for a, op, _ in step["changes"] if op == INCREMENT and a in RECOUNTED)
        return touched
