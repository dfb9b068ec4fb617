"""Spam policies in Amavisd's `policy` and `users` tables, and the cleanup of
an account's policy rows (PolicyAccounts) when it is deleted or renamed."""

from __future__ import annotations

import pytest

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.db.amavisd import AmavisdDB, policy_columns
from iredldap.db.iredapd import IredapdDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.model.policy_addresses import GLOBAL, domain_account, user_account

from .fixtures_policy import SQL_DIR, run_sql_file
from .policy_consumers import amavisd_policy, amavisd_wblist, iredapd_greylisted, iredapd_throttle
from .support import ApiClient, POLICY_DOMAIN, POLICY_OTHER_USER, POLICY_STRANGER, POLICY_USER, all_policy_dbs, \
    query_rows
from .support import accounts, app, backend  # noqa: F401  (this module's fixtures)

ALL_DBS = all_policy_dbs()
DOMAIN, USER, OTHER_USER, STRANGER = POLICY_DOMAIN, POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER


def users_rows(db):
    return query_rows(db.engine, "SELECT email, priority, policy_id FROM users ORDER BY email")


def policy_rows(db):
    return query_rows(db.engine, "SELECT * FROM policy ORDER BY policy_name")


# -- the store, on SQLite, MariaDB and PostgreSQL ---------------------------------

@ALL_DBS
def test_user_beats_domain_beats_global_and_null_falls_through(amavisd_db):
    db = amavisd_db
    db.set_policy(GLOBAL, policy_columns({"bypass_spam_checks": False, "spam_score": 6.5,
                                          "quarantine_spam": True}))
    db.set_policy(domain_account(DOMAIN), policy_columns({"bypass_spam_checks": True, "spam_score": 5.0}))
    db.set_policy(user_account(USER), policy_columns({"spam_score": 3.5}))

    users = users_rows(db)
    policies = {p["policy_name"]: p for p in policy_rows(db)}
    assert [(u["email"], u["priority"]) for u in users] == [("@.", 0), ("@example.com", 5), (USER, 10)]
    assert {u["email"]: u["policy_id"] for u in users} == {name: p["id"] for name, p in policies.items()}
    user_policy = policies[USER]
    assert user_policy["spam_tag2_level"] == user_policy["spam_kill_level"] == 3.5
    # Not given: NULL, so Amavisd takes it from the next row.
    assert user_policy["bypass_spam_checks"] is None and user_policy["spam_lover"] is None
    assert policies["@example.com"]["bypass_spam_checks"] == "Y"

    seen = amavisd_policy(db.engine, USER)
    assert seen["spam_kill_level"] == 3.5
    assert seen["bypass_spam_checks"] == "Y"                       # from the domain
    assert (seen["spam_lover"], seen["spam_quarantine_to"]) == ("N", "spam-quarantine")   # from global
    assert amavisd_policy(db.engine, OTHER_USER)["spam_kill_level"] == 5.0
    assert amavisd_policy(db.engine, STRANGER)["spam_kill_level"] == 6.5
    assert amavisd_policy(db.engine, STRANGER)["bypass_spam_checks"] == "N"

    assert db.delete_policy(user_account(USER))
    assert amavisd_policy(db.engine, USER)["spam_kill_level"] == 5.0
    assert USER not in [u["email"] for u in users_rows(db)]
    db.delete_policy(domain_account(DOMAIN))
    assert amavisd_policy(db.engine, USER)["spam_kill_level"] == 6.5
    assert [p["policy_name"] for p in policy_rows(db)] == ["@."]


@ALL_DBS
def test_policy_update_merges_and_blank_sets_null(amavisd_db):
    account = domain_account(DOMAIN)
    amavisd_db.set_policy(account, policy_columns({"bypass_virus_checks": True, "prefix_spam_in_subject": True}))
    amavisd_db.set_policy(account, policy_columns({"always_insert_x_spam_headers": True}))
    row = amavisd_db.get_policy(account)
    assert (row["bypass_virus_checks"], row["spam_subject_tag2"], row["spam_tag_level"]) == ("Y", "[SPAM] ", -999)
    amavisd_db.set_policy(account, policy_columns({"bypass_virus_checks": None, "prefix_spam_in_subject": False}))
    row = amavisd_db.get_policy(account)
    assert (row["bypass_virus_checks"], row["spam_subject_tag2"]) == (None, "")
    assert len(policy_rows(amavisd_db)) == 1 and len(users_rows(amavisd_db)) == 1


