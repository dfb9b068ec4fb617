"""The audit log (iredldap.web.audit) and GET /api/log.

Every write endpoint of the access table leaves exactly one row in iRedAdmin's
`log` table, with the right admin, domain and account, and no secret in it:
the endpoints are generated from `web_app.RULES`, so a new one is covered the
moment it gets its rule.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from iredldap.web import app as web_app
from iredldap.web.audit import AuditLog, event_of
from iredldap.db import tables as t
from iredldap.errors import DatabaseUnavailable

from .support import ApiClient
from .support import rows as table_rows

ROOT = "root@admins.test"
SECRET = "Sup3r#Secret-value-42"
HASH = "{SSHA512}c2VjcmV0LWhhc2gtdmFsdWUtMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4"

SAMPLES = {
    "domain": "own.test",
    "mail": "user@own.test",
    "new_mail": "renamed@own.test",
    "days": "7",
    "direction": "inbound",
    "listname": "whitelist",
    "token_id": "1",
}
ACCOUNTS = ("user@own.test", "own.test", "global")
SELF_LOGGING = {"/api/login", "/api/logout"}

WRITES = [(template, method, account)
          for (template, method), _ in sorted(web_app.RULES.items())
          if method in ("POST", "PUT", "DELETE") and template not in SELF_LOGGING
          for account in (ACCOUNTS if "{account}" in template else (None,))]


def concrete(template: str, account: str | None) -> str:
    values = {**SAMPLES, "account": account or ""}

    def fill(match):
        name = match.group(1)
        assert name in values, f"add a sample value for {{{name}}} in tests/test_audit.py"
        return values[name]
    return re.sub(r"\{(\w+)\}", fill, template)


def expected_subject(template: str, account: str | None) -> tuple[str, str]:
    """(domain, username) the row must name."""
    if "{mail}" in template:
        admin_route = template.startswith(("/api/admin/", "/api/verify_password/admin/"))
        return ("" if admin_route else "own.test"), "user@own.test"
    if "{account}" in template:
        return {"user@own.test": ("own.test", "user@own.test"), "own.test": ("own.test", ""),
                "global": ("", "")}[account]
    if "{domain}" in template:
        return "own.test", ""
    return "", ""


def rows(db) -> list[dict]:
    """The log table's rows, oldest first."""
    return table_rows(db, t.log, t.log.c.id)


@pytest.fixture
def world(api, factory):
    factory.domain("own.test")
    factory.user("user@own.test")
    assert api.post("/api/alias/alias@own.test", {"members": "user@own.test"}).status_code == 201
    assert api.post("/api/tokens", {"name": "t"}).status_code == 201
    return api


@pytest.mark.parametrize("backend", ["mock"], indirect=True)
@pytest.mark.parametrize("template,method,account", WRITES,
                         ids=[f"{m} {t} {a or ''}".strip() for t, m, a in WRITES])
def test_every_write_endpoint_leaves_one_row_without_secrets(template, method, account, world, iredadmin):
    path = concrete(template, account)
    before = rows(iredadmin)
    # password and password_hash: accepted by some endpoints, unknown to others (then a 400) --
    # either way the row must name them without their values.
    result = world.request(method, path, {"password": SECRET, "password_hash": HASH})
    new = rows(iredadmin)[len(before):]
    assert len(new) == 1, (method, path, result.status_code, new)
    row = new[0]
    assert row["admin"] == ROOT
    assert row["ip"] == "127.0.0.1"
    assert (row["domain"], row["username"]) == expected_subject(template, account), row
    assert row["msg"].startswith(f"[API] {method} {path} ")
    assert f"=> {result.status_code}" in row["msg"]
    assert row["loglevel"] == ("info" if result.status_code < 400 else "error")
    assert row["event"] in ("create", "update", "delete", "active", "disable", "grant", "revoke", "verify")
    flat = repr(row)
    assert SECRET not in flat and HASH not in flat and HASH[9:40] not in flat
    assert "password=<hidden>" in row["msg"] and "password_hash=<hidden>" in row["msg"]


