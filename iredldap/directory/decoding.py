"""A lean reading of search results on top of ldap3's SYNC strategy.

For every entry a search returns, ldap3 decodes the BER into nested tuples,
then builds two copies of its values: `raw_attributes` (the bytes as sent)
and `attributes` (each value decoded to text, both in case-insensitive
dictionaries).  `Directory` reads only `raw_attributes` and converts what it
needs itself, so the rest is work for nothing -- most of an LDIF export's
time.  `LeanSyncStrategy` reads a search result entry straight from its
bytes (`entry_of`) into one plain dictionary {attribute name: [bytes]}; and
it sends searches encoded by iredldap.directory.encoding, without ldap3's
filter tree and pyasn1 objects.  Everything else (binds, writes, results,
controls, entries with controls, paging, errors, the socket and its framing
of messages) stays ldap3's.

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
from ldap3.core.exceptions import (LDAPSocketOpenError, LDAPSocketReceiveError, LDAPSocketSendError,
                                   communication_exception_factory)
from ldap3.strategy.base import RESPONSE_COMPLETE, SESSION_TERMINATED_BY_SERVER
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.asn1 import decode_message_fast
from ldap3.utils.conv import to_unicode
from ldap3.utils.dn import safe_dn

from iredldap.directory.encoding import NotLean, paged_control, search_message

__all__ = ["LeanSyncStrategy", "lean_reads", "search"]

_DEREF_ALWAYS = 3    # ldap3's default for a search

_SEARCH_RESULT_ENTRY = 4
_MORE_TO_COME = frozenset({"searchResEntry", "searchResRef", "intermediateResponse"})
_DISCONNECTION = "1.3.6.1.4.1.1466.20036"    # RFC 4511 4.4.1, in an unsolicited notification


def _length(data: bytes, i: int) -> tuple[int, int]:
    """The BER definite length at data[i] and where its value starts."""
    n = data[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    return int.from_bytes(data[i + 1:i + 1 + k], "big"), i + 1 + k


def entry_of(message: bytes) -> tuple[int, bytes, dict[str, list[bytes]]] | None:
    """(message ID, DN, {attribute: [values]}) of an LDAPMessage that is a
    search result entry without controls, read straight from its bytes; None
    for any other message (and for anything not laid out as expected: those
    are left to ldap3's decoder, which says what is wrong)."""
    try:
        if message[0] != 0x30:
            return None
        _, i = _length(message, 1)
        if message[i] != 0x02:
            return None
        n, i = _length(message, i + 1)
        message_id = int.from_bytes(message[i:i + n], "big", signed=True)
        i += n
        if message[i] != 0x64:                       # [APPLICATION 4] SearchResultEntry
            return None
        n, i = _length(message, i + 1)
        if i + n != len(message) or message[i] != 0x04:   # controls follow, or not an entry
            return None
        n, i = _length(message, i + 1)
        dn = message[i:i + n]
        i += n
        if message[i] != 0x30:
            return None
        n, i = _length(message, i + 1)
        stop = i + n
        attrs: dict[str, list[bytes]] = {}
        while i < stop:
            if message[i] != 0x30:
                return None
            n, i = _length(message, i + 1)
            after = i + n
            if message[i] != 0x04:
                return None
            n, i = _length(message, i + 1)
            name = message[i:i + n].decode("utf-8", "replace")
            i += n
            if message[i] != 0x31:
                return None
            n, i = _length(message, i + 1)
            end = i + n
            values = []
            while i < end:
                if message[i] != 0x04:
                    return None
                n = message[i + 1]
                if n < 0x80:        # (most values: the short form, read inline)
                    i += 2
                else:
                    n, i = _length(message, i + 1)
                values.append(message[i:i + n])
                i += n
            if i != after:
                return None
            attrs[name] = values
        if i != stop or stop != len(message):
            return None
        return message_id, dn, attrs
    except IndexError:
        return None


class NotDecoded(dict):
    """Stands in for ldap3's decoded `attributes`, which nothing here reads.

    ldap3 itself only adds empty lists to it (empty_attributes) or removes
    range-tagged names (auto_range, Active Directory only); both are accepted.
    """

    def __delitem__(self, key) -> None:
        self.pop(key, None)


class LeanSyncStrategy(SyncStrategy):
    def _get_response(self, message_id, timeout):
        """The answers to `message_id`, each decoded (the entries by
        `entry_of`, the rest by ldap3), ending with ldap3's RESPONSE_COMPLETE;
        ldap3's SESSION_TERMINATED_BY_SERVER when the socket closes first."""
        answers = []
        while True:
            messages = self.receiving()
            if not messages:
                return SESSION_TERMINATED_BY_SERVER
            for message in messages:
                if not message:
                    continue
                entry = entry_of(message)
                if entry is not None:
                    got, raw_dn, attrs = entry
                    answer = {"type": "searchResEntry", "raw_dn": raw_dn, "dn": to_unicode(raw_dn, from_server=True),
                              "raw_attributes": attrs, "attributes": NotDecoded()}
                else:
                    decoded = decode_message_fast(message)
                    got = decoded["messageID"]    # (no INTEGER: a broken answer, refused below)
                    answer = self.decode_response_fast(decoded)
                if got == message_id:
                    answers.append(answer)
                    if answer["type"] not in _MORE_TO_COME:
                        answers.append(RESPONSE_COMPLETE)
                        return answers
                elif got == 0 and answer.get("responseName") == _DISCONNECTION:
                    return SESSION_TERMINATED_BY_SERVER
                else:
                    # Sync connections have one operation out at a time: an
                    # answer to another is the server's mistake (as ldap3 says).
                    self.connection.last_error = "invalid messageId received"
                    raise LDAPSocketReceiveError(self.connection.last_error)

    def decode_response_fast(self, ldap_message):
        if ldap_message["protocolOp"] != _SEARCH_RESULT_ENTRY:
            return super().decode_response_fast(ldap_message)
        payload = ldap_message["payload"]
        try:
            raw_dn = payload[0][3]
            raw: dict[str, list[bytes]] = {}
            for attribute in payload[1][3]:
                description, values = attribute[3][0][3], attribute[3][1][3]
                raw[description.decode("utf-8", "replace")] = [bytes(v[3]) for v in values] if values else []
        except (IndexError, TypeError, AttributeError):
            # Malformed (an entry without its attributes ...): ldap3's own
            # reading says what is wrong, from inside ldap3, where it counts
            # as the server's broken answer (connection.py), not as our crash.
            return super().decode_response_fast(ldap_message)
        result = {"type": "searchResEntry", "raw_dn": raw_dn, "dn": to_unicode(raw_dn, from_server=True),
                  "raw_attributes": raw, "attributes": NotDecoded()}
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
            conn._entries = []      # (as ldap3's search: `entries` are made again of this answer)


def search(conn: ldap3.Connection, base: str, filterstr: str, *, scope: str | int, attrs: Sequence[str],
           size_limit: int = 0, paged_size: int | None = None, paged_cookie: bytes | None = None) -> None:
    """A search on `conn`: by its strategy's `lean_search` where it has one
    (LeanSyncStrategy; the MOCK_SYNC of iredldap.directory.mock) and it takes
    the search, by ldap3's `Connection.search` otherwise."""
    lean_search = getattr(conn.strategy, "lean_search", None)
    if lean_search is not None:
        try:
            lean_search(base, filterstr, scope, attrs, size_limit, paged_size, paged_cookie)
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
