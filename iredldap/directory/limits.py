"""What a normal admin may still create: its `create_max_*` limits.

A normal admin's limits live in its own `accountSetting` (iRedAdmin's keys):

    create_new_domains:yes      it may create domains at all
    create_max_domains:<n>      domains it may manage
    create_max_users:<n>        mail users, over all the domains it manages
    create_max_aliases:<n>      mail aliases, likewise
    create_max_lists:<n>        mailing lists, likewise
    create_max_quota:<MB>       mailbox quota handed out, likewise (in MB;
    create_quota_unit:<unit>    the unit the limit was given in, for display)

Unset or 0 means unlimited, -1 means none at all.  The counts are shared by
all the domains the admin manages (`domainAdmin: <admin>`), whoever created
the accounts in them.  Global admins are never limited.

Every create calls `check` for its account type (the type declares which
limit is its own: `admin_limit`, model/accounts.py) before writing, to
refuse early with the count in the message, and hands the type's
`ceilings` (users: `user_ceilings`, with maxQuota) to the store, which
checks them again after writing (ceilings.py): only then do parallel
creates by one admin stop at the limit.  A refusal is a
`LimitExceeded` naming the API parameter (maxUsers, maxQuota ...).

What a create or a quota change is checked against comes from the domain
entries (`domainCurrentUserNumber`, `domainCurrentAliasNumber`,
`domainCurrentListNumber` -- shared by both kinds of mailing list -- and the
quota total, quota_total.py): one search of the admin's domains, whatever
their size, before the write and one after it (`SharedCeiling`; none after
it when the admin manages one domain); the accounts are read only to rank
requests racing for the admin's last places.  The quota totals of the
admin's domains are started (counted once) when its maxQuota first needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from iredldap.model.accounts import ADMIN_QUOTA_UNIT, ADMIN_SETTINGS, ALIAS, MAILLIST, QUOTA_UNITS, USER, AccountType, sharing, \
    MiB
from iredldap.errors import LimitExceeded
from iredldap.directory.admins import Principal
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling, SharedCeiling
from iredldap.directory.connection import Entry
from iredldap.directory.domains import DomainStore
from iredldap.directory.quota_total import QUOTA_TOTAL, quota_of
from iredldap.directory.users import UserStore

# API parameter -> accountSetting key.
LIMIT_KEYS = ADMIN_SETTINGS
QUOTA_UNIT_KEY = ADMIN_QUOTA_UNIT


def setting_int(settings: dict, key: str) -> int | None:
    """An integer setting; None when unset or not a number."""
    raw = settings.get(key)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        return None


def quota_limit_mb(settings: dict) -> int | None:
    """`create_max_quota` in MB.  Besides our `<MB>` it reads `<n>:<unit>` and
    `<n><unit>` (10:GB, 10GB), spellings other tools may have written."""
    raw = settings.get(LIMIT_KEYS["maxQuota"])
    if raw in (None, ""):
        return None
    match = re.fullmatch(r"\s*(-?\d+)\s*:?\s*([KMGT]B)?\s*", str(raw), re.IGNORECASE)
    if not match:
        return None
    number, unit = int(match.group(1)), (match.group(2) or "MB").upper()
    return number * QUOTA_UNITS[unit] if unit in QUOTA_UNITS else None


def quota_unit(settings: dict) -> str:
    """The unit the quota limit was given in (MB when unknown)."""
    unit = str(settings.get(QUOTA_UNIT_KEY) or "").upper()
    return unit if unit in QUOTA_UNITS else "MB"


@dataclass(frozen=True)
class Usage:
    """What the domains an admin manages hold now."""

    domains: int
    users: int
    aliases: int
    lists: int
    quota_mb: int


class AdminLimits:
    def __init__(self, domains: DomainStore, users: UserStore):
        self.domains = domains
        self.users = users

    # -- counting -----------------------------------------------------------

    def managed(self, principal: Principal) -> list[str]:
        """All the domains the admin manages (as read for its request, else read now)."""
        if principal.domains is not None:
            return list(principal.domains)
        return self.domains.managed_by(principal.mail)

    def count(self, domains: list[str], account: AccountType) -> int:
        """How many accounts of the type `domains` hold, with the types
        sharing its limit (both kinds of mailing list are lists): their
        domains' counters."""
        return self.users.addresses.total(domains, account)

    def used_quota_mb(self, domains: list[str], *, start: bool = False) -> int:
        """The quotas of the users of `domains` added up (users without a
        quota count 0), from the domains' quota totals; `start`: a domain
        without one gets it (else its users are added up for this answer)."""
        held = self.users.held(domains, (QUOTA_TOTAL,), start=start)
        return sum(v[QUOTA_TOTAL] for v in held.values()) // MiB

    def usage(self, principal: Principal) -> Usage:
        domains = self.managed(principal)
        return Usage(domains=len(domains), users=self.count(domains, USER), aliases=self.count(domains, ALIAS),
                     lists=self.count(domains, MAILLIST), quota_mb=self.used_quota_mb(domains))

    # -- checking -----------------------------------------------------------

    def check_domains(self, principal: Principal, adding: int = 1) -> None:
        self._check(principal, "maxDomains", "domains", adding, lambda domains: len(domains))

    def check(self, principal: Principal, account: AccountType, adding: int = 1) -> None:
        """May `principal` create `adding` more accounts of the type (its `admin_limit`)?"""
        self._check(principal, account.admin_limit, account.plural, adding, lambda domains: self.count(domains, account))

    def check_users(self, principal: Principal, adding: int = 1) -> None:
        self.check(principal, USER, adding)

    def check_aliases(self, principal: Principal, adding: int = 1) -> None:
        self.check(principal, ALIAS, adding)

    def check_lists(self, principal: Principal, adding: int = 1) -> None:
        self.check(principal, MAILLIST, adding)

    def check_new_user(self, principal: Principal, quota_mb: int) -> None:
        """`check_users` and `check_quota` for one new user of `quota_mb` MB,
        from one read of the admin's domain entries."""
        if principal.is_global:
            return
        counted = {USER.counter: bool(setting_int(principal.settings, LIMIT_KEYS[USER.admin_limit])),
                   QUOTA_TOTAL: bool(quota_limit_mb(principal.settings))}
        if not any(counted.values()):
            return
        held = self.users.held(self.managed(principal), tuple(a for a, wanted in counted.items() if wanted),
                               start=counted[QUOTA_TOTAL])
        if counted[USER.counter]:
            self._check(principal, USER.admin_limit, USER.plural, 1,
                        lambda domains: sum(v[USER.counter] for v in held.values()))
        self._check_quota(principal, quota_mb, lambda: sum(v[QUOTA_TOTAL] for v in held.values()) // MiB)

    def check_quota(self, principal: Principal, quota_mb: int, *, replacing_mb: int = 0) -> None:
        """May `principal` give one mailbox `quota_mb` MB (0: unlimited)?

        `replacing_mb`: the current quota of the user whose quota changes,
        left out of the sum.  An unlimited mailbox is refused to an admin
        whose quota is limited.
        """
        self._check_quota(principal, quota_mb,
                          lambda: self.used_quota_mb(self.managed(principal), start=True) - replacing_mb)

    def _check_quota(self, principal: Principal, quota_mb: int, used_mb) -> None:
        if principal.is_global:
            return
        most = quota_limit_mb(principal.settings)
        if not most:
            return
        if most < 0:
            raise LimitExceeded("this admin may not hand out mailbox quota", param="maxQuota")
        if quota_mb <= 0:
            raise LimitExceeded(f"this admin may hand out at most {most} MB of quota: "
                                "an unlimited mailbox is not allowed", param="maxQuota")
        used = used_mb()
        if used + quota_mb > most:
            raise LimitExceeded(f"this admin may hand out at most {most} MB of quota over all its domains; "
                                f"{used} MB are in use", param="maxQuota")

    # -- holding after the write (ceilings.py) --------------------------------

    def ceilings(self, principal: Principal, account: AccountType,
                 domains: list[str] | None = None) -> list[SharedCeiling]:
        """The admin's limit of the type (maxUsers, maxAliases, maxLists),
        for an account just added: judged from its domains' counters of the
        type (ceilings.py), its entries read only to rank racers."""
        if principal.is_global:
            return []       # never limited: no need to know its domains
        domains = self.managed(principal) if domains is None else domains
        return [SharedCeiling(c.most, account.counter, _names(domains), c)
                for c in self._ceilings(principal, account.admin_limit, account.plural,
                                        lambda: self._entries(domains, account, ORDER_ATTRS))]

    def user_ceilings(self, principal: Principal) -> list[SharedCeiling]:
        """maxUsers and maxQuota, for a user just added: judged from its
        domains' counters and quota totals (ceilings.py)."""
        if principal.is_global:
            return []
        domains = self.managed(principal)
        return self.ceilings(principal, USER, domains) + self.quota_ceilings(principal, domains)

    def quota_ceilings(self, principal: Principal, domains: list[str] | None = None, *,
                       changed: bool = False) -> list[SharedCeiling]:
        """maxQuota (in bytes, over the quota totals), for a user just added
        or (`changed`) whose quota was just raised.

        Racers are ranked by the users' entries; a raised quota is a new
        claim on an old entry: ranked by when it was written, not when the
        entry was created.
        """
        most_mb = None if principal.is_global else quota_limit_mb(principal.settings)
        if not most_mb or most_mb < 0:
            return []
        domains = self.managed(principal) if domains is None else domains
        ranked = Ceiling(most_mb, lambda: self._entries(domains, USER, (*ORDER_ATTRS, "mailQuota")),
                         lambda: LimitExceeded(f"this admin may hand out at most {most_mb} MB of quota over all "
                                               "its domains", param="maxQuota"),
                         by_creation=not changed, weight=quota_mb)
        return [SharedCeiling(most_mb * MiB, QUOTA_TOTAL, _names(domains), ranked)]

    def domain_ceilings(self, principal: Principal) -> list[Ceiling]:
        """maxDomains, for a domain just added with the admin in its domainAdmin."""
        return self._ceilings(principal, "maxDomains", "domains",
                              lambda: self.domains.list(admin=principal.mail, attrs=ORDER_ATTRS))

    def _ceilings(self, principal: Principal, param: str, what: str, holders) -> list[Ceiling]:
        most = None if principal.is_global else setting_int(principal.settings, LIMIT_KEYS[param])
        if not most or most < 0:  # unlimited, or refused before the write
            return []
        return [Ceiling(most, holders, lambda: LimitExceeded(
            f"this admin may have at most {most} {what} over all its domains", param=param), by_creation=True)]

    def _entries(self, domains: list[str], account: AccountType, attrs) -> list[Entry]:
        return [e for d in domains for t in sharing(account) for e in self.users.addresses.scan(d, t, attrs=attrs)]

    def _check(self, principal: Principal, param: str, what: str, adding: int, count) -> None:
        if principal.is_global or adding <= 0:
            return
        most = setting_int(principal.settings, LIMIT_KEYS[param])
        if not most:
            return
        if most < 0:
            raise LimitExceeded(f"this admin may not create {what}", param=param)
        have = count(self.managed(principal))
        if have + adding > most:
            raise LimitExceeded(f"this admin may have at most {most} {what} over all its domains "
                                f"({have} exist)", param=param)


def _names(domains: list[str]) -> tuple[str, ...]:
    return tuple(sorted({d.lower() for d in domains}))


def quota_mb(entry: Entry) -> int:
    """A user's quota in whole MB, as the quota total counts it."""
    return quota_of(entry) // MiB
