"""Other entries that name an address: forwarding targets, alias members,
domain admins, BCC addresses, list moderators and owners, list memberships.

When an account is deleted or renamed, every such value must go or follow,
or Postfix would keep forwarding to an address that no longer exists.
"""

from __future__ import annotations

from iredldap.directory.connection import ADD, DELETE, SUBTREE, Batch, Changes, Directory, Entry
from iredldap.directory.tree import f

# Attributes whose values are addresses of other accounts.
MULTI_VALUED = ("mailForwardingAddress", "domainAdmin", "listModerator", "listOwner", "listAllowedUser",
                "memberOfGroup")
SINGLE_VALUED = ("userSenderBccAddress", "userRecipientBccAddress", "domainSenderBccAddress",
                 "domainRecipientBccAddress")
_ALL = MULTI_VALUED + SINGLE_VALUED


def find(directory: Directory, base: str, address: str, *, exclude_dn: str = "") -> list[Entry]:
    """Entries below `base` holding `address` in one of the reference attributes,
    plus external-member entries that list it in `mail`."""
    parts = "".join(f("(%s=%s)" % (attr, "%s"), address) for attr in _ALL)
    flt = f"(|{parts}" + f("(&(objectClass=mailExternalUser)(mail=%s))", address) + ")"
    found = directory.search(base, flt, scope=SUBTREE, attrs=_ALL + ("mail", "objectClass"))
    return [e for e in found if e.dn.lower() != exclude_dn.lower()]


def changes_for(entry: Entry, old: str, new: str | None) -> Changes:
    """The value-level changes that replace `old` by `new` (or drop it) in one entry."""
    changes: Changes = {}
    attrs = list(_ALL)
    if any(c.lower() == "mailexternaluser" for c in entry.get("objectClass")):
        attrs.append("mail")
    for attr in attrs:
        stored = [v for v in entry.get(attr) if v.lower() == old.lower()]
        if not stored:
            continue
        ops = [(DELETE, stored)]
        if new is not None and not entry.has_value(attr, new):
            ops.append((ADD, [new]))
        changes[attr] = ops
    return changes


def rewrite(batch: Batch, entries: list[Entry], old: str, new: str | None) -> None:
    """Queue the changes in the batch (sent in order with the rest of its plan)."""
    for entry in entries:
        changes = changes_for(entry, old, new)
        if changes:
            batch.plan_modify(entry.dn, changes)
