"""White- and blacklists in Amavisd's `users`, `mailaddr`, `wblist` and
`outbound_wblist` tables, as iRedAPD's amavisd_wblist plugin reads them."""

from __future__ import annotations

import pytest

from iredldap.model.policy_addresses import GLOBAL, domain_account, user_account

from .policy_consumers import amavisd_wblist
from .support import ApiClient, POLICY_DOMAIN, POLICY_OTHER_USER, POLICY_STRANGER, POLICY_USER, all_policy_dbs, \
    query_rows
from .support import accounts, app, backend  # noqa: F401  (this module's fixtures)

ALL_DBS = all_policy_dbs()
DOMAIN, USER, OTHER_USER, STRANGER = POLICY_DOMAIN, POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER


def entries(db, direction="inbound"):
    """(local account, remote address, wb) of every entry of a direction."""
    if direction == "inbound":
        sql = ("SELECT u.email AS account, m.email AS address, w.wb FROM wblist w "
               "JOIN users u ON w.rid = u.id JOIN mailaddr m ON w.sid = m.id")
    else:
        sql = ("SELECT u.email AS account, m.email AS address, w.wb FROM outbound_wblist w "
               "JOIN users u ON w.sid = u.id JOIN mailaddr m ON w.rid = m.id")
    return sorted((r["account"], r["address"], r["wb"]) for r in query_rows(db.engine, sql))


def table_rows(db, table):
    return query_rows(db.engine, f"SELECT * FROM {table}")


def decide(db, direction, local, remote, ip=""):
    return amavisd_wblist(db.engine, direction, local, remote, ip)


# -- the store, on SQLite, MariaDB and PostgreSQL ---------------------------------

@ALL_DBS
def test_inbound_levels_and_priorities(amavisd_db):
    db = amavisd_db
    db.add_addresses(GLOBAL, "inbound", "blacklist", ["@spam.test", "192.0.2.0/24"])
    db.add_addresses(domain_account(DOMAIN), "inbound", "whitelist", ["@spam.test"])
    db.add_addresses(user_account(USER), "inbound", "blacklist", ["friend@spam.test"])

    assert sorted((r["email"], r["priority"], r["policy_id"]) for r in table_rows(db, "users")) == [
        ("@.", 0, 0), ("@example.com", 5, 0), (USER, 10, 0)]
    assert sorted((r["email"], r["priority"]) for r in table_rows(db, "mailaddr")) == [
        ("192.0.2.0/24", 7), ("@spam.test", 5), ("friend@spam.test", 10)]
    assert entries(db) == [("@.", "192.0.2.0/24", "B"), ("@.", "@spam.test", "B"),
                           ("@example.com", "@spam.test", "W"), (USER, "friend@spam.test", "B")]
    assert table_rows(db, "outbound_wblist") == []

    # Most specific recipient first; for it, most specific sender first.
    assert decide(db, "inbound", USER, "friend@spam.test") == "B"
    assert decide(db, "inbound", USER, "other@spam.test") == "W"
    assert decide(db, "inbound", OTHER_USER, "friend@spam.test") == "W"
    assert decide(db, "inbound", STRANGER, "friend@spam.test") == "B"
    assert decide(db, "inbound", STRANGER, "x@ham.test") is None

    db.remove_addresses(user_account(USER), "inbound", "blacklist", ["friend@spam.test"])
    assert decide(db, "inbound", USER, "friend@spam.test") == "W"          # the domain's entry again
    db.remove_addresses(domain_account(DOMAIN), "inbound", "whitelist", None)
    assert decide(db, "inbound", USER, "friend@spam.test") == "B"          # the global one


@ALL_DBS
def test_outbound_uses_its_own_table_the_other_way_round(amavisd_db):
    db = amavisd_db
    db.add_addresses(user_account(USER), "outbound", "blacklist", ["@competitor.test"])
    db.add_addresses(GLOBAL, "outbound", "whitelist", ["@competitor.test"])
    (row,) = [r for r in table_rows(db, "outbound_wblist") if r["wb"] == "B"]
    user_id = query_rows(db.engine, "SELECT id FROM users WHERE email = :e", e=USER.encode())[0]["id"]
    address_id = query_rows(db.engine, "SELECT id FROM mailaddr WHERE email = :e", e=b"@competitor.test")[0]["id"]
    assert (row["sid"], row["rid"]) == (user_id, address_id)
    assert table_rows(db, "wblist") == []
    assert decide(db, "outbound", USER, "boss@competitor.test") == "B"
    assert decide(db, "outbound", OTHER_USER, "boss@competitor.test") == "W"
    assert db.list_addresses(user_account(USER), "outbound", "blacklist") == ["@competitor.test"]
    assert db.list_addresses(user_account(USER), "inbound", "blacklist") == []


