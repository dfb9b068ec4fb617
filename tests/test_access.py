"""Who reaches the API at all: client restriction, proxies, the API switch, the URL
prefix, login required on every route, the access table, and normal admins."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from iredldap.web import authz
from iredldap.web import app as web_app
from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.db import tables as t
from iredldap.directory.admins import Principal
from iredldap.errors import LoginRequired, NotAuthorized

from .conftest import make_settings
from .support import ApiClient, assert_error, rows


@pytest.fixture
def make_client(tmp_path, directory, iredadmin):
    """An app with extra settings on the shared directory and database."""
    def make(**overrides) -> ApiClient:
        settings = make_settings(tmp_path, **overrides)
        return ApiClient(create_app(settings, Backends(directory=directory, iredadmin=iredadmin)), settings)
    return make


# -- RESTRICT_API_ACCESS ----------------------------------------------------------

CLIENTS = "192.0.2.10, 198.51.100.0/24, 2001:db8::/32"


@pytest.mark.parametrize("address", ["203.0.113.5", "192.0.2.11", "198.51.101.1", "2001:db9::1", "127.0.0.1"])
def test_client_outside_the_list_is_refused(address, make_client, global_admin, iredadmin):
    client = make_client(restrict_api_access="yes", restful_api_clients=CLIENTS)

    assert_error(client.post("/api/login", {"username": global_admin[0], "password": global_admin[1]},
                             remote_addr=address), 403, "NOT_AUTHORIZED")
    assert_error(client.get("/api/domains", remote_addr=address), 403, "NOT_AUTHORIZED")
    # Refused before the login code ran: nothing recorded.
    assert client.cookie is None
    assert rows(iredadmin, t.sessions) == []
    assert rows(iredadmin, t.log) == []


@pytest.mark.parametrize("address", ["192.0.2.10", "198.51.100.1", "198.51.100.254", "2001:db8::1"])
def test_client_inside_the_list_works(address, make_client, global_admin, iredadmin):
    client = make_client(restrict_api_access="yes", restful_api_clients=CLIENTS)
    client.remote_addr = address

    client.login(*global_admin)

    assert client.get("/api/domains").status_code == 200
    assert [r["ip"] for r in rows(iredadmin, t.log)] == [address]


def test_a_session_does_not_bypass_the_restriction(make_client, global_admin):
    client = make_client(restrict_api_access="yes", restful_api_clients=CLIENTS)
    client.remote_addr = "192.0.2.10"
    client.login(*global_admin)
    assert_error(client.get("/api/domains", remote_addr="203.0.113.5"), 403, "NOT_AUTHORIZED")


# -- X-Forwarded-For --------------------------------------------------------------

PROXY = "10.0.0.1"


@pytest.fixture
def behind_proxy(make_client):
    return make_client(restrict_api_access="yes", restful_api_clients="192.0.2.0/24",
                       trusted_proxies=f"{PROXY}, 10.1.0.0/16")


def xff(value: str) -> dict:
    return {"X-Forwarded-For": value}


def test_forwarded_client_is_judged_when_the_proxy_is_trusted(behind_proxy, global_admin, iredadmin):
    result = behind_proxy.post("/api/login", {"username": global_admin[0], "password": global_admin[1]},
                               headers=xff("192.0.2.5"), remote_addr=PROXY)
    assert result.status_code == 200, result.text
    [row] = rows(iredadmin, t.log)
    assert row["ip"] == "192.0.2.5"
    assert_error(behind_proxy.get("/api/domains", headers=xff("203.0.113.9"), remote_addr=PROXY),
                 403, "NOT_AUTHORIZED")
    # Two trusted proxies in a row: the client is the last untrusted hop.
    ok = behind_proxy.get("/api/domains", headers=xff("192.0.2.5, 10.1.2.3"), remote_addr=PROXY)
    assert ok.status_code == 200, ok.text


def test_spoofed_forwarded_for_is_ignored(behind_proxy, global_admin, iredadmin):
    # Directly from outside, claiming to be an allowed client.
    assert_error(behind_proxy.post("/api/login", {"username": global_admin[0], "password": global_admin[1]},
                                   headers=xff("192.0.2.5"), remote_addr="203.0.113.9"), 403, "NOT_AUTHORIZED")
    # Through the proxy, with a forged first hop: the proxy appended the real address.
    assert_error(behind_proxy.get("/api/domains", headers=xff("192.0.2.5, 203.0.113.9"), remote_addr=PROXY),
                 403, "NOT_AUTHORIZED")
    assert rows(iredadmin, t.log) == []


def test_forwarded_for_not_believed_without_trusted_proxies(make_client, global_admin, iredadmin):
    client = make_client()
    client.post("/api/login", {"username": global_admin[0], "password": "wrong#pw"},
                headers=xff("192.0.2.5"), remote_addr="203.0.113.9")
    [row] = rows(iredadmin, t.log)
    assert row["ip"] == "203.0.113.9"


def test_failed_logins_counted_per_forwarded_client(make_client, global_admin, factory):
    client = make_client(trusted_proxies=PROXY, login_max_failures=2)
    other = factory.global_admin("other@admins.test", "0ther#secret")
    for _ in range(2):
        client.post("/api/login", {"username": global_admin[0], "password": "wrong#pw"},
                    headers=xff("198.51.100.1"), remote_addr=PROXY)
    right = {"username": global_admin[0], "password": global_admin[1]}
    assert_error(client.post("/api/login", right, headers=xff("198.51.100.1"), remote_addr=PROXY),
                 429, "TOO_MANY_LOGIN_FAILURES")
    # Another client behind the same proxy is not locked out (another admin: the
    # guessed one is slowed on every address it has not logged in from).
    other_right = {"username": other[0], "password": other[1]}
    assert client.post("/api/login", other_right, headers=xff("198.51.100.2"), remote_addr=PROXY).status_code == 200
    assert_error(client.post("/api/login", right, headers=xff("198.51.100.2"), remote_addr=PROXY),
                 429, "TOO_MANY_LOGIN_FAILURES")


# -- ENABLE_RESTFUL_API and URL_PREFIX -----------------------------------------------

def test_api_switched_off_answers_404(make_client, global_admin, iredadmin):
    client = make_client(enable_restful_api="no")
    for method, path in (("POST", "/api/login"), ("GET", "/api/domains"), ("GET", "/api/domain/x.test"),
                         ("GET", "/api"), ("GET", "/api/no-such-thing")):
        params = {"username": global_admin[0], "password": global_admin[1]} if path == "/api/login" else None
        assert_error(client.request(method, path, params), 404, "NOT_FOUND")
    assert client.cookie is None
    assert rows(iredadmin, t.sessions) == [] and rows(iredadmin, t.log) == []


def test_url_prefix(make_client, global_admin, factory):
    factory.domain("x.test")
    client = make_client(url_prefix="/iredadmin")

    client.login(*global_admin)         # ApiClient prepends URL_PREFIX: /iredadmin/api/login
    result = client.get("/api/domains", {"name_only": "yes"})
    assert result.status_code == 200 and result.json["_data"] == ["x.test"]
    assert client.get("/api/domain/x.test").status_code == 200

    cookie = {"Cookie": f"{client.settings.session_cookie_name}={client.cookie}"}
    for path in ("/api/domains", "/api/login", "/api/domain/x.test"):
        bare = client.client.simulate_get(path, headers=cookie)
        assert_error(bare, 404, "NOT_FOUND")


def test_url_prefix_with_api_switched_off(make_client):
    client = make_client(url_prefix="/iredadmin", enable_restful_api="no")
    assert_error(client.get("/api/domains"), 404, "NOT_FOUND")


def test_url_prefix_with_restriction(make_client, global_admin):
    client = make_client(url_prefix="/iredadmin", restrict_api_access="yes", restful_api_clients="192.0.2.0/24")
    assert_error(client.post("/api/login", {"username": global_admin[0], "password": global_admin[1]}),
                 403, "NOT_AUTHORIZED")


# -- login required everywhere --------------------------------------------------------

SAMPLE = {"domain": "x.test", "mail": "user@x.test", "days": "7"}


def fill(template: str) -> str:
    """A path for a URI template: known fields from SAMPLE, others by what their name says."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in SAMPLE:
            return SAMPLE[name]
        if "mail" in name:
            return f"{name.replace('_', '')}@x.test"
        if "domain" in name:
            return "other.test"
        return "7" if "day" in name else "sample"
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", value, template)


