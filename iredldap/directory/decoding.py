"""A lean decoding of search results on top of ldap3's SYNC strategy.

For every entry a search returns, ldap3 builds two copies of its values:
`raw_attributes` (the bytes as sent) and `attributes` (each value decoded
to text, both in case-insensitive dictionaries).  `Directory` reads only
`raw_attributes` and converts what it needs itself, so the second copy is
work for nothing -- most of an LDIF export's time.  `LeanSyncStrategy`
decodes a search result entry straight from the BER decoder's output into
one plain dictionary {attribute name: [bytes]}; and it sends searches
encoded by iredldap.directory.encoding, without ldap3's filter tree and
pyasn1 objects.  Everything else (binds, writes, results, controls, paging,
errors, the socket) stays ldap3's.

`lean_reads(connection)` gives a SYNC connection this strategy; other
strategies (MOCK_SYNC: iredldap.directory.mock) are left alone.  `search()`
runs a search on either kind of connection, leaving the entries in
`connection.response` and the result in `connection.result` as ldap3's
`Connection.search` does.
"""

from __future__ import annotations

import socket
from typing import Sequence

import ldap3
from ldap3.core.exceptions import LDAPSocketOpenError, LDAPSocketSendError, communication_exception_factory
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.conv import to_unicode
from ldap3.utils.dn import safe_dn

from iredldap.directory.encoding import NotLean, paged_control, search_message

__all__ = ["LeanSyncStrategy", "lean_reads", "search"]

_DEREF_ALWAYS = 3    # ldap3's default for a search

_SEARCH_RESULT_ENTRY = 4


class _NotDecoded(dict):
    """Stands in for ldap3's decoded `attributes`, which nothing here reads.

    ldap3 itself only adds empty lists to it (empty_attributes) or removes
    range-tagged names (auto_range, Active Directory only); both are accepted.
    """

    def __delitem__(self, key) -> None:
        self.pop(key, None)


class LeanSyncStrategy(SyncStrategy):
    def decode_response_fast(self, ldap_message):
        if ldap_message["protocolOp"] != _SEARCH_RESULT_ENTRY:
            return super().decode_response_fast(ldap_message)
        payload = ldap_message["payload"]
        raw_dn = payload[0][3]
        raw: dict[str, list[bytes]] = {}
        for attribute in payload[1][3]:
            description, values = attribute[3][0][3], attribute[3][1][3]
            raw[description.decode("utf-8", "replace")] = [bytes(v[3]) for v in values] if values else []
        result = {"type": "searchResEntry", "raw_dn": raw_dn, "dn": to_unicode(raw_dn, from_server=True),
                  "raw_attributes": raw, "attributes": _NotDecoded()}
        if ldap_message["controls"]:
            result["controls"] = dict(self.decode_control_fast(c[3]) for c in ldap_message["controls"])
        return result

    def lean_search(self, base: str, filterstr: str, scope: str | int, attrs: Sequence[str], size_limit: int,
                    paged_size: int | None, paged_cookie: bytes | None) -> None:
        """As `Connection.search` with these arguments (NotLean: this one
        cannot encode the filter; nothing was sent)."""
        conn = self.connection
        base = safe_dn(base) if base else base
        attrs = list(attrs) or ["1.1"]
        controls = [paged_control(paged_size, paged_cookie)] if paged_size is not None else []
        with conn.connection_lock:
            if not conn.listening:
                conn.last_error = "unable to send message, socket is not open"
                raise LDAPSocketOpenError(conn.last_error)
            message_id = conn.server.next_message_id()
            message = search_message(message_id, base, filterstr, scope=scope, attrs=attrs,
                                     size_limit=size_limit, deref=_DEREF_ALWAYS, controls=controls)
            # What ldap3 keeps of a request it sent (read back by get_response:
            # the attributes asked for, for the empty ones it adds).
            conn.request = {"type": "searchRequest", "base": base, "scope": scope, "dereferenceAlias": _DEREF_ALWAYS,
                            "sizeLimit": size_limit, "timeLimit": 0, "typesOnly": False, "filter": filterstr,
                            "attributes": attrs, "controls": controls}
            self._outstanding[message_id] = conn.request
            try:
                conn.socket.sendall(message)
            except (socket.error, AttributeError) as exc:
                self._outstanding.pop(message_id, None)
                conn.last_error = "socket sending error" + str(exc)
                raise communication_exception_factory(LDAPSocketSendError, type(exc)(str(exc)))(conn.last_error)
            self.post_send_search(message_id)


def search(conn: ldap3.Connection, base: str, filterstr: str, *, scope: str | int, attrs: Sequence[str],
           size_limit: int = 0, paged_size: int | None = None, paged_cookie: bytes | None = None) -> None:
    """A search on `conn`, encoded by us on a lean connection, by ldap3 otherwise
    (and where ours cannot encode the filter)."""
    strategy = conn.strategy
    if type(strategy) is LeanSyncStrategy:
        try:
            strategy.lean_search(base, filterstr, scope, attrs, size_limit, paged_size, paged_cookie)
            return
        except NotLean:
            pass
    conn.search(base, filterstr, search_scope=scope, attributes=list(attrs), size_limit=size_limit,
                paged_size=paged_size, paged_cookie=paged_cookie)


def lean_reads(connection: ldap3.Connection) -> ldap3.Connection:
    """Give a SYNC connection the lean decoding of search results."""
    if type(connection.strategy) is SyncStrategy:
        connection.strategy.__class__ = LeanSyncStrategy
    return connection
