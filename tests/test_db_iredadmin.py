"""IredadminDB on SQLite, MariaDB and PostgreSQL (see tests/fixtures_sql.py)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy import exc as sa_exc

from iredldap.db import tables as t
from iredldap.db.engine import make_engine, translate_db_errors
from iredldap.db.iredadmin import IredadminDB
from iredldap.errors import DatabaseError, DatabaseUnavailable, InvalidInput

from .support import rows

# Makes this module runnable on its own; a no-op once tests/conftest.py
# registers the same plugin.

T0 = datetime(2031, 5, 6, 12, 0, 0)   # naive UTC; below MySQL TIMESTAMP's 2038 limit


class FakeClock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(iredadmin_db, clock) -> IredadminDB:
    """The fixture's store, with a controllable clock."""
    return IredadminDB(iredadmin_db.engine, clock=clock)


# -- schema --------------------------------------------------------------------


def test_create_tables_is_idempotent_and_complete(db):
    db.create_tables()
    db.create_tables()
    live = db.reflect()
    assert set(live) == {"sessions", "log", "deleted_mailboxes", "used_quota", "last_login", "api_tokens",
                         "write_journal", "write_journal_steps"}
    assert live["write_journal"] == {"id", "created", "updated", "kind", "targets", "resume", "state", "owner",
                                     "done", "steps", "sealed", "note"}
    assert live["write_journal_steps"] == {"journal_id", "seq", "step"}
    assert live["deleted_mailboxes"] == {
        "id", "timestamp", "username", "domain", "maildir", "admin",
        "delete_date", "bytes", "messages",
    }
    assert live["log"] == {
        "id", "timestamp", "admin", "ip", "domain", "username", "event", "loglevel", "msg",
    }
    assert live["sessions"] == {"session_id", "atime", "data"}
    assert live["used_quota"] == {"username", "bytes", "messages", "domain"}
    assert live["last_login"] == {"username", "domain", "imap", "pop3", "lda"}


# -- sessions ------------------------------------------------------------------

KEY = "a" * 64   # e.g. a sha256 hex digest of the cookie value


def _atime(db, key=KEY):
    with db.engine.connect() as conn:
        return conn.execute(
            select(t.sessions.c.atime).where(t.sessions.c.session_id == key)
        ).scalar_one()


def test_session_roundtrip(db):
    data = {"username": "postmaster@example.com", "is_global_admin": True,
            "ip": "192.0.2.1", "name": "Ünïcødé 😀", "n": [1, 2]}
    db.create_session(KEY, data)
    assert db.load_session(KEY, 1800).data == data
    assert db.load_session("b" * 64, 1800) is None
    assert _atime(db) == T0
    # Stored as JSON text.
    with db.engine.connect() as conn:
        stored = conn.execute(select(t.sessions.c.data)).scalar_one()
    assert stored.startswith("{") and "postmaster@example.com" in stored


def test_the_session_read_says_whether_a_journaled_write_is_unfinished(db):
    # Read in the same statement as the session (and a token by its hash):
    # a request reads the journal's rows only when this says some are open.
    from iredldap.db.journal import JournalTable
    journal = JournalTable(db.database)
    db.create_session(KEY, {"admin": "a@x.test"})
    token_hash = "h" * 64
    db.create_token(token_hash=token_hash, admin="a@x.test", name="", read_only=False, domains=None, expires=None)
    assert db.load_session(KEY, 60).writes_open is False
    assert db.find_token(token_hash=token_hash)["writes_open"] is False
    for state in ("planned", "running", "resuming", "open"):
        row_id = journal.open(kind="test", targets=["mail:a@x.test"], resume="back", owner="me", steps=[],
                              state=state)
        assert db.load_session(KEY, 60).writes_open is True, state
        assert db.find_token(token_hash=token_hash)["writes_open"] is True, state
        journal.close(row_id, "done" if state != "open" else "undone")
        assert db.load_session(KEY, 60).writes_open is False, state
        assert db.find_token(token_hash=token_hash)["writes_open"] is False, state
    assert {r["state"] for r in rows(db, t.write_journal)} == {"done", "undone"}
    assert "writes_open" not in db.find_token(token_id=db.find_token(token_hash=token_hash)["id"])


