"""Who may call what: the rules, and the check of one request against its rule.

Each route of the service declares the rule of each of its methods
(iredldap.web.app.ROUTES, from which `app.RULES` maps (URI template, HTTP
method) to a rule).  The web layer looks up every request there before the
responder runs; a route missing from the table is refused, and create_app
refuses a responder method without a rule, so a new endpoint cannot be
reachable by accident.

Rules:
    PUBLIC          no login needed (login itself, health, metrics)
    LOGGED_IN       any admin; the responder limits what it returns
    GLOBAL          global admins only
    DOMAIN          the `{domain}` of the URL must be one the admin manages
    DOMAIN_CHANGE   DOMAIN, and the domain may hold no address above the caller
                    (a mail user, or an admin without a mailbox whose mail an
                    alias may take: `Access.above_in`): a change made to the
                    whole domain (its spam policy) reaches those addresses
    MAIL_DOMAIN     the domain part of `{mail}` must be one the admin manages
    MAIL_ACCOUNT    MAIL_DOMAIN, and the account at `{mail}` (the address of a
                    new one too: a standalone admin may have it) may not hold
                    admin rights beyond the caller's (a global admin, an
                    admin of a domain the caller does not manage, an admin
                    allowed to create domains when the caller is not): a
                    normal admin cannot take over, lock out, rename or
                    delete those above it (see `Rights`)
    CREATE_DOMAIN   global admins, or normal admins allowed to create domains
    DELETE_DOMAIN   DOMAIN, and the admin must be allowed to create domains
                    (a reseller may remove what it could have made); the
                    domain may hold no address above the caller (as for
                    DOMAIN_CHANGE)
    ACCOUNT         `{account}` is `global` (global admins only), a domain the
                    admin manages, or an address in such a domain
    ACCOUNT_CHANGE  ACCOUNT, and an address may not be an account above the
                    caller (as for MAIL_ACCOUNT): the policies of a global
                    admin's mailbox are its own; a domain, as for DOMAIN_CHANGE

A normal admin asking about a domain it does not manage gets 403 whether the
domain exists or not, so the answer tells nothing about other customers.

`PUT /api/users/<domain>` (DOMAIN) changes every user of the domain except
those above the caller, which it skips and names in its answer
(`Access.outranking`, the same test as MAIL_ACCOUNT).

An API token may narrow this further (read-only, or some domains only):
see iredldap.web.scope.
"""

from __future__ import annotations

import enum
from typing import Any, Iterable, Mapping, Sequence

from iredldap.directory.admins import AdminStore, Lookup, Principal, Rights
from iredldap.directory.connection import Entry
from iredldap.errors import LoginRequired, NotAuthorized
from iredldap.web.scope import Scope, rdn_value
from iredldap.web.url import UrlParts


class Rule(enum.Enum):
    PUBLIC = "public"
    LOGGED_IN = "logged_in"
    GLOBAL = "global"
    DOMAIN = "domain"
    DOMAIN_CHANGE = "domain_change"
    MAIL_DOMAIN = "mail_domain"
    CREATE_DOMAIN = "create_domain"
    DELETE_DOMAIN = "delete_domain"
    ACCOUNT = "account"
    ACCOUNT_CHANGE = "account_change"
    MAIL_ACCOUNT = "mail_account"


