"""What users, aliases and mailing lists share: one address space, the
per-domain counters, the alias-domain twins, and moving an entry to a new
address."""

from __future__ import annotations

from typing import Callable, Iterator

from iredldap.errors import AlreadyExists, InvalidInput, ValueAlreadyPresent
from iredldap.directory import references
from iredldap.directory.search import search_filter, searched
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling, hold
from iredldap.directory.connection import ADD, LEVEL, Attrs, Batch, Directory, Entry, as_int
from iredldap.directory.tree import Tree, f
from iredldap.model.accounts import ADDRESS_TYPES, DOMAIN, AccountType, any_class, sharing

# Every kind of entry whose addresses Postfix resolves.
ADDRESS_CLASSES = any_class(ADDRESS_TYPES)

_OPERATIONAL = {"entryuuid", "entrycsn", "createtimestamp", "modifytimestamp", "creatorsname",
                "modifiersname", "structuralobjectclass", "entrydn", "subschemasubentry",
                "hassubordinates", "numsubordinates"}


class Addresses:
    def __init__(self, directory: Directory, tree: Tree):
        self.dir = directory
        self.tree = tree

    def _holding(self, address: str, attrs, size_limit: int = 0) -> list[Entry]:
        return self.dir.search(self.tree.domains_dn, holding_filter(address), attrs=attrs, size_limit=size_limit)

    def taken(self, address: str) -> bool:
        """Is `address` the mail or a shadow address of any user, list or alias?"""
        return bool(self._holding(address, ("1.1",), size_limit=1))

    def require_free(self, address: str) -> None:
        if self.taken(address):
            raise address_in_use(address)

    def ceiling(self, address: str) -> Ceiling:
        """`address` belongs to one user, list or alias at most."""
        return Ceiling(1, lambda: self._holding(address, ORDER_ATTRS), lambda: address_in_use(address))

    def claim(self, mine: str, addresses: list[str], *more: Ceiling) -> None:
        """After writing `addresses` into the entry `mine` (inside a batch):
        raise, so the batch undoes the write, if a concurrent request holds
        one of them too and wins, or if one of the `more` limits is broken."""
        hold(mine, [self.ceiling(a.lower()) for a in dict.fromkeys(addresses)] + list(more))

    def owner(self, address: str, attrs=("*",)) -> Entry | None:
        """The user, list or alias that has `address` as mail or shadow address."""
        found = self._holding(address, attrs)
        return found[0] if found else None

    def domain_entry(self, domain: str) -> Entry:
        entry = self.dir.get(self.tree.domain(domain), filterstr=DOMAIN.filter())
        if entry is None:
            raise DOMAIN.missing(domain)
        return entry

    @staticmethod
    def twins(domain_entry: Entry, local: str) -> list[str]:
        """`local` in each alias domain: the shadow addresses the domain maintains."""
        return [f"{local}@{a.lower()}" for a in domain_entry.get("domainAliasName")]

    def scan(self, domain: str, account: AccountType, *, disabled_only: bool = False, search: str = "",
             attrs=("*",)) -> Iterator[Entry]:
        """The domain's accounts of the type, read page by page (LDAP paged
        results); `search`: address or name contains it."""
        flt = account.filter(("(accountStatus=disabled)" if disabled_only else "")
                             + search_filter(search, ("mail", "cn")))
        yield from searched(self.dir.paged_search(self.tree.container(domain, account.container), flt, scope=LEVEL,
                                                  attrs=attrs), search, ("mail", "cn"))

    def count(self, domain: str, account: AccountType) -> int:
        """How many of `account` type the domain holds."""
        return sum(1 for _ in self.scan(domain, account, attrs=("1.1",)))

    def total(self, domains: list[str], account: AccountType) -> int:
        """How many of `account` type the domains hold (`counters` added up)."""
        if not account.counter:
            return sum(self.count(d, t) for d in domains for t in sharing(account))
        return sum(self.counters(domains, account).values())

    def counters(self, domains: list[str], account: AccountType) -> dict[str, int]:
        """Per domain (lower case): how many of `account` type it holds, with
        the types sharing the counter (both kinds of mailing list), from its
        `domainCurrent*Number` counter: one search of the domain entries,
        whatever their size.  A domain without the counter is counted."""
        counted = {name: as_int(e.first(account.counter))
                   for name, e in self.domain_entries(domains, (account.counter,)).items()}
        return {d: c if (c := counted.get(d)) is not None else sum(self.count(d, t) for t in sharing(account))
                for d in (name.lower() for name in domains)}

    def domain_entries(self, domains: list[str], attrs) -> dict[str, Entry]:
        """The entries of `domains` (with `attrs`), by lower-case name: one search, whatever their size."""
        if not domains:
            return {}
        terms = "".join(f("(domainName=%s)", d) for d in domains)
        found = self.dir.search(self.tree.domains_dn, DOMAIN.filter("(|" + terms + ")"), scope=LEVEL,
                                attrs=("domainName", *attrs))
        return {e.first("domainName").lower(): e for e in found}

    def start_counter(self, domain: str, attr: str, *, recount: Callable[[], int],
                      entry: Entry | None = None) -> None:
        """Give the domain its `domainCurrent*Number` counter, if it has none,
        before the write that moves it.

        Started after the write, the count would include the entries of
        parallel requests that are about to count themselves (or to undo):
        started before, by one atomic add that every such request tries
        first, it counts only entries whose requests are done.
        """
        if entry is not None and entry.get(attr):
            return
        dn = self.tree.domain(domain)
        current = self.dir.get(dn, attrs=(attr,))
        if current is None or current.get(attr):
            return
        try:
            self.dir.modify(dn, {attr: [(ADD, [str(recount())])]})
        except (ValueAlreadyPresent, InvalidInput):
            pass  # a parallel request started it first (a second value of a single-valued attribute)

    def bump(self, batch: Batch, domain: str, attr: str, delta: int, *, recount: Callable[[], int],
             entry: Entry | None = None) -> None:
        """Move a `domainCurrent*Number` counter without read-modify-write races.

        `entry`, the domain entry as read earlier in the request, saves a search
        when it has the counter.
        Queued in the batch (sent with the rest of its plan); undone by the
        opposite increment, and set to the real count when a journal of the
        batch is resumed.
        """
        dn = self.tree.domain(domain)
        if entry is None or not entry.get(attr):
            entry = self.dir.get(dn, attrs=(attr,))
        # No counter yet: it starts at the real count.
        batch.plan_counter(dn, attr, delta, recount=recount, before=entry)

    def bump_now(self, batch: Batch, domain: str, attr: str, delta: int, *, recount: Callable[[], int],
                 entry: Entry | None = None) -> int | None:
        """`bump`, sent at once (with what the batch queued before it); returns
        the value this increment made, None when the counter was set to the
        real count instead (it had none)."""
        dn = self.tree.domain(domain)
        if entry is None or not entry.get(attr):
            entry = self.dir.get(dn, attrs=(attr,))
        seen: list[int] = []
        batch.plan_counter(dn, attr, delta, recount=recount, before=entry, seen=seen)
        batch.run()
        return seen[0] if seen else None

    def move(self, batch: Batch, entry: Entry, new_dn: str, attrs: Attrs, old: str, new: str) -> None:
        """Put `entry` under a new address: add the new entry, carry every
        reference along, delete the old one.  Unlike a modrdn this works
        across domains and each step can be undone.  Queued in the batch and
        then sent: the whole move is in the journal before its first step is
        sent, and a uniqueness check after the move sees the new entry."""
        refs = references.find(self.dir, self.tree.domains_dn, old, exclude_dn=entry.dn)
        gone = batch.queued_deletes() | {new_dn.lower()}
        batch.plan_add(new_dn, attrs)
        references.rewrite(batch, [r for r in refs if r.dn.lower() not in gone], old, new)
        batch.plan_delete(entry.dn, snapshot=entry)
        batch.run()

    def remove(self, batch: Batch, entry: Entry, address: str) -> None:
        """Delete an entry and every value elsewhere naming its address (queued in the batch)."""
        refs = references.find(self.dir, self.tree.domains_dn, address, exclude_dn=entry.dn)
        gone = batch.queued_deletes()
        references.rewrite(batch, [r for r in refs if r.dn.lower() not in gone], address, None)
        batch.plan_delete(entry.dn, snapshot=entry)


