"""Health and metrics, outside /api (so ENABLE_RESTFUL_API and
RESTRICT_API_ACCESS do not hide them; URL_PREFIX applies).

    GET /healthz    liveness: the process answers; touches nothing
    GET /readyz     readiness: the directory and the iredadmin, Amavisd and
                    iRedAPD databases answer; 503 naming the ones that do not
                    (mlmmj, the subscribable lists' backend, is reported
                    but does not fail readiness)
    GET /metrics    Prometheus metrics (iredldap.metrics); with
                    RESTRICT_METRICS_ACCESS only from RESTFUL_API_CLIENTS

/readyz answers ``{"_success": true, "_data": {"directory": "ok",
"iredadmin": "ok", "amavisd": "ok", "iredapd": "ok"}}``, or 503 with
``"_msg": "NOT_READY"``, a reason naming what is down and the same
``_data`` with the error of each.  With several directory servers
(LDAP_URI lists them) each is asked and named too, as
``"directory ldap://ldap1:389": "ok"`` or ``"unavailable: <why>"``; the
directory counts as up while one of them answers (``"directory": "ok"``, or
``"degraded: n of m servers unavailable"``), and is down only when none
does.  An embedded SQLite database of Amavisd or
iRedAPD that was never created holds no settings yet and is reported as
``"absent"`` without failing readiness (asking does not create it).
"""

from __future__ import annotations

from typing import Callable

import falcon

from iredldap import metrics
from iredldap.config import Settings
from iredldap.directory.connection import BASE
from iredldap.errors import IredldapError, NotAuthorized
from iredldap.model.params import Operation
from iredldap.web.common import client_ip, ok
from iredldap.web.middleware import _in


class Liveness:
    operations = {"GET": Operation("Liveness: the service answers", data={
        "type": "object", "properties": {"status": {"const": "alive"}}})}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ok(resp, {"status": "alive"})


class Readiness:
    operations = {"GET": Operation(
        "Readiness: the directory and the databases answer (503 NOT_READY naming those that do not)",
        data={"type": "object", "additionalProperties": {"type": "string"},
              "description": "backend -> ok, absent, or unavailable: <why>"})}

    def __init__(self, checks: dict[str, Callable[[], object]]):
        """`checks`: name -> a callable that raises when the backend is down
        (and may return a status other than "ok", or a dict part -> status
        of a backend made of several servers, "ok" for those that answer)."""
        self.checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results: dict[str, str] = {}
        down: list[str] = []
        for name, check in self.checks.items():
            try:
                status = check()
                if isinstance(status, dict):
                    status = _parts(name, status, results, down)
                results[name] = status if isinstance(status, str) else "ok"
            except IredldapError as exc:
                results[name] = f"unavailable: {exc.reason or exc.code}"
                down.append(name)
            except Exception as exc:    # a readiness probe reports, it does not crash
                results[name] = f"unavailable: {type(exc).__name__}"
                down.append(name)
        if down:
            resp.status = 503
            resp.media = {"_success": False, "_msg": "NOT_READY",
                          "reason": f"not reachable: {', '.join(down)}", "_data": results}
            return
        ok(resp, results)


def _parts(name: str, parts: dict[str, str], results: dict[str, str], down: list[str]) -> str:
    """Report each part as "<name> <part>"; the backend is down when all are."""
    failed = 0
    for part, status in parts.items():
        results[f"{name} {part}"] = status
        failed += status != "ok"
    if failed == len(parts):
        down.append(name)
        return "unavailable: no server answers"
    return f"degraded: {failed} of {len(parts)} servers unavailable" if failed else "ok"


def directory_check(directory, base: str) -> Callable[[], dict[str, str] | None]:
    """The directory answers a base search on `base` (with our bind DN);
    with several servers each is asked (`Directory.probe`)."""
    def check() -> dict[str, str] | None:
        if len(directory.uris) > 1:
            return directory.probe(base)
        directory.search(base, "(objectClass=*)", scope=BASE, attrs=("1.1",))
        return None
    return check


def reported_only(check: Callable[[], object]) -> Callable[[], str]:
    """`check`'s trouble shown as a status instead of failing readiness."""
    def status() -> str:
        try:
            check()
        except IredldapError as exc:
            return f"unavailable: {exc.reason or exc.code}"
        return "ok"
    return status


def foreign_db_check(db) -> Callable[[], str | None]:
    """Readiness of an Amavisd/iRedAPD store: an SQLite file never created is 'absent'."""
    def check() -> str | None:
        if db.database.missing():
            return "absent"
        db.ping()
        return None
    return check


class Metrics:
    operations = {"GET": Operation("Prometheus metrics (text exposition format)",
                                   content={"text/plain": {"type": "string"}})}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.settings.restrict_metrics_access:
            if not _in(client_ip(req), self.settings.restful_api_clients):
                raise NotAuthorized(f"metrics are not available to {client_ip(req)}")
        body, content_type = metrics.exposition()
        resp.status = 200
        resp.content_type = content_type
        resp.data = body
