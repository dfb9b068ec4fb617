"""Who may call what: one table for every endpoint of the service.

`RULES` maps (URI template, HTTP method) to a rule.  The web layer looks up
every request here before the responder runs; a route missing from the table
is refused, so a new endpoint cannot be reachable by accident.

Rules:
    PUBLIC          no login needed (login itself, health, metrics)
    LOGGED_IN       any admin; the responder limits what it returns
    GLOBAL          global admins only
    DOMAIN          the `{domain}` of the URL must be one the admin manages
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
                    domain may hold no mail user above the caller (as for
                    MAIL_ACCOUNT)
    ACCOUNT         `{account}` is `global` (global admins only), a domain the
                    admin manages, or an address in such a domain
    ACCOUNT_CHANGE  ACCOUNT, and an address may not be an account above the
                    caller (as for MAIL_ACCOUNT): the policies of a global
                    admin's mailbox are its own

A normal admin asking about a domain it does not manage gets 403 whether the
domain exists or not, so the answer tells nothing about other customers.

`PUT /api/users/<domain>` (DOMAIN) changes every user of the domain except
those above the caller, which it skips and names in its answer
(`Access.outranking`, the same test as MAIL_ACCOUNT).

An API token may narrow this further (read-only, or some domains only):
see iredldap.db.tokens.
"""

from __future__ import annotations

import enum
from iredldap.model import validators
from iredldap.model.accounts import GROUP_TYPES, AccountType
from iredldap.directory.admins import AdminStore, Principal, Rights
from iredldap.errors import LoginRequired, NotAuthorized
from iredldap.model.policy_addresses import account_of


class Rule(enum.Enum):
    PUBLIC = "public"
    LOGGED_IN = "logged_in"
    GLOBAL = "global"
    DOMAIN = "domain"
    MAIL_DOMAIN = "mail_domain"
    CREATE_DOMAIN = "create_domain"
    DELETE_DOMAIN = "delete_domain"
    ACCOUNT = "account"
    ACCOUNT_CHANGE = "account_change"
    MAIL_ACCOUNT = "mail_account"


P, L, G, D, M, C = Rule.PUBLIC, Rule.LOGGED_IN, Rule.GLOBAL, Rule.DOMAIN, Rule.MAIL_DOMAIN, Rule.CREATE_DOMAIN
A = Rule.ACCOUNT
U = Rule.MAIL_ACCOUNT
W = Rule.ACCOUNT_CHANGE
X = Rule.DELETE_DOMAIN


def _group_rules(account: AccountType) -> dict[tuple[str, str], Rule]:
    """The rules of the routes an alias-like type declares (accounts.GROUP_TYPES):
    the domain of `{mail}` must be the admin's; creating one checks the
    address as MAIL_ACCOUNT does (a standalone admin may have it).  Such an
    account holds no admin rights itself, so changing it needs no more."""
    routes = account.routes
    return {(routes.item, "GET"): M, (routes.item, "POST"): U, (routes.item, "PUT"): M, (routes.item, "DELETE"): M,
            (routes.change_email, "POST"): M, (routes.collection, "GET"): D, (account.ldif_route, "GET"): M}