@pytest.mark.parametrize("policy_sql", ["mariadb", "postgresql"], indirect=True)
def test_iredmail_default_policy_is_read_and_overridden(amavisd_db, api):
    """The global policy iRedMail's installer loads (text literals into the
    binary email column) is found and changed in place."""
    run_sql_file(amavisd_db.engine, SQL_DIR / "amavisd_default_policy.sql")
    r = api.get("/api/spampolicy/global")
    assert r.status_code == 200, r.text
    assert r.json["_data"] == {
        "account": "@.", "bypass_spam_checks": False, "bypass_virus_checks": False,
        "bypass_banned_checks": False, "bypass_header_checks": False, "quarantine_spam": False,
        "quarantine_virus": True, "quarantine_banned": True, "quarantine_bad_header": False,
        "prefix_spam_in_subject": None, "always_insert_x_spam_headers": None, "spam_score": None,
        "banned_rulenames": None}
    assert api.put("/api/spampolicy/global", {"quarantine_spam": "yes"}).status_code == 200
    assert [p["policy_name"] for p in policy_rows(amavisd_db)] == ["@."]
    assert amavisd_policy(amavisd_db.engine, STRANGER)["spam_quarantine_to"] == "spam-quarantine"


@ALL_DBS
def test_delete_keeps_the_users_row_white_blacklists_use(amavisd_db):
    user = user_account(USER)
    amavisd_db.add_addresses(user, "inbound", "blacklist", ["@spam.test"])
    amavisd_db.set_policy(user, policy_columns({"spam_score": 2}))
    assert users_rows(amavisd_db)[0]["policy_id"] != 0
    amavisd_db.delete_policy(user)
    assert users_rows(amavisd_db) == [{"email": USER, "priority": 10, "policy_id": 0}]
    assert policy_rows(amavisd_db) == []
    assert amavisd_wblist(amavisd_db.engine, "inbound", USER, "x@spam.test") == "B"


# -- the API ------------------------------------------------------------------------

ALL_YES = {name: "yes" for name in (
    "bypass_spam_checks", "bypass_virus_checks", "bypass_banned_checks", "bypass_header_checks",
    "quarantine_spam", "quarantine_virus", "quarantine_banned", "quarantine_bad_header",
    "prefix_spam_in_subject", "always_insert_x_spam_headers")}


@pytest.mark.parametrize("path, key", [("/api/spampolicy/global", "@."),
                                       ("/api/spampolicy/domain/Example.COM", "@example.com"),
                                       (f"/api/spampolicy/user/{USER}", USER)])
