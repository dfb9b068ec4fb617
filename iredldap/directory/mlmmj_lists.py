"""Subscribable (mlmmj) mailing lists: the LDAP entry and the mlmmj list, all or nothing.

A list is its `mailList` entry with `enabledService: mlmmj` (what Postfix and
iRedAPD read, mlmmj.md 2) and its directory in the mlmmj spool (settings and
subscribers), written through a `ListSpool` (iredldap.mlmmj).  The entry's
writes go through a journaled `Batch` like every other account's; the spool
half is ordered so that a failure of either half leaves neither:

* create: the entry is added and its address held first (so a losing
  parallel create never touches the winner's list directory), then the list
  is made in the spool inside the batch; a spool failure undoes the entry,
  and a later undo of the batch removes the list directory it made;
* update: the entry is modified, then the profile and the subscribers
  change; a spool failure undoes the entry's change, and what the spool
  already took is put back as it was read before;
* delete: the whole plan is in the journal first, then the spool half runs
  (in the batch's `after`), and only then the first entry goes; rename: the
  list directory moves first, inside the batch, before the first entry is
  written.  If the spool half fails nothing in LDAP changed; once it
  succeeded the journal (resumed forward) finishes the LDAP half even if the
  directory dies, and an LDAP refusal undoes the batch and moves the list
  directory back.

The journal knows only LDAP steps: a worker killed between a finished
spool create and the end of its batch leaves a list directory without an
entry (Postfix does not route to it; `iredldap check` does not see it).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Sequence

from iredldap.directory.connection import SUBTREE, Batch, Directory, Entry
from iredldap.directory.groups import GroupStore
from iredldap.directory.tree import Tree
from iredldap.directory.values import diff
from iredldap.errors import IredldapError, NoSuchAccount
from iredldap.mlmmj import ListSpool, Subscriber, resubscribe
from iredldap.model.accounts import MLMMJ_LIST
from iredldap.model import validators
from iredldap.model.mlmmj_profile import check_new_list_address, form_of_profile
from iredldap.model.subscribable import spool_form

log = logging.getLogger(__name__)

# A mailingListID is drawn again while another list has it (mlmmjadmin tries 20 times).
_ID_TRIES = 20


def _joined(name: str, value: Any) -> str:
    """A profile value as read (mlmmjadmin's GET) back into its form value."""
    if isinstance(value, list):
        return ("\n" if name == "custom_headers" else ",").join(value)
    return str(value)


class SubscribableListStore(GroupStore):
    account = MLMMJ_LIST

    def __init__(self, directory: Directory, tree: Tree, spool: ListSpool, *, transport_name: str = "mlmmj"):
        super().__init__(directory, tree)
        self.spool = spool
        self.transport_name = transport_name

    def transport(self, mail: str) -> str:
        """The entry's mtaTransport: `<transport>:<domain>/<local part>`, the spool directory."""
        local, _, domain = mail.partition("@")
        return f"{self.transport_name}:{domain}/{local}"

    # -- create ---------------------------------------------------------------

    def _placeholders(self, mail: str) -> dict[str, str]:
        return {"transport": self.transport_name, "local_part": mail.partition("@")[0], "mlid": self._new_id()}

    def _new_id(self) -> str:
        for _ in range(_ID_TRIES):
            mlid = str(uuid.uuid4())
            if not self.dir.search(self.tree.domains_dn, self.account.filter("(mailingListID=%s)", mlid),
                                   scope=SUBTREE, attrs=("1.1",), size_limit=1):
                return mlid
        raise IredldapError("no free mailingListID found")

    def create(self, mail: str, values: dict[str, Any], *, limits=()) -> str:
        # Refused before anything is written: an address mlmmj cannot take, a
        # bad profile value, mlmmj out of reach.
        check_new_list_address(validators.email(mail))
        spool_form(values)
        self.spool.ping()
        return super().create(mail, values, limits=limits)

    def _created(self, batch: Batch, mail: str, values: dict[str, Any]) -> None:
        # The entry is in and the address held: now the mlmmj half.  An
        # undo of the batch from here on removes the list again -- unless
        # its directory was there before (left behind by someone else).
        existed = self.spool.exists(mail)
        if not existed:
            def remove() -> None:
                self.spool.delete(mail, archive=False)
            batch.on_rollback(remove)
        self.spool.create(mail, spool_form(values))
        if values.get("subscribers"):
            self.spool.add_subscribers(mail, values["subscribers"], subscription=values.get("subscription", "normal"),
                                       require_confirm=values.get("require_confirm", True))

    def _add_entry(self, batch: Batch, dn: str, attrs: dict, mail: str, members: list[str]) -> None:
        # listAllowedUser: the owners and moderators, as mlmmjadmin's LDAP backend keeps it.
        allowed = list(dict.fromkeys(v.lower() for v in attrs.get("listOwner", []) + attrs.get("listModerator", [])))
        if allowed:
            attrs["listAllowedUser"] = allowed
        batch.add(dn, attrs)

    # -- update ---------------------------------------------------------------

    def update(self, mail: str, values: dict[str, Any]) -> None:
        spool_form(values)
        self.spool.ping()
        super().update(mail, values)

    def _change_members(self, batch: Batch, entry: Entry, mail: str, values: dict[str, Any]) -> None:
        if "owner" in values or "moderators" in values:
            def now(name: str, attr: str) -> list[str]:
                if name in values:
                    return [v for v in values[name].split(",") if v]
                return [v.lower() for v in entry.get(attr)]
            allowed = dict.fromkeys(now("owner", "listOwner") + now("moderators", "listModerator"))
            ops = diff(entry.get("listAllowedUser"), allowed)
            if ops:
                batch.modify(entry.dn, {"listAllowedUser": ops}, before=entry)
        form = spool_form(values)
        if form:
            before = self.spool.profile(mail)
            restore = {k: _joined(k, before[k]) for k in form if k in before}
            # Registered first: an update failing half-way (some control files
            # written, then the disk is full) is put back too.
            batch.on_rollback(lambda: self.spool.update(mail, restore))
            self.spool.update(mail, form)
        self._change_subscribers(batch, mail, values)

    def _change_subscribers(self, batch: Batch, mail: str, values: dict[str, Any]) -> None:
        add, remove = values.get("add_subscribers", []), values.get("remove_subscribers", [])
        if not add and not remove:
            return
        before = self.spool.subscribers(mail)
        had = {s.mail.lower() for s in before}
        kind = values.get("subscription", "normal")
        # Each undo is registered before its change: one failing half-way
        # (some subscriber files written) is put back too.
        if add:
            new = [a for a in add if a.lower() not in had]
            if new:
                batch.on_rollback(lambda: self.spool.remove_subscribers(mail, new))
            self.spool.add_subscribers(mail, add, subscription=kind,
                                       require_confirm=values.get("require_confirm", True))
        if remove:
            removed = {r.lower() for r in remove}
            gone = [s for s in before if s.mail.lower() in removed]
            if gone:
                batch.on_rollback(lambda: self._resubscribe(mail, gone))
            self.spool.remove_subscribers(mail, remove)

    def _resubscribe(self, mail: str, subscribers: Sequence[Subscriber]) -> None:
        resubscribe(self.spool, mail, subscribers)

    # -- delete and rename ----------------------------------------------------------

    def delete(self, mail: str, *, archive: bool = True, after: Callable[[], None] | None = None) -> None:
        """Remove the entry and the list (with `archive`, moved aside as
        mlmmjadmin archives it)."""
        self.spool.ping()

        def spool_too() -> None:
            if after is not None:
                after()
            self.spool.delete(mail, archive=archive)

        super().delete(mail, after=spool_too)

    def rename(self, old: str, new: str, *, after: Callable[[], None] | None = None) -> None:
        check_new_list_address(validators.email(new, param="new_mail"), "new_mail")
        self.spool.ping()
        super().rename(old, new, after=after)

    def _move_members(self, batch: Batch, old: str, new: str) -> None:
        # Inside the rename's batch, before its first LDAP write: the list
        # directory moves first.  An undone batch moves it back; a batch the
        # directory cut short is finished forward by the journal, to match.
        self.spool.rename(old, new)

        def back() -> None:
            self.spool.rename(new, old)
        batch.on_rollback(back)

    def _readdressed(self, attrs: dict, new: str) -> dict:
        out = {k: v for k, v in attrs.items() if k.lower() != "mtatransport"}
        out["mtaTransport"] = [self.transport(new)]
        return out

    # -- reading ------------------------------------------------------------------

    def members(self, entry: Entry, mail: str) -> list[str]:
        return sorted({s.mail.lower() for s in self.spool.subscribers(mail)})

    def archive_lists(self, mails: Sequence[str]) -> Callable[[], None]:
        """Archive the list directories of `mails` (a domain going), all or
        none: if one fails, those already archived are made again and the
        error is raised.  Returns how to make them all again (should the
        deletion be undone).  Made again means from the profile and the
        subscribers read before: their posts stay in the archive (mlmmjadmin
        has no way back from it)."""
        done: list[tuple[str, dict[str, Any], list[Subscriber]]] = []

        def restore() -> None:
            for mail, profile, subscribers in reversed(done):
                try:
                    self.spool.create(mail, form_of_profile(profile))
                    self._resubscribe(mail, subscribers)
                except Exception as err:  # noqa: BLE001 - put back the others
                    log.error("could not make the archived list %s again: %s", mail, err.__class__.__name__)

        try:
            for mail in mails:
                try:
                    saved = (self.spool.profile(mail), self.spool.subscribers(mail))
                except NoSuchAccount:
                    saved = None
                self.spool.delete(mail, archive=True)
                if saved is not None:
                    done.append((mail, *saved))
        except BaseException:
            restore()
            raise
        return restore

    def spool_lists_of(self, domain: str) -> list[str]:
        """The addresses of the domain's subscribable lists (for deleting the domain)."""
        return [e.first("mail").lower() for e in self.list(domain, attrs=("mail",))]
