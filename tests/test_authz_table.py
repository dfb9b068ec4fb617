"""Every endpoint in the access table, called by every kind of caller.

The cases are generated from `iredldap.web.app.RULES` itself, so a new endpoint
is covered the moment it gets its rule.  Where a call is refused, nothing may
have changed: the whole directory and the SQL tables are compared before and
after.
"""

from __future__ import annotations

import re

import pytest

from iredldap.backends import tree_of
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.base import init_tree
from iredldap.directory.connection import SUBTREE
from iredldap.web import app as web_app
from iredldap.web.authz import Rule

from .conftest import SavedState, build_app, make_settings, mock_directory, sqlite_copy
from .support import ApiClient, Factory, every_row

PW = "Secr3t#pass"

# A value for each URL placeholder: objects in the domain the normal admin manages.
SAMPLES = {
    "domain": "own.test",
    "mail": "user@own.test",
    "new_mail": "renamed@own.test",
    "days": "7",
    "account": "user@own.test",
    "direction": "inbound",
    "listname": "whitelist",
    "token_id": "1",
    "name": "swagger-ui.css",
}
# `{account}` is global, a domain or an address: each is tried.
ACCOUNTS = ("user@own.test", "own.test", "global")


def concrete(template: str, **overrides: str) -> str:
    values = {**SAMPLES, **overrides}

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise AssertionError(f"add a sample value for {{{name}}} in tests/test_authz_table.py")
        return values[name]
    return re.sub(r"\{(\w+)\}", fill, template)


# Mail users of own.test holding rights beyond own.test's normal admin.
ABOVE = ("boss@own.test", "coadmin@own.test")

CASES = [(template, method, rule, account)
         for (template, method), rule in sorted(web_app.RULES.items())
         for account in (ACCOUNTS if "{account}" in template else (None,))]


@pytest.fixture(params=["mock"])
def backend(request) -> str:
    """Access rules do not depend on the directory server: the fast one suffices here."""
    return request.param


@pytest.fixture(scope="module")
def saved_world(tmp_path_factory, sqlite_templates):
    """The world, built once for the module: each test gets its own copy (`world`)."""
    settings = make_settings(tmp_path_factory.mktemp("authz-world"))
    directory = mock_directory()
    init_tree(directory, tree_of(settings))
    sqlite_copy(sqlite_templates, "iredadmin", settings.sql_iredadmin_url)
    app = build_app(settings, directory, IredadminDB(make_engine(settings.sql_iredadmin_url)), sqlite_templates)
    factory = Factory(directory, settings)
    api = ApiClient(app, settings)
    api.login(*factory.global_admin("root@admins.test", "R00t#secret"))
    clients = build_world(app, settings, factory, api, directory)
    saved = SavedState(directory, settings), {role: client.cookie for role, client in clients.items()}
    directory.close()
    yield saved
    saved[0].close()


@pytest.fixture
def world(saved_world, settings, directory, request):
    """A client per kind of caller, on a copy of the saved world (sessions included)."""
    state, cookies = saved_world
    state.restore(directory, settings, over=True)
    app = request.getfixturevalue("app")
    clients = {}
    for role, cookie in cookies.items():
        clients[role] = ApiClient(app, settings)
        clients[role].cookie = cookie
    return clients


def build_world(app, settings, factory, api, directory):
    """Two customers, their admins, a disabled admin, and objects to act on."""
    factory.domain("own.test")
    factory.domain("other.test")
    for mail in ("user@own.test", "user@other.test"):
        assert api.post(f"/api/user/{mail}", {"password": PW}).status_code == 201
    api.post("/api/alias/user-alias@own.test", {"members": "user@own.test"})
    # Accounts in own.test above its normal admin: a global admin and a co-admin of other.test.
    for mail in ABOVE:
        assert api.post(f"/api/user/{mail}", {"password": PW}).status_code == 201
    assert api.put("/api/user/boss@own.test", {"isGlobalAdmin": "yes"}).status_code == 200
    assert api.put("/api/domain/admins/other.test", {"addAdmin": "coadmin@own.test"}).status_code == 200
    assert api.put("/api/domain/admins/own.test", {"addAdmin": "coadmin@own.test"}).status_code == 200
    factory.normal_admin("own@admins.test", "0wn#Admin1", domains=["own.test"])
    factory.normal_admin("other@admins.test", "0ther#Admin1", domains=["other.test"])
    factory.normal_admin("gone@admins.test", "G0ne#Admin1", domains=["own.test"])
    clients = {"global": api}
    for role, (mail, pw) in {"own": ("own@admins.test", "0wn#Admin1"),
                             "other": ("other@admins.test", "0ther#Admin1"),
                             "disabled": ("gone@admins.test", "G0ne#Admin1")}.items():
        client = ApiClient(app, settings)
        client.login(mail, pw)
        clients[role] = client
    directory.modify(factory.tree.admin("gone@admins.test"), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})
    clients["anonymous"] = ApiClient(app, settings)
    return clients


