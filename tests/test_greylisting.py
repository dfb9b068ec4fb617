"""Greylisting in iRedAPD's `greylisting`, `greylisting_whitelists` and
`greylisting_whitelist_domains` tables."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from iredldap.model.policy_addresses import GLOBAL, domain_account, user_account

from .fixtures_policy import SQL_DIR, run_sql_file
from .policy_consumers import iredapd_greylisted
from .support import ApiClient, POLICY_DOMAIN, POLICY_OTHER_USER, POLICY_STRANGER, POLICY_USER, all_policy_dbs, \
    query_rows
from .support import accounts, app, backend  # noqa: F401  (this module's fixtures)

ALL_DBS = all_policy_dbs()
DOMAIN, USER, OTHER_USER, STRANGER = POLICY_DOMAIN, POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER
SENDER, IP = "someone@sender.test", "198.51.100.7"


def settings_rows(db):
    return query_rows(db.engine, "SELECT account, priority, sender, sender_priority, active FROM greylisting "
                           "ORDER BY priority DESC")


def whitelist_rows(db, table="greylisting_whitelists"):
    return sorted((r["account"], r["sender"]) for r in query_rows(db.engine, f"SELECT account, sender FROM {table}"))


def greylisted(db, recipient, sender=SENDER, ip=IP):
    return iredapd_greylisted(db.engine, recipient, sender, ip)


# -- the store, on SQLite, MariaDB and PostgreSQL ---------------------------------

@ALL_DBS
def test_user_beats_domain_beats_global(iredapd_db):
    db = iredapd_db
    assert not greylisted(db, USER)                      # no row: no greylisting
    db.set_greylisting(GLOBAL, True)
    db.set_greylisting(domain_account(DOMAIN), False)
    db.set_greylisting(user_account(USER), True)
    assert settings_rows(db) == [
        {"account": USER, "priority": 100, "sender": "@.", "sender_priority": 0, "active": 1},
        {"account": "@example.com", "priority": 60, "sender": "@.", "sender_priority": 0, "active": 0},
        {"account": "@.", "priority": 0, "sender": "@.", "sender_priority": 0, "active": 1},
    ]
    assert [greylisted(db, m) for m in (USER, OTHER_USER, STRANGER)] == [True, False, True]
    db.set_greylisting(user_account(USER), False)                 # changed in place
    assert len(settings_rows(db)) == 3 and not greylisted(db, USER)
    assert db.delete_greylisting(user_account(USER))
    assert not greylisted(db, USER)                               # the domain's setting again
    db.delete_greylisting(domain_account(DOMAIN))
    assert greylisted(db, USER)                                   # the global one
    assert db.get_greylisting(GLOBAL) is True and db.get_greylisting(user_account(USER)) is None


@ALL_DBS
def test_whitelists_change_and_apply(iredapd_db):
    db = iredapd_db
    db.set_greylisting(GLOBAL, True)
    domain = domain_account(DOMAIN)
    db.change_whitelist(domain, reset=["192.0.2.0/24", "@sender.test"])
    db.change_whitelist(domain, add=["203.0.113.5", "@sender.test"], remove=["@sender.test"])
    assert whitelist_rows(db) == [("@example.com", "192.0.2.0/24"), ("@example.com", "203.0.113.5")]
    assert not greylisted(db, USER, ip="192.0.2.99")                  # CIDR
    assert not greylisted(db, USER, ip="203.0.113.5")                 # IP
    assert greylisted(db, USER) and greylisted(db, STRANGER, ip="192.0.2.99")
    db.change_whitelist(user_account(USER), add=[SENDER])
    assert not greylisted(db, USER) and greylisted(db, OTHER_USER)
    db.change_whitelist(domain, reset=[])
    assert whitelist_rows(db) == [(USER, SENDER)]


@ALL_DBS
def test_spf_domains_and_what_the_cron_job_derived(iredapd_db):
    db = iredapd_db
    db.change_spf_domains(reset=["gmail.com", "example.net"])
    with db.engine.begin() as conn:
        for table in ("greylisting_whitelist_domain_spf", "greylisting_whitelists"):
            conn.execute(text(f"INSERT INTO {table} (account, sender, comment) VALUES "
                              f"('@.', '209.85.128.0/17', 'AUTO-UPDATE: gmail.com')"))
    db.change_spf_domains(add=["iredmail.org"], remove=["gmail.com"])
    assert db.spf_domains() == ["example.net", "iredmail.org"]
    assert whitelist_rows(db, "greylisting_whitelist_domain_spf") == []
    assert whitelist_rows(db) == []


@pytest.mark.parametrize("policy_sql", ["mariadb"], indirect=True)
def test_a_sender_longer_than_the_mysql_column_is_refused(iredapd_db):
    """iRedAPD's MySQL greylisting tables have VARCHAR(100) columns."""
    long_sender = "x" * 60 + "@" + "y" * 40 + ".test"
    with pytest.raises(Exception) as caught:
        iredapd_db.change_whitelist(GLOBAL, add=[long_sender])
    assert getattr(caught.value, "details", {}).get("param") == "addWhitelistSenders"
    assert whitelist_rows(iredapd_db) == []


