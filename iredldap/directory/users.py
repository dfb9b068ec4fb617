"""Mail users (`inetOrgPerson` + `shadowAccount` + `amavisAccount` + `mailUser`)."""

from __future__ import annotations

from ..config import Settings
from ..errors import AlreadyExists, NoSuchAccount
from ..mailbox import days_since_epoch, home_directory
from ..templates import load
from . import settings_attr
from .connection import Directory
from .tree import Tree, f

# Every kind of entry whose addresses Postfix resolves.
ADDRESS_CLASSES = "(|(objectClass=mailUser)(objectClass=mailList)(objectClass=mailAlias))"


class UserStore:
    def __init__(self, directory: Directory, tree: Tree, settings: Settings):
        self.dir = directory
        self.tree = tree
        self.settings = settings

    def address_taken(self, address: str) -> bool:
        """Is `address` the mail or a shadow address of any user, list or alias?"""
        found = self.dir.search(self.tree.domains_dn,
                                f("(&" + ADDRESS_CLASSES + "(|(mail=%s)(shadowAddress=%s)))", address, address),
                                attrs=("1.1",), size_limit=1)
        return bool(found)

    def create(self, mail: str, *, password_hash: str, name: str = "", language: str = "",
               extra: dict[str, list[str]] | None = None) -> str:
        local, _, domain = mail.partition("@")
        domain_entry = self.dir.get(self.tree.domain(domain), filterstr="(objectClass=mailDomain)")
        if domain_entry is None:
            raise NoSuchAccount(f"domain {domain} does not exist", code="NO_SUCH_DOMAIN")
        if self.address_taken(mail):
            raise AlreadyExists(f"{mail} is already used by another account")
        storage = settings_attr.value_of(domain_entry.get("accountSetting"), "defaultStorageBaseDirectory") \
            or self.settings.storage_base_directory
        dn, attrs = load("user").render(
            mail=mail, local_part=local, domain=domain, name=name or local,
            domains_dn=self.tree.domains_dn,
            home_directory=home_directory(mail, str(storage)),
            shadow_last_change=str(days_since_epoch()))
        attrs["userPassword"] = [password_hash]
        attrs["mtaTransport"] = [domain_entry.first("mtaTransport") or self.settings.default_mta_transport]
        attrs["preferredLanguage"] = [language or domain_entry.first("preferredLanguage")
                                      or self.settings.default_language]
        quota_mb = settings_attr.int_of(domain_entry.get("accountSetting"), "defaultQuota")
        if quota_mb > 0:
            attrs["mailQuota"] = [str(quota_mb * 1024 * 1024)]
        aliases = [f"{local}@{a.lower()}" for a in domain_entry.get("domainAliasName")]
        if aliases:
            attrs["shadowAddress"] = aliases
        if domain_entry.first("accountStatus").lower() == "disabled":
            attrs["domainStatus"] = ["disabled"]
        for key, values in (extra or {}).items():
            attrs[key] = list(dict.fromkeys(attrs.get(key, []) + values))
        self.dir.add(dn, attrs)
        return dn

    def create_global_admin(self, mail: str, *, password_hash: str, name: str = "") -> str:
        """A mail user that is also a global admin, like iRedMail's postmaster."""
        return self.create(mail, password_hash=password_hash, name=name,
                           extra={"domainGlobalAdmin": ["yes"], "enabledService": ["domainadmin"]})
