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

Every create calls the matching `check_*` before writing, to refuse early
with the count in the message, and hands the matching `*_ceilings` to the
store, which checks them again after writing (ceilings.py): only then do
parallel creates by one admin stop at the limit.  A refusal is a
`LimitExceeded` naming the API parameter (maxUsers, maxQuota ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from iredldap.model.accounts import ADMIN_QUOTA_UNIT, ADMIN_SETTINGS, QUOTA_UNITS, MiB
from iredldap.errors import LimitExceeded
from iredldap.directory.admins import Principal
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling
from iredldap.directory.connection import LEVEL, Entry
from iredldap.directory.domains import DomainStore
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
        self.dir = domains.dir
        self.tree = domains.tree

    # -- counting -----------------------------------------------------------

    def managed(self, principal: Principal) -> list[str]:
        """All the domains the admin manages (as read for its request, else read now)."""
        if principal.domains is not None:
            return list(principal.domains)
        return self.domains.managed_by(principal.mail)

    def _count(self, domains: list[str], ou: str, flt: str) -> int:
        return sum(1 for d in domains
                   for _ in self.dir.paged_search(self.tree.container(d, ou), flt, scope=LEVEL, attrs=("1.1",)))

    def count_users(self, domains: list[str]) -> int:
        return sum(self.users.count(d) for d in domains)  # the catch-all is no user

    def count_aliases(self, domains: list[str]) -> int:
        return self._count(domains, "Aliases", "(objectClass=mailAlias)")

    def count_lists(self, domains: list[str]) -> int:
        return self._count(domains, "Groups", "(objectClass=mailList)")

    def used_quota_mb(self, domains: list[str], *, exclude: str = "") -> int:
        """The quotas of the users of `domains` added up (users without a quota count 0)."""
        total = 0
        for d in domains:
            for user in self.users.list(d, attrs=("mail", "mailQuota")):
                if exclude and user.first("mail").lower() == exclude.lower():
                    continue
                try:
                    total += int(user.first("mailQuota") or 0)
                except ValueError:
                    pass
        return total // MiB

    def usage(self, principal: Principal) -> Usage:
        domains = self.managed(principal)
        return Usage(domains=len(domains), users=self.count_users(domains), aliases=self.count_aliases(domains),
                     lists=self.count_lists(domains), quota_mb=self.used_quota_mb(domains))

    # -- checking -----------------------------------------------------------

    def check_domains(self, principal: Principal, adding: int = 1) -> None:
        self._check(principal, "maxDomains", "domains", adding, lambda domains: len(domains))

    def check_users(self, principal: Principal, adding: int = 1) -> None:
        self._check(principal, "maxUsers", "mail users", adding, self.count_users)

    def check_aliases(self, principal: Principal, adding: int = 1) -> None:
        self._check(principal, "maxAliases", "mail aliases", adding, self.count_aliases)

    def check_lists(self, principal: Principal, adding: int = 1) -> None:
        self._check(principal, "maxLists", "mailing lists", adding, self.count_lists)

    def check_quota(self, principal: Principal, quota_mb: int, *, replacing: str = "") -> None:
        """May `principal` give one mailbox `quota_mb` MB (0: unlimited)?

        `replacing`: the address of the user whose quota changes; its current
        quota is left out of the sum.  An unlimited mailbox is refused to an
        admin whose quota is limited.
        """
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
        used = self.used_quota_mb(self.managed(principal), exclude=replacing)
        if used + quota_mb > most:
            raise LimitExceeded(f"this admin may hand out at most {most} MB of quota over all its domains; "
                                f"{used} MB are in use", param="maxQuota")

    # -- holding after the write (ceilings.py) --------------------------------

    def user_ceilings(self, principal: Principal) -> list[Ceiling]:
        """maxUsers and maxQuota, for a user just added."""
        domains = self.managed(principal)
        return self._ceilings(principal, "maxUsers", "mail users",
                              lambda: self._entries(domains, "Users", ORDER_ATTRS, users=True)) \
            + self.quota_ceilings(principal, domains)

    def quota_ceilings(self, principal: Principal, domains: list[str] | None = None, *,
                       changed: bool = False) -> list[Ceiling]:
        """maxQuota, for a user just added or (`changed`) whose quota was just raised.

        A raised quota is a new claim on an old entry: ranked by when it was
        written, not when the entry was created.
        """
        most_mb = None if principal.is_global else quota_limit_mb(principal.settings)
        if not most_mb or most_mb < 0:
            return []
        domains = self.managed(principal) if domains is None else domains
        return [Ceiling(most_mb, lambda: self._entries(domains, "Users", (*ORDER_ATTRS, "mailQuota"), users=True),
                        lambda: LimitExceeded(f"this admin may hand out at most {most_mb} MB of quota over all "
                                              "its domains", param="maxQuota"),
                        by_creation=not changed, weight=_quota_mb)]

    def alias_ceilings(self, principal: Principal) -> list[Ceiling]:
        domains = self.managed(principal)
        return self._ceilings(principal, "maxAliases", "mail aliases",
                              lambda: self._entries(domains, "Aliases", ORDER_ATTRS, flt="(objectClass=mailAlias)"))

    def list_ceilings(self, principal: Principal) -> list[Ceiling]:
        domains = self.managed(principal)
        return self._ceilings(principal, "maxLists", "mailing lists",
                              lambda: self._entries(domains, "Groups", ORDER_ATTRS, flt="(objectClass=mailList)"))

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

    def _entries(self, domains: list[str], ou: str, attrs, *, flt: str = "", users: bool = False) -> list[Entry]:
        if users:
            return [e for d in domains for e in self.users.list(d, attrs=attrs)]
        return [e for d in domains
                for e in self.dir.paged_search(self.tree.container(d, ou), flt, scope=LEVEL, attrs=attrs)]

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


def _quota_mb(entry: Entry) -> int:
    try:
        return int(entry.first("mailQuota") or 0) // MiB
    except ValueError:
        return 0
