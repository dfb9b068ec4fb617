"""Request pipeline: client address, API switch, client restriction, login, access rules."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Mapping

import falcon

from iredldap.directory.journal import WriteJournal
from iredldap.web import authz
from iredldap.web.journal import settle_unfinished
from iredldap.config import Settings
from iredldap.directory.admins import AdminStore, Lookup
from iredldap.directory.domains import DomainStore
from iredldap.errors import LoginRequired, NotAuthorized, NotFound
from iredldap.db.engine import close_request_scope, open_request_scope
from iredldap.db.sessions import SessionStore
from iredldap.db.tokens import TokenStore
from iredldap.web.scope import narrow
from iredldap.web.url import UrlParts

log = logging.getLogger(__name__)


def _in(ip: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    # A dual-stack listener ([::]) sees IPv4 clients as ::ffff:a.b.c.d; they
    # must still match the IPv4 entries of the lists.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


def _may_have_responder(resource, method: str) -> bool:
    """Whether `resource` has an `on_<method>` or `on_<method>_<suffix>` responder.

    Errs towards True (any suffix counts): a wrong True only means a 403
    instead of a 405, a wrong False would skip the access check.
    """
    prefix = "on_" + method.lower()
    return any(name == prefix or name.startswith(prefix + "_") for name in dir(resource))


class RequestScope:
    """One SQL connection per database for the whole request (iredldap.db.engine):
    lent from the first statement on, given back when the answer is made
    (after the audit row).  Transactions still end block by block, so what
    other workers commit (a logout, a revoked token) counts at once."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        open_request_scope()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        close_request_scope()


class DirectoryRequest:
    """Each request uses one directory server from its first operation to its
    last (read-your-writes; `Directory.begin_request`)."""

    def __init__(self, directory):
        self.directory = directory

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.directory.begin_request()


class ClientAccess:
    """Works out the client's address and refuses the API where it is switched off or restricted."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.api_root = settings.url_prefix + "/api"

    def client_ip(self, req: falcon.Request) -> str:
        ip = req.remote_addr or ""
        # X-Forwarded-For is believed only when the direct peer is a known
        # proxy; then the client is the last address not added by our proxies.
        if self.settings.trusted_proxies and _in(ip, self.settings.trusted_proxies):
            forwarded = [a.strip() for a in (req.get_header("X-Forwarded-For") or "").split(",") if a.strip()]
            for hop in reversed(forwarded):
                if not _in(hop, self.settings.trusted_proxies):
                    return hop
        return ip

    def _is_api(self, path: str) -> bool:
        return path == self.api_root or path.startswith(self.api_root + "/")

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.client_ip = self.client_ip(req)
        req.context.principal = None
        # Falcon's router ignores leading slashes ("//api/login" reaches
        # /api/login), so the path is judged the same way.
        if self._is_api("/" + req.path.lstrip("/")):
            self._guard(req)

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        # Judge what was actually routed too, whatever the path looked like.
        if resource is not None and self._is_api(req.uri_template or ""):
            self._guard(req)

    def _guard(self, req: falcon.Request) -> None:
        if not self.settings.enable_restful_api:
            raise NotFound("the RESTful API is not enabled (ENABLE_RESTFUL_API)")
        if self.settings.restrict_api_access and not _in(req.context.client_ip, self.settings.restful_api_clients):
            raise NotAuthorized(f"API access is not allowed from {req.context.client_ip}")


@dataclasses.dataclass(eq=False)
class Authentication:
    """Builds the request's context once: parses the URL parts (iredldap.web.url),
    finds the admin behind the session cookie or the API token (`Authorization:
    Bearer`, see iredldap.web.scope) with the domains it manages, applies the
    access table, and leaves the result in `req.context.access`.

    Nothing is kept between requests: a logout, a revoked token or a disabled
    admin counts from the next request on.
    """

    settings: Settings
    sessions: SessionStore
    admins: AdminStore
    domains: DomainStore
    tokens: TokenStore | None = None
    _: dataclasses.KW_ONLY
    rules: Mapping[tuple[str, str], authz.Rule]
    journal: WriteJournal | None = None

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        req.context.token = None
        if resource is None:
            return
        template = (req.uri_template or "")[len(self.settings.url_prefix):]
        rule = self.rules.get((template, req.method))
        if rule is None:
            if not _may_have_responder(resource, req.method):
                # No responder for this method: Falcon answers 405 (or its
                # default OPTIONS) without running any code of ours, so let
                # it; refusing here would turn every wrong method into a 403.
                return
            log.error("no access rule for %s %s", req.method, template)
        url = UrlParts(params)
        lookup = None
        if rule is not authz.Rule.PUBLIC:
            lookup = self._lookup(req, url, params)
        req.context.principal = principal = lookup.principal if lookup is not None else None
        scope = None
        if principal is not None and req.context.token is not None:
            # Read-only and domain-limited tokens (may raise NotAuthorized).
            principal, scope = narrow(req.context.token, principal, req.method, url)
        managed = None
        if principal is not None and not principal.is_global:
            own = principal.domains
            if own is None:
                own = tuple(self.domains.managed_by(principal.mail))
                principal = dataclasses.replace(principal, domains=own)
            managed = scope.managed(own) if scope is not None else list(own)
        req.context.principal = principal
        req.context.access = access = authz.Access(principal, self.admins, managed, lookup=lookup, scope=scope)
        authz.check(rule, access, url)
        # What the responder would have refused the URL for, now that it may be called at all.
        url.require_valid()
        params.update(url.values)

    def _lookup(self, req: falcon.Request, url: UrlParts, params: dict) -> Lookup | None:
        """The caller (None: not logged in), with the account and domain the URL names, in one search.

        Between telling who asks (SQL only) and that search, writes left
        unfinished on the URL's objects are finished (web/journal.py), so the
        entries the search reads are whole; anonymous requests finish nothing.
        """
        scheme, _, credentials = (req.get_header("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and self.tokens is not None:
            token = self.tokens.resolve(credentials.strip())     # LoginRequired if unknown, revoked or expired
            settle_unfinished(self.journal, params, writes_open=token.writes_open)
            found = self._find(token.admin, url)
            if found is None:
                raise LoginRequired("the admin of this API token is no longer active")
            req.context.token = token
            return found
        cookie = req.cookies.get(self.settings.session_cookie_name)
        if not cookie:
            return None
        session = self.sessions.resolve(cookie)
        if session is None:
            raise LoginRequired("the session has expired or ended; log in again")
        settle_unfinished(self.journal, params, writes_open=session.writes_open)
        found = self._find(session.admin, url)
        if found is None:
            # The admin was deleted, disabled or demoted since logging in.
            self.sessions.end(session)
            raise LoginRequired("this admin account is no longer active")
        req.context.session = session
        return found

    def _find(self, admin: str, url: UrlParts) -> Lookup | None:
        account = url.valid("mail") or ""
        return self.admins.lookup(admin, account=account, domain=url.valid("domain") or account.rpartition("@")[2])
