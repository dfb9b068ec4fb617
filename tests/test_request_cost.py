"""What one request costs the directory: the request context (who asks, what
it manages) and the entries a responder needs are read once.

Counted on the `Directory` the app was built with, from the moment the
request is sent until its answer: every search (a read of one entry is a
base search), paged search, add, modify and delete.  And on the app's SQL
engines (SQLAlchemy's `before_cursor_execute` and the pools' `checkout`):
every statement (SQLite's BEGIN too) and every connection taken from a pool.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from iredldap.db import tables as t
from iredldap.directory.journal import owner_id
from iredldap.model import passwords

from .support import BearerClient, assert_error, reads_of_users, rows

PW = "Secr3t#pass"
OPERATIONS = ("search", "paged_search", "add", "modify", "increment", "delete")


@contextmanager
def counted(directory, monkeypatch):
    """Count the LDAP operations sent through `directory` inside the block."""
    counts: Counter = Counter()
    with monkeypatch.context() as patch:
        for name in OPERATIONS:
            original = getattr(directory, name)

            def wrapper(*args, _name=name, _original=original, **kwargs):
                counts[_name] += 1
                return _original(*args, **kwargs)
            patch.setattr(directory, name, wrapper)
        yield counts


def cost(counts: Counter) -> dict[str, int]:
    return {name: counts[name] for name in OPERATIONS if counts[name]}


@pytest.fixture
def world(factory):
    factory.domain("a.test", defaultQuota=100)
    factory.user("john@a.test")
    return factory


@pytest.fixture
def normal_admin(world, client):
    # Limits on what it may hand out: the quota change is checked against them.
    world.normal_admin("helper@admins.test", "H3lper#secret", domains=["a.test"],
                       settings=["create_max_quota:10000", "create_max_users:10"])
    client.login("helper@admins.test", "H3lper#secret")
    return client


def test_global_admin_renaming_a_user_costs_one_search_and_one_modify(api, world, directory, monkeypatch):
    with counted(directory, monkeypatch) as counts:
        result = api.put("/api/user/john@a.test", {"name": "John Doe"})
    assert result.status_code == 200, result.text
    assert world.entry(world.tree.user("john@a.test")).get("cn") == ["John Doe"]
    assert cost(counts) == {"search": 1, "modify": 1}


def test_normal_admin_renaming_a_user_costs_one_search_and_one_modify(normal_admin, world, directory,
                                                                      monkeypatch):
    with counted(directory, monkeypatch) as counts:
        result = normal_admin.put("/api/user/john@a.test", {"name": "John Doe"})
    assert result.status_code == 200, result.text
    assert world.entry(world.tree.user("john@a.test")).get("cn") == ["John Doe"]
    # The domains it manages come with the search for the caller.
    assert cost(counts) == {"search": 1, "modify": 1}


def test_normal_admin_changing_quota_alias_and_password(normal_admin, world, directory, monkeypatch):
    # Once before: the first change under the admin's maxQuota adds up the
    # domain's quotas into its quota total (quota_total.py), once per domain.
    assert normal_admin.put("/api/user/john@a.test", {"quota": "150"}).status_code == 200
    with counted(directory, monkeypatch) as counts:
        result = normal_admin.put("/api/user/john@a.test", {"quota": "200", "addAlias": "johnny@a.test",
                                                            "password": PW})
    assert result.status_code == 200, result.text
    entry = world.entry(world.tree.user("john@a.test"))
    assert entry.get("mailQuota") == [str(200 * 1024 * 1024)]
    assert entry.get("shadowAddress") == ["johnny@a.test"]
    assert any(passwords.verify_password(PW, h) for h in entry.get("userPassword"))
    assert world.entry(world.tree.domain("a.test")).get("domainCurrentQuotaSize") == [str(200 * 1024 * 1024)]
    # The caller with the account and its domain; the quota handed out over
    # the admin's domains (their entries); the rights of the new alias (an
    # admin's address?); the alias free before the write and still its own
    # after it.  The raise reserved in the domain's quota total (a modify)
    # before the user's modify; with one domain the total the reservation
    # wrote holds the admin's maxQuota: no read after it.
    assert cost(counts) == {"search": 5, "modify": 2}


# -- LDAP operations and SQL statements of create, GET and PUT of a user -------------

@contextmanager
def sql_counted():
    """Count the SQL statements (by their first word) and the pool checkouts inside the block."""
    counts: Counter = Counter()

    def statement(conn, cursor, text, parameters, context, executemany):
        counts[text.split(None, 1)[0].upper()] += 1

    def checkout(dbapi_conn, record, proxy):
        counts["connections"] += 1

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Pool, "checkout", checkout)
    try:
        yield counts
    finally:
        event.remove(Engine, "before_cursor_execute", statement)
        event.remove(Pool, "checkout", checkout)


def _create(client, mail):
    return client.post(f"/api/user/{mail}", {"password": PW, "quota": "50"})


CALLS = {
    "create": (_create, 201),
    "get": (lambda client, mail: client.get(f"/api/user/{mail}"), 200),
    "put": (lambda client, mail: client.put(f"/api/user/{mail}", {"name": "Some Name"}), 200),
}

# What each request costs: LDAP operations; SQL connections and statements.
#
# Every request: the caller's session with whether any journaled write is
# unfinished (one SELECT, a read of one statement with no BEGIN of its own:
# Database.read_one; the journal's rows are read only when some are open,
# test_journal_rows_are_read_only_when_some_are_open); a write adds its audit row
# (INSERT).  LDAP: one search for the caller, the domains a normal admin
# manages, the account at the URL and its domain.
#
# create: one search for the address and the new mailbox path (this
# second's), the add, the counter (an increment, its new value read back
# with it), the address held after it (a search); the journal of the
# create: its row opened running with the add and the counter step, each
# done, the row closed (4 write transactions), and the kept-mailbox check
# (SELECT).  A normal admin's maxUsers and maxQuota add: its domains'
# counters and quota totals before the write (one search of the domain
# entries), the quota reserved in the domain's total (a compare-and-swap
# modify, journaled: one more step done); after the write, with one domain,
# the values the increment and the swap made decide: no read.
#
# GET: the user's aliases and the domains it administers come with the
# search for the caller; mailbox usage and last login (one SELECT of both,
# again one statement).
#
# PUT of a name: the modify.
COSTS = {
    ("global", "create"): ({"search": 3, "add": 1, "increment": 1},
                           {"connections": 1, "BEGIN": 6, "SELECT": 2, "INSERT": 3, "UPDATE": 3, "DELETE": 1}),
    ("global", "get"): ({"search": 1}, {"connections": 1, "SELECT": 2}),
    ("global", "put"): ({"search": 1, "modify": 1}, {"connections": 1, "BEGIN": 1, "SELECT": 1, "INSERT": 1}),
    ("normal", "create"): ({"search": 4, "add": 1, "modify": 1, "increment": 1},
                           {"connections": 1, "BEGIN": 7, "SELECT": 2, "INSERT": 3, "UPDATE": 4, "DELETE": 1}),
    ("normal", "get"): ({"search": 1}, {"connections": 1, "SELECT": 2}),
    ("normal", "put"): ({"search": 1, "modify": 1}, {"connections": 1, "BEGIN": 1, "SELECT": 1, "INSERT": 1}),
}


@pytest.mark.parametrize("role,call", sorted(COSTS))
def test_what_a_user_request_costs(role, call, world, client, global_admin, directory, monkeypatch):
    if role == "global":
        client.login(*global_admin)
    else:
        world.normal_admin("helper@admins.test", "H3lper#secret", domains=["a.test"],
                           settings=["create_max_quota:10000", "create_max_users:10"])
        client.login("helper@admins.test", "H3lper#secret")
    send, status = CALLS[call]
    # Once before counting: what a worker does once (a table's shape) is not per request.
    for name, (warm, expected) in CALLS.items():
        assert warm(client, "warm@a.test").status_code == expected
    mail = "new@a.test" if call == "create" else "john@a.test"
    with counted(directory, monkeypatch) as ldap, sql_counted() as sql:
        result = send(client, mail)
    assert result.status_code == status, result.text
    entry = world.entry(world.tree.user(mail))
    assert entry is not None
    if call == "put":
        assert entry.get("cn") == ["Some Name"]
    if call == "get":
        assert result.json["_data"]["mail"] == [mail]
    assert (cost(ldap), dict(sql)) == COSTS[role, call]


# -- limits from counters, not from the list of the domain's users ---------------------

@pytest.fixture
def crowded(factory, directory):
    """A domain of 30 users with numberOfUsers set (its counter kept by the factory)."""
    factory.domain("big.test", numberOfUsers=32)
    for i in range(30):
        factory.user(f"u{i}@big.test")
    return factory


def test_a_create_in_a_domain_with_a_user_limit_reads_no_users(crowded, api, directory, monkeypatch):
    domain = crowded.entry(crowded.tree.domain("big.test"))
    assert domain.first("domainCurrentUserNumber") == "30"
    for i, status in ((30, 201), (31, 201), (32, 403)):
        with reads_of_users(directory, monkeypatch, ["big.test"]) as seen:
            result = api.post(f"/api/user/u{i}@big.test", {"password": PW})
        assert result.status_code == status, result.text
        assert dict(seen) == {}, (i, dict(seen))
    assert crowded.entry(crowded.tree.user("u32@big.test")) is None
    assert crowded.entry(crowded.tree.domain("big.test")).first("domainCurrentUserNumber") == "32"


def test_a_normal_admins_limit_is_checked_from_the_counters_before_the_write(crowded, client, directory,
                                                                            monkeypatch):
    crowded.normal_admin("helper@admins.test", "H3lper#secret", domains=["big.test"],
                         settings=["create_max_users:30"])
    client.login("helper@admins.test", "H3lper#secret")
    with reads_of_users(directory, monkeypatch, ["big.test"]) as seen:
        result = client.post("/api/user/u30@big.test", {"password": PW})
    body = assert_error(result, 403, "EXCEEDED_LIMIT", "maxUsers")
    assert body["reason"].endswith("(30 exist)"), body
    assert dict(seen) == {}
    assert crowded.entry(crowded.tree.user("u30@big.test")) is None


# -- an alias or a list created by a normal admin with maxAliases / maxLists ---------------

@pytest.mark.parametrize("route", ["/api/alias/", "/api/maillist/"])
@pytest.mark.parametrize("managed", [1, 2])
def test_what_a_limited_admins_alias_or_list_create_costs(route, managed, factory, client, api, directory,
                                                          monkeypatch):
    domains = ["a.test", "b.test"]
    for domain in domains:
        factory.domain(domain)
        for i in range(20):
            assert api.post(f"{route}old{i}@{domain}").status_code == 201
    factory.normal_admin("helper@admins.test", "H3lper#secret", domains=domains[:managed],
                         settings=["create_max_aliases:100", "create_max_lists:100"])
    client.login("helper@admins.test", "H3lper#secret")
    assert client.post(f"{route}warm@a.test").status_code == 201
    with counted(directory, monkeypatch) as counts:
        assert client.post(f"{route}new@a.test").status_code == 201
    assert factory.entry(factory.tree.domain("a.test")).get(
        "domainCurrentAliasNumber" if "alias" in route else "domainCurrentListNumber") == ["22"]
    # The caller; the admin's counters before the write (its domain
    # entries); the address free; the domain entry; the add and the
    # counter's increment; the address held after it.  With one domain the
    # value the increment made holds the limit; with two, one search of the
    # domain entries after it -- whatever the domains hold, no paged search
    # of their aliases or lists (there were 1-4 before).
    assert cost(counts) == {"search": 4 + managed, "add": 1, "increment": 1}


# -- the journal's rows: read only when some are open ----------------------------------

def test_journal_rows_are_read_only_when_some_are_open(world, api, app, settings, iredadmin):
    """The caller's session or token is read with whether any journaled write
    is unfinished; only then are the journal's rows read (and those naming
    the URL's objects finished) -- for a cookie and for a token alike."""
    from iredldap.db.journal import JournalTable
    r = api.post("/api/tokens", {"name": "cost"})
    assert r.status_code == 201, r.text
    bearer = BearerClient(app, settings, r.json["_data"]["token"])
    journal = JournalTable(iredadmin.database)

    def selects(client) -> int:
        with sql_counted() as sql:
            assert client.get("/api/user/john@a.test").status_code == 200
        return sql["SELECT"]
    assert (selects(api), selects(bearer)) == (2, 2)    # session or token (+ flag), mailbox facts
    # A live request's row elsewhere: read, left alone.
    elsewhere = journal.open(kind="test", targets=["domain:other.test"], resume="back", owner=owner_id(),
                             steps=[], state="running")
    assert (selects(api), selects(bearer)) == (3, 3)
    # A dead request's row on the URL's user: the token's request finishes it, as a cookie's does.
    dead = journal.open(kind="test", targets=["mail:john@a.test", "domain:a.test"], resume="back",
                        owner="gone:1", steps=[], state="open")
    assert selects(bearer) >= 3
    states = {row["id"]: row["state"] for row in rows(iredadmin, t.write_journal)}
    assert (states[elsewhere], states[dead]) == ("running", "undone")
    journal.close(elsewhere, "done")
    assert (selects(api), selects(bearer)) == (2, 2)


