"""Spam policy, throttling, greylisting and white/blacklists: endpoints on the
Amavisd and iRedAPD databases.

    GET|PUT|DELETE  /api/spampolicy/global                          SpamPolicy
    GET|PUT|DELETE  /api/spampolicy/domain/<domain>                 SpamPolicy
    GET|PUT|DELETE  /api/spampolicy/user/<mail>                     SpamPolicy
    GET|POST|DELETE /api/throttle/<account>/<inbound|outbound>       Throttle
    GET             /api/greylisting/all                            GreylistingAll
    GET|POST        /api/greylisting/whitelist_spf_domains          GreylistingSpfDomains
    GET|POST|DELETE /api/greylisting/<account>                      Greylisting
    GET|POST        /api/greylisting/<account>/whitelists           GreylistingWhitelists
    GET|POST|PUT|DELETE /api/wblist/<inbound|outbound>/<whitelist|blacklist>/<account>   WBList

``<account>`` is ``global``, a domain name or a mail address.  A domain must
exist in the directory, a mail address must be a mail user (404 otherwise).
DELETE of a throttle setting and GET of the SPF domains are ours (the public
API has neither).  Normal admins get 403 for ``global`` and for other
domains (the access table), and for a domain or user whose profile tab
(``throttle``, ``greylisting``, ``wblist``, ``spampolicy``) the global admin
locked with ``disableDomainProfile`` / ``disableUserProfile``.

What GET returns in ``_data`` (iRedAdmin-Pro does not publish its shapes):

* spam policy: ``{}`` when the account has no policy of its own, else
  ``{"account": "@example.com", "bypass_spam_checks": true|false|null, ...,
  "quarantine_spam": ..., "quarantine_virus": ..., "quarantine_banned": ...,
  "quarantine_bad_header": ..., "prefix_spam_in_subject": ...,
  "always_insert_x_spam_headers": ..., "spam_score": 4.0|null,
  "banned_rulenames": ["ALLOW_MS_WORD"]|null}`` -- null: not set here, the
  next level (domain, global, amavisd.conf) decides.
* throttle: ``{}`` when not set, else ``{"account": "@example.com", "kind":
  "inbound", "priority": 60, "period": 3600, "msg_size": -1, "max_msgs": 20,
  "max_quota": -1, "max_rcpts": -1}`` (-1: inherit, 0: no limit;
  ``max_rcpts`` only where iRedAPD's table has it).
* greylisting of an account: ``{}`` when not set (inherits), else
  ``{"account": "@example.com", "status": "enable"|"disable"}``.
* greylisting ``all``: a list of ``{"account", "sender", "status",
  "priority", "sender_priority", "comment"}``, most specific first.
* greylisting whitelists, SPF domains, white/blacklists: sorted lists of
  strings.

Writes answer ``{"_success": true}``.  White/blacklists follow the public
document: invalid addresses are discarded and the valid ones stored, but not
silently -- the answer names them in ``_discarded``; a request with no valid
address at all is a 400 and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import falcon

from iredldap.db.amavisd import POLICY_PARAMS, AmavisdDB, policy_columns, policy_view
from iredldap.db.iredapd import IredapdDB
from iredldap.directory.admins import Principal
from iredldap.directory.connection import Directory
from iredldap.directory.domains import DomainStore
from iredldap.directory.settings_attr import parse as parse_settings
from iredldap.directory.tree import Tree
from iredldap.errors import InvalidInput, MissingParameter, NoSuchAccount, NotAuthorized
from iredldap.model import accounts
from iredldap.web.openapi import OBJECT, OBJECTS, STRINGS
from iredldap.model.params import (Blankable, Boolean, CheckedList, Choice, DomainList, Integer, NameList, Number,
                      Operation, Param, ParamSet)
from iredldap.model.params import ListKind, _dedupe
from iredldap.model.policy_addresses import (GLOBAL, Account, domain_account, greylist_sender, user_account,
                                wblist_address)
from iredldap.web.common import ok, principal, read_params

# -- parameters ------------------------------------------------------------------

_FLAG = Blankable(Boolean())
SPAM_POLICY_PARAMS = ParamSet((
    Param("bypass_spam_checks", _FLAG, "Bypass spam checks"),
    Param("bypass_virus_checks", _FLAG, "Bypass virus checks"),
    Param("bypass_banned_checks", _FLAG, "Bypass banned file type checks"),
    Param("bypass_header_checks", _FLAG, "Bypass bad header checks"),
    Param("quarantine_spam", _FLAG, "Quarantine detected spam into the SQL database"),
    Param("quarantine_virus", _FLAG, "Quarantine detected viruses into the SQL database"),
    Param("quarantine_banned", _FLAG, "Quarantine mail with banned file types into the SQL database"),
    Param("quarantine_bad_header", _FLAG, "Quarantine mail with bad headers into the SQL database"),
    Param("prefix_spam_in_subject", _FLAG, "Prefix [SPAM] to the subject of spam"),
    Param("always_insert_x_spam_headers", _FLAG, "Always insert X-Spam-* headers"),
    Param("spam_score", Blankable(Number(minimum=-999, maximum=999)),
          "Score from which mail is spam (empty: Amavisd's setting)"),
    Param("banned_rulenames", Blankable(NameList(max_length=64)), "Ban rules, comma-separated"),
))
assert set(SPAM_POLICY_PARAMS.by_name) == set(POLICY_PARAMS)

_LIMIT = Integer(minimum=-1, maximum=2**63 - 1)
THROTTLE_PARAMS = ParamSet((
    Param("period", Integer(minimum=1, maximum=2**31 - 1), "Period of time, in seconds", required=True),
    Param("msg_size", _LIMIT, "Max size of one message, in bytes (-1: inherit, 0: no limit)"),
    Param("max_msgs", _LIMIT, "Max messages (recipients) in the period (-1: inherit, 0: no limit)"),
    Param("max_quota", _LIMIT, "Max cumulative size in the period, in bytes (-1: inherit, 0: no limit)"),
    Param("max_rcpts", _LIMIT, "Max recipients of one message (-1: inherit, 0: no limit)"),
))

GREYLISTING_PARAMS = ParamSet((
    Param("status", Choice(("enable", "disable"),
                           synonyms=(("enabled", "enable"), ("yes", "enable"), ("on", "enable"),
                                     ("disabled", "disable"), ("no", "disable"), ("off", "disable"))),
          "Enable or disable greylisting", required=True),
))

_SENDERS = CheckedList(check=greylist_sender,
                       description="comma-separated: IP, CIDR network, user@domain, @domain, @.domain")
WHITELIST_PARAMS = ParamSet(
    (
        Param("whitelistSenders", _SENDERS, "Replace the whitelisted senders",
              aliases=("senders", "whitelistSender")),
        Param("addWhitelistSenders", _SENDERS, "Whitelist more senders",
              aliases=("addSenders", "addWhitelistSender")),
        Param("removeWhitelistSenders", _SENDERS, "Remove whitelisted senders",
              aliases=("removeSenders", "removeWhitelistSender")),
    ),
    conflicts=(("whitelistSenders", "addWhitelistSenders"), ("whitelistSenders", "removeWhitelistSenders")),
)

SPF_DOMAINS_PARAMS = ParamSet(
    (
        Param("domains", DomainList(), "Replace the sender domains whose SPF/MX hosts are whitelisted"),
        Param("addDomains", DomainList(), "Add sender domains"),
        Param("removeDomains", DomainList(), "Remove sender domains"),
    ),
    conflicts=(("domains", "addDomains"), ("domains", "removeDomains")),
)

@dataclass(frozen=True)
class ValidAndDiscarded(ListKind):
    """Comma-separated values; the ones the validator refuses are set aside
    (not an error) as iRedAdmin-Pro documents for white/blacklists.  Parses
    to ``(valid, discarded)``; none valid is a 400 naming the first problem.
    Bounded in number like every list (MAX_LIST_ITEMS), discarded ones included."""

    check: Callable[..., str] = wblist_address
    description: str = ""

    def parse(self, raw, name: str) -> tuple[list[str], list[str]]:
        valid, discarded, first_error = [], [], None
        for item in self.items(raw, name):
            try:
                valid.append(self.check(item, param=name))
            except InvalidInput as exc:
                discarded.append(item)
                first_error = first_error or exc
        if not valid:
            if first_error is not None:
                raise InvalidInput(f"{first_error.reason} (no valid address given)", param=name)
            raise InvalidInput(f"{name}: no address given", param=name)
        return _dedupe(valid), _dedupe(discarded)

    def schema(self) -> dict:
        return self.list_schema(self.description)


WBLIST_PARAMS = ParamSet((
    Param("addresses", ValidAndDiscarded(wblist_address,
                                         description="comma-separated: IP, CIDR network, user@domain, @domain, "
                                                     "@.domain, @.; invalid ones are discarded and named in "
                                                     "`_discarded`"),
          "Addresses to add (POST) or remove (PUT)", required=True),
))

_DISCARDED_NOTE = ("Invalid addresses among valid ones are discarded (as iRedAdmin-Pro documents) and listed in "
                   "`_discarded` of the answer; when none is valid the answer is 400 and nothing is written.")


def _ok_with_discarded(resp: falcon.Response, discarded: list[str]) -> None:
    ok(resp)
    if discarded:
        resp.media["_discarded"] = discarded


def _require_some(values: dict, spec: ParamSet) -> None:
    if not values:
        names = list(spec.by_name)
        raise MissingParameter(f"give one of {', '.join(names)}", param=names[0])


# -- whose setting -----------------------------------------------------------------

class Accounts:
    """URL segments -> policy accounts, for domains and users that exist."""

    def __init__(self, domains: DomainStore, directory: Directory, tree: Tree):
        self.domains = domains
        self.dir = directory
        self.tree = tree

    def domain(self, raw: str, *, param: str = "domain") -> Account:
        account = domain_account(raw, param=param)
        if self.domains.find(account.name) is None:
            raise NoSuchAccount(f"domain {account.name} does not exist", code="NO_SUCH_DOMAIN")
        return account

    def user(self, raw: str, *, param: str = "mail") -> Account:
        account = user_account(raw, param=param)
        if self.dir.get(self.tree.user(account.name), attrs=("objectClass",),
                        filterstr=accounts.USER.filter()) is None:
            raise NoSuchAccount(f"mail user {account.name} does not exist")
        return account

    def any(self, account: Account) -> Account:
        """The URL's {account} (parsed from its declaration), if it exists."""
        if account.kind == "domain":
            return self.domain(account.name, param="account")
        if account.kind == "user":
            return self.user(account.name, param="account")
        return account

    def check_unlocked(self, who: Principal, account: Account, profile: str) -> None:
        """Normal admins may not touch a profile tab the global admin locked."""
        if who.is_global or account.kind == "global":
            return
        domain = account.name.rpartition("@")[2]
        entry = self.domains.find(domain)
        if entry is None:
            return
        key = "disabledDomainProfile" if account.kind == "domain" else "disabledUserProfile"
        if profile in parse_settings(entry.get("accountSetting")).get(key, []):
            raise NotAuthorized(f"the '{profile}' settings of {account.name} are locked by a global admin")


