"""Administrators as iRedMail knows them.

An admin is either a mail user marked `domainGlobalAdmin: yes` or
`enabledService: domainadmin`, or a standalone `mailAdmin` entry under
`o=domainAdmins`.  Normal admins are listed in `domainAdmin` of the domains
they manage.  Global admins manage everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

from iredldap.model.accounts import (ADMIN, ADMIN_CREATE_DOMAINS, ALIAS, ADMIN_DISABLED_SERVICES, ADMIN_NORMAL_ONLY,
                        ADMIN_QUOTA_UNIT, ADMIN_ROLE, ADMIN_SETTINGS, DOMAIN, MAX_QUOTA_MB, QUOTA_UNITS, USER,
                        any_class)
from iredldap.errors import AlreadyExists, InvalidInput, NoSuchAccount
from iredldap.directory.search import search_filter, searched
from iredldap.model.mailbox import days_since_epoch
from iredldap.model.templates import load
from iredldap.directory import references, settings_attr
from iredldap.directory.connection import ADD, DELETE, LEVEL, REPLACE, SUBTREE, Changes, Directory, Entry
from iredldap.directory.tree import Tree, f
from iredldap.directory.values import diff as values_diff, field_attrs

_ADMIN_ATTRS = ("mail", "objectClass", "accountStatus", "domainGlobalAdmin", "enabledService",
                "accountSetting", "userPassword", "cn", "preferredLanguage")


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as far as authorization cares."""

    mail: str
    dn: str
    is_global: bool
    is_mail_user: bool
    settings: dict = field(default_factory=dict, compare=False)
    # The domains it manages (`domainAdmin`), when read; None: not read.
    domains: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def may_create_domains(self) -> bool:
        return self.is_global or "create_new_domains" in self.settings

    def limit(self, key: str) -> int | None:
        """An admin's `create_max_*` setting; None when unset (no limit)."""
        raw = self.settings.get(key)
        try:
            return int(str(raw)) if raw not in (None, "") else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Rights:
    """What an address could do as an admin: the rights a normal admin must
    not be able to take over by changing that account (its password, its
    services, its address) or to take away by deleting it.

    Counted generously: a mail user listed in `domainAdmin` of a domain has
    that domain among its rights even while its `domainadmin` service is
    off (switching the service on would hand them over), and a standalone
    admin with the same address adds its rights too (a mail user of that
    address that becomes an admin is who logs in under it; deleting the
    mail user removes the address's `domainAdmin` values everywhere).
    """

    is_global: bool = False
    may_create_domains: bool = False
    domains: frozenset[str] = frozenset()

    def exceed(self, principal: "Principal", managed: list[str]) -> bool:
        """Whether these rights go beyond those of `principal`, who manages `managed`."""
        if principal.is_global:
            return False
        return (self.is_global or (self.may_create_domains and not principal.may_create_domains)
                or not self.domains <= set(managed))


def _is_active(entry: Entry) -> bool:
    return entry.first("accountStatus").lower() == "active" and not entry.has_value("domainStatus", "disabled")


def _same_dn(a: str, b: str) -> bool:
    return a.replace(", ", ",").lower() == b.replace(", ", ",").lower()


def _rights_in(entries: list[Entry], mail: str) -> Rights:
    """The rights of `mail` (see `Rights`) as the entries found tell them:
    the domains naming it in `domainAdmin`, its mail user and standalone admin."""
    domains, is_global, may_create = set(), False, False
    for entry in entries:
        if entry.has_value("objectClass", "mailDomain"):
            if any(a.lower() == mail for a in entry.get("domainAdmin")):
                domains.add(entry.first("domainName").lower())
        elif (entry.has_value("objectClass", "mailUser") or entry.has_value("objectClass", "mailAdmin")) \
                and any(m.lower() == mail for m in entry.get("mail")):
            is_global = is_global or entry.has_value("domainGlobalAdmin", "yes")
            may_create = may_create or "create_new_domains" in settings_attr.parse(entry.get("accountSetting"))
    return Rights(is_global=is_global, may_create_domains=may_create, domains=frozenset(domains))


