"""`iredldap check [--repair] [DOMAIN...]` and `GET /api/check`: is the
directory whole, and do the databases agree with it?

What is looked for (each finding names its kind, the DN or row, and what is
wrong):

    open_journal          multi-entry writes left unfinished (repair: finish them)
    half_written          a domain missing one of its four containers (repair:
                          add it); an externals entry of a list that is gone
                          (repair: delete it)
    counter               domainCurrent{User,Alias,List}Number differing from the
                          real count, domainCurrentQuotaSize from the sum of the
                          users' quotas (repair: set the real count or sum)
    dangling_reference    forwarding, alias or list members, memberOfGroup,
                          domainAdmin, list owners/moderators/allowed senders,
                          BCC addresses naming an address of a hosted domain that
                          no account has (repair: remove the value)
    empty_externals       an externals entry without members (repair: delete it)
    duplicate_address     an address that two accounts claim (reported only:
                          which one is meant is for a human to say)
    orphan_policy         Amavisd/iRedAPD rows of an account or domain that no
                          longer exists (repair: remove the rows)
    mailbox_without_row   used_quota of a mailbox whose user is gone and that has
                          no deleted_mailboxes row (reported only: the mailbox
                          path is no longer known)
    list_without_mlmmj    a subscribable list whose mlmmj directory is missing
                          (reported only: its settings and subscribers are gone;
                          mlmmj out of reach: not checked, with a warning)

With DOMAIN arguments only those domains (and the rows of their accounts) are
looked at; references are still checked against every account.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from iredldap.directory.connection import DELETE, LEVEL, REPLACE, SUBTREE, Directory, Entry
from iredldap.directory.journal import COUNTERS, WriteJournal, domain_of_dn
from iredldap.directory.quota_total import QUOTA_TOTAL, quota_of
from iredldap.directory.references import MULTI_VALUED, SINGLE_VALUED
from iredldap.directory.tree import CONTAINERS, Tree
from iredldap.errors import IredldapError, ListSpoolUnavailable
from iredldap.mlmmj import ListSpool
from iredldap.model.accounts import ADDRESS_TYPES, ADMIN, MLMMJ_LIST, USER
from iredldap.model.templates import load

log = logging.getLogger(__name__)

KINDS = {
    "open_journal": "unfinished multi-entry writes",
    "half_written": "half-written domains and accounts",
    "counter": "counters and quota totals that differ from the real count or sum",
    "dangling_reference": "references to addresses that do not exist",
    "empty_externals": "externals entries without members",
    "duplicate_address": "addresses that exist twice",
    "orphan_policy": "Amavisd/iRedAPD rows of accounts that do not exist",
    "mailbox_without_row": "mailboxes of deleted users without a deleted_mailboxes row",
    "list_without_mlmmj": "subscribable lists without their mlmmj directory",
}

_ACCOUNT_CLASSES = {t.object_class.lower() for t in ADDRESS_TYPES}
# What tells the counted types apart besides their object class (AccountType.matches).
_DISTINCT_ATTRS = tuple(dict.fromkeys(h.attr for _, types, _ in COUNTERS.values() for t in types for h in t.distinct))
_REF_ATTRS = MULTI_VALUED + SINGLE_VALUED


@dataclass
class Finding:
    kind: str
    dn: str
    detail: str
    repairable: bool = False
    repaired: bool = False


@dataclass
class Report:
    repair: bool
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, dn: str, detail: str, *, repairable: bool = False) -> Finding:
        finding = Finding(kind, dn, detail, repairable)
        self.findings.append(finding)
        return finding

    @property
    def counts(self) -> dict[str, int]:
        counts = {k: 0 for k in KINDS}
        for f in self.findings:
            counts[f.kind] += 1
        return counts

    @property
    def remaining(self) -> list[Finding]:
        return [f for f in self.findings if not f.repaired]

    @property
    def clean(self) -> bool:
        return not self.remaining

    def as_dict(self) -> dict:
        return {"clean": self.clean, "repair": self.repair, "counts": self.counts,
                "repaired": sum(1 for f in self.findings if f.repaired), "remaining": len(self.remaining),
                "findings": [asdict(f) for f in self.findings]}


def _classes(entry: Entry) -> set[str]:
    return {c.lower() for c in entry.get("objectClass")}


class Checker:
    def __init__(self, directory: Directory, tree: Tree, *, iredadmin, journal: WriteJournal, policies=None,
                 spool: ListSpool | None = None):
        self.dir = directory
        self.tree = tree
        self.db = iredadmin
        self.journal = journal
        self.policies = policies
        self.spool = spool

    def run(self, domains: Iterable[str] = (), *, repair: bool = False,
            progress: Callable[[int, int], None] | None = None) -> Report:
        report = Report(repair=repair)
        only = {d.lower() for d in domains}
        self._journal(report, repair, only)
        entries = list(self.dir.paged_search(self.tree.domains_dn, "(objectClass=*)", scope=SUBTREE,
                                             attrs=("objectClass", "mail", "shadowAddress", "domainName",
                                                    "domainAliasName", *COUNTERS, QUOTA_TOTAL, "mailQuota",
                                                    *_REF_ATTRS, *_DISTINCT_ATTRS)))
        admins = {e.first("mail").lower() for e in self.dir.paged_search(
            self.tree.admins_dn, ADMIN.filter(), scope=LEVEL, attrs=("mail",)) if e.get("mail")}
        hosted: set[str] = set()
        by_domain: dict[str, list[Entry]] = defaultdict(list)
        owners: dict[str, list[str]] = defaultdict(list)
        lists: set[str] = set()
        users: set[str] = set()
        domain_entries: dict[str, Entry] = {}
        for e in entries:
            classes = _classes(e)
            if "maildomain" in classes:
                name = e.first("domainName").lower()
                domain_entries[name] = e
                hosted.add(name)
                hosted.update(a.lower() for a in e.get("domainAliasName"))
            if classes & _ACCOUNT_CLASSES:
                for address in {a.lower() for a in e.get("mail") + e.get("shadowAddress")}:
                    if "@" in address and not address.startswith("@"):
                        owners[address].append(e.dn)
                if "maillist" in classes:
                    lists.add(e.first("mail").lower())
                if "mailuser" in classes:
                    users.add(e.first("mail").lower())
            domain = domain_of_dn(e.dn, self.tree.domains_dn)
            if domain:
                by_domain[domain].append(e)

        selected = sorted(d for d in domain_entries if not only or d in only)
        for i, domain in enumerate(selected):
            self._domain(report, repair, domain, domain_entries[domain], by_domain[domain], owners, lists, admins,
                         hosted)
            if progress:
                progress(i + 1, len(selected))
        for address, dns in sorted(owners.items()):
            if len(dns) > 1 and (not only or address.rpartition("@")[2] in only):
                report.add("duplicate_address", dns[0], f"{address} is claimed by {len(dns)} entries: "
                           + "; ".join(dns))
        self._policies(report, repair, only, owners, domain_entries)
        self._mailboxes(report, only, users)
        self._subscribable(report, [e for d in selected for e in by_domain[d] if MLMMJ_LIST.matches(e.attrs)])
        return report

    # -- the parts ------------------------------------------------------------

    def _journal(self, report: Report, repair: bool, only: set[str]) -> None:
        for row in self.journal.table.unfinished():
            if only and not any(t.rpartition(":")[2].rpartition("@")[2] in only for t in row.targets):
                continue
            finding = report.add("open_journal", " ".join(row.targets),
                                 f"journal {row.id}: {row.kind}, {row.state}, {row.done} of {row.steps} steps done",
                                 repairable=True)
            if repair and self.journal.resumable(row):
                try:
                    finding.repaired = self.journal.resume(row)
                except IredldapError as err:
                    finding.detail += f" (not finished: {err.reason})"

    def _domain(self, report, repair, domain, entry, below, owners, lists, admins, hosted) -> None:
        dns = {e.dn.lower() for e in below}
        for ou in CONTAINERS:
            dn = self.tree.container(domain, ou)
            if dn.lower() not in dns:
                finding = report.add("half_written", entry.dn, f"domain {domain} lacks its container ou={ou}",
                                     repairable=True)
                if repair:
                    self._try(finding, lambda: self.dir.add(*load("container").render(
                        ou=ou, domain=domain, domains_dn=self.tree.domains_dn)))
        for attr, (ou, types, _) in COUNTERS.items():
            if not entry.get(attr):
                continue
            container = self.tree.container(domain, ou).lower()
            real = sum(1 for e in below if e.dn.lower().endswith("," + container)
                       and any(t.matches(e.attrs) for t in types))
            if entry.first(attr) != str(real):
                finding = report.add("counter", entry.dn, f"{attr} is {entry.first(attr)}, the real count is {real}",
                                     repairable=True)
                if repair:
                    self._try(finding, lambda: self.dir.modify(entry.dn, {attr: [(REPLACE, [str(real)])]}))
        if entry.get(QUOTA_TOTAL):
            users = self.tree.container(domain, USER.container).lower()
            real = sum(quota_of(e) for e in below
                       if e.dn.lower().endswith("," + users) and USER.matches(e.attrs))
            if entry.first(QUOTA_TOTAL) != str(real):
                finding = report.add("counter", entry.dn, f"{QUOTA_TOTAL} is {entry.first(QUOTA_TOTAL)}, the users' "
                                     f"quotas add up to {real}", repairable=True)
                if repair:
                    self._try(finding, lambda: self.dir.modify(entry.dn, {QUOTA_TOTAL: [(REPLACE, [str(real)])]}))
        for e in below:
            classes = _classes(e)
            if "mailexternaluser" in classes:
                owner_list = e.first("memberOfGroup").lower()
                if owner_list not in lists:
                    finding = report.add("half_written", e.dn, f"externals entry of {owner_list}, which is not a list",
                                         repairable=True)
                    if repair:
                        self._try(finding, lambda: self.dir.delete(e.dn))
                    continue
                if not e.get("mail"):
                    finding = report.add("empty_externals", e.dn, f"externals entry of {owner_list} without members",
                                         repairable=True)
                    if repair:
                        self._try(finding, lambda: self.dir.delete(e.dn))
                continue
            for attr in _REF_ATTRS:
                for value in e.get(attr):
                    wrong = self._dangling(attr, value.lower(), owners, lists, admins, hosted)
                    if wrong:
                        finding = report.add("dangling_reference", e.dn, f"{attr}: {value} {wrong}", repairable=True)
                        if repair:
                            self._try(finding, lambda: self.dir.modify(e.dn, {attr: [(DELETE, [value])]}))

    @staticmethod
    def _dangling(attr, value, owners, lists, admins, hosted) -> str:
        if attr == "memberOfGroup":
            return "" if value in lists else "is not a mailing list"
        if attr == "domainAdmin":
            return "" if value in admins or value in owners else "is not an admin"
        local, _, domain = value.rpartition("@")
        if not local or domain not in hosted:
            return ""  # outside this server: not ours to know
        return "" if value in owners else "has no account"

    def _policies(self, report, repair, only, owners, domain_entries) -> None:
        if self.policies is None:
            return
        try:
            accounts = self.policies.accounts()
        except IredldapError as err:
            log.warning("policy rows not checked: %s", err.code)
            return
        hosted_domains = set(domain_entries)
        for account in sorted(accounts):
            account = account.lower()
            if account in ("@.", "") or not account.startswith("@") and "@" not in account:
                continue
            domain = account.rpartition("@")[2]
            if only and domain not in only:
                continue
            if account.startswith("@"):
                exists = domain in hosted_domains
            else:
                exists = account in owners
            if exists:
                continue
            finding = report.add("orphan_policy", account, "Amavisd/iRedAPD rows of an account that does not exist",
                                 repairable=True)
            if repair:
                self._try(finding, lambda: self.policies.forget(account if not account.startswith("@")
                                                                else account[1:]))

    def _mailboxes(self, report, only, users) -> None:
        try:
            quota = self.db.used_quota_usernames()
            recorded = self.db.deleted_mailbox_usernames()
        except IredldapError as err:
            log.warning("mailboxes not checked: %s", err.code)
            return
        for username in sorted(quota):
            username = username.lower()
            if username in users or username in recorded:
                continue
            if only and username.rpartition("@")[2] not in only:
                continue
            report.add("mailbox_without_row", username,
                       "the user is gone but its mailbox has no deleted_mailboxes row")

    def _subscribable(self, report, lists: list[Entry]) -> None:
        if self.spool is None or not lists:
            return
        try:
            self.spool.ping()
            for e in lists:
                if not self.spool.exists(e.first("mail").lower()):
                    report.add("list_without_mlmmj", e.dn, "the list has no mlmmj directory")
        except ListSpoolUnavailable as err:
            log.warning("subscribable lists not checked: %s", err.reason)

    @staticmethod
    def _try(finding: Finding, fix: Callable[[], None]) -> None:
        try:
            fix()
            finding.repaired = True
        except IredldapError as err:
            finding.detail += f" (not repaired: {err.code})"
