"""Domain endpoints.

    GET    /api/domains                                   DomainCollection
    GET|POST|PUT|DELETE /api/domain/<domain>              DomainItem
    DELETE /api/domain/<domain>/keep_mailbox_days/<n>     DomainItem (on_delete_keep)
    GET|PUT /api/domain/admins/<domain>                   DomainAdmins
    GET|PUT /api/domain/services/<domain>                 DomainServices
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

import falcon

from iredldap.model import accounts
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.db.sessions import SessionStore
from iredldap.directory.admins import AdminStore
from iredldap.directory.connection import Entry
from iredldap.directory.domains import DeletedMailbox, DomainStore
from iredldap.directory.limits import AdminLimits
from iredldap.directory.mlmmj_lists import SubscribableListStore
from iredldap.directory.settings_attr import parse as parse_settings
from iredldap.errors import NoSuchAccount, NotAuthorized
from iredldap.model.listing import Listing, entry_key, select
from iredldap.web.openapi import ENTRY, LISTING, STRINGS
from iredldap.model.params import Operation
from iredldap.web.common import DEFAULT_KEEP_DAYS, entry_as_dict, ok, ok_page, principal, read_params, restrict_for_normal_admin


class DomainCollection:
    operations = {"GET": Operation("List the domains (a normal admin: those it manages)", accounts.DOMAIN_LIST_PARAMS,
                                   data=LISTING, listing=True)}
    SORT_ATTRS = {"domain": "domainName", "name": "cn"}

    def __init__(self, domains: DomainStore):
        self.domains = domains

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["GET"])
        access = req.context.access
        listing = Listing.of(values, "domain")
        names_only = values.get("name_only", False)
        entries = access.visible(self.domains.scan(admin=access.listing_admin(),
                                                   disabled_only=values.get("disabled_only", False),
                                                   search=listing.search,
                                                   attrs=("domainName", "cn") if names_only else ("*",)))
        page = select(entries, entry_key(listing.sort, self.SORT_ATTRS, "domainName"), listing)
        if names_only:
            ok_page(resp, page, [e.first("domainName").lower() for e in page.items])
        else:
            ok_page(resp, page, [entry_as_dict(e) for e in page.items])


@dataclass(eq=False)
class DomainItem:
    domains: DomainStore
    admins: AdminStore
    db: IredadminDB
    _: KW_ONLY
    policies: PolicyAccounts | None = None
    limits: AdminLimits
    sessions: SessionStore | None = None
    # The domain's subscribable lists go with it: their mlmmj directories too.
    mlmmj_lists: SubscribableListStore | None = None

    def __post_init__(self) -> None:
        self.create_params = accounts.DOMAIN.create_params()
        self.update_params = accounts.DOMAIN.update_params()
        self.operations = {
            "GET": Operation("Show a domain", data=ENTRY),
            "POST": Operation("Create a domain", self.create_params, status=201),
            "PUT": Operation("Change a domain", self.update_params),
            "DELETE": Operation("Delete a domain and all its accounts (mailboxes kept 100 years)"),
            "DELETE_keep": Operation("Delete a domain and all its accounts, keeping the mailboxes <days> days"),
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, entry_as_dict(self._entry(req, domain)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["POST"])
        who = principal(req)
        restrict_for_normal_admin(who, self.create_params, values, [])
        if not who.is_global:
            # (the domain among its own alias domains is the store's 400)
            self._check_admin_names(req, [domain, *(a for a in values.get("aliasDomains", []) if a != domain)])
        self.limits.check_domains(who)
        self.domains.create(domain, values, admin=None if who.is_global else who.mail,
                            limits=self.limits.domain_ceilings(who))
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        entry = self._entry(req, domain)
        if not who.is_global:
            locked = parse_settings(entry.get("accountSetting")).get("disabledDomainProfile", [])
            restrict_for_normal_admin(who, self.update_params, values, locked)
            # Disabling the domain disables every account in it (domainStatus);
            # its BCC, relay and catch-all reach the mail of every address.
            whole = [p for p in accounts.DOMAIN_WIDE_PARAMS if p in values]
            if values.get("accountStatus") == "disabled":
                whole.insert(0, "accountStatus")
            access = req.context.access
            if whole:
                above = access.above_in(domain)
                if above:
                    raise NotAuthorized(f"{whole[0]}: domain {domain} holds accounts with admin rights beyond "
                                        f"yours: {', '.join(above)}", param=whole[0])
            # An alias domain taken away takes the mail of its addresses with it.
            current = [a.lower() for a in entry.get("domainAliasName")]
            dropped = [a for a in current if a not in self.domains.alias_domains_after(current, values)]
            above = access.above_at(dropped)
            if above:
                raise NotAuthorized(f"aliasDomains: {', '.join(dropped)} holds addresses of admins with rights "
                                    f"beyond yours: {', '.join(above)}", param="aliasDomains")
            self._check_admin_names(req, [a for a in values.get("aliasDomains", []) + values.get("addAliasDomain", [])
                                          if a != domain])
        self.domains.update(domain, values, entry=entry)
        ok(resp)

    def _entry(self, req: falcon.Request, domain: str) -> Entry:
        """The domain's entry, as the request's lookup read it if it did."""
        return self.domains.get(domain, read=req.context.access.entry_at(self.domains.tree.domain(domain)))

    def _check_admin_names(self, req: falcon.Request, names: list[str]) -> None:
        """A normal admin may not host a domain (or alias domain) in which
        admins above it have their addresses: an account there would receive
        their mail (and, with shadow addresses, hold their address)."""
        access = req.context.access
        for name in names:
            above = [a for a in self.admins.addresses_at(name) if access.outranks(a)]
            if above:
                raise NotAuthorized(f"{name}: the domain of admin addresses with rights beyond yours",
                                    param="domain")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        read_params(req, self.operations["DELETE"])
        self._delete(req, domain, keep_days=DEFAULT_KEEP_DAYS)
        ok(resp)

    def on_delete_keep(self, req: falcon.Request, resp: falcon.Response, domain: str, days: int) -> None:
        read_params(req, self.operations["DELETE_keep"])
        self._delete(req, domain, keep_days=days)
        ok(resp)

    def _delete(self, req: falcon.Request, domain: str, *, keep_days: int) -> None:
        who = principal(req)
        lists = self.mlmmj_lists.spool_lists_of(domain) if self.mlmmj_lists is not None else []
        spool = self.mlmmj_lists.spool if self.mlmmj_lists is not None and lists else None
        if spool is not None:
            spool.ping()  # refused before anything changes when mlmmj is down

        def record(mailboxes: list[DeletedMailbox]):
            # Runs before the first entry goes: if a step refuses, nothing
            # is deleted.  Returns how to take it back, should the deletion
            # be undone.
            # First, the subscribable lists' directories, archived (as DELETE
            # /api/ml does by default), all or none: mlmmj refusing (the
            # likeliest failure, a remote service) then changes nothing at
            # all; a later refusal makes them again.
            restore_lists = self.mlmmj_lists.archive_lists(lists) if self.mlmmj_lists is not None and lists \
                else (lambda: None)
            since: datetime | None = None

            def unrecord(since: datetime) -> None:
                self.db.unrecord_deleted_mailboxes([m.username for m in mailboxes], since=since, admin=who.mail)

            try:
                if self.policies is not None:
                    # If Amavisd's or iRedAPD's database is down nothing is
                    # recorded for mailboxes that stay.
                    self.policies.forget(domain)
                # Its mail users go, the admins among them too: their tokens and sessions end.
                self.db.revoke_tokens_of([m.username for m in mailboxes])
                if self.sessions is not None:
                    self.sessions.end_all_in(domain, self.domains.tree.domain(domain))
                since = self.db.now()
                self.db.record_deleted_mailboxes(
                    [{"username": m.username, "domain": m.domain, "maildir": m.maildir} for m in mailboxes],
                    admin=who.mail, keep_days=keep_days or None)
                self.db.delete_used_quota(domains=[domain])
            except BaseException:
                if since is not None:
                    try:
                        unrecord(since)
                    except Exception:  # noqa: BLE001 - the first failure is the one to report
                        pass
                restore_lists()
                raise

            def undo() -> None:
                if since is not None:
                    unrecord(since)
                restore_lists()
            return undo

        self.domains.delete(domain, after=record)


class DomainAdmins:
    operations = {
        "GET": Operation("The admins of a domain", data=STRINGS),
        "PUT": Operation("Add or remove admins of a domain", accounts.DOMAIN_ADMINS_PARAMS),
    }

    def __init__(self, domains: DomainStore, admins: AdminStore):
        self.domains = domains
        self.admins = admins

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, self.domains.admins(domain))

    def on_put(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        domain_entry = self.domains.get(domain)
        add = values.get("addAdmin", [])
        user_entries = {}
        managed = None if who.is_global else set(req.context.access.managed_domains())
        for mail in add:
            if managed is not None and mail.rpartition("@")[2] not in managed:
                # Before any lookup: the same answer whether the address
                # exists or not, so that it tells nothing of other domains.
                raise NotAuthorized("addAdmin: a normal admin may only promote users of its own domains",
                                    param="addAdmin")
            entry = self.admins.find(mail)
            if entry is None:
                # A plain mail user becomes an admin by being listed.
                entry = self.admins.find_user(mail)
                if entry is None:
                    raise NoSuchAccount(f"addAdmin: {mail} is neither an admin nor a mail user", param="addAdmin")
            is_user = "ou=users," in entry.dn.lower()
            if managed is not None and not is_user:
                raise NotAuthorized("addAdmin: a normal admin may only promote users of its own domains",
                                    param="addAdmin")
            if managed is not None and req.context.access.outranks(mail):
                # Switching its domainadmin service on would hand it rights the caller lacks.
                raise NotAuthorized(f"addAdmin: {mail} holds admin rights beyond yours", param="addAdmin")
            if is_user:
                user_entries[mail] = entry
        if managed is not None:
            self._check_removals(req, [a.lower() for a in domain_entry.get("domainAdmin")], values)
        self.domains.set_admins(domain, add=add, remove=values.get("removeAdmin", []),
                                remove_all="removeAllAdmins" in values, user_entries=user_entries)
        ok(resp)


    def _check_removals(self, req: falcon.Request, current: list[str], values: dict[str, Any]) -> None:
        """A normal admin removes only its equals: not admins above it (that
        would take the domain away from them), and not itself (a reseller
        would free a place under its own domain limit and keep the domain
        through an admin it made)."""
        access = req.context.access
        removed = current if "removeAllAdmins" in values else [a for a in values.get("removeAdmin", []) if a in current]
        for mail in removed:
            if mail == access.principal.mail:
                raise NotAuthorized("removeAdmin: an admin cannot remove itself from a domain; ask a global admin",
                                    param="removeAdmin")
            if access.outranks(mail):
                raise NotAuthorized(f"removeAdmin: {mail} holds admin rights beyond yours", param="removeAdmin")


class DomainServices:
    operations = {
        "GET": Operation("The enabled services of a domain", data=STRINGS),
        "PUT": Operation("Enable or disable services of a domain", accounts.DOMAIN_SERVICES_PARAMS),
    }

    def __init__(self, domains: DomainStore):
        self.domains = domains

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, sorted(self.domains.services(domain)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["PUT"])
        self.domains.update(domain, values)
        ok(resp)
