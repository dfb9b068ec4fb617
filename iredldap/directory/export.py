"""LDIF export of a domain, an account, or everything, streamed from paged searches.

`Exporter.plan(kind, name)` finds what to export and raises NoSuchAccount
when it is not there, before a single byte is sent.  `Exporter.stream(plan)`
then yields the LDIF in chunks while it reads the directory:

* the tree is walked breadth first: the entry itself (base search), then the
  children of every entry that has any (one-level paged searches, in the
  server's order), so parents always come before their children and only
  the DNs of entries with children are kept while walking;
* `hasSubordinates` (asked for with every entry) tells which entries have
  children; where the server does not say, the entry is searched anyway;
* operational attributes are left out, `userPassword` too unless asked for;
  objectClass comes first, the other attributes are sorted by name, values
  keep the server's order;
* a chunk leaves every CHUNK_SIZE bytes, so memory holds one page of entries
  and one chunk, whatever the size of the domain.

If the directory fails in the middle, the stream ends with an error comment
and without the end marker (then the exception goes up, so a web server cuts
the connection): `iredldap import` refuses such a file.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterator

from iredldap.model import ldif
from iredldap.model.accounts import ACCOUNT_TYPES, ADMIN, ADMIN_ROLE, DOMAIN, USER, AccountType
from iredldap.model.templates import load
from iredldap.errors import IredldapError, NoSuchAccount
from iredldap.model.tenant_view import hide_foreign
from iredldap.directory.connection import BASE, LEVEL, SUBTREE, Directory, Entry
from iredldap.directory.tree import Tree

PAGE_SIZE = 500
CHUNK_SIZE = 64 * 1024

# What can be exported alone: every account type (model/accounts.py).
KINDS = tuple(t.name for t in ACCOUNT_TYPES)

# Returned only when asked for, but a server may add some of them anyway.
OPERATIONAL = frozenset({
    "entryuuid", "entrycsn", "createtimestamp", "modifytimestamp", "creatorsname", "modifiersname",
    "structuralobjectclass", "entrydn", "subschemasubentry", "hassubordinates", "numsubordinates",
    "contextcsn", "pwdchangedtime", "pwdaccountlockedtime", "pwdfailuretime", "pwdhistory",
    "pwdgraceusetime", "pwdreset", "pwdpolicysubentry", "memberof",
})
PASSWORD_ATTRS = frozenset({"userpassword"})

_ASK = ("*", "hasSubordinates")
_ANY = "(objectClass=*)"


@dataclass(frozen=True)
class ExportPlan:
    """What to export: each (dn, scope) is walked; BASE = the entry and all below, LEVEL = all below."""

    title: str
    filename: str
    roots: tuple[tuple[str, str], ...]


def _may_have_children(entry: Entry) -> bool:
    return [v.upper() for v in entry.get("hasSubordinates")] != [b"FALSE"]


def render(entry: Entry, *, passwords: bool, domains: Collection[str] | None = None) -> str:
    """One entry (values as bytes) as an LDIF record; with `domains`, as a
    normal admin of those may see it (iredldap.model.tenant_view)."""
    object_class = None
    items: list[tuple[str, Any]] = []     # values as bytes (a raw search), not Entry's str
    attrs = entry.attrs if domains is None else hide_foreign(dict(entry.attrs), domains)
    for name, values in attrs.items():
        base = name.partition(";")[0].lower()
        if not values or base in OPERATIONAL or (base in PASSWORD_ATTRS and not passwords):
            continue
        if base == "objectclass":
            object_class = (name, values)
        else:
            items.append((name, values))
    items.sort(key=lambda item: item[0].lower())
    if object_class is not None:
        items.insert(0, object_class)
    return ldif.entry_text(entry.dn, items)


def _mails(entry: Entry) -> set[str]:
    return {(v.decode("utf-8", "replace") if isinstance(v, bytes) else v).lower() for v in entry.get("mail")}


class Exporter:
    def __init__(self, directory: Directory, tree: Tree, *, page_size: int | None = None,
                 chunk_size: int | None = None):
        self.dir = directory
        self.tree = tree
        # None: the module's values, read at call time (tests lower them).
        self.page_size = page_size
        self.chunk_size = chunk_size

    # -- what to export -------------------------------------------------------------

    def _found(self, account: AccountType, name: str, filterstr: str = "") -> str | None:
        """The DN of the `account` type's entry `name`, if it is there."""
        dn = self.tree.dn(account, name)
        found = self.dir.get(dn, attrs=("1.1",), filterstr=filterstr or account.filter())
        return None if found is None else dn

    def _require(self, account: AccountType, name: str) -> str:
        dn = self._found(account, name)
        if dn is None:
            raise account.missing(name)
        return dn

    def plan(self, kind: str, name: str) -> ExportPlan:
        """The plan for `kind` (one of KINDS) named `name` (a domain or an address, already validated)."""
        account = next((t for t in ACCOUNT_TYPES if t.name == kind), None)
        if account is None:
            raise ValueError(f"unknown export kind {kind!r}")
        if account is ADMIN:
            roots = [self._admin_dn(name)]
        else:
            if account.url_part == "domain" and account is not DOMAIN:
                self._require(DOMAIN, name)  # a missing domain is named as such
            roots = [self._require(account, name)]
            if account.members_template:
                # Its members not hosted here live in an entry of their own (ou=Externals).
                members = self.tree.dn(load(account.members_template), name)
                if self.dir.exists(members):
                    roots.append(members)
        return ExportPlan(title=f"{kind} {name}", filename=f"{kind}-{name}.ldif",
                          roots=tuple((dn, BASE) for dn in roots))

    def _admin_dn(self, mail: str) -> str:
        # As AdminStore.find: a mail user with an admin role first, then a standalone admin.
        return self._found(USER, mail, USER.filter(ADMIN_ROLE)) or self._require(ADMIN, mail)

    def plan_all(self) -> ExportPlan:
        """Everything below the domains and admins containers (they themselves are made by `iredldap init`)."""
        roots = tuple((dn, LEVEL) for dn in (self.tree.domains_dn, self.tree.admins_dn) if self.dir.exists(dn))
        return ExportPlan(title="all domains and admins", filename="iredldap-export.ldif", roots=roots)

    def plan_for(self, target: str) -> ExportPlan:
        """The command line's TARGET: a domain, `@domain` (its catch-all), or an address of any kind."""
        if target.startswith("@"):
            return self.plan("catchall", target[1:])
        if "@" not in target:
            return self.plan("domain", target)
        by_mail = [t for t in ACCOUNT_TYPES if t.url_part == "mail"]
        for account in by_mail:
            if self._found(account, target) is not None:
                return self.plan(account.name, target)
        labels = [t.label for t in by_mail]
        raise NoSuchAccount(f"{target} is no {', '.join(labels[:-1])} or {labels[-1]}")

    # -- reading and writing ----------------------------------------------------------

    def entries(self, plan: ExportPlan) -> Iterator[Entry]:
        """The entries of the plan, values as bytes, parents before children."""
        page_size = self.page_size or PAGE_SIZE
        for root in plan.roots:
            queue = deque([root])
            while queue:
                dn, scope = queue.popleft()
                for entry in self.dir.paged_search(dn, _ANY, scope=scope, attrs=_ASK, page_size=page_size,
                                                   raw=True):
                    if scope == LEVEL and entry.dn.lower() == dn.lower():
                        continue  # ldap3's MOCK_SYNC counts the base itself as one level below
                    yield entry
                    if _may_have_children(entry):
                        queue.append((entry.dn, LEVEL))

    def count(self, plan: ExportPlan) -> int:
        """How many entries the plan has (names only are read; for a progress bar)."""
        total = 0
        for dn, scope in plan.roots:
            total += sum(1 for _ in self.dir.paged_search(dn, _ANY, scope=SUBTREE, attrs=("1.1",),
                                                          page_size=self.page_size or PAGE_SIZE))
            total -= scope == LEVEL  # the root itself is not exported
        return total

    def stream(self, plan: ExportPlan, *, passwords: bool, on_entry: Callable[[], None] | None = None,
               domains: Collection[str] | None = None, no_hash_for: Collection[str] = ()) -> Iterator[bytes]:
        """The LDIF file, in chunks, produced while the directory is read.
        `domains`: the export of a normal admin managing those (None: all);
        `no_hash_for`: addresses (lower case) whose password hashes stay out
        even when `passwords` (accounts above that admin)."""
        chunk_size = self.chunk_size or CHUNK_SIZE
        buf = [ldif.header(plan.title, "password hashes: " + ("included" if passwords else "left out"))]
        size = count = 0
        try:
            for entry in self.entries(plan):
                hashes = passwords and not (no_hash_for and _mails(entry) & set(no_hash_for))
                text = render(entry, passwords=hashes, domains=domains)
                buf.append(text)
                size += len(text)
                count += 1
                if on_entry is not None:
                    on_entry()
                if size >= chunk_size:
                    yield "".join(buf).encode("ascii")
                    buf, size = [], 0
        except IredldapError as exc:
            buf.append(ldif.comment(f"ERROR: the export stopped after {count} entries ({exc.code}: {exc.reason}); "
                                    "this file is incomplete"))
            yield "".join(buf).encode("ascii")
            raise
        buf.append(ldif.end_marker(count))
        yield "".join(buf).encode("ascii")
