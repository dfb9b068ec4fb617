"""LDIF export endpoints.

    GET /api/ldif/domain/<domain>      the domain entry and everything under it
    GET /api/ldif/catchall/<domain>    the domain's catch-all entry
    GET /api/ldif/user/<mail>          a mail user
    GET /api/ldif/maillist/<mail>      a mailing list and its external members' entry
    GET /api/ldif/alias/<mail>         an alias
    GET /api/ldif/admin/<mail>         an admin (standalone, or the mail user holding the role)

The answer is `text/ldif`, a download named `<kind>-<name>.ldif`, streamed
while the directory is read (iredldap.directory.export).  Everything that
can fail with a JSON answer (access, existence) is checked before the
stream starts.  Password hashes are included per LDIF_EXPORT_PASSWORDS.
"""

from __future__ import annotations

import falcon

from iredldap.model.accounts import DOMAIN, USER, AccountType
from iredldap.config import Settings
from iredldap.directory.admins import Principal
from iredldap.directory.export import Exporter
from iredldap.model.params import Operation
from iredldap.web.common import principal, read_params

CONTENT_TYPE = "text/ldif"

def include_passwords(setting: str, who: Principal) -> bool:
    if setting == "always":
        return True
    if setting == "never":
        return False
    return who.is_global


class LdifExport:
    """One instance per account type: `domain` and `catchall` take {domain}, the others {mail}."""

    def __init__(self, exporter: Exporter, account: AccountType, settings: Settings):
        self.exporter = exporter
        self.account = account
        self.kind = account.name
        self.settings = settings
        self.operations = {"GET": Operation(
            f"LDIF export of {account.export_summary}",
            description="RFC 2849 LDIF, streamed, as a download; password hashes per LDIF_EXPORT_PASSWORDS.",
            content={CONTENT_TYPE: {"type": "string"}})}

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str | None = None,
               mail: str | None = None) -> None:
        read_params(req, self.operations["GET"].params)
        name = (domain if self.account.url_part == "domain" else mail) or ""   # parsed by the URL declaration
        plan = self.exporter.plan(self.kind, name)
        resp.content_type = CONTENT_TYPE
        resp.downloadable_as = plan.filename
        who = principal(req)
        passwords = include_passwords(self.settings.ldif_export_passwords, who)
        # A normal admin's export leaves out what other tenants wrote on its
        # entries, and the hashes of accounts above it (LDIF_EXPORT_PASSWORDS
        # = always would otherwise hand it a global admin's hash to crack).
        above: list[str] = []
        if passwords and not who.is_global:
            access = req.context.access
            above = access.outranking(name) if self.account is DOMAIN else (
                [name] if self.account is USER and access.outranks(name) else [])
        resp.stream = self.exporter.stream(
            plan, passwords=passwords, domains=None if who.is_global else req.context.access.managed_domains(),
            no_hash_for=frozenset(above))
