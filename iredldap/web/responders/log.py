"""GET /api/log: the admin activity log (global admins only).

Reads iRedAdmin's `log` table: the rows of iRedAdmin itself, of logins, and
the audit rows of this API (iredldap.web.audit), newest first.

Filters: `admin`, `domain`, `username`, `event` (exact), `from` (inclusive)
and `to` (exclusive; a bare date includes that whole day) as ISO 8601 dates
or date-times (UTC unless an offset is given).  Paging: `page` (from 1) and
`page_size` (1-1000, default 50).  The answer has the shape of the other
listings:

    {"_success": true, "_total": 120, "_page": 1, "_page_size": 50,
     "_data": [{"id": 7, "timestamp": "2024-05-01T12:00:00+00:00",
                "admin": "...", "ip": "...", "domain": "...", "username": "...",
                "event": "update", "loglevel": "info", "msg": "[API] ..."}]}
"""

from __future__ import annotations

from datetime import timezone

import falcon

from iredldap.db.iredadmin import IredadminDB
from iredldap.errors import InvalidInput
from iredldap.model.params import Converted, Integer, Operation, Param, ParamSet, Text
from iredldap.db.tokens import parse_time
from iredldap.web.common import read_params


def _iso_time(raw: str, *, param: str) -> str:
    parse_time(raw, param=param)
    return raw


_TIME = Converted(check=_iso_time, allow_empty=False,
                  description="ISO 8601 date or date-time (UTC unless an offset is given)")

LOG_PARAMS = ParamSet((
    Param("admin", Text(320, allow_empty=False), "Only rows of this admin"),
    Param("domain", Text(255, allow_empty=False), "Only rows about this domain"),
    Param("username", Text(320, allow_empty=False), "Only rows about this account"),
    Param("event", Text(20, allow_empty=False), "Only this event (login, create, update, delete, ...)"),
    Param("from", _TIME, "Rows written at or after this time", aliases=("since",)),
    Param("to", _TIME, "Rows written before this time (a bare date: up to the end of that day)",
          aliases=("until",)),
    Param("page", Integer(minimum=1, maximum=10_000_000), "Page number, from 1"),
    Param("page_size", Integer(minimum=1, maximum=1000), "Rows per page (default 50)"),
))


LOG_ROW = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "timestamp": {"type": ["string", "null"], "description": "ISO 8601, UTC"},
    **{name: {"type": "string"} for name in ("admin", "ip", "domain", "username", "event", "loglevel", "msg")},
}}


class Log:
    operations = {"GET": Operation("Read the admin activity log (newest first)", LOG_PARAMS,
                                   data={"type": "array", "items": LOG_ROW}, listing=True)}

    def __init__(self, db: IredadminDB):
        self.db = db

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["GET"])
        since = parse_time(values["from"], param="from") if "from" in values else None
        until = parse_time(values["to"], param="to", end_of_day=True) if "to" in values else None
        if since is not None and until is not None and until <= since:
            raise InvalidInput("to: must be later than from", param="to")
        page, page_size = values.get("page", 1), values.get("page_size", 50)
        rows, total = self.db.read_log(
            admin=_lower(values.get("admin")), domain=_lower(values.get("domain")),
            username=_lower(values.get("username")), event=values.get("event"),
            since=since, until=until, offset=(page - 1) * page_size, limit=page_size)
        resp.media = {"_success": True, "_data": [_row(r) for r in rows], "_total": total, "_page": page,
                      "_page_size": page_size}


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _row(row: dict) -> dict:
    stamp = row.get("timestamp")
    return {
        "id": int(row["id"]),
        "timestamp": stamp.replace(tzinfo=timezone.utc).isoformat(timespec="seconds") if stamp else None,
        "admin": row.get("admin") or "",
        "ip": row.get("ip") or "",
        "domain": row.get("domain") or "",
        "username": row.get("username") or "",
        "event": row.get("event") or "",
        "loglevel": row.get("loglevel") or "",
        "msg": row.get("msg") or "",
    }