def test_session_replaced_by_same_key(db):
    db.create_session(KEY, {"v": 1})
    db.create_session(KEY, {"v": 2})
    assert db.load_session(KEY, 60).data == {"v": 2}
    assert len(rows(db, t.sessions)) == 1


def test_session_expires_after_idle_timeout(db, clock):
    db.create_session(KEY, {"v": 1})
    clock.advance(600)
    assert db.load_session(KEY, 600).data == {"v": 1}       # exactly idle_timeout: still fresh
    db.create_session(KEY, {"v": 2})                     # atime = T0 + 600
    clock.advance(601)
    assert db.load_session(KEY, 600) is None


def test_session_touch_at_most_every_30_seconds(db, clock):
    db.create_session(KEY, {"v": 1})
    clock.advance(10)
    assert db.load_session(KEY, 100).data == {"v": 1}
    assert _atime(db) == T0                              # no write
    clock.advance(20)                                    # 30 s old
    assert db.load_session(KEY, 100).data == {"v": 1}
    assert _atime(db) == T0 + timedelta(seconds=30)
    clock.advance(90)                                    # 120 s after creation,
    assert db.load_session(KEY, 100).data == {"v": 1}         # 90 s after the touch
    assert _atime(db) == T0 + timedelta(seconds=120)
    clock.advance(101)
    assert db.load_session(KEY, 100) is None


def test_session_delete(db):
    db.create_session(KEY, {"v": 1})
    db.delete_session(KEY)
    assert db.load_session(KEY, 60) is None
    db.delete_session(KEY)                               # no error when missing


def test_foreign_session_rows_are_ignored_and_kept(db, clock):
    # A row written by iRedAdmin (web.py): base64(pickle(...)), not JSON.
    with db.engine.begin() as conn:
        conn.execute(insert(t.sessions).values(
            session_id="c" * 40, atime=T0, data="KGRwMApTJ2lwJwpwMQo="))
    assert db.load_session("c" * 40, 60) is None
    db.create_session("old", {"v": 1})
    clock.advance(100)
    db.create_session("new", {"v": 2})
    clock.advance(50)
    assert db.purge_sessions(120) == 1                   # "old" only
    keys = {r["session_id"].rstrip() for r in rows(db, t.sessions)}
    assert keys == {"c" * 40, "new"}


def test_aware_clock_is_converted_to_utc(iredadmin_db):
    clock = FakeClock(datetime(2031, 5, 6, 14, 0, 0, 123456,
                               tzinfo=timezone(timedelta(hours=2))))
    db = IredadminDB(iredadmin_db.engine, clock=clock)
    db.create_session(KEY, {})
    assert _atime(db) == T0


# -- activity log --------------------------------------------------------------


def test_add_log_writes_exact_row(db):
    db.add_log(admin="postmaster@example.com", ip="192.0.2.1", event="delete",
               msg="[API] Delete user: a@example.com", domain="example.com",
               username="a@example.com", loglevel="warning")
    db.add_log(admin="admin@example.com", ip="2001:db8::1", event="login")
    got = rows(db, t.log, t.log.c.id)
    for r in got:
        r.pop("id")
    assert got == [
        {"timestamp": T0, "admin": "postmaster@example.com", "ip": "192.0.2.1",
         "domain": "example.com", "username": "a@example.com", "event": "delete",
         "loglevel": "warning", "msg": "[API] Delete user: a@example.com"},
        {"timestamp": T0, "admin": "admin@example.com", "ip": "2001:db8::1",
         "domain": "", "username": "", "event": "login", "loglevel": "info", "msg": ""},
    ]


def test_add_log_truncates_to_column_sizes(db):
    db.add_log(admin="x" * 300, ip="1" * 50, event="e" * 30, msg="m" * 70000,
               domain="d" * 256, username="u" * 999, loglevel="l" * 11)
    (r,) = rows(db, t.log)
    assert r["admin"] == "x" * 255
    assert r["ip"] == "1" * 40
    assert r["event"] == "e" * 20
    assert r["domain"] == "d" * 255
    assert r["username"] == "u" * 255
    assert r["loglevel"] == "l" * 10
    # TEXT is 64 KiB on MySQL; unlimited elsewhere.
    assert r["msg"].startswith("m" * 65535)
    assert db.count_log(event="e" * 30, since=T0) == 1


