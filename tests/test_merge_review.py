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
from .support import ApiClient, parallel as run_in_parallel

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


# -- numberOfUsers through the increment ------------------------------------------------

def users_in(factory, domain):
    from iredldap.directory.tree import f
    return sorted(e.first("mail").lower() for e in factory.search(
        factory.tree.container(domain, "Users"), f("(&(objectClass=mailUser)(!(mail=@%s)))", domain),
        scope=LEVEL, attrs=("mail",)))


def counter(factory, domain):
    return factory.entry(factory.tree.domain(domain)).first("domainCurrentUserNumber")


@pytest.mark.slapd
def test_parallel_creates_and_a_delete_into_two_free_places(slapd_directory, settings, iredadmin, sqlite_templates):
    from .support import Factory
    factory = Factory(slapd_directory, settings)
    factory.global_admin("root@admins.test", "R00t#secret")
    app = build_app(settings, slapd_directory, iredadmin, sqlite_templates)
    for rnd in range(4):
        domain = f"p{rnd}.test"
        factory.domain(domain, numberOfUsers=4)
        root = ApiClient(app, settings)
        root.login("root@admins.test", "R00t#secret")
        for name in ("old1", "old2"):
            assert root.post(f"/api/user/{name}@{domain}", {"password": PW}).status_code == 201
        assert counter(factory, domain) == "2"
        calls = [("POST", f"/api/user/new{i}@{domain}", {"password": PW}) for i in range(6)]
        calls.insert(3, ("DELETE", f"/api/user/old1@{domain}", None))
        statuses = run_in_parallel(app, settings, calls, ("root@admins.test", "R00t#secret"), seconds=60)
        assert statuses[3] == 200, statuses
        created = sorted(calls[i][1].rsplit("/", 1)[1] for i, s in enumerate(statuses) if i != 3 and s == 201)
        assert all(s in (201, 403, 409, 400) for i, s in enumerate(statuses) if i != 3), statuses
        have = users_in(factory, domain)
        assert have == sorted([f"old2@{domain}", *created]), (statuses, have)
        assert 2 <= len(created) <= 3 and len(have) <= 4, (statuses, have)
        assert counter(factory, domain) == str(len(have)), (statuses, have)


@pytest.mark.parametrize("backend", ["mock", "slapd"])
def test_a_create_failing_after_its_increment_leaves_the_counter_right(api, factory, monkeypatch):
    from iredldap.directory.addresses import Addresses as AddressStore
    from iredldap.errors import AlreadyExists
    factory.domain("c.test", numberOfUsers=3)
    assert api.post("/api/user/one@c.test", {"password": PW}).status_code == 201
    assert counter(factory, "c.test") == "1"

    def lost(self, mine, addresses, *more):
        raise AlreadyExists(f"{addresses[0]} is already used by another account")
    with monkeypatch.context() as patch:
        patch.setattr(AddressStore, "claim", lost)     # a racing holder won, after this create's increment
        for i in range(3):
            assert api.post(f"/api/user/two{i}@c.test", {"password": PW}).status_code == 409
    assert users_in(factory, "c.test") == ["one@c.test"]
    assert counter(factory, "c.test") == "1"
    # a plain duplicate (refused before anything is written) and one through an alias
    assert api.post("/api/user/one@c.test", {"password": PW}).status_code == 409
    assert api.post("/api/alias/al@c.test", {}).status_code == 201
    assert api.post("/api/user/al@c.test", {"password": PW}).status_code == 409
    assert counter(factory, "c.test") == "1"
    for name in ("two", "three"):
        assert api.post(f"/api/user/{name}@c.test", {"password": PW}).status_code == 201
    r = api.post("/api/user/four@c.test", {"password": PW})
    assert r.status_code == 403, r.text
    assert users_in(factory, "c.test") == ["one@c.test", "three@c.test", "two@c.test"]
    assert counter(factory, "c.test") == "3"


# -- lean decoding --------------------------------------------------------------------

PHOTO = bytes(range(256)) + b"\xff\xfe\x00\x80 not utf-8 \xc3"


@pytest.mark.parametrize("backend", ["mock", "slapd"])
def test_binary_many_values_odd_case_and_a_referral_through_export_and_get(api, factory, directory, backend):
    import base64
    import re
    factory.domain("odd.test")
    factory.user("pic@odd.test")
    dn = factory.tree.user("pic@odd.test")
    many = [f"fw{i}@far.test" for i in range(1500)]
    directory.modify(dn, {"JPEGphoto": [("MODIFY_ADD", [PHOTO])],
                          "MAILforwardingADDRESS": [("MODIFY_ADD", many)],
                          "DESCRIPTION": [("MODIFY_ADD", ["Grüße \u2028 line"])]})
    referral = f"cn=elsewhere,{factory.tree.container('odd.test', 'Users')}"
    if backend == "slapd":
        # A referral object among the users: a subtree search hands back a continuation reference.
        directory._connection().add(referral, ["referral", "extensibleObject"],
                                    {"ref": ["ldap://127.0.0.1:1/dc=elsewhere"], "cn": "elsewhere"})
    try:
        _read_the_odd_entry(api, directory, dn, many)
    finally:
        if backend == "slapd":      # (ManageDsaIT: the referral object itself; the tree's wipe cannot see it)
            directory._connection().delete(referral, controls=[("2.16.840.1.113730.3.4.2", True, None)])