@ALL_DBS
def test_an_address_is_on_one_list_only(amavisd_db):
    user = user_account(USER)
    amavisd_db.add_addresses(user, "inbound", "whitelist", ["@a.test", "@b.test"])
    amavisd_db.add_addresses(user, "inbound", "blacklist", ["@b.test"])
    amavisd_db.add_addresses(user, "inbound", "blacklist", ["@b.test"])       # again: no duplicate
    assert entries(amavisd_db) == [(USER, "@a.test", "W"), (USER, "@b.test", "B")]
    # Removing from the whitelist does not touch the blacklist.
    amavisd_db.remove_addresses(user, "inbound", "whitelist", ["@b.test"])
    assert entries(amavisd_db) == [(USER, "@a.test", "W"), (USER, "@b.test", "B")]
    assert len(table_rows(amavisd_db, "mailaddr")) == 2


# -- the API ------------------------------------------------------------------------

@pytest.mark.parametrize("account, key", [("global", "@."), (DOMAIN, "@example.com"), (USER, USER)])
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
@pytest.mark.parametrize("listname, wb", [("whitelist", "W"), ("blacklist", "B")])
def test_post_get_put_delete(api, accounts, amavisd_db, account, key, direction, listname, wb):
    path = f"/api/wblist/{direction}/{listname}/{account}"
    assert api.get(path).json["_data"] == []
    addresses = "192.168.2.10, 192.168.2.0/24,2620:0:2d0:200::7/128,User1@Domain.ltd,@domain.ltd,@.domain.ltd,@."
    r = api.post(path, {"addresses": addresses})
    assert r.status_code == 200, r.text
    listed = sorted(["192.168.2.10", "192.168.2.0/24", "2620:0:2d0:200::7/128", "user1@domain.ltd", "@domain.ltd",
                     "@.domain.ltd", "@."])
    assert api.get(path).json["_data"] == listed
    assert entries(amavisd_db, direction) == [(key, a, wb) for a in listed]
    assert api.put(path, {"addresses": "@domain.ltd,192.168.2.10"}).status_code == 200
    assert api.get(path).json["_data"] == [a for a in listed if a not in ("@domain.ltd", "192.168.2.10")]
    assert api.delete(path).status_code == 200
    assert api.get(path).json["_data"] == [] and entries(amavisd_db, direction) == []


def test_levels_as_iredapd_sees_them(api, accounts, amavisd_db):
    assert api.post("/api/wblist/inbound/blacklist/global", {"addresses": "@spam.test"}).status_code == 200
    assert api.post(f"/api/wblist/inbound/whitelist/{DOMAIN}", {"addresses": "@spam.test"}).status_code == 200
    assert api.post(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "@spam.test"}).status_code == 200
    assert [decide(amavisd_db, "inbound", m, "x@spam.test") for m in (USER, OTHER_USER, STRANGER)] == ["B", "W", "B"]
    assert api.delete(f"/api/wblist/inbound/blacklist/{USER}").status_code == 200
    assert decide(amavisd_db, "inbound", USER, "x@spam.test") == "W"
    # The client address counts too.
    assert api.post(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "203.0.113.9"}).status_code == 200
    assert decide(amavisd_db, "inbound", USER, "x@ham.test", "203.0.113.9") == "B"


@pytest.mark.parametrize("path, params, param", [
    ("/api/wblist/inbound/whitelist/global", {"addresses": "192.168.2.0/33"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "192.168.2.0/24/8"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "fe80::/200"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "a'b@x.test, no-at-sign"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "x@y.test;DROP TABLE users"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "x@y.test\" OR \"1\"=\"1"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "%@y.test"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "x\\@y.test"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "no-at-sign"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {"addresses": "@"}, "addresses"),
    ("/api/wblist/inbound/whitelist/global", {}, "addresses"),
    ("/api/wblist/inbound/greylist/global", {"addresses": "@ok.test"}, "list"),
    ("/api/wblist/both/whitelist/global", {"addresses": "@ok.test"}, "direction"),
    ("/api/wblist/inbound/whitelist/@example.com", {"addresses": "@ok.test"}, "account"),
    ("/api/wblist/inbound/whitelist/1.2.3.4", {"addresses": "@ok.test"}, "account"),
])
def test_bad_input_writes_nothing(api, accounts, amavisd_db, path, params, param):
    r = api.post(path, params)
    assert r.status_code == 400, r.text
    assert r.json["param"] == param
    for table in ("users", "mailaddr", "wblist", "outbound_wblist"):
        assert table_rows(amavisd_db, table) == [], table


def test_unknown_accounts_are_404(api, accounts, amavisd_db):
    for account in ("nowhere.test", "nobody@example.com"):
        r = api.post(f"/api/wblist/inbound/whitelist/{account}", {"addresses": "@ok.test"})
        assert r.status_code == 404, r.text
    assert table_rows(amavisd_db, "users") == []


@pytest.fixture
def normal(app, settings, factory, accounts):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=[DOMAIN])
    client = ApiClient(app, settings)
    client.login("boss@admins.test", "B0ss#secret")
    return client


