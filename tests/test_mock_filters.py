"""The fast test directory answers filters as slapd does.

ldap3's MOCK_SYNC runs most of the suite; `iredldap.directory.mock.lean`
gives it a leaner filter evaluation.  The same entries go into a mock and a
real slapd, and every filter here -- the shapes the stores send, and the
cases where ldap3's own mock differs from slapd (NOT over a multi-valued
substring match, NOT over an AND, a missing attribute under NOT) -- must
select the same entries from both.  (No ordering filters: the stores send none,
and iRedMail's numeric attributes have no ORDERING rule, so slapd matches
nothing where the mock compares numbers.)
"""

from __future__ import annotations

import ldap3
import pytest
from ldap3.strategy.mockSync import MockSyncStrategy

from iredldap.directory.mock import lean

from .conftest import mock_directory

pytestmark = pytest.mark.slapd

ENTRIES = {
    "mail=ann@a.test": {"objectClass": ["mailUser", "inetOrgPerson", "shadowAccount"], "cn": ["Ann"], "sn": ["A"],
                        "mail": ["ann@a.test"], "uid": ["ann"], "accountStatus": ["active"],
                        "enabledService": ["mail", "imap", "smtp"], "shadowAddress": ["ann@b.test"],
                        "mailQuota": ["1048576"], "homeDirectory": ["/var/vmail/vmail1/a.test/a/n/n/ann/"]},
    "mail=bob@a.test": {"objectClass": ["mailUser", "inetOrgPerson", "shadowAccount"], "cn": ["Bob Builder"],
                        "sn": ["B"], "mail": ["Bob@A.test"], "uid": ["bob"], "accountStatus": ["disabled"],
                        "enabledService": ["mail"], "homeDirectory": ["/var/vmail/vmail1/a.test/b/o/b/bob"]},
    "mail=list@a.test": {"objectClass": ["mailList"], "mail": ["list@a.test"], "accountStatus": ["active"],
                         "enabledService": ["mail", "deliver", "mlmmj"], "cn": ["List"]},
    "mail=old@a.test": {"objectClass": ["mailList"], "mail": ["old@a.test"], "accountStatus": ["active"],
                        "enabledService": ["mail", "deliver"]},
    "mail=al@a.test": {"objectClass": ["mailAlias"], "mail": ["al@a.test"], "accountStatus": ["active"],
                       "mailForwardingAddress": ["ann@a.test", "x@elsewhere.test"]},
}
FILTERS = [
    "(objectClass=*)",
    "(mail=bob@a.test)",                                  # case-insensitive equality
    "(|(mail=ann@b.test)(shadowAddress=ann@b.test))",
    "(&(|(objectClass=mailUser)(objectClass=mailList)(objectClass=mailAlias))(|(mail=al@a.test)(shadowAddress=al@a.test)))",
    "(&(objectClass=mailList)(enabledService=mlmmj))",
    "(&(objectClass=mailList)(!(enabledService=mlmmj)))",
    "(!(enabledService=ima*))",                           # NOT over a multi-valued substring match
    "(!(&(objectClass=mailUser)(accountStatus=active)))",  # NOT over an AND
    "(!(mailQuota=1048576))",                             # NOT where some entries lack the attribute
    "(!(shadowAddress=*))",
    "(cn=*build*)",
    "(&(objectClass=mailUser)(!(mail=@*)))",
    "(|(homeDirectory=/var/vmail/vmail1/a.test/b/o/b/bob)(homeDirectory=/var/vmail/vmail1/a.test/b/o/b/bob/))",
    "(mailForwardingAddress=X@ELSEWHERE.test)",
    "(&(objectClass=mailAlias)(|(mail=nobody@a.test)(accountStatus=disabled)))",
]


def _fill(conn: ldap3.Connection, suffix: str, base: str) -> None:
    assert conn.add(suffix, ["dcObject", "organization"], {"dc": "example", "o": "example"}), conn.result
    assert conn.add(base, ["organization"], {"o": "filters"}), conn.result
    for rdn, attrs in ENTRIES.items():
        assert conn.add(f"{rdn},{base}", attributes=attrs), conn.result


def _selected(conn: ldap3.Connection, base: str, filterstr: str) -> set[str]:
    conn.search(base, filterstr, search_scope=ldap3.SUBTREE, attributes=["mail"])
    return {e.entry_dn.lower() for e in conn.entries if e.entry_dn.lower() != base.lower()}


@pytest.fixture
def both(slapd_clean):
    base = f"o=filters,{slapd_clean.suffix}"
    real = ldap3.Connection(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password, auto_bind=True)
    mocked = mock_directory()._connection()
    for conn in (real, mocked):
        _fill(conn, slapd_clean.suffix, base)
    yield base, real, mocked
    real.unbind()


def test_the_mock_connection_is_the_lean_one(both):
    _base, _real, mocked = both
    assert type(mocked.strategy) is not MockSyncStrategy and isinstance(mocked.strategy, MockSyncStrategy)


@pytest.mark.parametrize("filterstr", FILTERS)
def test_the_mock_selects_what_slapd_selects(both, filterstr):
    base, real, mocked = both
    expected = _selected(real, base, filterstr)
    assert _selected(mocked, base, filterstr) == expected


def test_lean_leaves_other_strategies_alone():
    conn = ldap3.Connection(ldap3.Server("ldap://127.0.0.1:9"), client_strategy=ldap3.SYNC)
    assert lean(conn) is conn and type(conn.strategy).__name__ == "SyncStrategy"
