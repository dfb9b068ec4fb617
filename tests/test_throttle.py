"""Throttling in iRedAPD's `throttle` table."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.db.iredapd import IredapdDB
from iredldap.model.policy_addresses import GLOBAL, domain_account, user_account

from .policy_consumers import iredapd_throttle
from .support import ApiClient, POLICY_DOMAIN, POLICY_OTHER_USER, POLICY_STRANGER, POLICY_USER, all_policy_dbs, \
    query_rows
from .support import accounts, app, backend  # noqa: F401  (this module's fixtures)

ALL_DBS = all_policy_dbs()
DOMAIN, USER, OTHER_USER, STRANGER = POLICY_DOMAIN, POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER


def throttle_rows(db):
    return query_rows(db.engine, "SELECT account, kind, priority, period, msg_size, max_msgs, max_quota, max_rcpts "
                           "FROM throttle ORDER BY priority DESC, kind")


# -- the store, on SQLite, MariaDB and PostgreSQL ---------------------------------

@ALL_DBS
def test_user_beats_domain_beats_global_limit_by_limit(iredapd_db):
    db = iredapd_db
    db.set_throttle(GLOBAL, "outbound", period=86400, limits={"msg_size": 10_000_000, "max_msgs": 500,
                                                              "max_quota": 0})
    db.set_throttle(domain_account(DOMAIN), "outbound", period=3600, limits={"max_msgs": 100, "max_rcpts": 50})
    db.set_throttle(user_account(USER), "outbound", period=60, limits={"max_msgs": 0})
    db.set_throttle(user_account(USER), "inbound", period=60, limits={"msg_size": 1000})

    assert throttle_rows(db) == [
        {"account": USER, "kind": "inbound", "priority": 100, "period": 60, "msg_size": 1000, "max_msgs": -1,
         "max_quota": -1, "max_rcpts": -1},
        {"account": USER, "kind": "outbound", "priority": 100, "period": 60, "msg_size": -1, "max_msgs": 0,
         "max_quota": -1, "max_rcpts": -1},
        {"account": "@example.com", "kind": "outbound", "priority": 60, "period": 3600, "msg_size": -1,
         "max_msgs": 100, "max_quota": -1, "max_rcpts": 50},
        {"account": "@.", "kind": "outbound", "priority": 0, "period": 86400, "msg_size": 10_000_000,
         "max_msgs": 500, "max_quota": 0, "max_rcpts": -1},
    ]
    # Each limit from the most specific row that sets it; 0 = no limit, and final.
    assert iredapd_throttle(db.engine, "outbound", USER) == {
        "account": USER, "period": 60, "max_msgs": 0, "max_rcpts": 50, "msg_size": 10_000_000, "max_quota": 0}
    assert iredapd_throttle(db.engine, "outbound", OTHER_USER)["max_msgs"] == 100
    assert iredapd_throttle(db.engine, "outbound", STRANGER)["max_msgs"] == 500
    assert iredapd_throttle(db.engine, "inbound", STRANGER) == {}

    assert db.delete_throttle(user_account(USER), "outbound")
    assert iredapd_throttle(db.engine, "outbound", USER)["max_msgs"] == 100
    db.delete_throttle(domain_account(DOMAIN), "outbound")
    assert iredapd_throttle(db.engine, "outbound", USER)["max_msgs"] == 500


@ALL_DBS
def test_update_keeps_unnamed_limits_and_the_row(iredapd_db):
    user = user_account(USER)
    iredapd_db.set_throttle(user, "inbound", period=60, limits={"msg_size": 5, "max_quota": 7})
    (before,) = query_rows(iredapd_db.engine, "SELECT id FROM throttle")
    # iRedAPD keeps counters per throttle row: the row survives an update.
    with iredapd_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO throttle_tracking (tid, account, period) VALUES (:t, :a, 60)"),
                     {"t": before["id"], "a": USER})
    iredapd_db.set_throttle(user, "inbound", period=120, limits={"msg_size": -1})
    assert query_rows(iredapd_db.engine, "SELECT id FROM throttle") == [before]
    assert iredapd_db.get_throttle(user, "inbound") == {
        "account": USER, "kind": "inbound", "priority": 100, "period": 120, "msg_size": -1, "max_msgs": -1,
        "max_quota": 7, "max_rcpts": -1}
    # Deleting goes through the counters first (a foreign key on MySQL).
    assert iredapd_db.delete_throttle(user, "inbound")
    assert query_rows(iredapd_db.engine, "SELECT * FROM throttle_tracking") == []


@pytest.mark.parametrize("policy_sql", ["postgresql"], indirect=True)
def test_duplicate_rows_are_merged_where_nothing_prevents_them(iredapd_db):
    """PostgreSQL's throttle table has no UNIQUE (account, kind)."""
    with iredapd_db.engine.begin() as conn:
        for n in (1, 2):
            conn.execute(text("INSERT INTO throttle (account, kind, priority, period, max_msgs) "
                              "VALUES ('@example.com', 'inbound', 60, 60, :n)"), {"n": n})
    iredapd_db.set_throttle(domain_account(DOMAIN), "inbound", period=30, limits={})
    assert [(r["period"], r["max_msgs"]) for r in throttle_rows(iredapd_db)] == [(30, 1)]


