"""API tokens (global admins only, see the route table in iredldap.web.app and iredldap.db.tokens).

    GET    /api/tokens                    TokenCollection: list (`admin` filter)
    POST   /api/tokens                    TokenCollection: create; the token is in the answer, once
    GET    /api/token/<id>                TokenItem
    DELETE /api/token/<id>                TokenItem: revoke (at once)

POST parameters: `admin` (default: the caller), `name`, `read_only`,
`domains` (comma-separated; left out: not limited; given but empty: 400), `expires` (ISO 8601 date or
date-time, UTC unless an offset is given) or `expires_in_days`.  The answer
(201): ``{"_success": true, "_data": {"id": 3, "token": "irdl_...", ...}}``.
A token is shown as ``{"id", "admin", "name", "read_only", "domains" (null:
not limited), "created", "expires", "last_used", "revoked" (ISO 8601 UTC or
null), "status" (active, expired or revoked)}``; never its hash.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import falcon

from iredldap.web import audit
from iredldap.directory.admins import AdminStore
from iredldap.errors import InvalidInput, NoSuchAccount
from iredldap.model.params import Boolean, Converted, DomainList, Email, Integer, Operation, Param, ParamSet, Text
from iredldap.db.tokens import TokenStore, parse_time
from iredldap.web.common import ok, principal, read_params


def _iso_time(raw: str, *, param: str) -> str:
    parse_time(raw, param=param)
    return raw


TOKEN_CREATE_PARAMS = ParamSet((
    Param("admin", Email(), "The admin the token acts as (default: the caller)"),
    Param("name", Text(255), "What the token is for"),
    Param("read_only", Boolean(), "Only GET requests"),
    Param("domains", DomainList(), "Only these domains (comma-separated; leave out for every domain of the admin)"),
    Param("expires", Converted(check=_iso_time, allow_empty=False,
                               description="ISO 8601 date or date-time (UTC unless an offset is given)"),
          "When the token stops working"),
    Param("expires_in_days", Integer(minimum=1, maximum=36500), "Days until the token stops working"),
), conflicts=(("expires", "expires_in_days"),))

TOKEN_LIST_PARAMS = ParamSet((
    Param("admin", Email(), "Only the tokens of this admin"),
))


_STAMP = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
TOKEN_VIEW: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "admin": {"type": "string"}, "name": {"type": "string"},
    "read_only": {"type": "boolean"},
    "domains": {"type": ["array", "null"], "items": {"type": "string"}, "description": "null: not limited"},
    "created": _STAMP, "expires": _STAMP, "last_used": _STAMP, "revoked": _STAMP,
    "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
}}
NEW_TOKEN = {**TOKEN_VIEW, "properties": {**TOKEN_VIEW["properties"], "token": {
    "type": "string", "description": "The token itself: send it as `Authorization: Bearer <token>`. "
                                     "Shown this once; only a hash of it is kept."}}}
# At most a 64-bit integer: the databases' id column (a larger one was a 500 in SQLite).
TOKEN_ID = Param("token_id", Integer(minimum=1, maximum=2**63 - 1), "The token's id")


def _token_id(raw: str) -> int:
    return TOKEN_ID.kind.parse(raw, "token_id")


class TokenCollection:
    operations = {
        "GET": Operation("List the API tokens", TOKEN_LIST_PARAMS, data={"type": "array", "items": TOKEN_VIEW}),
        "POST": Operation("Create an API token (shown once in the answer)", TOKEN_CREATE_PARAMS, status=201,
                          data=NEW_TOKEN),
    }

    def __init__(self, tokens: TokenStore, admins: AdminStore):
        self.tokens = tokens
        self.admins = admins

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["GET"])
        ok(resp, self.tokens.list(admin=values.get("admin")))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["POST"])
        if "domains" in values and not values["domains"]:
            # Fail closed: an empty list must not become a token for every domain.
            raise InvalidInput("domains: no domain given; leave the parameter out for a token not limited "
                               "to domains", param="domains")
        admin = values.get("admin") or principal(req).mail
        audit.note(req, username=admin)
        if self.admins.principal_for(admin) is None:
            raise NoSuchAccount(f"admin: {admin} is not an active admin", param="admin")
        expires = None
        if "expires" in values:
            expires = parse_time(values["expires"], param="expires")
        elif "expires_in_days" in values:
            expires = self.tokens.db.now() + timedelta(days=values["expires_in_days"])
        token_id, token = self.tokens.create(admin=admin, name=values.get("name", ""),
                                             read_only=values.get("read_only", False),
                                             domains=values.get("domains") or None, expires=expires)
        audit.note(req, note=f"token:{token_id}")
        data = self.tokens.get(token_id)
        assert data is not None     # just created; token rows are never deleted
        data["token"] = token
        ok(resp, data, status=201)


class TokenItem:
    operations = {
        "GET": Operation("Show an API token (not the token itself)", data=TOKEN_VIEW),
        "DELETE": Operation("Revoke an API token (at once)"),
    }
    url_params = {"token_id": TOKEN_ID}

    def __init__(self, tokens: TokenStore):
        self.tokens = tokens

    def _get(self, raw: str) -> dict:
        found = self.tokens.get(_token_id(raw))
        if found is None:
            raise NoSuchAccount(f"no API token {raw}", code="NO_SUCH_TOKEN")
        return found

    def on_get(self, req: falcon.Request, resp: falcon.Response, token_id: str) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, self._get(token_id))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: str) -> None:
        read_params(req, self.operations["DELETE"])
        found = self._get(token_id)
        audit.note(req, username=found["admin"], note=f"token:{found['id']}")
        self.tokens.revoke(found["id"])
        ok(resp)