def test_put_get_delete(api, accounts, amavisd_db, path, key):
    assert api.get(path).json["_data"] == {}
    r = api.put(path, {**ALL_YES, "spam_score": "4.5", "banned_rulenames": "ALLOW_MS_WORD, ALLOW_MS_EXCEL"})
    assert r.status_code == 200, r.text
    assert r.json == {"_success": True}
    data = api.get(path).json["_data"]
    assert data == {"account": key, **{k: True for k in ALL_YES}, "spam_score": 4.5,
                    "banned_rulenames": ["ALLOW_MS_WORD", "ALLOW_MS_EXCEL"]}
    (row,) = policy_rows(amavisd_db)
    assert row["policy_name"] == key
    assert {k: row[k] for k in ("bypass_spam_checks", "spam_lover", "spam_quarantine_to", "virus_lover",
                                "virus_quarantine_to", "banned_files_lover", "banned_quarantine_to",
                                "bad_header_lover", "bad_header_quarantine_to", "spam_subject_tag2",
                                "spam_tag_level", "spam_tag2_level", "spam_kill_level", "banned_rulenames")} == {
        "bypass_spam_checks": "Y", "spam_lover": "N", "spam_quarantine_to": "spam-quarantine",
        "virus_lover": "N", "virus_quarantine_to": "virus-quarantine", "banned_files_lover": "N",
        "banned_quarantine_to": "banned-quarantine", "bad_header_lover": "N",
        "bad_header_quarantine_to": "bad-header-quarantine", "spam_subject_tag2": "[SPAM] ",
        "spam_tag_level": -999, "spam_tag2_level": 4.5, "spam_kill_level": 4.5,
        "banned_rulenames": "ALLOW_MS_WORD,ALLOW_MS_EXCEL"}
    assert users_rows(amavisd_db) == [{"email": key, "priority": {"@.": 0, USER: 10}.get(key, 5),
                                       "policy_id": row["id"]}]

    r = api.put(path, {"quarantine_spam": "no", "quarantine_virus": "no", "spam_score": ""})
    assert r.status_code == 200, r.text
    data = api.get(path).json["_data"]
    assert (data["quarantine_spam"], data["quarantine_virus"], data["spam_score"]) == (False, False, None)
    assert data["bypass_spam_checks"] is True          # untouched
    (row,) = policy_rows(amavisd_db)
    # Spam is then delivered (tagged); viruses are still never delivered.
    assert (row["spam_lover"], row["spam_quarantine_to"], row["virus_lover"], row["virus_quarantine_to"]) == \
        ("Y", "", "N", "")

    assert api.delete(path).status_code == 200
    assert api.get(path).json["_data"] == {}
    assert policy_rows(amavisd_db) == [] and users_rows(amavisd_db) == []


def test_api_levels_as_amavisd_sees_them(api, accounts, amavisd_db):
    assert api.put("/api/spampolicy/global", {"spam_score": "8"}).status_code == 200
    assert api.put(f"/api/spampolicy/domain/{DOMAIN}", {"spam_score": "6", "bypass_spam_checks": "no"}).status_code == 200
    assert api.put(f"/api/spampolicy/user/{USER}", {"bypass_spam_checks": "yes"}).status_code == 200
    mine = amavisd_policy(amavisd_db.engine, USER)
    assert (mine["bypass_spam_checks"], mine["spam_kill_level"]) == ("Y", 6)
    assert amavisd_policy(amavisd_db.engine, OTHER_USER)["bypass_spam_checks"] == "N"
    assert amavisd_policy(amavisd_db.engine, STRANGER)["spam_kill_level"] == 8
    assert api.delete(f"/api/spampolicy/user/{USER}").status_code == 200
    assert amavisd_policy(amavisd_db.engine, USER)["bypass_spam_checks"] == "N"


@pytest.mark.parametrize("path, params, status, param", [
    ("/api/spampolicy/global", {"bypass_spam_checks": "maybe"}, 400, "bypass_spam_checks"),
    ("/api/spampolicy/global", {"spam_score": "lots"}, 400, "spam_score"),
    ("/api/spampolicy/global", {"spam_score": "nan"}, 400, "spam_score"),
    ("/api/spampolicy/global", {"spam_score": "1e9"}, 400, "spam_score"),
    ("/api/spampolicy/global", {"banned_rulenames": "A'; DROP TABLE policy; --"}, 400, "banned_rulenames"),
    ("/api/spampolicy/global", {"banned_rulenames": ",".join(f"ALLOW_MS_OFFICE{i}" for i in range(5))}, 400, "banned_rulenames"),
    ("/api/spampolicy/global", {"policy_name": "x"}, 400, None),
    ("/api/spampolicy/domain/not_a_domain", {"spam_score": "3"}, 400, "domain"),
    ("/api/spampolicy/user/@example.com", {"spam_score": "3"}, 400, "mail"),
    ("/api/spampolicy/user/x'or'1'='1@example.com", {"spam_score": "3"}, 400, "mail"),
    ("/api/spampolicy/user/x'--@example.com", {"spam_score": "3"}, 404, None),
    ("/api/spampolicy/domain/nowhere.test", {"spam_score": "3"}, 404, None),
    ("/api/spampolicy/user/nobody@example.com", {"spam_score": "3"}, 404, None),
])
def test_bad_input_writes_nothing(api, accounts, amavisd_db, path, params, status, param):
    r = api.put(path, params)
    assert r.status_code == status, r.text
    if param:
        assert r.json["param"] == param
    assert policy_rows(amavisd_db) == [] and users_rows(amavisd_db) == []


