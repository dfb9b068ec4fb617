"""Domain admin endpoints (global admins only, see the route table in iredldap.web.app).

    GET|POST|PUT|DELETE /api/admin/<mail>                 AdminItem
    POST   /api/verify_password/admin/<mail>              common.PasswordCheck

POST creates a standalone admin (`mailAdmin` under o=domainAdmins).  Its
address may be in a hosted domain (iRedAdmin-Pro's API documents it as an
account of its own), but not a mail user's address: a mail user becomes an
admin through PUT /api/user/<mail> (isGlobalAdmin) or /api/domain/admins.
GET, PUT and DELETE also work on a mail user that is an admin; DELETE then
takes away its admin role and keeps the mailbox.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

import falcon

from iredldap.model import accounts
from iredldap.config import Settings
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.admins import AdminStore, is_mail_user
from iredldap.directory.domains import DomainStore
from iredldap.directory.limits import quota_limit_mb, quota_unit, setting_int
from iredldap.directory.settings_attr import parse as parse_settings
from iredldap.directory.users import UserStore
from iredldap.errors import NotAuthorized
from iredldap.model.listing import Listing, entry_key, select
from iredldap.web.openapi import entry_with
from iredldap.model.params import Operation
from iredldap.model.password_policy import PasswordPolicy
from iredldap.db.sessions import SessionStore
from iredldap.web.common import (SORT_ATTRS, PasswordHashing, end_access_of, end_sessions_of, entry_as_dict, ok,
                                 ok_page, principal, read_params)

# What GET shows of a mail user that is an admin: its admin side, not its mailbox.
_USER_ADMIN_VIEW = ("mail", "objectClass", "cn", "accountStatus", "preferredLanguage", "domainGlobalAdmin",
                    "enabledService", "disabledService", "accountSetting", "shadowLastChange")


_INT = {"type": "integer"}
_YES_NO = {"type": "string", "enum": ["yes", "no"]}
ADMIN_VIEW = entry_with(isGlobalAdmin=_YES_NO, maxDomains=_INT, maxQuota=_INT,
                        quotaUnit={"type": "string", "enum": list(accounts.QUOTA_UNITS)},
                        maxUsers=_INT, maxAliases=_INT, maxLists=_INT, disableViewingMailLog=_YES_NO,
                        disableManagingQuarantinedMails=_YES_NO)


def global_policy(settings: Settings) -> PasswordPolicy:
    """The password policy of the global settings (a standalone admin has no domain)."""
    return PasswordPolicy(min_length=settings.min_password_length, max_length=settings.max_password_length,
                          need_letter=settings.password_has_letter, need_uppercase=settings.password_has_uppercase,
                          need_digit=settings.password_has_number, need_special=settings.password_has_special_char)


def admin_view(entry, managed_domains: list[str]) -> dict[str, Any]:
    """The LDAP attributes plus the admin's role and limits in API names."""
    data: dict[str, Any] = entry_as_dict(entry)
    if is_mail_user(entry):
        keep = {a.lower() for a in _USER_ADMIN_VIEW}
        data = {k: v for k, v in data.items() if k.lower() in keep}
    settings = parse_settings(entry.get("accountSetting"))
    disabled = {v.lower() for v in entry.get("disabledService")}
    may_create = accounts.ADMIN_CREATE_DOMAINS in settings
    data.update({
        "managed_domains": managed_domains,
        "isGlobalAdmin": "yes" if entry.has_value("domainGlobalAdmin", "yes") else "no",
        # -1: may not create domains; 0: unlimited.
        "maxDomains": (setting_int(settings, accounts.ADMIN_SETTINGS["maxDomains"]) or 0) if may_create else -1,
        "maxQuota": 0,
        "quotaUnit": quota_unit(settings),
        "maxUsers": setting_int(settings, accounts.ADMIN_SETTINGS["maxUsers"]) or 0,
        "maxAliases": setting_int(settings, accounts.ADMIN_SETTINGS["maxAliases"]) or 0,
        "maxLists": setting_int(settings, accounts.ADMIN_SETTINGS["maxLists"]) or 0,
        "disableViewingMailLog": "yes" if "view_mail_log" in disabled else "no",
        "disableManagingQuarantinedMails": "yes" if "manage_quarantined_mails" in disabled else "no",
    })
    quota_mb = quota_limit_mb(settings)
    if quota_mb:
        factor = accounts.QUOTA_UNITS[data["quotaUnit"]]
        if quota_mb % factor:
            data["quotaUnit"], factor = "MB", 1
        data["maxQuota"] = quota_mb // factor
    return data


