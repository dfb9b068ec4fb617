"""Mail domains: the `mailDomain` entry, its four containers, its catch-all,
alias domains, admins and services.

Every method that writes more than one entry does so through a `Batch`, so a
failure part-way leaves the directory as it was.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from iredldap.model import accounts
from iredldap.model.accounts import ADDRESS_TYPES, CATCHALL, DOMAIN, GROUP_TYPES, USER, any_class
from iredldap.errors import AlreadyExists, Conflict, InvalidInput
from iredldap.directory.search import search_filter, searched
from iredldap.model.templates import load
from iredldap.model.validators import hostable_domain
from iredldap.directory import settings_attr
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling, hold
from iredldap.directory.connection import ADD, DELETE, LEVEL, REPLACE, SUBTREE, Batch, Changes, Directory, Entry
from iredldap.directory.tree import CONTAINERS, Tree, f
from iredldap.directory.values import diff as values_diff, wanted as wanted_list, wanted_services

# Entries that receive `<local>@<alias domain>` shadow addresses.
_ADDRESS_FILTER = any_class(ADDRESS_TYPES)
# Entries below a domain that carry `domainStatus` while it is disabled: the
# addresses, and the entries holding members of lists.
_ACCOUNTS_FILTER = any_class(ADDRESS_TYPES, *(c for t in GROUP_TYPES if t.members_template
                                              for c in load(t.members_template).object_classes))


def _domain_filter(admin: str | None, disabled_only: bool, search: str = "") -> str:
    parts = [search_filter(search, ("domainName", "cn"))]
    if admin is not None:
        parts.append(f("(domainAdmin=%s)", admin))
    if disabled_only:
        parts.append("(accountStatus=disabled)")
    return DOMAIN.filter("".join(parts))


@dataclass(frozen=True)
class DeletedMailbox:
    username: str
    domain: str
    maildir: str


class DomainStore:
    def __init__(self, directory: Directory, tree: Tree, *, default_transport: str):
        self.dir = directory
        self.tree = tree
        self.default_transport = default_transport

    # -- reading ------------------------------------------------------------

    def find(self, domain: str) -> Entry | None:
        """The domain whose primary name is `domain`."""
        return self.dir.get(self.tree.domain(domain), filterstr=DOMAIN.filter())

    def get(self, domain: str, *, read: Entry | None = None) -> Entry:
        """The domain `domain`; `read`: its entry as the request has read it already, if it has."""
        if read is not None and read.has_value("objectClass", "mailDomain"):
            return read
        entry = self.find(domain)
        if entry is None:
            raise DOMAIN.missing(domain)
        return entry

    def _named(self, name: str, attrs) -> list[Entry]:
        """The domains that have `name` as their name or an alias domain."""
        return self.dir.search(self.tree.domains_dn, DOMAIN.filter("(|(domainName=%s)(domainAliasName=%s))", name, name),
                               scope=LEVEL, attrs=attrs)

    def owner_of_name(self, name: str) -> str | None:
        """The primary domain that uses `name` as its name or as an alias domain."""
        found = self._named(name, ("domainName",))
        return found[0].first("domainName").lower() if found else None

    def name_ceiling(self, name: str, *, param: str | None = None) -> Ceiling:
        """`name` is the domainName or a domainAliasName of one domain at most."""
        return Ceiling(1, lambda: self._named(name, ORDER_ATTRS), lambda: AlreadyExists(
            f"domain {name} already exists (as a domain or an alias domain)", param=param))

    def list(self, *, admin: str | None = None, disabled_only: bool = False,
             attrs: Iterable[str] = ("*",)) -> list[Entry]:
        """Domains, all of them or those `admin` manages, sorted by name."""
        entries = self.dir.search(self.tree.domains_dn, _domain_filter(admin, disabled_only), scope=LEVEL,
                                  attrs=attrs)
        return sorted(entries, key=lambda e: e.first("domainName"))

    def scan(self, *, admin: str | None = None, disabled_only: bool = False, search: str = "",
             attrs: Iterable[str] = ("*",)) -> Iterator[Entry]:
        """Domains in directory order, read page by page (LDAP paged results).

        `search`: only domains whose name or `cn` contains this text.
        """
        yield from searched(self.dir.paged_search(self.tree.domains_dn, _domain_filter(admin, disabled_only, search),
                                                  scope=LEVEL, attrs=tuple(attrs)), search, ("domainName", "cn"))

    def managed_by(self, admin: str) -> builtins.list[str]:
        return [e.first("domainName").lower() for e in self.list(admin=admin, attrs=("domainName",))]

    def catchall(self, domain: str) -> Entry | None:
        return self.dir.get(self.tree.catchall(domain), attrs=("mailForwardingAddress", "accountStatus"))

    # -- creating -----------------------------------------------------------

    def create(self, domain: str, values: dict[str, Any], *, admin: str | None = None,
               limits: Sequence[Ceiling] = ()) -> None:
        """Write the domain entry, its containers and (if asked) its catch-all, all or nothing.

        `admin`, when given, is listed as an admin of the new domain (a normal
        admin creating a domain manages it).  `limits`: more ceilings the new
        domain must fit in (the creating admin's maxDomains).
        """
        hostable_domain(domain)
        if self.owner_of_name(domain):
            raise AlreadyExists(f"domain {domain} already exists (as a domain or an alias domain)")
        alias_domains = values.get("aliasDomains", [])
        self._check_alias_domains(domain, alias_domains)
        _check_default_quota(values, [])
        transport = values.get("transport") or self.default_transport
        if values.get("is_backupmx"):
            transport = self._backupmx_transport(domain, values.get("primarymx", ""))
        dn, attrs = DOMAIN.template.render(domain=domain, domains_dn=self.tree.domains_dn, transport=transport)
        settings: list[str] = []
        services = list(attrs.get("enabledService", []))
        for field in DOMAIN.fields:
            name = field.param.name
            if name not in values or name == "transport":
                continue
            value = values[name]
            if value == "":
                continue
            if field.attr:
                if encoded := field.encode(value):      # None or empty: no attribute
                    attrs[field.attr] = [encoded]
            else:
                settings.append(f"{field.setting}:{field.encode(value)}")
            if field.service and field.service not in services:
                services.append(field.service)
        if values.get("is_backupmx"):
            attrs["domainBackupMX"] = ["yes"]
        if alias_domains:
            attrs["domainAliasName"] = alias_domains
            services.append("domainalias")
        if settings:
            attrs["accountSetting"] = settings
        if admin:
            attrs["domainAdmin"] = [admin]
        attrs["enabledService"] = services
        # Queued whole: the journal knows every entry before the first is sent,
        # so a create cut short is undone, or kept if all of it landed.
        with self.dir.batch(kind="create", targets=[f"domain:{domain}"]) as batch:
            batch.plan_add(dn, attrs)
            container = load("container")
            for ou in CONTAINERS:
                batch.plan_add(*container.render(ou=ou, domain=domain, domains_dn=self.tree.domains_dn))
            if values.get("catchall"):
                self._create_catchall(batch, domain, values["catchall"])
            batch.run(final=True)
            # Checked after adding (ceilings.py): of requests racing for a
            # name only one keeps it, whether as a domain or an alias domain.
            hold(dn, [self.name_ceiling(n) for n in [domain, *alias_domains]] + list(limits))

    def _create_catchall(self, batch: Batch, domain: str, targets: builtins.list[str]) -> None:
        dn, attrs = CATCHALL.template.render(domain=domain, domains_dn=self.tree.domains_dn)
        attrs["mailForwardingAddress"] = targets
        batch.plan_add(dn, attrs)

    def _backupmx_transport(self, domain: str, primary_mx: str) -> str:
        # Without a primary MX Postfix looks up the domain's MX records itself.
        if not primary_mx:
            return f"relay:{domain}"
        match = re.fullmatch(r"\[?([^\[\]]+?)\]?(?::([0-9]+))?", primary_mx)
        host, port = (match.group(1), match.group(2) or "25") if match else (primary_mx, "25")
        return f"relay:[{host}]:{port}"

    def _check_alias_domains(self, domain: str, names: Iterable[str]) -> None:
        for name in names:
            if name == domain:
                raise InvalidInput(f"aliasDomains: {name} is the domain itself", param="aliasDomains")
            hostable_domain(name, param="aliasDomains")
            owner = self.owner_of_name(name)
            if owner and owner != domain:
                # Not naming the owner: it may be another customer.
                raise Conflict(f"{name} is already in use as a domain or alias domain", code="ALREADY_EXISTS",
                               param="aliasDomains")
            if owner == domain and self.find(name) is not None:
                raise Conflict(f"{name} is a domain of its own", code="ALREADY_EXISTS", param="aliasDomains")

    # -- updating -----------------------------------------------------------

    def update(self, domain: str, values: dict[str, Any], *, entry: Entry | None = None) -> None:
        """Apply a PUT: one modify on the domain entry plus the entries it implies.

        `entry`: the domain's entry as the request has read it already, if it has."""
        entry = self.get(domain, read=entry)
        _check_default_quota(values, entry.get("accountSetting"))
        changes: Changes = {}
        services = {s.lower(): s for s in entry.get("enabledService")}

        for field in DOMAIN.fields:
            name = field.param.name
            if name not in values:
                continue
            value = values[name]
            new = None if value == "" else field.encode(value)
            if field.attr:
                current = entry.first(field.attr) or None
                if new is None and current is not None:
                    changes[field.attr] = [(DELETE, [])]
                elif new is not None and new != current:
                    changes[field.attr] = [(REPLACE, [new])]
            else:
                changes = settings_attr.merge(
                    changes, settings_attr.set_changes(entry.get("accountSetting"), field.setting, new))
            if field.service:
                if new is None:
                    services.pop(field.service, None)
                else:
                    services.setdefault(field.service, field.service)

        if "is_backupmx" in values:
            if values["is_backupmx"]:
                changes["domainBackupMX"] = [(REPLACE, ["yes"])]
                changes["mtaTransport"] = [(REPLACE, [self._backupmx_transport(domain, values.get("primarymx", ""))])]
            elif entry.get("domainBackupMX"):
                changes["domainBackupMX"] = [(DELETE, [])]
                if entry.first("mtaTransport").startswith("relay:"):
                    changes["mtaTransport"] = [(REPLACE, [self.default_transport])]

        # Services: the explicit parameters first, then what the fields imply.
        if "removeAllServices" in values:
            services = {}
        services = wanted_services(services, values)

        alias_before = [a.lower() for a in entry.get("domainAliasName")]
        alias_after = self.alias_domains_after(alias_before, values)
        if alias_after != alias_before:
            self._check_alias_domains(domain, [a for a in alias_after if a not in alias_before])
            ops = values_diff(alias_before, alias_after)
            if ops:
                changes["domainAliasName"] = ops
            if alias_after:
                services.setdefault("domainalias", "domainalias")
        ops = values_diff(entry.get("enabledService"), services.values())
        if ops:
            changes["enabledService"] = ops

        for key, add_name, remove_name in (
                ("disabledDomainProfile", "disableDomainProfile", "enableDomainProfile"),
                ("disabledUserProfile", "disableUserProfile", "enableUserProfile"),
                ("disabledUserPreference", "disableUserPreference", "enableUserPreference")):
            if add_name in values or remove_name in values:
                add = values.get(add_name, [])
                remove = [r for r in values.get(remove_name, []) if r not in add]
                changes = settings_attr.merge(
                    changes, settings_attr.list_changes(entry.get("accountSetting"), key, add, remove))

        status_before = entry.first("accountStatus", "active").lower()
        status_after = values.get("accountStatus", status_before)

        old_transport = entry.first("mtaTransport")
        transport_changes = "mtaTransport" in changes and bool(old_transport)

        with self.dir.batch(kind="update", targets=[f"domain:{domain}"]) as batch:
            batch.modify(entry.dn, changes, before=entry)
            hold(entry.dn, [self.name_ceiling(n, param="aliasDomains") for n in alias_after if n not in alias_before])
            if transport_changes:
                self._drop_copied_transports(batch, domain, old_transport)
            if status_after != status_before:
                self._set_domain_status(batch, domain, disabled=status_after == "disabled")
            if alias_after != alias_before:
                self._sync_shadow_addresses(batch, domain,
                                            added=[a for a in alias_after if a not in alias_before],
                                            removed=[a for a in alias_before if a not in alias_after])
            if "catchall" in values:
                self._set_catchall(batch, domain, values["catchall"])

    @staticmethod
    def alias_domains_after(current: builtins.list[str], values: dict[str, Any]) -> builtins.list[str]:
        """The alias domains a PUT's `values` leave of `current` (lower case)."""
        result = wanted_list(current, values, "aliasDomains", "addAliasDomain", "removeAliasDomain")
        return current if result is None else result

    def _drop_copied_transports(self, batch: Batch, domain: str, old_transport: str) -> None:
        """Users holding a copy of the domain's old transport lose it.

        Postfix asks transport_maps_user first: a per-user mtaTransport equal
        to the domain's (copied at creation by older versions and by some
        tools) would keep the old route after the domain's transport or
        backup-MX change.  Without it the user follows the domain, as users
        made by iRedAdmin do.  mlmmj lists (mlmmj:...) are not mail users."""
        filterstr = USER.filter("(mtaTransport=%s)", old_transport)
        for user in self.dir.paged_search(self.tree.domain(domain), filterstr, scope=SUBTREE,
                                          attrs=("mtaTransport",)):
            batch.modify(user.dn, {"mtaTransport": [(DELETE, [])]}, before=user)

    def _set_domain_status(self, batch: Batch, domain: str, *, disabled: bool) -> None:
        """Mark (or unmark) every account below the domain: Postfix and Dovecot
        test `(!(domainStatus=disabled))`, so this switches the whole domain off."""
        for account in self.dir.paged_search(self.tree.domain(domain), _ACCOUNTS_FILTER, scope=SUBTREE,
                                             attrs=("domainStatus",)):
            has = account.has_value("domainStatus", "disabled")
            if disabled and not has:
                batch.modify(account.dn, {"domainStatus": [(REPLACE, ["disabled"])]}, before=account)
            elif not disabled and account.get("domainStatus"):
                batch.modify(account.dn, {"domainStatus": [(DELETE, [])]}, before=account)

    def _sync_shadow_addresses(self, batch: Batch, domain: str, *, added: builtins.list[str], removed: builtins.list[str]) -> None:
        """Give every address of the domain its twin in each alias domain."""
        for account in self.dir.paged_search(self.tree.domain(domain), _ADDRESS_FILTER, scope=SUBTREE,
                                             attrs=("mail", "shadowAddress")):
            mail = account.first("mail").lower()
            local, _, own_domain = mail.rpartition("@")
            if not local or own_domain != domain:
                continue  # the catch-all (`@domain`) has no local part
            have = {v.lower() for v in account.get("shadowAddress")}
            add = [f"{local}@{a}" for a in added if f"{local}@{a}" not in have]
            remove = [v for v in account.get("shadowAddress")
                      if v.lower().rpartition("@")[2] in removed and v.lower().rpartition("@")[0] == local]
            ops = ([(DELETE, remove)] if remove else []) + ([(ADD, add)] if add else [])
            if ops:
                batch.modify(account.dn, {"shadowAddress": ops})

    def _set_catchall(self, batch: Batch, domain: str, targets: builtins.list[str]) -> None:
        current = self.catchall(domain)
        if not targets:
            if current is not None:
                batch.delete(current.dn)
            return
        if current is None:
            self._create_catchall(batch, domain, targets)
            return
        ops = values_diff(current.get("mailForwardingAddress"), targets)
        if ops:
            batch.modify(current.dn, {"mailForwardingAddress": ops})

    # -- deleting -----------------------------------------------------------

    def delete(self, domain: str, *, after: Callable[[builtins.list[DeletedMailbox]], None] | None = None) -> builtins.list[DeletedMailbox]:
        """Remove the domain and everything below it.

        `after` runs (with the mailboxes that were in the domain) once every
        entry to remove is in the journal and before the first goes, so the
        deleted_mailboxes rows exist before the mailboxes are orphaned; if it
        raises, nothing is deleted.  A callable it returns undoes it, should
        the deletion be undone.  Cut short by the directory going away, the
        deletion is finished by the journal.
        """
        self.get(domain)
        with self.dir.batch(kind="delete", targets=[f"domain:{domain}"], resume="forward") as batch:
            removed = batch.plan_delete_subtree(self.tree.domain(domain))
            batch.record(final=True)
            users_dn = self.tree.container(domain, USER.container).lower()
            mailboxes = [DeletedMailbox(e.first("mail").lower(), domain, e.first("homeDirectory"))
                         for e in removed
                         if e.dn.lower().endswith("," + users_dn) and USER.matches(e.attrs)]
            if after is not None:
                undo = after(mailboxes)
                if callable(undo):
                    batch.on_rollback(undo)
        return mailboxes

    # -- admins and services ------------------------------------------------

    def admins(self, domain: str) -> builtins.list[str]:
        return [a.lower() for a in self.get(domain).get("domainAdmin")]

    def set_admins(self, domain: str, *, add: builtins.list[str], remove: builtins.list[str], remove_all: bool,
                   user_entries: dict[str, Entry]) -> None:
        """Change the `domainAdmin` values; `user_entries` are the mail users among
        the added admins, which also get `enabledService: domainadmin`."""
        entry = self.get(domain)
        current = [a.lower() for a in entry.get("domainAdmin")]
        wanted = [] if remove_all else [a for a in current if a not in remove]
        wanted += [a for a in add if a not in wanted]
        ops = values_diff(entry.get("domainAdmin"), wanted)
        with self.dir.batch() as batch:
            batch.modify(entry.dn, {"domainAdmin": ops} if ops else {})
            for mail, user in user_entries.items():
                if mail in add and not user.has_value("enabledService", "domainadmin"):
                    batch.modify(user.dn, {"enabledService": [(ADD, ["domainadmin"])]})

    def services(self, domain: str) -> builtins.list[str]:
        return self.get(domain).get("enabledService")


def parse_account_settings(entry: Entry) -> dict[str, object]:
    return settings_attr.parse(entry.get("accountSetting"))


def _check_default_quota(values: dict[str, Any], settings: list[str]) -> None:
    """A default quota over the largest one a user may get would refuse every
    new user created without a quota of its own: refused, whichever of the
    two the request changes (`settings`: the domain's accountSetting now).
    A request changing neither leaves a domain that has it so as it is."""
    if "defaultQuota" not in values and "maxUserQuota" not in values:
        return

    def after(name: str) -> int:
        if name in values:
            return int(values[name] or 0)
        return settings_attr.int_of(settings, name)

    default, most = after("defaultQuota"), after("maxUserQuota")
    if default and most and default > most:
        param = "defaultQuota" if "defaultQuota" in values else "maxUserQuota"
        raise InvalidInput(f"{param}: the default quota of new users ({default} MB) is over the largest a user "
                           f"may get ({most} MB)", param=param)


__all__ = ["DomainStore", "DeletedMailbox", "parse_account_settings", "accounts"]
