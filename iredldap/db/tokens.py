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
  listed domains).  Concretely (see iredldap.web.scope):
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

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from iredldap.db.iredadmin import IredadminDB
from iredldap.errors import InvalidInput, LoginRequired

#: Tokens start with this, so that secret scanners and people recognise them.
PREFIX = "irdl_"

#: `last_used` is written at most this often (seconds): not a write per request.
TOUCH_INTERVAL = 60


@dataclass(frozen=True)
class ApiToken:
    id: int
    admin: str
    name: str
    read_only: bool
    domains: frozenset[str] | None     # None: not limited
    expires: datetime | None
    writes_open: bool = True           # as Session.writes_open

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
                        expires=row["expires"], writes_open=row["writes_open"])

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
