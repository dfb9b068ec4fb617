"""API tokens: Authorization: Bearer beside the cookie (iredldap.db.tokens).

What must hold: a token acts as its admin; a read-only token cannot write; a
domain-limited token gets 403 outside its domains (and for endpoints of
global admins); revocation takes effect at once; expired tokens are refused;
the database never holds a token in plain; `iredldap token` works.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, select, update

from iredldap.cli import main
from iredldap.db import tables as t
from iredldap.db.tokens import TokenStore

from .conftest import SUFFIX
from .support import ApiClient, BearerClient

ROOT = "root@admins.test"


def log_rows(db) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.log).order_by(t.log.c.id))]


@pytest.fixture
def make_token(api, app, settings):
    """POST /api/tokens as the global admin; returns (id, a client using the token)."""
    def make(**params) -> tuple[int, BearerClient]:
        r = api.post("/api/tokens", params)
        assert r.status_code == 201, r.text
        data = r.json["_data"]
        return data["id"], BearerClient(app, settings, data["token"])
    return make


@pytest.fixture
def domains(factory):
    factory.domain("a.test")
    factory.domain("b.test")
    factory.user("user@a.test")
    factory.user("user@b.test")


# -- create, use, list, revoke -------------------------------------------------------

def test_a_token_acts_as_its_admin_and_revocation_is_immediate(api, make_token, domains, iredadmin):
    token_id, bearer = make_token(name="ci")
    r = bearer.get("/api/domains", {"name_only": "yes"})
    assert r.status_code == 200, r.text
    assert r.json["_data"] == ["a.test", "b.test"]
    assert bearer.post("/api/domain/c.test", {"name": "By token"}).status_code == 201
    # The change is logged as the admin's, through the token.
    [row] = [r for r in log_rows(iredadmin) if r["domain"] == "c.test"]
    assert row["admin"] == ROOT and row["event"] == "create" and f"via token:{token_id}" in row["msg"]

    listed = api.get("/api/tokens").json["_data"]
    assert [(t["id"], t["admin"], t["name"], t["status"]) for t in listed] == [(token_id, ROOT, "ci", "active")]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert listed[0]["last_used"] is not None

    assert api.delete(f"/api/token/{token_id}").status_code == 200
    r = bearer.get("/api/domains")
    assert r.status_code == 401 and r.json["_msg"] == "LOGIN_REQUIRED"
    assert "revoked" in r.json["reason"]
    assert api.get(f"/api/token/{token_id}").json["_data"]["status"] == "revoked"
    assert api.delete("/api/token/999").status_code == 404


def test_database_holds_no_plain_token(api, make_token, iredadmin, settings):
    r = api.post("/api/tokens", {"name": "secret one"})
    token = r.json["_data"]["token"]
    assert token.startswith("irdl_") and len(token) > 40
    meta = MetaData()
    meta.reflect(iredadmin.engine)
    with iredadmin.engine.connect() as conn:
        everything = repr([conn.execute(select(table)).all() for table in meta.sorted_tables])
    assert token not in everything
    assert token[5:] not in everything
    # What is kept is a keyed hash.
    assert TokenStore(iredadmin, settings.secret_key).hash(token) in everything
    assert TokenStore(iredadmin, "another-secret-key-123").hash(token) not in everything
    # Shown once: no later answer has it.
    assert token not in api.get("/api/tokens").text
    assert token not in api.get(f"/api/token/{r.json['_data']['id']}").text


def test_unknown_or_malformed_tokens_are_401(app, settings, api, domains):
    for header in ("Bearer irdl_nope", "Bearer ", "bearer " + "x" * 300):
        r = ApiClient(app, settings).get("/api/domains", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
    # Another scheme is not ours: it is as good as nothing.
    r = ApiClient(app, settings).get("/api/domains", headers={"Authorization": "Basic cm9vdDpwdw=="})
    assert r.status_code == 401


def test_scheme_is_case_insensitive(app, settings, make_token):
    _, bearer = make_token()
    r = ApiClient(app, settings).get("/api/domains", headers={"Authorization": f"bEaReR {bearer.token}"})
    assert r.status_code == 200, r.text


# -- read-only ---------------------------------------------------------------------------

def test_read_only_token_cannot_write(make_token, domains, factory, iredadmin):
    token_id, bearer = make_token(read_only="yes")
    assert bearer.get("/api/domain/a.test").status_code == 200
    assert bearer.get("/api/user/user@a.test").status_code == 200
    before = factory.entry(factory.tree.domain("a.test")).attrs
    for method, path, params in (("PUT", "/api/domain/a.test", {"name": "Changed"}),
                                 ("POST", "/api/domain/new.test", {}),
                                 ("DELETE", "/api/user/user@a.test", None),
                                 ("POST", "/api/user/user@a.test/change_email/x@a.test", {}),
                                 ("POST", "/api/tokens", {}),
                                 ("PUT", "/api/spampolicy/global", {"spam_score": "5"})):
        r = bearer.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert "read-only" in r.json["reason"]
    assert factory.entry(factory.tree.domain("a.test")).attrs == before
    assert factory.entry(factory.tree.domain("new.test")) is None
    assert factory.entry(factory.tree.user("user@a.test")) is not None
    # Each refused attempt is in the audit log, under the admin, via the token.
    refused = [r for r in log_rows(iredadmin) if f"via token:{token_id}" in r["msg"]]
    assert len(refused) == 6 and {r["loglevel"] for r in refused} == {"error"}
    assert {r["admin"] for r in refused} == {ROOT}


# -- domain-limited ------------------------------------------------------------------------

def test_domain_limited_token_of_a_global_admin(make_token, domains, factory, app, settings):
    _, bearer = make_token(domains="a.test")
    assert bearer.get("/api/domain/a.test").status_code == 200
    assert bearer.put("/api/domain/a.test", {"name": "Mine"}).status_code == 200
    assert bearer.post("/api/user/new@a.test", {"password": "Str0ng#pass"}).status_code == 201
    assert bearer.get("/api/users/a.test", {"email_only": "yes"}).status_code == 200
    assert bearer.post("/api/throttle/a.test/inbound", {"max_msgs": "10", "period": "60"}).status_code < 300

    refused = [
        ("GET", "/api/domain/b.test", None), ("PUT", "/api/domain/b.test", {"name": "x"}),
        ("GET", "/api/domain/nowhere.test", None),
        ("POST", "/api/domain/c.test", {}),                   # creating domains: a global admin's right
        ("DELETE", "/api/domain/a.test", None),
        ("GET", "/api/user/user@b.test", None), ("POST", "/api/user/x@b.test", {"password": "Str0ng#pass"}),
        ("GET", "/api/users/b.test", None),
        ("POST", "/api/user/user@a.test/change_email/user2@b.test", {}),     # out of the domains
        ("GET", "/api/throttle/global/inbound", None), ("GET", "/api/throttle/b.test/inbound", None),
        ("GET", "/api/spampolicy/global", None),
        ("GET", f"/api/admin/{ROOT}", None), ("GET", "/api/tokens", None), ("POST", "/api/tokens", {}),
        ("GET", "/api/log", None),
        # A global admin's switches need an unrestricted token.
        ("PUT", "/api/domain/a.test", {"addService": "senderbcc"}),
    ]
    for method, path, params in refused:
        r = bearer.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
    assert factory.entry(factory.tree.domain("b.test")).first("cn") != "x"
    assert factory.entry(factory.tree.user("user@a.test")) is not None
    # Listing shows only the token's domains.
    r = bearer.get("/api/domains", {"name_only": "yes"})
    assert r.status_code == 200 and r.json["_data"] == ["a.test"], r.text
    # A list of a.test may not take members of b.test (they would be changed too).
    r = bearer.post("/api/maillist/list@a.test", {"members": "user@b.test"})
    assert r.status_code == 403, r.text
    assert bearer.post("/api/maillist/list@a.test", {"members": "user@a.test"}).status_code == 201


def test_domain_limited_token_of_a_normal_admin_is_the_intersection(app, settings, api, domains, factory):
    factory.domain("c.test")
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["a.test", "b.test"])
    r = api.post("/api/tokens", {"admin": "helper@admins.test", "domains": "b.test,c.test"})
    assert r.status_code == 201, r.text
    assert r.json["_data"]["domains"] == ["b.test", "c.test"]
    bearer = BearerClient(app, settings, r.json["_data"]["token"])
    assert bearer.get("/api/domain/b.test").status_code == 200
    assert bearer.get("/api/domain/a.test").status_code == 403     # the admin's, not the token's
    assert bearer.get("/api/domain/c.test").status_code == 403     # the token's, not the admin's
    assert bearer.get("/api/domains", {"name_only": "yes"}).json["_data"] == ["b.test"]


def test_token_follows_its_admin(api, app, settings, domains, factory, directory):
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["a.test"])
    r = api.post("/api/tokens", {"admin": "helper@admins.test"})
    bearer = BearerClient(app, settings, r.json["_data"]["token"])
    assert bearer.get("/api/domain/a.test").status_code == 200
    assert bearer.get("/api/domain/b.test").status_code == 403      # a normal admin's token
    assert bearer.get("/api/tokens").status_code == 403
    directory.modify(factory.tree.admin("helper@admins.test"), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})
    r = bearer.get("/api/domain/a.test")
    assert r.status_code == 401 and "no longer active" in r.json["reason"]


# -- expiry ------------------------------------------------------------------------------

def test_expired_token_is_refused(api, make_token, iredadmin, domains):
    token_id, bearer = make_token(expires_in_days="1")
    assert bearer.get("/api/domains").status_code == 200
    with iredadmin.engine.begin() as conn:
        conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id)
                     .values(expires=iredadmin.now() - timedelta(seconds=1)))
    r = bearer.get("/api/domains")
    assert r.status_code == 401 and "expired" in r.json["reason"]
    assert api.get(f"/api/token/{token_id}").json["_data"]["status"] == "expired"


def test_expiry_parameters(api, iredadmin):
    future = (datetime.utcnow() + timedelta(days=30)).replace(microsecond=0)
    r = api.post("/api/tokens", {"expires": future.isoformat() + "Z"})
    assert r.status_code == 201, r.text
    assert r.json["_data"]["expires"] == future.isoformat() + "+00:00"
    r = api.post("/api/tokens", {"expires": "2031-01-01T12:00:00+02:00"})
    assert r.json["_data"]["expires"] == "2031-01-01T10:00:00+00:00"
    for params, code in (({"expires": "2001-01-01"}, "INVALID_PARAMETER"),
                         ({"expires": "next week"}, "INVALID_PARAMETER"),
                         ({"expires": "2040-01-01", "expires_in_days": "3"}, "CONFLICTING_PARAMETERS"),
                         ({"expires_in_days": "0"}, "INVALID_PARAMETER")):
        r = api.post("/api/tokens", params)
        assert r.status_code == 400 and r.json["_msg"] == code, (params, r.text)
    r = api.post("/api/tokens", {"admin": "nobody@admins.test"})
    assert r.status_code == 404 and r.json["param"] == "admin"


# -- the store on every SQL backend --------------------------------------------------------

def test_token_store_on_each_database(iredadmin_db):
    store = TokenStore(iredadmin_db, "k" * 20)
    first, token = store.create(admin="a@x.test", name="n", read_only=True, domains=["y.test", "x.test"],
                                expires=datetime(2035, 1, 1, 0, 0, 0))
    second, _ = store.create(admin="b@x.test")
    grant = store.resolve(token)
    assert grant.id == first and grant.admin == "a@x.test" and grant.read_only
    assert grant.domains == frozenset({"x.test", "y.test"}) and grant.expires == datetime(2035, 1, 1)
    assert [r["id"] for r in store.list()] == [first, second]
    assert [r["id"] for r in store.list(admin="b@x.test")] == [second]
    assert store.list()[1]["domains"] is None
    assert store.revoke(first) and not store.revoke(12345)
    with pytest.raises(Exception) as info:
        store.resolve(token)
    assert "revoked" in str(info.value)


# -- the command -------------------------------------------------------------------------

@pytest.fixture
def cli_env(slapd_clean, tmp_path, settings):
    from iredldap.backends import tree_of
    from iredldap.directory.base import init_tree
    from iredldap.directory.connection import Directory
    from .support import Factory

    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    init_tree(directory, tree_of(settings))
    Factory(directory, settings).global_admin(ROOT, "R00t#secret")
    env = {
        "IREDLDAP_LDAP_URI": slapd_clean.uri,
        "IREDLDAP_LDAP_BIND_DN": slapd_clean.root_dn,
        "IREDLDAP_LDAP_BIND_PASSWORD": slapd_clean.root_password,
        "IREDLDAP_LDAP_SUFFIX": SUFFIX,
        "IREDLDAP_SQL_IREDADMIN_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
        "IREDLDAP_SQL_AMAVISD_URL": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
        "IREDLDAP_SQL_IREDAPD_URL": f"sqlite:///{tmp_path / 'iredapd.sqlite'}",
        "IREDLDAP_SECRET_KEY": "x" * 20,
    }
    yield env
    directory.close()


def test_cli_token_create_list_revoke(cli_env, tmp_path):
    from iredldap.web.app import create_app
    from iredldap.config import Settings

    def run(*args):
        return CliRunner().invoke(main, list(args), env=cli_env, catch_exceptions=False)

    assert run("init-sql").exit_code == 0
    created = run("token", "create", ROOT, "--name", "backup", "--read-only", "--domains", "a.test", "--days", "7")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("irdl_")

    listed = run("token", "list")
    assert listed.exit_code == 0, listed.output
    assert "backup" in listed.output and "read-only a.test" in listed.output and token not in listed.output

    settings = Settings.from_sources(environ=cli_env)
    client = ApiClient(create_app(settings), settings)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/domain/a.test", headers=headers).status_code == 404     # allowed; no such domain
    assert client.get("/api/domain/b.test", headers=headers).status_code == 403
    assert client.put("/api/domain/a.test", {"name": "x"}, headers=headers).status_code == 403

    token_id = listed.output.splitlines()[1].split()[0]
    revoked = run("token", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/domain/a.test", headers=headers).status_code == 401
    assert "backup" not in run("token", "list").output
    assert "revoked" in run("token", "list", "--all").output
    assert run("token", "revoke", "999").exit_code == 1
    assert run("token", "create", "nobody@admins.test").exit_code == 1
    # Both changes are in the activity log (with the refused PUT between them).
    import sqlalchemy
    engine = sqlalchemy.create_engine(cli_env["IREDLDAP_SQL_IREDADMIN_URL"])
    with engine.connect() as conn:
        rows = [(r.admin.partition(":")[0], r.event, r.loglevel)
                for r in conn.execute(select(t.log).order_by(t.log.c.id))]
    assert rows == [("cli", "grant", "info"), (ROOT, "update", "error"), ("cli", "revoke", "info")]


def test_a_reseller_token_creates_only_listed_domains(app, settings, api, factory):
    factory.normal_admin("reseller@admins.test", "R3seller#pw", settings=["create_new_domains:yes"])
    r = api.post("/api/tokens", {"admin": "reseller@admins.test", "domains": "new.test"})
    bearer = BearerClient(app, settings, r.json["_data"]["token"])
    assert bearer.post("/api/domain/other.test", {}).status_code == 403
    assert factory.entry(factory.tree.domain("other.test")) is None
    r = bearer.post("/api/domain/new.test", {})
    assert r.status_code == 201, r.text
    assert "reseller@admins.test" in factory.entry(factory.tree.domain("new.test")).get("domainAdmin")
    assert bearer.get("/api/domains", {"name_only": "yes"}).json["_data"] == ["new.test"]


# -- tokens end with their admin ---------------------------------------------------------

def _token_revoked(iredadmin, token_id: int) -> bool:
    with iredadmin.engine.connect() as conn:
        return conn.execute(select(t.api_tokens.c.revoked).where(t.api_tokens.c.id == token_id)).scalar_one() \
            is not None


@pytest.mark.parametrize("how", ["standalone deleted", "role removed", "domain deleted"])
def test_an_admin_that_goes_loses_its_tokens(api, make_token, domains, factory, iredadmin, how):
    """DELETE /api/admin of a standalone admin or of a mail user that is an
    admin (which keeps its mailbox), and deleting the domain of a mail user
    that is an admin: the account's tokens are revoked, others' stay."""
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["a.test"])
    assert api.put("/api/domain/admins/a.test", {"addAdmin": "user@a.test"}).status_code == 200
    admin = {"standalone deleted": "helper@admins.test"}.get(how, "user@a.test")
    other = "user@a.test" if admin == "helper@admins.test" else "helper@admins.test"
    gone_id, gone = make_token(admin=admin)
    kept_id, kept = make_token(admin=other)
    if how == "domain deleted":
        assert api.delete("/api/domain/a.test").status_code == 200
    else:
        assert api.delete(f"/api/admin/{admin}").status_code == 200
    assert _token_revoked(iredadmin, gone_id) and not _token_revoked(iredadmin, kept_id)
    assert gone.get("/api/domains").status_code == 401
    if how == "role removed":
        # Still a mail user; made an admin again, the old token stays dead.
        assert factory.entry(factory.tree.user(admin)) is not None
        assert api.put("/api/domain/admins/a.test", {"addAdmin": admin}).status_code == 200
        assert gone.get("/api/domains").status_code == 401


@pytest.mark.parametrize("path", ["/api/user/user@a.test", "/api/admin/user@a.test",
                                  "/api/user/user@a.test/change_email/renamed@a.test"])
def test_tokens_stay_when_the_removal_is_undone(api, make_token, domains, factory, iredadmin, monkeypatch, path):
    """The revocation is part of the change: a database that refuses it
    leaves the account (and its admin role) as it was."""
    from iredldap.errors import DatabaseUnavailable

    assert api.put("/api/domain/admins/a.test", {"addAdmin": "user@a.test"}).status_code == 200
    token_id, bearer = make_token(admin="user@a.test")
    before = factory.entry(factory.tree.user("user@a.test"))

    def down(*args, **kwargs):
        raise DatabaseUnavailable("simulated")
    monkeypatch.setattr(iredadmin, "revoke_tokens_of", down)
    method = "POST" if "change_email" in path else "DELETE"
    r = api.request(method, path)
    assert r.status_code == 503 and r.json["_msg"] == "DATABASE_UNAVAILABLE", r.text
    monkeypatch.undo()
    # The same entry again (an undone rename re-adds it: value order may differ).
    def values(entry):
        return {k.lower(): sorted(v) for k, v in entry.attrs.items()}
    assert values(factory.entry(factory.tree.user("user@a.test"))) == values(before)
    assert factory.entry(factory.tree.user("renamed@a.test")) is None
    assert not _token_revoked(iredadmin, token_id)
    assert bearer.get("/api/users/a.test").status_code == 200
