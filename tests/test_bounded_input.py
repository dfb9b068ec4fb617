"""Bounded input (issue #10, item 5): body size, list sizes, number ranges and
spellings, control characters and surrogates, deep JSON -- each refused with
a 4xx in the JSON envelope and nothing written, on MOCK_SYNC and a real
slapd; and an audit row for every request that wrote something.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, event as sa_event, inspect, select, text

from iredldap.model import params
from iredldap.model.accounts import MAX_QUOTA_MB, MiB
from iredldap.db import tables as t
from iredldap.directory.connection import SUBTREE

from .conftest import SUFFIX, build_app, make_settings
from .support import ApiClient, Factory

ROOT = ("root@admins.test", "R00t#secret")
USER = "u@ex.test"


def build(settings, directory, iredadmin, templates, app=None):
    app = app or build_app(settings, directory, iredadmin, templates)
    factory = Factory(directory, settings)
    factory.global_admin(*ROOT)
    factory.domain("ex.test")
    factory.user(USER)
    client = ApiClient(app, settings)
    client.login(*ROOT)
    return client, factory


@pytest.fixture
def world(app, settings, directory, iredadmin, sqlite_templates):
    return build(settings, directory, iredadmin, sqlite_templates, app)


@pytest.fixture
def small_world(tmp_path, directory, iredadmin, sqlite_templates):
    """Limits small enough to test their edges: 3 list values, 4 KiB bodies."""
    settings = make_settings(tmp_path, max_list_items=3, max_request_body=4096)
    client, factory = build(settings, directory, iredadmin, sqlite_templates)
    yield client, factory, settings
    params.set_max_list_items(params.DEFAULT_MAX_LIST_ITEMS)


def directory_snapshot(factory) -> list:
    return sorted((e.dn.lower(), sorted((k.lower(), sorted(v)) for k, v in e.attrs.items()))
                  for e in factory.search(SUFFIX, "(objectClass=*)", scope=SUBTREE))


def sql_snapshot(settings) -> dict:
    """Every row of every table of the Amavisd, iRedAPD and iRedAdmin databases,
    except the log (the audit rows are checked on their own) and the sessions."""
    out = {}
    for url in (settings.sql_amavisd_url, settings.sql_iredapd_url, settings.sql_iredadmin_url):
        engine = create_engine(url)
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                if table in ("log", "sessions"):
                    continue
                out[(url, table)] = sorted(map(repr, conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()))
        engine.dispose()
    return out


def snapshot(factory, settings):
    return directory_snapshot(factory), sql_snapshot(settings)


def log_rows(iredadmin) -> list[dict]:
    with iredadmin.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.log).order_by(t.log.c.id))
                if r.event != "login"]


def user_entry(factory, mail=USER):
    return factory.entry(factory.tree.user(mail))


def put_json(client, path, body: str):
    """A PUT with a raw JSON text as body (json_body= would re-encode it)."""
    headers = {"Content-Type": "application/json",
               "Cookie": f"{client.settings.session_cookie_name}={client.cookie}"}
    return client.client.simulate_request("PUT", path, body=body, headers=headers)


def refused(result, status=400, code="INVALID_PARAMETER"):
    assert result.status_code == status, result.text
    body = result.json
    assert body["_success"] is False and body["_msg"] == code, body
    return body


# -- body size ------------------------------------------------------------------------

def test_body_over_the_default_limit_is_413_and_writes_nothing(world, settings, iredadmin):
    client, factory = world
    before = snapshot(factory, settings)
    big = "x" * (1024 * 1024)
    refused(client.put(f"/api/user/{USER}", {"name": big}), 413, "REQUEST_TOO_LARGE")
    assert snapshot(factory, settings) == before
    # Refused before anyone is known: no audit row claims a change.
    assert log_rows(iredadmin) == []


def test_login_body_over_the_limit_is_413_before_the_credentials_are_read(world, iredadmin):
    client, _ = world
    anonymous = ApiClient(client.client.app, client.settings)
    result = anonymous.post("/api/login", {"username": ROOT[0], "password": ROOT[1], "pad": "x" * (1024 * 1024)})
    refused(result, 413, "REQUEST_TOO_LARGE")
    assert anonymous.cookie is None
    with iredadmin.engine.connect() as conn:
        logins = conn.execute(select(t.log).where(t.log.c.event == "login")).fetchall()
    assert len(logins) == 1           # the fixture's own login only


def test_body_limit_is_a_setting(small_world, iredadmin):
    client, factory, settings = small_world
    before = snapshot(factory, settings)
    refused(client.put(f"/api/user/{USER}", {"name": "x" * 200, "pad": "y" * 4096}), 413, "REQUEST_TOO_LARGE")
    assert snapshot(factory, settings) == before
    assert client.put(f"/api/user/{USER}", {"name": "Small enough"}).status_code == 200
    assert user_entry(factory).get("cn") == ["Small enough"]


# -- list sizes ------------------------------------------------------------------------

def addresses(n: int, domain="fwd.test") -> str:
    return ",".join(f"a{i}@{domain}" for i in range(n))


def test_forwarding_over_the_default_limit_is_refused_and_not_stored(world, settings, iredadmin):
    client, factory = world
    before = snapshot(factory, settings)
    body = refused(client.put(f"/api/user/{USER}", {"forwarding": addresses(1001)}))
    assert body["param"] == "forwarding" and "at most 1000" in body["reason"]
    assert snapshot(factory, settings) == before
    assert user_entry(factory).get("mailForwardingAddress") == []
    (row,) = log_rows(iredadmin)
    assert row["loglevel"] == "error" and "400 INVALID_PARAMETER" in row["msg"]


def test_forwarding_at_the_limit_is_stored(small_world, iredadmin):
    client, factory, settings = small_world
    assert client.put(f"/api/user/{USER}", {"forwarding": addresses(3)}).status_code == 200
    assert sorted(user_entry(factory).get("mailForwardingAddress")) == addresses(3).split(",")
    before = snapshot(factory, settings)
    refused(client.put(f"/api/user/{USER}", {"forwarding": addresses(4)}))
    refused(client.put(f"/api/user/{USER}", {"addForwarding": addresses(4, "more.test")}))
    # A JSON array counts the same as a comma-separated text.
    refused(client.put(f"/api/user/{USER}", json_body={"forwarding": addresses(4).split(",")}))
    assert snapshot(factory, settings) == before


LIST_WRITES = [
    ("PUT", f"/api/user/{USER}", "aliases", addresses(4, "ex.test")),
    ("POST", "/api/alias/al@ex.test", "members", addresses(4)),
    ("POST", "/api/maillist/ml@ex.test", "moderators", addresses(4)),
    ("POST", "/api/maillist/ml@ex.test", "owner", addresses(4)),
    ("POST", "/api/maillist/ml@ex.test", "allowedSenders", "a.test,b.test,c.test,d.test"),
    ("PUT", f"/api/user/{USER}", "telephoneNumber", "1,2,3,4"),
    ("PUT", "/api/domain/ex.test", "aliasDomains", "a.test,b.test,c.test,d.test"),
    ("PUT", "/api/domain/ex.test", "catchall", addresses(4)),
    ("POST", "/api/wblist/inbound/whitelist/ex.test", "addresses", addresses(4)),
    ("POST", "/api/greylisting/ex.test/whitelists", "whitelistSenders", "192.0.2.1,192.0.2.2,192.0.2.3,@x.test"),
    ("POST", "/api/greylisting/whitelist_spf_domains", "domains", "a.test,b.test,c.test,d.test"),
    ("POST", "/api/tokens", "domains", "a.test,b.test,c.test,d.test"),
]


@pytest.mark.parametrize("method,path,name,value", LIST_WRITES, ids=[f"{m} {p} {n}" for m, p, n, _ in LIST_WRITES])
def test_every_list_parameter_is_bounded(small_world, method, path, name, value):
    client, factory, settings = small_world
    before = snapshot(factory, settings)
    body = refused(client.request(method, path, {name: value}))
    assert body["param"] == name and "at most 3" in body["reason"], body
    assert snapshot(factory, settings) == before


def test_list_bound_is_in_the_api_document(small_world):
    client, _, _ = small_world
    doc = client.get("/api/openapi.json").json
    seen = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {})
            props = {}
            for media in body.values():
                props.update(media["schema"].get("properties", {}))
            for p in op.get("parameters", []):
                props[p["name"]] = p.get("schema", {})
            for name, schema in props.items():
                if "comma-separated" in json.dumps(schema):
                    assert schema.get("maxItems") == 3, (method, path, name, schema)
                    seen += 1
    assert seen > 30


# -- numbers -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1" + "0" * 26, str(MAX_QUOTA_MB + 1), "-1", "１２", "1_000", "+5", " 5", "5 ",
                                   "0x10", "5.0", "1e3", "٣"])
def test_quota_out_of_range_or_misspelt_is_refused(world, settings, value):
    client, factory = world
    before = snapshot(factory, settings)
    body = refused(client.put(f"/api/user/{USER}", {"quota": value}))
    assert body["param"] == "quota"
    refused(client.put("/api/domain/ex.test", {"quota": value}))
    refused(client.put("/api/domain/ex.test", {"defaultQuota": value}))
    assert snapshot(factory, settings) == before
    assert user_entry(factory).get("mailQuota") == []


def test_quota_json_number_too_large_is_refused(world, settings):
    client, factory = world
    before = snapshot(factory, settings)
    refused(client.put(f"/api/user/{USER}", json_body={"quota": 10**26}))
    refused(client.put(f"/api/user/{USER}", json_body={"quota": 12.5}))
    refused(client.put(f"/api/user/{USER}", json_body={"quota": True}))
    assert snapshot(factory, settings) == before


def test_largest_quota_fits_a_signed_64_bit_byte_count(world):
    client, factory = world
    assert client.put(f"/api/user/{USER}", json_body={"quota": MAX_QUOTA_MB}).status_code == 200
    (stored,) = user_entry(factory).get("mailQuota")
    assert int(stored) == MAX_QUOTA_MB * MiB <= 2**63 - 1
    assert client.put(f"/api/user/{USER}", {"quota": "12"}).status_code == 200
    assert user_entry(factory).get("mailQuota") == [str(12 * MiB)]


def test_admin_quota_in_terabytes_is_bounded_too(world, settings):
    client, factory = world
    before = snapshot(factory, settings)
    body = refused(client.post("/api/admin/boss@admins.test", {"password": "B0ss#secret-pw", "maxQuota": "9000000",
                                                               "quotaUnit": "TB"}))
    assert body["param"] == "maxQuota"
    assert snapshot(factory, settings) == before


def test_every_integer_parameter_has_a_maximum(world):
    client, _ = world
    doc = client.get("/api/openapi.json").json
    found = 0

    def walk(node, where):
        nonlocal found
        if isinstance(node, dict):
            types = node.get("type")
            if types == "integer" or (isinstance(types, list) and "integer" in types):
                found += 1
                assert "maximum" in node and node["maximum"] <= 2**63 - 1, where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            walk(op.get("parameters", []), f"{method} {path} parameters")
            walk(op.get("requestBody", {}), f"{method} {path} body")
    assert found > 20


# -- text -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a\u0000b", "line\nbreak", "\ud800",
                                   "x\udfffy"])
def test_control_characters_and_lone_surrogates_are_refused(world, settings, iredadmin, value):
    client, factory = world
    before = snapshot(factory, settings)
    result = put_json(client, f"/api/user/{USER}", json.dumps({"name": value}))
    body = refused(result)
    assert body["param"] == "name"
    assert snapshot(factory, settings) == before
    # The refusal is in the log, its value escaped (a surrogate would make the row unwritable).
    (row,) = log_rows(iredadmin)
    assert row["loglevel"] == "error" and "=> 400 INVALID_PARAMETER" in row["msg"]
    assert row["msg"].isprintable()
    # (line breaks were already shown as spaces)
    assert "name=" + value.replace("\n", " ").encode("unicode_escape").decode("ascii") in row["msg"]


def test_surrogate_in_a_parameter_name(world, settings, iredadmin):
    client, factory = world
    before = snapshot(factory, settings)
    refused(put_json(client, f"/api/user/{USER}", '{"na\\ud800me": "x"}'), 400, "UNKNOWN_PARAMETERS")
    assert snapshot(factory, settings) == before
    (row,) = log_rows(iredadmin)
    # Named (escaped), its value not shown: the endpoint does not declare it.
    assert row["msg"].isprintable() and "na\\ud800me=<hidden>" in row["msg"]


def test_accepted_unicode_text_is_stored_and_audited(world, iredadmin):
    client, factory = world
    name = "Zoë 😀 Ülker"
    assert client.put(f"/api/user/{USER}", json_body={"name": name}).status_code == 200
    assert user_entry(factory).get("cn") == [name]
    (row,) = log_rows(iredadmin)
    assert row["loglevel"] == "info" and f"name={name} => 200" in row["msg"]


# -- JSON shape -------------------------------------------------------------------------------

def test_deeply_nested_json_is_400_not_500(world, settings, iredadmin):
    client, factory = world
    before = snapshot(factory, settings)
    body = refused(put_json(client, f"/api/user/{USER}", "[" * 100000), 400, "INVALID_REQUEST")
    assert "not valid" in body["reason"]
    refused(put_json(client, f"/api/user/{USER}", '{"name": ' + "[" * 100000 + "]" * 100000 + "}"),
            400, "INVALID_REQUEST")
    # Deep, but within what the parser takes: still no string where one is expected.
    refused(put_json(client, f"/api/user/{USER}", '{"name": ' + "[" * 500 + '"x"' + "]" * 500 + "}"))
    refused(put_json(client, f"/api/user/{USER}", "[" * 500 + "]" * 500), 400, "INVALID_REQUEST")
    assert snapshot(factory, settings) == before
    assert all(r["loglevel"] == "error" for r in log_rows(iredadmin))


def test_object_where_a_string_is_expected(world, settings):
    client, factory = world
    before = snapshot(factory, settings)
    for body in ({"name": {"first": "A"}}, {"forwarding": [{"a": "b@c.test"}]}, {"quota": {"mb": 1}},
                 {"accountStatus": ["active", "disabled"]}):
        refused(client.put(f"/api/user/{USER}", json_body=body))
    assert snapshot(factory, settings) == before


@pytest.mark.servers
def test_audit_row_of_an_accepted_change_survives_a_narrow_log_column(request, tmp_path, directory,
                                                                     sqlite_templates):
    """A log table in latin1 (an old server's) cannot hold 😀: the change is
    accepted, so its row must be written all the same, the text escaped.
    (A 3-byte `utf8` table is handled by IredadminDB itself: U+FFFD.)"""
    url = request.getfixturevalue("_sql_url_mariadb")
    from iredldap.db.engine import make_engine
    from iredldap.db.iredadmin import IredadminDB

    engine = make_engine(url)

    @sa_event.listens_for(engine, "connect")
    def strict(dbapi_conn, _record):
        # As MySQL >= 5.7 and MariaDB >= 10.2 run by default: refuse, not mangle.
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")

    db = IredadminDB(engine)
    db.create_tables()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM log"))
        conn.execute(text("ALTER TABLE log CONVERT TO CHARACTER SET latin1"))
    try:
        settings = make_settings(tmp_path, sql_iredadmin_url=url)
        client, factory = build(settings, directory, db, sqlite_templates)
        assert client.put(f"/api/user/{USER}", json_body={"name": "Smile 😀"}).status_code == 200
        assert user_entry(factory).get("cn") == ["Smile 😀"]
        (row,) = log_rows(db)
        assert row["loglevel"] == "info" and "name=Smile \\U0001f600 => 200" in row["msg"], row
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM log"))
            conn.execute(text("ALTER TABLE log CONVERT TO CHARACTER SET utf8mb4"))
        engine.dispose()
