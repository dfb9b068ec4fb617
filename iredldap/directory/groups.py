"""Mail aliases and mailing lists: addresses that stand for other addresses.

An alias (`mailAlias` in ou=Aliases) lists its members in its own
`mailForwardingAddress`.  A mailing list (`mailList` in ou=Groups) keeps its
membership on the members: each hosted member carries `memberOfGroup: <list>`,
and members outside the server are `mail` values of the list's one
`mailExternalUser` entry in ou=Externals.  Postfix reads aliases with
virtual_alias_maps and lists with virtual_group_maps.

Both kinds share creation (the domain's limit and the creating admin's, both
held from the domains' counters; free address, alias-domain twins), update
of the declared fields, delete and rename, all derived from their
declarations (model/accounts.py); the member handling differs: one
class for each way of storing members (`STORES`).
"""

from __future__ import annotations

import builtins
from typing import Any, Callable, Iterator, Sequence

from iredldap.model.accounts import ALIAS, DOMAIN, MAILLIST, MEMBERS_IN_ENTRY, MEMBERS_POINT_TO_IT, AccountType, sharing
from iredldap.errors import AlreadyExists, InvalidInput, LimitExceeded
from iredldap.model.templates import load
from iredldap.directory import settings_attr
from iredldap.directory.addresses import ADDRESS_CLASSES, Addresses, attr_of, copy_attrs, with_attr
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling, SharedCeiling, ranked_room, shared_ceilings
from iredldap.directory.connection import LEVEL, SUBTREE, Batch, Directory, Entry, as_int
from iredldap.directory.tree import Tree, f
from iredldap.directory.values import diff, field_attrs, field_changes, wanted


