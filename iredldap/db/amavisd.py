"""Amavisd's policy lookup tables: spam policies and white/blacklists.

Tables (names, columns and meanings as iRedMail ships them)::

    users            local accounts: email (@., @domain, user@domain), priority,
                     policy_id -> policy.id (0 = no policy, only white/blacklists)
    policy           one row per account that has its own spam policy;
                     iRedMail names it after the account (policy_name)
    mailaddr         remote addresses used in white/blacklists, with priority
    wblist           inbound lists:  rid = users.id (recipient), sid = mailaddr.id
    outbound_wblist  outbound lists: sid = users.id (sender),    rid = mailaddr.id

How the consumers read them:

* Amavisd: ``SELECT *, users.id FROM users LEFT JOIN policy ON
  users.policy_id = policy.id WHERE users.email IN (<keys of the recipient>)
  ORDER BY users.priority DESC``; for each policy field the first non-NULL
  value wins, NULL falls through to the next row and finally to amavisd.conf.
  So a field we leave NULL means "inherit".
* iRedAPD (plugin ``amavisd_wblist``): the recipient's (or, outbound, the
  sender's) ``users`` rows by priority, then the other party's ``mailaddr``
  rows by priority; the first W (accept) or B (reject) found decides.

``users.email`` and ``mailaddr.email`` are binary columns (VARBINARY on
MySQL, BYTEA on PostgreSQL): values go in and come out as UTF-8 bytes, which
the `Address` column type does for us.  Priorities come from
`iredldap.model.policy_addresses.AMAVISD_PRIORITY` (user 10, domain 5, global 0).

Spam policy API parameters -> policy columns (`policy_columns`); iRedAdmin-Pro
does not publish its mapping, these are our decisions:

    bypass_{spam,virus,banned,header}_checks  yes/no -> the same column, 'Y'/'N'
    quarantine_spam        yes -> spam_lover 'N', spam_quarantine_to 'spam-quarantine'
                           no  -> spam_lover 'Y', spam_quarantine_to ''   (delivered, tagged)
    quarantine_virus       yes -> virus_lover 'N', virus_quarantine_to 'virus-quarantine'
                           no  -> virus_lover 'N', virus_quarantine_to '' (never delivered)
    quarantine_banned      yes -> banned_files_lover 'N', banned_quarantine_to 'banned-quarantine'
                           no  -> banned_files_lover 'N', banned_quarantine_to ''
    quarantine_bad_header  yes -> bad_header_lover 'N', bad_header_quarantine_to 'bad-header-quarantine'
                           no  -> bad_header_lover 'Y', bad_header_quarantine_to '' (delivered)
    prefix_spam_in_subject yes -> spam_subject_tag2 '[SPAM] ', no -> ''
    always_insert_x_spam_headers  yes -> spam_tag_level -999, no -> NULL (amavisd.conf)
    spam_score             N -> spam_tag2_level = spam_kill_level = N
    banned_rulenames       A,B -> banned_rulenames 'A,B'

(The 'no' values of spam and bad-header mirror iRedMail's default policy;
viruses and banned files are never delivered by turning quarantine off.)
A parameter given with an empty value sets its columns back to NULL.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import (CHAR, Column, Float, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String,
                        Table, Text, cast, delete, insert, or_, select, text, update)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from iredldap.db.engine import inserted_id
from iredldap.db.columns import MYSQL, chunks
from iredldap.db.live import ForeignDatabase, LiveSchema
from iredldap.errors import InvalidInput
from iredldap.model.policy_addresses import AMAVISD_PRIORITY, Account, form_of

metadata = MetaData()


class Address(TypeDecorator):
    """An address in a binary column: str in Python, UTF-8 bytes in the database."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(255))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.BYTEA())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value, dialect):
        if isinstance(value, str):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value, dialect):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "replace")
        return value


def _uint():
    return Integer().with_variant(mysql.INTEGER(unsigned=True), *MYSQL)


_FLAGS = ("virus_lover", "spam_lover", "unchecked_lover", "banned_files_lover", "bad_header_lover",
          "bypass_virus_checks", "bypass_spam_checks", "bypass_banned_checks", "bypass_header_checks",
          "warnvirusrecip", "warnbannedrecip", "warnbadhrecip")
