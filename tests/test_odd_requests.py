"""Odd requests (issue #10, item 8): HEAD, methods a route lacks or nobody
knows, and /metrics that does not grow with what clients make up."""

from __future__ import annotations

import re

import pytest

from iredldap import metrics
from iredldap.directory.connection import SUBTREE

from .conftest import SUFFIX

# wsgiref.validate (under falcon.testing) warns about every made-up method.
pytestmark = pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")


def entries(factory):
    return sorted((e.dn.lower(), sorted((k.lower(), sorted(v)) for k, v in e.attrs.items()))
                  for e in factory.search(SUFFIX, "(objectClass=*)", scope=SUBTREE))


@pytest.fixture
def user(factory):
    factory.domain("ex.test")
    return factory.user("u@ex.test")


def test_head_answers_like_get_without_a_body(api, user):
    get = api.get("/api/user/u@ex.test")
    head = api.request("HEAD", "/api/user/u@ex.test")
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert api.request("HEAD", "/healthz").status_code == 200
    assert api.request("HEAD", "/api/domains").status_code == 200


def test_head_follows_the_get_access_rule(client, factory, user):
    # Not logged in: as GET, 401.
    assert client.request("HEAD", "/api/user/u@ex.test").status_code == 401
    factory.domain("other.test")
    admin = factory.normal_admin("adm@ex.test", "Adm1n#secret", domains=["ex.test"])
    client.login(*admin)
    assert client.request("HEAD", "/api/user/u@ex.test").status_code == 200
    assert client.request("HEAD", "/api/domain/other.test").status_code == 403


def test_head_with_a_read_only_token(api, user):
    made = api.post("/api/tokens", {"read_only": "yes"})
    assert made.status_code in (200, 201), made.text
    token = made.json["_data"]["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    api.cookie = None
    assert api.request("HEAD", "/api/user/u@ex.test", headers=bearer).status_code == 200
    assert api.request("PUT", "/api/user/u@ex.test", {"name": "X"}, headers=bearer).status_code == 403


@pytest.mark.parametrize("method", ["PATCH", "FOO", "get", "BREW"])
def test_a_method_the_route_lacks_is_405_with_allow(api, factory, user, method):
    before = entries(factory)
    result = api.request(method, "/api/user/u@ex.test", {"name": "Changed"})
    assert result.status_code == 405, result.text
    assert result.json["_success"] is False and result.json["_msg"] == "METHOD_NOT_ALLOWED"
    assert result.headers["allow"] == "DELETE, GET, HEAD, POST, PUT, OPTIONS"
    assert entries(factory) == before
    result = api.request(method, "/api/login")
    assert result.status_code == 405 and result.headers["allow"] == "POST, OPTIONS"


def test_unknown_method_on_unknown_path_is_404(api):
    result = api.request("FOO", "/api/nothing/here")
    assert result.status_code == 404 and result.json["_msg"] == "NOT_FOUND"


def test_options_lists_head(api, user):
    result = api.request("OPTIONS", "/api/user/u@ex.test")
    assert result.status_code == 200
    # (falcon's own OPTIONS answer leaves OPTIONS out)
    assert result.headers["allow"] == "DELETE, GET, HEAD, POST, PUT"


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("iredldap_http_"))


def test_metrics_do_not_grow_with_made_up_methods_and_paths(client):
    # Warm up every label the requests below can produce.
    def burst(tag: str, n: int):
        for i in range(n):
            client.request(f"X{tag}{i}", f"/made/up/{tag}/{i}")
            client.request(f"X{tag}{i}", "/api/login")
            client.request("GET", f"/api/nowhere/{tag}{i}")
            client.request("GET", f"/api/user/u{i}@{tag}.test")

    burst("a", 3)
    client.get("/metrics")           # the scrape counts itself from the next one on
    first = client.get("/metrics").text
    burst("b", 300)
    second = client.get("/metrics").text
    assert series(second) == series(first)
    assert len(second) < len(first) + 200        # the counts grow by digits, not by lines
    labels = set(re.findall(r'method="([^"]*)"', second))
    assert labels <= metrics.METHODS | {"other"} and "other" in labels
    endpoints = set(re.findall(r'endpoint="([^"]*)"', second))
    assert "unmatched" in endpoints and not any("made" in e or "nowhere" in e for e in endpoints)
    assert metrics.sample("iredldap_http_requests_total",
                          {"method": "other", "endpoint": "/api/login", "status": "405"}) >= 303