def test_count_log_windows_and_filters(db, clock):
    def log(ip="192.0.2.1", admin="a@example.com", event="login", loglevel="info"):
        db.add_log(admin=admin, ip=ip, event=event, loglevel=loglevel)

    log()                                        # T0
    clock.advance(60)
    log()                                        # T0+60
    log(ip="192.0.2.2")
    log(event="user_login")
    log(loglevel="error")
    clock.advance(60)
    log(admin="b@example.com")                   # T0+120

    assert db.count_log(event="login", since=T0) == 5
    assert db.count_log(event="login", since=T0 + timedelta(seconds=1)) == 4
    assert db.count_log(event="login", since=T0 + timedelta(seconds=60)) == 4
    assert db.count_log(event="login", since=T0 + timedelta(seconds=61)) == 1
    assert db.count_log(event="login", ip="192.0.2.1", since=T0) == 4
    assert db.count_log(event="login", ip="192.0.2.2", since=T0) == 1
    assert db.count_log(event="login", admin="b@example.com", since=T0) == 1
    assert db.count_log(event="login", loglevel="error", since=T0) == 1
    assert db.count_log(event="login", loglevel="error", ip="192.0.2.2", since=T0) == 0
    assert db.count_log(event="user_login", since=T0) == 1
    assert db.count_log(event="nothing", since=T0) == 0
    # An aware `since` is compared in UTC.
    aware = (T0 + timedelta(seconds=61)).replace(tzinfo=timezone.utc).astimezone(
        timezone(timedelta(hours=-5)))
    assert db.count_log(event="login", since=aware) == 1


# -- deleted mailboxes ---------------------------------------------------------


def _mailbox(user, **extra):
    domain = user.split("@")[1]
    return {"username": user, "domain": domain,
            "maildir": f"/var/vmail/vmail1/{domain}/{user[0]}/{user}/", **extra}


def _put_quota(db, username, nbytes, messages):
    with db.engine.begin() as conn:
        conn.execute(insert(t.used_quota).values(
            username=username, bytes=nbytes, messages=messages,
            domain=username.split("@")[1]))


@pytest.mark.parametrize("keep_days, expected", [
    (0, None), (None, None), (30, date(2031, 6, 5)), (1, date(2031, 5, 7)),
])
def test_deleted_mailboxes_delete_date(db, keep_days, expected):
    db.record_deleted_mailboxes([_mailbox("a@example.com")], admin="admin@example.com",
                                keep_days=keep_days)
    (r,) = rows(db, t.deleted_mailboxes)
    r.pop("id")
    assert r == {"timestamp": T0, "username": "a@example.com", "domain": "example.com",
                 "maildir": "/var/vmail/vmail1/example.com/a/a@example.com/",
                 "admin": "admin@example.com", "delete_date": expected,
                 "bytes": 0, "messages": 0}


def test_deleted_mailboxes_counts_from_used_quota(db):
    _put_quota(db, "a@example.com", 123456789012, 42)
    _put_quota(db, "b@example.com", 5, 6)
    db.record_deleted_mailboxes(
        [_mailbox("a@example.com"),
         _mailbox("b@example.com", bytes=7, messages=8),    # given: wins
         _mailbox("c@example.com")],                          # no quota row
        admin="admin@example.com", keep_days=7)
    got = {r["username"]: (r["bytes"], r["messages"], r["delete_date"])
           for r in rows(db, t.deleted_mailboxes)}
    assert got == {
        "a@example.com": (123456789012, 42, date(2031, 5, 13)),
        "b@example.com": (7, 8, date(2031, 5, 13)),
        "c@example.com": (0, 0, date(2031, 5, 13)),
    }