# -- spam policy -------------------------------------------------------------------

class SpamPolicy:
    """One instance per URL form: `scope` is global, domain or user."""

    def __init__(self, db: AmavisdDB, accounts: Accounts, scope: str):
        self.db = db
        self.accounts = accounts
        self.scope = scope
        whose = {"global": "the global", "domain": "a domain's", "user": "a mail user's"}[scope]
        self.operations = {
            "GET": Operation(f"Show {whose} spam policy ({{}}: none of its own)", data=OBJECT),
            "PUT": Operation(f"Set {whose} spam policy (empty values: not set here)", SPAM_POLICY_PARAMS),
            "DELETE": Operation(f"Remove {whose} spam policy"),
        }

    def _account(self, req: falcon.Request, url: dict[str, str]) -> Account:
        if self.scope == "domain":
            account = self.accounts.domain(url["domain"])
        elif self.scope == "user":
            account = self.accounts.user(url["mail"])
        else:
            account = GLOBAL
        self.accounts.check_unlocked(principal(req), account, "spampolicy")
        return account

    def on_get(self, req: falcon.Request, resp: falcon.Response, **url: str) -> None:
        read_params(req, self.operations["GET"])
        account = self._account(req, url)
        ok(resp, policy_view(self.db.get_policy(account), account))

    def on_put(self, req: falcon.Request, resp: falcon.Response, **url: str) -> None:
        values = read_params(req, self.operations["PUT"])
        rules = values.get("banned_rulenames")
        if rules and len(",".join(rules)) > 64:
            raise InvalidInput("banned_rulenames: at most 64 characters in all", param="banned_rulenames")
        account = self._account(req, url)
        self.db.set_policy(account, policy_columns(values))
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **url: str) -> None:
        read_params(req, self.operations["DELETE"])
        self.db.delete_policy(self._account(req, url))
        ok(resp)


