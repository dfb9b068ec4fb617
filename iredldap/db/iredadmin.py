"""Store for iRedAdmin's own database (``iredadmin``).

`IredadminDB` reads and writes the tables of `iredldap.db.tables` and is meant
to work on a live iRedMail database shared with iRedAdmin and Dovecot:

* it inspects each table once (cached) and writes only the columns the live
  table has (``deleted_mailboxes`` lacks ``bytes``/``messages`` before
  iRedMail 1.7.3; old ``log`` tables have ``event VARCHAR(10)``);
* values for the activity log are cut to the live column sizes (and, on MySQL
  ``utf8``/``utf8mb3`` columns, characters outside the BMP are replaced) so a
  long or exotic value never makes the insert fail;
* all timestamps are naive UTC datetimes taken from the (injectable) clock,
  never from the database server, truncated to whole seconds;
* it reaches the database only through its `Database` (see
  `iredldap.db.engine`), so every SQLAlchemy error leaves as
  `DatabaseUnavailable` / `DatabaseError`.

Session rows hold JSON (``data`` starts with ``{``); iRedAdmin's own rows in the
same table hold base64 pickles, which are never loaded and never purged here.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from sqlalchemy import (
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    inspect as sa_inspect,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.sql import sqltypes

from iredldap.db import tables as t
from iredldap.db.engine import Database, SqlStore, inserted_id
from iredldap.errors import DatabaseError, InvalidInput
from iredldap.model import json_text


@dataclass(frozen=True)
class LoadedSession:
    data: dict
    writes_open: bool       # some journaled multi-entry write is unfinished


# Rows per multi-row INSERT / values per IN (...): keeps every statement far
# below PostgreSQL's 65535 bind parameters.
_CHUNK = 500

_NON_BMP = re.compile("[\U00010000-\U0010FFFF]")

# The reads of every request, built once: making a statement anew costs
# SQLAlchemy more than running it.
# Whether any multi-entry write is unfinished (an indexed lookup): read in
# the same statement as the caller's session or token, so a request learns
# both in one round; only when some row is open does the journal read them.
# (Equalities, not IN: SQLAlchemy renders an IN of a list anew at each run.)
_WRITES_OPEN = exists().where(or_(*(t.write_journal.c.state == state for state in t.JOURNAL_UNFINISHED))
                              ).label("writes_open")
_SESSION_ROW = select(t.sessions.c.atime, t.sessions.c.data, _WRITES_OPEN).where(
    t.sessions.c.session_id == bindparam("session_id"))
_TOKEN_BY_HASH = select(t.api_tokens, _WRITES_OPEN).where(t.api_tokens.c.token_hash == bindparam("token_hash"))
# The writes of every write request (its audit row; a login's attempt row
# and its outcome): statements made once, their values bound when they run,
# so SQLAlchemy neither builds nor keys a new statement for each request.
_INSERT_LOG = insert(t.log)
_UPDATE_LOG = update(t.log).where(t.log.c.id == bindparam("row_id")).values(
    admin=bindparam("new_admin"), loglevel=bindparam("new_loglevel"), msg=bindparam("new_msg"))
_DELETE_LOG = delete(t.log).where(t.log.c.id == bindparam("row_id"))


@functools.lru_cache(maxsize=16)
def _mailbox_facts_of(usage: bool, login_columns: tuple[str, ...] | None):
    """One row: a user's used_quota values (`usage`: the table exists) and
    its last_login values, those of `login_columns` the table has (None: it
    has no such table), with `has_login` NULL when it has no row.  Each is a
    subquery of one row at most (LIMIT 1: a table of a real server may lack
    the primary key ours has), so the row is there whether or not they are."""
    def of_user(table, value, label: str):
        return select(value).where(table.c.username == bindparam("username")).limit(1).scalar_subquery().label(label)

    uq, ll = t.used_quota, t.last_login
    columns = [of_user(uq, uq.c[name], name) for name in ("bytes", "messages")] if usage else []
    if login_columns is not None:
        columns.append(of_user(ll, literal(1), "has_login"))
        columns += [of_user(ll, ll.c[name], f"login_{name}") for name in login_columns]
    return select(*columns)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True)
class _Limit:
    max_chars: int | None = None
    max_bytes: int | None = None     # UTF-8 bytes (MySQL TEXT columns)
    bmp_only: bool = False           # MySQL utf8/utf8mb3 column

    def fit(self, value: str) -> str:
        if self.bmp_only:
            value = _NON_BMP.sub("\ufffd", value)
        if self.max_chars is not None and len(value) > self.max_chars:
            value = value[: self.max_chars]
        if self.max_bytes is not None:
            raw = value.encode("utf-8")
            if len(raw) > self.max_bytes:
                value = raw[: self.max_bytes].decode("utf-8", "ignore")
        return value


@dataclass(frozen=True)
class _LiveTable:
    """What the table in the database really looks like."""

    columns: frozenset[str]
    limits: dict[str, _Limit]

    def fit(self, column: str, value: str | None) -> str:
        value = "" if value is None else str(value)
        limit = self.limits.get(column)
        return limit.fit(value) if limit else value

    def only_live(self, row: dict) -> dict:
        return {k: v for k, v in row.items() if k in self.columns}


def _inspect_table(conn: Connection, name: str) -> _LiveTable | None:
    insp = sa_inspect(conn)
    if not insp.has_table(name):
        return None
    limits: dict[str, _Limit] = {}
    names = []
    for col in insp.get_columns(name):
        names.append(col["name"])
        length = getattr(col["type"], "length", None)
        if isinstance(col["type"], sqltypes.String) and length:
            limits[col["name"]] = _Limit(max_chars=int(length))

    if conn.dialect.name in ("mysql", "mariadb"):
        rows = conn.execute(
            text(
                "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH,"
                " CHARACTER_OCTET_LENGTH, CHARACTER_SET_NAME"
                " FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
            ),
            {"name": name},
        )
        for col, data_type, max_chars, max_octets, charset in rows:
            if not charset:
                continue
            charset = str(charset).lower()
            is_text = str(data_type).lower().endswith("text")
            limits[col] = _Limit(
                max_chars=int(max_chars) if max_chars else None,
                max_bytes=int(max_octets)
                if (is_text and max_octets and charset.startswith("utf8"))
                else None,
                bmp_only=charset in ("utf8", "utf8mb3"),
            )
    return _LiveTable(columns=frozenset(names), limits=limits)


class IredadminDB(SqlStore):
    """iRedAdmin's database: sessions, activity log, deleted mailboxes,
    Dovecot's used_quota and last_login; and our API tokens."""

    #: A fresh session's atime is rewritten at most this often (seconds).
    SESSION_TOUCH_INTERVAL = 30

    def __init__(self, source: Database | Engine | URL | str, *, clock: Callable[[], datetime] | None = None):
        super().__init__(source)
        self._clock = clock or _utcnow
        self._live_cache: dict[str, _LiveTable | None] = {}
        self._lock = threading.Lock()
        self._own_tables_ready = False

    # -- helpers ------------------------------------------------------------

    def now(self) -> datetime:
        """Current time as a naive UTC datetime, whole seconds."""
        return _naive_utc(self._clock()).replace(microsecond=0)

    def _live(self, name: str) -> _LiveTable | None:
        """The live shape of table `name` (None if missing), inspected once."""
        try:
            return self._live_cache[name]
        except KeyError:
            pass
        with self._lock:
            if name not in self._live_cache:
                with self.database.read() as conn:
                    self._live_cache[name] = _inspect_table(conn, name)
            return self._live_cache[name]

    def reflect(self) -> dict[str, frozenset[str] | None]:
        """Inspect all tables now (drops the cache); returns their columns."""
        with self._lock:
            self._live_cache.clear()
        return {
            name: (info.columns if (info := self._live(name)) else None)
            for name in t.metadata.tables
        }

    # -- schema -------------------------------------------------------------

    def create_tables(self) -> None:
        """Create the tables that are missing; existing ones are left alone."""
        try:
            self._create(list(t.metadata.sorted_tables))
        finally:
            with self._lock:
                self._live_cache.clear()

    def ensure_own_tables(self) -> list[str]:
        """Create the service's own tables (`tables.own_tables`; on SQLite
        all tables) where missing; returns the names created.  Done once per process: at start
        (`create_app`), and again before the first use of a table if the
        database could not be reached then.  A database user that may not
        create them gets a DatabaseError that says to run `iredldap init-sql`."""
        if self._own_tables_ready:
            return []
        # An SQLite file is the service's own (no iRedAdmin shares it): all
        # its tables are made, so a fresh install needs no init-sql either.
        own = list(t.metadata.sorted_tables) if self.engine.dialect.name == "sqlite" else t.own_tables()
        with self.database.read() as conn:
            existing = set(sa_inspect(conn).get_table_names())
        missing = [table for table in own if table.name not in existing]
        if missing:
            try:
                self._create(missing)
            except DatabaseError as exc:
                raise DatabaseError(
                    f"table(s) {', '.join(tb.name for tb in missing)} missing in SQL_IREDADMIN_URL and cannot be "
                    f"created ({exc.reason}); run `iredldap init-sql` as a database user allowed to create "
                    "tables") from exc
            finally:
                with self._lock:
                    self._live_cache.clear()
        self._own_tables_ready = True
        return [table.name for table in missing]

    def _create(self, tables: list) -> None:
        # Once more when another worker created a table between our check
        # and CREATE (the second round finds it).
        self.database.write_retrying(lambda conn: t.metadata.create_all(conn, tables=tables, checkfirst=True),
                                     retry_if=_lost_create_race)

    # -- sessions -----------------------------------------------------------

    def create_session(self, session_key: str, data: dict) -> None:
        """Store a new session (replacing one with the same key)."""
        payload = json.dumps(data, separators=(",", ":"))
        s = t.sessions

        # Logins arriving together deadlock on MariaDB (the delete of a
        # missing key takes a gap lock): retried as a whole.
        def replace(conn: Connection) -> None:
            conn.execute(delete(s).where(s.c.session_id == session_key))
            conn.execute(insert(s).values(session_id=session_key, atime=self.now(), data=payload))
        self.database.write_retrying(replace, retry_if=lambda e: False)

    def load_session(self, session_key: str, idle_timeout: int) -> LoadedSession | None:
        """The session's data, or None if missing, idle for longer than
        `idle_timeout` seconds or not ours, with whether some journaled write
        is unfinished (in the same statement).  Refreshes atime at most every
        SESSION_TOUCH_INTERVAL seconds."""
        row = self.database.first_row(_SESSION_ROW, {"session_id": session_key})
        if row is None or row["atime"] is None:
            return None
        now = self.now()
        age = now - _naive_utc(row["atime"])
        if age > timedelta(seconds=idle_timeout):
            return None
        try:
            data = json_text.loads(row["data"] or "")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if age >= timedelta(seconds=self.SESSION_TOUCH_INTERVAL):
            with self.database.write() as conn:
                result = conn.execute(
                    update(t.sessions).where(t.sessions.c.session_id == session_key).values(atime=now)
                )
            if result.rowcount == 0:      # deleted meanwhile (logout)
                return None
        return LoadedSession(data, writes_open=bool(row["writes_open"]))

    def delete_session(self, session_key: str) -> None:
        s = t.sessions
        with self.database.write() as conn:
            conn.execute(delete(s).where(s.c.session_id == session_key))

    def delete_sessions_where(self, match: Callable[[dict], bool], *, containing: str,
                              keep: str | None = None) -> int:
        """Delete our sessions whose data holds the text `containing` (a
        cheap pre-filter) and satisfies `match`, except session `keep`;
        returns how many."""
        s = t.sessions
        pattern = "{%" + _like_escape(containing) + "%"
        with self.database.write() as conn:
            rows = conn.execute(select(s.c.session_id, s.c.data)
                                .where(s.c.data.like(pattern, escape="\\"))).all()
            doomed = []
            for row in rows:
                try:
                    data = json_text.loads(row.data or "")
                except ValueError:
                    continue
                if isinstance(data, dict) and (row.session_id or "").rstrip() != keep and match(data):
                    doomed.append(row.session_id)
            for chunk in _chunks(doomed):
                conn.execute(delete(s).where(s.c.session_id.in_(chunk)))
        return len(doomed)

    def purge_sessions(self, idle_timeout: int) -> int:
        """Delete our sessions idle for longer than `idle_timeout` seconds;
        returns how many.  iRedAdmin's own (non-JSON) rows are not touched."""
        s = t.sessions
        cutoff = self.now() - timedelta(seconds=idle_timeout)
        # A range delete: deadlocks with logins arriving together (retried).
        return self.database.write_retrying(
            lambda conn: conn.execute(delete(s).where(s.c.atime < cutoff, s.c.data.like("{%"))).rowcount,
            retry_if=lambda e: False)

    # -- activity log -------------------------------------------------------

    def add_log(
        self,
        *,
        admin: str,
        ip: str,
        event: str,
        msg: str = "",
        domain: str = "",
        username: str = "",
        loglevel: str = "info",
    ) -> int:
        """Append one row to the activity log (values cut to column sizes);
        returns its id."""
        live = self._live("log")
        values: dict[str, Any] = {
            "timestamp": self.now(),
            "admin": admin,
            "ip": ip,
            "domain": domain,
            "username": username,
            "event": event,
            "loglevel": loglevel,
            "msg": msg,
        }
        if live is not None:
            values = live.only_live(
                {k: (v if k == "timestamp" else live.fit(k, v)) for k, v in values.items()}
            )
        with self.database.write() as conn:
            # (the parameters name the columns the INSERT writes)
            result = conn.execute(_INSERT_LOG, values)
            return inserted_id(result)

    def count_log(
        self,
        *,
        ip: str | None = None,
        admin: str | None = None,
        event: str,
        loglevel: str | None = None,
        since: datetime,
    ) -> int:
        """Number of log rows with this event (and ip/admin/loglevel when
        given) written at or after `since` (naive = UTC)."""
        live = self._live("log")

        def fit(col: str, value: str) -> str:
            return live.fit(col, value) if live is not None else value

        c = t.log.c
        conds = [c.event == fit("event", event), c.timestamp >= _naive_utc(since)]
        if ip is not None:
            conds.append(c.ip == fit("ip", ip))
        if admin is not None:
            conds.append(c.admin == fit("admin", admin))
        if loglevel is not None:
            conds.append(c.loglevel == fit("loglevel", loglevel))
        with self.database.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t.log).where(*conds)).scalar_one()
            )

    # -- login attempts (rows of the log table, event "login") --------------

    def _fit_log(self, column: str, value: str) -> str:
        live = self._live("log")
        return live.fit(column, value) if live is not None else value

    def update_log(self, row_id: int, *, admin: str, loglevel: str, msg: str) -> None:
        """Rewrite one row (a login attempt once its outcome is known)."""
        with self.database.write() as conn:
            conn.execute(_UPDATE_LOG, {"row_id": row_id, "new_admin": self._fit_log("admin", admin),
                                       "new_loglevel": self._fit_log("loglevel", loglevel),
                                       "new_msg": self._fit_log("msg", msg)})

    def delete_log(self, row_id: int) -> None:
        with self.database.write() as conn:
            conn.execute(_DELETE_LOG, {"row_id": row_id})

    def failed_logins(self, *, admin: str, ip: str, since: datetime,
                      exclude_id: int | None = None, pending_msg: str | None = None) -> list[dict]:
        """Failed-login rows written at or after `since` for account `admin`
        or from address `ip`, oldest first: id, timestamp, whether it is of
        this account (`same_admin`) and from this address (`same_ip`),
        compared the way the database compares them (values cut to the
        column sizes, MySQL's collation), and whether its msg is
        `pending_msg` (`pending`)."""
        c = t.log.c
        same_admin = c.admin == self._fit_log("admin", admin)
        same_ip = c.ip == self._fit_log("ip", ip)
        conds = [c.event == self._fit_log("event", "login"), c.loglevel == self._fit_log("loglevel", "error"),
                 c.timestamp >= _naive_utc(since), or_(same_admin, same_ip)]
        if exclude_id is not None:
            conds.append(c.id != exclude_id)
        pending = (case((c.msg == pending_msg, 1), else_=0) if pending_msg is not None else literal(0))
        query = select(c.id, c.timestamp, case((same_admin, 1), else_=0).label("same_admin"),
                       case((same_ip, 1), else_=0).label("same_ip"),
                       pending.label("pending")).where(*conds).order_by(c.id)
        with self.database.read() as conn:
            return [{"id": int(r.id), "timestamp": _naive_utc(r.timestamp),
                     "same_admin": bool(r.same_admin), "same_ip": bool(r.same_ip), "pending": bool(r.pending)}
                    for r in conn.execute(query)]

    def last_successful_login(self, *, admin: str, ip: str, since: datetime) -> int | None:
        """Id of the newest successful-login row of `admin` from `ip` written
        at or after `since`, or None."""
        c = t.log.c
        with self.database.read() as conn:
            found = conn.execute(select(func.max(c.id)).where(
                c.event == self._fit_log("event", "login"), c.loglevel == self._fit_log("loglevel", "info"),
                c.admin == self._fit_log("admin", admin), c.ip == self._fit_log("ip", ip),
                c.timestamp >= _naive_utc(since))).scalar_one()
        return int(found) if found is not None else None

    # -- deleted mailboxes / quota ------------------------------------------

    def record_deleted_mailboxes(
        self,
        mailboxes: list[dict],
        *,
        admin: str,
        keep_days: int | None,
    ) -> None:
        """Remember mailboxes of deleted users for later removal from disk.

        Each item: username, domain, maildir and optionally bytes/messages
        (taken from used_quota when not given, else 0).  keep_days 0/None →
        delete_date NULL (keep forever), else today (UTC) + keep_days.
        """
        if not mailboxes:
            return
        if keep_days is not None and keep_days < 0:
            raise InvalidInput("keep_days must not be negative", code="INVALID_KEEP_DAYS")
        delete_date: date | None = (
            self.now().date() + timedelta(days=keep_days) if keep_days else None
        )
        now = self.now()
        live = self._live("deleted_mailboxes")
        with_counts = live is None or {"bytes", "messages"} <= live.columns
        quota_known = with_counts and self._live("used_quota") is not None
        admin_value = live.fit("admin", admin) if live is not None else admin

        with self.database.write() as conn:
            usage: dict[str, tuple[int, int]] = {}
            if quota_known:
                wanted = sorted(
                    {
                        m["username"]
                        for m in mailboxes
                        if m.get("bytes") is None or m.get("messages") is None
                    }
                )
                usage = self._usage_of(conn, wanted)

            rows = []
            for m in mailboxes:
                row = {
                    "timestamp": now,
                    "username": m["username"],
                    "domain": m.get("domain") or "",
                    "maildir": m.get("maildir") or "",
                    "admin": admin_value,
                    "delete_date": delete_date,
                }
                if with_counts:
                    q_bytes, q_messages = usage.get(m["username"], (0, 0))
                    row["bytes"] = int(m["bytes"]) if m.get("bytes") is not None else q_bytes
                    row["messages"] = (
                        int(m["messages"]) if m.get("messages") is not None else q_messages
                    )
                rows.append(live.only_live(row) if live is not None else row)

            for chunk in _chunks(rows):
                conn.execute(insert(t.deleted_mailboxes).values(chunk))

    def unrecord_deleted_mailboxes(self, usernames: list[str], *, since: datetime, admin: str) -> None:
        """Take back the rows `record_deleted_mailboxes` wrote at or after
        `since` for these users (their deletion was undone)."""
        c = t.deleted_mailboxes.c
        with self.database.write() as conn:
            for chunk in _chunks(sorted(set(usernames))):
                conn.execute(delete(t.deleted_mailboxes).where(
                    c.username.in_(chunk), c.timestamp >= since, c.admin == admin))

    def kept_maildirs(self, paths: list[str]) -> set[str]:
        """Those of `paths` (with or without the final slash) that are the
        maildir of a deleted account's mailbox still recorded here."""
        if not paths or self._live("deleted_mailboxes") is None:
            return set()
        spellings = sorted({v for p in paths for v in (p.rstrip("/"), p.rstrip("/") + "/")})
        c = t.deleted_mailboxes.c
        with self.database.read() as conn:
            found = {row.maildir for chunk in _chunks(spellings)
                     for row in conn.execute(select(c.maildir).where(c.maildir.in_(chunk)))}
        wanted = {p.rstrip("/"): p for p in paths}
        return {wanted[m.rstrip("/")] for m in found if m.rstrip("/") in wanted}

    def _usage_of(self, conn: Connection, usernames: list[str]) -> dict[str, tuple[int, int]]:
        if not usernames:
            return {}
        q = t.used_quota.c
        found: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(usernames):
            for username, nbytes, nmessages in conn.execute(
                select(q.username, q.bytes, q.messages).where(q.username.in_(chunk))
            ):
                found[username] = (int(nbytes or 0), int(nmessages or 0))
        return found

    def delete_used_quota(
        self,
        *,
        usernames: list[str] | None = None,
        domains: list[str] | None = None,
    ) -> None:
        """Remove used_quota rows of these users and/or of all users of these
        domains (by the domain column, and by the address for rows whose
        domain column was never filled)."""
        live = self._live("used_quota")
        if live is None or not (usernames or domains):
            return
        q = t.used_quota.c
        conds = []
        for chunk in _chunks(sorted(set(usernames or []))):
            conds.append(q.username.in_(chunk))
        doms = sorted(set(domains or []))
        if doms and "domain" in live.columns:
            for chunk in _chunks(doms):
                conds.append(q.domain.in_(chunk))
        for d in doms:
            conds.append(q.username.like("%@" + _like_escape(d), escape="\\"))
        with self.database.write() as conn:
            for chunk in _chunks(conds, 50):
                conn.execute(delete(t.used_quota).where(or_(*chunk)))

    # -- readers ------------------------------------------------------------

    def used_quota_usernames(self) -> set[str]:
        """Mailboxes Dovecot reports usage of (empty when the table is missing)."""
        if self._live("used_quota") is None:
            return set()
        with self.database.read() as conn:
            return {r[0] for r in conn.execute(select(t.used_quota.c.username))}

    def deleted_mailbox_usernames(self) -> set[str]:
        if self._live("deleted_mailboxes") is None:
            return set()
        with self.database.read() as conn:
            return {r[0].lower() for r in conn.execute(select(t.deleted_mailboxes.c.username))}

    def mailbox_facts(self, username: str) -> tuple[dict, dict | None]:
        """What Dovecot recorded of a mailbox, read in one statement (a
        user's GET shows both): its usage, {"bytes": int, "messages": int}
        from used_quota (0/0 if unknown), and its last logins, {"domain",
        "imap", "pop3", "lda"} (epoch seconds or None) from last_login, or
        None when Dovecot never recorded one."""
        usage: dict = {"bytes": 0, "messages": 0}
        quota_live, login_live = self._live("used_quota"), self._live("last_login")
        wanted = tuple(c for c in ("domain", "imap", "pop3", "lda") if c in login_live.columns) \
            if login_live is not None else None
        if quota_live is None and wanted is None:
            return usage, None
        found = self.database.first_row(_mailbox_facts_of(quota_live is not None, wanted), {"username": username})
        assert found is not None        # (a SELECT of subqueries only: always one row)
        if quota_live is not None:
            usage = {"bytes": int(found["bytes"] or 0), "messages": int(found["messages"] or 0)}
        if wanted is None or found["has_login"] is None:
            return usage, None
        login: dict[str, str | int | None] = {"domain": "", "imap": None, "pop3": None, "lda": None}
        for c in wanted:
            value = found[f"login_{c}"]
            login[c] = (value or "") if c == "domain" else (int(value) if value is not None else None)
        return usage, login

    def read_log(
        self,
        *,
        admin: str | None = None,
        domain: str | None = None,
        username: str | None = None,
        event: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict], int]:
        """Log rows matching the filters, newest first, and how many match in
        all.  `since` is inclusive, `until` exclusive (naive = UTC)."""
        c = t.log.c
        conds = []
        for column, value in (("admin", admin), ("domain", domain), ("username", username),
                              ("event", event)):
            if value is not None:
                conds.append(c[column] == value)
        if since is not None:
            conds.append(c.timestamp >= _naive_utc(since))
        if until is not None:
            conds.append(c.timestamp < _naive_utc(until))
        with self.database.read() as conn:
            total = int(conn.execute(select(func.count()).select_from(t.log).where(*conds)).scalar_one())
            result = conn.execute(
                select(t.log).where(*conds).order_by(c.timestamp.desc(), c.id.desc())
                .offset(offset).limit(limit)
            )
            return [dict(r._mapping) for r in result], total

    # -- API tokens -----------------------------------------------------------

    def create_token(self, *, token_hash: str, admin: str, name: str = "", read_only: bool = False,
                     domains: list[str] | None = None, expires: datetime | None = None) -> int:
        """Store a new token (its hash only); returns its id."""
        self.ensure_own_tables()
        values = {
            "token_hash": token_hash,
            "admin": admin,
            "name": name,
            "read_only": 1 if read_only else 0,
            "domains": ",".join(domains) if domains is not None else None,
            "created": self.now(),
            "expires": _naive_utc(expires).replace(microsecond=0) if expires is not None else None,
        }
        with self.database.write() as conn:
            result = conn.execute(insert(t.api_tokens).values(**values))
            return inserted_id(result)

    def find_token(self, *, token_hash: str | None = None, token_id: int | None = None) -> dict | None:
        """One token row (by hash or id), revoked and expired ones included.
        Found by its hash (a request's credentials), the row also says
        whether some journaled write is unfinished (`writes_open`)."""
        self.ensure_own_tables()
        if token_hash is not None:
            found = self.database.first_row(_TOKEN_BY_HASH, {"token_hash": token_hash})
            return dict(_token_row(found), writes_open=bool(found["writes_open"])) if found is not None else None
        with self.database.read() as conn:
            row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.id == token_id)).first()
        return _token_row(row._mapping) if row is not None else None

    def list_tokens(self, *, admin: str | None = None) -> list[dict]:
        self.ensure_own_tables()
        c = t.api_tokens.c
        query = select(t.api_tokens).order_by(c.id)
        if admin is not None:
            query = query.where(c.admin == admin)
        with self.database.read() as conn:
            return [_token_row(r._mapping) for r in conn.execute(query)]

    def revoke_token(self, token_id: int) -> bool:
        """Mark a token revoked; False when there is no such token.  Revoking
        twice keeps the first time."""
        self.ensure_own_tables()
        c = t.api_tokens.c
        with self.database.write() as conn:
            if conn.execute(select(c.id).where(c.id == token_id)).first() is None:
                return False
            conn.execute(update(t.api_tokens).where(c.id == token_id, c.revoked.is_(None))
                         .values(revoked=self.now()))
        return True

    def revoke_tokens_of(self, admins: list[str]) -> int:
        """Revoke every unrevoked token of these admins; returns how many.

        For an account that stops being that admin (deleted, renamed, its
        admin role removed): its address may later belong to someone else,
        who must not inherit the old tokens.  Callers run it inside the
        step that undoes the directory change when the database refuses.
        """
        # Token rows hold the address as validated (lower case).
        wanted = sorted({a.lower() for a in admins})
        if not wanted:
            return 0
        self.ensure_own_tables()
        c = t.api_tokens.c
        now = self.now()
        count = 0
        with self.database.write() as conn:
            for chunk in _chunks(wanted):
                result = conn.execute(update(t.api_tokens)
                                      .where(c.admin.in_(chunk), c.revoked.is_(None))
                                      .values(revoked=now))
                count += result.rowcount or 0
        return count

    def touch_token(self, token_id: int, *, every: int = 60) -> None:
        """Record that a token was used (at most once per `every` seconds)."""
        self.ensure_own_tables()
        c = t.api_tokens.c
        now = self.now()
        with self.database.write() as conn:
            conn.execute(update(t.api_tokens)
                         .where(c.id == token_id,
                                or_(c.last_used.is_(None), c.last_used < now - timedelta(seconds=every)))
                         .values(last_used=now))


def _token_row(row) -> dict:
    domains = row["domains"]
    return {
        "id": int(row["id"]),
        "token_hash": row["token_hash"],
        "admin": row["admin"],
        "name": row["name"] or "",
        "read_only": bool(row["read_only"]),
        "domains": [d for d in domains.split(",") if d] if domains is not None else None,
        "created": row["created"],
        "expires": row["expires"],
        "last_used": row["last_used"],
        "revoked": row["revoked"],
    }


def _lost_create_race(e: sa_exc.SQLAlchemyError) -> bool:
    if not isinstance(e, sa_exc.DBAPIError):
        return False
    message = str(e.orig).lower()
    return "already exists" in message or "duplicate key" in message


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = ["IredadminDB"]
