"""POST /api/{user,alias,maillist}/<mail>/change_email/<new_mail>: one responder for all three."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Protocol

import falcon

from iredldap.db.iredadmin import IredadminDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.db.sessions import SessionStore
from iredldap.directory.domains import DomainStore
from iredldap.errors import NotAuthorized
from iredldap.model.params import Operation
from iredldap.web.common import end_access_of, ok, principal, read_params


class Renamable(Protocol):
    def rename(self, old: str, new: str, *, after=None): ...


@dataclass(eq=False)
class ChangeEmail:
    store: Renamable
    label: str
    domains: DomainStore
    db: IredadminDB
    policies: PolicyAccounts | None = None
    _: KW_ONLY
    # Mail users' only (an admin's sessions end with its old address).
    sessions: SessionStore | None = None

    def __post_init__(self) -> None:
        self.operations = {"POST": Operation(f"Change the address of a {self.label} (its settings follow)")}

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str, new_mail: str) -> None:
        read_params(req, self.operations["POST"])
        old, new = mail, new_mail
        who = principal(req)
        # The access table checked the old address's domain; the new one must be the admin's too.
        access = req.context.access
        if not who.is_global and new.partition("@")[2] not in access.managed_domains():
            raise NotAuthorized(f"new_mail: not an admin of domain {new.partition('@')[2]}", param="new_mail")
        if access.outranks(new):
            # An address some other domain names as its admin: the renamed
            # account would become that domain's admin.
            raise NotAuthorized(f"new_mail: {new} holds admin rights beyond yours", param="new_mail")

        def move_policies() -> None:
            # Spam policy, throttling, greylisting and white/blacklists follow
            # the address; if the databases refuse, the rename is undone.
            if self.policies is not None:
                self.policies.rename(old, new)
            # Tokens and sessions do not follow: they were given to the old
            # address, which somebody else may get next.  Aliases and lists have none.
            end_access_of(self.db, self.sessions, old)

        self.store.rename(old, new, after=move_policies)
        ok(resp)