# -- throttle --------------------------------------------------------------------

class Throttle:
    operations = {
        "GET": Operation("Show a throttle setting ({}: none)", data=OBJECT),
        "POST": Operation("Set a throttle setting", THROTTLE_PARAMS),
        "DELETE": Operation("Remove a throttle setting"),
    }

    def __init__(self, db: IredapdDB, accounts: Accounts):
        self.db = db
        self.accounts = accounts

    def _target(self, req: falcon.Request, account: Account, direction: str) -> tuple[Account, str]:
        found = self.accounts.any(account)
        self.accounts.check_unlocked(principal(req), found, "throttle")
        return found, direction

    def on_get(self, req: falcon.Request, resp: falcon.Response, account: Account, direction: str) -> None:
        read_params(req, self.operations["GET"])
        found, kind = self._target(req, account, direction)
        ok(resp, self.db.get_throttle(found, kind) or {})

    def on_post(self, req: falcon.Request, resp: falcon.Response, account: Account, direction: str) -> None:
        values = read_params(req, self.operations["POST"])
        found, kind = self._target(req, account, direction)
        period = values.pop("period")
        self.db.set_throttle(found, kind, period=period, limits=values)
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, account: Account, direction: str) -> None:
        read_params(req, self.operations["DELETE"])
        found, kind = self._target(req, account, direction)
        self.db.delete_throttle(found, kind)
        ok(resp)