PROTECTED = [pytest.param(method, template, id=f"{method} {template}")
             for (template, method), rule in web_app.RULES.items() if rule is not authz.Rule.PUBLIC]


@pytest.mark.parametrize("method,template", PROTECTED)
def test_every_route_needs_a_login(method, template, client, factory, global_admin, iredadmin):
    factory.domain("x.test")
    path = fill(template)

    for cookie in (None, "not-a-session"):
        client.cookie = cookie
        result = client.request(method, path, {"name": "Changed"} if method in ("POST", "PUT") else None)
        assert_error(result, 401, "LOGIN_REQUIRED")
        assert "WWW-Authenticate" in result.headers

    # (A 401 also shows the route exists: for an unknown path Falcon answers 404 first.)
    entry = factory.entry(tree_of(client.settings).domain("x.test"))
    assert entry is not None and entry.get("cn") != ["Changed"]
    assert rows(iredadmin, t.log) == []


# -- the access table itself ---------------------------------------------------------

GLOBAL = Principal(mail="root@admins.test", dn="mail=root@admins.test,o=domainAdmins", is_global=True,
                   is_mail_user=False)
NORMAL = Principal(mail="helper@admins.test", dn="mail=helper@admins.test,o=domainAdmins", is_global=False,
                   is_mail_user=False)


