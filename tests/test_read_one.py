"""Reads of one statement (Database.read_one): on SQLite no BEGIN is sent
for them, what they read is what is committed when they run (a logout on
another worker counts at once), and the blocks around them keep their own
transactions (a write still begins with BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import event, select, text

from iredldap.db import tables as t
from iredldap.db.engine import Database, close_request_scope, open_request_scope
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.sessions import SessionStore


@pytest.fixture
def database(tmp_path):
    db = IredadminDB(f"sqlite:///{tmp_path / 'iredadmin.sqlite'}")
    db.create_tables()
    yield db
    db.engine.dispose()


@pytest.fixture
def statements(database):
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement.split(None, 1)[0].upper() if not statement.startswith("BEGIN IMMEDIATE")
                    else "BEGIN IMMEDIATE")
    event.listen(database.engine, "before_cursor_execute", record)
    yield sent
    event.remove(database.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("in_request", [False, True])
def test_a_read_of_one_statement_sends_no_begin_and_the_others_still_do(database, statements, in_request):
    if in_request:
        open_request_scope()
    try:
        db: Database = database.database
        with db.read_one() as conn:
            assert conn.execute(select(t.sessions.c.session_id)).first() is None
        assert statements == ["SELECT"]
        with db.write() as conn:
            conn.execute(text("DELETE FROM sessions WHERE session_id = 'none'"))
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
        with db.read_one() as conn:
            conn.execute(text("SELECT 2"))
        with db.write() as conn:
            conn.execute(text("DELETE FROM sessions WHERE session_id = 'none'"))
        assert statements == ["SELECT", "BEGIN IMMEDIATE", "DELETE", "BEGIN", "SELECT", "SELECT",
                              "BEGIN IMMEDIATE", "DELETE"]
    finally:
        if in_request:
            close_request_scope()


def test_a_logout_elsewhere_counts_at_the_next_read(database, tmp_path, statements):
    sessions = SessionStore(database, secret_key="k" * 32, idle_timeout=3600)
    token = sessions.start(admin="root@admins.test", dn="mail=root@admins.test,o=domainAdmins", ip="127.0.0.1")
    open_request_scope()
    try:
        assert sessions.resolve(token).admin == "root@admins.test"
        # Another worker (its own connection) ends the session.
        other = sqlite3.connect(tmp_path / "iredadmin.sqlite", isolation_level=None)
        other.execute("DELETE FROM sessions")
        other.close()
        assert sessions.resolve(token) is None
    finally:
        close_request_scope()
    assert "BEGIN" not in statements


def test_a_read_of_one_statement_goes_on_while_another_worker_holds_the_write_lock(database, tmp_path):
    sessions = SessionStore(database, secret_key="k" * 32, idle_timeout=3600)
    token = sessions.start(admin="root@admins.test", dn="", ip="127.0.0.1")
    locker = sqlite3.connect(tmp_path / "iredadmin.sqlite", isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        locker.execute("DELETE FROM sessions")       # not committed: not seen
        assert sessions.resolve(token).admin == "root@admins.test"
        assert database.mailbox_facts("nobody@a.test") == ({"bytes": 0, "messages": 0}, None)
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_a_logout_a_revocation_and_a_disabled_admin_count_at_once_on_another_app(tmp_path, api, directory, factory):
    """Two apps, each with its own engine on the same database file (two
    workers): what one ends, the other refuses at its very next request."""
    from .test_login import other_client
    from .support import BearerClient
    factory.domain("a.test")
    factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["a.test"])
    worker = other_client(tmp_path, directory)
    # A session started on this app, used and then ended there.
    worker.cookie = api.cookie
    assert worker.get("/api/domains").status_code == 200
    assert api.post("/api/logout").status_code == 200
    assert worker.get("/api/domains").status_code == 401
    # A token made on the other app, used here, revoked there.
    api.login("root@admins.test", "R00t#secret")
    worker.cookie = api.cookie
    made = worker.post("/api/tokens", {"admin": "helper@admins.test"})
    worker_token = BearerClient(worker.client.app, worker.settings, made.json["_data"]["token"])
    here = BearerClient(api.client.app, api.settings, made.json["_data"]["token"])
    assert (here.get("/api/domain/a.test").status_code, worker_token.get("/api/domain/a.test").status_code) == (200, 200)
    assert api.delete(f"/api/token/{made.json['_data']['id']}").status_code == 200
    assert worker_token.get("/api/domain/a.test").status_code == 401
    # An admin disabled on one app: its session on the other ends at once.
    helper = other_client(tmp_path, directory)
    helper.login("helper@admins.test", "H3lper#pw")
    assert helper.get("/api/domain/a.test").status_code == 200
    assert api.put("/api/admin/helper@admins.test", {"accountStatus": "disabled"}).status_code == 200
    assert helper.get("/api/domain/a.test").status_code == 401
