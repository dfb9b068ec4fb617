"""JSON text read from outside (a request body, a cursor a client sends back,
an answer of mlmmjadmin, a session row).  Two things plain `json.loads` lets
through are malformed here: too deep a nesting (it raises RecursionError,
which no caller expects and which would surface as a 500), and a name given
twice in one object (it keeps the last silently; a form giving a field twice
is refused, so the same request as JSON is too)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        twice = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
        raise ValueError(f"{', '.join(twice)}: given more than once in one object")
    return result


def loads(text: str | bytes) -> Any:
    """json.loads; too deep a nesting, or a name twice in one object, is a
    ValueError, as any other bad JSON."""
    try:
        return json.loads(text, object_pairs_hook=_unique_names)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
