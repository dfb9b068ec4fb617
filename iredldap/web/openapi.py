"""The OpenAPI 3.1 document, built from the routes and their declarations.

Nothing here is written beside the code it describes: the paths come from
the route list of `create_app`, the methods from the responders the
resources have, each operation from the resource's ``operations``
declaration (`iredldap.model.params.Operation`: the same `ParamSet` the responder
validates with), the access rules from `iredldap.web.app.RULES`, the error
statuses from `iredldap.web.errors.STATUS` and the error codes from
the exception classes.

OpenAPI has no notion of a parameter's other names: the legacy names a
parameter is also accepted under are listed in ``x-aliases`` and in its
description.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Mapping

from iredldap import __version__
from iredldap.web import authz
from iredldap import errors as e
from iredldap.model.params import URL_PARAMS, Operation, Param, ParamSet

OPENAPI_VERSION = "3.1.0"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

# -- shapes of `_data`, for the declarations ---------------------------------

ENTRY = {"$ref": "#/components/schemas/Entry"}
ENTRIES = {"type": "array", "items": ENTRY}
STRINGS = {"type": "array", "items": {"type": "string"}}
OBJECT = {"type": "object"}
OBJECTS = {"type": "array", "items": OBJECT}
# A listing: addresses or names alone (email_only / name_only) or entries.
LISTING = {"type": "array", "items": {"anyOf": [{"type": "string"}, ENTRY]}}


def entry_with(**properties: dict) -> dict:
    """An entry (attribute → list of strings) with some keys of other types."""
    return {"type": "object", "properties": properties,
            "additionalProperties": {"type": "array", "items": {"type": "string"}}}


_COMPONENT_SCHEMAS: dict[str, dict] = {
    "Entry": {
        "type": "object",
        "description": "An LDAP entry: attribute name → its values (userPassword is never shown)",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
    "Success": {
        "type": "object",
        "required": ["_success"],
        "properties": {"_success": {"const": True}},
    },
    "Failure": {
        "type": "object",
        "required": ["_success", "_msg", "reason"],
        "properties": {
            "_success": {"const": False},
            "_msg": {"type": "string", "description": "Error code (see the responses' descriptions)"},
            "reason": {"type": "string", "description": "What went wrong, for people"},
            "param": {"type": "string", "description": "The parameter at fault"},
            "params": {"type": "array", "items": {"type": "string"}, "description": "The parameters at fault"},
        },
    },
}

_STATUS_TEXT = {
    400: "Bad input: a parameter or a part of the URL is invalid, unknown, missing or in conflict",
    401: "Not logged in (or the session ended), or wrong credentials",
    403: "Not allowed: this admin may not do this, a limit is reached, or the client address may not use the API",
    404: "No such account or URL (also every URL while ENABLE_RESTFUL_API is off)",
    405: "Method not allowed",
    409: "Conflicts with the directory's current state (the account exists, a value changed meanwhile)",
    415: "The body is neither form data nor JSON",
    429: "Too many failed logins from this address; see Retry-After",
    500: "A bug or a broken server: see the service log",
    503: "The directory or a database cannot be reached",
}


def _error_codes() -> dict[int, list[str]]:
    """Error codes (`_msg`) by status: the exception classes' and the web layer's."""
    from iredldap.web.errors import _FALCON_CODES, status_of

    codes: dict[int, list[str]] = {}
    todo = [e.IredldapError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is e.ConfigError:
            continue
        codes.setdefault(status_of(cls()), []).append(cls.code)
    for status, code in _FALCON_CODES.items():
        codes.setdefault(status, []).append(code)
    return {status: sorted(set(found)) for status, found in codes.items()}


def _error_statuses(method: str, rule: authz.Rule | None, has_body: bool, template: str) -> list[int]:
    statuses = [400, 403, 500, 503]
    if rule is not authz.Rule.PUBLIC or template.endswith("/login"):
        statuses.append(401)
    statuses.append(404)
    if method in ("POST", "PUT", "DELETE") and rule is not authz.Rule.PUBLIC:
        statuses.append(409)
    if has_body:
        statuses.append(415)
    if template.endswith("/login"):
        statuses.append(429)
    return sorted(set(statuses))


# -- parameters ----------------------------------------------------------------

def _to_31(schema: dict) -> dict:
    """Kinds describe "may be empty" OpenAPI 3.0 style (`nullable`); 3.1 uses a type list."""
    schema = dict(schema)
    if schema.pop("nullable", False) and "type" in schema:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if not schema.get("description"):
        schema.pop("description", None)
    return schema


def param_schema(param: Param) -> dict:
    return _to_31(param.kind.schema())


def param_description(param: Param) -> str:
    parts = [param.summary.rstrip(".") + "." if param.summary else ""]
    kind_text = param.kind.schema().get("description")
    if kind_text:
        parts.append(f"Format: {kind_text}.")
    if param.aliases:
        parts.append(f"Also accepted under the legacy name{'s' if len(param.aliases) > 1 else ''} "
                     f"{', '.join(param.aliases)}.")
    if param.global_only:
        parts.append("Only global admins may send it.")
    if param.profile:
        parts.append(f"Normal admins cannot change it while the domain locks the '{param.profile}' profile tab.")
    return " ".join(p for p in parts if p)


def _extensions(param: Param) -> dict:
    out: dict[str, Any] = {}
    if param.aliases:
        out["x-aliases"] = list(param.aliases)
    if param.global_only:
        out["x-global-only"] = True
    if param.profile:
        out["x-profile"] = param.profile
    return out


def _rules_text(spec: ParamSet) -> str:
    lines = [f"At most one of {', '.join(group)}." for group in spec.conflicts]
    lines += [f"{a} needs {b}." for a, b in spec.requires]
    return " ".join(lines)


def query_parameters(spec: ParamSet) -> list[dict]:
    return [{"name": p.name, "in": "query", "required": p.required, "description": param_description(p),
             "schema": param_schema(p), **_extensions(p)} for p in spec.params]


def request_body(spec: ParamSet) -> dict:
    properties = {p.name: {**param_schema(p), "description": param_description(p), **_extensions(p)}
                  for p in spec.params}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [p.name for p in spec.params if p.required]
    if required:
        schema["required"] = required
    if spec.conflicts:
        schema["x-conflicts"] = [list(c) for c in spec.conflicts]
    if spec.requires:
        schema["x-requires"] = [list(r) for r in spec.requires]
    return {
        "required": bool(required),
        "description": "Form fields or a JSON object (the parameters may also come in the query string). "
                       "Unknown parameters are refused. " + _rules_text(spec),
        "content": {"application/x-www-form-urlencoded": {"schema": schema},
                    "application/json": {"schema": copy.deepcopy(schema)}},
    }


# Examples of URL parts (what the docs page fills in; the tests create these accounts).
PATH_EXAMPLES = {"domain": "example.com", "mail": "user@example.com", "new_mail": "renamed@example.com",
                 "days": 30, "account": "example.com", "direction": "inbound", "listname": "whitelist"}


def path_parameters(template: str, own: dict[str, Param] | None = None) -> list[dict]:
    out = []
    for name in _path_names(template):
        param = (own or {}).get(name) or URL_PARAMS.get(name)
        schema = param_schema(param) if param else {"type": "string"}
        item = {"name": name, "in": "path", "required": True, "schema": schema,
                "description": param_description(param) if param else name}
        if name in PATH_EXAMPLES:
            item["example"] = PATH_EXAMPLES[name]
        out.append(item)
    return out


def _path_names(template: str) -> list[str]:
    names, rest = [], template
    while "{" in rest:
        rest = rest[rest.index("{") + 1:]
        names.append(rest[:rest.index("}")])
    return names


# -- responses -----------------------------------------------------------------

def success_schema(op: Operation) -> dict:
    if op.data is None:
        return {"$ref": "#/components/schemas/Success"}
    properties: dict[str, Any] = {"_success": {"const": True}, "_data": op.data}
    required = ["_success", "_data"]
    if op.listing:
        properties.update({
            "_total": {"type": "integer", "minimum": 0, "description": "How many entries match in all"},
            "_page": {"type": "integer", "minimum": 1, "description": "This page (with page/page_size)"},
            "_page_size": {"type": "integer", "minimum": 1},
            "_next_cursor": {"type": "string",
                             "description": "Send as `cursor` for the next page; absent on the last page"},
        })
        required.append("_total")
    return {"type": "object", "required": required, "properties": properties}


def _responses(op: Operation, statuses: list[int]) -> dict:
    if op.content is not None:
        content = {media: {"schema": schema} for media, schema in op.content.items()}
    else:
        content = {"application/json": {"schema": success_schema(op)}}
    out: dict[str, Any] = {
        str(op.status): {"description": "Done" if op.data is None and op.content is None else "The data asked for",
                         "content": content},
    }
    for status in statuses:
        out[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return out


# -- the document ----------------------------------------------------------------

def _undeclared(resource, method: str) -> Operation:
    responder = getattr(resource, f"on_{method.lower()}", None)
    doc = (getattr(responder, "__doc__", None) or "").strip().splitlines()
    return Operation(doc[0] if doc else f"{method} (parameters not declared)")


def operations_of(routes: Iterable[tuple[str, Any, dict]]):
    """(template, method, resource, Operation or None) of every routed responder."""
    for template, resource, options in routes:
        suffix = options.get("suffix")
        for method in METHODS:
            responder = f"on_{method.lower()}" + (f"_{suffix}" if suffix else "")
            if not callable(getattr(resource, responder, None)):
                continue
            key = f"{method}_{suffix}" if suffix else method
            yield template, method, resource, getattr(resource, "operations", {}).get(key)


def _operation_id(method: str, template: str) -> str:
    words = [w.strip("{}") for w in template.split("/") if w and w != "api"]
    return method.lower() + "_" + "_".join(words).replace("-", "_")


def build(routes: Iterable[tuple[str, Any, dict]], *, rules: Mapping[tuple[str, str], authz.Rule],
          url_prefix: str = "", cookie_name: str = "iRedAdmin-LDAP") -> dict:
    """The whole document, for the routes as added to the app ((template,
    resource, options)) and their access rules (iredldap.web.app.RULES)."""
    paths: dict[str, dict] = {}
    used_statuses: set[int] = set()
    for template, method, resource, op in operations_of(routes):
        declared = op is not None
        op = op or _undeclared(resource, method)
        rule = rules.get((template, method))
        has_body = method in ("POST", "PUT", "PATCH")
        item: dict[str, Any] = {
            "operationId": _operation_id(method, template),
            "summary": op.summary,
            "tags": [type(resource).__module__.rsplit(".", 1)[-1]],
            "x-access": rule.value if rule else "none",
        }
        description = [op.description, _access_text(rule)]
        if not declared:
            item["x-undeclared"] = True
        params = path_parameters(template, getattr(resource, "url_params", None))
        if has_body:
            if op.params.params:
                item["requestBody"] = request_body(op.params)
        else:
            params += query_parameters(op.params)
            description.append(_rules_text(op.params))
        if params:
            item["parameters"] = params
        item["description"] = " ".join(d for d in description if d)
        statuses = _error_statuses(method, rule, has_body and bool(op.params.params), template)
        used_statuses.update(statuses)
        item["responses"] = _responses(op, statuses)
        item["security"] = [] if rule is authz.Rule.PUBLIC else [{"cookieAuth": []}, {"bearerAuth": []}]
        paths.setdefault(url_prefix + template, {})[method.lower()] = item

    codes = _error_codes()
    responses = {}
    for status in sorted(used_statuses):
        listed = codes.get(status, [])
        text = _STATUS_TEXT.get(status, f"HTTP {status}")
        if listed:
            text += ". Codes (`_msg`): " + ", ".join(listed) + " (and more specific ones, e.g. INVALID_MAIL)"
        responses[f"Error{status}"] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Failure"}}},
            "x-codes": listed,
        }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "iredldap",
            "version": __version__,
            "description": (
                "iRedAdmin-Pro compatible RESTful API over an iRedMail-style OpenLDAP directory. "
                f"Log in with POST {url_prefix}/api/login (session cookie), or send an API token as "
                "`Authorization: Bearer <token>`. Every answer is JSON: `{\"_success\": true}` "
                "(with `_data` for reads) or `{\"_success\": false, \"_msg\": CODE, \"reason\": ...}` "
                "with a real HTTP status. Parameters come form-encoded, in the query string or as a "
                "JSON object; booleans are yes/no, true/false or 1/0; lists are comma-separated."),
        },
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(_COMPONENT_SCHEMAS),
            "responses": responses,
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": cookie_name,
                               "description": f"The session cookie POST {url_prefix}/api/login sets"},
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An API token made by a global admin"},
            },
        },
    }


_ACCESS_TEXT = {
    authz.Rule.PUBLIC: "No login needed.",
    authz.Rule.LOGGED_IN: "Any admin; a normal admin sees only its own domains.",
    authz.Rule.GLOBAL: "Global admins only.",
    authz.Rule.DOMAIN: "Global admins, or an admin of {domain}.",
    authz.Rule.DOMAIN_CHANGE: "Global admins, or an admin of {domain} when no address of the domain holds admin "
                              "rights beyond its own.",
    authz.Rule.MAIL_DOMAIN: "Global admins, or an admin of the domain of {mail}.",
    authz.Rule.CREATE_DOMAIN: "Global admins, or normal admins allowed to create domains.",
    authz.Rule.MAIL_ACCOUNT: "Global admins, or an admin of the domain of {mail} when the account holds no "
                             "admin rights beyond the caller's.",
    authz.Rule.DELETE_DOMAIN: "Global admins, or an admin of {domain} allowed to create domains when no "
                              "address of the domain holds admin rights beyond its own.",
    authz.Rule.ACCOUNT: "{account} `global`: global admins only; else an admin of its domain.",
    authz.Rule.ACCOUNT_CHANGE: "{account} `global`: global admins only; else an admin of its domain, and for "
                               "an address, when the account holds no admin rights beyond the caller's (for a domain, no "
                               "address of it).",
}


def _access_text(rule: authz.Rule | None) -> str:
    return "Who: " + _ACCESS_TEXT[rule] if rule else "No access rule: refused."


__all__ = [
    "ENTRIES",
    "ENTRY",
    "LISTING",
    "OBJECT",
    "OBJECTS",
    "STRINGS",
    "build",
    "entry_with",
    "operations_of",
]
