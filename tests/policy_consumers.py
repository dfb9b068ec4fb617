"""The lookups Amavisd and iRedAPD run on their tables (see
iredmail-sql-model.md), in plain SQL, independent of our table definitions.

Tests use them to check that what the API wrote is what the mail server
will apply: most specific account first, NULL / -1 falling through.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from iredldap.model.policy_addresses import policy_keys_of


def _b(values) -> list[bytes]:
    return [v.encode() for v in values]


def _s(value) -> str:
    return bytes(value).decode() if isinstance(value, (bytes, memoryview)) else value


# -- Amavisd ---------------------------------------------------------------------

def amavisd_policy(engine: Engine, recipient: str) -> dict:
    """The effective policy fields for mail to `recipient`: Amavisd's
    sel_policy query (users LEFT JOIN policy, ORDER BY users.priority DESC)
    and, per field, the first non-NULL value.  Fields no row sets are absent
    (amavisd.conf applies)."""
    query = text("SELECT users.priority AS users_priority, policy.* FROM users "
                 "LEFT JOIN policy ON users.policy_id = policy.id "
                 "WHERE users.email IN :keys ORDER BY users.priority DESC"
                 ).bindparams(bindparam("keys", expanding=True))
    with engine.connect() as conn:
        found = conn.execute(query, {"keys": _b(policy_keys_of(recipient))}).mappings().all()
    result: dict = {}
    for row in found:
        for column, value in row.items():
            if column in ("users_priority", "id", "policy_name") or value is None:
                continue
            result.setdefault(column, value)
    return result


def amavisd_wblist(engine: Engine, direction: str, local: str, remote: str, client_ip: str = "") -> str | None:
    """What iRedAPD's amavisd_wblist plugin decides ('W', 'B' or None):
    inbound `local` is the recipient and `remote` the sender, outbound the
    other way round.  Local ids by users.priority, remote ids by
    mailaddr.priority, the first W or B found wins."""
    table, local_col, remote_col = (("wblist", "rid", "sid") if direction == "inbound"
                                    else ("outbound_wblist", "sid", "rid"))
    remote_keys = policy_keys_of(remote) + ([client_ip] if client_ip else [])
    with engine.connect() as conn:
        local_ids = conn.execute(text("SELECT id FROM users WHERE email IN :keys ORDER BY priority DESC")
                                 .bindparams(bindparam("keys", expanding=True)),
                                 {"keys": _b(policy_keys_of(local))}).scalars().all()
        remote_ids = conn.execute(text("SELECT id FROM mailaddr WHERE email IN :keys ORDER BY priority DESC")
                                  .bindparams(bindparam("keys", expanding=True)),
                                  {"keys": _b(remote_keys)}).scalars().all()
        for lid in local_ids:
            for rid in remote_ids:
                wb = conn.execute(text(f"SELECT wb FROM {table} WHERE {local_col} = :l AND {remote_col} = :r"),
                                  {"l": lid, "r": rid}).scalar()
                if wb in ("W", "B"):
                    return wb
    return None


# -- iRedAPD -----------------------------------------------------------------------

LIMITS = ("msg_size", "max_msgs", "max_quota", "max_rcpts")


def iredapd_throttle(engine: Engine, kind: str, address: str) -> dict:
    """The effective limits of the throttle plugin for `address` (sender for
    outbound, recipient for inbound): rows ORDER BY priority DESC, rows with
    period 0 skipped, per limit the first value >= 0.  Also "period" of the
    row that decided max_msgs (or of the first row)."""
    query = text("SELECT * FROM throttle WHERE kind = :kind AND account IN :keys ORDER BY priority DESC"
                 ).bindparams(bindparam("keys", expanding=True))
    with engine.connect() as conn:
        found = conn.execute(query, {"kind": kind, "keys": policy_keys_of(address)}).mappings().all()
    result: dict = {}
    for row in found:
        if not row["period"]:
            continue
        result.setdefault("period", int(row["period"]))
        result.setdefault("account", row["account"])
        for limit in LIMITS:
            if limit in row and row[limit] is not None and int(row[limit]) >= 0:
                result.setdefault(limit, int(row[limit]))
    return result


def iredapd_greylisted(engine: Engine, recipient: str, sender: str, client_ip: str) -> bool:
    """Whether the greylisting plugin greylists this triplet (SPF bypass and
    tracking aside): whitelists first, then the first settings row (by
    priority, sender_priority) whose sender matches; no row: no greylisting."""
    rcpt_keys = policy_keys_of(recipient)
    sender_keys = set(policy_keys_of(sender)) | {client_ip}
    ip = ipaddress.ip_address(client_ip)
    with engine.connect() as conn:
        listed = conn.execute(text("SELECT sender FROM greylisting_whitelists WHERE account IN :keys")
                              .bindparams(bindparam("keys", expanding=True)), {"keys": rcpt_keys}).scalars().all()
        for entry in listed:
            if entry in sender_keys:
                return False
            if "/" in entry and ip in ipaddress.ip_network(entry, strict=False):
                return False
        found = conn.execute(text("SELECT sender, active FROM greylisting WHERE account IN :keys "
                                  "ORDER BY priority DESC, sender_priority DESC")
                             .bindparams(bindparam("keys", expanding=True)), {"keys": rcpt_keys}).all()
    for row_sender, active in found:
        if row_sender in sender_keys:
            return bool(active)
    return False
