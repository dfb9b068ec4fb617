"""Mail user endpoints.

    GET|POST|PUT|DELETE /api/user/<mail>                  UserItem
    DELETE /api/user/<mail>/keep_mailbox_days/<n>         UserItem (on_delete_keep)
    POST   /api/user/<mail>/change_email/<new_mail>       change_email.ChangeEmail
    GET|PUT /api/users/<domain>                           UserCollection
    POST   /api/verify_password/user/<mail>               common.PasswordCheck
"""

from __future__ import annotations

from datetime import datetime, timezone
import functools
from dataclasses import KW_ONLY, InitVar, dataclass
from typing import Any

import falcon

from iredldap.model import accounts
from iredldap.web import audit
from iredldap.config import Settings
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.directory.domains import DeletedMailbox, DomainStore
from iredldap.directory.limits import AdminLimits, quota_mb
from iredldap.directory.settings_attr import parse as parse_settings
from iredldap.directory.connection import Entry
from iredldap.directory.users import DomainRules, UserStore
from iredldap.errors import MissingParameter, NotAuthorized
from iredldap.web.openapi import LISTING, STRINGS, entry_with
from iredldap.model.params import Operation
from iredldap.db.sessions import SessionStore
from iredldap.model.tenant_view import hide_foreign, own_values
from iredldap.web.common import (DEFAULT_KEEP_DAYS, PasswordHashing, answer_addresses, end_access_of, end_sessions_in,
                                 end_sessions_of, entry_as_dict, ok, principal, read_params, restrict_for_normal_admin)

BULK_RESULT = {"type": "object", "properties": {"updated": {"type": "integer"}, "skipped": STRINGS}}
USER_VIEW = entry_with(stored_bytes={"type": "integer"}, stored_messages={"type": "integer"},
                       last_login={"type": "string", "description": "ISO 8601, or empty: never"})


