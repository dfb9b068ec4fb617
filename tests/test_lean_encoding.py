"""The lean encoding of search requests (iredldap/directory/encoding.py): the
bytes are those ldap3 itself would send for the same search, filters the
encoder does not read are left to ldap3, and on both backends searches
through `Directory` find what they found before (on slapd the lean path
is the one taken; MOCK_SYNC keeps ldap3's own)."""

from __future__ import annotations

import hypothesis
import hypothesis.strategies
import ldap3
import pytest
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.conv import escape_filter_chars
from pyasn1.codec.ber import encoder

from iredldap.directory import decoding
from iredldap.directory.connection import BASE, LEVEL, SUBTREE
from iredldap.directory.decoding import LeanSyncStrategy
from iredldap.directory.encoding import NotLean, encode_filter, paged_control, search_message
from iredldap.model.accounts import escape_filter_value

from .support import Factory

BASE_DN = "mail=ann@a.test,ou=Users,domainName=a.test,o=domains,dc=example,dc=com"


def ldap3_message(message_id, base, filterstr, scope, attrs, size_limit=0, controls=None) -> bytes:
    """What ldap3's Connection.search sends (no schema, auto_escape on)."""
    request = search_operation(base, filterstr, scope, ldap3.DEREF_ALWAYS, attrs, size_limit, 0, False,
                               True, True, None, validator=None, check_names=True)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    built = build_controls_list(controls)
    if built is not None:
        message["controls"] = built
    return encoder.encode(message)


FILTERS = [
    "(objectClass=*)",
    "(mail=ann@a.test)",
    "(&(objectClass=mailUser)(mail=ann@a.test))",
    "(|(&(|(objectClass=mailUser)(objectClass=mailAdmin))(mail=root@admins.test))"
    "(&(objectClass=mailDomain)(domainAdmin=root@admins.test))(mail=u@a.test)"
    "(&(objectClass=mailAlias)(mailForwardingAddress=u@a.test))(&(objectClass=mailDomain)(domainName=a.test)))",
    "(!(accountStatus=disabled))",
    "(&(objectClass=mailUser)(!(|(enabledService=domainadmin)(domainGlobalAdmin=yes))))",
    "(mail=*@a.test)",
    "(cn=J*rg*n M*ller*)",
    "(cn=*ann)",
    "(cn=a**b)",
    "(mailQuota>=1024)",
    "(mailQuota<=99999999999)",
    "(cn~=jurgen)",
    "(cn=Jürgen Müller)",
    "(cn=Jürgen*Müller)",
    "( & (mail=a@b.test) (cn=x) )",
    "(mail= spaced@a.test )",
    "(mail=* )",
    "( mail = x )",
    "(mail=)",
    "(mail=" + escape_filter_chars("a(b)c*d\\e\x00f") + ")",
    "(description=\\2a\\28\\29\\5c\\00\\c3\\bc)",
    "(|(mail=x)(!(mail=y))(&(mail=z)(cn=*)))",
]


@pytest.mark.parametrize("filterstr", FILTERS)
def test_a_search_is_encoded_as_ldap3_encodes_it(filterstr):
    for scope, attrs, size_limit, message_id in ((BASE, ["*"], 0, 1), (SUBTREE, ["mail", "cn"], 5, 300),
                                                  (LEVEL, ["1.1"], 1000, 70000), (1, ["mail"], 0, 2)):
        ours = search_message(message_id, BASE_DN, filterstr, scope=scope, attrs=attrs, size_limit=size_limit)
        assert ours == ldap3_message(message_id, BASE_DN, filterstr, scope, attrs, size_limit), filterstr


@pytest.mark.parametrize("cookie", [None, b"", b"\x01\x02cookie" * 30])
def test_the_paged_results_control_is_encoded_as_ldap3_encodes_it(cookie):
    for size in (1, 500, 1000, 100000):
        ours = search_message(7, BASE_DN, "(objectClass=*)", scope=SUBTREE, attrs=["*"],
                              controls=[paged_control(size, cookie)])
        theirs = ldap3_message(7, BASE_DN, "(objectClass=*)", SUBTREE, ["*"],
                               controls=[paged_search_control(False, size, cookie)])
        assert ours == theirs


