"""Alias and mailing-list endpoints (the same shape, different stores).

    GET|POST|PUT|DELETE /api/alias/<mail>, /api/maillist/<mail>         GroupItem
    POST /api/alias/<mail>/change_email/<new_mail> (and maillist)       change_email.ChangeEmail
    GET  /api/aliases/<domain>, /api/maillists/<domain>                 GroupCollection
"""

from __future__ import annotations

from typing import Any, Callable

import falcon

from .. import accounts, validators
from ..db.iredadmin import IredadminDB
from ..db.policy_accounts import PolicyAccounts
from ..directory.admins import Principal
from ..directory.domains import DomainStore
from ..directory.groups import GroupStore, ListStore
from ..errors import NotAuthorized
from ..params import NO_PARAMS, Boolean, Param, ParamSet
from .common import client_ip, entry_as_dict, ok, principal, read_params
from .domains import restrict_for_normal_admin

# `archive` only means something for mlmmj lists; accepted and ignored here.
LIST_DELETE_PARAMS = ParamSet((Param("archive", Boolean(), "Archive an mlmmj list first (ignored here)"),))


def _mail(raw: str, param: str = "mail") -> str:
    return validators.email(raw, param=param)


class GroupItem:
    def __init__(self, store: GroupStore, domains: DomainStore, db: IredadminDB, *,
                 check_admin_limit: Callable[[Principal], None], policies: PolicyAccounts | None = None):
        self.store = store
        self.policies = policies
        self.domains = domains
        self.db = db
        # The creating admin's own limit (maxAliases or maxLists), across its domains.
        self.check_admin_limit = check_admin_limit
        self.create_params = store.kind.account.create_params()
        self.update_params = store.kind.account.update_params()
        self.delete_params = LIST_DELETE_PARAMS if isinstance(store, ListStore) else NO_PARAMS

    def _check_members(self, who: Principal, values: dict[str, Any]) -> None:
        """A normal admin may not write list memberships into other customers' entries."""
        if who.is_global or not isinstance(self.store, ListStore):
            return
        added = values.get("members", []) + values.get("addMember", [])
        foreign = self.store.hosted_member_domains(added) - set(self.domains.managed_by(who.mail))
        if foreign:
            raise NotAuthorized(f"members: accounts of {', '.join(sorted(foreign))} are not yours to add",
                                param="members")

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, NO_PARAMS)
        mail = _mail(mail)
        entry = self.store.get(mail)
        data = entry_as_dict(entry)
        data["members"] = self.store.members(entry, mail)
        ok(resp, data)

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        mail = _mail(mail)
        values = read_params(req, self.create_params)
        who = principal(req)
        restrict_for_normal_admin(who, self.create_params, values, [])
        self._check_members(who, values)
        self.check_admin_limit(who)
        self.store.create(mail, values)
        self.db.add_log(admin=who.mail, ip=client_ip(req), domain=mail.partition("@")[2], username=mail,
                        event="create", msg=f"[API] Create {self.store.kind.label} {mail}")
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        mail = _mail(mail)
        values = read_params(req, self.update_params)
        who = principal(req)
        restrict_for_normal_admin(who, self.update_params, values, [])
        self._check_members(who, values)
        self.store.update(mail, values)
        self.db.add_log(admin=who.mail, ip=client_ip(req), domain=mail.partition("@")[2], username=mail,
                        event="update", msg=f"[API] Update {self.store.kind.label} {mail}: {', '.join(sorted(values))}")
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.delete_params)
        mail = _mail(mail)
        who = principal(req)
        self.store.delete(mail, after=(lambda: self.policies.forget(mail)) if self.policies else None)
        self.db.add_log(admin=who.mail, ip=client_ip(req), domain=mail.partition("@")[2], username=mail,
                        event="delete", msg=f"[API] Delete {self.store.kind.label} {mail}")
        ok(resp)


class GroupCollection:
    def __init__(self, store: GroupStore, domains: DomainStore):
        self.store = store
        self.domains = domains

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, accounts.GROUP_LIST_PARAMS)
        domain = validators.domain_name(domain)
        self.domains.get(domain)  # 404 for an unknown domain
        emails_only = values.get("email_only", False)
        entries = self.store.list(domain, disabled_only=values.get("disabled_only", False),
                                  attrs=("mail",) if emails_only else ("*",))
        if emails_only:
            ok(resp, sorted(e.first("mail").lower() for e in entries))
        else:
            ok(resp, sorted((entry_as_dict(e) for e in entries), key=lambda d: d.get("mail", [""])[0]))
