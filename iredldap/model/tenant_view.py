"""What a normal admin may see of its own entries: nothing about other tenants.

Another domain's admin can write onto this tenant's entries: adding
plain@own.test to a list of other.test puts `memberOfGroup:
list@other.test` on plain's entry (iRedMail's member-side list
membership).  Shown to own.test's admin, that value names a list of
another customer.  Every view a normal admin gets of its entries (the
account, listings, LDIF exports) drops those values with `hide_foreign`;
a global admin's views stay complete.
"""

from __future__ import annotations

from typing import Collection, TypeVar

#: Attributes of an entry that other domains' admins write, naming their accounts.
FOREIGN_WRITTEN = frozenset({"memberofgroup"})

V = TypeVar("V", str, bytes)


def in_domains(value: str | bytes, domains: Collection[str]) -> bool:
    """Whether the address `value` lies in one of `domains` (lower case)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return text.strip().lower().rpartition("@")[2] in domains


def own_values(values: list[V], domains: Collection[str]) -> list[V]:
    """The addresses among `values` in `domains`, in their order."""
    return [v for v in values if in_domains(v, domains)]


def hide_foreign(attrs: dict[str, list[V]], domains: Collection[str]) -> dict[str, list[V]]:
    """`attrs` (attribute -> values, any case) without the values of
    FOREIGN_WRITTEN attributes outside `domains`; an attribute left with
    none is dropped.  Changes `attrs` in place and returns it."""
    mine = frozenset(d.lower() for d in domains)
    for attr in list(attrs):
        if attr.partition(";")[0].lower() in FOREIGN_WRITTEN:
            kept = own_values(attrs[attr], mine)
            if kept:
                attrs[attr] = kept
            else:
                del attrs[attr]
    return attrs