@pytest.fixture
def databases(iredadmin, settings, _sql_engines) -> dict:
    """The three databases' engines; the policy ones from the session's
    engines by URL (fixtures_sql): a new engine per test would connect and
    compile every snapshot's statements afresh."""
    policy = {}
    for name, url in (("amavisd", settings.sql_amavisd_url), ("iredapd", settings.sql_iredapd_url)):
        if url not in _sql_engines:
            _sql_engines[url] = make_engine(url)
        policy[name] = _sql_engines[url]
    return {"iredadmin": iredadmin.engine, **policy}


def snapshot(factory, databases):
    entries = {e.dn.lower(): {k.lower(): sorted(v) for k, v in e.attrs.items()
                              if k.lower() not in ("modifytimestamp", "entrycsn")}
               for e in factory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE)}
    rows = {}
    for name, engine in databases.items():
        # (the refusal itself may be logged; sessions are touched on use)
        rows.update({f"{name}.{table}": found for table, found in every_row(engine, skip=("log", "sessions")).items()})
    return entries, rows


def expected(rule: Rule, role: str, account: str | None = None) -> str:
    """'allowed', or the status a refusal must have."""
    if rule is Rule.PUBLIC:
        return "allowed"
    if role in ("anonymous", "disabled"):
        return "401"
    if role == "global":
        return "allowed"
    if rule is Rule.LOGGED_IN:
        return "allowed"
    if role == "own" and rule is Rule.ACCOUNT:
        return "403" if account == "global" else "allowed"
    if role == "own" and rule is Rule.ACCOUNT_CHANGE:
        # own.test holds accounts above its normal admin (ABOVE): the domain's
        # policies reach them, as DOMAIN_CHANGE.
        return "403" if account in ("global", SAMPLES["domain"]) else "allowed"
    if role == "own" and rule in (Rule.DOMAIN, Rule.MAIL_DOMAIN, Rule.MAIL_ACCOUNT):
        return "allowed"
    # DOMAIN_CHANGE: own.test holds accounts above its normal admin.
    return "403"


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {t} {a or ''}".strip() for t, m, _, a in CASES])
def test_every_endpoint_for_every_caller(case, world, factory, databases):
    template, method, rule, account = case
    path = concrete(template, **({"account": account} if account else {}))
    # One snapshot before the refusals: each refusal must leave it as it was
    # (so what one refusal leaves is what the next one starts from).
    before = snapshot(factory, databases)
    for role in ("anonymous", "disabled", "other", "own", "global"):
        want = expected(rule, role, account)
        if want == "allowed":
            continue  # refusals only: an allowed call may legitimately change things
        client = world[role]
        body = {} if method in ("POST", "PUT") else None
        result = client.request(method, path, body)
        assert str(result.status_code) == want, (role, method, path, result.text)
        assert result.json["_success"] is False
        assert snapshot(factory, databases) == before, (role, method, path)
    # And the callers who may, get past the access check.
    for role in ("own", "global"):
        if expected(rule, role, account) != "allowed" or (template, method) == ("/api/logout", "POST"):
            continue
        result = world[role].request(method, path, {} if method in ("POST", "PUT") else None)
        assert result.status_code not in (401, 403), (role, method, path, result.text)


ABOVE_CASES = [(template, method, target) for (template, method), rule in sorted(web_app.RULES.items())
               if rule in (Rule.MAIL_ACCOUNT, Rule.ACCOUNT_CHANGE) for target in ABOVE]


@pytest.mark.parametrize("case", ABOVE_CASES, ids=[f"{m} {t} {a}" for t, m, a in ABOVE_CASES])
def test_accounts_above_a_normal_admin_are_out_of_its_reach(case, world, factory, databases):
    """MAIL_ACCOUNT and ACCOUNT_CHANGE routes on a global admin and on a co-admin of another
    domain, both mail users of the normal admin's own domain."""
    template, method, target = case
    path = concrete(template, mail=target, account=target)
    before = snapshot(factory, databases)
    result = world["own"].request(method, path, {} if method in ("POST", "PUT") else None)
    assert result.status_code == 403 and result.json["_msg"] == "NOT_AUTHORIZED", result.text
    assert target in result.json["reason"]
    assert snapshot(factory, databases) == before
    result = world["global"].request(method, path, {} if method in ("POST", "PUT") else None)
    assert result.status_code not in (401, 403), result.text
