"""API tokens: `Authorization: Bearer <token>` beside the session cookie.

A global admin creates a token for an admin (the API or `iredldap token
create`); the token is shown once.  The `api_tokens` table of the iredadmin
database keeps only an HMAC-SHA256 of it (keyed with SECRET_KEY, like the
session keys), so a copy of the database lets nobody in -- and changing
SECRET_KEY ends every token, as it ends every session.

A request with a token acts as the token's admin, read again from the
directory on every request: an admin deleted, disabled or demoted since is
refused (401) like a session.  A token can be narrowed:

* read-only: only GET (and HEAD) requests; anything else is 403.
* limited to domains: the token's admin acts as a normal admin that manages
  only those of the listed domains it may manage itself (a global admin: the
  listed domains).  Concretely (see `Scope`):
    - the access table runs with a non-global view of the admin, whose
      managed domains are that intersection: endpoints for global admins
      only (admins, tokens, the log, global policies) are 403;
    - every domain or address in the URL (`{domain}`, `{mail}`,
      `{new_mail}`, `{account}`) must lie in the listed domains;
    - creating and deleting domains follows the normal admin's rule: only
      an admin with `create_new_domains` (a reseller), and only under a
      listed name -- a global admin's limited token cannot (use an
      unrestricted token for that);
    - the responders see that non-global view too: a global admin's limits
      and switches (quotas, services ...) are refused as for a normal admin,
      domain lists show only the listed domains, list members and promoted
      admins from other domains are refused.

Revocation takes effect at once (every request reads the token's row); an
expired or revoked token is a 401.  Expiry is checked against the clock of
this service, in UTC.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from iredldap.model import validators
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.admins import Principal
from iredldap.errors import InvalidInput, LoginRequired, NotAuthorized

#: Tokens start with this, so that secret scanners and people recognise them.
PREFIX = "irdl_"

#: `last_used` is written at most this often (seconds): not a write per request.
TOUCH_INTERVAL = 60

#: Methods a read-only token may use.
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class ApiToken:
    id: int
    admin: str
    name: str
    read_only: bool
    domains: frozenset[str] | None     # None: not limited
    expires: datetime | None

    @property
    def who(self) -> str:
        """How the audit log names the caller."""
        return f"token:{self.id}"


def token_view(row: dict, now: datetime) -> dict[str, Any]:
    """A token row as the API and the CLI show it (never the hash)."""
    def stamp(value: datetime | None) -> str | None:
        return value.replace(tzinfo=timezone.utc).isoformat(timespec="seconds") if value else None

    if row["revoked"] is not None:
        status = "revoked"
    elif row["expires"] is not None and row["expires"] <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "id": row["id"],
        "admin": row["admin"],
        "name": row["name"],
        "read_only": row["read_only"],
        "domains": row["domains"],
        "created": stamp(row["created"]),
        "expires": stamp(row["expires"]),
        "last_used": stamp(row["last_used"]),
        "revoked": stamp(row["revoked"]),
        "status": status,
    }


class TokenStore:
    def __init__(self, db: IredadminDB, secret_key: str):
        self.db = db
        self._secret = secret_key.encode()

    def hash(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def create(self, *, admin: str, name: str = "", read_only: bool = False, domains: list[str] | None = None,
               expires: datetime | None = None) -> tuple[int, str]:
        """Store a new token for `admin`; returns (id, the token), the only time it is seen."""
        if expires is not None and _naive_utc(expires) <= self.db.now():
            raise InvalidInput("expires: must lie in the future", param="expires")
        token = PREFIX + secrets.token_urlsafe(32)
        token_id = self.db.create_token(token_hash=self.hash(token), admin=admin, name=name, read_only=read_only,
                                        domains=sorted(set(domains)) if domains else None, expires=expires)
        return token_id, token

    def resolve(self, token: str) -> ApiToken:
        """The token's grant, or LoginRequired saying why not."""
        if not token or len(token) > 256:
            raise LoginRequired("invalid API token")
        row = self.db.find_token(token_hash=self.hash(token))
        if row is None:
            raise LoginRequired("invalid API token")
        if row["revoked"] is not None:
            raise LoginRequired("this API token has been revoked")
        if row["expires"] is not None and row["expires"] <= self.db.now():
            raise LoginRequired("this API token has expired")
        last = row["last_used"]
        if last is None or (self.db.now() - last).total_seconds() >= TOUCH_INTERVAL:
            self.db.touch_token(row["id"], every=TOUCH_INTERVAL)
        return ApiToken(id=row["id"], admin=row["admin"], name=row["name"], read_only=row["read_only"],
                        domains=frozenset(row["domains"]) if row["domains"] is not None else None,
                        expires=row["expires"])

    def list(self, *, admin: str | None = None) -> list[dict]:
        now = self.db.now()
        return [token_view(row, now) for row in self.db.list_tokens(admin=admin)]

    def get(self, token_id: int) -> dict | None:
        row = self.db.find_token(token_id=token_id)
        return token_view(row, self.db.now()) if row is not None else None

    def revoke(self, token_id: int) -> bool:
        return self.db.revoke_token(token_id)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def parse_time(raw: str, *, param: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time (naive = UTC) as a naive UTC datetime.

    A bare date means its first second, or with `end_of_day` the first second
    of the next day (so `to=2024-05-01` includes the whole of May 1st).
    """
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{param}: {raw!r} is not an ISO 8601 date or date-time "
                           f"(e.g. 2024-05-01 or 2024-05-01T12:00:00Z)", param=param) from None
    try:
        if end_of_day and len(text) == 10:
            value += timedelta(days=1)
        return _naive_utc(value)
    except OverflowError:
        raise InvalidInput(f"{param}: {raw!r} is out of range", param=param) from None


# -- domain-limited tokens ---------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What a domain-limited token may reach: `domains`, of which an admin
    that is not global manages only those in its own list."""

    domains: frozenset[str]
    admin_is_global: bool

    def allows(self, domain: str) -> bool:
        return domain.lower() in self.domains


_current_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("iredldap_token_scope",
                                                                             default=None)


def set_scope(scope: Scope | None) -> None:
    """Set by the authentication middleware at the start of every request."""
    _current_scope.set(scope)


def current_scope() -> Scope | None:
    return _current_scope.get()


# URL fields that name a domain or an address, and how to get the domain.
_URL_DOMAIN_FIELDS = ("domain", "mail", "new_mail", "account")


def _domain_of(field: str, raw: str) -> str | None:
    """The domain a URL field names; None for `global`."""
    raw = raw.strip().lower()
    if field == "account" and raw == "global":
        return None
    try:
        if "@" in raw:
            return validators.email(raw, param=field).rpartition("@")[2]
        return validators.domain_name(raw, param=field)
    except InvalidInput:
        if "@" in raw:
            return raw.rpartition("@")[2]
        return raw


def narrow(token: ApiToken, principal: Principal, method: str, url_params: dict[str, str]) -> Principal:
    """Apply the token's limits to a request; returns the principal the rest
    of the request sees, and sets the request's `Scope`.

    Raises NotAuthorized for a write with a read-only token and for a URL
    outside a domain-limited token's domains.
    """
    set_scope(None)
    if token.read_only and method.upper() not in READ_METHODS:
        raise NotAuthorized("this API token is read-only")
    if token.domains is None:
        return principal
    scope = Scope(domains=token.domains, admin_is_global=principal.is_global)
    set_scope(scope)
    for field in _URL_DOMAIN_FIELDS:
        if field not in url_params:
            continue
        domain = _domain_of(field, str(url_params[field]))
        if domain is None:
            raise NotAuthorized("this API token is limited to some domains; global settings need an "
                                "unrestricted token")
        if not scope.allows(domain):
            raise NotAuthorized(f"this API token is not valid for domain {domain}")
    # A normal admin of the listed domains, as far as everything else is concerned.
    return dataclasses.replace(principal, is_global=False)


class ScopedDomains:
    """The domain store as the access check and the responders see it.

    Without a domain-limited token (the usual case) it is the store itself.
    Under one, the admin "manages" only the token's domains (see `Scope`):
    `managed_by` and `list(admin=...)` answer accordingly.  Everything else
    is passed through.
    """

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def managed_by(self, admin: str) -> list[str]:
        scope = current_scope()
        if scope is None:
            return self._store.managed_by(admin)
        if scope.admin_is_global:
            return sorted(scope.domains)
        return [d for d in self._store.managed_by(admin) if scope.allows(d)]

    def list(self, *, admin: str | None = None, **kwargs):
        return self._scoped("list", admin, kwargs)

    def scan(self, *, admin: str | None = None, **kwargs):
        return self._scoped("scan", admin, kwargs)

    def _scoped(self, method: str, admin: str | None, kwargs: dict):
        scope = current_scope()
        read = getattr(self._store, method)
        if scope is None or admin is None:
            return read(admin=admin, **kwargs)
        entries = read(admin=None if scope.admin_is_global else admin, **kwargs)
        found = (e for e in entries if scope.allows(_rdn_value(e.dn)))
        return list(found) if method == "list" else found


def _rdn_value(dn: str) -> str:
    """`example.com` of `domainName=example.com,o=domains,...`."""
    return dn.split(",", 1)[0].partition("=")[2].strip().lower()