class AdminCollection:
    operations = {"GET": Operation("List the admins: standalone ones and mail users that are admins",
                                   accounts.ADMIN_LIST_PARAMS, data={"type": "array", "items": {
                                       "anyOf": [{"type": "string"}, ADMIN_VIEW]}}, listing=True)}

    def __init__(self, admins: AdminStore, domains: DomainStore):
        self.admins = admins
        self.domains = domains

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["GET"])
        listing = Listing.of(values, "mail")
        emails_only = values.get("email_only", False)
        entries = self.admins.scan(disabled_only=values.get("disabled_only", False), search=listing.search,
                                   attrs=("mail", "cn") if emails_only else ("*",))
        page = select(entries, entry_key(listing.sort, SORT_ATTRS, "mail"), listing)
        if emails_only:
            ok_page(resp, page, [e.first("mail").lower() for e in page.items])
        else:
            # The page's admins only: one search each for the domains they manage.
            ok_page(resp, page, [admin_view(e, self.domains.managed_by(e.first("mail").lower()))
                                 for e in page.items])


@dataclass(eq=False)
class AdminItem:
    admins: AdminStore
    domains: DomainStore
    users: UserStore
    db: IredadminDB
    settings: Settings
    _: KW_ONLY
    sessions: SessionStore | None = None

    def __post_init__(self) -> None:
        self.hashing = PasswordHashing(self.settings)
        self.create_params = accounts.ADMIN.create_params()
        self.update_params = accounts.ADMIN.update_params()
        self.operations = {
            "GET": Operation("Show an admin: its attributes, role, limits and domains", data=ADMIN_VIEW),
            "POST": Operation("Create a standalone admin", self.create_params, status=201),
            "PUT": Operation("Change an admin", self.update_params),
            "DELETE": Operation("Delete an admin (a mail user that is an admin loses only its admin role)"),
        }

    def _policy(self, mail: str, entry=None) -> PasswordPolicy:
        """A mail user's password follows its domain's policy, a standalone admin's the global one."""
        if entry is not None and is_mail_user(entry):
            return self.users.rules(mail.partition("@")[2]).policy
        return global_policy(self.settings)

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["GET"])
        entry = self.admins.require(mail, attrs=("*",))
        ok(resp, admin_view(entry, self.domains.managed_by(mail)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["POST"])
        stored = self.hashing.stored_value(values, global_policy(self.settings))
        assert stored is not None   # the password is a required parameter of POST
        self.admins.create(mail, values, password_hash=stored)
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        entry = self.admins.require(mail)
        if mail == who.mail:
            for name, locked_out in (("isGlobalAdmin", False), ("accountStatus", "disabled")):
                if name in values and values[name] == locked_out:
                    raise NotAuthorized(f"{name}: an admin cannot demote or disable itself", param=name)
        stored = self.hashing.stored_value(values, self._policy(mail, entry))
        self.admins.update(mail, values, password_hash=stored)
        if stored is not None:
            end_sessions_of(self.sessions, req, mail)
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["DELETE"])
        who = principal(req)
        if mail == who.mail:
            raise NotAuthorized("an admin cannot delete itself")
        # Deleted or no longer an admin: its tokens and sessions end with it
        # (and if the database refuses, the directory change is undone).
        self.admins.delete(mail, managed=self.domains.list(admin=mail, attrs=("domainAdmin",)),
                           after=lambda: end_access_of(self.db, self.sessions, mail))
        ok(resp)