# -- the API ------------------------------------------------------------------------

@pytest.mark.parametrize("account, key", [("global", "@."), (DOMAIN, "@example.com"), (USER, USER)])
def test_status_get_delete(api, accounts, iredapd_db, account, key):
    assert api.get(f"/api/greylisting/{account}").json["_data"] == {}
    r = api.post(f"/api/greylisting/{account}", {"status": "disable"})
    assert r.status_code == 200, r.text
    assert api.get(f"/api/greylisting/{account}").json["_data"] == {"account": key, "status": "disable"}
    assert [(r["account"], r["active"]) for r in settings_rows(iredapd_db)] == [(key, 0)]
    assert api.post(f"/api/greylisting/{account}", {"status": "enable"}).status_code == 200
    assert [(r["account"], r["active"]) for r in settings_rows(iredapd_db)] == [(key, 1)]
    assert api.delete(f"/api/greylisting/{account}").status_code == 200
    assert settings_rows(iredapd_db) == []


def test_all_lists_every_row_most_specific_first(api, accounts, iredapd_db):
    run_sql_file(iredapd_db.engine, SQL_DIR / "iredapd_defaults.sql")
    assert api.post(f"/api/greylisting/{USER}", {"status": "disable"}).status_code == 200
    assert api.post(f"/api/greylisting/{DOMAIN}", {"status": "disable"}).status_code == 200
    assert api.get("/api/greylisting/all").json["_data"] == [
        {"account": USER, "sender": "@.", "status": "disable", "priority": 100, "sender_priority": 0,
         "comment": ""},
        {"account": "@example.com", "sender": "@.", "status": "disable", "priority": 60, "sender_priority": 0,
         "comment": ""},
        {"account": "@.", "sender": "@.", "status": "enable", "priority": 0, "sender_priority": 0, "comment": ""},
    ]
    assert [greylisted(iredapd_db, m) for m in (USER, OTHER_USER, STRANGER)] == [False, False, True]


@pytest.mark.parametrize("names", [("whitelistSenders", "addWhitelistSenders", "removeWhitelistSenders"),
                                   ("senders", "addSenders", "removeSenders"),
                                   ("whitelistSender", "addWhitelistSender", "removeWhitelistSender")])
def test_whitelist_parameters_and_their_spellings(api, accounts, iredapd_db, names):
    reset, add, remove = names
    path = f"/api/greylisting/{DOMAIN}/whitelists"
    r = api.post(path, {reset: "192.168.1.0/24, 172.16.10.1,@Example.org, user@sender.test, @.sub.test"})
    assert r.status_code == 200, r.text
    assert api.get(path).json["_data"] == sorted(["192.168.1.0/24", "172.16.10.1", "@example.org",
                                                  "user@sender.test", "@.sub.test"])
    assert api.post(path, {add: "2001:db8::/32,10.0.0.5/8", remove: "@example.org"}).status_code == 200
    assert api.get(path).json["_data"] == sorted(["192.168.1.0/24", "172.16.10.1", "user@sender.test",
                                                  "@.sub.test", "2001:db8::/32", "10.0.0.0/8"])
    assert all(a == "@example.com" for a, _ in whitelist_rows(iredapd_db))
    assert api.get("/api/greylisting/global/whitelists").json["_data"] == []


@pytest.mark.parametrize("params, param", [
    ({"whitelistSenders": "192.168.1.0/33"}, "whitelistSenders"),
    ({"addWhitelistSenders": "10.0.0.0/8/1"}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "300.1.1.0/24"}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "192.0.2.1, 2001:db8::/129"}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "x'; DELETE FROM greylisting_whitelists; --@a.test"}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "o'brien@a.test"}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "@."}, "addWhitelistSenders"),
    ({"addWhitelistSenders": "192.168.1.*"}, "addWhitelistSenders"),
    ({"senders": "1.2.3.4", "addSenders": "5.6.7.8"}, None),
    ({"addSenders": "1.2.3.4", "removeSenders": "1.2.3.4"}, "removeWhitelistSenders"),
    ({}, "whitelistSenders"),
])
def test_bad_whitelist_input_writes_nothing(api, accounts, iredapd_db, params, param):
    assert api.post("/api/greylisting/global/whitelists", {"senders": "192.0.2.1"}).status_code == 200
    r = api.post("/api/greylisting/global/whitelists", params)
    assert r.status_code == 400, r.text
    if param:
        assert r.json["param"] == param
    assert whitelist_rows(iredapd_db) == [("@.", "192.0.2.1")]