@dataclass(frozen=True)
class Lookup:
    """What one search finds for a request: the admin making it and, when
    the URL names them, the account at an address and a domain's entry."""

    principal: Principal
    entry: Entry                    # the admin's own entry (with its password hash)
    account: str = ""
    entries: tuple[Entry, ...] = ()  # every entry found, with all their attributes

    def entry_at(self, dn: str) -> Entry | None:
        return next((e for e in self.entries if _same_dn(e.dn, dn)), None)

    def memberships(self, domains_dn: str) -> dict[str, list[str]] | None:
        """What `UserStore.memberships(account)` answers, from the entries found
        below `domains_dn` (None when the search did not name an account)."""
        if not self.account:
            return None
        aliases, domains = [], []
        for e in self.entries:
            if not e.dn.replace(", ", ",").lower().endswith("," + domains_dn.replace(", ", ",").lower()):
                continue
            if ALIAS.matches(e.attrs) and any(v.lower() == self.account for v in e.get("mailForwardingAddress")):
                aliases.append(e.first("mail").lower())
            elif DOMAIN.matches(e.attrs) and any(v.lower() == self.account for v in e.get("domainAdmin")):
                domains.append(e.first("domainName").lower())
        return {"mailing_aliases": sorted(aliases), "managed_domains": sorted(domains)}

    def account_rights(self) -> Rights:
        """The rights of `account` (its entries and the domains naming it are among those found)."""
        return _rights_in(list(self.entries), self.account)


def _is_child_of(dn: str, parent: str) -> bool:
    """`dn` is directly below `parent` (as a LEVEL search of `parent` finds it)."""
    rdn, _, rest = dn.replace(", ", ",").partition(",")
    return bool(rdn) and _same_dn(rest, parent)


def _in_lookup(entry: Entry, mail: str, account: str, domain: str) -> bool:
    """Whether `entry` is one `lookup` wants: the mail user or standalone admin
    at `mail`; any entry at `account`; a domain whose domainAdmin names `mail`
    or `account`; the domain `domain`; an alias forwarding to `account`."""
    if entry.has_value("mail", mail) and (entry.has_value("objectClass", USER.object_class)
                                          or entry.has_value("objectClass", ADMIN.object_class)):
        return True
    if account and entry.has_value("mail", account):
        return True
    if DOMAIN.matches(entry.attrs) and (entry.has_value("domainAdmin", mail)
                                        or (account and entry.has_value("domainAdmin", account))
                                        or (domain and entry.has_value("domainName", domain))):
        return True
    return bool(account) and ALIAS.matches(entry.attrs) and entry.has_value("mailForwardingAddress", account)


def _rights_filter(mail: str) -> str:
    return "(|" + DOMAIN.filter("(domainAdmin=%s)", mail) + _account_filter(mail) + ")"


def _account_filter(mail: str) -> str:
    """The mail user or standalone admin at `mail`."""
    return f("(&" + any_class((USER, ADMIN)) + "(mail=%s))", mail)


def _principal_of(entry: Entry) -> Principal:
    return Principal(
        mail=entry.first("mail").lower(),
        dn=entry.dn,
        is_global=entry.has_value("domainGlobalAdmin", "yes"),
        is_mail_user=entry.has_value("objectClass", "mailUser"),
        settings=settings_attr.parse(entry.get("accountSetting")),
    )


