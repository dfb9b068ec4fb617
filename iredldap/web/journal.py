"""Finishing unfinished multi-entry writes before a request touches their objects.

A request that lost the directory part-way leaves its journal row open (see
`iredldap.directory.journal`).  Before any later request on the same domain
or address runs, that row is finished -- rolled forward or back -- so the
request sees every object whole or absent: a retried create of a half-written
domain then succeeds instead of answering 409.  The authentication middleware
calls `settle_unfinished` once it knows who asks and before it reads the
entries the request needs.
"""

from __future__ import annotations

import logging

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


def settle_unfinished(journal, params: dict, *, writes_open: bool = True) -> None:
    """Finish the unfinished writes on what the URL names (before the request
    reads it).  `writes_open` False: the caller's session or token was read
    together with the fact that no journaled write is unfinished."""
    targets = targets_of(params) if journal is not None and writes_open else []
    if not targets:
        return
    try:
        journal.settle(targets)
    except IredldapError as err:
        # The request itself will meet the same trouble and say so.
        log.warning("unfinished writes on %s not finished yet: %s", " ".join(targets), err.code)
