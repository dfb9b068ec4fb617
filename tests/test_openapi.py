"""The OpenAPI document: complete (every route, rule and parameter) and
served with its docs page.  That it is true -- schemathesis over it against
the app finds no 500 and no undocumented answer -- is
tests/test_openapi_schemathesis.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from iredldap.web import authz, openapi
from iredldap.web import app as web_app
from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.model.params import URL_PARAMS
from iredldap.web.responders import docs

from .conftest import make_settings
from .support import ApiClient


def document(client: ApiClient) -> dict:
    r = client.get("/api/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json


@pytest.fixture
def doc(client) -> dict:
    return document(client)


def test_document_is_openapi_3_1_and_public(client, doc):
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "iredldap"
    schemes = doc["components"]["securitySchemes"]
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "iRedAdmin-LDAP",
                                     "description": schemes["cookieAuth"]["description"]}
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    # Served without a login, and the same every time.
    assert client.get("/api/openapi.json").json == doc


def test_every_route_of_the_access_table_is_documented_with_its_rule(doc):
    documented = {(path, method.upper()): op for path, ops in doc["paths"].items() for method, op in ops.items()}
    for (template, method), rule in web_app.RULES.items():
        assert (template, method) in documented, f"{method} {template} is missing from the document"
        op = documented[(template, method)]
        assert op["x-access"] == rule.value
        assert op["security"] == ([] if rule is authz.Rule.PUBLIC else [{"cookieAuth": []}, {"bearerAuth": []}])
        assert "x-undeclared" not in op, f"{method} {template}: the resource declares no operations[{method!r}]"
    assert set(documented) <= set(web_app.RULES), set(documented) - set(web_app.RULES)
    ids = [op["operationId"] for op in documented.values()]
    assert len(ids) == len(set(ids))


def falcon_operations(app):
    """(template, method, Operation) of every responder falcon routes to,
    found through falcon's router, not through iredldap.web.openapi."""
    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    for node in walk(app._router._roots):
        if node.resource is None:
            continue
        for method, responder in node.method_map.items():
            name = getattr(responder, "__name__", "")
            if getattr(responder, "__self__", None) is not node.resource or not name.startswith("on_"):
                continue  # falcon's own (405, OPTIONS)
            key = method + name[len("on_" + method.lower()):]   # GET, DELETE_keep
            yield node.uri_template, method, node.resource.operations[key]


def test_every_parameter_of_every_declaration_is_documented(app, doc):
    """Each responder's declared ParamSet is in the document, parameter by
    parameter, with its type, limits, aliases and required flag."""
    checked = 0
    seen = set()
    for path, method, op in falcon_operations(app):
        seen.add((path, method))
        documented = doc["paths"][path][method.lower()]
        assert documented["summary"] == op.summary
        if method in ("POST", "PUT"):
            body = documented.get("requestBody", {}).get("content", {})
            props = body.get("application/json", {}).get("schema", {}).get("properties", {})
            assert body.get("application/x-www-form-urlencoded", {}).get("schema", {}).get("properties", {}) == props
        else:
            props = {p["name"]: p for p in documented.get("parameters", []) if p["in"] == "query"}
        assert set(props) == set(op.params.by_name), (method, path)
        for param in op.params.params:
            entry = props[param.name]
            schema = entry.get("schema", entry)
            assert schema["type"] == openapi.param_schema(param)["type"]
            for key in ("enum", "minimum", "maximum", "maxLength"):
                assert schema.get(key) == openapi.param_schema(param).get(key), (path, param.name, key)
            assert entry.get("x-aliases", []) == list(param.aliases)
            for alias in param.aliases:
                assert alias in entry["description"]
            checked += 1
        if method in ("POST", "PUT") and op.params.params:
            required = documented["requestBody"]["content"]["application/json"]["schema"].get("required", [])
            assert set(required) == {p.name for p in op.params.params if p.required}
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    assert seen == documented
    assert checked > 200