def test_a_long_request_has_long_form_lengths_as_ldap3_writes_them():
    filterstr = "(|" + "".join(f"(mail=user{i}@a.test)" for i in range(400)) + ")"
    ours = search_message(9, BASE_DN, filterstr, scope=SUBTREE, attrs=["*"])
    assert len(ours) > 0x100
    assert ours == ldap3_message(9, BASE_DN, filterstr, SUBTREE, ["*"])


@pytest.mark.parametrize("filterstr", [
    "(cn:caseExactMatch:=Ann)",         # extensible matches: ldap3's
    "(cn:dn:=Ann)",
    "(mail=a\\zb)",                     # a backslash that escapes nothing: ldap3 escapes it again
    "(mail=ab\\4)",
    "(mail=\\2a\x00b)",               # NUL beside an escape: ldap3 escapes it again
    "(cn>=\\c3\\bc*)",                 # '*' beside an escape in an ordering or approximate
    "(cn<=a*\\2a)",                     # value: ldap3 escapes it again (the escape goes out
    "(cn~=\\00*b)",                     # as its text)
    "(cn=**)",                          # a substring filter without a substring: ldap3 refuses it
    "(!(mail= ** ))",
    "mail=a@b.test",                    # malformed: ldap3 says what is wrong
    "(mail=a@b.test",
    "(&)",
    "(!(a=1)(b=2))",
    "(mail=a)(mail=b)",
    "(mail)",
])
def test_what_the_encoder_does_not_read_is_left_to_ldap3(filterstr):
    with pytest.raises(NotLean):
        encode_filter(filterstr)


@pytest.fixture
def world(directory, settings):
    factory = Factory(directory, settings)
    factory.domain("enc.test")
    for i in range(6):
        factory.user(f"u{i}@enc.test", cn=[f"Jürgen Müller {i}"], mailForwardingAddress=[f"fw{i}@other.test"])
    factory.user("odd(name)*@enc.test")
    return factory


def test_searches_find_what_they_should_on_both_backends(world, directory, monkeypatch):
    lean_calls = []
    original = LeanSyncStrategy.lean_search
    monkeypatch.setattr(LeanSyncStrategy, "lean_search",
                        lambda self, *a: (lean_calls.append(a[1]), original(self, *a))[1])
    users = world.tree.container("enc.test", "Users")
    found = directory.search(users, "(&(objectClass=mailUser)(cn=Jürgen*Müller 3))", scope=LEVEL)
    assert [e.first("mail") for e in found] == ["u3@enc.test"]
    found = directory.search(users, "(mail=%s)" % escape_filter_chars("odd(name)*@enc.test"), scope=LEVEL)
    assert [e.first("mail") for e in found] == ["odd(name)*@enc.test"]
    found = directory.search(users, "(&(objectClass=mailUser)(!(mailForwardingAddress=fw2@other.test))"
                                    "(|(mail=u1@enc.test)(mail=u2@enc.test)(mail=u5@enc.test)))", scope=LEVEL)
    assert sorted(e.first("mail") for e in found) == ["u1@enc.test", "u5@enc.test"]
    # Asked-for attributes the entry lacks come back empty, as ldap3 gives them.
    entry = directory.get(world.tree.user("u0@enc.test"), attrs=("mail", "telephoneNumber"))
    assert entry.attrs.get("mail") == ["u0@enc.test"] and entry.get("telephoneNumber") == []
    assert directory.get(world.tree.user("nobody@enc.test")) is None
    paged = list(directory.paged_search(users, "(objectClass=mailUser)", scope=LEVEL, page_size=2))
    assert sorted(e.first("mail") for e in paged) == sorted([f"u{i}@enc.test" for i in range(6)]
                                                            + ["odd(name)*@enc.test"])
    if directory._strategy == ldap3.MOCK_SYNC:
        assert lean_calls == []
    else:
        # Every search above went the lean way (the paged one page by page).
        assert len(lean_calls) == 5 + 4
        assert type(directory._connection().strategy) is LeanSyncStrategy


