"""Alias and mailing-list endpoints (the same shape, different stores).

    GET|POST|PUT|DELETE /api/alias/<mail>, /api/maillist/<mail>         GroupItem
    POST /api/alias/<mail>/change_email/<new_mail> (and maillist)       change_email.ChangeEmail
    GET  /api/aliases/<domain>, /api/maillists/<domain>                 GroupCollection
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import falcon

from iredldap.model import accounts
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.domains import DomainStore
from iredldap.directory.groups import GroupStore
from iredldap.errors import NotAuthorized
from iredldap.web.openapi import ENTRY, LISTING
from iredldap.model.accounts import MEMBERS_POINT_TO_IT
from iredldap.model.params import Operation
from iredldap.web.common import (ListItemBase, answer_addresses, entry_as_seen, ok, principal, read_params,
                                 restrict_for_normal_admin)


@dataclass(eq=False)
class GroupItem(ListItemBase):
    store: GroupStore
    domains: DomainStore
    db: IredadminDB

    def __post_init__(self) -> None:
        super().__post_init__()
        label = self.account.label
        self.operations = {
            "GET": Operation(f"Show a {label} and its members", data=ENTRY),
            "POST": Operation(f"Create a {label}", self.create_params, status=201),
            "PUT": Operation(f"Change a {label}", self.update_params),
            "DELETE": Operation(f"Delete a {label}", self.delete_params),
        }

    def _check_members(self, req: falcon.Request, values: dict[str, Any]) -> None:
        """A normal admin may not write list memberships into other customers' entries.

        Any address in a domain hosted here but not managed by the caller is
        refused, whether an account has it or not: the answer must not tell
        which addresses exist at other customers.
        """
        if principal(req).is_global or self.account.members != MEMBERS_POINT_TO_IT:
            return
        managed = set(req.context.access.managed_domains())
        added = values.get("members", []) + values.get("addMember", [])
        foreign = sorted({m.rpartition("@")[2] for m in added} - managed)
        elsewhere = [d for d in foreign if self.domains.owner_of_name(d) not in (None, *managed)]
        if elsewhere:
            raise NotAuthorized(f"members: addresses in {', '.join(elsewhere)} are in a domain you do not manage",
                                param="members")

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["GET"])
        entry = self.store.get(mail)
        data = entry_as_seen(req, entry)
        data["members"] = self.store.members(entry, mail)
        ok(resp, data)

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["POST"])
        who = principal(req)
        restrict_for_normal_admin(who, self.create_params, values, [])
        self._check_members(req, values)
        self.create_within_limits(who, mail, values)
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        restrict_for_normal_admin(who, self.update_params, values, [])
        self._check_members(req, values)
        self.store.update(mail, values)
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["DELETE"])
        self.store.delete(mail, after=functools.partial(self.policies.forget, mail) if self.policies else None)
        ok(resp)


class GroupCollection:
    def __init__(self, store: GroupStore, domains: DomainStore):
        self.store = store
        self.domains = domains
        self.operations = {"GET": Operation(f"List the {store.account.plural} of a domain", accounts.GROUP_LIST_PARAMS,
                                            data=LISTING, listing=True)}

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["GET"])
        self.domains.get(domain)  # 404 for an unknown domain
        answer_addresses(req, resp, values, functools.partial(self.store.list, domain))
