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
from ldap3.utils.dn import escape_rdn

CONTAINERS = ("Users", "Groups", "Aliases", "Externals")


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
        return f"mail={escape_rdn(mail)},{self.container(mail.rpartition('@')[2], 'Users')}"

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
