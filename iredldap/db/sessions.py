"""Login sessions, kept in iRedAdmin's `sessions` table.

The cookie holds a random token; the table holds only a keyed hash of it, so
a copy of the database does not let anyone in.  Because the state is in the
database, a session works on every gunicorn worker and survives restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from iredldap.db.iredadmin import IredadminDB


@dataclass(frozen=True)
class Session:
    key: str
    admin: str
    dn: str
    ip: str
    # Read with it: some journaled write was unfinished (the request finishes
    # those naming its objects before it reads them, iredldap.web.journal).
    writes_open: bool = True


class SessionStore:
    def __init__(self, db: IredadminDB, secret_key: str, idle_timeout: int):
        self.db = db
        self._secret = secret_key.encode()
        self.idle_timeout = idle_timeout

    def _key(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def start(self, *, admin: str, dn: str, ip: str) -> str:
        """Create a session and return the token for the cookie."""
        # Nothing else ever deletes sessions that simply went idle; without
        # this their rows (admin, IP) would stay in the table for good.
        self.db.purge_sessions(self.idle_timeout)
        token = secrets.token_urlsafe(32)
        self.db.create_session(self._key(token), {
            "admin": admin, "dn": dn, "ip": ip,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return token

    def resolve(self, token: str) -> Session | None:
        if not token or len(token) > 128:
            return None
        key = self._key(token)
        loaded = self.db.load_session(key, self.idle_timeout)
        if loaded is None or "admin" not in loaded.data:
            return None
        data = loaded.data
        return Session(key=key, admin=data["admin"], dn=data.get("dn", ""), ip=data.get("ip", ""),
                       writes_open=loaded.writes_open)

    def end(self, session: Session) -> None:
        self.db.delete_session(session.key)

    def end_all_of(self, admin: str, *, keep: Session | None = None) -> int:
        """End every session of admin `admin` but `keep` (its password changed:
        whoever logged in with the old one is out).  Returns how many ended."""
        admin = admin.lower()
        return self.db.delete_sessions_where(
            lambda data: str(data.get("admin", "")).lower() == admin,
            containing=json.dumps(admin)[1:-1], keep=keep.key if keep else None)

    def end_all_in(self, domain: str, domain_dn: str, *, keep: Session | None = None,
                   skip: frozenset[str] = frozenset()) -> int:
        """End the sessions of every admin that is a mail user of `domain`
        (entry under `domain_dn`) but `keep` and the admins in `skip` (whose
        password did not change).  Returns how many ended."""
        suffix = "@" + domain.lower()
        base = _normal_dn(domain_dn)
        skip = frozenset(s.lower() for s in skip)

        def in_domain(data: dict) -> bool:
            admin = str(data.get("admin", "")).lower()
            dn = _normal_dn(str(data.get("dn", "")))
            return admin.endswith(suffix) and admin not in skip and dn.endswith("," + base)

        return self.db.delete_sessions_where(in_domain, containing=json.dumps(suffix)[1:-1],
                                             keep=keep.key if keep else None)


def _normal_dn(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))