# -- the caller's lookup: the same entries as with the object classes in the filter --------

def test_the_lookup_finds_what_the_filter_with_the_classes_finds(world, factory, directory):
    """`AdminStore.lookup` asks the server for addresses without the caller's
    object classes (slapd would read the index list of every user) and tells
    the classes apart itself: it finds exactly the entries the filter with
    the classes finds, on entries made to tell the difference -- an alias at
    a standalone admin's address, a user forwarding to the account (not an
    alias), domains naming admins."""
    from iredldap.directory.admins import AdminStore, _account_filter, _rights_filter
    from iredldap.model.accounts import ALIAS, DOMAIN
    from iredldap.model.templates import load
    tree = world.tree
    factory.user("mary@a.test")
    factory.user("fwd@a.test", mailForwardingAddress=["john@a.test"])
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["a.test"])
    factory.normal_admin("postmaster@a.test", "P0stm#pw", domains=["a.test"])
    factory.global_admin("root@admins.test", "R00t#secret")
    for mail, members in (("team@a.test", ["john@a.test", "mary@a.test"]), ("postmaster@a.test", ["mary@a.test"])):
        dn, attrs = load("alias").render(mail=mail, domain="a.test", domains_dn=tree.domains_dn, name="An alias")
        attrs["mailForwardingAddress"] = members
        directory.add(dn, attrs)
    admins = AdminStore(directory, tree)

    def with_classes(mail: str, account: str, domain: str) -> set[str]:
        terms = [_account_filter(mail), DOMAIN.filter("(domainAdmin=%s)", mail)]
        if account:
            terms += [_rights_filter(account), f"(mail={account})",
                      ALIAS.filter("(mailForwardingAddress=%s)", account)]
        if domain:
            terms.append(DOMAIN.filter("(domainName=%s)", domain))
        return {e.dn.lower() for e in directory.search(tree.suffix, "(|" + "".join(terms) + ")", attrs=("*",))}
    cases = [(caller, account, domain)
             for caller in ("root@admins.test", "helper@admins.test", "postmaster@a.test", "john@a.test")
             for account, domain in (("", ""), ("", "a.test"), ("john@a.test", "a.test"), ("mary@a.test", "a.test"),
                                     ("postmaster@a.test", "a.test"), ("team@a.test", "a.test"),
                                     ("helper@admins.test", "admins.test"), ("nobody@a.test", "a.test"))]
    looked = 0
    for caller, account, domain in cases:
        found = admins.lookup(caller, account=account, domain=domain)
        if found is None:       # (no active admin at the caller's address: john)
            assert caller == "john@a.test"
            continue
        looked += 1
        assert {e.dn.lower() for e in found.entries} == with_classes(caller, account, domain), (caller, account)
    assert looked == 3 * 8
    # The alias at the standalone admin's address is found for the account, not for the caller.
    alias_dn = tree.alias("postmaster@a.test").lower()
    assert alias_dn not in {e.dn.lower() for e in admins.lookup("postmaster@a.test").entries}
    assert alias_dn in {e.dn.lower() for e in admins.lookup("root@admins.test", account="postmaster@a.test").entries}