def test_normal_admin_only_for_its_domains(normal, api, amavisd_db):
    for method, path in (("POST", "/api/wblist/inbound/blacklist/global"),
                         ("GET", "/api/wblist/outbound/whitelist/global"),
                         ("POST", "/api/wblist/inbound/blacklist/other.test"),
                         ("PUT", f"/api/wblist/inbound/blacklist/{STRANGER}"),
                         ("DELETE", f"/api/wblist/inbound/blacklist/{STRANGER}"),
                         ("POST", "/api/wblist/inbound/blacklist/nowhere.test")):
        r = normal.request(method, path, {"addresses": "@spam.test"} if method in ("POST", "PUT") else None)
        assert r.status_code == 403, (method, path, r.text)
    assert table_rows(amavisd_db, "users") == []
    assert normal.post(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "@spam.test"}).status_code == 200
    assert api.put(f"/api/domain/{DOMAIN}", {"disableUserProfile": "wblist"}).status_code == 200
    assert normal.delete(f"/api/wblist/inbound/blacklist/{USER}").status_code == 403
    assert normal.post(f"/api/wblist/inbound/blacklist/{DOMAIN}", {"addresses": "@more.test"}).status_code == 200
    assert entries(amavisd_db) == [("@example.com", "@more.test", "B"), (USER, "@spam.test", "B")]


@ALL_DBS
def test_api_smoke_on_each_database(api, accounts, amavisd_db):
    assert api.post(f"/api/wblist/outbound/whitelist/{USER}", {"addresses": "@partner.test,192.0.2.0/24"}
                    ).status_code == 200
    assert api.get(f"/api/wblist/outbound/whitelist/{USER}").json["_data"] == ["192.0.2.0/24", "@partner.test"]
    assert decide(amavisd_db, "outbound", USER, "ceo@partner.test") == "W"
    assert api.put(f"/api/wblist/outbound/whitelist/{USER}", {"addresses": "@partner.test"}).status_code == 200
    assert decide(amavisd_db, "outbound", USER, "ceo@partner.test") is None


def test_invalid_addresses_among_valid_ones_are_discarded_and_named(api, accounts, amavisd_db):
    """iRedAdmin-Pro's document: invalid addresses are discarded (we say which)."""
    r = api.post(f"/api/wblist/inbound/blacklist/{USER}",
                 {"addresses": "@spam.test, a'b@x.test, 192.168.2.0/33, 203.0.113.9"})
    assert r.status_code == 200, r.text
    assert r.json == {"_success": True, "_discarded": ["a'b@x.test", "192.168.2.0/33"]}
    listed = api.get(f"/api/wblist/inbound/blacklist/{USER}").json["_data"]
    assert listed == ["203.0.113.9", "@spam.test"]
    assert decide(amavisd_db, "inbound", USER, "x@spam.test") == "B"
    # All valid: no _discarded.
    r = api.post(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "@more.test"})
    assert r.json == {"_success": True}
    # Removing (PUT) is lenient the same way.
    r = api.put(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "@spam.test,not valid"})
    assert r.status_code == 200 and r.json["_discarded"] == ["not valid"]
    assert api.get(f"/api/wblist/inbound/blacklist/{USER}").json["_data"] == ["203.0.113.9", "@more.test"]
    # Nothing valid: 400 and nothing changes.
    r = api.put(f"/api/wblist/inbound/blacklist/{USER}", {"addresses": "@, not valid"})
    assert r.status_code == 400 and r.json["param"] == "addresses"
    assert api.get(f"/api/wblist/inbound/blacklist/{USER}").json["_data"] == ["203.0.113.9", "@more.test"]