class Access:
    """What the access decisions of one request need to know, read once by
    the authentication middleware: the caller, the domains it manages
    (narrowed by a domain-limited token, see iredldap.web.scope), and what
    the same search found of the account the URL names (`lookup`).

    Responders that must apply the same rules to more accounts (aliases
    given, the bulk user update) use it too.
    """

    def __init__(self, principal: Principal | None, admins: AdminStore | None,
                 managed: Sequence[str] | None = None, *, lookup: Lookup | None = None,
                 scope: Scope | None = None):
        self.principal = principal
        self._admins = admins
        self._managed = list(managed) if managed is not None else None
        self.lookup = lookup
        self.scope = scope

    def managed_domains(self) -> list[str]:
        """The domains a normal admin manages (read for every normal admin's request)."""
        assert self._managed is not None, "a global admin manages every domain"
        return self._managed

    def entry_at(self, dn: str) -> Entry | None:
        """The entry at `dn` if the request's lookup read it (the account at the
        URL's {mail}, the URL's domain); None: not read, look it up."""
        return self.lookup.entry_at(dn) if self.lookup is not None else None

    def rights_of(self, mail: str) -> Rights:
        if self.lookup is not None and self.lookup.account == mail.lower():
            return self.lookup.account_rights()
        assert self._admins is not None
        return self._admins.rights_of(mail)

    def outranks(self, mail: str) -> bool:
        """Whether the account at `mail` holds rights beyond the caller's, or
        the address is the twin of one that does in an alias domain of its
        domain (Postfix gives an account at `mail` the mail of local@alias
        that no account of its own takes: a standalone admin's, say)."""
        assert self.principal is not None
        if self.principal.is_global:
            return False
        managed = self.managed_domains()
        if self.rights_of(mail).exceed(self.principal, managed):
            return True
        assert self._admins is not None
        local, _, domain = mail.lower().rpartition("@")
        twins = [f"{local}@{alias}" for alias in self._alias_domains_of(domain)]
        return bool(twins and self._admins.above(twins, self.principal, managed))

    def _alias_domains_of(self, domain: str) -> list[str]:
        """The alias domains of `domain`, from the entry the lookup read if it did."""
        assert self._admins is not None
        entry = self.entry_at(self._admins.tree.domain(domain))
        if entry is None:
            return self._admins.alias_domains_of(domain)
        return [a.lower() for a in entry.get("domainAliasName")]

    def outranking(self, domain: str) -> list[str]:
        """The mail users of `domain` above the caller (themselves, or their
        twins in the domain's alias domains, as `outranks`)."""
        assert self.principal is not None
        if self.principal.is_global:
            return []
        assert self._admins is not None
        return self._admins.outranking(domain, self.principal, self.managed_domains(), self._alias_domains_of(domain))

    def above_at(self, domains: Sequence[str]) -> list[str]:
        """The addresses in these domains above the caller, with a mailbox or
        not (`AdminStore.above_at`)."""
        assert self.principal is not None
        if self.principal.is_global or not domains:
            return []
        assert self._admins is not None
        return self._admins.above_at(domains, self.principal, self.managed_domains())

    def above_in(self, domain: str) -> list[str]:
        """The addresses of `domain` and of its alias domains above the caller:
        what a change to the whole domain reaches (disabling or deleting it,
        its BCC, relay, catch-all or policies)."""
        return self.above_at([domain, *self._alias_domains_of(domain)])

    def listing_admin(self) -> str | None:
        """Whose domains a domain listing shows: None for all (then `visible`
        narrows them under a global admin's domain-limited token)."""
        assert self.principal is not None
        if self.principal.is_global or (self.scope is not None and self.scope.admin_is_global):
            return None
        return self.principal.mail

    def visible(self, domain_entries: Iterable[Entry]) -> Iterable[Entry]:
        """The domains of a listing the caller may see under its token."""
        scope = self.scope
        if scope is None:
            return domain_entries
        return (e for e in domain_entries if scope.allows(rdn_value(e.dn)))


def check(rule: Rule | None, access: Access, url: UrlParts | Mapping[str, Any]) -> None:
    """Raise LoginRequired or NotAuthorized unless the rule lets the request
    through (or the InvalidInput of a URL part the rule needs)."""
    parts = url if isinstance(url, UrlParts) else UrlParts(url)
    principal = access.principal
    if rule is None:
        raise NotAuthorized("this endpoint has no access rule")
    if rule is Rule.PUBLIC:
        return
    if principal is None:
        raise LoginRequired("log in first (POST /api/login)")
    if principal.is_global or rule is Rule.LOGGED_IN:
        return
    if rule is Rule.GLOBAL:
        raise NotAuthorized("only global admins may do this")
    if rule is Rule.CREATE_DOMAIN:
        if not principal.may_create_domains:
            raise NotAuthorized("this admin may not create domains")
        return
    if rule is Rule.DELETE_DOMAIN and not principal.may_create_domains:
        raise NotAuthorized("only admins allowed to create domains may delete one")
    mail = ""
    whole_domain = rule in (Rule.DELETE_DOMAIN, Rule.DOMAIN_CHANGE)
    if rule in (Rule.DOMAIN, Rule.DELETE_DOMAIN, Rule.DOMAIN_CHANGE):
        domain = parts["domain"]
    elif rule in (Rule.ACCOUNT, Rule.ACCOUNT_CHANGE):
        account = parts["account"]
        if account.kind == "global":
            raise NotAuthorized("only global admins may change global settings")
        domain = account.name.rpartition("@")[2]
        if rule is Rule.ACCOUNT_CHANGE:
            if "@" in account.name:
                mail = account.name
            else:
                whole_domain = True     # a domain's policies are those of all its addresses
    else:
        mail = parts["mail"]
        domain = mail.rpartition("@")[2]
    if domain not in access.managed_domains():
        raise NotAuthorized(f"not an admin of domain {domain}")
    if rule in (Rule.MAIL_ACCOUNT, Rule.ACCOUNT_CHANGE) and mail and access.outranks(mail):
        raise NotAuthorized(f"{mail} holds admin rights beyond yours: only a global admin may change it")
    if whole_domain:
        # The caller may use the endpoint on this domain: a malformed part of
        # the rest of the URL is its 400 first, as where this check is not made.
        parts.require_valid()
        above = access.above_in(domain)
        if above:
            raise NotAuthorized(f"domain {domain} holds accounts with admin rights beyond yours: "
                                f"{', '.join(above)}")