# -- greylisting -------------------------------------------------------------------

class GreylistingAll:
    operations = {"GET": Operation("Every greylisting setting, most specific first", data=OBJECTS)}

    def __init__(self, db: IredapdDB):
        self.db = db

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, self.db.all_greylisting())


class _GreylistingOf:
    def __init__(self, db: IredapdDB, accounts: Accounts):
        self.db = db
        self.accounts = accounts

    def _account(self, req: falcon.Request, account: Account) -> Account:
        found = self.accounts.any(account)
        self.accounts.check_unlocked(principal(req), found, "greylisting")
        return found


class Greylisting(_GreylistingOf):
    operations = {
        "GET": Operation("Show an account's greylisting setting ({}: inherited)", data=OBJECT),
        "POST": Operation("Enable or disable greylisting for an account", GREYLISTING_PARAMS),
        "DELETE": Operation("Remove an account's greylisting setting (inherit)"),
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response, account: Account) -> None:
        read_params(req, self.operations["GET"])
        found = self._account(req, account)
        active = self.db.get_greylisting(found)
        ok(resp, {} if active is None else {"account": found.key, "status": "enable" if active else "disable"})

    def on_post(self, req: falcon.Request, resp: falcon.Response, account: Account) -> None:
        values = read_params(req, self.operations["POST"])
        found = self._account(req, account)
        self.db.set_greylisting(found, values["status"] == "enable")
        ok(resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, account: Account) -> None:
        read_params(req, self.operations["DELETE"])
        self.db.delete_greylisting(self._account(req, account))
        ok(resp)