def _access(principal, managed=()):
    # These rules need no account rights: no admin store is consulted.
    return authz.Access(principal, None, list(managed))


def test_check_refuses_a_route_without_rule_even_for_global_admins():
    with pytest.raises(NotAuthorized):
        authz.check(None, _access(GLOBAL), {})
    with pytest.raises(NotAuthorized):
        authz.check(None, _access(None), {})


def test_check_rules():
    normal = _access(NORMAL, ["x.test"])
    authz.check(authz.Rule.PUBLIC, _access(None), {})
    with pytest.raises(LoginRequired):
        authz.check(authz.Rule.LOGGED_IN, _access(None), {})
    authz.check(authz.Rule.DOMAIN, normal, {"domain": "X.test"})
    authz.check(authz.Rule.MAIL_DOMAIN, normal, {"mail": "u@x.test"})
    for rule, params in ((authz.Rule.DOMAIN, {"domain": "y.test"}), (authz.Rule.MAIL_DOMAIN, {"mail": "u@y.test"}),
                         (authz.Rule.MAIL_ACCOUNT, {"mail": "u@y.test"}),
                         (authz.Rule.GLOBAL, {}), (authz.Rule.CREATE_DOMAIN, {})):
        with pytest.raises(NotAuthorized):
            authz.check(rule, normal, params)
        authz.check(rule, _access(GLOBAL), params)


class _Unlisted:
    def __init__(self):
        self.called = 0

    def on_get(self, req, resp):
        self.called += 1
        resp.media = {"_success": True, "_data": "secret"}


def test_a_route_missing_from_the_table_is_refused(settings, directory, iredadmin, global_admin):
    app = create_app(settings, Backends(directory=directory, iredadmin=iredadmin))
    resource = _Unlisted()
    app.add_route("/api/unlisted", resource)
    client = ApiClient(app, settings)
    client.login(*global_admin)

    assert_error(client.get("/api/unlisted"), 403, "NOT_AUTHORIZED")
    assert resource.called == 0
    # A method the resource has no responder for is still a plain 405.
    assert_error(client.post("/api/unlisted"), 405, "METHOD_NOT_ALLOWED")


