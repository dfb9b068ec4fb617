"""What an API token's limits change in a request (the token itself: iredldap.db.tokens).

* read-only: only GET (and HEAD) requests; anything else is 403.
* limited to domains (`Scope`): the token's admin acts as a normal admin
  that manages only those of the listed domains it manages itself (a global
  admin: the listed domains); every domain or address in the URL must lie
  in the listed domains.

`narrow` applies both to the principal found for the request; the request's
`authz.Access` then carries the narrowed principal and managed domains, so
the access table and the responders see the same view.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from iredldap.db.tokens import ApiToken
from iredldap.directory.admins import Principal
from iredldap.errors import NotAuthorized
from iredldap.web.url import UrlParts

#: Methods a read-only token may use.
READ_METHODS = frozenset({"GET", "HEAD"})

# URL parts that name a domain or an address.
_URL_DOMAIN_FIELDS = ("domain", "mail", "new_mail", "account")


@dataclass(frozen=True)
class Scope:
    """What a domain-limited token may reach: `domains`, of which an admin
    that is not global manages only those in its own list."""

    domains: frozenset[str]
    admin_is_global: bool

    def allows(self, domain: str) -> bool:
        return domain.lower() in self.domains

    def managed(self, own: Sequence[str]) -> list[str]:
        """The domains the admin manages under this token; `own`: those it manages itself."""
        if self.admin_is_global:
            return sorted(self.domains)
        return [d for d in own if self.allows(d)]


def narrow(token: ApiToken, principal: Principal, method: str, url: UrlParts) -> tuple[Principal, Scope | None]:
    """Apply the token's limits to a request: the principal the rest of the
    request sees, and the token's `Scope` (None: not limited to domains).

    Raises NotAuthorized for a write with a read-only token and for a URL
    outside a domain-limited token's domains.
    """
    if token.read_only and method.upper() not in READ_METHODS:
        raise NotAuthorized("this API token is read-only")
    if token.domains is None:
        return principal, None
    scope = Scope(domains=token.domains, admin_is_global=principal.is_global)
    for field in _URL_DOMAIN_FIELDS:
        if field not in url:
            continue
        domain = url.domain_of(field)
        if domain is None:
            raise NotAuthorized("this API token is limited to some domains; global settings need an "
                                "unrestricted token")
        if not scope.allows(domain):
            raise NotAuthorized(f"this API token is not valid for domain {domain}")
    # A normal admin of the listed domains, as far as everything else is concerned.
    return dataclasses.replace(principal, is_global=False), scope


def rdn_value(dn: str) -> str:
    """`example.com` of `domainName=example.com,o=domains,...`."""
    return dn.split(",", 1)[0].partition("=")[2].strip().lower()
