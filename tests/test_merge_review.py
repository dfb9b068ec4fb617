"""Hostile review of the merged per-request work: the SQL request scope
(iredldap.db.engine), numberOfUsers through the counter increment, server
pinning per request and the lean decoding of search results.  Asserts on
pool checkouts, rows and entries actually written."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from iredldap.db import engine as db_engine
from iredldap.directory.connection import LEVEL

from .conftest import build_app
from .support import ApiClient

PW = "Secr3t#pass"


def checked_out(*databases) -> int:
    return sum(d.database.engine.pool.checkedout() for d in databases)


# -- RequestScope --------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
def test_no_connection_is_left_out_after_failing_requests(api, app, directory, factory, iredadmin, settings, monkeypatch):
    factory.domain("a.test")
    anonymous = ApiClient(app, settings)

    def boom(*args, **kwargs):
        raise RuntimeError("responder blew up")

    for _ in range(20):
        assert anonymous.get("/api/domains").status_code == 401           # short-circuited by Authentication
        assert api.get("/api/nosuchthing").status_code == 404              # no route
        assert api.post("/api/user/x@a.test", {"password": "x" * (2 << 20)}).status_code == 413
        assert api.post("/api/user/bad address@a.test", {"password": PW}).status_code == 400
        assert checked_out(iredadmin) == 0
        assert getattr(db_engine._scope, "held", None) is None
    with monkeypatch.context() as patch:
        patch.setattr(directory, "paged_search", boom)     # the listing's read, after the login's
        for _ in range(5):
            assert api.get("/api/domains").status_code == 500
            assert checked_out(iredadmin) == 0
            assert getattr(db_engine._scope, "held", None) is None
    assert api.get("/api/domains").status_code == 200


@pytest.mark.parametrize("backend", ["mock"])
def test_a_failing_statement_leaves_the_next_request_a_clean_connection(api, app, factory, iredadmin, settings):
    """A write refused by SQLite (the file locked by another writer) is an
    error for that request only; the next one works, nothing is held."""
    factory.domain("a.test")
    path = settings.sql_iredadmin_url.split("sqlite:///", 1)[1]
    iredadmin.database.engine.dispose()
    locker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        engine = iredadmin.database.engine
        # A short busy timeout for the app's connections, so the lock fails fast.
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def short(dbapi_conn, record):
            dbapi_conn.execute("PRAGMA busy_timeout = 100")
        engine.dispose()
        failed = [api.post("/api/tokens", {"name": f"t{i}"}).status_code for i in range(5)]
        assert all(s >= 500 or s == 401 for s in failed), failed
        assert checked_out(iredadmin) == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    r = api.post("/api/tokens", {"name": "after"})
    assert r.status_code in (200, 201), r.text
    assert checked_out(iredadmin) == 0
    names = [row["name"] for row in api.get("/api/tokens").json["_data"]]
    assert names == ["after"], names


@pytest.mark.parametrize("backend", ["mock"])
def test_logout_and_revocation_on_one_instance_count_at_once_on_the_other(api, app, directory, factory, iredadmin,
                                                                          settings, sqlite_templates, global_admin):
    other = build_app(settings, directory, iredadmin.__class__(settings.sql_iredadmin_url), sqlite_templates)
    there = ApiClient(other, settings)
    here = ApiClient(app, settings)
    here.login(*global_admin)
    there.cookie = here.cookie
    assert there.get("/api/domains").status_code == 200
    assert here.post("/api/logout").status_code == 200
    assert there.get("/api/domains").status_code == 401
    # token revoked on one, refused by the other
    r = api.post("/api/tokens", {"name": "shared"})
    token, token_id = r.json["_data"]["token"], r.json["_data"]["id"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert there.get("/api/domains", headers=bearer).status_code == 200
    assert api.delete(f"/api/token/{token_id}").status_code == 200
    assert there.get("/api/domains", headers=bearer).status_code == 401
    # an admin disabled through one is out on the other
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=[])
    boss = ApiClient(other, settings)
    boss.login("boss@admins.test", "B0ss#secret")
    assert boss.get("/api/domains").status_code == 200
    assert api.put("/api/admin/boss@admins.test", {"accountStatus": "disabled"}).status_code == 200
    assert boss.get("/api/domains").status_code in (401, 403)


@pytest.mark.parametrize("backend", ["mock"])
def test_threads_each_use_their_own_lent_connection(api, app, factory, iredadmin, settings, global_admin):
    factory.domain("a.test")
    seen: dict[int, set[int]] = {}
    original = db_engine.Database._connect
    lock = threading.Lock()
    import contextlib

    @contextlib.contextmanager
    def spy(self, _original=original):
        with _original(self) as conn:
            with lock:
                seen.setdefault(id(conn.connection.dbapi_connection), set()).add(threading.get_ident())
            yield conn
    db_engine.Database._connect = spy   # type: ignore[method-assign]
    try:
        clients = [ApiClient(app, settings) for _ in range(3)]
        for c in clients:
            c.login(*global_admin)
        errors: list = []

        def run(c):
            for _ in range(15):
                s = c.get("/api/domains").status_code
                if s != 200:
                    errors.append(s)
        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
    finally:
        db_engine.Database._connect = original   # type: ignore[method-assign]
    assert checked_out(iredadmin) == 0