# -- normal admins (the authorization model) -----------------------------------------

@pytest.fixture
def helper(client, factory, directory, settings):
    """A logged-in normal admin of x.test; y.test exists and is someone else's."""
    factory.domain("x.test")
    factory.domain("y.test")
    client.login(*factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["x.test"]))
    return client


def test_normal_admin_other_domain_is_403_whether_it_exists_or_not(helper, factory, settings):
    tree = tree_of(settings)
    for method in ("GET", "PUT", "DELETE"):
        existing = helper.request(method, "/api/domain/y.test", {"name": "Mine"} if method == "PUT" else None)
        missing = helper.request(method, "/api/domain/nowhere.test", {"name": "Mine"} if method == "PUT" else None)
        assert_error(existing, 403, "NOT_AUTHORIZED")
        assert_error(missing, 403, "NOT_AUTHORIZED")
        assert existing.json["reason"].replace("y.test", "D") == missing.json["reason"].replace("nowhere.test", "D")
    for path in ("/api/domain/admins/y.test", "/api/domain/services/y.test", "/api/domain/y.test/keep_mailbox_days/3"):
        method = "DELETE" if "keep" in path else "GET"
        assert_error(helper.request(method, path, None), 403, "NOT_AUTHORIZED")
    entry = factory.entry(tree.domain("y.test"))
    assert entry is not None and entry.get("cn") != ["Mine"]


def test_normal_admin_cannot_create_domains_or_touch_services(helper, factory, settings):
    tree = tree_of(settings)
    assert_error(helper.post("/api/domain/new.test", {}), 403, "NOT_AUTHORIZED")
    assert factory.entry(tree.domain("new.test")) is None
    before = factory.entry(tree.domain("x.test")).get("enabledService")
    assert_error(helper.put("/api/domain/services/x.test", {"addService": "senderbcc"}), 403, "NOT_AUTHORIZED")
    assert factory.entry(tree.domain("x.test")).get("enabledService") == before


def test_normal_admin_lists_only_its_domains(helper):
    result = helper.get("/api/domains", {"name_only": "yes"})
    assert result.status_code == 200 and result.json["_data"] == ["x.test"]


# -- paths and addresses that must not slip through -------------------------------------

@pytest.mark.parametrize("path", ["//api/login", "///api/login", "/api//login"])
def test_extra_slashes_do_not_bypass_the_restriction(path, make_client, global_admin, iredadmin):
    client = make_client(restrict_api_access="yes", restful_api_clients="192.0.2.0/24")
    result = client.client.simulate_post(path, params={"username": global_admin[0], "password": global_admin[1]},
                                         remote_addr="203.0.113.1")
    assert result.status_code in (403, 404), result.text
    assert result.json["_success"] is False
    assert rows(iredadmin, t.sessions) == []


def test_extra_slashes_do_not_bypass_the_api_switch(make_client, global_admin, iredadmin):
    client = make_client(enable_restful_api="no")
    result = client.client.simulate_post("//api/login",
                                         params={"username": global_admin[0], "password": global_admin[1]})
    assert_error(result, 404, "NOT_FOUND")
    assert rows(iredadmin, t.sessions) == []


def test_ipv4_client_seen_through_a_dual_stack_socket(make_client, global_admin):
    client = make_client(restrict_api_access="yes", restful_api_clients="192.0.2.0/24", trusted_proxies="10.0.0.1")
    client.remote_addr = "::ffff:192.0.2.10"
    client.login(*global_admin)
    assert_error(client.get("/api/domains", remote_addr="::ffff:203.0.113.1"), 403, "NOT_AUTHORIZED")
    # A trusted proxy on IPv4 reached over the same kind of socket.
    result = client.get("/api/domains", remote_addr="::ffff:10.0.0.1", headers=xff("192.0.2.20"))
    assert result.status_code == 200, result.text