class AdminStore:
    def __init__(self, directory: Directory, tree: Tree):
        self.dir = directory
        self.tree = tree

    def find(self, mail: str, attrs: tuple[str, ...] = _ADMIN_ATTRS) -> Entry | None:
        """The admin entry for `mail` (mail user first, as iRedAdmin does), active or not."""
        domain = mail.rpartition("@")[2]
        user = self.dir.get(self.tree.user(mail), attrs=tuple(attrs) + ("domainStatus",), filterstr=USER.filter())
        if user is not None and (user.has_value("domainGlobalAdmin", "yes")
                                 or user.has_value("enabledService", "domainadmin")):
            return user
        if domain:
            admin = self.dir.get(self.tree.admin(mail), attrs=attrs, filterstr=ADMIN.filter())
            if admin is not None:
                return admin
        return None

    def scan(self, *, disabled_only: bool = False, search: str = "", attrs=("*",)) -> Iterator[Entry]:
        """Every admin, read page by page: the standalone ones, then the mail
        users that are admins.  `search`: address or name contains it."""
        extra = ("(accountStatus=disabled)" if disabled_only else "") + search_filter(search, ("mail", "cn"))
        yield from searched(self.dir.paged_search(self.tree.admins_dn, ADMIN.filter(extra), scope=LEVEL, attrs=attrs),
                            search, ("mail", "cn"))
        yield from searched(self.dir.paged_search(self.tree.domains_dn, USER.filter(ADMIN_ROLE + extra), scope=SUBTREE,
                                                  attrs=attrs),
                            search, ("mail", "cn"))

    def find_user(self, mail: str) -> Entry | None:
        return self.dir.get(self.tree.user(mail), attrs=("mail", "enabledService", "domainGlobalAdmin"),
                            filterstr=USER.filter())

    def rights_of(self, mail: str) -> Rights:
        """The admin rights `mail` holds or would hold (see `Rights`), in one search."""
        return self.rights_of_all([mail])[mail.lower()]

    def rights_of_all(self, mails: Iterable[str]) -> dict[str, Rights]:
        """`rights_of` each address (lower case), all in one search."""
        wanted = sorted({m.lower() for m in mails})
        if not wanted:
            return {}
        found = self.dir.search(self.tree.suffix, "(|" + "".join(_rights_filter(m) for m in wanted) + ")",
                                attrs=("objectClass", "domainName", "domainAdmin", "mail", "domainGlobalAdmin",
                                       "accountSetting"))
        return {m: _rights_in(found, m) for m in wanted}

    def above(self, mails: Iterable[str], principal: Principal, managed: list[str]) -> list[str]:
        """Those of `mails` whose rights exceed the principal's (sorted, lower case)."""
        return sorted(m for m, rights in self.rights_of_all(mails).items() if rights.exceed(principal, managed))

    def alias_domains_of(self, domain: str) -> list[str]:
        """The alias domains of `domain` (lower case; none if there is no such domain)."""
        entry = self.dir.get(self.tree.domain(domain), attrs=("domainAliasName",), filterstr=DOMAIN.filter())
        return [a.lower() for a in entry.get("domainAliasName")] if entry is not None else []

    def addresses_at(self, domain: str) -> list[str]:
        """Admin addresses in `domain`: standalone admins' and those some domain
        names in `domainAdmin` (sorted)."""
        at = "@" + domain
        found = self.dir.search(self.tree.suffix,
                                "(|" + ADMIN.filter("(mail=*%s)", at) + DOMAIN.filter("(domainAdmin=*%s)", at) + ")",
            attrs=("mail", "domainAdmin"))
        return sorted({v.lower() for e in found for v in e.get("mail") + e.get("domainAdmin")
                       if v.lower().endswith(at)})

    def _rights_candidates(self, domains: Sequence[str]) -> set[str]:
        """The addresses in `domains` that can hold admin rights at all, in one
        search: the users marked as admins and every address some domain or a
        standalone admin names."""
        ats = tuple("@" + d for d in domains)
        terms = "".join(USER.filter("(mail=*%s)" + ADMIN_ROLE, at) + ADMIN.filter("(mail=*%s)", at)
                        + DOMAIN.filter("(domainAdmin=*%s)", at) for at in ats)
        found = self.dir.search(self.tree.suffix, "(|" + terms + ")", attrs=("mail", "domainAdmin"))
        return {v.lower() for e in found for v in e.get("mail") + e.get("domainAdmin") if v.lower().endswith(ats)}

    def outranking(self, domain: str, principal: Principal, managed: list[str],
                   alias_domains: Sequence[str] = ()) -> list[str]:
        """Mail users of `domain` whose rights exceed the principal's, or whose
        twin in one of its `alias_domains` has such rights (sorted)."""
        if principal.is_global:
            return []
        above = {c.partition("@")[0] + "@" + domain
                 for c in self.above(self._rights_candidates([domain, *alias_domains]), principal, managed)}
        if not above:
            return []
        return sorted(e.first("mail").lower() for e in self.dir.search(
            self.tree.container(domain, USER.container),
            USER.filter("(|" + "".join(f("(mail=%s)", a) for a in sorted(above)) + ")"),
            scope=LEVEL, attrs=("mail",)))

    def above_at(self, domains: Sequence[str], principal: Principal, managed: list[str]) -> list[str]:
        """Every address in `domains` whose rights exceed the principal's,
        mailbox or not (sorted): mail users, and admins without one, whose
        mail an alias may take (a standalone admin's, at its address)."""
        if principal.is_global:
            return []
        return self.above(self._rights_candidates(domains), principal, managed)

    def principal_for(self, mail: str) -> tuple[Principal, Entry] | None:
        """The active admin `mail` and its entry (which holds the password hash)."""
        found = self.lookup(mail)
        return (found.principal, found.entry) if found is not None else None

    def lookup(self, mail: str, *, account: str = "", domain: str = "") -> Lookup | None:
        """The active admin `mail` (None if there is none), and in the same
        search the entries of the address `account` with what its rights
        depend on (see `rights_of`), and the entry of `domain`.

        The admin is the mail user at its address if that is marked as an
        admin, else the standalone admin (as iRedAdmin looks them up).
        """
        # The domains the caller manages come with the same search (a normal
        # admin's requests all need them; a global admin is in no domainAdmin
        # as a rule, and costs nothing more).
        #
        # The server is not asked for the caller's object class: a term
        # `(objectClass=mailUser)` makes slapd read the index list of every
        # user of the directory (on 60,000 users a lookup took 3.2 ms of
        # slapd's time instead of 1.5), so the addresses are matched there
        # and the classes here (`_in_lookup`), which gives the same entries.
        terms = [f("(mail=%s)", mail), DOMAIN.filter("(domainAdmin=%s)", mail)]
        if account:
            # What the account's rights depend on (its entries, the domains
            # naming it: see `rights_of`) and the aliases forwarding to it
            # (what a user's GET shows with the domains it administers).
            terms.append(DOMAIN.filter("(domainAdmin=%s)", account))
            terms.append(f("(mail=%s)", account))
            terms.append(ALIAS.filter("(mailForwardingAddress=%s)", account))
        if domain:
            terms.append(DOMAIN.filter("(domainName=%s)", domain))
        found = [e for e in self.dir.search(self.tree.suffix, "(|" + "".join(terms) + ")", attrs=("*",))
                 if _in_lookup(e, mail, account, domain)]
        user_dn = self.tree.user(mail) if found else ""     # (made once, not once an entry)
        admin = next((e for e in found if _same_dn(e.dn, user_dn) and e.has_value("objectClass", "mailUser")), None)
        if admin is None or not (admin.has_value("domainGlobalAdmin", "yes")
                                 or admin.has_value("enabledService", "domainadmin")):
            admin_dn = self.tree.admin(mail) if mail.rpartition("@")[2] else ""
            admin = next((e for e in found if admin_dn and _same_dn(e.dn, admin_dn)
                          and e.has_value("objectClass", "mailAdmin")), None)
        if admin is None or not _is_active(admin):
            return None
        principal = _principal_of(admin)
        if not principal.is_global:
            lowered = mail.lower()
            managed = sorted(e.first("domainName").lower() for e in found
                             if e.has_value("objectClass", "mailDomain") and _is_child_of(e.dn, self.tree.domains_dn)
                             and any(a.lower() == lowered for a in e.get("domainAdmin")))
            principal = replace(principal, domains=tuple(managed))
        return Lookup(principal=principal, entry=admin, account=account.lower(), entries=tuple(found))

    def create_standalone(self, mail: str, *, password_hash: str, name: str = "", is_global: bool = False,
                          language: str = "") -> str:
        dn, attrs = load("admin").render(mail=mail, admins_dn=self.tree.admins_dn)
        if self.dir.exists(dn):
            raise AlreadyExists(f"admin {mail} already exists")
        attrs["userPassword"] = [password_hash]
        if name:
            attrs["cn"] = [name]
        if language:
            attrs["preferredLanguage"] = [language]
        if is_global:
            attrs["domainGlobalAdmin"] = ["yes"]
        self.dir.add(dn, attrs)
        return dn

    def require(self, mail: str, attrs: tuple[str, ...] = _ADMIN_ATTRS) -> Entry:
        entry = self.find(mail, attrs)
        if entry is None:
            raise NoSuchAccount(f"admin {mail} does not exist")
        return entry

    # -- the admin API: GET|POST|PUT|DELETE /api/admin/<mail> -------------------
    #
    # A standalone admin is a `mailAdmin` entry; a mail user that is an admin
    # keeps its admin role (domainGlobalAdmin, enabledService domainadmin,
    # its limits) on its own entry.  `values` are parsed ADMIN parameters.

    def create(self, mail: str, values: dict[str, Any], *, password_hash: str) -> str:
        """Add a standalone admin.  The address may be in a hosted domain (it is
        an account of its own), but may not be a mail user's."""
        if self.find_user(mail) is not None:
            raise AlreadyExists(f"{mail} is a mail user; make it an admin with PUT /api/user/{mail} "
                                "(isGlobalAdmin) or PUT /api/domain/admins/<domain>")
        values = _effective(values, is_global=values.get("isGlobalAdmin", False))
        dn, attrs = ADMIN.template.render(mail=mail, admins_dn=self.tree.admins_dn)
        if self.dir.exists(dn):
            raise AlreadyExists(f"admin {mail} already exists")
        attrs.update(field_attrs(ADMIN.fields, values))
        settings = [f"{key}:{value}" for key, value in _wanted_settings(values).items() if value is not None]
        if settings:
            attrs["accountSetting"] = settings
        disabled = [service for param, service in ADMIN_DISABLED_SERVICES.items() if values.get(param)]
        if disabled:
            attrs["disabledService"] = disabled
        if values.get("isGlobalAdmin"):
            attrs["domainGlobalAdmin"] = ["yes"]
        attrs["userPassword"] = [password_hash]
        attrs["shadowLastChange"] = [str(days_since_epoch())]
        self.dir.add(dn, attrs)
        return dn

    def update(self, mail: str, values: dict[str, Any], *, password_hash: str | None = None) -> None:
        entry = self.require(mail, attrs=("*",))
        user = is_mail_user(entry)
        will_be_global = values.get("isGlobalAdmin", entry.has_value("domainGlobalAdmin", "yes"))
        values = _effective(values, is_global=will_be_global)
        changes: Changes = {}
        for fld in ADMIN.fields:
            name = fld.param.name
            if name not in values or not fld.attr:
                continue
            value = values[name]
            if value == "" and name == "name" and user:
                value = mail.partition("@")[0]  # inetOrgPerson must have a cn
            new = None if value == "" else fld.encode(value)
            current = entry.get(fld.attr)
            if new is None and current:
                changes[fld.attr] = [(DELETE, [])]
            elif new is not None and [new] != current:
                changes[fld.attr] = [(REPLACE, [new])]
        for key, value in _wanted_settings(values).items():
            changes = settings_attr.merge(changes, settings_attr.set_changes(entry.get("accountSetting"), key, value))
        disabled = {s.lower(): s for s in entry.get("disabledService")}
        for param, service in ADMIN_DISABLED_SERVICES.items():
            if values.get(param):
                disabled.setdefault(service, service)
            elif param in values:
                disabled.pop(service, None)
        ops = values_diff(entry.get("disabledService"), disabled.values())
        if ops:
            changes["disabledService"] = ops
        if "isGlobalAdmin" in values:
            if values["isGlobalAdmin"] and not entry.has_value("domainGlobalAdmin", "yes"):
                changes["domainGlobalAdmin"] = [(REPLACE, ["yes"])]
            elif not values["isGlobalAdmin"] and entry.get("domainGlobalAdmin"):
                changes["domainGlobalAdmin"] = [(DELETE, [])]
            # A mail user stays an admin either way (a demoted one is a normal admin).
            if user and not entry.has_value("enabledService", "domainadmin"):
                changes["enabledService"] = [(ADD, ["domainadmin"])]
        if password_hash is not None:
            changes["userPassword"] = [(REPLACE, [password_hash])]
            changes["shadowLastChange"] = [(REPLACE, [str(days_since_epoch())])]
        with self.dir.batch() as batch:
            batch.modify(entry.dn, changes, before=entry)

    def delete(self, mail: str, *, managed: list[Entry], after: Callable[[], object] | None = None) -> None:
        """Remove the admin: a standalone entry is deleted; a mail user loses its
        admin role and keeps its mailbox.  `managed` are the domains naming it
        in `domainAdmin`, read with that attribute only: those values go too.
        `after` runs before the change is final; if it raises, it is undone."""
        entry = self.require(mail, attrs=("*",))
        with self.dir.batch(kind="delete", targets=[f"mail:{mail}"], resume="forward") as batch:
            references.rewrite(batch, managed, mail, None)
            if is_mail_user(entry):
                batch.modify(entry.dn, _role_removal(entry), before=entry)
            else:
                batch.delete(entry.dn, snapshot=entry)
            if after is not None:
                after()


