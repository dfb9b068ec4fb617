"""Paths as clients write them: `//` collapses and a trailing `/` is ignored.

iRedAdmin-Pro runs behind nginx, whose `merge_slashes` (on by default) turns
`/iredadmin/api//login` into `/iredadmin/api/login`; clients configured with
a base URL ending in `/` depend on it.  Doing the same here makes them work
whatever sits in front of us (or nothing).  Only the path used for routing
changes; the OpenAPI document keeps the canonical paths.
"""

from __future__ import annotations

import re

_REPEATED = re.compile(r"/{2,}")


def canonical_path(path: str) -> str:
    path = _REPEATED.sub("/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


class MergeSlashes:
    """Runs before routing (process_request), so the router sees the canonical path."""

    def process_request(self, req, resp) -> None:
        if "//" in req.path or (len(req.path) > 1 and req.path.endswith("/")):
            req.path = canonical_path(req.path)