@pytest.fixture
def normal(app, settings, factory, accounts):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=[DOMAIN])
    client = ApiClient(app, settings)
    client.login("boss@admins.test", "B0ss#secret")
    return client


def test_normal_admin_only_for_its_domains(normal, api, amavisd_db):
    for method, path in (("PUT", "/api/spampolicy/global"), ("GET", "/api/spampolicy/global"),
                         ("DELETE", "/api/spampolicy/global"), ("PUT", "/api/spampolicy/domain/other.test"),
                         ("PUT", f"/api/spampolicy/user/{STRANGER}"), ("PUT", "/api/spampolicy/domain/nowhere.test")):
        r = normal.request(method, path, {"spam_score": "1"} if method == "PUT" else None)
        assert r.status_code == 403, (method, path, r.text)
    assert policy_rows(amavisd_db) == []
    assert normal.put(f"/api/spampolicy/domain/{DOMAIN}", {"spam_score": "5"}).status_code == 200
    assert normal.put(f"/api/spampolicy/user/{USER}", {"spam_score": "4"}).status_code == 200
    assert normal.get(f"/api/spampolicy/user/{USER}").json["_data"]["spam_score"] == 4

    # A global admin locks the tab: the normal admin neither sees nor changes it.
    assert api.put(f"/api/domain/{DOMAIN}", {"disableDomainProfile": "spampolicy",
                                             "disableUserProfile": "spampolicy"}).status_code == 200
    assert normal.get(f"/api/spampolicy/domain/{DOMAIN}").status_code == 403
    assert normal.put(f"/api/spampolicy/user/{USER}", {"spam_score": "9"}).status_code == 403
    assert amavisd_policy(amavisd_db.engine, USER)["spam_kill_level"] == 4


@ALL_DBS
def test_api_smoke_on_each_database(api, accounts, amavisd_db):
    assert api.put(f"/api/spampolicy/user/{USER}", {"quarantine_banned": "yes", "spam_score": "6.2"}).status_code == 200
    data = api.get(f"/api/spampolicy/user/{USER}").json["_data"]
    assert (data["quarantine_banned"], data["spam_score"]) == (True, 6.2)
    assert amavisd_policy(amavisd_db.engine, USER)["banned_quarantine_to"] == "banned-quarantine"
    assert api.delete(f"/api/spampolicy/user/{USER}").status_code == 200
    assert policy_rows(amavisd_db) == []


def test_database_down_is_503_and_the_directory_still_works(settings, directory, iredadmin, factory, policy_dbs):
    factory.global_admin("root@admins.test", "R00t#pw")
    factory.domain(DOMAIN)
    dead = "mysql+pymysql://root@127.0.0.1:1/nothing?ssl_disabled=1"
    app = create_app(settings, Backends(directory, iredadmin, amavisd=AmavisdDB(dead), iredapd=IredapdDB(dead)))
    client = ApiClient(app, settings)
    client.login("root@admins.test", "R00t#pw")
    for method, path in (("GET", "/api/spampolicy/global"), ("PUT", f"/api/spampolicy/domain/{DOMAIN}"),
                         ("GET", "/api/throttle/global/inbound"), ("POST", "/api/greylisting/global"),
                         ("GET", "/api/wblist/inbound/whitelist/global")):
        params = {"greylisting": {"status": "enable"}}.get(path.split("/")[2]) if method != "GET" else None
        r = client.request(method, path, params)
        assert r.status_code == 503, (path, r.text)
        assert r.json["_msg"] == "DATABASE_UNAVAILABLE"
    assert client.get(f"/api/domain/{DOMAIN}").status_code == 200
    # Deleting the domain needs its policy rows gone: refused, and undone.
    r = client.delete(f"/api/domain/{DOMAIN}")
    assert r.status_code == 503 and r.json["_msg"] == "DATABASE_UNAVAILABLE"
    assert client.get(f"/api/domain/{DOMAIN}").status_code == 200


