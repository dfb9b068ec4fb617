"""Subscribable (mlmmj) mailing lists, iRedAdmin-Pro's "Subscribable Mailing List".

    GET|POST|PUT|DELETE /api/ml/<mail>                   SubscribableListItem
    POST /api/ml/<mail>/change_email/<new_mail>          change_email.ChangeEmail
    GET  /api/mls/<domain>                               SubscribableListCollection

GET answers one object: the LDAP entry (attribute -> list of values, as
every other account) merged with the mlmmj profile in mlmmjadmin's
vocabulary (`only_subscriber_can_post: "yes"`, `owner: [...]`, ... and
`is_newsletter`), plus `subscribers` (`[{"mail", "subscription"}]`) with
`with_subscribers=yes`.  The two vocabularies do not overlap (LDAP's names
are camelCase or one word, mlmmjadmin's snake_case).  A list whose mlmmj
directory is missing still shows its entry, without the profile keys.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import falcon

from iredldap.directory.domains import DomainStore
from iredldap.directory.mlmmj_lists import SubscribableListStore
from iredldap.errors import NoSuchAccount
from iredldap.model import accounts
from iredldap.model.params import Boolean, Operation, Param, ParamSet
from iredldap.model.subscribable import shown_profile
from iredldap.web.common import (ListItemBase, answer_addresses, entry_as_seen, ok, principal, read_params,
                                 restrict_for_normal_admin)
from iredldap.web.openapi import OBJECTS, STRINGS

GET_PARAMS = ParamSet((Param("with_subscribers", Boolean(), "Also return the subscribers"),))
# The entry's attributes (lists of strings) and mlmmj's profile (strings, lists of strings).
LIST_ENTRY = {"type": "object", "properties": {"subscribers": OBJECTS},
              "additionalProperties": {"anyOf": [{"type": "string"}, STRINGS]}}
LISTS = {"type": "array", "items": {"anyOf": [{"type": "string"}, LIST_ENTRY]}}


def _profile_of(store: SubscribableListStore, mail: str) -> dict[str, Any]:
    try:
        return shown_profile(store.spool.profile(mail))
    except NoSuchAccount:
        return {}


@dataclass(eq=False)
class SubscribableListItem(ListItemBase):
    # (its `limits`: the creating admin's maxLists, over both kinds of list)
    store: SubscribableListStore

    def __post_init__(self) -> None:
        super().__post_init__()
        self.operations = {
            "GET": Operation("Show a subscribable list: its entry and mlmmj profile", GET_PARAMS, data=LIST_ENTRY),
            "POST": Operation("Create a subscribable (mlmmj) list", self.create_params, status=201),
            "PUT": Operation("Change a subscribable list, its profile and subscribers", self.update_params),
            "DELETE": Operation("Delete a subscribable list (archived unless keep_archive=no)", self.delete_params),
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["GET"])
        entry = self.store.get(mail)
        data: dict[str, Any] = {**entry_as_seen(req, entry), **_profile_of(self.store, mail)}
        if values.get("with_subscribers"):
            data["subscribers"] = [{"mail": s.mail, "subscription": s.subscription}
                                   for s in self.store.spool.subscribers(mail)]
        ok(resp, data)

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["POST"])
        who = principal(req)
        restrict_for_normal_admin(who, self.create_params, values, [])
        self.create_within_limits(who, mail, values)
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["PUT"])
        restrict_for_normal_admin(principal(req), self.update_params, values, [])
        self.store.update(mail, values)
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["DELETE"])
        self.store.delete(mail, archive=values.get("keep_archive", True),
                          after=functools.partial(self.policies.forget, mail) if self.policies else None)
        ok(resp)


class SubscribableListCollection:
    def __init__(self, store: SubscribableListStore, domains: DomainStore):
        self.store = store
        self.domains = domains
        self.operations = {"GET": Operation(
            "List the subscribable lists of a domain (entries with their mlmmj profile, or addresses)",
            accounts.GROUP_LIST_PARAMS, data=LISTS, listing=True)}

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["GET"])
        self.domains.get(domain)  # 404 for an unknown domain
        answer_addresses(req, resp, values, functools.partial(self.store.list, domain))
        if not values.get("email_only"):
            for item in resp.media["_data"]:
                item.update(_profile_of(self.store, item["mail"][0].lower()))