RULES: dict[tuple[str, str], Rule] = {
    ("/api/login", "POST"): P,
    # Public so that an expired cookie can still be cleared.
    ("/api/logout", "POST"): P,
    # The API document and its docs page: they describe the API (what the
    # source and iRedAdmin-Pro's published API tell anyway), no account data.
    ("/api/openapi.json", "GET"): P,
    ("/api/docs", "GET"): P,
    ("/api/docs/{name}", "GET"): P,
    ("/api", "GET"): P,
    ("/api/domains", "GET"): L,
    ("/api/domain/{domain}", "GET"): D,
    ("/api/domain/{domain}", "POST"): C,
    ("/api/domain/{domain}", "PUT"): D,
    ("/api/domain/{domain}", "DELETE"): X,
    ("/api/domain/{domain}/keep_mailbox_days/{days}", "DELETE"): X,
    ("/api/domain/admins/{domain}", "GET"): D,
    ("/api/domain/admins/{domain}", "PUT"): D,
    ("/api/domain/services/{domain}", "GET"): D,
    ("/api/domain/services/{domain}", "PUT"): G,
    # Mail users
    ("/api/user/{mail}", "GET"): M,
    ("/api/user/{mail}", "POST"): U,
    ("/api/user/{mail}", "PUT"): U,
    ("/api/user/{mail}", "DELETE"): U,
    ("/api/user/{mail}/keep_mailbox_days/{days}", "DELETE"): U,
    ("/api/user/{mail}/change_email/{new_mail}", "POST"): U,
    ("/api/users/{domain}", "GET"): D,
    ("/api/users/{domain}", "PUT"): D,
    ("/api/verify_password/user/{mail}", "POST"): G,
    # Aliases and mailing lists (and their LDIF exports), from their declarations
    **{key: rule for account in GROUP_TYPES for key, rule in _group_rules(account).items()},
    # Admins
    ("/api/admins", "GET"): G,
    ("/api/admin/{mail}", "GET"): G,
    ("/api/admin/{mail}", "POST"): G,
    ("/api/admin/{mail}", "PUT"): G,
    ("/api/admin/{mail}", "DELETE"): G,
    ("/api/verify_password/admin/{mail}", "POST"): G,
    # LDIF export
    ("/api/ldif/domain/{domain}", "GET"): D,
    ("/api/ldif/catchall/{domain}", "GET"): D,
    ("/api/ldif/user/{mail}", "GET"): M,
    ("/api/ldif/admin/{mail}", "GET"): G,
    # Spam policy, throttling, greylisting, white/blacklists (SQL)
    ("/api/spampolicy/global", "GET"): G,
    ("/api/spampolicy/global", "PUT"): G,
    ("/api/spampolicy/global", "DELETE"): G,
    ("/api/spampolicy/domain/{domain}", "GET"): D,
    ("/api/spampolicy/domain/{domain}", "PUT"): D,
    ("/api/spampolicy/domain/{domain}", "DELETE"): D,
    ("/api/spampolicy/user/{mail}", "GET"): M,
    ("/api/spampolicy/user/{mail}", "PUT"): U,
    ("/api/spampolicy/user/{mail}", "DELETE"): U,
    ("/api/throttle/{account}/{direction}", "GET"): A,
    ("/api/throttle/{account}/{direction}", "POST"): W,
    ("/api/throttle/{account}/{direction}", "DELETE"): W,
    ("/api/greylisting/all", "GET"): G,
    ("/api/greylisting/whitelist_spf_domains", "GET"): G,
    ("/api/greylisting/whitelist_spf_domains", "POST"): G,
    ("/api/greylisting/{account}", "GET"): A,
    ("/api/greylisting/{account}", "POST"): W,
    ("/api/greylisting/{account}", "DELETE"): W,
    ("/api/greylisting/{account}/whitelists", "GET"): A,
    ("/api/greylisting/{account}/whitelists", "POST"): W,
    ("/api/wblist/{direction}/{listname}/{account}", "GET"): A,
    ("/api/wblist/{direction}/{listname}/{account}", "POST"): W,
    ("/api/wblist/{direction}/{listname}/{account}", "PUT"): W,
    ("/api/wblist/{direction}/{listname}/{account}", "DELETE"): W,
    # API tokens and the activity log
    ("/api/tokens", "GET"): G,
    ("/api/tokens", "POST"): G,
    ("/api/token/{token_id}", "GET"): G,
    ("/api/token/{token_id}", "DELETE"): G,
    ("/api/log", "GET"): G,
    ("/api/check", "GET"): G,
    # Health and metrics, outside /api (resources/health.py)
    ("/healthz", "GET"): P,
    ("/readyz", "GET"): P,
    ("/metrics", "GET"): P,
}


class Access:
    """What the access decisions of one request need to know, each read once:
    the caller, the domains it manages, the rights of accounts it acts on.

    Built by the authentication middleware; responders that must apply the
    same rules to many accounts (the bulk user update) use it too.
    """

    def __init__(self, principal: Principal | None, admins: AdminStore, managed_by):
        self.principal = principal
        self._admins = admins
        self._managed_by = managed_by
        self._managed: list[str] | None = None

    def managed_domains(self) -> list[str]:
        if self._managed is None:
            assert self.principal is not None
            self._managed = self._managed_by(self.principal.mail)
        return self._managed

    def rights_of(self, mail: str) -> Rights:
        return self._admins.rights_of(mail)

    def outranks(self, mail: str) -> bool:
        """Whether the account at `mail` holds rights beyond the caller's."""
        assert self.principal is not None
        if self.principal.is_global:
            return False
        return self.rights_of(mail).exceed(self.principal, self.managed_domains())

    def outranking(self, domain: str) -> list[str]:
        """The mail users of `domain` above the caller."""
        assert self.principal is not None
        if self.principal.is_global:
            return []
        return self._admins.outranking(domain, self.principal, self.managed_domains())


def check(rule: Rule | None, access: Access, url_params: dict[str, str]) -> None:
    """Raise LoginRequired or NotAuthorized unless the rule lets the request through."""
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
    if rule in (Rule.DOMAIN, Rule.DELETE_DOMAIN):
        domain = validators.domain_name(url_params.get("domain", ""))
    elif rule in (Rule.ACCOUNT, Rule.ACCOUNT_CHANGE):
        account = account_of(url_params.get("account", ""))
        if account.kind == "global":
            raise NotAuthorized("only global admins may change global settings")
        domain = account.name.rpartition("@")[2]
        if rule is Rule.ACCOUNT_CHANGE and "@" in account.name:
            mail = account.name
    else:
        mail = validators.email(url_params.get("mail", ""))
        domain = mail.rpartition("@")[2]
    if domain not in access.managed_domains():
        raise NotAuthorized(f"not an admin of domain {domain}")
    if rule in (Rule.MAIL_ACCOUNT, Rule.ACCOUNT_CHANGE) and mail and access.outranks(mail):
        raise NotAuthorized(f"{mail} holds admin rights beyond yours: only a global admin may change it")
    if rule is Rule.DELETE_DOMAIN:
        above = access.outranking(domain)
        if above:
            raise NotAuthorized(f"domain {domain} holds accounts with admin rights beyond yours: "
                                f"{', '.join(above)}")
