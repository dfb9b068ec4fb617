"""Domain admin endpoints (global admins only, see authz.RULES).

    GET|POST|PUT|DELETE /api/admin/<mail>                 AdminItem
    POST   /api/verify_password/admin/<mail>              AdminPasswordCheck

POST creates a standalone admin (`mailAdmin` under o=domainAdmins).  Its
address may be in a hosted domain (iRedAdmin-Pro's API documents it as an
account of its own), but not a mail user's address: a mail user becomes an
admin through PUT /api/user/<mail> (isGlobalAdmin) or /api/domain/admins.
GET, PUT and DELETE also work on a mail user that is an admin; DELETE then
takes away its admin role and keeps the mailbox.
"""

from __future__ import annotations

from typing import Any

import falcon

from .. import accounts, passwords, validators
from ..config import Settings
from ..db.iredadmin import IredadminDB
from ..directory.admins import AdminStore, is_mail_user
from ..directory.domains import DomainStore
from ..directory.limits import quota_limit_mb, quota_unit, setting_int
from ..directory.settings_attr import parse as parse_settings
from ..directory.users import UserStore
from ..errors import InvalidInput, NotAuthorized
from ..params import NO_PARAMS
from ..password_policy import PasswordPolicy
from .common import client_ip, entry_as_dict, ok, principal, read_params
from .users import PasswordHashing

# What GET shows of a mail user that is an admin: its admin side, not its mailbox.
_USER_ADMIN_VIEW = ("mail", "objectClass", "cn", "accountStatus", "preferredLanguage", "domainGlobalAdmin",
                    "enabledService", "disabledService", "accountSetting", "shadowLastChange")


def _mail(raw: str) -> str:
    return validators.email(raw, param="mail")


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


class AdminItem:
    def __init__(self, admins: AdminStore, domains: DomainStore, users: UserStore, db: IredadminDB,
                 settings: Settings):
        self.admins = admins
        self.domains = domains
        self.users = users
        self.db = db
        self.settings = settings
        self.hashing = PasswordHashing(settings)
        self.create_params = accounts.ADMIN.create_params()
        self.update_params = accounts.ADMIN.update_params()

    def _policy(self, mail: str, entry=None) -> PasswordPolicy:
        """A mail user's password follows its domain's policy, a standalone admin's the global one."""
        if entry is not None and is_mail_user(entry):
            return self.users.rules(mail.partition("@")[2]).policy
        return global_policy(self.settings)

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, NO_PARAMS)
        mail = _mail(mail)
        entry = self.admins.require(mail, attrs=("*",))
        ok(resp, admin_view(entry, self.domains.managed_by(mail)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        mail = _mail(mail)
        values = read_params(req, self.create_params)
        who = principal(req)
        stored = self.hashing.stored_value(values, global_policy(self.settings))
        self.admins.create(mail, values, password_hash=stored)
        self.db.add_log(admin=who.mail, ip=client_ip(req), username=mail, event="create",
                        msg=f"[API] Create admin {mail}")
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        mail = _mail(mail)
        values = read_params(req, self.update_params)
        who = principal(req)
        entry = self.admins.require(mail)
        if mail == who.mail:
            for name, locked_out in (("isGlobalAdmin", False), ("accountStatus", "disabled")):
                if name in values and values[name] == locked_out:
                    raise NotAuthorized(f"{name}: an admin cannot demote or disable itself", param=name)
        stored = self.hashing.stored_value(values, self._policy(mail, entry))
        self.admins.update(mail, values, password_hash=stored)
        self.db.add_log(admin=who.mail, ip=client_ip(req), username=mail, event="update",
                        msg=f"[API] Update admin {mail}: {', '.join(sorted(values))}")
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, NO_PARAMS)
        mail = _mail(mail)
        who = principal(req)
        if mail == who.mail:
            raise NotAuthorized("an admin cannot delete itself")
        self.admins.delete(mail, managed=self.domains.list(admin=mail, attrs=("domainAdmin",)))
        self.db.add_log(admin=who.mail, ip=client_ip(req), username=mail, event="delete",
                        msg=f"[API] Delete admin {mail}")
        ok(resp)


class AdminPasswordCheck:
    def __init__(self, admins: AdminStore):
        self.admins = admins

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, accounts.PASSWORD_PARAMS)
        entry = self.admins.require(_mail(mail))
        if not any(passwords.verify_password(values["password"], h) for h in entry.get("userPassword")):
            raise InvalidInput("password: does not match", code="PW_MISMATCH", param="password")
        ok(resp)