@pytest.mark.parametrize("path, params, status", [
    ("/api/greylisting/global", {"status": "maybe"}, 400),
    ("/api/greylisting/global", {}, 400),
    ("/api/greylisting/@example.com", {"status": "enable"}, 400),
    ("/api/greylisting/@.", {"status": "enable"}, 400),
    ("/api/greylisting/10.0.0.1", {"status": "enable"}, 400),
    ("/api/greylisting/nowhere.test", {"status": "enable"}, 404),
    ("/api/greylisting/nobody@example.com", {"status": "enable"}, 404),
])
def test_bad_status_input_writes_nothing(api, accounts, iredapd_db, path, params, status):
    r = api.post(path, params)
    assert r.status_code == status, r.text
    assert settings_rows(iredapd_db) == []


def test_spf_domains(api, iredapd_db):
    path = "/api/greylisting/whitelist_spf_domains"
    assert api.post(path, {"domains": "iredmail.org,Gmail.com"}).status_code == 200
    assert api.post(path, {"addDomains": "outlook.com", "removeDomains": "iredmail.org"}).status_code == 200
    assert api.get(path).json["_data"] == ["gmail.com", "outlook.com"]
    assert query_rows(iredapd_db.engine, "SELECT domain FROM greylisting_whitelist_domains ORDER BY domain") == [
        {"domain": "gmail.com"}, {"domain": "outlook.com"}]
    for bad in ({"domains": "not a domain"}, {"domains": "a.test", "addDomains": "b.test"}, {},
                {"addDomains": "x'--.test"}):
        assert api.post(path, bad).status_code == 400, bad
    assert api.get(path).json["_data"] == ["gmail.com", "outlook.com"]


@pytest.fixture
def normal(app, settings, factory, accounts):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=[DOMAIN])
    client = ApiClient(app, settings)
    client.login("boss@admins.test", "B0ss#secret")
    return client


def test_normal_admin_only_for_its_domains(normal, api, iredapd_db):
    for method, path, params in (
            ("GET", "/api/greylisting/all", None), ("POST", "/api/greylisting/global", {"status": "disable"}),
            ("DELETE", "/api/greylisting/global", None),
            ("POST", "/api/greylisting/other.test", {"status": "disable"}),
            ("POST", f"/api/greylisting/{STRANGER}/whitelists", {"addSenders": "192.0.2.1"}),
            ("POST", "/api/greylisting/global/whitelists", {"addSenders": "192.0.2.1"}),
            ("POST", "/api/greylisting/whitelist_spf_domains", {"addDomains": "gmail.com"})):
        r = normal.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
    assert settings_rows(iredapd_db) == [] and whitelist_rows(iredapd_db) == []
    assert normal.post(f"/api/greylisting/{USER}", {"status": "disable"}).status_code == 200
    assert normal.post(f"/api/greylisting/{DOMAIN}/whitelists", {"addSenders": "192.0.2.1"}).status_code == 200
    assert api.put(f"/api/domain/{DOMAIN}", {"disableDomainProfile": "greylisting"}).status_code == 200
    assert normal.post(f"/api/greylisting/{DOMAIN}", {"status": "disable"}).status_code == 403
    assert normal.post(f"/api/greylisting/{USER}", {"status": "enable"}).status_code == 200
    assert [(r["account"], r["active"]) for r in settings_rows(iredapd_db)] == [(USER, 1)]


@ALL_DBS
def test_api_smoke_on_each_database(api, accounts, iredapd_db):
    assert api.post("/api/greylisting/global", {"status": "enable"}).status_code == 200
    assert api.post(f"/api/greylisting/{DOMAIN}", {"status": "disable"}).status_code == 200
    assert api.post(f"/api/greylisting/{USER}/whitelists", {"addSenders": "@sender.test"}).status_code == 200
    assert api.get(f"/api/greylisting/{USER}/whitelists").json["_data"] == ["@sender.test"]
    assert [greylisted(iredapd_db, m) for m in (USER, STRANGER)] == [False, True]
    assert api.delete(f"/api/greylisting/{DOMAIN}").status_code == 200
    assert greylisted(iredapd_db, OTHER_USER)
