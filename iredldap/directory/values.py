"""Value-level changes of multi-valued attributes.

Lists change by adding and deleting single values, never by replacing the
whole attribute, so two admins editing the same list at once both win.
Comparison is case-insensitive, as the schema's matching rules are.
"""

from __future__ import annotations

from typing import Any, Iterable

from .connection import ADD, DELETE


def diff(current: Iterable[str], wanted: Iterable[str]) -> list[tuple[str, list[str]]]:
    """ADD/DELETE operations turning `current` into `wanted`."""
    cur = {v.lower(): v for v in current}
    want = {v.lower(): v for v in wanted}
    ops = []
    remove = [v for k, v in cur.items() if k not in want]
    add = [v for k, v in want.items() if k not in cur]
    if remove:
        ops.append((DELETE, remove))
    if add:
        ops.append((ADD, add))
    return ops


def wanted(current: list[str], values: dict[str, Any], reset: str, add: str, remove: str) -> list[str] | None:
    """The list after a `reset` / `add` / `remove` parameter triple; None if none was given."""
    if reset in values:
        return list(values[reset])
    if add not in values and remove not in values:
        return None
    removing = {r.lower() for r in values.get(remove, [])}
    result = [v for v in (c.lower() for c in current) if v not in removing]
    return result + [a for a in values.get(add, []) if a.lower() not in result]