def address_in_use(address: str) -> AlreadyExists:
    return AlreadyExists(f"{address} is already used by another account")


def holding_filter(address: str) -> str:
    """The users, lists and aliases that have `address` as mail or shadow address."""
    return f("(&" + ADDRESS_CLASSES + "(|(mail=%s)(shadowAddress=%s)))", address, address)


# What `holds` needs of an entry found by a search combining `holding_filter` with other terms.
HOLDING_ATTRS = ("objectClass", "mail", "shadowAddress")
_ADDRESS_OBJECT_CLASSES = frozenset(t.object_class.lower() for t in ADDRESS_TYPES)


def holds(entry: Entry, address: str) -> bool:
    """Whether `entry` (read with HOLDING_ATTRS) is one `holding_filter(address)` finds."""
    return any(c.lower() in _ADDRESS_OBJECT_CLASSES for c in entry.get("objectClass")) \
        and (entry.has_value("mail", address) or entry.has_value("shadowAddress", address))


def copy_attrs(entry: Entry) -> Attrs:
    return {k: list(v) for k, v in entry.attrs.items() if k.lower() not in _OPERATIONAL}


def attr_of(attrs: Attrs, name: str) -> list[str]:
    for key, values in attrs.items():
        if key.lower() == name.lower():
            return values
    return []


def with_attr(attrs: Attrs, name: str, values: list[str]) -> Attrs:
    out = {k: v for k, v in attrs.items() if k.lower() != name.lower()}
    if values:
        out[name] = values
    return out