class GroupStore:
    """What aliases and lists have in common; subclasses say where members live."""

    account: AccountType

    def __init__(self, directory: Directory, tree: Tree, account: AccountType | None = None):
        """`account`: the type it stores (default: the class's own)."""
        self.dir = directory
        self.tree = tree
        self.addresses = Addresses(directory, tree)
        if account is not None:
            self.account = account

    def dn(self, mail: str) -> str:
        return self.tree.dn(self.account, mail)

    def find(self, mail: str, attrs=("*",)) -> Entry | None:
        return self.dir.get(self.dn(mail), attrs=attrs, filterstr=self.account.filter())

    def get(self, mail: str, attrs=("*",)) -> Entry:
        entry = self.find(mail, attrs)
        if entry is None:
            raise self.account.missing(mail)
        return entry

    def list(self, domain: str, *, disabled_only: bool = False, search: str = "", attrs=("*",)) -> Iterator[Entry]:
        """Read page by page (LDAP paged results); `search`: address or name contains it."""
        yield from self.addresses.scan(domain, self.account, disabled_only=disabled_only, search=search, attrs=attrs)

    def count(self, domain: str) -> int:
        """What the type's counter counts: its entries, and those of the types
        sharing the counter (both kinds of mailing list)."""
        return sum(self.addresses.count(domain, t) for t in sharing(self.account))

    def room(self, domain: str, most: int) -> Ceiling:
        """The domain's numberOfAliases or numberOfLists (over both kinds of
        list), held after the write (ceilings.py) by ranking its entries (a
        create ranks itself by the counter instead)."""
        return Ceiling(most, lambda: [e for t in sharing(self.account)
                                      for e in self.addresses.scan(domain, t, attrs=ORDER_ATTRS)],
                       lambda: LimitExceeded(f"{domain} may have at most {most} of them",
                                             param=self.account.domain_limit),
                       by_creation=True)

    def held(self, domains: builtins.list[str], attrs=()) -> dict[str, dict[str, int]]:
        """Per domain (lower case): its counter of the type (the only value
        an admin's limit of the type adds up), from the domain entries."""
        return {d: {self.account.counter: n} for d, n in self.addresses.counters(domains, self.account).items()}

    # -- create ---------------------------------------------------------------

    def create(self, mail: str, values: dict[str, Any], *, limits: Sequence[SharedCeiling] = ()) -> str:
        """`limits`: the creating admin's limits the new entry must fit in
        (its maxAliases or maxLists, over its domains' counters)."""
        local, _, domain = mail.partition("@")
        self.addresses.require_free(mail)
        domain_entry = self.addresses.domain_entry(domain)
        if domain_entry.has_value("domainBackupMX", "yes"):
            raise InvalidInput(f"{domain} is a backup MX domain: it has no accounts", code="DOMAIN_IS_BACKUP_MX")
        limit = self._room_left(domain, domain_entry)
        dn, attrs = self.account.template.render(
            mail=mail, domain=domain, name=values.get("name") or local, domains_dn=self.tree.domains_dn,
            **self._placeholders(mail))
        attrs.update(field_attrs(self.account.fields, values, skip=("name",)))
        twins = self.addresses.twins(domain_entry, local)
        if twins:
            attrs["shadowAddress"] = twins
        if domain_entry.first("accountStatus").lower() == "disabled":
            attrs["domainStatus"] = ["disabled"]
        self._start_counter(domain, domain_entry)
        with self.dir.batch(kind="create", targets=[f"mail:{mail}"]) as batch:
            self._add_entry(batch, dn, attrs, mail, values.get("members", []))
            # The domain's limit and the admin's: the counter's value this
            # create's increment made ranks it among racing creates (no
            # entry read; ceilings.py); a loser's add and increment are undone.
            made = self._count_in(batch, domain, domain_entry)
            ceilings = shared_ceilings(domain, {self.account.counter: made}, limits, self.held)
            if limit > 0:
                ceilings += ranked_room(made, self.room(domain, limit))
            # Checked after adding, so of creates racing for the same address
            # or the last free places only the winners stay.
            self.addresses.claim(dn, [mail, *twins], *ceilings)
            self._created(batch, mail, values)
        return dn

    def _room_left(self, domain: str, domain_entry: Entry) -> int:
        """The domain's limit of the type (numberOfAliases or numberOfLists;
        0: none) for one more entry; refused at once when the domain may have
        none, or is full as the counter read with the domain entry says."""
        limit = settings_attr.int_of(domain_entry.get("accountSetting"), self.account.domain_limit)
        if limit == -1:
            raise LimitExceeded(f"{domain} may not have any {self.account.label}", param=self.account.domain_limit)
        held = as_int(domain_entry.first(self.account.counter))
        if limit > 0 and held is not None and held >= limit:
            raise self.room(domain, limit).refusal()
        return limit

    def _count_in(self, batch: Batch, domain: str, domain_entry: Entry) -> int | None:
        """Count one more entry in the domain's counter, sent at once; the
        value the increment made (None: the counter was set to the real count)."""
        return self.addresses.bump_now(batch, domain, self.account.counter, +1, entry=domain_entry,
                                       recount=lambda: self.count(domain))

    def _placeholders(self, mail: str) -> dict[str, str]:
        """More values for the type's template than the address, domain and name."""
        return {}

    def _created(self, batch: Batch, mail: str, values: dict[str, Any]) -> None:
        """The entry is written and its address held: what else goes with it
        (inside the batch: raising undoes the entry)."""

    def _start_counter(self, domain: str, entry: Entry | None = None) -> None:
        self.addresses.start_counter(domain, self.account.counter, entry=entry, recount=lambda: self.count(domain))

    def _add_entry(self, batch: Batch, dn: str, attrs: dict, mail: str, members: builtins.list[str]) -> None:
        raise NotImplementedError

    # -- update ---------------------------------------------------------------

    def update(self, mail: str, values: dict[str, Any]) -> None:
        entry = self.get(mail)
        local = mail.partition("@")[0]
        changes = field_changes(entry, self.account.fields, values, empty_defaults={"name": local})
        with self.dir.batch(kind="update", targets=[f"mail:{mail}"]) as batch:
            batch.modify(entry.dn, changes, before=entry)
            self._change_members(batch, entry, mail, values)

    def _change_members(self, batch: Batch, entry: Entry, mail: str, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def members(self, entry: Entry, mail: str) -> builtins.list[str]:
        raise NotImplementedError

    # -- delete and rename ---------------------------------------------------------

    def delete(self, mail: str, *, after: Callable[[], None] | None = None) -> None:
        """Remove the account; `after` runs once the whole plan is in the
        journal, before the first entry is touched (if it raises, nothing is
        written)."""
        entry = self.get(mail)
        domain = mail.partition("@")[2]
        self._start_counter(domain)
        with self.dir.batch(kind="delete", targets=[f"mail:{mail}"], resume="forward") as batch:
            self._remove_members(batch, mail)
            self.addresses.remove(batch, entry, mail)
            self.addresses.bump(batch, domain, self.account.counter, -1, recount=lambda: self.count(domain))
            batch.record(final=True)
            if after is not None:
                after()

    def _remove_members(self, batch: Batch, mail: str) -> None:
        """Membership stored outside the entry (lists only)."""

    def rename(self, old: str, new: str, *, after: Callable[[], None] | None = None) -> None:
        entry = self.get(old)
        if old == new:
            raise InvalidInput("new_mail: the address is the same", param="new_mail")
        old_local, _, old_domain = old.partition("@")
        new_local, _, new_domain = new.partition("@")
        self.addresses.require_free(new)
        new_domain_entry = self.addresses.domain_entry(new_domain)
        old_domain_entry = self.addresses.domain_entry(old_domain)
        attrs = with_attr(copy_attrs(entry), "mail", [new])
        if attr_of(attrs, "cn") == [old_local]:
            attrs = with_attr(attrs, "cn", [new_local])
        old_twins = set(self.addresses.twins(old_domain_entry, old_local))
        shadows = [v for v in attr_of(attrs, "shadowAddress") if v.lower() not in old_twins]
        attrs = with_attr(attrs, "shadowAddress",
                          list(dict.fromkeys(shadows + self.addresses.twins(new_domain_entry, new_local))))
        if new_domain != old_domain:
            disabled = new_domain_entry.first("accountStatus").lower() == "disabled"
            attrs = with_attr(attrs, "domainStatus", ["disabled"] if disabled else [])
        attrs = self._readdressed(attrs, new)
        new_dn = self.dn(new)
        moves = new_domain != old_domain
        # Into another domain: its numberOfAliases or numberOfLists holds, as for a create.
        limit = self._room_left(new_domain, new_domain_entry) if moves else 0
        if moves:
            self._start_counter(old_domain, old_domain_entry)
            self._start_counter(new_domain, new_domain_entry)
        with self.dir.batch(kind="rename", targets=[f"mail:{old}", f"mail:{new}"], resume="forward") as batch:
            self._move_members(batch, old, new)
            self.addresses.move(batch, entry, new_dn, attrs, old, new)
            room: builtins.list[Ceiling] = []
            if moves:
                made = self._count_in(batch, new_domain, new_domain_entry)
                room = ranked_room(made, self.room(new_domain, limit)) if limit > 0 else []
            self.addresses.claim(new_dn, [new, *attr_of(attrs, "shadowAddress")], *room)
            if moves:
                self.addresses.bump(batch, old_domain, self.account.counter, -1, recount=lambda: self.count(old_domain))
            if after is not None:
                after()

    def _move_members(self, batch: Batch, old: str, new: str) -> None:
        """Membership stored outside the entry that is not a plain reference (lists only)."""

    def _readdressed(self, attrs: dict, new: str) -> dict:
        """The attributes of the entry at its new address `new` (beyond mail,
        cn, shadow addresses and domainStatus, which every type changes)."""
        return attrs


class AliasStore(GroupStore):
    """Members in the entry's own mailForwardingAddress (MEMBERS_IN_ENTRY)."""

    account = ALIAS

    def _add_entry(self, batch: Batch, dn: str, attrs: dict, mail: str, members: list[str]) -> None:
        if members:
            attrs["mailForwardingAddress"] = members
        batch.add(dn, attrs)

    def _change_members(self, batch: Batch, entry: Entry, mail: str, values: dict[str, Any]) -> None:
        if "members" in values:
            ops = diff(entry.get("mailForwardingAddress"), values["members"])
            if ops:
                batch.modify(entry.dn, {"mailForwardingAddress": ops})
            return
        # addMember/removeMember touch only the values named, so two admins
        # adding members at the same time both get theirs in.
        if values.get("removeMember"):
            batch.delete_values(entry.dn, "mailForwardingAddress", values["removeMember"])
        if values.get("addMember"):
            batch.add_values(entry.dn, "mailForwardingAddress", values["addMember"])

    def members(self, entry: Entry, mail: str) -> list[str]:
        return sorted(v.lower() for v in entry.get("mailForwardingAddress"))


class ListStore(GroupStore):
    """Members carry `memberOfGroup: <list>`; members not hosted here are the
    `mail` values of the list's entry made from `members_template`
    (MEMBERS_POINT_TO_IT)."""

    account = MAILLIST

    def externals_dn(self, mail: str) -> str:
        return self.tree.dn(load(self.account.members_template), mail)

    def _split(self, members: list[str]) -> tuple[dict[str, Entry], list[str]]:
        """Hosted members (address → their entry) and external addresses.

        An address in a hosted domain that no account has is refused: mail to
        it would bounce.
        """
        internal: dict[str, Entry] = {}
        external: list[str] = []
        if not members:
            return internal, external
        parts = "".join(f("(mail=%s)(shadowAddress=%s)", m, m) for m in members)
        found = self.dir.search(self.tree.domains_dn, f"(&{ADDRESS_CLASSES}(|{parts}))", scope=SUBTREE,
                                attrs=("mail", "shadowAddress", "memberOfGroup"))
        by_address = {}
        for e in found:
            for address in e.get("mail") + e.get("shadowAddress"):
                by_address[address.lower()] = e
        for member in members:
            if member in by_address:
                internal[member] = by_address[member]
            elif self.dir.search(self.tree.domains_dn, DOMAIN.filter(
                    "(|(domainName=%s)(domainAliasName=%s))", member.rpartition("@")[2], member.rpartition("@")[2]),
                    scope=LEVEL, attrs=("1.1",)):
                raise InvalidInput(f"members: {member} is in a hosted domain but no such account exists",
                                   code="NO_SUCH_ACCOUNT", param="members")
            else:
                external.append(member)
        return internal, external

    def _add_entry(self, batch: Batch, dn: str, attrs: dict, mail: str, members: list[str]) -> None:
        batch.add(dn, attrs)
        self._add_members(batch, mail, members)

    def _add_members(self, batch: Batch, mail: str, members: list[str]) -> None:
        internal, external = self._split(members)
        for entry in internal.values():
            batch.add_values(entry.dn, "memberOfGroup", [mail])
        if external:
            dn = self.externals_dn(mail)
            if self.dir.get(dn, attrs=("1.1",)) is None:
                _, attrs = load(self.account.members_template).render(
                    list=mail, domain=mail.partition("@")[2], domains_dn=self.tree.domains_dn)
                attrs["mail"] = external
                try:
                    batch.add(dn, attrs)
                    return
                except AlreadyExists:
                    pass  # a concurrent request created it first: add our values to it
            batch.add_values(dn, "mail", external)

    def _remove_some(self, batch: Batch, mail: str, members: list[str]) -> None:
        holders = self._holders(mail)
        remove = {m.lower() for m in members}
        for entry in holders:
            if remove & {a.lower() for a in entry.get("mail") + entry.get("shadowAddress")}:
                batch.delete_values(entry.dn, "memberOfGroup", [mail])
        ext = self.dir.get(self.externals_dn(mail), attrs=("mail",))
        if ext is not None:
            gone = [v for v in ext.get("mail") if v.lower() in remove]
            if gone:
                batch.delete_values(ext.dn, "mail", gone)

    def _holders(self, mail: str) -> list[Entry]:
        """Hosted entries that are members (they carry memberOfGroup=<list>)."""
        return self.dir.search(self.tree.domains_dn, f("(&(memberOfGroup=%s)" + ADDRESS_CLASSES + ")", mail),
                               scope=SUBTREE, attrs=("mail", "shadowAddress", "memberOfGroup"))

    def members(self, entry: Entry, mail: str) -> list[str]:
        hosted = [e.first("mail").lower() for e in self._holders(mail)]
        ext = self.dir.get(self.externals_dn(mail), attrs=("mail",))
        return sorted(set(hosted + [v.lower() for v in (ext.get("mail") if ext else [])]))

    def _change_members(self, batch: Batch, entry: Entry, mail: str, values: dict[str, Any]) -> None:
        if "members" in values:
            current = self.members(entry, mail)
            target = wanted(current, values, "members", "addMember", "removeMember") or []
            remove = [m for m in current if m not in target]
            add = [m for m in target if m not in current]
        else:
            remove = values.get("removeMember", [])
            add = values.get("addMember", [])
        if remove:
            self._remove_some(batch, mail, remove)
        if add:
            self._add_members(batch, mail, add)

    def _remove_members(self, batch: Batch, mail: str) -> None:
        # The holders' memberOfGroup values are references, removed with the
        # list's other references; the externals entry is queued here.
        ext = self.dir.get(self.externals_dn(mail))
        if ext is not None:
            batch.plan_delete(ext.dn, snapshot=ext)

    def _move_members(self, batch: Batch, old: str, new: str) -> None:
        # The external-members entry is named after the list: it moves to a
        # new name (its RDN cannot be modified in place).  The memberOfGroup
        # values of hosted members are ordinary references.
        ext = self.dir.get(self.externals_dn(old))
        if ext is None:
            return
        _, attrs = load(self.account.members_template).render(list=new, domain=new.partition("@")[2],
                                                               domains_dn=self.tree.domains_dn)
        attrs["mail"] = ext.get("mail")
        batch.plan_delete(ext.dn, snapshot=ext)
        batch.plan_add(self.externals_dn(new), attrs)


# The class for each way of storing members (AccountType.members).
STORES: dict[str, type[GroupStore]] = {MEMBERS_IN_ENTRY: AliasStore, MEMBERS_POINT_TO_IT: ListStore}


def group_store(directory: Directory, tree: Tree, account: AccountType) -> GroupStore:
    """The store of an alias-like type (one of accounts.GROUP_TYPES)."""
    return STORES[account.members](directory, tree, account)
