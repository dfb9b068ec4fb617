"""iRedAPD's tables: throttling and greylisting.

Tables (names, columns and meanings as iRedAPD ships them)::

    throttle              account, kind (inbound/outbound/external), priority,
                          period (s), msg_size, max_msgs, max_quota, max_rcpts
    throttle_tracking     counters per throttle row (tid -> throttle.id)
    greylisting           account (local recipient), sender, their priorities,
                          active 1/0
    greylisting_whitelists            account, sender (IP, CIDR, address, domain)
    greylisting_whitelist_domains     sender domains whose SPF/MX hosts a cron
                                      job whitelists ...
    greylisting_whitelist_domain_spf  ... into this table

How iRedAPD reads them:

* throttle: ``WHERE kind = ? AND account IN (<keys of the sender or
  recipient>) ORDER BY priority DESC``.  Rows with ``period = 0`` are skipped.
  For each limit separately the first row with a value >= 0 decides: -1 means
  "not set here, ask the next row", 0 "no limit" (and stop looking), N a limit.
* greylisting: ``WHERE account IN (<keys of the recipient>) ORDER BY priority
  DESC, sender_priority DESC``; the first row whose sender matches decides
  (active 1: greylist, 0: don't).  No row, no greylisting.  Settings made
  here use sender ``@.`` (anyone), sender_priority 0.

Priorities come from `iredldap.model.policy_addresses.IREDAPD_PRIORITY`: user 100,
domain 60, global 0.  MySQL has UNIQUE (account, kind) on ``throttle``,
PostgreSQL does not: the store never relies on it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import (BigInteger, Column, Index, MetaData, SmallInteger, String, Table, UniqueConstraint,
                        delete, insert, or_, select, text, update)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from iredldap.db.columns import MYSQL, chunks, id_type, number_column, text_column
from iredldap.db.live import ForeignDatabase, LiveSchema
from iredldap.errors import InvalidInput
from iredldap.model.policy_addresses import Account

metadata = MetaData()
_id, _str = id_type, text_column


def _limit(name: str) -> Column:
    return number_column(name, -1)


def _uint(name: str) -> Column:
    return number_column(name, 0, BigInteger().with_variant(mysql.INTEGER(unsigned=True), *MYSQL))


throttle = Table(
    "throttle", metadata,
    Column("id", _id(), primary_key=True, autoincrement=True),
    Column("account", String(255), nullable=False),
    _str("kind", 10, server_default="outbound"),
    Column("priority", BigInteger().with_variant(mysql.TINYINT(unsigned=True), *MYSQL),
           nullable=False, server_default=text("0")),
    _uint("period"),
    *map(_limit, ("msg_size", "max_msgs", "max_quota", "max_rcpts")),
    UniqueConstraint("account", "kind", name="account_kind"),
    mysql_engine="InnoDB",
)

throttle_tracking = Table(
    "throttle_tracking", metadata,
    Column("id", _id(), primary_key=True, autoincrement=True),
    Column("tid", BigInteger(), nullable=False, server_default=text("0")),
    _str("account"),
    *map(_uint, ("period", "cur_msgs", "cur_quota", "init_time", "last_time", "last_notify_time")),
    UniqueConstraint("tid", "account", name="tid_account"),
    mysql_engine="InnoDB",
)

greylisting = Table(
    "greylisting", metadata,
    Column("id", _id(), primary_key=True, autoincrement=True),
    _str("account"),
    Column("priority", SmallInteger(), nullable=False, server_default=text("0")),
    _str("sender"),
    Column("sender_priority", SmallInteger(), nullable=False, server_default=text("0")),
    _str("comment"),
    Column("active", SmallInteger(), nullable=False, server_default=text("1")),
    UniqueConstraint("account", "sender", name="greylisting_account_sender"),
    Index("idx_greylisting_comment", "comment"),
    mysql_engine="InnoDB",
)


def _whitelist_table(name: str) -> Table:
    return Table(
        name, metadata,
        Column("id", _id(), primary_key=True, autoincrement=True),
        _str("account"),
        _str("sender"),
        _str("comment"),
        UniqueConstraint("account", "sender", name=f"{name}_account_sender"),
        Index(f"idx_{name}_comment", "comment"),
        mysql_engine="InnoDB",
    )


greylisting_whitelists = _whitelist_table("greylisting_whitelists")
greylisting_whitelist_domain_spf = _whitelist_table("greylisting_whitelist_domain_spf")

greylisting_whitelist_domains = Table(
    "greylisting_whitelist_domains", metadata,
    Column("id", _id(), primary_key=True, autoincrement=True),
    _str("domain", unique=True),
    mysql_engine="InnoDB",
)

LIMITS = ("msg_size", "max_msgs", "max_quota", "max_rcpts")
KINDS = ("inbound", "outbound")
# Whitelist rows the SPF/MX cron job wrote for a sender domain.
AUTO_UPDATE_COMMENT = "AUTO-UPDATE: {domain}"
# The sender of greylisting settings made through the API: anyone.
ANY_SENDER = "@."


def _matching(conn: Connection, table: Table, emails: Iterable[str], domains: Iterable[str]) -> list[tuple]:
    emails, domains = sorted(set(emails)), sorted(set(domains))
    col = table.c.account
    conds = [col.in_(chunk) for chunk in chunks(emails)]
    conds += [col.like("%@" + d) for d in domains]
    if not conds:
        return []
    return [(i, a) for i, a in conn.execute(select(table.c.id, col).where(or_(*conds)))
            if a in emails or any(a.endswith("@" + d) for d in domains)]


_ACCOUNT_TABLES = (throttle, greylisting, greylisting_whitelists)


def forget_rows(conn: Connection, live: LiveSchema, *, emails: Iterable[str], domains: Iterable[str]) -> None:
    """Delete throttle (with its counters), greylisting and greylisting
    whitelist rows of these accounts and of every account of these domains."""
    emails, domains = list(emails), list(domains)
    for table in _ACCOUNT_TABLES:
        if live.table(table.name) is None:
            continue
        ids = [i for i, _ in _matching(conn, table, emails, domains)]
        for chunk in chunks(ids):
            if table is throttle and live.table("throttle_tracking") is not None:
                conn.execute(delete(throttle_tracking).where(throttle_tracking.c.tid.in_(chunk)))
            conn.execute(delete(table).where(table.c.id.in_(chunk)))


def rename_rows(conn: Connection, live: LiveSchema, pairs: list[tuple[str, str]]) -> None:
    forget_rows(conn, live, emails=[new for _, new in pairs], domains=[])
    for table in _ACCOUNT_TABLES:
        found = live.table(table.name)
        if found is None:
            continue
        for old, new in pairs:
            _check_length(found, "account", new)
            conn.execute(update(table).where(table.c.account == old).values(account=new))


def _check_length(found, column: str, value: str, param: str = "account") -> None:
    limit = found.lengths.get(column)
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"{param}: {value!r} is longer than the {limit} characters of "
                           f"iRedAPD's {found.name}.{column}", param=param)


class IredapdDB(ForeignDatabase):
    """Throttle and greylisting settings in iRedAPD's database."""

    # -- schema -------------------------------------------------------------

    def create_tables(self) -> list[str]:
        """Create the missing tables (SQLite: the embedded database).  A fresh
        ``greylisting`` table gets iRedMail's default: greylisting on for
        everyone.  Returns the names of the tables created."""
        with self.database.write() as conn:
            from sqlalchemy import inspect as sa_inspect
            existing = set(sa_inspect(conn).get_table_names())
            metadata.create_all(conn, checkfirst=True)
            created = [t for t in metadata.tables if t not in existing]
            if "greylisting" in created:
                conn.execute(insert(greylisting).values(account="@.", priority=0, sender=ANY_SENDER,
                                                        sender_priority=0, active=1))
        self.live.forget()
        return created

    # -- throttle -----------------------------------------------------------

    def has_max_rcpts(self) -> bool:
        found = self.live.table("throttle")
        return found is None or found.has("max_rcpts")

    def get_throttle(self, account: Account, kind: str) -> dict[str, Any] | None:
        """{account, kind, priority, period, msg_size, max_msgs, max_quota[,
        max_rcpts]} of the account's row, or None."""
        cols = self._throttle_columns()
        with self.database.read() as conn:
            row = conn.execute(select(*(throttle.c[c] for c in cols))
                               .where(throttle.c.account == account.key, throttle.c.kind == kind)
                               .order_by(throttle.c.id)).first()
        return {c: (int(v) if c not in ("account", "kind") else v) for c, v in row._mapping.items()} if row else None

    def _throttle_columns(self) -> list[str]:
        cols = ["account", "kind", "priority", "period", "msg_size", "max_msgs", "max_quota"]
        if self.has_max_rcpts():
            cols.append("max_rcpts")
        return cols

    def set_throttle(self, account: Account, kind: str, *, period: int, limits: dict[str, int]) -> None:
        """Write the account's row: `period` and the given limits (-1 inherit,
        0 unlimited, N); limits not given keep their value (-1 in a new row).
        Duplicate rows (possible on PostgreSQL) are merged into one."""
        if "max_rcpts" in limits and not self.has_max_rcpts():
            raise InvalidInput("max_rcpts: this iRedAPD database has no throttle.max_rcpts column "
                               "(iRedAPD older than 5.0)", param="max_rcpts")
        values = {"period": period, "priority": account.iredapd_priority, **limits}

        def work(conn: Connection) -> None:
            ids = conn.execute(select(throttle.c.id).where(throttle.c.account == account.key,
                                                           throttle.c.kind == kind)
                               .order_by(throttle.c.id)).scalars().all()
            if not ids:
                conn.execute(insert(throttle).values(account=account.key, kind=kind, **values))
                return
            conn.execute(update(throttle).where(throttle.c.id == ids[0]).values(**values))
            self._delete_throttle_ids(conn, ids[1:])

        self.database.write_retrying(work)

    def _delete_throttle_ids(self, conn: Connection, ids: Sequence[int]) -> None:
        for chunk in chunks(list(ids)):
            if self.live.table("throttle_tracking") is not None:
                conn.execute(delete(throttle_tracking).where(throttle_tracking.c.tid.in_(chunk)))
            conn.execute(delete(throttle).where(throttle.c.id.in_(chunk)))

    def delete_throttle(self, account: Account, kind: str) -> bool:
        with self.database.write() as conn:
            ids = conn.execute(select(throttle.c.id).where(throttle.c.account == account.key,
                                                           throttle.c.kind == kind)).scalars().all()
            self._delete_throttle_ids(conn, ids)
        return bool(ids)

    # -- greylisting --------------------------------------------------------

    def _check(self, table: str, column: str, value: str, param: str) -> None:
        found = self.live.table(table)
        if found is not None:
            _check_length(found, column, value, param)

    def get_greylisting(self, account: Account) -> bool | None:
        """True/False: the account's own setting (for any sender); None: none."""
        with self.database.read() as conn:
            active = conn.execute(select(greylisting.c.active).where(
                greylisting.c.account == account.key, greylisting.c.sender == ANY_SENDER)).first()
        return None if active is None else bool(active[0])

    def all_greylisting(self) -> list[dict[str, Any]]:
        """Every greylisting row, most specific first."""
        g = greylisting.c
        with self.database.read() as conn:
            rows = conn.execute(select(g.account, g.sender, g.active, g.priority, g.sender_priority, g.comment)
                                .order_by(g.priority.desc(), g.sender_priority.desc(), g.account, g.sender)).all()
        return [{"account": r.account, "sender": r.sender, "status": "enable" if r.active else "disable",
                 "priority": int(r.priority), "sender_priority": int(r.sender_priority),
                 "comment": r.comment or ""} for r in rows]

    def set_greylisting(self, account: Account, active: bool) -> None:
        self._check("greylisting", "account", account.key, "account")
        values = {"priority": account.iredapd_priority, "sender_priority": 0, "active": 1 if active else 0}

        def work(conn: Connection) -> None:
            where = (greylisting.c.account == account.key, greylisting.c.sender == ANY_SENDER)
            if conn.execute(update(greylisting).where(*where).values(**values)).rowcount == 0:
                conn.execute(insert(greylisting).values(account=account.key, sender=ANY_SENDER, comment="",
                                                        **values))

        self.database.write_retrying(work)

    def delete_greylisting(self, account: Account) -> bool:
        with self.database.write() as conn:
            return conn.execute(delete(greylisting).where(greylisting.c.account == account.key,
                                                          greylisting.c.sender == ANY_SENDER)).rowcount > 0

    # -- greylisting whitelists ---------------------------------------------

    def whitelisted_senders(self, account: Account) -> list[str]:
        w = greylisting_whitelists.c
        with self.database.read() as conn:
            return sorted(conn.execute(select(w.sender).where(w.account == account.key)).scalars().all())

    def change_whitelist(self, account: Account, *, reset: list[str] | None = None,
                         add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """`reset` replaces the account's whitelisted senders; `add` and
        `remove` change them (existing ones are not duplicated)."""
        add, remove = list(add), list(remove)
        self._check("greylisting_whitelists", "account", account.key, "account")
        for param, senders in (("whitelistSenders", reset or []), ("addWhitelistSenders", add)):
            for sender in senders:
                self._check("greylisting_whitelists", "sender", sender, param)
        w = greylisting_whitelists

        def work(conn: Connection) -> None:
            current = set(conn.execute(select(w.c.sender).where(w.c.account == account.key)).scalars().all())
            if reset is not None:
                wanted = set(reset)
            else:
                wanted = (current | set(add)) - set(remove)
            gone = sorted(current - wanted)
            for chunk in chunks(gone):
                conn.execute(delete(w).where(w.c.account == account.key, w.c.sender.in_(chunk)))
            new = sorted(wanted - current)
            if new:
                conn.execute(insert(w), [{"account": account.key, "sender": s, "comment": ""} for s in new])

        self.database.write_retrying(work)

    # -- SPF/MX whitelisted sender domains ----------------------------------

    def spf_domains(self) -> list[str]:
        d = greylisting_whitelist_domains.c
        with self.database.read() as conn:
            return sorted(conn.execute(select(d.domain)).scalars().all())

    def change_spf_domains(self, *, reset: list[str] | None = None, add: Iterable[str] = (),
                           remove: Iterable[str] = ()) -> None:
        """Change the sender domains whose SPF/MX hosts get whitelisted; for a
        domain taken off, the addresses the cron job whitelisted for it go too."""
        add, remove = list(add), list(remove)
        d = greylisting_whitelist_domains

        def work(conn: Connection) -> None:
            current = set(conn.execute(select(d.c.domain)).scalars().all())
            wanted = set(reset) if reset is not None else (current | set(add)) - set(remove)
            for chunk in chunks(sorted(current - wanted)):
                conn.execute(delete(d).where(d.c.domain.in_(chunk)))
            dropped = (current - wanted) | (set(remove) - wanted)
            comments = [AUTO_UPDATE_COMMENT.format(domain=x) for x in sorted(dropped)]
            for table in (greylisting_whitelists, greylisting_whitelist_domain_spf):
                if self.live.table(table.name) is None:
                    continue
                for chunk in chunks(comments):
                    conn.execute(delete(table).where(table.c.comment.in_(chunk)))
            new = sorted(wanted - current)
            if new:
                conn.execute(insert(d), [{"domain": x} for x in new])

        self.database.write_retrying(work)


__all__ = ["IredapdDB", "metadata", "throttle", "throttle_tracking", "greylisting", "greylisting_whitelists",
           "greylisting_whitelist_domains", "greylisting_whitelist_domain_spf", "LIMITS", "KINDS",
           "forget_rows", "rename_rows"]