_TEXTS = ("virus_quarantine_to", "spam_quarantine_to", "banned_quarantine_to", "unchecked_quarantine_to",
          "bad_header_quarantine_to", "clean_quarantine_to", "archive_quarantine_to",
          "addr_extension_virus", "addr_extension_spam", "addr_extension_banned", "addr_extension_bad_header",
          "newvirus_admin", "virus_admin", "banned_admin", "bad_header_admin", "spam_admin",
          "spam_subject_tag", "spam_subject_tag2", "spam_subject_tag3",
          "banned_rulenames", "disclaimer_options", "forward_method", "sa_userconf", "sa_username")
_LEVELS = ("spam_tag_level", "spam_tag2_level", "spam_tag3_level", "spam_kill_level",
           "spam_dsn_cutoff_level", "spam_quarantine_cutoff_level")

users = Table(
    "users", metadata,
    Column("id", _uint(), primary_key=True, autoincrement=True),
    Column("priority", Integer(), nullable=False, server_default=text("7")),
    Column("policy_id", _uint(), nullable=False, server_default=text("1")),
    Column("email", Address(), nullable=False, unique=True),
    Column("fullname", String(255), nullable=True),
    mysql_engine="InnoDB",
)

policy = Table(
    "policy", metadata,
    Column("id", _uint(), primary_key=True, autoincrement=True),
    Column("policy_name", String(255), nullable=False, server_default="", unique=True),
    *(Column(name, CHAR(1), nullable=True) for name in _FLAGS),
    *(Column(name, String(64), nullable=True) for name in _TEXTS),
    *(Column(name, Float(), nullable=True) for name in _LEVELS),
    Column("message_size_limit", Integer(), nullable=True),
    mysql_engine="InnoDB",
)

mailaddr = Table(
    "mailaddr", metadata,
    Column("id", _uint(), primary_key=True, autoincrement=True),
    Column("priority", Integer(), nullable=False, server_default=text("7")),
    Column("email", Address(), nullable=False, unique=True),
    mysql_engine="InnoDB",
)

def _wblist_table(name: str) -> Table:
    """wblist (inbound) and outbound_wblist: recipient id, sender id, W or B."""
    return Table(name, metadata,
                 Column("rid", _uint(), nullable=False),
                 Column("sid", _uint(), nullable=False),
                 Column("wb", String(10), nullable=False),
                 PrimaryKeyConstraint("rid", "sid"),
                 mysql_engine="InnoDB")


wblist = _wblist_table("wblist")
outbound_wblist = _wblist_table("outbound_wblist")

# direction -> (table, column holding users.id, column holding mailaddr.id)
_LISTS = {
    "inbound": (wblist, "rid", "sid"),
    "outbound": (outbound_wblist, "sid", "rid"),
}
WB = {"whitelist": "W", "blacklist": "B"}

# -- spam policy vocabulary ----------------------------------------------------

SPAM_SUBJECT_PREFIX = "[SPAM] "
ALWAYS_TAG_LEVEL = -999.0

_BYPASS = ("bypass_spam_checks", "bypass_virus_checks", "bypass_banned_checks", "bypass_header_checks")
# parameter -> (lover column, lover when not quarantined, quarantine column, quarantine name)
_QUARANTINE = {
    "quarantine_spam": ("spam_lover", "Y", "spam_quarantine_to", "spam-quarantine"),
    "quarantine_virus": ("virus_lover", "N", "virus_quarantine_to", "virus-quarantine"),
    "quarantine_banned": ("banned_files_lover", "N", "banned_quarantine_to", "banned-quarantine"),
    "quarantine_bad_header": ("bad_header_lover", "Y", "bad_header_quarantine_to", "bad-header-quarantine"),
}
POLICY_PARAMS = (*_BYPASS, *_QUARANTINE, "prefix_spam_in_subject", "always_insert_x_spam_headers",
                 "spam_score", "banned_rulenames")


def _yn(value: bool | None) -> str | None:
    return None if value is None else ("Y" if value else "N")