def test_a_table_without_max_rcpts(tmp_path):
    """iRedAPD before 5.0: the column is neither read nor written."""
    db = IredapdDB(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE throttle (id INTEGER PRIMARY KEY, account VARCHAR(255) NOT NULL, "
                             "kind VARCHAR(10) NOT NULL DEFAULT 'outbound', priority INTEGER NOT NULL DEFAULT 0, "
                             "period INTEGER NOT NULL DEFAULT 0, msg_size BIGINT NOT NULL DEFAULT -1, "
                             "max_msgs BIGINT NOT NULL DEFAULT -1, max_quota BIGINT NOT NULL DEFAULT -1)")
    db.set_throttle(GLOBAL, "inbound", period=60, limits={"max_msgs": 3})
    assert db.get_throttle(GLOBAL, "inbound") == {"account": "@.", "kind": "inbound", "priority": 0, "period": 60,
                                                  "msg_size": -1, "max_msgs": 3, "max_quota": -1}
    with pytest.raises(Exception) as caught:
        db.set_throttle(GLOBAL, "inbound", period=60, limits={"max_rcpts": 3})
    assert getattr(caught.value, "details", {}).get("param") == "max_rcpts"


# -- the API ------------------------------------------------------------------------

@pytest.mark.parametrize("account, key, priority", [("global", "@.", 0), ("Example.com", "@example.com", 60),
                                                    (USER, USER, 100)])
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_post_and_get(api, accounts, iredapd_db, account, key, priority, direction):
    assert api.get(f"/api/throttle/{account}/{direction}").json["_data"] == {}
    r = api.post(f"/api/throttle/{account}/{direction}",
                 {"period": "3600", "msg_size": "10485760", "max_msgs": "20", "max_quota": "0", "max_rcpts": "-1"})
    assert r.status_code == 200, r.text
    expected = {"account": key, "kind": direction, "priority": priority, "period": 3600, "msg_size": 10485760,
                "max_msgs": 20, "max_quota": 0, "max_rcpts": -1}
    assert throttle_rows(iredapd_db) == [expected]
    assert api.get(f"/api/throttle/{account}/{direction}").json["_data"] == expected
    other = "outbound" if direction == "inbound" else "inbound"
    assert api.get(f"/api/throttle/{account}/{other}").json["_data"] == {}

    assert api.post(f"/api/throttle/{account}/{direction}", {"period": "60", "max_msgs": "5"}).status_code == 200
    assert api.get(f"/api/throttle/{account}/{direction}").json["_data"] == {
        **expected, "period": 60, "max_msgs": 5}
    assert api.delete(f"/api/throttle/{account}/{direction}").status_code == 200
    assert throttle_rows(iredapd_db) == []


def test_levels_as_iredapd_sees_them(api, accounts, iredapd_db):
    assert api.post("/api/throttle/global/inbound", {"period": "86400", "max_msgs": "1000"}).status_code == 200
    assert api.post(f"/api/throttle/{DOMAIN}/inbound", {"period": "3600", "max_msgs": "100"}).status_code == 200
    assert api.post(f"/api/throttle/{USER}/inbound", {"period": "60", "max_msgs": "10"}).status_code == 200
    assert [iredapd_throttle(iredapd_db.engine, "inbound", m)["max_msgs"] for m in (USER, OTHER_USER, STRANGER)] \
        == [10, 100, 1000]
    assert api.delete(f"/api/throttle/{USER}/inbound").status_code == 200
    assert iredapd_throttle(iredapd_db.engine, "inbound", USER)["max_msgs"] == 100


@pytest.mark.parametrize("path, params, status, param", [
    ("/api/throttle/global/inbound", {"max_msgs": "5"}, 400, "period"),
    ("/api/throttle/global/inbound", {"period": "-60"}, 400, "period"),
    ("/api/throttle/global/inbound", {"period": "0"}, 400, "period"),
    ("/api/throttle/global/inbound", {"period": "1h"}, 400, "period"),
    ("/api/throttle/global/inbound", {"period": "60", "max_msgs": "-2"}, 400, "max_msgs"),
    ("/api/throttle/global/inbound", {"period": "60", "msg_size": "99999999999999999999"}, 400, "msg_size"),
    ("/api/throttle/global/inbound", {"period": "60", "priority": "255"}, 400, None),
    ("/api/throttle/global/sideways", {"period": "60"}, 400, "direction"),
    ("/api/throttle/@example.com/inbound", {"period": "60"}, 400, "account"),
    ("/api/throttle/@./inbound", {"period": "60"}, 400, "account"),
    ("/api/throttle/192.0.2.1/inbound", {"period": "60"}, 400, "account"),
    ("/api/throttle/localhost/inbound", {"period": "60"}, 400, "account"),
    ("/api/throttle/a;b@example.com/inbound", {"period": "60"}, 400, "account"),
    ("/api/throttle/nowhere.test/inbound", {"period": "60"}, 404, None),
    ("/api/throttle/nobody@example.com/inbound", {"period": "60"}, 404, None),
])
def test_bad_input_writes_nothing(api, accounts, iredapd_db, path, params, status, param):
    r = api.post(path, params)
    assert r.status_code == status, r.text
    if param:
        assert r.json["param"] == param
    assert throttle_rows(iredapd_db) == []


@pytest.fixture
def normal(app, settings, factory, accounts):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=[DOMAIN])
    client = ApiClient(app, settings)
    client.login("boss@admins.test", "B0ss#secret")
    return client


