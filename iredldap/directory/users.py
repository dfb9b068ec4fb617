"""Mail users (`inetOrgPerson` + `shadowAccount` + `amavisAccount` + `mailUser`).

The store enforces the domain's rules (user count, quotas, password policy),
keeps `domainCurrentUserNumber` and the quota total (`domainCurrentQuotaSize`,
quota_total.py) right, and on delete or rename carries every reference to
the address along (`references.py`).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from iredldap.model.accounts import ALIAS, DOMAIN, USER, MiB
from iredldap.config import Settings
from iredldap.errors import AlreadyExists, Conflict, InvalidInput, IredldapError, LimitExceeded, ValueAlreadyPresent, \
    ValueMissing
from iredldap.model.mailbox import FREE_PATH_STEPS, days_since_epoch, home_directory_choices, path_spellings
from iredldap.model.password_policy import PasswordPolicy
from iredldap.directory import settings_attr
from iredldap.directory.addresses import (HOLDING_ATTRS, Addresses, address_in_use, attr_of as _attr, copy_attrs,
                                          holding_filter, holds, with_attr as _replace_attr)
from iredldap.directory.ceilings import ORDER_ATTRS, Ceiling, SharedCeiling, ranked_room, shared_ceilings
from iredldap.directory.connection import ADD, DELETE, REPLACE, Batch, Changes, Directory, Entry, as_int
from iredldap.directory.domains import DeletedMailbox
from iredldap.directory.quota_total import QUOTA_TOTAL, QuotaTotals, quota_of, total_of
from iredldap.directory.tree import Tree, f
from iredldap.directory.values import (diff as values_diff, field_attrs, field_changes, wanted as wanted_list,
                                      wanted_services)



@dataclass(frozen=True)
class DomainRules:
    """What a domain allows, read from its entry."""

    entry: Entry
    max_users: int          # 0: unlimited, -1: none
    max_user_quota_mb: int  # 0: no limit
    domain_quota_mb: int    # 0: no limit
    default_quota_mb: int
    policy: PasswordPolicy

    @property
    def backup_mx(self) -> bool:
        return self.entry.has_value("domainBackupMX", "yes")

    @property
    def disabled(self) -> bool:
        return self.entry.first("accountStatus").lower() == "disabled"


def _held_paths(entry: Entry, storage: str) -> list[str]:
    """The mailbox paths an entry holds, as absolute paths below `storage`
    (a mailMessageStore is relative: to the storage base, or to its parent)."""
    base = storage.rstrip("/")
    parent = base.rpartition("/")[0]
    paths = list(entry.get("homeDirectory"))
    for store in entry.get("mailMessageStore"):
        store = store.lstrip("/")
        paths += [f"{base}/{store}", f"{parent}/{store}"]
    return paths


class UserStore:
    def __init__(self, directory: Directory, tree: Tree, settings: Settings, *,
                 kept_maildirs: Callable[[list[str]], set[str]] | None = None):
        """`kept_maildirs(paths)`: those of `paths` that are mailboxes of
        deleted accounts still on disk (iRedAdmin's deleted_mailboxes)."""
        self.dir = directory
        self.tree = tree
        self.settings = settings
        self.kept_maildirs = kept_maildirs
        self.addresses = Addresses(directory, tree)
        self.quota = QuotaTotals(directory, tree)

    # -- reading ------------------------------------------------------------

    def find(self, mail: str, attrs=("*",)) -> Entry | None:
        return self.dir.get(self.tree.user(mail), attrs=attrs, filterstr=USER.filter())

    def get(self, mail: str, attrs=("*",), *, read: Entry | None = None) -> Entry:
        """The user at `mail`; `read`: its entry as the request has read it already, if it has."""
        if read is not None and read.has_value("objectClass", "mailUser"):
            return read
        entry = self.find(mail, attrs)
        if entry is None:
            raise USER.missing(mail)
        return entry

    def list(self, domain: str, *, disabled_only: bool = False, search: str = "", attrs=("*",)) -> Iterator[Entry]:
        """Read page by page (LDAP paged results); `search`: address or name contains it."""
        yield from self.addresses.scan(domain, USER, disabled_only=disabled_only, search=search, attrs=attrs)

    def count(self, domain: str) -> int:
        return self.addresses.count(domain, USER)

    def held(self, domains: builtins.list[str], attrs=(USER.counter, QUOTA_TOTAL), *,
             start: bool = False) -> dict[str, dict[str, int]]:
        """Per domain (lower case): its users (`domainCurrentUserNumber`) and
        the sum of their quotas in bytes (`domainCurrentQuotaSize`), those of
        `attrs`, from the domain entries (one search).  A domain lacking one
        is counted; with `start` its quota total is started (written) first."""
        entries = self.addresses.domain_entries(domains, attrs)
        out: dict[str, dict[str, int]] = {}
        for domain in (d.lower() for d in domains):
            entry = entries.get(domain)
            values: dict[str, int] = {}
            if USER.counter in attrs:
                users = as_int(entry.first(USER.counter)) if entry is not None else None
                values[USER.counter] = users if users is not None else self.count(domain)
            if QUOTA_TOTAL in attrs:
                total = total_of(entry)
                if total is None and start and entry is not None:
                    self.quota.start(domain, entry=entry)
                    total = total_of(self.dir.get(self.tree.domain(domain), attrs=(QUOTA_TOTAL,)))
                values[QUOTA_TOTAL] = total if total is not None else self.quota.real(domain)
            out[domain] = values
        return out

    def room(self, domain: str, most: int) -> Ceiling:
        """The domain's numberOfUsers, held after the write (ceilings.py) by
        ranking its users (a create ranks itself by the counter instead)."""
        return Ceiling(most, lambda: self.list(domain, attrs=ORDER_ATTRS), lambda: self._no_room(domain, most),
                       by_creation=True)

    @staticmethod
    def _no_room_for_move(domain: str) -> LimitExceeded:
        return LimitExceeded(f"{domain} has no room for another user", param=USER.domain_limit)

    @staticmethod
    def _no_room(domain: str, most: int) -> LimitExceeded:
        return LimitExceeded(f"{domain} may have at most {most} users", param=USER.domain_limit)

    def address_taken(self, address: str) -> bool:
        return self.addresses.taken(address)

    def memberships(self, mail: str) -> dict[str, builtins.list[str]]:
        """Aliases forwarding to the user, and the domains it administers."""
        found = self.dir.search(
            self.tree.domains_dn,
            "(|" + ALIAS.filter("(mailForwardingAddress=%s)", mail) + DOMAIN.filter("(domainAdmin=%s)", mail) + ")",
            attrs=("mail", "domainName", "objectClass"))
        aliases = sorted(e.first("mail").lower() for e in found if e.get("mail"))
        domains = sorted(e.first("domainName").lower() for e in found if e.get("domainName"))
        return {"mailing_aliases": aliases, "managed_domains": domains}

    # -- rules --------------------------------------------------------------

    def rules(self, domain: str, *, entry: Entry | None = None) -> DomainRules:
        """The rules of `domain`; `entry`: its entry, when the request has read it already."""
        if entry is None or not DOMAIN.matches(entry.attrs):
            entry = self.addresses.domain_entry(domain)
        values = entry.get("accountSetting")
        s = self.settings
        return DomainRules(
            entry=entry,
            max_users=settings_attr.int_of(values, USER.domain_limit),
            max_user_quota_mb=settings_attr.int_of(values, "maxUserQuota"),
            domain_quota_mb=settings_attr.int_of(values, "domainQuota"),
            default_quota_mb=settings_attr.int_of(values, "defaultQuota"),
            policy=PasswordPolicy(
                min_length=settings_attr.int_of(values, "minPasswordLength") or s.min_password_length,
                max_length=settings_attr.int_of(values, "maxPasswordLength") or s.max_password_length,
                need_letter=s.password_has_letter, need_uppercase=s.password_has_uppercase,
                need_digit=s.password_has_number, need_special=s.password_has_special_char),
        )

    def _check_quota(self, rules: DomainRules, domain: str, quota_mb: int) -> None:
        """The rules for one mailbox's quota; the domain quota itself is held
        by the reservation in the domain's quota total (`_reserve_quota`)."""
        if rules.max_user_quota_mb and (quota_mb == 0 or quota_mb > rules.max_user_quota_mb):
            raise InvalidInput(f"quota: at most {rules.max_user_quota_mb} MB per user in {domain}",
                               code="EXCEEDED_MAX_USER_QUOTA", param="quota")
        if rules.domain_quota_mb and quota_mb == 0:
            raise self._over_domain_quota(rules)

    @staticmethod
    def _over_domain_quota(rules: DomainRules) -> InvalidInput:
        return InvalidInput(f"quota: the domain's {rules.domain_quota_mb} MB would be exceeded",
                            code="EXCEEDED_DOMAIN_QUOTA", param="quota")

    @staticmethod
    def _keeps_total(rules: DomainRules, limits: Sequence[SharedCeiling]) -> bool:
        """Is the domain's quota total kept (it has one), or needed (a domain
        quota, an admin's maxQuota over the domain)?"""
        return bool(rules.entry.get(QUOTA_TOTAL) or rules.domain_quota_mb
                    or any(c.attr == QUOTA_TOTAL for c in limits))

    def _reserve_quota(self, batch: Batch, domain: str, rules: DomainRules, delta: int,
                       limits: Sequence[SharedCeiling]) -> builtins.list[int | None]:
        """Queue raising the domain's quota total by `delta` bytes, to be
        sent before the quota is written (quota_total.py), refused if that
        would pass the domain quota, or the maxQuota of an admin managing
        this domain alone (its other limits are judged after the write,
        `_shared_ceilings`).  Returns what `QuotaTotals.reserve` returns.

        The maxQuota of an admin of several domains is also a bound, less
        what its other domains hold, read with the domain's total at each
        try of the swap: of racers that are over it together most are
        refused here, before they write; those that slip past one another
        between the read and the swap are judged after the write."""
        domain = domain.lower()
        quota_limits = [c for c in limits if c.attr == QUOTA_TOTAL and domain in c.domains]
        bounds: list[tuple[int, Callable[[], IredldapError]]] = [
            (c.most, c.refusal) for c in quota_limits if c.domains == (domain,)]
        if rules.domain_quota_mb:
            bounds.append((rules.domain_quota_mb * MiB, lambda: self._over_domain_quota(rules)))
        spread = [c for c in quota_limits if c.domains != (domain,)]
        if not spread:
            return self.quota.reserve(batch, domain, delta, bounds=bounds, known=rules.entry)

        def read() -> tuple[Entry | None, builtins.list[tuple[int, Callable[[], IredldapError]]]]:
            names = sorted({d for c in spread for d in c.domains})
            entries = self.addresses.domain_entries(names, (QUOTA_TOTAL,))
            held = {d: t if (t := total_of(entries.get(d))) is not None else self.quota.real(d) for d in names}
            return entries.get(domain), [(c.most - sum(held[d] for d in c.domains if d != domain), c.refusal)
                                         for c in spread]
        return self.quota.reserve(batch, domain, delta, bounds=bounds, read=read)

    def _shared_ceilings(self, domain: str, made: dict[str, int | None],
                         limits: Sequence[SharedCeiling]) -> builtins.list[Ceiling]:
        """ceilings.shared_ceilings over the users' values (held)."""
        return shared_ceilings(domain, made, limits, self.held)

    # -- creating -----------------------------------------------------------

    def create(self, mail: str, values: dict[str, Any], *, password_hash: str,
               extra: dict[str, builtins.list[str]] | None = None, limits: Sequence[SharedCeiling] = (),
               rules: DomainRules | None = None) -> str:
        """Add a user; `values` are parsed API parameters (USER fields).

        `limits`: the creating admin's limits the new user must fit in.
        `rules`: the domain's, when the request has read them already.
        """
        local, _, domain = mail.partition("@")
        rules = rules or self.rules(domain)
        storage = settings_attr.value_of(rules.entry.get("accountSetting"), "defaultStorageBaseDirectory") \
            or self.settings.storage_base_directory
        if values.get("maildir"):
            self.addresses.require_free(mail)
            home = values["maildir"]
        else:
            # The search for a free path tells whether the address is free too.
            home = self._free_home_directory(mail, str(storage), claiming=True)
        if rules.backup_mx:
            raise InvalidInput(f"{domain} is a backup MX domain: it has no mailboxes", code="DOMAIN_IS_BACKUP_MX")
        if rules.max_users == -1:
            raise LimitExceeded(f"{domain} may not have mail users", param=USER.domain_limit)
        held = as_int(rules.entry.first(USER.counter))
        if rules.max_users > 0 and held is not None and held >= rules.max_users:
            # Full as the counter read with the domain says: refused before anything is written.
            raise self._no_room(domain, rules.max_users)
        quota_mb = values.get("quota", rules.default_quota_mb)
        self._check_quota(rules, domain, quota_mb)

        dn, attrs = USER.template.render(
            mail=mail, local_part=local, domain=domain, name=values.get("name") or local,
            domains_dn=self.tree.domains_dn, home_directory=home,
            shadow_last_change=str(days_since_epoch()))
        attrs.update(field_attrs(USER.fields, values, skip=("name", "maildir", "quota")))
        attrs["userPassword"] = [password_hash]
        # No per-user mtaTransport: iRedAdmin writes none, and Postfix's
        # transport_maps_user finding none falls back to transport_maps_domain,
        # so a later change of the domain's transport (or backup MX) reaches
        # this mailbox.  A per-user transport is only set when asked for.
        attrs.setdefault("preferredLanguage", [rules.entry.first("preferredLanguage")
                                               or self.settings.default_language])
        if quota_mb:
            attrs["mailQuota"] = [str(quota_mb * MiB)]
        aliases = [f"{local}@{a.lower()}" for a in rules.entry.get("domainAliasName")]
        if aliases:
            attrs["shadowAddress"] = aliases
        if rules.disabled:
            attrs["domainStatus"] = ["disabled"]
        for key, more in (extra or {}).items():
            attrs[key] = list(dict.fromkeys(attrs.get(key, []) + more))

        self._start_counter(domain, entry=rules.entry)
        keeps_total = quota_mb and self._keeps_total(rules, limits)
        if keeps_total:
            self.quota.start(domain, entry=rules.entry)
        with self.dir.batch(kind="create", targets=[f"mail:{mail}"]) as batch:
            made: dict[str, int | None] = {}
            # Reserved before the add: racing creates cannot pass the domain quota.
            reserved = self._reserve_quota(batch, domain, rules, quota_mb * MiB, limits) if keeps_total else []
            # The reservation, the add and the counter go to the journal as one plan.
            batch.plan_add(dn, attrs)
            # numberOfUsers: the counter's value this create's increment made
            # (each of racing creates sees its own) ranks it among them, so
            # no user is read; a loser's add and increment are undone.
            made[USER.counter] = self.addresses.bump_now(batch, domain, USER.counter, +1, entry=rules.entry,
                                                         recount=lambda: self.count(domain))
            if keeps_total:
                made[QUOTA_TOTAL] = reserved[0]
            ceilings = self._shared_ceilings(domain, made, limits)
            if rules.max_users > 0:
                ceilings += ranked_room(made[USER.counter], self.room(domain, rules.max_users))
            # Checked after adding, so of creates racing for the same address
            # or the admin's last free places only the winners stay.
            self.addresses.claim(dn, [mail, *aliases], *ceilings)
        return dn

    def _free_home_directory(self, mail: str, storage: str, *, claiming: bool = False) -> str:
        """iRedMail's path for a new mailbox, its timestamp stepped a second
        at a time past paths in use: a renamed account keeps its path, and
        a deleted one's mailbox may be kept, so an address re-created in the
        same second would otherwise share the old maildir (and lose it to
        the cleanup of the kept one).  This second's path is asked for first
        (nearly always free: a small filter), the next seconds' only if it
        is taken.

        `claiming`: the first search also looks for an account holding
        `mail` (AlreadyExists if there is one), so a create asks once."""
        choices = home_directory_choices(mail, storage, steps=FREE_PATH_STEPS)
        for batch in (choices[:1], choices[1:]):
            used = self._paths_in_use(batch, storage, address=mail if claiming else "")
            claiming = False
            for path in batch:
                if path.rstrip("/") not in used:
                    return path
        raise Conflict(f"every mailbox path for {mail} of the next {FREE_PATH_STEPS} seconds is in use; "
                       f"try again later")

    def _paths_in_use(self, paths: builtins.list[str], storage: str, *, address: str = "") -> set[str]:
        """Those of `paths` an entry holds (in any spelling) or a kept mailbox
        has: one search and one query.  `address`: the same search finds the
        account holding it, if any, and raises AlreadyExists."""
        terms = [f(f"({attr}=%s)", value) for path in paths
                 for attr, values in path_spellings(path, storage).items() for value in values]
        attrs: tuple[str, ...] = ("homeDirectory", "mailMessageStore")
        if address:
            terms.append(holding_filter(address))
            attrs += HOLDING_ATTRS
        found = self.dir.search(self.tree.domains_dn, "(|" + "".join(terms) + ")", attrs=attrs)
        if address and any(holds(e, address) for e in found):
            raise address_in_use(address)
        used = {p.rstrip("/") for e in found for p in _held_paths(e, storage)}
        if self.kept_maildirs is not None:
            used |= {p.rstrip("/") for p in self.kept_maildirs(paths)}
        return used

    def _start_counter(self, domain: str, *, entry: Entry | None = None) -> None:
        self.addresses.start_counter(domain, USER.counter, entry=entry, recount=lambda: self.count(domain))

    def _bump_counter(self, batch: Batch, domain: str, delta: int, *, entry: Entry | None = None) -> None:
        self.addresses.bump(batch, domain, USER.counter, delta, entry=entry,
                            recount=lambda: self.count(domain))

    def create_global_admin(self, mail: str, *, password_hash: str, name: str = "") -> str:
        """A mail user that is also a global admin, like iRedMail's postmaster."""
        return self.create(mail, {"name": name} if name else {}, password_hash=password_hash,
                           extra={"domainGlobalAdmin": ["yes"], "enabledService": ["domainadmin"]})

    # -- updating -----------------------------------------------------------

    def update(self, mail: str, values: dict[str, Any], *, password_hash: str | None = None,
               quota_limits: Sequence[SharedCeiling] = (), entry: Entry | None = None,
               rules: DomainRules | None = None) -> None:
        """`quota_limits`: the limits a raised quota must fit in (the admin's maxQuota).

        `entry` and `rules`: the user's entry and its domain's rules, when the
        request has read them already.
        """
        entry = self.get(mail, read=entry)
        local, _, domain = mail.partition("@")
        rules = rules or self.rules(domain)
        changes: Changes = {}
        services = {s.lower(): s for s in entry.get("enabledService")}

        if "quota" in values:
            self._check_quota(rules, domain, values["quota"])
        # iRedAdmin: an empty display name or surname falls back to the local part.
        changes.update(field_changes(entry, USER.fields, values, empty_defaults={"name": local, "sn": local}))
        quota_delta = self._quota_change(entry, values, changes)

        if password_hash is not None:
            changes["userPassword"] = [(REPLACE, [password_hash])]
            changes["shadowLastChange"] = [(REPLACE, [str(days_since_epoch())])]

        if "isGlobalAdmin" in values:
            if values["isGlobalAdmin"]:
                changes["domainGlobalAdmin"] = [(REPLACE, ["yes"])]
                services.setdefault("domainadmin", "domainadmin")
            elif entry.get("domainGlobalAdmin"):
                changes["domainGlobalAdmin"] = [(DELETE, [])]
                if not self.memberships(mail)["managed_domains"]:
                    services.pop("domainadmin", None)

        forwarding = wanted_list(entry.get("mailForwardingAddress"), values, "forwarding", "addForwarding",
                             "removeForwarding")
        if forwarding is not None:
            ops = values_diff(entry.get("mailForwardingAddress"), forwarding)
            if ops:
                changes["mailForwardingAddress"] = ops
            # Postfix only forwards for users with `forward` (virtual_alias_maps).
            if forwarding:
                services.setdefault("forward", "forward")

        aliases = self._wanted_aliases(entry, domain, rules, local, values)
        claimed: list[str] = []
        if aliases is not None:
            ops = values_diff(entry.get("shadowAddress"), aliases)
            if ops:
                changes["shadowAddress"] = ops
            have = {v.lower() for v in entry.get("shadowAddress")}
            claimed = [a for a in aliases if a.lower() not in have]

        services = wanted_services(services, values)
        ops = values_diff(entry.get("enabledService"), services.values())
        if ops:
            changes["enabledService"] = ops

        moves_total = bool(quota_delta) and self._keeps_total(rules, quota_limits)
        if moves_total:
            self.quota.start(domain, entry=rules.entry)
        # Journaled when it writes two entries (the user and its domain's quota total).
        with self.dir.batch(kind="update" if moves_total else None, targets=[f"mail:{mail}"]) as batch:
            reserved = self._reserve_quota(batch, domain, rules, quota_delta, quota_limits) \
                if moves_total and quota_delta > 0 else []
            try:
                batch.modify(entry.dn, changes, before=entry)   # (the reservation is sent first)
            except (ValueMissing, ValueAlreadyPresent, InvalidInput):
                if "mailQuota" in changes and self._quota_moved(entry):
                    raise Conflict("quota: changed by another request meanwhile; try again", param="quota") from None
                raise
            if moves_total and quota_delta < 0:
                self.quota.release(batch, domain, -quota_delta)
            made = {QUOTA_TOTAL: reserved[0]} if reserved else {}
            # New alias addresses and a raised quota are checked after they were written (ceilings.py).
            self.addresses.claim(entry.dn, claimed, *self._shared_ceilings(domain, made, quota_limits))

    @staticmethod
    def _quota_change(entry: Entry, values: dict[str, Any], changes: Changes) -> int:
        """Make the change of mailQuota (if any) a compare-and-swap of the
        value read: the quota total moves by the difference, so of two
        requests changing one user's quota at once only one may write it.
        Returns the difference in bytes."""
        if "quota" not in values:
            return 0
        read = entry.get("mailQuota")[:1]
        old, new = quota_of(entry), values["quota"] * MiB
        if read == ([str(new)] if new else []):
            changes.pop("mailQuota", None)
            return 0
        swap: list = [(DELETE, read)] if read else []
        if new:
            swap.append((ADD, [str(new)]))
        changes["mailQuota"] = swap
        return new - old

    def _quota_moved(self, entry: Entry) -> bool:
        now = self.dir.get(entry.dn, attrs=("mailQuota",))
        return now is None or now.get("mailQuota")[:1] != entry.get("mailQuota")[:1]

    def _wanted_aliases(self, entry: Entry, domain: str, rules: DomainRules, local: str,
                        values: dict[str, Any]) -> builtins.list[str] | None:
        """The shadowAddress values after the change; checks each new one."""
        if not any(k in values for k in ("aliases", "addAlias", "removeAlias")):
            return None
        current = [v.lower() for v in entry.get("shadowAddress")]
        alias_domains = [a.lower() for a in rules.entry.get("domainAliasName")]
        # The user's twins in the alias domains are kept by the domain, not by this list.
        twins = {f"{local}@{a}" for a in alias_domains}
        wanted = wanted_list([v for v in current if v not in twins], values, "aliases", "addAlias", "removeAlias") or []
        for address in wanted:
            if address in current:
                continue
            if address.rpartition("@")[2] not in [domain, *alias_domains]:
                raise InvalidInput(f"aliases: {address} is not in {domain} or one of its alias domains",
                                   param="aliases")
            if address == f"{local}@{domain}":
                # Taken (409, as any address in use), but not by another account.
                raise AlreadyExists(f"aliases: {address} is the user's own address", param="aliases")
            if self.address_taken(address):
                raise AlreadyExists(f"aliases: {address} is already used by another account", param="aliases")
        return [v for v in current if v in twins] + [a for a in wanted if a not in twins]

    def bulk_update(self, domain: str, values: dict[str, Any], *, password_hash: str | None,
                    skip: frozenset[str] = frozenset()) -> int:
        """Apply the same change to every user of a domain but those in `skip`
        (lower-case addresses); all or nothing."""
        self.rules(domain)
        base: Changes = {}
        if "accountStatus" in values:
            base["accountStatus"] = [(REPLACE, [values["accountStatus"]])]
        if values.get("language"):
            base["preferredLanguage"] = [(REPLACE, [values["language"]])]
        if "transport" in values:
            base["mtaTransport"] = [(REPLACE, [values["transport"]])]
        if password_hash is not None:
            base["userPassword"] = [(REPLACE, [password_hash])]
            base["shadowLastChange"] = [(REPLACE, [str(days_since_epoch())])]
        if not base:
            return 0
        attrs = [a for a in base if a != "userPassword"] + (["userPassword"] if password_hash else [])
        count = 0
        with self.dir.batch(kind="update", targets=[f"domain:{domain}"]) as batch:
            for user in self.list(domain, attrs=["mail", *attrs]):
                if user.first("mail").lower() in skip:
                    continue
                batch.modify(user.dn, base, before=user)
                count += 1
        return count

    # -- deleting and renaming ---------------------------------------------

    def delete(self, mail: str, *, after: Callable[[DeletedMailbox], None] | None = None) -> DeletedMailbox:
        """Remove the user and every value elsewhere naming it.

        `after` runs once the whole plan is in the journal and before the
        first entry is touched (so the deleted_mailboxes row exists before
        the user goes); if it raises, nothing is written.  A callable it
        returns undoes it, should the deletion be undone.
        """
        entry = self.get(mail, attrs=("*",))
        domain = mail.partition("@")[2]
        mailbox = DeletedMailbox(mail, domain, entry.first("homeDirectory"))
        rules = self.rules(domain)
        self._start_counter(domain, entry=rules.entry)
        quota = quota_of(entry)
        keeps_total = quota and self._keeps_total(rules, ())
        if keeps_total:
            self.quota.start(domain, entry=rules.entry)
        with self.dir.batch(kind="delete", targets=[f"mail:{mail}"], resume="forward") as batch:
            self.addresses.remove(batch, entry, mail)
            self._bump_counter(batch, domain, -1, entry=rules.entry)
            if keeps_total:
                self.quota.release(batch, domain, quota)
            batch.record(final=True)
            if after is not None:
                undo = after(mailbox)
                if callable(undo):
                    batch.on_rollback(undo)
        return mailbox

    def rename(self, old: str, new: str, *, after: Callable[[], None] | None = None) -> str:
        """Change a user's address; the mailbox path stays so no mail is lost."""
        entry = self.get(old)
        old_local, _, old_domain = old.partition("@")
        new_local, _, new_domain = new.partition("@")
        if old == new:
            raise InvalidInput("new_mail: the address is the same", param="new_mail")
        if self.address_taken(new):
            raise address_in_use(new)
        new_rules = self.rules(new_domain)
        if new_rules.backup_mx:
            raise InvalidInput(f"{new_domain} is a backup MX domain", code="DOMAIN_IS_BACKUP_MX")
        quota = quota_of(entry)
        if new_domain != old_domain:
            held = as_int(new_rules.entry.first(USER.counter))
            if new_rules.max_users == -1 or (new_rules.max_users > 0 and (
                    held if held is not None else self.count(new_domain)) >= new_rules.max_users):
                raise self._no_room_for_move(new_domain)
            self._check_quota(new_rules, new_domain, quota // MiB)
        old_rules = self.rules(old_domain)
        # The quota moves from the old domain's total to the new one's.
        moves_to = new_domain != old_domain and quota and self._keeps_total(new_rules, ())
        moves_from = new_domain != old_domain and quota and self._keeps_total(old_rules, ())

        attrs = copy_attrs(entry)
        attrs = _replace_attr(attrs, "mail", [new])
        for attr in ("uid", "cn", "sn"):
            if _attr(attrs, attr) == [old_local]:
                attrs = _replace_attr(attrs, attr, [new_local])
        old_twins = {f"{old_local}@{a.lower()}" for a in old_rules.entry.get("domainAliasName")}
        shadows = [v for v in _attr(attrs, "shadowAddress") if v.lower() not in old_twins]
        shadows += [f"{new_local}@{a.lower()}" for a in new_rules.entry.get("domainAliasName")]
        attrs = _replace_attr(attrs, "shadowAddress", list(dict.fromkeys(shadows)))
        if new_domain != old_domain:
            # A copy of the old domain's transport (older versions wrote one)
            # goes; the user follows the new domain's.  A transport of its
            # own (different from the domain's) stays.
            if _attr(attrs, "mtaTransport") and \
                    _attr(attrs, "mtaTransport")[0].lower() == (old_rules.entry.first("mtaTransport") or "").lower():
                attrs = _replace_attr(attrs, "mtaTransport", [])
            attrs = _replace_attr(attrs, "domainStatus", ["disabled"] if new_rules.disabled else [])
        attrs = {k: v for k, v in attrs.items() if v}
        # Forwarding to itself (the "keep a copy" marker) follows the address.
        attrs = _replace_attr(attrs, "mailForwardingAddress",
                              [new if v.lower() == old else v for v in _attr(attrs, "mailForwardingAddress")]) \
            if _attr(attrs, "mailForwardingAddress") else attrs
        new_dn = self.tree.user(new)

        if new_domain != old_domain:
            self._start_counter(old_domain, entry=old_rules.entry)
            self._start_counter(new_domain, entry=new_rules.entry)
        for domain, rules, moves in ((old_domain, old_rules, moves_from), (new_domain, new_rules, moves_to)):
            if moves:
                self.quota.start(domain, entry=rules.entry)
        with self.dir.batch(kind="rename", targets=[f"mail:{old}", f"mail:{new}"], resume="forward") as batch:
            if moves_to:
                # Reserved in the new domain before the move (its domain quota holds).
                self._reserve_quota(batch, new_domain, new_rules, quota, ())
            self.addresses.move(batch, entry, new_dn, attrs, old, new)
            room: builtins.list[Ceiling] = []
            if new_domain != old_domain:
                # numberOfUsers of the new domain: ranked by the value its
                # increment made, as a create is (no user read).
                made = self.addresses.bump_now(batch, new_domain, USER.counter, +1, entry=new_rules.entry,
                                               recount=lambda: self.count(new_domain))
                if new_rules.max_users > 0:
                    if made is None:
                        room.append(self.room(new_domain, new_rules.max_users))
                    elif made > new_rules.max_users:
                        raise self._no_room_for_move(new_domain)
                self._bump_counter(batch, old_domain, -1)
            self.addresses.claim(new_dn, [new, *_attr(attrs, "shadowAddress")], *room)
            if moves_from:
                self.quota.release(batch, old_domain, quota)
            if after is not None:
                # After the move: if it raises, the move is undone.
                after()
        return new_dn
