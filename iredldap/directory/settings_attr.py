"""`accountSetting`: iRedMail's multi-valued `key:value` attribute.

Each setting is one LDAP value, split on the first colon.  The list-type keys
(`disabledDomainProfile` ...) hold one value per item.  Changes are made
value by value (delete `key:old`, add `key:new`) so two admins changing
different settings at the same time do not overwrite each other.
"""

from __future__ import annotations

from typing import Any

from iredldap.directory.connection import ADD, DELETE, Changes

LIST_KEYS = ("disabledDomainProfile", "disabledUserProfile", "disabledUserPreference", "disabledMailService")


def parse(values: list[str]) -> dict[str, Any]:
    """{'defaultQuota': '1024', 'disabledUserProfile': ['bcc', 'relay'], ...}"""
    out: dict[str, Any] = {}
    list_keys = {k.lower(): k for k in LIST_KEYS}
    for value in values:
        key, sep, item = value.partition(":")
        if not sep:
            continue
        if key.lower() in list_keys:
            out.setdefault(list_keys[key.lower()], []).append(item.lower())
        else:
            out[key] = item
    return out


def value_of(values: list[str], key: str) -> str | None:
    return parse(values).get(key)


def int_of(values: list[str], key: str, default: int = 0) -> int:
    raw = value_of(values, key)
    try:
        return int(str(raw).split(":")[0]) if raw not in (None, "") else default
    except ValueError:
        return default


def set_changes(current: list[str], key: str, value: str | None) -> Changes:
    """Changes that make `key` hold `value` (None removes it)."""
    old = [v for v in current if v.partition(":")[0].lower() == key.lower()]
    new = [f"{key}:{value}"] if value is not None else []
    return _setting_ops(remove=[v for v in old if v not in new], add=[v for v in new if v not in old])


def list_changes(current: list[str], key: str, add: list[str], remove: list[str]) -> Changes:
    have = {v.lower() for v in current}
    adds = [f"{key}:{i}" for i in add if f"{key}:{i}".lower() not in have]
    removes = [v for v in current
               if v.partition(":")[0].lower() == key.lower() and v.partition(":")[2].lower() in {r.lower() for r in remove}]
    return _setting_ops(remove=removes, add=adds)


def _setting_ops(*, remove: list[str], add: list[str]) -> Changes:
    """One modify of accountSetting: the deletes first, so a changed key never holds two values."""
    ops = ([(DELETE, remove)] if remove else []) + ([(ADD, add)] if add else [])
    return {"accountSetting": ops} if ops else {}


def merge(*changes: Changes) -> Changes:
    out: Changes = {}
    for change in changes:
        for attr, ops in change.items():
            out.setdefault(attr, []).extend(ops)
    return out