def test_a_successful_create_and_update(api, factory, iredadmin):
    factory.domain("x.test")
    r = api.post("/api/user/ann@x.test", {"password": SECRET, "name": "Ann", "quota": "1024"})
    assert r.status_code == 201, r.text
    r = api.put("/api/user/ann@x.test", {"password_hash": HASH})
    assert r.status_code == 200, r.text
    r = api.put("/api/user/ann@x.test", {"accountStatus": "disabled"})
    assert r.status_code == 200, r.text
    r = api.put("/api/user/ann@x.test", {"accountStatus": "active"})
    assert r.status_code == 200, r.text
    r = api.delete("/api/user/ann@x.test")
    assert r.status_code == 200, r.text
    found = [(r["event"], r["domain"], r["username"], r["loglevel"]) for r in rows(iredadmin) if r["event"] != "login"]
    assert found == [("create", "x.test", "ann@x.test", "info"), ("update", "x.test", "ann@x.test", "info"),
                     ("disable", "x.test", "ann@x.test", "info"), ("active", "x.test", "ann@x.test", "info"),
                     ("delete", "x.test", "ann@x.test", "info")]
    create = [r for r in rows(iredadmin) if r["event"] == "create"][0]
    assert create["msg"] == ("[API] POST /api/user/ann@x.test name=Ann, password=<hidden>, quota=1024 => 201")
    assert SECRET not in repr(rows(iredadmin)) and HASH not in repr(rows(iredadmin))


def test_refusals_are_logged_but_not_anonymous_calls(app, settings, api, factory, iredadmin):
    factory.domain("x.test")
    factory.domain("y.test")
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["x.test"])
    helper = ApiClient(app, settings)
    helper.login("helper@admins.test", "H3lper#pw")
    count = len(rows(iredadmin))
    assert helper.put("/api/domain/y.test", {"name": "Mine"}).status_code == 403
    [row] = rows(iredadmin)[count:]
    assert (row["admin"], row["domain"], row["event"], row["loglevel"]) == \
        ("helper@admins.test", "y.test", "update", "error")
    assert "=> 403 NOT_AUTHORIZED" in row["msg"]
    # Nobody to name: nothing written (a flood of them would fill the table).
    count = len(rows(iredadmin))
    anonymous = ApiClient(app, settings)
    assert anonymous.put("/api/domain/x.test", {"name": "x"}).status_code == 401
    assert anonymous.request("PUT", "/api/domain/x.test", {"name": "x"},
                             headers={"Authorization": "Bearer irdl_wrong"}).status_code == 401
    # Reads are not logged.
    assert api.get("/api/domain/x.test").status_code == 200
    assert len(rows(iredadmin)) == count


def test_change_email_names_both_addresses(api, factory, iredadmin):
    factory.domain("x.test")
    factory.user("old@x.test")
    assert api.post("/api/user/old@x.test/change_email/new@x.test").status_code == 200
    [row] = [r for r in rows(iredadmin) if r["event"] != "login"]
    assert (row["event"], row["domain"], row["username"]) == ("update", "x.test", "old@x.test")
    assert "/change_email/new@x.test" in row["msg"]


def test_a_log_that_cannot_be_written_does_not_undo_the_answer(api, factory, iredadmin, monkeypatch, caplog):
    factory.domain("x.test")

    def down(**row):
        raise DatabaseUnavailable("database unavailable: test")
    monkeypatch.setattr(iredadmin, "add_log", down)
    r = api.put("/api/domain/x.test", {"name": "Still done"})
    assert r.status_code == 200, r.text
    assert factory.entry(factory.tree.domain("x.test")).first("cn") == "Still done"
    assert "audit log not written" in caplog.text and "Still done" in caplog.text


def test_secret_parameters_come_from_the_declarations(app):
    audit = AuditLog(None)      # after create_app: every declaration is loaded
    for name in ("password", "password_hash"):
        assert audit.is_secret(name), name
    # Declared and not secret: values are shown.
    for name in ("name", "quota", "minPasswordLength", "members", "accountStatus"):
        assert not audit.is_secret(name), name
    # Not declared anywhere: judged by the name.
    for name in ("userPassword", "passwd", "api_token", "secretKey"):
        assert audit.is_secret(name), name
    assert not audit.is_secret("colour")


def test_event_names():
    assert event_of("POST", "/api/user/{mail}", {}) == "create"
    assert event_of("POST", "/api/user/{mail}/change_email/{new_mail}", {}) == "update"
    assert event_of("POST", "/api/throttle/{account}/{direction}", {}) == "update"
    assert event_of("PUT", "/api/domain/{domain}", {"accountStatus": "disable"}) == "disable"
    assert event_of("PUT", "/api/domain/{domain}", {"accountStatus": "enable", "name": "x"}) == "update"
    assert event_of("DELETE", "/api/alias/{mail}", {}) == "delete"
    assert event_of("POST", "/api/tokens", {}) == "grant"
    assert event_of("DELETE", "/api/token/{token_id}", {}) == "revoke"


# -- GET /api/log ---------------------------------------------------------------------