def test_deleted_mailboxes_many_and_edge_cases(db):
    db.record_deleted_mailboxes([], admin="x", keep_days=1)
    with pytest.raises(InvalidInput):
        db.record_deleted_mailboxes([_mailbox("a@example.com")], admin="x", keep_days=-1)
    assert rows(db, t.deleted_mailboxes) == []
    many = [_mailbox(f"u{i}@example.com") for i in range(1200)]
    db.record_deleted_mailboxes(many, admin="x", keep_days=None)
    assert len(rows(db, t.deleted_mailboxes)) == 1200


# -- iRedMail tables of older installs -----------------------------------------

OLD_DDL = {
    "mysql": [
        """CREATE TABLE deleted_mailboxes (
            id BIGINT(20) UNSIGNED AUTO_INCREMENT,
            `timestamp` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            username VARCHAR(255) NOT NULL DEFAULT '',
            domain VARCHAR(255) NOT NULL DEFAULT '',
            maildir VARCHAR(255) NOT NULL DEFAULT '',
            `admin` VARCHAR(255) NOT NULL DEFAULT '',
            delete_date DATE DEFAULT NULL,
            PRIMARY KEY (id), INDEX (`timestamp`), INDEX (username), INDEX (domain),
            INDEX (`admin`), INDEX (delete_date)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        """CREATE TABLE log (
            id BIGINT(20) UNSIGNED AUTO_INCREMENT,
            `timestamp` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            `admin` VARCHAR(255) NOT NULL,
            ip VARCHAR(40) NOT NULL,
            domain VARCHAR(255) NOT NULL DEFAULT '',
            username VARCHAR(255) NOT NULL DEFAULT '',
            event VARCHAR(10) NOT NULL DEFAULT '',
            loglevel VARCHAR(10) NOT NULL DEFAULT 'info',
            msg VARCHAR(255) NOT NULL,
            PRIMARY KEY (id), INDEX (`timestamp`), INDEX (event)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    ],
    "postgresql": [
        """CREATE TABLE deleted_mailboxes (
            id SERIAL PRIMARY KEY,
            timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
            username VARCHAR(255) NOT NULL DEFAULT '',
            domain VARCHAR(255) NOT NULL DEFAULT '',
            maildir VARCHAR(255) NOT NULL DEFAULT '',
            admin VARCHAR(255) NOT NULL DEFAULT '',
            delete_date DATE DEFAULT NULL)""",
        """CREATE TABLE log (
            id SERIAL PRIMARY KEY,
            admin VARCHAR(255) NOT NULL,
            timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
            ip VARCHAR(40) NOT NULL,
            domain VARCHAR(255) NOT NULL DEFAULT '',
            username VARCHAR(255) NOT NULL DEFAULT '',
            event VARCHAR(10) NOT NULL DEFAULT '',
            loglevel VARCHAR(10) NOT NULL DEFAULT 'info',
            msg VARCHAR(255) NOT NULL)""",
    ],
    "sqlite": [
        """CREATE TABLE deleted_mailboxes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            username VARCHAR(255) NOT NULL DEFAULT '',
            domain VARCHAR(255) NOT NULL DEFAULT '',
            maildir VARCHAR(255) NOT NULL DEFAULT '',
            admin VARCHAR(255) NOT NULL DEFAULT '',
            delete_date DATE DEFAULT NULL)""",
        """CREATE TABLE log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            admin VARCHAR(255) NOT NULL,
            ip VARCHAR(40) NOT NULL,
            domain VARCHAR(255) NOT NULL DEFAULT '',
            username VARCHAR(255) NOT NULL DEFAULT '',
            event VARCHAR(10) NOT NULL DEFAULT '',
            loglevel VARCHAR(10) NOT NULL DEFAULT 'info',
            msg VARCHAR(255) NOT NULL)""",
    ],
}


@pytest.fixture
def old_tables(iredadmin_db):
    """Replace deleted_mailboxes and log by their pre-1.7.3 / old-iRedAdmin
    shapes for one test, then put the current ones back."""
    engine = iredadmin_db.engine
    dialect = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name

    def drop():
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS deleted_mailboxes"))
            conn.execute(text("DROP TABLE IF EXISTS log"))

    drop()
    try:
        with engine.begin() as conn:
            for ddl in OLD_DDL[dialect]:
                conn.execute(text(ddl))
        yield dialect
    finally:
        drop()
        iredadmin_db.create_tables()


def test_old_deleted_mailboxes_without_counts(old_tables, iredadmin_db, clock):
    db = IredadminDB(iredadmin_db.engine, clock=clock)
    db.create_tables()                           # never alters existing tables
    assert "bytes" not in db.reflect()["deleted_mailboxes"]
    _put_quota(db, "a@example.com", 10, 1)
    db.record_deleted_mailboxes(
        [_mailbox("a@example.com"), _mailbox("b@example.com", bytes=5, messages=5)],
        admin="admin@example.com", keep_days=30)
    dm = t.deleted_mailboxes.c
    with db.engine.connect() as conn:     # only columns the old table has
        got = conn.execute(
            select(dm.username, dm.domain, dm.maildir, dm.admin, dm.delete_date, dm.timestamp)
            .order_by(dm.username)).all()
    assert [tuple(r) for r in got] == [
        ("a@example.com", "example.com", "/var/vmail/vmail1/example.com/a/a@example.com/",
         "admin@example.com", date(2031, 6, 5), T0),
        ("b@example.com", "example.com", "/var/vmail/vmail1/example.com/b/b@example.com/",
         "admin@example.com", date(2031, 6, 5), T0),
    ]


def test_old_log_table_sizes(old_tables, iredadmin_db, clock):
    db = IredadminDB(iredadmin_db.engine, clock=clock)
    db.add_log(admin="admin@example.com", ip="192.0.2.1", event="delete_mailboxes",
               msg="x" * 300)
    db.add_log(admin="admin@example.com", ip="192.0.2.1", event="login")  # msg NOT NULL
    with db.engine.connect() as conn:
        got = conn.execute(text("SELECT event, msg FROM log ORDER BY id")).all()
    assert [tuple(r) for r in got] == [("delete_mai", "x" * 255), ("login", "")]
    # Counting uses the same cut, so it still finds the row.
    assert db.count_log(event="delete_mailboxes", since=T0) == 1


def test_utf8mb3_log_table_gets_no_4_byte_characters(old_tables, iredadmin_db, clock):
    db = IredadminDB(iredadmin_db.engine, clock=clock)
    db.add_log(admin="admin@example.com", ip="192.0.2.1", event="update",
               msg="Name: Zoë 😀")
    with db.engine.connect() as conn:
        msg = conn.execute(text("SELECT msg FROM log")).scalar_one()
    # iRedMail creates MySQL tables with CHARSET=utf8 (utf8mb3): an emoji
    # would fail the insert there, so it is replaced.
    assert msg == ("Name: Zoë \ufffd" if old_tables == "mysql" else "Name: Zoë 😀")


# -- used_quota / last_login ---------------------------------------------------


def _quota_users(db):
    return sorted(r["username"] for r in rows(db, t.used_quota))


def test_delete_used_quota(db):
    for user in ("a@example.com", "b@example.com", "c@example.org",
                 "d@a_b.com", "e@axb.com"):
        _put_quota(db, user, 1, 1)
    with db.engine.begin() as conn:      # a row whose domain column was never set
        conn.execute(insert(t.used_quota).values(username="f@example.net", bytes=1, messages=1))

    db.delete_used_quota()                                   # nothing asked: no-op
    db.delete_used_quota(usernames=[], domains=[])
    assert len(_quota_users(db)) == 6
    db.delete_used_quota(usernames=["a@example.com", "nobody@example.com"])
    assert _quota_users(db) == ["b@example.com", "c@example.org", "d@a_b.com",
                                "e@axb.com", "f@example.net"]
    db.delete_used_quota(domains=["example.org", "example.net"])
    assert _quota_users(db) == ["b@example.com", "d@a_b.com", "e@axb.com"]
    db.delete_used_quota(domains=["a_b.com"])                # "_" is not a wildcard
    assert _quota_users(db) == ["b@example.com", "e@axb.com"]
    db.delete_used_quota(usernames=["b@example.com"], domains=["axb.com"])
    assert _quota_users(db) == []


def test_mailbox_usage_and_last_login(db):
    assert db.mailbox_facts("a@example.com") == ({"bytes": 0, "messages": 0}, None)
    _put_quota(db, "a@example.com", 2**40, 12)
    with db.engine.begin() as conn:
        conn.execute(insert(t.last_login).values(
            username="a@example.com", domain="example.com", imap=1_900_000_000, lda=1_900_000_100))
    # Both in one statement (a user's GET), each whether or not the other has a row.
    assert db.mailbox_facts("a@example.com") == (
        {"bytes": 2**40, "messages": 12},
        {"domain": "example.com", "imap": 1_900_000_000, "pop3": None, "lda": 1_900_000_100})
    _put_quota(db, "b@example.com", 5, 1)
    with db.engine.begin() as conn:
        conn.execute(insert(t.last_login).values(username="c@example.com", domain="", imap=None))
    assert db.mailbox_facts("b@example.com") == ({"bytes": 5, "messages": 1}, None)
    assert db.mailbox_facts("c@example.com") == (
        {"bytes": 0, "messages": 0}, {"domain": "", "imap": None, "pop3": None, "lda": None})
    assert db.mailbox_facts("nobody@example.com") == ({"bytes": 0, "messages": 0}, None)


# -- errors --------------------------------------------------------------------


def test_ping(db):
    assert db.ping() is True


def test_statement_errors_are_database_errors(sql_engine):
    with pytest.raises(DatabaseError) as info:
        with translate_db_errors():
            with sql_engine.connect() as conn:
                conn.execute(text("SELECT * FROM no_such_table_here"))
    assert not isinstance(info.value, DatabaseUnavailable)

    with pytest.raises(DatabaseError) as info:
        with translate_db_errors():
            with sql_engine.connect() as conn:
                conn.execute(text("SELECT no_such_column FROM log"))
    assert not isinstance(info.value, DatabaseUnavailable)


def test_duplicate_key_is_database_error(iredadmin_db):
    _put_quota(iredadmin_db, "a@example.com", 1, 1)
    with pytest.raises(DatabaseError) as info:
        with translate_db_errors():
            _put_quota(iredadmin_db, "a@example.com", 1, 1)
    assert not isinstance(info.value, DatabaseUnavailable)
    assert isinstance(info.value.__cause__, sa_exc.IntegrityError)


def test_translate_passes_other_exceptions():
    with pytest.raises(ValueError):
        with translate_db_errors():
            raise ValueError("not ours to translate")
    with pytest.raises(InvalidInput):
        with translate_db_errors():
            raise InvalidInput("ours")


DOWN_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:1/iredadmin?ssl_disabled=1",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/iredadmin",
    "sqlite": "sqlite:////proc/nonexistent/iredadmin.sqlite",
}


