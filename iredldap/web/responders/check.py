"""GET /api/check: the report of `iredldap check` (global admins; never repairs:
a GET changes nothing -- run `iredldap check --repair`)."""

from __future__ import annotations

import falcon

from iredldap.check import KINDS, Checker
from iredldap.model.params import DomainList, Operation, Param, ParamSet
from iredldap.web.common import ok, read_params

FINDING = {"type": "object", "properties": {
    "kind": {"type": "string", "enum": list(KINDS)},
    "dn": {"type": "string", "description": "the entry, journal targets, account or mailbox"},
    "detail": {"type": "string"},
    "repairable": {"type": "boolean", "description": "`iredldap check --repair` fixes it"},
    "repaired": {"type": "boolean"},
}}
REPORT = {"type": "object", "properties": {
    "clean": {"type": "boolean"},
    "repair": {"type": "boolean"},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"},
               "description": "findings per kind: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items())},
    "repaired": {"type": "integer"},
    "remaining": {"type": "integer"},
    "findings": {"type": "array", "items": FINDING},
}}


class Check:
    operations = {"GET": Operation(
        "Check the directory and the databases for what an outage or an import left wrong",
        ParamSet((Param("domains", DomainList(), "Only these domains (comma-separated; default: all)"),)),
        data=REPORT)}

    def __init__(self, checker: Checker):
        self.checker = checker

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["GET"])
        ok(resp, self.checker.run(values.get("domains", []), repair=False).as_dict())