# -- deleting and renaming accounts -----------------------------------------------------

def _fill(policy_dbs):
    """Settings of alice, her domain, bob, a stranger and global, in every table."""
    am, apd = policy_dbs.amavisd, policy_dbs.iredapd
    for account in (GLOBAL, domain_account(DOMAIN), user_account(USER), user_account(OTHER_USER),
                    user_account(STRANGER)):
        am.set_policy(account, policy_columns({"spam_score": 5}))
        am.add_addresses(account, "inbound", "blacklist", ["@spam.test"])
        am.add_addresses(account, "outbound", "whitelist", ["partner@partner.test"])
        apd.set_throttle(account, "outbound", period=60, limits={"max_msgs": 10})
        apd.set_greylisting(account, account.kind != "user")
        apd.change_whitelist(account, add=["192.0.2.1"])
    # The stranger blacklists alice: the stranger's setting, it stays.
    am.add_addresses(user_account(STRANGER), "inbound", "blacklist", [USER])
    # A throttle counter for alice's row (a foreign key on MySQL).
    with apd.engine.begin() as conn:
        tid = conn.exec_driver_sql(f"SELECT id FROM throttle WHERE account = '{USER}'").scalar()
        conn.exec_driver_sql(f"INSERT INTO throttle_tracking (tid, account, period) VALUES ({tid}, '{USER}', 60)")


def _accounts_in(policy_dbs) -> dict[str, set[str]]:
    am, apd = policy_dbs.amavisd.engine, policy_dbs.iredapd.engine
    return {
        "users": {r["email"] for r in query_rows(am, "SELECT email FROM users")},
        "policy": {r["policy_name"] for r in query_rows(am, "SELECT policy_name FROM policy")},
        "wblist": {r["email"] for r in query_rows(am, "SELECT email FROM users JOIN wblist ON rid = users.id")},
        "outbound_wblist": {r["email"] for r in query_rows(am, "SELECT email FROM users "
                                                         "JOIN outbound_wblist ON sid = users.id")},
        "throttle": {r["account"] for r in query_rows(apd, "SELECT account FROM throttle")},
        "throttle_tracking": {r["account"] for r in query_rows(apd, "SELECT account FROM throttle_tracking")},
        "greylisting": {r["account"] for r in query_rows(apd, "SELECT account FROM greylisting")},
        "greylisting_whitelists": {r["account"] for r in query_rows(apd, "SELECT account FROM greylisting_whitelists")},
    }


EVERYONE = {"@.", "@example.com", USER, OTHER_USER, STRANGER}


@ALL_DBS
def test_forget_a_user_touches_nobody_else(policy_dbs):
    _fill(policy_dbs)
    PolicyAccounts(policy_dbs.amavisd, policy_dbs.iredapd).forget(USER)
    found = _accounts_in(policy_dbs)
    for table in ("users", "policy", "wblist", "outbound_wblist", "throttle", "greylisting",
                  "greylisting_whitelists"):
        assert found[table] == EVERYONE - {USER}, table
    assert found["throttle_tracking"] == set()
    # The stranger's blacklist entry for alice is the stranger's: kept.
    assert amavisd_wblist(policy_dbs.amavisd.engine, "inbound", STRANGER, USER) == "B"
    # Alice's mail now gets her domain's settings.
    assert iredapd_throttle(policy_dbs.iredapd.engine, "outbound", USER)["account"] == "@example.com"


@ALL_DBS
def test_forget_a_domain_removes_it_and_its_users(policy_dbs):
    _fill(policy_dbs)
    PolicyAccounts(policy_dbs.amavisd, policy_dbs.iredapd).forget("example.com")
    found = _accounts_in(policy_dbs)
    for table in ("users", "policy", "wblist", "outbound_wblist", "throttle", "greylisting",
                  "greylisting_whitelists"):
        assert found[table] == {"@.", STRANGER}, table