def test_path_parameters_and_aliases(doc):
    user = doc["paths"]["/api/user/{mail}"]
    mail = next(p for p in user["get"]["parameters"] if p["name"] == "mail")
    assert mail == {"name": "mail", "in": "path", "required": True, "schema": {"type": "string", "format": "email"},
                    "description": mail["description"], "example": "user@example.com"}
    props = user["put"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert props["quota"]["x-aliases"] == ["mailQuota"] and "mailQuota" in props["quota"]["description"]
    assert props["quota"]["type"] == "integer" and props["quota"]["minimum"] == 0
    assert props["accountStatus"]["enum"] == ["active", "disabled"]
    assert props["transport"]["x-global-only"] is True
    keep = doc["paths"]["/api/domain/{domain}/keep_mailbox_days/{days}"]["delete"]
    days = next(p for p in keep["parameters"] if p["name"] == "days")
    assert days["schema"] == {"type": "integer", "minimum": 0, "maximum": 36500}
    spam = doc["paths"]["/api/spampolicy/global"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert spam["properties"]["spam_score"]["type"] == ["number", "null"]
    listing = doc["paths"]["/api/users/{domain}"]["get"]
    names = [p["name"] for p in listing["parameters"]]
    assert {"page", "page_size", "cursor", "sort", "order", "search"} <= set(names)
    assert set(URL_PARAMS) >= {"domain", "mail", "new_mail", "days", "account", "direction", "listname"}


def test_envelopes_statuses_and_error_codes(doc):
    failure = doc["components"]["schemas"]["Failure"]
    assert failure["required"] == ["_success", "_msg", "reason"] and "param" in failure["properties"]
    responses = doc["components"]["responses"]
    assert "INVALID_PARAMETER" in responses["Error400"]["x-codes"]
    assert "LOGIN_REQUIRED" in responses["Error401"]["x-codes"]
    assert "NO_SUCH_ACCOUNT" in responses["Error404"]["x-codes"]
    assert "DIRECTORY_UNAVAILABLE" in responses["Error503"]["x-codes"]
    create = doc["paths"]["/api/domain/{domain}"]["post"]["responses"]
    assert create["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Success"}
    assert {"400", "401", "403", "404", "409", "503"} <= set(create)
    users = doc["paths"]["/api/users/{domain}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert users["required"] == ["_success", "_data", "_total"] and "_next_cursor" in users["properties"]
    login = doc["paths"]["/api/login"]["post"]["responses"]
    assert "429" in login and "401" in login


def test_document_respects_url_prefix(tmp_path, directory, iredadmin):
    settings = make_settings(tmp_path, url_prefix="/iredadmin")
    app = create_app(settings, Backends(directory=directory, iredadmin=iredadmin))
    client = ApiClient(app, settings)
    doc = document(client)
    assert "/iredadmin/api/domains" in doc["paths"] and "/api/domains" not in doc["paths"]
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert 'data-url="/iredadmin/api/openapi.json"' in page.text
    assert 'src="/iredadmin/api/docs/swagger-ui-bundle.js"' in page.text


def test_docs_page_is_served_from_the_installed_package(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text  # nothing from elsewhere: no CDN
    folder = docs.swagger_ui_dir()
    assert folder is not None
    js = client.get("/api/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.content == (folder / "swagger-ui-bundle.js").read_bytes()
    assert js.headers["content-type"].startswith("application/javascript")
    assert client.get("/api/docs/swagger-ui.css").headers["content-type"].startswith("text/css")
    init = client.get("/api/docs/iredldap-init.js")
    assert init.status_code == 200 and "SwaggerUIBundle" in init.text
    for bad in ("../__init__.py", "..%2F__init__.py", "oauth2-redirect.html", "swagger-editor.js", "core.py"):
        r = client.get(f"/api/docs/{bad}")
        assert r.status_code == 404, bad


def test_responders_read_only_their_declared_parameters():
    """Every read_params() call in the resources passes the responder's own
    declaration (self.operations[...]), so validation and document agree."""
    folder = Path(__file__).resolve().parent.parent / "iredldap" / "resources"
    offenders = []
    for source in sorted(folder.glob("*.py")):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "read_params":
                arg = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
                if not arg.startswith("self.operations["):
                    offenders.append(f"{source.name}:{node.lineno}: read_params(req, {arg})")
    assert not offenders, "\n".join(offenders)


# -- what schemathesis found ------------------------------------------------------

def test_a_token_id_beyond_64_bits_is_400_not_500(api):
    r = api.get("/api/token/56142382409826895646808406314975232")
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_PARAMETER", r.text
    assert api.get(f"/api/token/{2**63 - 1}").status_code == 404
