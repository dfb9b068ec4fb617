"""The harness that lays a saved world down again (conftest.SavedState) on a
real slapd, with the requests of fixtures_slapd encoded by us: the entries
come back exactly as saved, whatever happened meanwhile, and an entry slapd
refuses stops the restore instead of going missing."""

from __future__ import annotations

import ldap3
import pytest

from .conftest import SUFFIX, SavedState
from .fixtures_slapd import add_encoded, add_request, wipe_tree

pytestmark = pytest.mark.slapd

DOMAIN = f"domainName=uni.test,o=domains,{SUFFIX}"


def everything(conn: ldap3.Connection) -> dict[str, dict[str, list[bytes]]]:
    conn.search(SUFFIX, "(objectClass=*)", ldap3.SUBTREE, attributes=[ldap3.ALL_ATTRIBUTES])
    return {e["dn"].lower(): {k.lower(): sorted(v) for k, v in e["raw_attributes"].items()}
            for e in conn.response if e.get("type") == "searchResEntry"}


def test_a_restore_brings_back_every_entry_as_saved(slapd_directory, settings):
    conn = slapd_directory._connection()
    assert conn.add(DOMAIN, ["mailDomain"], {"domainName": "uni.test", "cn": "Ünï — 日本",
                                            "description": ["a", "b" * 3000, "c\nd"],
                                            "enabledService": ["mail", "smtp", "imap"]}), conn.result
    assert conn.add(f"ou=Ünï 日本,{DOMAIN}", ["organizationalUnit"], {"ou": "Ünï 日本"}), conn.result
    user = f"mail=ann@uni.test,{DOMAIN}"
    assert conn.add(user, ["inetOrgPerson", "mailUser"], {
        "mail": "ann@uni.test", "cn": "Ann", "sn": "A", "uid": "ann",
        "userPassword": b"{SSHA512}\x00\xff\xfe binary", "mailForwardingAddress": [f"f{i}@x.test" for i in range(300)]}
    ), conn.result
    saved = SavedState(slapd_directory, settings)
    try:
        before = everything(conn)
        assert before[user.lower()]["userpassword"] == [b"{SSHA512}\x00\xff\xfe binary"]
        # Meanwhile: an entry more, one gone, one changed.
        assert conn.add(f"mail=bob@uni.test,{DOMAIN}", ["inetOrgPerson", "mailUser"],
                        {"mail": "bob@uni.test", "cn": "Bob", "sn": "B", "uid": "bob"}), conn.result
        assert conn.delete(user), conn.result
        assert conn.modify(DOMAIN, {"cn": [(ldap3.MODIFY_REPLACE, ["changed"])]}), conn.result
        saved.restore(slapd_directory, settings, over=True)
        assert everything(conn) == before
        # Twice in a row: the same again.
        saved.restore(slapd_directory, settings, over=True)
        assert everything(conn) == before
    finally:
        saved.close()


def test_an_entry_the_server_refuses_stops_the_restore(slapd_directory):
    conn = slapd_directory._connection()
    wipe_tree(conn, SUFFIX)
    with pytest.raises(RuntimeError, match="cannot add"):   # its parent is missing
        add_encoded(conn, f"ou=x,{SUFFIX}", add_request(f"ou=x,{SUFFIX}", {"objectClass": [b"organizationalUnit"],
                                                                           "ou": [b"x"]}))
    assert wipe_tree(conn, SUFFIX) == 0
