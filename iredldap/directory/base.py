"""The base of the tree: the suffix entry and the domains and admins containers.

`init_tree` creates whichever of them is missing and leaves the rest alone,
so it can run on every start of the demo.
"""

from __future__ import annotations

from ldap3.utils.dn import parse_dn

from iredldap.directory.connection import Directory
from iredldap.directory.tree import Tree

# Structural class for a container, by the attribute of its RDN.
_CLASSES = {
    "dc": ["dcObject", "organization"],
    "o": ["organization"],
    "ou": ["organizationalUnit"],
}


def _entry_for(dn: str) -> dict[str, list[str]]:
    attr, value, _ = parse_dn(dn)[0]
    classes = _CLASSES.get(attr.lower())
    if classes is None:
        raise ValueError(f"cannot create {dn}: use a dc=, o= or ou= name")
    attrs = {"objectClass": list(classes), attr: [value]}
    if attr.lower() == "dc":
        attrs["o"] = [value]  # organization needs an `o`
    return attrs


def init_tree(directory: Directory, tree: Tree) -> list[str]:
    """Create the missing base entries; return the DNs created."""
    created = []
    for dn in (tree.suffix, tree.domains_dn, tree.admins_dn):
        if not directory.exists(dn):
            directory.add(dn, _entry_for(dn))
            created.append(dn)
    return created