def _read_the_odd_entry(api, directory, dn, many):
    import base64
    import re
    r = api.get("/api/user/pic@odd.test")
    assert r.status_code == 200, r.text
    r = api.get("/api/users/odd.test")
    assert r.status_code == 200, r.text
    assert [u["mail"] for u in r.json["_data"]] == [["pic@odd.test"]]   # (iRedAdmin: values as lists)
    r = api.get("/api/ldif/domain/odd.test")
    assert r.status_code == 200, r.text
    text = r.content.decode("ascii")
    # LDIF folds long lines: unfold before reading the values.
    unfolded = re.sub(r"\n ", "", text)
    photo = [line for line in unfolded.splitlines() if line.lower().startswith("jpegphoto::")]
    assert len(photo) == 1, photo
    assert base64.b64decode(photo[0].split("::", 1)[1].strip()) == PHOTO
    forwards = {line.split(": ", 1)[1] for line in unfolded.splitlines()
                if line.lower().startswith("mailforwardingaddress: ")}
    assert set(many) <= forwards
    assert "elsewhere" not in text
    # and read back through the service: exact bytes, the values all there
    entry = next(e for e in directory.paged_search(dn, "(objectClass=*)", scope=0, attrs=("*",), raw=True))
    got = {k.lower(): v for k, v in entry.attrs.items()}
    assert got["jpegphoto"] == [PHOTO] and len(got["mailforwardingaddress"]) == 1500
    e = directory.get(dn, attrs=("MAILFORWARDINGADDRESS", "jpegPHOTO"))
    assert e is not None and len(e.get("mailForwardingAddress")) == 1500 and e.get("jpegphoto")


@pytest.mark.parametrize("backend", ["mock"])
def test_a_client_gone_half_way_through_its_body_leaves_no_connection_out(api, app, factory, iredadmin, settings):
    """Over a real socket (wsgiref on 127.0.0.1): the session is read (a
    connection lent), then the body ends early as the client hangs up."""
    import socket
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass
    factory.domain("a.test")
    factory.user("john@a.test")
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    server.timeout = 5
    port = server.server_address[1]
    cookie = f"{settings.session_cookie_name}={api.cookie}"
    try:
        for _ in range(3):
            done = threading.Thread(target=server.handle_request, daemon=True)
            done.start()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall((f"PUT {settings.url_prefix}/api/user/john@a.test HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                           f"Content-Length: 1000\r\n\r\nname=Jo").encode())
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:200]
            assert b'"INVALID_REQUEST"' in answer and b"1000 bytes" in answer
            done.join(10)
            assert not done.is_alive()
            assert checked_out(iredadmin) == 0
    finally:
        server.server_close()
    # A body shorter than its Content-Length is refused, not applied in part.
    assert factory.entry(factory.tree.user("john@a.test")).get("cn") == ["john"]


# -- the journal row opened at once ----------------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
def test_a_journal_row_that_cannot_be_written_stops_the_batch_before_the_directory(api, factory, iredadmin,
                                                                                   settings):
    """iRedAdmin's database taken by another writer: the journaled create
    (and its counter increment) must not reach the directory."""
    from sqlalchemy import event
    factory.domain("j.test", numberOfUsers=5)
    assert api.post("/api/user/first@j.test", {"password": PW}).status_code == 201
    engine = iredadmin.database.engine

    @event.listens_for(engine, "connect")
    def short(dbapi_conn, record):
        dbapi_conn.execute("PRAGMA busy_timeout = 100")
    engine.dispose()
    path = settings.sql_iredadmin_url.split("sqlite:///", 1)[1]
    locker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")       # readers go on, writers wait (and give up)
        statuses = [api.post(f"/api/user/u{i}@j.test", {"password": PW}).status_code for i in range(3)]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert all(s == 503 for s in statuses), statuses
    assert users_in(factory, "j.test") == ["first@j.test"]
    assert counter(factory, "j.test") == "1"
    assert checked_out(iredadmin) == 0
    assert api.post("/api/user/u9@j.test", {"password": PW}).status_code == 201
    assert users_in(factory, "j.test") == ["first@j.test", "u9@j.test"] and counter(factory, "j.test") == "2"


@pytest.mark.slapd
def test_slapd_answers_each_increment_with_its_own_value_no_read_back(slapd_directory, settings, monkeypatch):
    """The ranking of racing creates rests on the Post-Read value: on a real
    slapd each increment gets the value it made, and none is read back."""
    from .support import Factory
    factory = Factory(slapd_directory, settings)
    factory.domain("inc.test")
    dn = factory.tree.domain("inc.test")
    slapd_directory.modify(dn, {"domainCurrentUserNumber": [("MODIFY_REPLACE", ["10"])]})
    reads: list = []
    original_get = type(slapd_directory).get
    monkeypatch.setattr(type(slapd_directory), "get",
                        lambda self, *a, **k: reads.append(a) or original_get(self, *a, **k))
    start = threading.Barrier(4)
    made: list = []

    def run():
        start.wait(timeout=30)
        for _ in range(5):
            made.append(slapd_directory.increment(dn, "domainCurrentUserNumber", 1))
    threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert reads == []
    assert sorted(made) == list(range(11, 31))
    assert original_get(slapd_directory, dn).first("domainCurrentUserNumber") == "30"