def test_normal_admin_only_for_its_domains(normal, api, iredapd_db):
    for method, path in (("POST", "/api/throttle/global/inbound"), ("GET", "/api/throttle/global/outbound"),
                         ("POST", "/api/throttle/other.test/inbound"), ("POST", f"/api/throttle/{STRANGER}/inbound"),
                         ("DELETE", "/api/throttle/global/inbound"), ("POST", "/api/throttle/nowhere.test/inbound")):
        r = normal.request(method, path, {"period": "60"} if method == "POST" else None)
        assert r.status_code == 403, (method, path, r.text)
    assert throttle_rows(iredapd_db) == []
    assert normal.post(f"/api/throttle/{DOMAIN}/outbound", {"period": "60", "max_msgs": "5"}).status_code == 200
    assert normal.post(f"/api/throttle/{USER}/outbound", {"period": "60", "max_msgs": "2"}).status_code == 200
    assert api.put(f"/api/domain/{DOMAIN}", {"disableUserProfile": "throttle"}).status_code == 200
    assert normal.post(f"/api/throttle/{USER}/outbound", {"period": "60", "max_msgs": "99"}).status_code == 403
    assert normal.get(f"/api/throttle/{DOMAIN}/outbound").status_code == 200
    assert iredapd_throttle(iredapd_db.engine, "outbound", USER)["max_msgs"] == 2


@ALL_DBS
def test_api_smoke_on_each_database(api, accounts, iredapd_db):
    assert api.post(f"/api/throttle/{DOMAIN}/outbound", {"period": "60", "max_rcpts": "20"}).status_code == 200
    assert api.get(f"/api/throttle/{DOMAIN}/outbound").json["_data"]["max_rcpts"] == 20
    assert iredapd_throttle(iredapd_db.engine, "outbound", USER)["max_rcpts"] == 20
    assert api.delete(f"/api/throttle/{DOMAIN}/outbound").status_code == 200
    assert throttle_rows(iredapd_db) == []


def test_iredapd_down_is_503(settings, directory, iredadmin, factory, policy_dbs):
    factory.global_admin("root@admins.test", "R00t#pw")
    dead = IredapdDB("postgresql+psycopg://postgres@127.0.0.1:1/iredapd")
    client = ApiClient(create_app(settings, Backends(directory, iredadmin, amavisd=policy_dbs.amavisd,
                                                     iredapd=dead)), settings)
    client.login("root@admins.test", "R00t#pw")
    r = client.post("/api/throttle/global/inbound", {"period": "60"})
    assert r.status_code == 503 and r.json["_msg"] == "DATABASE_UNAVAILABLE"
    # Amavisd's endpoints are another database: unaffected.
    assert client.get("/api/spampolicy/global").status_code == 200
