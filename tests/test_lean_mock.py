"""The fast test directory's own search path answers as ldap3's does.

`iredldap.directory.decoding.search` runs a search on a MOCK_SYNC connection
through the mock's `lean_search`, which skips the request ldap3 builds and
takes apart again.  Here every search is sent both ways over one mock world
and must come back the same: the entries with their values, the result, the
exception where there is one.  (That the mock selects what slapd selects is
tests/test_mock_filters.py.)
"""

from __future__ import annotations

import ldap3
import pytest
from ldap3.core import exceptions as lx

from iredldap.directory.decoding import search

from .conftest import mock_directory
from .test_mock_filters import ENTRIES, FILTERS, _fill

SUFFIX = "dc=example,dc=com"
BASE = f"o=filters,{SUFFIX}"

ATTRIBUTE_LISTS = [("*",), ("mail",), ("MAIL", "cn", "shadowAddress"), ("1.1",), (), ("*", "+"), ("+",),
                   ("mail;binary",), ("entryCSN",)]
BASES = [(BASE, ldap3.SUBTREE), (BASE, ldap3.LEVEL), (BASE, ldap3.BASE), (f"mail=ann@a.test,{BASE}", ldap3.BASE),
         (f"MAIL=Ann@A.Test , {BASE}", ldap3.BASE), (f"o=nowhere,{SUFFIX}", ldap3.SUBTREE), (SUFFIX, 2), (BASE, 1)]
ODD_FILTERS = ["(mail=*)", "(mail=ann\\40a.test)", "(cn=\\2a)", "(mail=bj\xf6rn@a.test)", "(nosuchattr=1)",
               "mail=ann@a.test", "(&(mail=a)", "(mailQuota>=1)", "(mail:caseExactMatch:=ann@a.test)",
               "(|(cn=Ann)(!(cn=*)))", "(objectClass=MAILUSER)"]


@pytest.fixture(scope="module")
def conn():
    connection = mock_directory()._connection()
    _fill(connection, SUFFIX, BASE)
    return connection


def _outcome(conn, send):
    try:
        send()
    except lx.LDAPException as exc:
        return ("raised", type(exc).__name__, getattr(exc, "result", None))
    entries = sorted((r["dn"], sorted((k, sorted(v)) for k, v in r["raw_attributes"].items()))
                     for r in conn.response if r["type"] == "searchResEntry")
    result = {k: conn.result.get(k) for k in ("result", "description", "type")}
    return ("answered", entries, result)


def _both(conn, base, filterstr, scope, attrs, size_limit=0):
    ours = _outcome(conn, lambda: search(conn, base, filterstr, scope=scope, attrs=attrs, size_limit=size_limit))
    ldap3s = _outcome(conn, lambda: conn.search(base, filterstr, search_scope=scope, attributes=list(attrs),
                                                size_limit=size_limit))
    return ours, ldap3s


def test_the_lean_path_is_taken(conn, monkeypatch):
    """Not a comparison of ldap3 with itself: a lean search sends nothing
    through ldap3's Connection.search."""
    monkeypatch.setattr(conn, "search", lambda *a, **k: pytest.fail("ldap3's search was used"))
    search(conn, BASE, "(mail=*)", scope=ldap3.SUBTREE, attrs=("mail",))
    assert len(conn.response) == len(ENTRIES)


@pytest.mark.parametrize("filterstr", FILTERS + ODD_FILTERS)
def test_every_filter_answers_as_ldap3_answers(conn, filterstr):
    for attrs in (("*",), ("mail", "enabledService")):
        ours, ldap3s = _both(conn, BASE, filterstr, ldap3.SUBTREE, attrs)
        assert ours == ldap3s


@pytest.mark.parametrize("attrs", ATTRIBUTE_LISTS + [("nosuchattr",), ("mail", "nosuchattr")],
                         ids=lambda a: ",".join(a) or "none")
def test_every_attribute_list_answers_as_ldap3_answers(conn, attrs):
    ours, ldap3s = _both(conn, BASE, "(objectClass=*)", ldap3.SUBTREE, attrs)
    assert ours == ldap3s


@pytest.mark.parametrize("base,scope", BASES)
def test_every_base_and_scope_answers_as_ldap3_answers(conn, base, scope):
    ours, ldap3s = _both(conn, base, "(objectClass=*)", scope, ("mail",))
    assert ours == ldap3s


@pytest.mark.parametrize("size_limit", [1, 2, len(ENTRIES) + 1, 0])
def test_a_size_limit_answers_as_ldap3_answers(conn, size_limit):
    ours, ldap3s = _both(conn, BASE, "(mail=*)", ldap3.SUBTREE, ("mail",), size_limit)
    assert ours == ldap3s


