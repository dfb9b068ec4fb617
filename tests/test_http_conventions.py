"""Conventions every endpoint follows: where parameters come from, how they are
checked, and the shape of every error.  The domain endpoints are the vehicle;
each test reads back what was written to the directory."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from iredldap.backends import tree_of

from .support import ApiClient, assert_error


@pytest.fixture
def tree(settings):
    return tree_of(settings)


@pytest.fixture
def domain_entry(factory, tree):
    def get(name: str):
        return factory.entry(tree.domain(name))
    return get


def domain_names(factory, settings) -> list[str]:
    from iredldap.directory.connection import LEVEL
    found = factory.search(tree_of(settings).domains_dn, "(objectClass=mailDomain)", scope=LEVEL,
                           attrs=("domainName",))
    return sorted(e.first("domainName") for e in found)


def raw(api: ApiClient, method: str, path: str, body: str | bytes, content_type: str):
    headers = {"Content-Type": content_type,
               "Cookie": f"{api.settings.session_cookie_name}={api.cookie}"}
    return api.client.simulate_request(method, path, body=body, headers=headers)


# -- where parameters come from ------------------------------------------------

def test_form_body(api, domain_entry):
    result = api.post("/api/domain/form.test", {"name": "Form Co", "language": "de_DE"})
    assert result.status_code == 201, result.text
    assert result.json == {"_success": True}
    entry = domain_entry("form.test")
    assert entry.get("cn") == ["Form Co"]
    assert entry.get("preferredLanguage") == ["de_DE"]


def test_query_string(api, domain_entry):
    result = api.request("POST", "/api/domain/query.test", None, query={"name": "Query Co"})
    assert result.status_code == 201, result.text
    assert domain_entry("query.test").get("cn") == ["Query Co"]


def test_json_object_with_numbers_and_booleans(api, domain_entry):
    api.post("/api/domain/json.test")
    result = api.put("/api/domain/json.test", json_body={"name": "Json Co", "defaultQuota": 20,
                                                          "minPasswordLength": 10, "accountStatus": "active"})
    assert result.status_code == 200, result.text
    entry = domain_entry("json.test")
    assert entry.get("cn") == ["Json Co"]
    assert "defaultQuota:20" in entry.get("accountSetting")
    assert "minPasswordLength:10" in entry.get("accountSetting")

    names = api.request("GET", "/api/domains", json_body={"name_only": True})
    assert names.status_code == 200 and names.json["_data"] == ["json.test"]


def test_body_wins_over_query_string(api, domain_entry):
    result = api.request("POST", "/api/domain/both.test", {"name": "From body"}, query={"name": "From query"})
    assert result.status_code == 201, result.text
    assert domain_entry("both.test").get("cn") == ["From body"]


@pytest.mark.parametrize("value,names_only", [("yes", True), ("no", False), ("true", True), ("false", False),
                                              ("1", True), ("0", False), ("YES", True), ("False", False)])
def test_boolean_spellings(value, names_only, api, factory):
    factory.domain("x.test")
    result = api.get("/api/domains", {"name_only": value})
    assert result.status_code == 200, result.text
    data = result.json["_data"]
    assert data == ["x.test"] if names_only else data[0]["domainName"] == ["x.test"]


def test_bad_boolean(api, factory):
    body = assert_error(api.get("/api/domains", {"name_only": "maybe"}), 400, "INVALID_PARAMETER")
    assert "name_only" in body["reason"]


# -- unknown, legacy and conflicting names -----------------------------------------

def test_unknown_parameter_is_named(api, domain_entry):
    body = assert_error(api.post("/api/domain/x.test", {"name": "X", "colour": "blue"}), 400, "UNKNOWN_PARAMETERS")
    assert "colour" in body["reason"]
    assert body["params"] == ["colour"]
    assert "blue" not in json.dumps(body)
    assert domain_entry("x.test") is None


def test_unknown_parameter_in_query_of_a_read(api, factory):
    factory.domain("x.test")
    body = assert_error(api.get("/api/domain/x.test", {"verbose": "1"}), 400, "UNKNOWN_PARAMETERS")
    assert body["params"] == ["verbose"]


def test_legacy_names(api, domain_entry):
    assert api.post("/api/domain/legacy.test", {"cn": "Old Name", "preferredLanguage": "fr_FR"}).status_code == 201
    entry = domain_entry("legacy.test")
    assert entry.get("cn") == ["Old Name"]
    assert entry.get("preferredLanguage") == ["fr_FR"]
    assert api.put("/api/domain/legacy.test", {"cn": "Renamed"}).status_code == 200
    assert domain_entry("legacy.test").get("cn") == ["Renamed"]


def test_name_and_its_legacy_alias_together(api, domain_entry, factory):
    body = assert_error(api.post("/api/domain/x.test", {"name": "A", "cn": "B"}), 400, "CONFLICTING_PARAMETERS")
    assert "name" in body["reason"] and "cn" in body["reason"]
    assert domain_entry("x.test") is None
    factory.domain("y.test", name="Before")
    assert_error(api.put("/api/domain/y.test", json_body={"language": "de_DE", "preferredLanguage": "fr_FR"}),
                 400, "CONFLICTING_PARAMETERS")
    assert domain_entry("y.test").get("preferredLanguage") != ["fr_FR"]


def test_comma_lists_are_trimmed_lowercased_and_deduplicated(api, factory, domain_entry):
    factory.domain("x.test")
    result = api.put("/api/domain/x.test", {"aliasDomains": " Alias-A.test , alias-a.TEST,,alias-b.test "})
    assert result.status_code == 200, result.text
    assert sorted(domain_entry("x.test").get("domainAliasName")) == ["alias-a.test", "alias-b.test"]


# -- malformed requests are 400, never 500 ---------------------------------------

@pytest.mark.parametrize("body", ["{bad", '{"name": ', "\xff\xfe", "nul\x00l"])
def test_malformed_json(body, api, domain_entry):
    result = raw(api, "POST", "/api/domain/x.test", body.encode("latin-1"), "application/json")
    assert_error(result, 400, "INVALID_REQUEST")
    assert domain_entry("x.test") is None


@pytest.mark.parametrize("body", ['["name", "X"]', '"X"', "42", "null"])
def test_json_body_not_an_object(body, api, domain_entry):
    result = raw(api, "POST", "/api/domain/x.test", body, "application/json")
    assert result.status_code == 400, result.text
    assert result.json["_success"] is False
    assert domain_entry("x.test") is None


@pytest.mark.parametrize("params", [{"name": {"nested": 1}}, {"name": ["a", "b"]}, {"defaultQuota": 1.5},
                                    {"defaultQuota": "lots"}, {"defaultQuota": -1}, {"name": "line\nbreak"},
                                    {"accountStatus": "sleeping"}, {"language": "english"}])
def test_bad_values(params, api, domain_entry):
    result = api.post("/api/domain/x.test", json_body=params)
    body = assert_error(result, 400, result.json.get("_msg"))
    assert result.json["_msg"].startswith("INVALID_")
    assert list(params)[0] in body["reason"]
    assert domain_entry("x.test") is None


def test_unsupported_content_type(api, domain_entry):
    result = raw(api, "POST", "/api/domain/x.test", "name=X", "text/plain")
    assert result.status_code in (400, 415), result.text
    assert result.json["_success"] is False and result.json["_msg"]
    assert domain_entry("x.test") is None


# -- routes and methods --------------------------------------------------------------

@pytest.mark.parametrize("method,path", [("PATCH", "/api/domains"), ("DELETE", "/api/domains"),
                                         ("POST", "/api/domains"), ("PATCH", "/api/domain/x.test"),
                                         ("GET", "/api/logout"), ("GET", "/api/login")])
def test_wrong_method_is_405(method, path, api):
    result = api.request(method, path, None)
    assert_error(result, 405, "METHOD_NOT_ALLOWED")
    assert result.headers.get("allow")


@pytest.mark.parametrize("path", ["/api/nope", "/api/domain", "/api/domain/x.test/extra", "/", "/api/users"])
def test_unknown_route_is_404(path, api, client):
    assert_error(api.get(path), 404, "NOT_FOUND")


def test_unknown_route_is_404_before_login(client):
    assert_error(client.get("/api/nope"), 404, "NOT_FOUND")


# -- domain names -------------------------------------------------------------

def test_idn_is_stored_as_punycode(api, domain_entry, factory, settings):
    result = api.post("/api/domain/" + quote("bücher.test"), {"name": "Bücher"})
    assert result.status_code == 201, result.text
    entry = domain_entry("xn--bcher-kva.test")
    assert entry is not None
    assert entry.get("domainName") == ["xn--bcher-kva.test"]
    assert entry.get("cn") == ["Bücher"]
    assert domain_names(factory, settings) == ["xn--bcher-kva.test"]
    # The Unicode form finds the same domain.
    assert api.get("/api/domain/" + quote("BÜCHER.test")).json["_data"]["domainName"] == ["xn--bcher-kva.test"]


def test_domain_name_is_lowercased(api, domain_entry, factory, settings):
    assert api.post("/api/domain/Upper.TEST").status_code == 201
    assert domain_names(factory, settings) == ["upper.test"]
    assert domain_entry("upper.test").get("domainName") == ["upper.test"]


@pytest.mark.parametrize("name", ["bad_domain", "-x.test", "x-.test", "a..b", "nodot", "x.123",
                                  "a" * 64 + ".test", "sp ace.test", "x.test*", "a,b.test", "xn--.test"])
def test_malformed_domain_is_400_and_nothing_is_written(name, api, factory, settings):
    result = api.post("/api/domain/" + quote(name, safe=""), {"name": "X"})
    assert_error(result, 400, "INVALID_DOMAIN_NAME")
    assert domain_names(factory, settings) == []


def test_malformed_domain_in_a_parameter(api, factory, domain_entry):
    factory.domain("x.test")
    body = assert_error(api.put("/api/domain/x.test", {"aliasDomains": "ok.test, bad_domain"}),
                        400, "INVALID_DOMAIN_NAME")
    assert "aliasDomains" in body["reason"]
    assert domain_entry("x.test").get("domainAliasName") == []


class _Boom:
    def on_get(self, req, resp):
        raise RuntimeError("secret detail of a bug")


def test_unexpected_error_has_the_envelope_and_hides_details(monkeypatch, settings, directory, iredadmin,
                                                             global_admin):
    from iredldap.web import app as web_app, authz
    from iredldap.backends import Backends
    from iredldap.web.app import create_app

    monkeypatch.setitem(web_app.RULES, ("/api/boom", "GET"), authz.Rule.LOGGED_IN)
    app = create_app(settings, Backends(directory=directory, iredadmin=iredadmin))
    app.add_route("/api/boom", _Boom())
    client = ApiClient(app, settings)
    client.login(*global_admin)
    body = assert_error(client.get("/api/boom"), 500, "INTERNAL_ERROR")
    assert "secret detail" not in json.dumps(body)


# -- JSON sent without its Content-Type (issue #12) ---------------------------------

def test_json_body_labelled_as_a_form_is_read_as_json(api, domain_entry):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded."""
    api.post("/api/domain/curl.test")
    result = raw(api, "PUT", "/api/domain/curl.test", '{"name": "Curl Co", "defaultQuota": 30}',
                 "application/x-www-form-urlencoded")
    assert result.status_code == 200, result.text
    entry = domain_entry("curl.test")
    assert entry.get("cn") == ["Curl Co"]
    assert "defaultQuota:30" in entry.get("accountSetting")


def test_json_body_without_content_type(api, domain_entry):
    api.post("/api/domain/bare.test")
    headers = {"Cookie": f"{api.settings.session_cookie_name}={api.cookie}"}
    result = api.client.simulate_request("PUT", "/api/domain/bare.test", body='{"name": "Bare Co"}',
                                         headers=headers)
    assert result.status_code == 200, result.text
    assert domain_entry("bare.test").get("cn") == ["Bare Co"]


def test_broken_json_labelled_as_a_form_says_to_set_the_content_type(api, domain_entry):
    api.post("/api/domain/broken.test", {"name": "Before"})
    result = raw(api, "PUT", "/api/domain/broken.test", '{"name": "x",', "application/x-www-form-urlencoded")
    body = assert_error(result, 400, "INVALID_REQUEST")
    assert "Content-Type: application/json" in body["reason"]
    assert domain_entry("broken.test").get("cn") == ["Before"]