@ALL_DBS
def test_rename_moves_every_row(policy_dbs):
    _fill(policy_dbs)
    new = "alice.smith@example.com"
    # Left behind by an earlier account of that name: replaced.
    policy_dbs.iredapd.set_throttle(user_account(new), "inbound", period=1, limits={})
    PolicyAccounts(policy_dbs.amavisd, policy_dbs.iredapd).rename(USER, new)
    found = _accounts_in(policy_dbs)
    for table in ("users", "policy", "wblist", "outbound_wblist", "throttle", "greylisting",
                  "greylisting_whitelists"):
        assert found[table] == EVERYONE - {USER} | {new}, table
    assert query_rows(policy_dbs.iredapd.engine, "SELECT kind FROM throttle WHERE account = :a", a=new) == \
        [{"kind": "outbound"}]
    assert amavisd_policy(policy_dbs.amavisd.engine, new)["spam_kill_level"] == 5
    assert amavisd_wblist(policy_dbs.amavisd.engine, "inbound", new, "x@spam.test") == "B"
    assert iredapd_throttle(policy_dbs.iredapd.engine, "outbound", new)["account"] == new
    assert not iredapd_greylisted(policy_dbs.iredapd.engine, new, "x@sender.test", "198.51.100.1")


def test_forget_skips_embedded_databases_never_created(tmp_path):
    policies = PolicyAccounts(AmavisdDB(f"sqlite:///{tmp_path / 'a.sqlite'}"),
                              IredapdDB(f"sqlite:///{tmp_path / 'i.sqlite'}"))
    policies.forget("example.com")
    assert list(tmp_path.iterdir()) == []


def test_deleting_a_domain_through_the_api_removes_its_rows(api, accounts, policy_dbs):
    for path in ("/api/spampolicy/global", f"/api/spampolicy/domain/{DOMAIN}", f"/api/spampolicy/user/{USER}",
                 "/api/spampolicy/domain/other.test"):
        assert api.put(path, {"spam_score": "5"}).status_code == 200
    for account in ("global", DOMAIN, USER, "other.test"):
        assert api.post(f"/api/throttle/{account}/inbound", {"period": "60", "max_msgs": "3"}).status_code == 200
        assert api.post(f"/api/greylisting/{account}", {"status": "disable"}).status_code == 200
        assert api.post(f"/api/wblist/inbound/blacklist/{account}", {"addresses": "@spam.test"}).status_code == 200
    assert api.delete(f"/api/domain/{DOMAIN}").status_code == 200
    found = _accounts_in(policy_dbs)
    for table in ("users", "policy", "wblist", "throttle", "greylisting"):
        assert found[table] == {"@.", "@other.test"}, table


# -- the embedded (SQLite) databases ---------------------------------------------------

def test_init_sql_creates_embedded_tables_once_and_leaves_servers_alone(tmp_path):
    from click.testing import CliRunner

    from iredldap.cli import main

    env = {
        "IREDLDAP_LDAP_BIND_DN": "cn=Manager,dc=example,dc=com", "IREDLDAP_LDAP_BIND_PASSWORD": "x",
        "IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com", "IREDLDAP_SECRET_KEY": "x" * 20,
        "IREDLDAP_SQL_IREDADMIN_URL": f"sqlite:///{tmp_path / 'iredadmin.sqlite'}",
        "IREDLDAP_SQL_AMAVISD_URL": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
        # Nothing listens there: init-sql must not even connect.
        "IREDLDAP_SQL_IREDAPD_URL": "mysql+pymysql://root@127.0.0.1:1/iredapd?ssl_disabled=1",
    }
    for _ in range(2):
        result = CliRunner().invoke(main, ["init-sql"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "amavisd tables ready" in result.output and "iredapd: using the tables of" in result.output
    amavisd = AmavisdDB(env["IREDLDAP_SQL_AMAVISD_URL"])
    # iRedMail's default global policy, once.
    assert [(u["email"], u["priority"]) for u in users_rows(amavisd)] == [("@.", 0)]
    assert amavisd_policy(amavisd.engine, USER)["virus_quarantine_to"] == "virus-quarantine"
    iredapd = IredapdDB(f"sqlite:///{tmp_path / 'iredapd.sqlite'}")
    assert iredapd.create_tables() != []
    assert iredapd_greylisted(iredapd.engine, USER, "x@sender.test", "198.51.100.1")     # on for everyone
    assert iredapd.create_tables() == []