def policy_columns(values: dict[str, Any]) -> dict[str, Any]:
    """API parameters (None = given empty: back to NULL) -> policy columns."""
    cols: dict[str, Any] = {}
    for name, value in values.items():
        if name in _BYPASS:
            cols[name] = _yn(value)
        elif name in _QUARANTINE:
            lover, lover_if_not, where, place = _QUARANTINE[name]
            if value is None:
                cols[lover] = cols[where] = None
            else:
                cols[lover] = "N" if value else lover_if_not
                cols[where] = place if value else ""
        elif name == "prefix_spam_in_subject":
            cols["spam_subject_tag2"] = None if value is None else (SPAM_SUBJECT_PREFIX if value else "")
        elif name == "always_insert_x_spam_headers":
            cols["spam_tag_level"] = ALWAYS_TAG_LEVEL if value else None
        elif name == "spam_score":
            cols["spam_tag2_level"] = cols["spam_kill_level"] = value
        elif name == "banned_rulenames":
            cols["banned_rulenames"] = ",".join(value) if value else None
        else:
            raise KeyError(name)
    return cols


def _flag(value: str | None) -> bool | None:
    if value is None or not str(value).strip():
        return None
    return str(value).strip().upper() in ("Y", "1")


def _level(value) -> float | None:
    # MySQL FLOAT is single precision: 6.2 comes back as 6.199999809...
    return None if value is None else round(float(value), 3)


def policy_view(row: dict[str, Any] | None, account: Account) -> dict[str, Any]:
    """The GET shape of a policy row ({} when the account has none).

    Every parameter of PUT appears: true/false when this policy sets it,
    null when it is left to the next level (domain, global, amavisd.conf).
    """
    if row is None:
        return {}
    view: dict[str, Any] = {"account": account.key}
    for name in _BYPASS:
        view[name] = _flag(row.get(name))
    for name, (_lover, _if_not, where, _place) in _QUARANTINE.items():
        place = row.get(where)
        view[name] = None if place is None else bool(place.strip())
    tag2 = row.get("spam_subject_tag2")
    view["prefix_spam_in_subject"] = None if tag2 is None else bool(tag2.strip())
    tag_level = _level(row.get("spam_tag_level"))
    view["always_insert_x_spam_headers"] = None if tag_level is None else tag_level <= -100
    score = row.get("spam_tag2_level")
    view["spam_score"] = _level(score if score is not None else row.get("spam_kill_level"))
    rules = row.get("banned_rulenames")
    view["banned_rulenames"] = None if rules is None else [r.strip() for r in rules.split(",") if r.strip()]
    return view


# -- helpers on a connection (shared with PolicyAccounts) -----------------------

def _user_row(conn: Connection, key: str):
    return conn.execute(select(users.c.id, users.c.policy_id).where(users.c.email == key)).first()


def _own_policy_id(conn: Connection, key: str) -> int | None:
    return conn.execute(select(policy.c.id).where(policy.c.policy_name == key)).scalar()


def _ensure_user(conn: Connection, key: str, priority: int, policy_id: int = 0) -> int:
    row = _user_row(conn, key)
    if row is not None:
        return row.id
    return inserted_id(conn.execute(insert(users).values(email=key, priority=priority, policy_id=policy_id)))


def _is_listed(conn: Connection, user_id: int) -> bool:
    for table, local, _remote in _LISTS.values():
        if conn.execute(select(table.c[local]).where(table.c[local] == user_id).limit(1)).first():
            return True
    return False


def _matching(conn: Connection, column, emails: Iterable[str], domains: Iterable[str]) -> list[tuple]:
    """(id, value) of rows whose `column` is one of `emails` or ends with
    ``@<domain>`` (``@domain`` itself included) for one of `domains`."""
    emails, domains = sorted(set(emails)), sorted(set(domains))
    conds = [column.in_(chunk) for chunk in chunks(emails)]
    if conn.dialect.name == "sqlite":
        # SQLite's LIKE never matches a BLOB: compare its text.
        conds += [cast(column, Text).like("%@" + d) for d in domains]
    else:
        # VARBINARY / BYTEA LIKE a byte pattern (custom op: Address is binary).
        conds += [column.op("LIKE")("%@" + d) for d in domains]
    if not conds:
        return []
    id_col = column.table.c.id
    found = []
    for id_, value in conn.execute(select(id_col, column).where(or_(*conds))):
        if value in emails or any(value.endswith("@" + d) for d in domains):
            found.append((id_, value))
    return found


