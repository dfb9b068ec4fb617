"""Where each kind of entry lives: the DN formulas of iRedMail's tree.

    <suffix>
    ├── o=domainAdmins            standalone admins   mail=<addr>
    └── o=domains
        └── domainName=<domain>
            ├── ou=Users          users, catch-all    mail=<addr>, mail=@<domain>
            ├── ou=Groups         mailing lists       mail=<list>
            ├── ou=Aliases        aliases             mail=<alias>
            └── ou=Externals      external members    memberOfGroup=<list>

Every value is escaped before it becomes part of a DN.  The formulas are
the `dn:` lines of the templates (ldif_templates/, model/accounts.py).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ldap3.utils.dn import escape_rdn as _ldap3_escape_rdn

from iredldap.errors import InvalidInput
from iredldap.model.accounts import ADMIN, ALIAS, CATCHALL, DOMAIN, MAILLIST, USER, AccountType, escape_filter_value
from iredldap.model.templates import Template, load

CONTAINERS = ("Users", "Groups", "Aliases", "Externals")


def escape_rdn(value: str) -> str:
    """An RDN value, escaped; an empty one is refused (it would name the parent)."""
    if not value:
        raise InvalidInput("an empty name cannot be part of a directory name")
    return _ldap3_escape_rdn(value)


def f(template: str, *values: str) -> str:
    """Build an LDAP filter with every value escaped: f('(mail=%s)', addr)."""
    return template % tuple(escape_filter_value(v) for v in values)


@dataclass(frozen=True)
class Tree:
    suffix: str
    domains_dn: str
    admins_dn: str

    def dn(self, template: Template | AccountType, name: str) -> str:
        """The DN of the entry `name` (an address, or a domain for types named
        by one) of an account type or template: its template's `dn:` line."""
        if isinstance(template, AccountType):
            template = template.template
        values = {"domains_dn": self.domains_dn, "admins_dn": self.admins_dn}
        if template.key == "domain":
            values["domain"] = escape_rdn(name)
        else:
            values[template.key] = escape_rdn(name)
            if "$domain" in template.dn:
                local, _, domain = name.rpartition("@")
                if not local:
                    raise InvalidInput(f"{name!r} is not an address", code="INVALID_MAIL")
                values["domain"] = escape_rdn(domain)
        return string.Template(template.dn).substitute(values)

    def domain(self, domain: str) -> str:
        return self.dn(DOMAIN, domain)

    def container(self, domain: str, ou: str) -> str:
        return f"ou={escape_rdn(ou)},{self.domain(domain)}"

    def user(self, mail: str) -> str:
        return self.dn(USER, mail)

    def catchall(self, domain: str) -> str:
        return self.dn(CATCHALL, domain)

    def alias(self, mail: str) -> str:
        return self.dn(ALIAS, mail)

    def maillist(self, mail: str) -> str:
        return self.dn(MAILLIST, mail)

    def externals(self, list_mail: str) -> str:
        return self.dn(load(MAILLIST.members_template), list_mail)

    def admin(self, mail: str) -> str:
        return self.dn(ADMIN, mail)
