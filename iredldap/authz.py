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
    CREATE_DOMAIN   global admins, or normal admins allowed to create domains
    DELETE_DOMAIN   DOMAIN, and the admin must be allowed to create domains
                    (a reseller may remove what it could have made)
    ACCOUNT         `{account}` is `global` (global admins only), a domain the
                    admin manages, or an address in such a domain

A normal admin asking about a domain it does not manage gets 403 whether the
domain exists or not, so the answer tells nothing about other customers.

An API token may narrow this further (read-only, or some domains only):
see iredldap.tokens.
"""

from __future__ import annotations

import enum
from typing import Callable

from . import validators
from .directory.admins import Principal
from .errors import LoginRequired, NotAuthorized
from .policy_addresses import account_of


class Rule(enum.Enum):
    PUBLIC = "public"
    LOGGED_IN = "logged_in"
    GLOBAL = "global"
    DOMAIN = "domain"
    MAIL_DOMAIN = "mail_domain"
    CREATE_DOMAIN = "create_domain"
    DELETE_DOMAIN = "delete_domain"
    ACCOUNT = "account"


P, L, G, D, M, C = Rule.PUBLIC, Rule.LOGGED_IN, Rule.GLOBAL, Rule.DOMAIN, Rule.MAIL_DOMAIN, Rule.CREATE_DOMAIN
A = Rule.ACCOUNT
X = Rule.DELETE_DOMAIN

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
    ("/api/user/{mail}", "POST"): M,
    ("/api/user/{mail}", "PUT"): M,
    ("/api/user/{mail}", "DELETE"): M,
    ("/api/user/{mail}/keep_mailbox_days/{days}", "DELETE"): M,
    ("/api/user/{mail}/change_email/{new_mail}", "POST"): M,
    ("/api/users/{domain}", "GET"): D,
    ("/api/users/{domain}", "PUT"): D,
    ("/api/verify_password/user/{mail}", "POST"): G,
    # Aliases and mailing lists
    ("/api/alias/{mail}", "GET"): M,
    ("/api/alias/{mail}", "POST"): M,
    ("/api/alias/{mail}", "PUT"): M,
    ("/api/alias/{mail}", "DELETE"): M,
    ("/api/alias/{mail}/change_email/{new_mail}", "POST"): M,
    ("/api/aliases/{domain}", "GET"): D,
    ("/api/maillist/{mail}", "GET"): M,
    ("/api/maillist/{mail}", "POST"): M,
    ("/api/maillist/{mail}", "PUT"): M,
    ("/api/maillist/{mail}", "DELETE"): M,
    ("/api/maillist/{mail}/change_email/{new_mail}", "POST"): M,
    ("/api/maillists/{domain}", "GET"): D,
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
    ("/api/ldif/maillist/{mail}", "GET"): M,
    ("/api/ldif/alias/{mail}", "GET"): M,
    ("/api/ldif/admin/{mail}", "GET"): G,
    # Spam policy, throttling, greylisting, white/blacklists (SQL)
    ("/api/spampolicy/global", "GET"): G,
    ("/api/spampolicy/global", "PUT"): G,
    ("/api/spampolicy/global", "DELETE"): G,
    ("/api/spampolicy/domain/{domain}", "GET"): D,
    ("/api/spampolicy/domain/{domain}", "PUT"): D,
    ("/api/spampolicy/domain/{domain}", "DELETE"): D,
    ("/api/spampolicy/user/{mail}", "GET"): M,
    ("/api/spampolicy/user/{mail}", "PUT"): M,
    ("/api/spampolicy/user/{mail}", "DELETE"): M,
    ("/api/throttle/{account}/{direction}", "GET"): A,
    ("/api/throttle/{account}/{direction}", "POST"): A,
    ("/api/throttle/{account}/{direction}", "DELETE"): A,
    ("/api/greylisting/all", "GET"): G,
    ("/api/greylisting/whitelist_spf_domains", "GET"): G,
    ("/api/greylisting/whitelist_spf_domains", "POST"): G,
    ("/api/greylisting/{account}", "GET"): A,
    ("/api/greylisting/{account}", "POST"): A,
    ("/api/greylisting/{account}", "DELETE"): A,
    ("/api/greylisting/{account}/whitelists", "GET"): A,
    ("/api/greylisting/{account}/whitelists", "POST"): A,
    ("/api/wblist/{direction}/{listname}/{account}", "GET"): A,
    ("/api/wblist/{direction}/{listname}/{account}", "POST"): A,
    ("/api/wblist/{direction}/{listname}/{account}", "PUT"): A,
    ("/api/wblist/{direction}/{listname}/{account}", "DELETE"): A,
    # API tokens and the activity log
    ("/api/tokens", "GET"): G,
    ("/api/tokens", "POST"): G,
    ("/api/token/{token_id}", "GET"): G,
    ("/api/token/{token_id}", "DELETE"): G,
    ("/api/log", "GET"): G,
    # Health and metrics, outside /api (resources/health.py)
    ("/healthz", "GET"): P,
    ("/readyz", "GET"): P,
    ("/metrics", "GET"): P,
}


def check(rule: Rule | None, principal: Principal | None, url_params: dict[str, str],
          managed_domains: Callable[[], list[str]]) -> None:
    """Raise LoginRequired or NotAuthorized unless the rule lets the request through."""
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
    if rule in (Rule.DOMAIN, Rule.DELETE_DOMAIN):
        domain = validators.domain_name(url_params.get("domain", ""))
    elif rule is Rule.ACCOUNT:
        account = account_of(url_params.get("account", ""))
        if account.kind == "global":
            raise NotAuthorized("only global admins may change global settings")
        domain = account.name.rpartition("@")[2]
    else:
        domain = validators.email(url_params.get("mail", "")).rpartition("@")[2]
    if domain not in managed_domains():
        raise NotAuthorized(f"not an admin of domain {domain}")
