"""The audit log: one row in iRedAdmin's `log` table for every change made
through the API.

`AuditLog` is a middleware.  After every POST, PUT or DELETE that reached an
endpoint of the access table (`app.RULES`) with a known caller, it writes
one row -- whatever the outcome, success or refusal:

    admin     the admin who made the request (with an API token: the token's
              admin; the message says `token:<id>`)
    ip        the client's address (X-Forwarded-For only from TRUSTED_PROXIES)
    domain    the domain the URL names (`{domain}`, the domain of `{mail}` or
              `{account}`)
    username  the address the URL names (`{mail}`, `{account}`)
    event     create / update / delete / active / disable / grant / revoke /
              verify, from the method and the route (iRedAdmin's names)
    loglevel  info when the request succeeded, error when it did not
    msg       "[API] PUT /api/user/u@x.test name=Ann, password=<hidden>
               => 200" (+ the error code, + " via token:<id>")

Parameters are logged by name; values only when the endpoint declares the
parameter and it is not secret.  A parameter the endpoint does not declare
(refused as UNKNOWN_PARAMETERS) is logged as `name=<hidden>`, whatever its
name: a misspelt `pw=` is as secret as `password=`.  The endpoint's
declarations are those its responder read the request with
(`read_params`), or, for a request refused before that, those of the
resource.  A declared parameter is secret when it is declared with the
`Secret` kind (or named `...password...` with a text kind) in any
`ParamSet` of the endpoints.  Values are cut to 200 characters each.

Not logged here: login and logout (they log themselves, as iRedAdmin does:
event `login`), GET requests, requests nobody could be named for (no
session or token: 401), and requests refused before routing (API switched
off, client not allowed).  If the log cannot be written (the database is
down) the answer to the client stands -- the change is made -- and the row
goes to the service's error log instead.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from typing import Any, Iterable, Mapping

import falcon

from iredldap.db.iredadmin import IredadminDB
from iredldap.errors import DatabaseUnavailable
from iredldap.model.accounts import ACCOUNT_TYPES
from iredldap.model.params import Blankable, Boolean, Choice, Integer, Number, ParamSet, Secret
from iredldap.web.common import raw_params

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# They write their own rows (event `login`).
SELF_LOGGING = frozenset({"/api/login", "/api/logout"})

_LOOKS_SECRET = re.compile(r"pass|pwd|secret|token|hash|key|cred", re.IGNORECASE)
_VALUE_MAX = 200
_MSG_MAX = 4000
HIDDEN = "<hidden>"


# -- which parameters are secret -------------------------------------------------

def _is_secret_kind(kind) -> bool:
    while isinstance(kind, Blankable):
        kind = kind.kind
    return isinstance(kind, Secret)


def _param_sets(value: Any, depth: int = 0) -> Iterable[ParamSet]:
    if isinstance(value, ParamSet):
        yield value
    elif isinstance(getattr(value, "params", None), ParamSet):      # an Operation
        yield value.params
    elif depth < 2 and isinstance(value, dict):
        for item in value.values():
            yield from _param_sets(item, depth + 1)
    elif depth < 2 and isinstance(value, (list, tuple)):
        for item in value:
            yield from _param_sets(item, depth + 1)


def declared_params(resources: Iterable[Any] = ()) -> tuple[set[str], set[str]]:
    """(every declared name, the secret ones), from the ParamSets of the
    `resources` (their attributes) and of every loaded iredldap module."""
    loaded = tuple((name, id(module)) for name, module in list(sys.modules.items())
                   if name == "iredldap" or name.startswith("iredldap."))
    module_names, module_secret = _module_params(loaded)
    names, secret = _names_and_secrets([s for resource in resources for s in _resource_param_sets(resource)])
    return names | module_names, secret | module_secret


@functools.lru_cache(maxsize=4)
def _module_params(loaded: tuple[tuple[str, int], ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The names and secret names declared by these modules: the walk over
    every module's values is the slow part of `create_app`, and its answer
    changes only when another iredldap module is loaded."""
    sets: list[ParamSet] = []
    for name, _ in loaded:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in list(vars(module).values()):
            sets.extend(_param_sets(value))
        account_types = [v for v in vars(module).values() if hasattr(v, "create_params")
                         and hasattr(v, "update_params") and not isinstance(v, type)]
        for account in account_types:
            for make in (account.create_params, account.update_params):
                try:
                    sets.extend(_param_sets(make()))
                except Exception:     # not an account type after all
                    pass
    names, secret = _names_and_secrets(sets)
    return frozenset(names), frozenset(secret)


