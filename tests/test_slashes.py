"""Paths as clients write them (issue #12, item 1).

Clients configured with a base URL ending in `/` send `/api//login` or
`/api/throttle/example.com/inbound/`; nginx in front of iRedAdmin-Pro merges
the slashes, so they must work here too.  Every route of the OpenAPI document
is asked canonically, with `//`, with a trailing `/` and with both, with and
without URL_PREFIX, and must answer exactly the same.
"""

from __future__ import annotations

import re

import pytest

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.web.slashes import canonical_path

from .conftest import make_settings
from .support import ApiClient

# Reads ask for accounts that exist; writes for ones that do not (so every
# repetition is the same refusal and nothing changes between variants).
EXISTING = {"domain": "example.com", "mail": "ann@example.com", "new_mail": "bob@example.com",
            "days": "7", "token_id": "1"}
MISSING = {"domain": "nosuch.test", "mail": "nobody@nosuch.test", "new_mail": "other@nosuch.test",
           "days": "7", "token_id": "999"}


@pytest.fixture
def backend():
    return "mock"


@pytest.fixture(params=["", "/iredadmin"], ids=["no-prefix", "prefix"])
def settings(request, tmp_path):
    return make_settings(tmp_path, **({"url_prefix": request.param} if request.param else {}))


def _concrete(template: str, samples: dict) -> str:
    def value(match):
        name = match.group(1)
        for key, sample in samples.items():
            if name == key or name.endswith(key):
                return sample
        if name == "name":  # /api/docs/{name}: a file of Swagger UI
            return "swagger-ui.css"
        return samples["domain"]
    return re.sub(r"\{(\w+)\}", value, template)


def _variants(path: str) -> list[str]:
    doubled = path.replace("/", "//")
    inner = path.replace("/api/", "/api//", 1)
    return [path + "/", doubled, inner, doubled + "/", inner + "//"]


def _answer(result):
    try:
        body = result.json
    except Exception:
        body = result.text
    return result.status_code, body


def test_canonical_path():
    assert canonical_path("/iredadmin/api//login") == "/iredadmin/api/login"
    assert canonical_path("//api///throttle/a.com/inbound//") == "/api/throttle/a.com/inbound"
    assert canonical_path("/") == "/"


def test_every_route_same_answer(api, factory, settings):
    factory.domain("example.com")
    factory.user("ann@example.com")
    doc = api.get("/api/openapi.json")
    assert doc.status_code == 200
    paths = doc.json["paths"]
    # The document stays canonical.
    assert all("//" not in p and (p == "/" or not p.endswith("/")) for p in paths)
    assert len(paths) > 40
    checked = 0
    for template, operations in paths.items():
        # Reads where there are any; otherwise the first documented method
        # on sample accounts (the answers compared are refusals or no-ops,
        # repeated identically).
        methods = [m.upper() for m in operations if m in ("get", "post", "put", "delete")]
        method = "GET" if "GET" in methods else methods[0]
        if method != "GET" and template.endswith(("/login", "/logout")):
            continue  # covered below: they change the session
        # The document's paths already carry URL_PREFIX.
        wire = _concrete(template, EXISTING if method == "GET" else MISSING)
        canonical = api.client.simulate_request(method, wire, headers=_cookie(api))
        expected = _answer(canonical)
        if template.endswith("/metrics"):
            expected = expected[0]
        # The canonical path is routed (a 404 here is about an account, not the path).
        assert canonical.status_code != 404 or canonical.json.get("_msg") != "NOT_FOUND", (template, expected)
        for variant in _variants(wire):
            got = _answer(api.client.simulate_request(method, variant, headers=_cookie(api)))
            if template.endswith("/metrics"):
                got = got[0]
            assert got == expected, (method, variant, got, expected)
        checked += 1
    assert checked > 40


def test_login_and_logout_with_slashes(client, global_admin, settings):
    prefix = settings.url_prefix
    user, password = global_admin
    result = client.client.simulate_post(prefix + "/api//login/", params={"username": user, "password": password})
    assert result.status_code == 200, result.text
    cookie = result.cookies[settings.session_cookie_name].value
    headers = {"Cookie": f"{settings.session_cookie_name}={cookie}"}
    listed = client.client.simulate_get(prefix + "//api//domains//", headers=headers)
    assert listed.status_code == 200 and listed.json["_success"] is True
    out = client.client.simulate_post(prefix + "/api//logout/", headers=headers)
    assert out.status_code == 200
    after = client.client.simulate_get(prefix + "/api/domains", headers=headers)
    assert after.status_code == 401


def _cookie(api: ApiClient) -> dict:
    return {"Cookie": f"{api.settings.session_cookie_name}={api.cookie}"}


def test_api_index(client, settings):
    prefix = settings.url_prefix
    for path in ("/api/", "/api", "//api//"):
        result = client.client.simulate_get(prefix + path)
        assert result.status_code == 200, (path, result.text)
        data = result.json["_data"]
        assert data["docs"] == prefix + "/api/docs" and data["openapi"] == prefix + "/api/openapi.json"
        assert f"POST {prefix}/api/login" in data["endpoints"]
    # The links answer.
    assert client.client.simulate_get(data["openapi"]).status_code == 200
