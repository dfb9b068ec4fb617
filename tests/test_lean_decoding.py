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


def test_the_export_reads_pages_of_the_lean_entries(world, directory):
    exporter = Exporter(directory, world.tree, page_size=2)
    text = b"".join(exporter.stream(exporter.plan("domain", "lean.test"), passwords=False)).decode()
    assert text.count("\ndn: ") + text.startswith("dn: ") == 1 + 4 + 7
    assert "cn:: " in text          # the UTF-8 names, base64 as LDIF wants them
    assert text.count("mailForwardingAddress: fw") == 7
    assert "userPassword" not in text