@pytest.mark.parametrize("backend", sorted(DOWN_URLS))
def test_database_down(backend):
    started = time.monotonic()
    db = IredadminDB(make_engine(DOWN_URLS[backend]))
    try:
        with pytest.raises(DatabaseUnavailable):
            db.ping()
        with pytest.raises(DatabaseUnavailable):
            db.create_tables()
        with pytest.raises(DatabaseUnavailable):
            db.load_session(KEY, 60)
        with pytest.raises(DatabaseUnavailable):
            db.add_log(admin="a", ip="192.0.2.1", event="login")
        with pytest.raises(DatabaseUnavailable):
            db.count_log(event="login", since=T0)
        with pytest.raises(DatabaseUnavailable):
            db.record_deleted_mailboxes([_mailbox("a@example.com")], admin="a", keep_days=1)
    finally:
        db.engine.dispose()
    assert time.monotonic() - started < 5


def test_sessions_started_at_once_all_land(iredadmin_db):
    """Logins arriving together (each: purge of idle sessions, then the new
    row) must all get their session.  On MariaDB the range delete and the
    delete-before-insert of a missing key take gap locks, and InnoDB ends one
    of two such transactions as a deadlock victim; that must be retried, not
    answered 503 (seen in test_replication under load)."""
    import threading

    from iredldap.db.sessions import SessionStore

    store = SessionStore(iredadmin_db, "k" * 32, 600)
    threads, tokens, errors = 8, [], []
    barrier = threading.Barrier(threads)

    def login(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(15):
            try:
                tokens.append(store.start(admin=f"a{n}@example.com", dn=f"mail=a{n}", ip="127.0.0.1"))
            except Exception as e:  # noqa: BLE001 - collected and asserted on below
                errors.append(repr(e))

    workers = [threading.Thread(target=login, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not any(w.is_alive() for w in workers)
    assert errors == []
    assert len(tokens) == threads * 15
    assert all(store.resolve(token) is not None for token in tokens)
    assert len(rows(iredadmin_db, t.sessions)) == threads * 15


def test_the_journal_round_trip_on_each_database(db):
    """The journal's writes (made-once statements, values bound at run time)
    on SQLite, MariaDB and PostgreSQL: a row with more steps than one INSERT
    carries, steps appended, progress marked, the row closed."""
    from iredldap.db.journal import JournalTable

    journal = JournalTable(db.database)
    steps = [{"op": "add", "dn": f"mail=u{i}@a.test,ou=Users,domainName=a.test", "n": i} for i in range(201)]
    first = journal.open(kind="create", targets=["mail:u0@a.test"], resume="back", owner="host:1", steps=steps)
    second = journal.open(kind="delete", targets=["domain:a.test"], resume="forward", owner="host:2",
                          steps=steps[:1], sealed=True)
    assert first != second
    journal.append(first, 201, [{"op": "delete", "dn": "x"}], sealed=True)
    journal.mark_done(first, 150)
    row = journal.get(first)
    assert (row.kind, row.targets, row.resume, row.state, row.owner, row.done, row.steps, row.sealed) == \
        ("create", ["mail:u0@a.test"], "back", "running", "host:1", 150, 202, True)
    assert journal.steps(first) == steps + [{"op": "delete", "dn": "x"}]
    assert [r.id for r in journal.unfinished()] == [first, second]
    journal.close(first, "done", note="n" * 2000)
    row = journal.get(first)
    assert (row.state, row.note, journal.steps(first)) == ("done", "n" * 1000, [])
    assert journal.steps(second) == steps[:1] and [r.id for r in journal.unfinished()] == [second]


def test_mailbox_facts_of_a_server_without_those_tables_or_columns(db):
    """An iRedMail server whose Dovecot keeps no used_quota, or an older
    last_login without pop3 and lda: what is there is read, the rest is as
    if never recorded."""
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE used_quota"))
        conn.execute(text("DROP TABLE last_login"))
        conn.execute(text("CREATE TABLE last_login (username VARCHAR(255) NOT NULL, domain VARCHAR(255), "
                          "imap INTEGER)"))
        conn.execute(text("INSERT INTO last_login (username, domain, imap) VALUES ('a@example.com', "
                          "'example.com', 1900000000)"))
    db.reflect()
    assert db.mailbox_facts("a@example.com") == (
        {"bytes": 0, "messages": 0}, {"domain": "example.com", "imap": 1_900_000_000, "pop3": None, "lda": None})
    assert db.mailbox_facts("b@example.com") == ({"bytes": 0, "messages": 0}, None)
    with db.engine.begin() as conn:
        # Without a primary key a table may hold a user twice: one row is read, not an error.
        conn.execute(text("INSERT INTO last_login (username, domain, imap) VALUES ('a@example.com', "
                          "'example.com', 1900000000)"))
    assert db.mailbox_facts("a@example.com")[1] == {"domain": "example.com", "imap": 1_900_000_000,
                                                    "pop3": None, "lda": None}
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE last_login"))
    db.reflect()
    assert db.mailbox_facts("a@example.com") == ({"bytes": 0, "messages": 0}, None)


# -- Database.first_row: the per-request reads, run on the DBAPI cursor ------------------

def _core_first(db, statement, params):
    with db.engine.connect() as conn:
        row = conn.execute(statement, params).first()
    return dict(row._mapping) if row is not None else None


def test_first_row_reads_what_core_reads(db, clock):
    """The session, token and mailbox-facts reads give the values SQLAlchemy's
    own execution gives (dates as datetimes, NULLs, the flag), row or no row."""
    from iredldap.db.iredadmin import _SESSION_ROW, _TOKEN_BY_HASH, _mailbox_facts_of
    db.create_session(KEY, {"admin": "a@x.test"})
    db.create_token(token_hash="h" * 64, admin="a@x.test", name="n", domains=["x.test"],
                    expires=datetime(2031, 5, 6, 12, 0, tzinfo=timezone.utc))
    with db.engine.begin() as conn:
        conn.execute(insert(t.used_quota).values(username="u@x.test", bytes=123, messages=4))
        conn.execute(insert(t.last_login).values(username="u@x.test", domain="x.test", imap=1700000000))
    facts = _mailbox_facts_of(True, ("domain", "imap", "pop3", "lda"))
    for statement, params in ((_SESSION_ROW, {"session_id": KEY}), (_SESSION_ROW, {"session_id": "nope"}),
                              (_TOKEN_BY_HASH, {"token_hash": "h" * 64}), (_TOKEN_BY_HASH, {"token_hash": "x"}),
                              (facts, {"username": "u@x.test"}), (facts, {"username": "nobody@x.test"})):
        ours = db.database.first_row(statement, params)
        theirs = _core_first(db, statement, params)
        assert ours == theirs, (statement, params)
        if ours is not None:
            assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]
    assert db.database.first_row(_SESSION_ROW, {"session_id": KEY})["atime"] == T0
    assert db.database.first_row(facts, {"username": "u@x.test"})["bytes"] == 123


def test_first_row_errors_leave_as_core_errors_would(db):
    from sqlalchemy import select as sa_select
    gone = sa_select(t.sessions.c.data).where(text("no_such_column = 1"))
    with pytest.raises(DatabaseError):
        db.database.first_row(gone, {})
    # The connection is usable afterwards.
    db.create_session(KEY, {"admin": "a@x.test"})
    assert db.load_session(KEY, 60).data == {"admin": "a@x.test"}


@pytest.mark.parametrize("sql_url", ["mariadb", "postgresql"], indirect=True)
def test_first_row_on_a_connection_the_server_ended(db, sql_url):
    """A connection the server ended is a 503 (DatabaseUnavailable) for the
    read that finds it, and no later read gets it again."""
    from iredldap.db.engine import close_request_scope, open_request_scope
    kind = db.engine.dialect.name
    db.create_session(KEY, {"admin": "a@x.test"})
    open_request_scope()
    try:
        assert db.load_session(KEY, 60) is not None        # the request's connection, lent
        with db.database.read() as conn:
            own = conn.execute(text("SELECT CONNECTION_ID()" if kind in ("mysql", "mariadb")
                                    else "SELECT pg_backend_pid()")).scalar_one()
        with make_engine(sql_url).connect() as other:
            other.execute(text(f"KILL {own}" if kind in ("mysql", "mariadb")
                               else f"SELECT pg_terminate_backend({own})"))
            other.commit()
        time.sleep(0.2)
        with pytest.raises(DatabaseUnavailable):
            db.load_session(KEY, 60)
    finally:
        close_request_scope()
    assert db.load_session(KEY, 60).data == {"admin": "a@x.test"}


def test_a_session_ended_by_another_worker_is_gone_at_the_next_read(iredadmin_db, sql_url):
    """Two workers (two engines) on one database: a session the other ends is
    not found by the next read, even on the connection of a request that read
    it already (MariaDB's REPEATABLE READ would keep an open snapshot)."""
    from iredldap.db.engine import close_request_scope, open_request_scope
    from iredldap.db.sessions import SessionStore
    here = SessionStore(iredadmin_db, secret_key="k" * 32, idle_timeout=3600)
    other_engine = make_engine(sql_url)
    try:
        there = SessionStore(IredadminDB(other_engine), secret_key="k" * 32, idle_timeout=3600)
        token = here.start(admin="a@x.test", dn="", ip="127.0.0.1")
        open_request_scope()
        try:
            found = here.resolve(token)
            assert found is not None and found.writes_open is False
            there.end(there.resolve(token))
            assert here.resolve(token) is None
        finally:
            close_request_scope()
        assert here.resolve(token) is None
    finally:
        other_engine.dispose()
