"""Keeping Amavisd's and iRedAPD's rows in step with the directory.

When a domain or a mail user is deleted, or a user changes its address, the
rows keyed by that account in the policy databases must go or follow:

    from iredldap.db.policy_accounts import PolicyAccounts
    policies = PolicyAccounts(amavisd_db, iredapd_db)

    policies.forget("user@example.com")   # one user
    policies.forget("example.com")        # a domain: @example.com and every user@example.com
    policies.rename("old@example.com", "new@example.com")

What goes: Amavisd ``users`` rows of the account, the policies named after
it, its inbound and outbound white/blacklist entries; iRedAPD ``throttle``
rows (and their counters in ``throttle_tracking``), ``greylisting`` and
``greylisting_whitelists`` rows of the account.  Rows of other accounts
stay, also where they mention the account as a remote sender or recipient
(another user's blacklist entry for ``user@example.com`` is that user's
setting).  Sub-domain keys (``@.example.com``) are not the domain's own and
stay too.

Both databases are changed in one go: their transactions are committed
together at the end, so a failure in either (DatabaseUnavailable when one is
down) leaves both as they were and propagates -- which lets a caller that
runs this inside a directory `Batch` undo its LDAP changes as well.
"""

from __future__ import annotations

import contextlib
from typing import Callable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from iredldap.model import validators
from iredldap.db import amavisd as am
from iredldap.db import iredapd as apd


def _split(account: str) -> tuple[list[str], list[str]]:
    """(emails, domains) for a mail address, a domain name or ``@domain``."""
    text = (account or "").strip()
    if "@" in text.lstrip("@"):
        return [validators.email(text, param="account")], []
    return [], [validators.domain_name(text.lstrip("@"), param="account")]


class PolicyAccounts:
    def __init__(self, amavisd: am.AmavisdDB, iredapd: apd.IredapdDB):
        self.amavisd = amavisd
        self.iredapd = iredapd

    def _in_both(self, on_amavisd: Callable[[Connection], None], on_iredapd: Callable[[Connection], None]) -> None:
        # An embedded (SQLite) database never created holds no rows: skip it
        # rather than create it.
        use_a, use_i = not self.amavisd.database.missing(), not self.iredapd.database.missing()
        same = use_a and use_i and self.amavisd.database.url == self.iredapd.database.url
        with contextlib.ExitStack() as stack:
            a = stack.enter_context(self.amavisd.database.write()) if use_a else None
            i = a if same else (stack.enter_context(self.iredapd.database.write()) if use_i else None)
            if a is not None:
                on_amavisd(a)
            if i is not None:
                on_iredapd(i)
            # Leaving the stack commits iRedAPD first, then Amavisd: a failed
            # first commit rolls the second back.

    def forget(self, account: str) -> None:
        """Remove every row of a mail user, or of a domain and all its users."""
        emails, domains = _split(account)
        if domains:
            emails = ["@" + d for d in domains]
        self._in_both(
            lambda conn: am.forget_rows(conn, self.amavisd.live, emails=emails, domains=domains),
            lambda conn: apd.forget_rows(conn, self.iredapd.live, emails=emails, domains=domains),
        )

    def accounts(self) -> set[str]:
        """Every account (`user@domain`, `@domain`) that has rows in either database."""
        found: set[str] = set()
        for db, columns in ((self.amavisd, [(am.users, "email"), (am.policy, "policy_name")]),
                            (self.iredapd, [(apd.throttle, "account"), (apd.greylisting, "account")])):
            if db.database.missing():
                continue
            with db.database.read() as conn:
                for table, column in columns:
                    if db.live.table(table.name) is None:
                        continue
                    found.update(str(v) for (v,) in conn.execute(select(table.c[column])) if v)
        return found

    def rename(self, old_mail: str, new_mail: str) -> None:
        """Move a user's rows to its new address (rows an earlier account of
        the new address left behind are dropped first)."""
        old = validators.email(old_mail, param="mail")
        new = validators.email(new_mail, param="new_mail")
        if old == new:
            return
        pairs = [(old, new)]
        self._in_both(
            lambda conn: am.rename_rows(conn, self.amavisd.live, pairs),
            lambda conn: apd.rename_rows(conn, self.iredapd.live, pairs),
        )


__all__ = ["PolicyAccounts"]
