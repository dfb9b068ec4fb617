"""The lean decoding of search results (iredldap/directory/decoding.py): on a
real slapd the service's connections decode entries into one dictionary of
bytes, and every search reads exactly what ldap3's own decoding reads; on
MOCK_SYNC nothing changes (its strategy is the mock's)."""

from __future__ import annotations

import ldap3
import pytest

from iredldap.directory.connection import SUBTREE
from iredldap.directory.decoding import LeanSyncStrategy
from iredldap.directory.export import Exporter

from .support import Factory


@pytest.fixture
def world(directory, settings):
    factory = Factory(directory, settings)
    factory.domain("lean.test")
    for i in range(7):
        factory.user(f"u{i}@lean.test", cn=[f"Jürgen Müller {i}"], mailForwardingAddress=[f"fw{i}@other.test"])
    return factory


def _plain(directory):
    """A connection with ldap3's own decoding, to the same server as `directory`."""
    if directory._strategy == ldap3.MOCK_SYNC:
        return None
    conn = ldap3.Connection(ldap3.Server(directory.uri, get_info=ldap3.NONE), user=directory.bind_dn,
                            password=directory._password, auto_bind=True)
    assert type(conn.strategy) is not LeanSyncStrategy
    return conn


def test_the_service_reads_what_ldap3_reads(world, directory):
    base = world.tree.domain("lean.test")
    ours = {e.dn.lower(): e.attrs for e in directory.paged_search(base, "(objectClass=*)", scope=SUBTREE,
                                                                   page_size=3, raw=True)}
    texts = {e.dn.lower(): e.attrs for e in directory.search(base, "(objectClass=*)", scope=SUBTREE)}
    assert len(ours) == len(texts) == 1 + 4 + 7
    user = ours[world.tree.user("u3@lean.test").lower()]
    assert "Jürgen Müller 3".encode() in {k.lower(): v for k, v in user.items()}["cn"]
    assert "Jürgen Müller 3" in texts[world.tree.user("u3@lean.test").lower()]["cn"]
    plain = _plain(directory)
    if plain is None:
        assert type(directory._connection().strategy) is not LeanSyncStrategy   # MOCK_SYNC keeps its own
        return
    assert type(directory._connection().strategy) is LeanSyncStrategy
    plain.search(base, "(objectClass=*)", search_scope=ldap3.SUBTREE, attributes=["*"])
    theirs = {r["dn"].lower(): dict(r["raw_attributes"]) for r in plain.response if r["type"] == "searchResEntry"}
    plain.unbind()
    assert {dn: {k: list(v) for k, v in attrs.items()} for dn, attrs in ours.items()} == theirs
    # No decoded copy was made of the last page.
    assert all(not r["attributes"] for r in directory._connection().response if r["type"] == "searchResEntry")


def test_entries_after_a_lean_search_are_not_an_earlier_searchs(world, directory):
    """ldap3 makes `conn.entries` of the last answer; a lean search after an
    ldap3 one whose entries were read must not leave those standing."""
    from iredldap.directory.decoding import search

    conn = directory._connection()
    base = world.tree.container("lean.test", "Users")
    conn.search(base, "(mail=u1@lean.test)", search_scope=ldap3.LEVEL, attributes=["mail"])
    assert [e.entry_dn.lower() for e in conn.entries] == [world.tree.user("u1@lean.test").lower()]
    search(conn, base, "(mail=u2@lean.test)", scope=ldap3.LEVEL, attrs=("mail",))
    assert [e.entry_dn.lower() for e in conn.entries] == [world.tree.user("u2@lean.test").lower()]


def test_the_export_reads_pages_of_the_lean_entries(world, directory):
    exporter = Exporter(directory, world.tree, page_size=2)
    text = b"".join(exporter.stream(exporter.plan("domain", "lean.test"), passwords=False)).decode()
    assert text.count("\ndn: ") + text.startswith("dn: ") == 1 + 4 + 7
    assert "cn:: " in text          # the UTF-8 names, base64 as LDIF wants them
    assert text.count("mailForwardingAddress: fw") == 7
    assert "userPassword" not in text


# -- entries read straight from the bytes (decoding.entry_of) --------------------------

def _entry_message(message_id: int, dn: str, attrs: dict[str, list[bytes]], controls=None) -> bytes:
    """A search result entry as pyasn1 (ldap3's encoder) writes it."""
    from ldap3.protocol.convert import build_controls_list
    from ldap3.protocol.rfc4511 import (LDAPDN, AttributeDescription, AttributeValue, LDAPMessage, MessageID,
                                        PartialAttribute, PartialAttributeList, ProtocolOp, SearchResultEntry,
                                        Vals)
    from pyasn1.codec.ber import encoder
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    listed = PartialAttributeList()
    for i, (name, values) in enumerate(attrs.items()):
        attribute = PartialAttribute()
        attribute["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals[j] = AttributeValue(value)
        attribute["vals"] = vals
        listed[i] = attribute
    entry["attributes"] = listed
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchResEntry", entry)
    if controls:
        message["controls"] = build_controls_list(controls)
    return encoder.encode(message)


ODD = {"objectClass": [b"inetOrgPerson", b"mailUser"], "cn": ["Jürgen Müller".encode()],
       "jpegPhoto": [bytes(range(256)) * 300], "mailForwardingAddress": [f"f{i}@x.test".encode() for i in range(900)],
       "description": [b""], "Mail;lang-de": [b"a@b.test"]}


@pytest.mark.parametrize("message_id", [1, 127, 128, 255, 70000, 2 ** 31 - 1])
def test_an_entry_is_read_from_its_bytes_as_ldap3_reads_it(message_id):
    from ldap3.utils.asn1 import decode_message_fast
    from iredldap.directory.decoding import entry_of
    dn = "mail=jürgen@a.test,ou=Users,domainName=a.test,o=domains,dc=example,dc=com"
    message = _entry_message(message_id, dn, ODD)
    got_id, raw_dn, attrs = entry_of(message)
    assert (got_id, raw_dn.decode(), attrs) == (message_id, dn, ODD)
    theirs = decode_message_fast(message)
    assert theirs["messageID"] == got_id
    assert {a[3][0][3].decode(): [v[3] for v in a[3][1][3]] for a in theirs["payload"][1][3]} == attrs


def test_what_is_not_a_plain_entry_is_left_to_ldap3():
    from iredldap.directory.decoding import entry_of
    dn = "cn=x,dc=example,dc=com"
    plain = _entry_message(5, dn, {"cn": [b"x"]})
    assert entry_of(plain) is not None
    # An entry with controls, cut short, or with bytes after it; a search's result.
    assert entry_of(_entry_message(5, dn, {"cn": [b"x"]}, controls=[("1.2.3", False, b"v")])) is None
    assert entry_of(plain[:-1]) is None
    assert entry_of(plain[:6]) is None
    assert entry_of(plain + b"\x00") is None
    done = bytes.fromhex("300c02010565070a010004000400")
    assert entry_of(done) is None
    assert entry_of(b"") is None
