"""Tables of iRedAdmin's own database (``iredadmin``) that this service uses.

Names of tables, columns and types follow iRedAdmin's ``SQL/iredadmin.mysql``
and iRedMail's OpenLDAP-backend additions (``used_quota``, ``last_login``),
so the service can share a live ``iredadmin`` database with iRedAdmin and
Dovecot.  On MySQL/MariaDB the exact iRedMail types are used (BIGINT UNSIGNED
ids, TIMESTAMP columns); PostgreSQL and SQLite get close equivalents.

Index names follow iRedAdmin's PostgreSQL schema (``idx_<table>_<column>``):
they must be unique per schema on PostgreSQL.

There are no Python-side defaults: every default is a *server* default, so an
INSERT that leaves a column out never mentions it (which matters when a live
table lacks a column, see ``IredadminDB``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (CHAR, BigInteger, Column, Date, DateTime, Index, Integer, MetaData, String, Table,
                        Text, func, text)
from sqlalchemy.dialects import mysql

from iredldap.db.columns import MYSQL, id_type, number_column, text_column

metadata = MetaData()

_id_type, _str = id_type, text_column


def _timestamp_type():
    """TIMESTAMP on MySQL (stored as UTC, converted to the session time zone),
    TIMESTAMP WITHOUT TIME ZONE on PostgreSQL; values are naive UTC."""
    return DateTime().with_variant(mysql.TIMESTAMP(), *MYSQL)


def _now_default():
    return func.current_timestamp()


def _count(name: str) -> Column:
    return number_column(name, 0)


_table_kw: dict[str, Any] = {"mysql_engine": "InnoDB"}


def _indexes(table: str, *columns: str) -> list[Index]:
    """One index per column, named as iRedAdmin's PostgreSQL schema names them."""
    return [Index(f"idx_{table}_{column}", column) for column in columns]


# web.py-style session store (iRedAdmin keeps its own sessions here too).
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", CHAR(128), nullable=False, unique=True),
    Column("atime", _timestamp_type(), nullable=False, server_default=_now_default()),
    Column("data", Text()),
    **_table_kw,
)

# Admin activity log.
log = Table(
    "log",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("timestamp", _timestamp_type(), nullable=False, server_default=_now_default()),
    Column("admin", String(255), nullable=False),
    Column("ip", String(40), nullable=False),
    _str("domain"),
    _str("username"),
    _str("event", 20),
    _str("loglevel", 10, server_default="info"),
    Column("msg", Text()),
    *_indexes("log", "timestamp", "admin", "ip", "domain", "username", "event", "loglevel"),
    **_table_kw,
)

# Mailboxes of deleted users, waiting for a cron job to remove them from
# disk.  delete_date NULL = keep forever.  bytes/messages were added by
# iRedMail 1.7.3 and are missing from older installs.
deleted_mailboxes = Table(
    "deleted_mailboxes",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("timestamp", _timestamp_type(), nullable=False, server_default=_now_default()),
    _str("username"),
    _str("domain"),
    _str("maildir"),
    _str("admin"),
    Column("delete_date", Date(), nullable=True),
    _count("bytes"),
    _count("messages"),
    *_indexes("deleted_mailboxes", "timestamp", "username", "domain", "admin", "delete_date"),
    **_table_kw,
)

# Real-time mailbox usage written by Dovecot (quota dict / quota_clone).
used_quota = Table(
    "used_quota",
    metadata,
    Column("username", String(255), primary_key=True, autoincrement=False),
    _count("bytes"),
    _count("messages"),
    _str("domain"),
    Index("idx_used_quota_domain", "domain"),
    **_table_kw,
)

# Last login per service written by Dovecot's last_login plugin; values are
# seconds since the Unix epoch, NULL = never (iRedMail: INT DEFAULT NULL).
last_login = Table(
    "last_login",
    metadata,
    Column("username", String(255), primary_key=True, autoincrement=False, server_default=""),
    _str("domain"),
    Column("imap", Integer(), nullable=True),
    Column("pop3", Integer(), nullable=True),
    Column("lda", Integer(), nullable=True),
    *_indexes("last_login", "domain", "imap", "pop3", "lda"),
    **_table_kw,
)

# API tokens (ours, not iRedAdmin's): only a keyed hash of each token is
# kept.  domains NULL = every domain the admin manages; revoked/expires NULL
# = not revoked / never expires.  DATETIME (not TIMESTAMP) on MySQL: expiry
# dates past 2038 must fit.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("token_hash", CHAR(64), nullable=False, unique=True),
    Column("admin", String(255), nullable=False),
    _str("name"),
    Column("read_only", Integer(), nullable=False, server_default=text("0")),
    Column("domains", Text(), nullable=True),
    Column("created", DateTime(), nullable=False),
    Column("expires", DateTime(), nullable=True),
    Column("last_used", DateTime(), nullable=True),
    Column("revoked", DateTime(), nullable=True),
    Index("idx_api_tokens_admin", "admin"),
    **_table_kw,
)

# Journal of multi-entry directory writes (ours): one row per request that
# writes several entries, with its steps in `write_journal_steps` (deleted
# when the row is closed).  See iredldap/directory/journal.py.
#   resume: what finishing it means -- "forward" (redo the steps not yet
#           done: deletes, renames) or "back" (undo those done: creates).
#   state:  planned (written down, nothing sent yet), running (a live
#           request is at it), resuming, open (left by a request that lost
#           the directory), done, undone.
#   done:   how many steps landed, in order; step `done` may have landed.
#   sealed: 1 when every step of the request is written down (a create
#           whose steps all landed is complete).
# The states of a row some request has still to finish.
JOURNAL_UNFINISHED = ("planned", "running", "resuming", "open")

write_journal = Table(
    "write_journal",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("created", DateTime(), nullable=False),
    Column("updated", DateTime(), nullable=False),
    _str("kind", 20),
    Column("targets", Text(), nullable=True),
    _str("resume", 10),
    _str("state", 10),
    _str("owner"),
    Column("done", Integer(), nullable=False, server_default=text("0")),
    Column("steps", Integer(), nullable=False, server_default=text("0")),
    Column("sealed", Integer(), nullable=False, server_default=text("0")),
    Column("note", Text(), nullable=True),
    Index("idx_write_journal_state", "state"),
    **_table_kw,
)

write_journal_steps = Table(
    "write_journal_steps",
    metadata,
    Column("journal_id", BigInteger().with_variant(mysql.BIGINT(unsigned=True), *MYSQL), primary_key=True,
           autoincrement=False),
    Column("seq", Integer(), primary_key=True, autoincrement=False),
    Column("step", Text().with_variant(mysql.LONGTEXT(), *MYSQL), nullable=False),
    **_table_kw,
)

# The tables iRedMail's installer makes for iRedAdmin (and Dovecot) in the
# iredadmin database.  Every other table of `metadata` is the service's own:
# created at start when missing (`own_tables`), since on an existing server
# nobody ran `iredldap init-sql` to make them.
IREDADMIN_TABLES = frozenset({"sessions", "log", "deleted_mailboxes", "used_quota", "last_login"})


def own_tables() -> list[Table]:
    return [table for name, table in metadata.tables.items() if name not in IREDADMIN_TABLES]


__all__ = [
    "IREDADMIN_TABLES",
    "own_tables",
    "metadata",
    "write_journal",
    "write_journal_steps",
    "api_tokens",
    "sessions",
    "log",
    "deleted_mailboxes",
    "used_quota",
    "last_login",
]
