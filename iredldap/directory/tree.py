"""Where each kind of entry lives: the DN formulas of iRedMail's tree.

    <suffix>
    ├── o=domainAdmins            standalone admins   mail=<addr>
    └── o=domains
        └── domainName=<domain>
            ├── ou=Users          users, catch-all    mail=<addr>, mail=@<domain>
            ├── ou=Groups         mailing lists       mail=<list>
            ├── ou=Aliases        aliases             mail=<alias>
            └── ou=Externals      external members    memberOfGroup=<list>

Every value is escaped before it becomes part of a DN.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn as _ldap3_escape_rdn

from iredldap.errors import InvalidInput

CONTAINERS = ("Users", "Groups", "Aliases", "Externals")


def escape_rdn(value: str) -> str:
    """An RDN value, escaped; an empty one is refused (it would name the parent)."""
    if not value:
        raise InvalidInput("an empty name cannot be part of a directory name")
    return _ldap3_escape_rdn(value)


def f(template: str, *values: str) -> str:
    """Build an LDAP filter with every value escaped: f('(mail=%s)', addr)."""
    return template % tuple(escape_filter_chars(v) for v in values)


@dataclass(frozen=True)
class Tree:
    suffix: str
    domains_dn: str
    admins_dn: str

    def domain(self, domain: str) -> str:
        return f"domainName={escape_rdn(domain)},{self.domains_dn}"

    def container(self, domain: str, ou: str) -> str:
        return f"ou={escape_rdn(ou)},{self.domain(domain)}"

    def user(self, mail: str) -> str:
        local, _, domain = mail.rpartition("@")
        if not local:
            raise InvalidInput(f"{mail!r} is not an address", code="INVALID_MAIL")
        return f"mail={escape_rdn(mail)},{self.container(domain, 'Users')}"

    def catchall(self, domain: str) -> str:
        return f"mail={escape_rdn('@' + domain)},{self.container(domain, 'Users')}"

    def alias(self, mail: str) -> str:
        return f"mail={escape_rdn(mail)},{self.container(mail.rpartition('@')[2], 'Aliases')}"

    def maillist(self, mail: str) -> str:
        return f"mail={escape_rdn(mail)},{self.container(mail.rpartition('@')[2], 'Groups')}"

    def externals(self, list_mail: str) -> str:
        return f"memberOfGroup={escape_rdn(list_mail)},{self.container(list_mail.rpartition('@')[2], 'Externals')}"

    def admin(self, mail: str) -> str:
        return f"mail={escape_rdn(mail)},{self.admins_dn}"