def is_mail_user(entry: Entry) -> bool:
    return any(c.lower() == "mailuser" for c in entry.get("objectClass"))


def _effective(values: dict[str, Any], *, is_global: bool) -> dict[str, Any]:
    """A global admin has no limits: its normal-admin parameters are discarded."""
    return {k: v for k, v in values.items() if k not in ADMIN_NORMAL_ONLY} if is_global else values


def _wanted_settings(values: dict[str, Any]) -> dict[str, str | None]:
    """accountSetting key -> new value (None: remove) for the limits given."""
    out: dict[str, str | None] = {}
    for fld in ADMIN.fields:
        if fld.setting and fld.param.name in values:
            out[fld.setting] = fld.encode(values[fld.param.name])
    if "maxDomains" in values:
        most = values["maxDomains"]
        out[ADMIN_CREATE_DOMAINS] = None if most < 0 else "yes"
        out[ADMIN_SETTINGS["maxDomains"]] = str(most) if most > 0 else None
    if "maxQuota" in values:
        mb = values["maxQuota"] * QUOTA_UNITS[values["quotaUnit"]]
        if mb > MAX_QUOTA_MB:
            raise InvalidInput(f"maxQuota: at most {MAX_QUOTA_MB // QUOTA_UNITS[values['quotaUnit']]} "
                               f"{values['quotaUnit']}", param="maxQuota")
        out[ADMIN_SETTINGS["maxQuota"]] = str(mb) if mb else None
        out[ADMIN_QUOTA_UNIT] = values["quotaUnit"] if mb else None
    return out


_ROLE_SETTINGS = {k.lower() for k in (*ADMIN_SETTINGS.values(), ADMIN_CREATE_DOMAINS, ADMIN_QUOTA_UNIT)}


def _role_removal(entry: Entry) -> Changes:
    """What makes a mail user a plain mail user again."""
    changes: Changes = {}
    if entry.get("domainGlobalAdmin"):
        changes["domainGlobalAdmin"] = [(DELETE, [])]
    for attr, values in (
            ("enabledService", [v for v in entry.get("enabledService") if v.lower() == "domainadmin"]),
            ("accountSetting", [v for v in entry.get("accountSetting")
                                if v.partition(":")[0].lower() in _ROLE_SETTINGS]),
            ("disabledService", [v for v in entry.get("disabledService")
                                 if v.lower() in ADMIN_DISABLED_SERVICES.values()])):
        if values:
            changes[attr] = [(DELETE, values)]
    return changes