def _names_and_secrets(sets: Iterable[ParamSet]) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    secret: set[str] = set()
    for spec in sets:
        for param in spec.params:
            keys = {param.name, *param.aliases}
            names |= keys
            plain_kind = param.kind
            while isinstance(plain_kind, Blankable):
                plain_kind = plain_kind.kind
            if _is_secret_kind(param.kind) or (
                    "password" in param.name.lower()
                    and not isinstance(plain_kind, (Integer, Boolean, Number, Choice))):
                secret |= keys
    return names, secret


def _resource_param_sets(resource: Any) -> list[ParamSet]:
    sets: list[ParamSet] = []
    for value in [*vars(type(resource)).values(), *vars(resource).values()]:
        sets.extend(_param_sets(value))
    return sets


def resource_params(resource: Any) -> frozenset[str]:
    """Every parameter name (and alias) the ParamSets of `resource` declare."""
    return frozenset(name for spec in _resource_param_sets(resource)
                     for name in (*spec.by_name, *spec.by_alias))


# -- the row ------------------------------------------------------------------------

# POST there creates an account (each type declares its item route).
_ITEM_ROUTES = tuple(t.routes.item for t in ACCOUNT_TYPES if t.routes.item)
_ENABLED = {"active", "enable", "enabled"}
_DISABLED = {"disabled", "disable", "inactive"}


def event_of(method: str, template: str, params: dict[str, Any]) -> str:
    """iRedAdmin's event name for a request."""
    if template.startswith("/api/verify_password/"):
        return "verify"
    if template.startswith("/api/token"):
        return "grant" if method == "POST" else "revoke"
    if method == "DELETE":
        return "delete"
    if method == "POST" and template in _ITEM_ROUTES:
        return "create"
    if method == "PUT" and set(params) == {"accountStatus"}:
        status = str(params["accountStatus"]).strip().lower()
        if status in _ENABLED:
            return "active"
        if status in _DISABLED:
            return "disable"
    return "update"


def subject_of(template: str, url_params: dict[str, Any]) -> tuple[str, str]:
    """(domain, username) the URL names."""
    def clean(value: Any) -> str:
        return str(value or "").strip().lower()

    if "mail" in url_params:
        mail = clean(url_params["mail"])
        return ("" if template.startswith(("/api/admin/", "/api/verify_password/admin/"))
                else mail.rpartition("@")[2]), mail
    if "account" in url_params:
        account = clean(url_params["account"])
        if account == "global":
            return "", ""
        if "@" in account.lstrip("@"):
            return account.rpartition("@")[2], account
        return account.lstrip("@"), ""
    if "domain" in url_params:
        return clean(url_params["domain"]), ""
    return "", ""


# What a log row must not hold: control characters (a forged line break in
# the log) and unpaired surrogates (no database can encode them: the row
# would be lost).  They are written as escapes instead.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with control characters and lone surrogates as \\x.. / \\u.... escapes."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _text(value: Any, depth: int = 0) -> str:
    if depth > 3:
        value = "..."
    elif isinstance(value, list):
        value = ",".join(_text(v, depth + 1) for v in value[:_VALUE_MAX])
    elif isinstance(value, dict):
        # No parameter takes an object: its keys are nobody's declarations,
        # so its values may be anything (a password under any name).
        value = "{" + ", ".join(f"{_text(k, depth + 1)}: {HIDDEN}" for k in list(value)[:_VALUE_MAX]) + "}"
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    elif value is None:
        value = ""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text if len(text) <= _VALUE_MAX else text[:_VALUE_MAX] + "..."
    return printable(text)