def test_a_missing_base_raises_no_such_object(conn):
    with pytest.raises(lx.LDAPNoSuchObjectResult):
        search(conn, f"o=nowhere,{SUFFIX}", "(objectClass=*)", scope=ldap3.SUBTREE, attrs=("mail",))


def test_values_are_the_stored_bytes_not_a_view_of_them(conn):
    search(conn, f"mail=ann@a.test,{BASE}", "(objectClass=*)", scope=ldap3.BASE, attrs=("enabledService",))
    conn.response[0]["raw_attributes"]["enabledService"].append(b"changed")
    search(conn, f"mail=ann@a.test,{BASE}", "(objectClass=*)", scope=ldap3.BASE, attrs=("enabledService",))
    assert conn.response[0]["raw_attributes"]["enabledService"] == [b"mail", b"imap", b"smtp"]


def test_a_closed_connection_is_left_to_ldap3(conn):
    closed = mock_directory()._connection()
    closed.unbind()
    ours = _outcome(closed, lambda: search(closed, SUFFIX, "(objectClass=*)", scope=ldap3.SUBTREE, attrs=("mail",)))
    ldap3s = _outcome(closed, lambda: closed.search(SUFFIX, "(objectClass=*)", attributes=["mail"]))
    assert ours == ldap3s


def _pages(conn, send, size):
    """Every page of a paged search sent by `send(cookie)`: the entries of
    each page (in the order given), the total the control announces, and
    how the walk ended."""
    pages, cookie = [], None
    for _ in range(len(ENTRIES) + 2):
        try:
            send(cookie)
        except lx.LDAPException as exc:
            return pages, ("raised", type(exc).__name__)
        control = conn.result.get("controls", {}).get("1.2.840.113556.1.4.319", {}).get("value", {})
        pages.append(([(r["dn"], sorted((k, sorted(v)) for k, v in r["raw_attributes"].items()))
                       for r in conn.response if r["type"] == "searchResEntry"], control.get("size")))
        cookie = control.get("cookie")
        if not cookie:
            return pages, ("done", conn.result["result"])
    return pages, ("endless",)


@pytest.mark.parametrize("size", [1, 2, 3, len(ENTRIES), len(ENTRIES) + 1])
@pytest.mark.parametrize("filterstr", ["(mail=*)", "(objectClass=*)", "(cn=nobody)"])
def test_a_paged_search_answers_page_by_page_as_ldap3_answers(conn, size, filterstr):
    def ours(cookie):
        search(conn, BASE, filterstr, scope=ldap3.SUBTREE, attrs=("mail", "cn"), paged_size=size, paged_cookie=cookie)

    def ldap3s(cookie):
        conn.search(BASE, filterstr, search_scope=ldap3.SUBTREE, attributes=["mail", "cn"], paged_size=size,
                    paged_cookie=cookie)

    lean, plain = _pages(conn, ours, size), _pages(conn, ldap3s, size)
    assert lean == plain
    assert lean[1] == ("done", 0) and sum(len(entries) for entries, _ in lean[0]) > 0 or filterstr == "(cn=nobody)"


def test_a_paged_search_is_lean_and_an_unknown_cookie_is_refused_as_ldap3_refuses_it(conn, monkeypatch):
    plain = _outcome(conn, lambda: conn.search(BASE, "(mail=*)", attributes=["mail"], paged_size=2,
                                               paged_cookie=b"nope"))
    monkeypatch.setattr(conn, "search", lambda *a, **k: pytest.fail("ldap3's search was used"))
    lean = _outcome(conn, lambda: search(conn, BASE, "(mail=*)", scope=ldap3.SUBTREE, attrs=("mail",), paged_size=2,
                                         paged_cookie=b"nope"))
    assert lean == plain and lean[0] == "raised", lean
    search(conn, BASE, "(mail=*)", scope=ldap3.SUBTREE, attrs=("mail",), paged_size=2)
    assert len(conn.response) == 2


def test_a_paged_search_of_a_missing_base_raises_as_ldap3_raises(conn):
    ours = _outcome(conn, lambda: search(conn, f"o=nowhere,{SUFFIX}", "(mail=*)", scope=ldap3.SUBTREE,
                                         attrs=("mail",), paged_size=2))
    ldap3s = _outcome(conn, lambda: conn.search(f"o=nowhere,{SUFFIX}", "(mail=*)", attributes=["mail"], paged_size=2))
    assert ours == ldap3s and ours[0] == "raised"