@dataclass(eq=False)
class UserItem:
    users: UserStore
    domains: DomainStore
    db: IredadminDB
    settings: InitVar[Settings]
    _: KW_ONLY
    limits: AdminLimits
    policies: PolicyAccounts | None = None
    sessions: SessionStore | None = None

    def __post_init__(self, settings: Settings) -> None:
        self.hashing = PasswordHashing(settings)
        self.create_params = accounts.USER.create_params()
        self.update_params = accounts.USER.update_params()
        self.operations = {
            "GET": Operation("Show a mail user (with its aliases, lists, mailbox usage and last login)",
                             data=USER_VIEW),
            "POST": Operation("Create a mail user (password or password_hash required)", self.create_params,
                              status=201),
            "PUT": Operation("Change a mail user", self.update_params),
            "DELETE": Operation("Delete a mail user (mailbox kept 100 years)"),
            "DELETE_keep": Operation("Delete a mail user, keeping the mailbox <days> days"),
        }

    def _read(self, req: falcon.Request, mail: str) -> tuple[Entry | None, DomainRules]:
        """The user's entry (None: not read yet) and its domain's rules, from
        what the request's lookup found where it could (404 for an unknown domain)."""
        access = req.context.access
        domain = mail.partition("@")[2]
        rules = self.users.rules(domain, entry=access.entry_at(self.users.tree.domain(domain)))
        return access.entry_at(self.users.tree.user(mail)), rules

    def on_get(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["GET"])
        entry = self.users.get(mail, read=req.context.access.entry_at(self.users.tree.user(mail)))
        data: dict[str, Any] = entry_as_dict(entry)
        lookup = req.context.access.lookup
        found = lookup.memberships(self.users.tree.domains_dn) if lookup is not None and lookup.account == mail else None
        data.update(found if found is not None else self.users.memberships(mail))
        data["mailing_lists"] = sorted(v.lower() for v in entry.get("memberOfGroup"))
        if not principal(req).is_global:
            _hide_other_tenants(data, req.context.access.managed_domains())
        usage, login = self.db.mailbox_facts(mail)
        data["stored_bytes"] = int(usage["bytes"])
        data["stored_messages"] = int(usage["messages"])
        data["last_login"] = _last_login(login)
        ok(resp, data)

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["POST"])
        who = principal(req)
        restrict_for_normal_admin(who, self.create_params, values, [])
        if "password" not in values and "password_hash" not in values:
            raise MissingParameter("password: required (or password_hash)", param="password")
        _, rules = self._read(req, mail)
        self.limits.check_new_user(who, values.get("quota", rules.default_quota_mb))
        stored = self.hashing.stored_value(values, rules.policy)
        assert stored is not None   # a password or a hash was given (checked above)
        self.users.create(mail, values, password_hash=stored, rules=rules, limits=self.limits.user_ceilings(who))
        ok(resp, status=201)

    def on_put(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        entry, rules = self._read(req, mail)
        locked = parse_settings(rules.entry.get("accountSetting")).get("disabledUserProfile", [])
        restrict_for_normal_admin(who, self.update_params, values, [] if who.is_global else locked)
        if not who.is_global and mail == who.mail and "accountStatus" in values:
            raise NotAuthorized("accountStatus: an admin cannot disable itself", param="accountStatus")
        for alias in values.get("aliases", []) + values.get("addAlias", []):
            # The address of an admin above the caller (a standalone admin's, say).
            if req.context.access.outranks(alias):
                raise NotAuthorized(f"addAlias: {alias} holds admin rights beyond yours", param="addAlias")
        if "quota" in values:
            entry = self.users.get(mail, read=entry)
            self.limits.check_quota(who, values["quota"], replacing_mb=quota_mb(entry))
        stored = self.hashing.stored_value(values, rules.policy)
        self.users.update(mail, values, password_hash=stored, entry=entry, rules=rules,
                          quota_limits=self.limits.quota_ceilings(who, changed=True) if "quota" in values else ())
        if stored is not None:
            end_sessions_of(self.sessions, req, mail)
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        read_params(req, self.operations["DELETE"])
        self._delete(req, mail, DEFAULT_KEEP_DAYS)
        ok(resp)

    def on_delete_keep(self, req: falcon.Request, resp: falcon.Response, mail: str, days: int) -> None:
        read_params(req, self.operations["DELETE_keep"])
        self._delete(req, mail, days)
        ok(resp)

    def _delete(self, req: falcon.Request, mail: str, keep_days: int) -> None:
        who = principal(req)

        def record(mailbox: DeletedMailbox):
            # Runs before the user goes: a database that refuses leaves it.
            # Returns how to take the row back, should the deletion be undone.
            if self.policies is not None:
                self.policies.forget(mail)
            since = self.db.now()
            # Before the rows that would stay wrong if this refused: a
            # later ann@ must not inherit the tokens or sessions of this one.
            end_access_of(self.db, self.sessions, mail)
            self.db.record_deleted_mailboxes(
                [{"username": mailbox.username, "domain": mailbox.domain, "maildir": mailbox.maildir}],
                admin=who.mail, keep_days=keep_days or None)
            self.db.delete_used_quota(usernames=[mail])
            return lambda: self.db.unrecord_deleted_mailboxes([mailbox.username], since=since, admin=who.mail)

        self.users.delete(mail, after=record)


class UserCollection:
    operations = {
        "GET": Operation("List the mail users of a domain", accounts.USER_LIST_PARAMS, data=LISTING, listing=True),
        "PUT": Operation("Change every mail user of a domain", accounts.USERS_BULK_PARAMS, data=BULK_RESULT,
                         description="Accounts holding admin rights beyond a normal admin's own are left "
                                     "unchanged and listed in `skipped`, and so is the admin's own "
                                     "account when accountStatus is given."),
    }

    def __init__(self, users: UserStore, settings: Settings, db: IredadminDB, *,
                 sessions: SessionStore | None = None):
        self.users = users
        self.sessions = sessions
        self.db = db
        self.hashing = PasswordHashing(settings)

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["GET"])
        self.users.rules(domain)  # 404 for an unknown domain
        answer_addresses(req, resp, values, functools.partial(self.users.list, domain))

    def on_put(self, req: falcon.Request, resp: falcon.Response, domain: str) -> None:
        values = read_params(req, self.operations["PUT"])
        who = principal(req)
        restrict_for_normal_admin(who, accounts.USERS_BULK_PARAMS, values, [])
        # One hash for all: hashing ten thousand times with bcrypt would take hours.
        stored = self.hashing.stored_value(values, self.users.rules(domain).policy)
        # Accounts above a normal admin are left alone (authz.Rule.MAIL_ACCOUNT
        # for one user) and named in the answer.
        skipped = req.context.access.outranking(domain)
        if (not who.is_global and who.is_mail_user and "accountStatus" in values
                and who.mail.endswith("@" + domain) and who.mail not in skipped):
            # As for one user (UserItem.on_put): an admin cannot disable itself.
            skipped = sorted([*skipped, who.mail])
        count = self.users.bulk_update(domain, values, password_hash=stored, skip=frozenset(skipped))
        if stored is not None:
            end_sessions_in(self.sessions, req, domain, self.users.tree.domain(domain), skip=frozenset(skipped))
        audit.note(req, note=f"{count} users" + (f", skipped {', '.join(skipped)}" if skipped else ""))
        ok(resp, {"updated": count, "skipped": skipped})


def _hide_other_tenants(data: dict[str, Any], managed: list[str]) -> None:
    """Drop what a user's view says about domains the caller does not manage:
    aliases and lists there that name the user, domains it administers."""
    mine = set(managed)
    for key in ("mailing_aliases", "mailing_lists"):
        data[key] = own_values(data[key], mine)
    data["managed_domains"] = [d for d in data["managed_domains"] if d in mine]
    hide_foreign(data, mine)


def _last_login(row: dict | None) -> str:
    """The latest of Dovecot's imap/pop3/lda login times, as an ISO 8601 string."""
    if not row:
        return ""
    stamps = [stamp for k in ("imap", "pop3", "lda") if (stamp := row.get(k))]
    if not stamps:
        return ""
    return datetime.fromtimestamp(max(stamps), timezone.utc).isoformat(timespec="seconds")
