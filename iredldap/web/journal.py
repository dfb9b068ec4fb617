"""Finishing unfinished multi-entry writes before a request touches their objects.

A request that lost the directory part-way leaves its journal row open (see
`iredldap.directory.journal`).  Before any later request on the same domain
or address runs, that row is finished -- rolled forward or back -- so the
request sees every object whole or absent: a retried create of a half-written
domain then succeeds instead of answering 409.
"""

from __future__ import annotations

import logging

import falcon

from iredldap.errors import IredldapError

log = logging.getLogger(__name__)


def targets_of(params: dict) -> list[str]:
    """The journal targets a request's URL names."""
    out = []
    if params.get("domain"):
        out.append(f"domain:{str(params['domain']).lower()}")
    for key in ("mail", "new_mail"):
        value = str(params.get(key) or "").lower()
        if "@" in value:
            out += [f"mail:{value}", f"domain:{value.rpartition('@')[2]}"]
    return out


class SettleJournal:
    """Runs after authentication: anonymous requests finish nothing."""

    def __init__(self, journal):
        self.journal = journal

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not params:
            return
        targets = targets_of(params)
        if not targets:
            return
        try:
            settled = self.journal.settle(targets)
        except IredldapError as err:
            # The request itself will meet the same trouble and say so.
            log.warning("unfinished writes on %s not finished yet: %s", " ".join(targets), err.code)
            return
        access = getattr(req.context, "access", None)
        if settled and access is not None:
            # The request's context was read before: its entries of these
            # objects are stale, and so may be the access decision made on them.
            access.forget_found()
            req.context.recheck_access()