# Filters whose answer does not depend on how NOT is read (no NOT, or NOT over
# a single-valued leaf), answered by the lean evaluation (set lookups for
# equality, an AND's object classes last, an OR skipping what it found) and by
# ldap3's own MockSyncStrategy with ldap3's own parse_filter (the test above
# compares two searches that both use the lean evaluation and the kept trees).
PLAIN_FILTERS = [f for f in FILTERS if "!" not in f] + [
    "(mailQuota=1048576)", "(mailQuota=01048576)", "(CN=ann)", "(cn=\\41nn)", "(uid=ANN)", "(objectClass=MailUser)",
    "(&(mailQuota=1048576)(objectClass=mailuser))", "(&(objectClass=*)(mail=*))", "(mail~=ann@a.test)",
    "(&(cn=Ann)(cn=Ann))", "(|(cn=Ann)(cn=Ann)(cn=List))", "(&(|(cn=Ann)(cn=Bob Builder))(objectClass=inetOrgPerson))",
    "(!(cn=Ann))", "(&(objectClass=mailList)(!(cn=List)))", "(|(!(mail=*))(cn=Ann))", "(accountStatus=ACTIVE)",
    "(mailQuota>=2)", "(cn=Ann )", "(cn;lang-de=x)",
]


@pytest.mark.parametrize("filterstr", PLAIN_FILTERS)
def test_the_lean_evaluation_selects_what_ldap3s_own_selects(conn, filterstr, monkeypatch):
    import ldap3.strategy.mockBase as mock_base
    from ldap3.strategy.mockSync import MockSyncStrategy

    from iredldap.directory import mock

    def selected():
        try:
            conn.search(BASE, filterstr, search_scope=ldap3.SUBTREE, attributes=["mail"])
        except lx.LDAPException as exc:
            return ("raised", type(exc).__name__)
        return sorted(r["dn"] for r in conn.response if r["type"] == "searchResEntry")

    ours = selected()
    lean_class = type(conn.strategy)
    with monkeypatch.context() as patched:
        patched.setattr(conn.strategy, "__class__", MockSyncStrategy)
        patched.setattr(mock_base, "parse_filter", mock._ldap3_parse_filter)
        ldap3s = selected()
    assert type(conn.strategy) is lean_class
    assert ours == ldap3s


def test_entries_after_a_lean_search_are_not_an_earlier_searchs(conn):
    """ldap3 drops the Entry objects it made of an earlier search's answer
    when it searches again; `conn.entries` must not show the last answer's."""
    conn.search(BASE, "(mail=ann@a.test)", attributes=["mail"])
    assert [e.entry_dn for e in conn.entries] == [f"mail=ann@a.test,{BASE}"]
    search(conn, BASE, "(mail=bob@a.test)", scope=ldap3.SUBTREE, attrs=("mail",))
    assert [e.entry_dn for e in conn.entries] == [r["dn"] for r in conn.response] == [f"mail=bob@a.test,{BASE}"]


@pytest.mark.parametrize("after_a_failure", [True, False])
@pytest.mark.parametrize("filterstr,size_limit,base", [("(mail=*)", 0, BASE), ("(mail=*)", 1, BASE),
                                                      ("(cn=nobody)", 0, BASE), ("(mail=*)", 0, f"o=nowhere,{SUFFIX}")])
def test_last_error_after_a_search_is_as_ldap3_leaves_it(filterstr, size_limit, base, after_a_failure):
    """ldap3's search leaves `last_error` as it was, and sets it to the
    result's description where the search answers a failure it does not
    raise (a size limit exceeded) and nothing was set."""
    def world():
        connection = mock_directory()._connection()
        _fill(connection, SUFFIX, BASE)
        if after_a_failure:
            with pytest.raises(lx.LDAPObjectClassError):
                connection.add(f"mail=x@a.test,{BASE}", ["noSuchClass"], {"sn": ["x"]})
            assert connection.last_error
        return connection

    lean_world, ldap3_world = world(), world()
    ours = _outcome(lean_world, lambda: search(lean_world, base, filterstr, scope=ldap3.SUBTREE, attrs=("mail",),
                                               size_limit=size_limit))
    ldap3s = _outcome(ldap3_world, lambda: ldap3_world.search(base, filterstr, search_scope=ldap3.SUBTREE,
                                                              attributes=["mail"], size_limit=size_limit))
    assert ours == ldap3s
    assert lean_world.last_error == ldap3_world.last_error


def test_a_kept_filter_holds_no_matches_of_the_search_that_used_it(conn):
    """Parsed filters are kept per thread for the next search; what one
    search matched (a set of DNs on each node, for 20,000 entries as many)
    must not stay on them."""
    from iredldap.directory import mock

    for filterstr in ("(&(objectClass=mailUser)(|(mail=ann@a.test)(cn=*B*)))", "(!(mail=*))", "(cn=Ann)"):
        search(conn, BASE, filterstr, scope=ldap3.SUBTREE, attrs=("mail",))
    kept = [tree for _, tree in mock._parsed_filters.trees.values()]
    assert len(kept) >= 3
    nodes = list(kept)
    while nodes:
        node = nodes.pop()
        assert not hasattr(node, "matched") and not hasattr(node, "unmatched"), node.tag
        nodes.extend(node.elements)
