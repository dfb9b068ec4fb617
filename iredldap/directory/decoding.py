"""A lean decoding of search results on top of ldap3's SYNC strategy.

For every entry a search returns, ldap3 builds two copies of its values:
`raw_attributes` (the bytes as sent) and `attributes` (each value decoded
to text, both in case-insensitive dictionaries).  `Directory` reads only
`raw_attributes` and converts what it needs itself, so the second copy is
work for nothing -- most of an LDIF export's time.  `LeanSyncStrategy`
decodes a search result entry straight from the BER decoder's output into
one plain dictionary {attribute name: [bytes]}; everything else (binds,
results, controls, paging, errors) stays ldap3's.

`lean_reads(connection)` gives a SYNC connection this strategy; other
strategies (MOCK_SYNC: iredldap.directory.mock) are left alone.
"""

from __future__ import annotations

import ldap3
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.conv import to_unicode

__all__ = ["LeanSyncStrategy", "lean_reads"]

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


def lean_reads(connection: ldap3.Connection) -> ldap3.Connection:
    """Give a SYNC connection the lean decoding of search results."""
    if type(connection.strategy) is SyncStrategy:
        connection.strategy.__class__ = LeanSyncStrategy
    return connection
