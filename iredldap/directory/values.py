"""Value-level changes of multi-valued attributes.

Lists change by adding and deleting single values, never by replacing the
whole attribute, so two admins editing the same list at once both win.
Comparison is case-insensitive, as the schema's matching rules are.
"""

from __future__ import annotations

from typing import Any, Iterable

from iredldap.directory.connection import ADD, DELETE, REPLACE


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


def field_attrs(fields, values: dict[str, Any], *, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Attributes for a new entry from the declared fields given in `values`."""
    attrs: dict[str, list[str]] = {}
    for field in fields:
        name = field.param.name
        if name in skip or name not in values or values[name] == "" or not field.attr:
            continue
        encoded = field.encode(values[name])
        if encoded:
            attrs[field.attr] = encoded.split(",") if field.multi else [encoded]
    return attrs


def field_changes(entry, fields, values: dict[str, Any], *,
                  empty_defaults: dict[str, str] | None = None) -> dict[str, list]:
    """The minimal changes that give `entry` the declared fields in `values`.

    Single values are replaced only when they differ; lists change by value.
    `empty_defaults` names fields whose empty value means a default, not removal.
    """
    changes: dict[str, list] = {}
    for field in fields:
        name = field.param.name
        if name not in values or not field.attr:
            continue
        value = values[name]
        if value == "" and empty_defaults and name in empty_defaults:
            value = empty_defaults[name]
        new = None if value == "" else field.encode(value)
        current = entry.get(field.attr)
        if field.multi:
            ops = diff(current, new.split(",") if new else [])
            if ops:
                changes[field.attr] = ops
        elif new is None and current:
            changes[field.attr] = [(DELETE, [])]
        elif new is not None and [new] != current:
            changes[field.attr] = [(REPLACE, [new])]
    return changes


def wanted_services(services: dict[str, str], values: dict) -> dict[str, str]:
    """enabledService after `services` (replace all), `addService`, `removeService`:
    lower-cased name -> the value as spelled."""
    if "services" in values:
        services = {s.lower(): s for s in values["services"]}
    else:
        services = dict(services)
    for name in values.get("addService", []):
        services.setdefault(name.lower(), name)
    for name in values.get("removeService", []):
        services.pop(name.lower(), None)
    return services