def test_a_filter_the_encoder_leaves_is_searched_by_ldap3(slapd_directory, settings, monkeypatch):
    # (ldap3's MOCK_SYNC, which takes every search itself, knows no extensible matches.)
    directory = slapd_directory
    factory = Factory(directory, settings)
    factory.domain("enc.test")
    factory.user("u4@enc.test")
    sent = []
    original = ldap3.Connection.search
    monkeypatch.setattr(ldap3.Connection, "search",
                        lambda self, *a, **k: (sent.append(a[1]), original(self, *a, **k))[1])
    users = factory.tree.container("enc.test", "Users")
    found = directory.search(users, "(mail:caseIgnoreIA5Match:=U4@ENC.TEST)", scope=LEVEL)
    assert [e.first("mail") for e in found] == ["u4@enc.test"]
    assert sent == ["(mail:caseIgnoreIA5Match:=U4@ENC.TEST)"]
    sent.clear()
    assert [e.first("mail") for e in directory.search(users, "(mail=u4@enc.test)", scope=LEVEL)] == ["u4@enc.test"]
    assert sent == []


def test_a_search_on_a_closed_lean_connection_fails_as_ldap3s_would(slapd_directory):
    conn = slapd_directory._connection()
    assert type(conn.strategy) is LeanSyncStrategy
    conn.strategy.close()
    with pytest.raises(ldap3.core.exceptions.LDAPSocketOpenError):
        decoding.search(conn, "dc=example,dc=com", "(objectClass=*)", scope=BASE, attrs=["*"])


# Pieces of filter items, odd ones among them: escapes (good and bad), NUL,
# '*', parentheses, blanks, non-ASCII, attribute options and extensible forms.
_NAMES = ["mail", "cn", " mail ", "mail;lang-de", "1.2.3", "mail:", "cn:dn:", "", "ma il"]
_OPS = ["=", "=", ">=", "<=", "~=", ":=", "=*"]
_BITS = ["a", "Z", "*", "(", ")", "\\", "\\2a", "\\5c", "\\00", "\\c3\\bc", "\x00", " ", "\t", "=", "~", ">",
         ":", "ü", "ß", "İ", "\u212a", "&", "|", "!", "\\zz", "\\4", "0", "\n"]


def _random_filter(rnd, depth=0) -> str:
    if depth < 3 and rnd.random() < 0.3:
        kind = rnd.choice("&|!")
        blank = rnd.choice(["", " "])
        parts = [_random_filter(rnd, depth + 1) for _ in range(1 if kind == "!" else rnd.randint(0, 3))]
        return "(" + blank + kind + "".join(blank + p for p in parts) + blank + ")"
    value = "".join(rnd.choice(_BITS) for _ in range(rnd.randint(0, 6)))
    if rnd.random() < 0.3:
        value = escape_filter_chars(value)
    return "(" + rnd.choice(_NAMES) + rnd.choice(_OPS) + value + ")"


def test_every_filter_the_encoder_takes_is_encoded_as_ldap3_encodes_it():
    import random
    rnd = random.Random(4515)
    taken = 0
    for _ in range(3000):
        filterstr = _random_filter(rnd)
        try:
            ours = search_message(5, BASE_DN, filterstr, scope=SUBTREE, attrs=["mail"])
        except NotLean:
            continue
        taken += 1
        assert ours == ldap3_message(5, BASE_DN, filterstr, SUBTREE, ["mail"]), filterstr
    assert taken > 1000     # (most are taken: the comparison covers the encoder)


# -- filter values, escaped as ldap3 escapes them ---------------------------------------

@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(hypothesis.strategies.text())
def test_filter_values_are_escaped_as_ldap3_escapes_them(value):
    assert escape_filter_value(value) == escape_filter_chars(value)
    for special in ("\\", "*", "(", ")", "\x00", "\\2a", "a*b(c)d\\e\x00f", "ü*", "😀)"):
        assert escape_filter_value(value + special) == escape_filter_chars(value + special)
    assert escape_filter_value(value.encode()) == escape_filter_chars(value.encode())