def forget_rows(conn: Connection, live: LiveSchema, *, emails: Iterable[str], domains: Iterable[str]) -> None:
    """Delete the rows of these accounts (and of every account of these
    domains): their users rows, own policies and white/blacklist entries.
    Tables the database lacks are skipped."""
    emails, domains = list(emails), list(domains)
    if live.table("users") is not None:
        found = _matching(conn, users.c.email, emails, domains)
        ids = [i for i, _ in found]
        for table, local, _remote in _LISTS.values():
            if live.table(table.name) is not None:
                for chunk in chunks(ids):
                    conn.execute(delete(table).where(table.c[local].in_(chunk)))
        for chunk in chunks(ids):
            conn.execute(delete(users).where(users.c.id.in_(chunk)))
    if live.table("policy") is not None:
        policies = [i for i, _ in _matching(conn, policy.c.policy_name, emails, domains)]
        for chunk in chunks(policies):
            conn.execute(delete(policy).where(policy.c.id.in_(chunk)))
            if live.table("users") is not None:
                conn.execute(update(users).where(users.c.policy_id.in_(chunk)).values(policy_id=0))


def rename_rows(conn: Connection, live: LiveSchema, pairs: list[tuple[str, str]]) -> None:
    """Give the rows of account `old` to account `new`, for each pair (rows
    left behind by an earlier account named `new` are dropped first)."""
    forget_rows(conn, live, emails=[new for _, new in pairs], domains=[])
    for old, new in pairs:
        if live.table("users") is not None:
            conn.execute(update(users).where(users.c.email == old).values(email=new))
        if live.table("policy") is not None:
            conn.execute(update(policy).where(policy.c.policy_name == old).values(policy_name=new))