class GreylistingWhitelists(_GreylistingOf):
    operations = {
        "GET": Operation("Senders never greylisted for an account", data=STRINGS),
        "POST": Operation("Change the senders never greylisted for an account", WHITELIST_PARAMS),
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response, account: Account) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, self.db.whitelisted_senders(self._account(req, account)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, account: Account) -> None:
        values = read_params(req, self.operations["POST"])
        _require_some(values, WHITELIST_PARAMS)
        # (the same value in both is the parameters' 400: ParamSet.opposites)
        add, remove = values.get("addWhitelistSenders", []), values.get("removeWhitelistSenders", [])
        found = self._account(req, account)
        self.db.change_whitelist(found, reset=values.get("whitelistSenders"), add=add, remove=remove)
        ok(resp)


class GreylistingSpfDomains:
    operations = {
        "GET": Operation("Sender domains whose SPF/MX hosts are never greylisted", data=STRINGS),
        "POST": Operation("Change the sender domains whose SPF/MX hosts are never greylisted", SPF_DOMAINS_PARAMS),
    }

    def __init__(self, db: IredapdDB):
        self.db = db

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        read_params(req, self.operations["GET"])
        ok(resp, self.db.spf_domains())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = read_params(req, self.operations["POST"])
        _require_some(values, SPF_DOMAINS_PARAMS)
        add, remove = values.get("addDomains", []), values.get("removeDomains", [])
        self.db.change_spf_domains(reset=values.get("domains"), add=add, remove=remove)
        ok(resp)


# -- white/blacklists ------------------------------------------------------------

class WBList:
    operations = {
        "GET": Operation("The addresses of a white- or blacklist", data=STRINGS),
        "POST": Operation("Add addresses to a white- or blacklist", WBLIST_PARAMS, description=_DISCARDED_NOTE),
        "PUT": Operation("Remove addresses from a white- or blacklist", WBLIST_PARAMS,
                         description=_DISCARDED_NOTE),
        "DELETE": Operation("Empty a white- or blacklist"),
    }

    def __init__(self, db: AmavisdDB, accounts: Accounts):
        self.db = db
        self.accounts = accounts

    def _target(self, req: falcon.Request, direction: str, listname: str,
                account: Account) -> tuple[Account, str, str]:
        found = self.accounts.any(account)
        self.accounts.check_unlocked(principal(req), found, "wblist")
        return found, direction, listname

    def on_get(self, req, resp, direction: str, listname: str, account: Account) -> None:
        read_params(req, self.operations["GET"])
        found, direction, listname = self._target(req, direction, listname, account)
        ok(resp, self.db.list_addresses(found, direction, listname))

    def on_post(self, req, resp, direction: str, listname: str, account: Account) -> None:
        self._change(req, resp, "POST", self.db.add_addresses, direction, listname, account)

    def on_put(self, req, resp, direction: str, listname: str, account: Account) -> None:
        self._change(req, resp, "PUT", self.db.remove_addresses, direction, listname, account)

    def _change(self, req, resp, method: str, change, direction: str, listname: str, account: Account) -> None:
        """Add (POST) or remove (PUT) the valid addresses given; the invalid ones are named as discarded."""
        values = read_params(req, self.operations[method])
        found, direction, listname = self._target(req, direction, listname, account)
        valid, discarded = values["addresses"]
        change(found, direction, listname, valid)
        _ok_with_discarded(resp, discarded)

    def on_delete(self, req, resp, direction: str, listname: str, account: Account) -> None:
        read_params(req, self.operations["DELETE"])
        found, direction, listname = self._target(req, direction, listname, account)
        self.db.remove_addresses(found, direction, listname, None)
        ok(resp)


__all__ = ["Accounts", "SPAM_POLICY_PARAMS", "THROTTLE_PARAMS", "GREYLISTING_PARAMS",
           "WHITELIST_PARAMS", "SPF_DOMAINS_PARAMS", "WBLIST_PARAMS"]