class AuditLog:
    """The middleware (see the module's doc)."""

    def __init__(self, db: IredadminDB, url_prefix: str = "", resources: Iterable[Any] = (), *,
                 rules: Mapping[tuple[str, str], Any] | None = None):
        self.db = db
        self.url_prefix = url_prefix
        # The access table (iredldap.web.app.RULES): only its endpoints are logged.
        self.rules = rules if rules is not None else {}
        self._by_resource: dict[int, frozenset[str]] = {}
        self.learn(resources)

    def learn(self, resources: Iterable[Any]) -> None:
        """Take the parameter declarations of these resources (and of every
        iredldap module loaded by now) into account."""
        self.declared, self.secret = declared_params(resources)

    def is_secret(self, name: str) -> bool:
        if name in self.secret:
            return True
        return name not in self.declared and bool(_LOOKS_SECRET.search(name))

    def params_text(self, params: dict[str, Any], declared: frozenset[str] | None = None) -> str:
        """`name=value, ...`; with `declared` (the endpoint's parameters),
        the value of any other parameter is hidden too."""
        def shown(name) -> str:
            if self.is_secret(name) or (declared is not None and name not in declared):
                return HIDDEN
            return _text(params[name])
        return ", ".join(f"{_text(name)}={shown(name)}" for name in sorted(params, key=str))

    def declared_by(self, req: falcon.Request, resource: Any) -> frozenset[str]:
        """The parameters this request's endpoint declares."""
        read = getattr(req.context, "declared_params", None)
        if read is not None:
            return read
        # Refused before the responder read its parameters: the resource's.
        key = id(resource)
        if key not in self._by_resource:
            self._by_resource[key] = resource_params(resource)
        return self._by_resource[key]

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        # Kept before the access check runs (it may refuse the request).
        req.context.url_params = dict(params or {})

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        if req.method not in WRITE_METHODS or resource is None:
            return
        template = (req.uri_template or "")[len(self.url_prefix):]
        if template in SELF_LOGGING or (template, req.method) not in self.rules:
            return
        principal = getattr(req.context, "principal", None)
        if principal is None:
            return
        try:
            row = self._row(req, resp, template, principal, self.declared_by(req, resource))
        except Exception:          # never fail a request over its log row
            log.exception("cannot build the audit row of %s %s", req.method, req.path)
            return
        try:
            self.db.add_log(**row)
        except Exception as exc:
            # A database whose columns take less than all of Unicode (MySQL's
            # 3-byte utf8, latin1) refuses some accepted values: the row
            # then goes in with those characters escaped, rather than not at all.
            ascii_row = {k: v.encode("ascii", "backslashreplace").decode("ascii") if isinstance(v, str) else v
                         for k, v in row.items()}
            if isinstance(exc, DatabaseUnavailable) or ascii_row == row:
                log.error("audit log not written (%s): %r", exc, ascii_row)
                return
            try:
                self.db.add_log(**ascii_row)
            except Exception as exc:
                log.error("audit log not written (%s): %r", exc, ascii_row)

    def _row(self, req: falcon.Request, resp: falcon.Response, template: str, principal,
             declared: frozenset[str] | None = None) -> dict[str, Any]:
        try:
            params = raw_params(req)
            shown = self.params_text(params, declared)
        except Exception:
            params, shown = {}, "(parameters unreadable)"
        url_params = getattr(req.context, "url_params", None) or {}
        domain, username = subject_of(template, url_params)
        extra = getattr(req.context, "audit", None) or {}
        domain = extra.get("domain", domain)
        username = extra.get("username", username)
        status = resp.status_code
        result = str(status)
        if status >= 400 and isinstance(resp.media, dict) and resp.media.get("_msg"):
            result += f" {resp.media['_msg']}"
        path = req.path[len(self.url_prefix):] if req.path.startswith(self.url_prefix) else req.path
        msg = f"[API] {req.method} {path}"
        if shown:
            msg += f" {shown}"
        if extra.get("note"):
            msg += f" ({extra['note']})"
        msg += f" => {result}"
        token = getattr(req.context, "token", None)
        if token is not None:
            msg += f" via {token.who}"
        return {
            "admin": printable(principal.mail),
            "ip": printable(getattr(req.context, "client_ip", "") or ""),
            "domain": printable(str(domain)),
            "username": printable(str(username)),
            "event": event_of(req.method, template, params),
            "loglevel": "info" if status < 400 else "error",
            "msg": printable(msg if len(msg) <= _MSG_MAX else msg[:_MSG_MAX] + "..."),
        }


def note(req: falcon.Request, **values: str) -> None:
    """Let a responder add to its audit row: `domain`, `username`, `note`."""
    current = getattr(req.context, "audit", None) or {}
    current.update(values)
    req.context.audit = current
