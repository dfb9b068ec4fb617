"""Administrators as iRedMail knows them.

An admin is either a mail user marked `domainGlobalAdmin: yes` or
`enabledService: domainadmin`, or a standalone `mailAdmin` entry under
`o=domainAdmins`.  Normal admins are listed in `domainAdmin` of the domains
they manage.  Global admins manage everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AlreadyExists, NoSuchAccount
from ..templates import load
from . import settings_attr
from .connection import Directory, Entry
from .tree import Tree

_ADMIN_ATTRS = ("mail", "objectClass", "accountStatus", "domainGlobalAdmin", "enabledService",
                "accountSetting", "userPassword", "cn", "preferredLanguage")


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as far as authorization cares."""

    mail: str
    dn: str
    is_global: bool
    is_mail_user: bool
    settings: dict = field(default_factory=dict, compare=False)

    @property
    def may_create_domains(self) -> bool:
        return self.is_global or "create_new_domains" in self.settings

    def limit(self, key: str) -> int | None:
        """An admin's `create_max_*` setting; None when unset (no limit)."""
        raw = self.settings.get(key)
        try:
            return int(str(raw)) if raw not in (None, "") else None
        except ValueError:
            return None


def _is_active(entry: Entry) -> bool:
    return entry.first("accountStatus").lower() == "active" and not entry.has_value("domainStatus", "disabled")


class AdminStore:
    def __init__(self, directory: Directory, tree: Tree):
        self.dir = directory
        self.tree = tree

    def find(self, mail: str) -> Entry | None:
        """The admin entry for `mail` (mail user first, as iRedAdmin does), active or not."""
        domain = mail.rpartition("@")[2]
        user = self.dir.get(self.tree.user(mail), attrs=_ADMIN_ATTRS + ("domainStatus",),
                            filterstr="(objectClass=mailUser)")
        if user is not None and (user.has_value("domainGlobalAdmin", "yes")
                                 or user.has_value("enabledService", "domainadmin")):
            return user
        if domain:
            admin = self.dir.get(self.tree.admin(mail), attrs=_ADMIN_ATTRS, filterstr="(objectClass=mailAdmin)")
            if admin is not None:
                return admin
        return None

    def find_user(self, mail: str) -> Entry | None:
        return self.dir.get(self.tree.user(mail), attrs=("mail", "enabledService", "domainGlobalAdmin"),
                            filterstr="(objectClass=mailUser)")

    def principal_for(self, mail: str) -> tuple[Principal, Entry] | None:
        """The active admin `mail` and its entry (which holds the password hash)."""
        entry = self.find(mail)
        if entry is None or not _is_active(entry):
            return None
        return Principal(
            mail=entry.first("mail").lower(),
            dn=entry.dn,
            is_global=entry.has_value("domainGlobalAdmin", "yes"),
            is_mail_user=any(c.lower() == "mailuser" for c in entry.get("objectClass")),
            settings=settings_attr.parse(entry.get("accountSetting")),
        ), entry

    def create_standalone(self, mail: str, *, password_hash: str, name: str = "", is_global: bool = False,
                          language: str = "") -> str:
        dn, attrs = load("admin").render(mail=mail, admins_dn=self.tree.admins_dn)
        if self.dir.exists(dn):
            raise AlreadyExists(f"admin {mail} already exists")
        attrs["userPassword"] = [password_hash]
        if name:
            attrs["cn"] = [name]
        if language:
            attrs["preferredLanguage"] = [language]
        if is_global:
            attrs["domainGlobalAdmin"] = ["yes"]
        self.dir.add(dn, attrs)
        return dn

    def require(self, mail: str) -> Entry:
        entry = self.find(mail)
        if entry is None:
            raise NoSuchAccount(f"admin {mail} does not exist")
        return entry