class AmavisdDB(ForeignDatabase):
    """Spam policies and white/blacklists in Amavisd's database."""

    # -- schema -------------------------------------------------------------

    def create_tables(self) -> list[str]:
        """Create the missing tables (SQLite: the embedded database).  A fresh
        ``policy`` table gets iRedMail's default global policy.  Returns the
        names of the tables created."""
        with self.database.write() as conn:
            from sqlalchemy import inspect as sa_inspect
            existing = set(sa_inspect(conn).get_table_names())
            metadata.create_all(conn, checkfirst=True)
            created = [t for t in metadata.tables if t not in existing]
            if "policy" in created and "users" in created:
                pid = inserted_id(conn.execute(insert(policy).values(
                    policy_name="@.", spam_lover="Y", virus_lover="N", banned_files_lover="N",
                    bad_header_lover="Y", bypass_spam_checks="N", bypass_virus_checks="N",
                    bypass_banned_checks="N", bypass_header_checks="N", spam_quarantine_to="",
                    virus_quarantine_to="virus-quarantine", banned_quarantine_to="banned-quarantine",
                    bad_header_quarantine_to="")))
                conn.execute(insert(users).values(email="@.", priority=0, policy_id=pid))
        self.live.forget()
        return created

    # -- spam policy --------------------------------------------------------

    def get_policy(self, account: Account) -> dict[str, Any] | None:
        """The policy row Amavisd uses for this account's own `users` row
        (columns -> values), or None when it has none."""
        with self.database.read() as conn:
            user = _user_row(conn, account.key)
            if user is None or not user.policy_id:
                return None
            row = conn.execute(select(policy).where(policy.c.id == user.policy_id)).first()
        return dict(row._mapping) if row is not None else None

    def set_policy(self, account: Account, columns: dict[str, Any]) -> None:
        """Set these policy columns (None = NULL) of the account's own policy,
        creating it (named after the account) and linking its `users` row.
        Columns not given keep their value (NULL in a new policy)."""
        unknown = set(columns) - set(policy.c.keys())
        if unknown:
            raise ValueError(f"not policy columns: {sorted(unknown)}")
        live = self.live.table("policy")
        limit = live.lengths.get("policy_name") if live is not None else None
        if limit is not None and len(account.key) > limit:
            # Old Amavisd schemas have policy_name VARCHAR(32).
            raise InvalidInput(f"{account.key!r} is longer than the {limit} characters of Amavisd's "
                               f"policy.policy_name", param="mail" if account.kind == "user" else "domain")

        def work(conn: Connection) -> None:
            pid = _own_policy_id(conn, account.key)
            if pid is None:
                pid = inserted_id(conn.execute(insert(policy).values(policy_name=account.key, **columns)))
            elif columns:
                conn.execute(update(policy).where(policy.c.id == pid).values(**columns))
            user = _user_row(conn, account.key)
            if user is None:
                conn.execute(insert(users).values(email=account.key, priority=account.amavisd_priority,
                                                  policy_id=pid))
            else:
                conn.execute(update(users).where(users.c.id == user.id)
                             .values(policy_id=pid, priority=account.amavisd_priority))

        self.database.write_retrying(work)

    def delete_policy(self, account: Account) -> bool:
        """Remove the account's own policy and unlink its `users` row (the
        row itself goes too unless white/blacklists still use it).  True if
        there was something to remove."""
        with self.database.write() as conn:
            changed = False
            pid = _own_policy_id(conn, account.key)
            if pid is not None:
                conn.execute(delete(policy).where(policy.c.id == pid))
                conn.execute(update(users).where(users.c.policy_id == pid).values(policy_id=0))
                changed = True
            user = _user_row(conn, account.key)
            if user is not None:
                if _is_listed(conn, user.id):
                    if user.policy_id:
                        conn.execute(update(users).where(users.c.id == user.id).values(policy_id=0))
                        changed = True
                else:
                    conn.execute(delete(users).where(users.c.id == user.id))
                    changed = True
            return changed

    # -- white/blacklists ---------------------------------------------------

    def list_addresses(self, account: Account, direction: str, listname: str) -> list[str]:
        """Addresses on the account's inbound/outbound white- or blacklist, sorted."""
        table, local, remote = _LISTS[direction]
        with self.database.read() as conn:
            user = _user_row(conn, account.key)
            if user is None:
                return []
            found = conn.execute(
                select(mailaddr.c.email)
                .join(table, table.c[remote] == mailaddr.c.id)
                .where(table.c[local] == user.id, table.c.wb == WB[listname])
            ).scalars().all()
        return sorted(found)

    def add_addresses(self, account: Account, direction: str, listname: str, addresses: list[str]) -> None:
        """Put `addresses` on the list; an address on the other list of the
        same direction moves here (a pair has one entry, as iRedAPD keeps it)."""
        if not addresses:
            return
        table, local, remote = _LISTS[direction]

        def work(conn: Connection) -> None:
            uid = _ensure_user(conn, account.key, account.amavisd_priority)
            ids = self._address_ids(conn, addresses, create=True)
            id_list = list(ids.values())
            for chunk in chunks(id_list):
                conn.execute(delete(table).where(table.c[local] == uid, table.c[remote].in_(chunk)))
            conn.execute(insert(table), [{local: uid, remote: i, "wb": WB[listname]} for i in id_list])

        self.database.write_retrying(work)

    def remove_addresses(self, account: Account, direction: str, listname: str,
                         addresses: list[str] | None) -> None:
        """Take `addresses` (None: all) off the list.  Rows in ``mailaddr``
        stay, as iRedAPD leaves them (iRedAdmin's cleanup job removes unused
        ones)."""
        table, local, remote = _LISTS[direction]
        with self.database.write() as conn:
            user = _user_row(conn, account.key)
            if user is None:
                return
            base = delete(table).where(table.c[local] == user.id, table.c.wb == WB[listname])
            if addresses is None:
                conn.execute(base)
                return
            ids = list(self._address_ids(conn, addresses, create=False).values())
            for chunk in chunks(ids):
                conn.execute(base.where(table.c[remote].in_(chunk)))

    @staticmethod
    def _address_ids(conn: Connection, addresses: list[str], *, create: bool) -> dict[str, int]:
        ids: dict[str, int] = {}
        for chunk in chunks(sorted(set(addresses))):
            for id_, email in conn.execute(select(mailaddr.c.id, mailaddr.c.email)
                                           .where(mailaddr.c.email.in_(chunk))):
                ids[email] = id_
        if create:
            for address in addresses:
                if address not in ids:
                    ids[address] = inserted_id(conn.execute(insert(mailaddr).values(
                        email=address, priority=AMAVISD_PRIORITY.get(form_of(address), 7))))
        return ids


__all__ = ["AmavisdDB", "metadata", "users", "policy", "mailaddr", "wblist", "outbound_wblist",
           "policy_columns", "policy_view", "POLICY_PARAMS", "WB", "forget_rows", "rename_rows"]
