"""JSON text read from outside (a request body, a cursor a client sends back,
an answer of mlmmjadmin, a session row), with too deep a nesting taken as
malformed JSON: plain `json.loads` raises RecursionError for it, which no
caller expects and which would surface as a 500."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """json.loads; too deep a nesting is a ValueError, as any other bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