@pytest.fixture
def logged(iredadmin):
    """Rows at known times: three admins, two domains, a login."""
    now = iredadmin.now()
    data = [
        (now - timedelta(days=3), "a@admins.test", "x.test", "u1@x.test", "create"),
        (now - timedelta(days=2), "a@admins.test", "y.test", "", "update"),
        (now - timedelta(days=1), "b@admins.test", "x.test", "u2@x.test", "delete"),
        (now - timedelta(hours=1), "b@admins.test", "", "", "login"),
    ]
    with iredadmin.engine.begin() as conn:
        for when, admin, domain, username, event in data:
            conn.execute(insert(t.log).values(timestamp=when, admin=admin, ip="192.0.2.1", domain=domain,
                                              username=username, event=event, loglevel="info", msg="m"))
    return now


def test_read_the_log_with_filters_and_paging(api, logged, iredadmin):
    r = api.get("/api/log")
    assert r.status_code == 200, r.text
    body = r.json
    # The rows above plus the test admin's own login, newest first.
    assert body["_total"] == 5 and body["_page"] == 1 and body["_page_size"] == 50
    assert [row["event"] for row in body["_data"]] == ["login", "login", "delete", "update", "create"]
    assert body["_data"][0]["admin"] == ROOT and body["_data"][0]["timestamp"].endswith("+00:00")

    def events(**query):
        r = api.get("/api/log", query)
        assert r.status_code == 200, r.text
        return [row["event"] for row in r.json["_data"]], r.json["_total"]

    assert events(admin="A@admins.test") == (["update", "create"], 2)
    assert events(domain="x.test") == (["delete", "create"], 2)
    assert events(username="u2@x.test") == (["delete"], 1)
    assert events(event="login") == (["login", "login"], 2)
    day = (logged - timedelta(days=2)).date().isoformat()
    assert events(**{"from": day, "to": day}) == (["update"], 1)
    since = (logged - timedelta(days=1, minutes=1)).isoformat() + "Z"
    assert events(**{"from": since})[1] == 3
    assert events(**{"to": since})[1] == 2
    assert events(page="2", page_size="2") == (["delete", "update"], 5)
    assert events(page="3", page_size="2") == (["create"], 5)
    assert events(page="4", page_size="2") == ([], 5)


def test_log_parameters_are_checked(api):
    for query, code in (({"from": "yesterday"}, "INVALID_PARAMETER"), ({"page": "0"}, "INVALID_PARAMETER"),
                        ({"page_size": "5000"}, "INVALID_PARAMETER"), ({"colour": "red"}, "UNKNOWN_PARAMETERS"),
                        ({"from": "2030-01-02", "to": "2030-01-01"}, "INVALID_PARAMETER")):
        r = api.get("/api/log", query)
        assert r.status_code == 400 and r.json["_msg"] == code, (query, r.text)


def test_only_global_admins_read_the_log(app, settings, factory, api):
    factory.domain("x.test")
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["x.test"])
    helper = ApiClient(app, settings)
    helper.login("helper@admins.test", "H3lper#pw")
    assert helper.get("/api/log").status_code == 403
    assert ApiClient(app, settings).get("/api/log").status_code == 401


@pytest.mark.parametrize("how", ["form", "json", "query"])
def test_parameters_the_endpoint_does_not_declare_are_named_without_values(api, world, iredadmin, how):
    """A misspelt password (`pw`, `new_password1`), a name other endpoints
    declare but this one does not (`members`, of aliases and lists), and an
    object under a declared name: the row names them and holds none of their
    values, whether they came in a form, a JSON body or the query string."""
    secret = "Sup3r#Secret-value"
    params = {"pw": secret, "members": secret + "-members", "new_password1": secret + "1"}
    if how == "form":
        r = api.put("/api/user/user@own.test", params)
    elif how == "json":
        r = api.request("PUT", "/api/user/user@own.test", json_body={**params, "name": {"password": secret}})
    else:
        r = api.request("PUT", "/api/user/user@own.test", {}, query=params)
    assert r.status_code == 400 and r.json["_msg"] == "UNKNOWN_PARAMETERS", r.text
    row = rows(iredadmin)[-1]
    assert row["msg"].startswith("[API] PUT /api/user/user@own.test "), row["msg"]
    assert "pw=<hidden>" in row["msg"] and "members=<hidden>" in row["msg"], row["msg"]
    assert "new_password1=<hidden>" in row["msg"], row["msg"]
    assert secret not in repr(row), row["msg"]


def test_declared_values_are_still_shown_beside_undeclared_ones(api, world, iredadmin):
    r = api.put("/api/user/user@own.test", {"name": "Ann", "colour": "red"})
    assert r.status_code == 400, r.text
    row = rows(iredadmin)[-1]
    assert "name=Ann" in row["msg"] and "colour=<hidden>" in row["msg"], row["msg"]
    assert "red" not in row["msg"]
