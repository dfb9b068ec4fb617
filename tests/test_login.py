"""POST /api/login and /api/logout: who may log in, the session, the cookie, failed logins.

Assertions look at what was written: the `sessions` and `log` rows in the
iredadmin database and the Set-Cookie header, not only at status codes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from iredldap.model import passwords
from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.db import tables as t
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB

from .conftest import make_settings
from .support import ApiClient, Clock, assert_error, rows

PW = "Pa55#wörd"          # non-ASCII on purpose: hashed as UTF-8
WRONG = "Pa55#word"


# -- helpers -----------------------------------------------------------------

def sessions(db: IredadminDB) -> list[dict]:
    return rows(db, t.sessions)


def session_data(db: IredadminDB) -> list[dict]:
    return [json.loads(r["data"]) for r in sessions(db)]


def login_logs(db: IredadminDB, loglevel: str | None = None) -> list[dict]:
    return [r for r in rows(db, t.log)
            if r["event"] == "login" and (loglevel is None or r["loglevel"] == loglevel)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def set_atime(db: IredadminDB, when: datetime) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(t.sessions).values(atime=when))


def other_client(tmp_path, directory, iredadmin=None, **overrides) -> ApiClient:
    """A client of another app on the same directory and database (another worker, a restart,
    or the same service with other settings)."""
    settings = make_settings(tmp_path, **overrides)
    db = iredadmin or IredadminDB(make_engine(settings.sql_iredadmin_url))
    return ApiClient(create_app(settings, Backends(directory=directory, iredadmin=db)), settings)


def set_password(directory, dn: str, value: str) -> None:
    directory.modify(dn, {"userPassword": [("MODIFY_REPLACE", [value])]})


@pytest.fixture
def tree(settings):
    return tree_of(settings)


# -- who may log in ----------------------------------------------------------

def test_standalone_global_admin_logs_in(client, global_admin, iredadmin, tree):
    mail, password = global_admin
    result = client.post("/api/login", {"username": mail, "password": password})

    assert result.status_code == 200, result.text
    assert result.json == {"_success": True}
    assert client.cookie
    [data] = session_data(iredadmin)
    assert data["admin"] == mail
    assert data["dn"] == tree.admin(mail)
    assert data["ip"] == "127.0.0.1"
    [entry] = login_logs(iredadmin)
    assert (entry["admin"], entry["ip"], entry["loglevel"]) == (mail, "127.0.0.1", "info")
    assert client.get("/api/domains").status_code == 200


def test_username_is_case_insensitive(client, global_admin, iredadmin):
    mail, password = global_admin
    client.login(mail.upper(), password)
    assert session_data(iredadmin)[0]["admin"] == mail


def test_mail_user_with_domain_global_admin_logs_in(client, factory, iredadmin, tree):
    factory.domain("x.test")
    factory.domain("other.test")
    factory.users.create_global_admin("postmaster@x.test", password_hash=passwords.hash_password(PW, "SSHA512"))

    client.login("postmaster@x.test", PW)

    [data] = session_data(iredadmin)
    assert data["admin"] == "postmaster@x.test"
    assert data["dn"] == tree.user("postmaster@x.test")
    # Global: a domain it is not listed on is visible.
    assert client.get("/api/domain/other.test").status_code == 200
    names = client.get("/api/domains", {"name_only": "yes"}).json["_data"]
    assert sorted(names) == ["other.test", "x.test"]


def test_mail_user_with_domainadmin_service_is_a_normal_admin(client, factory, iredadmin, tree, directory):
    factory.domain("x.test")
    factory.domain("other.test")
    factory.user("boss@x.test", PW, enabledService=["domainadmin"])
    directory.modify(tree.domain("x.test"), {"domainAdmin": [("MODIFY_ADD", ["boss@x.test"])]})

    client.login("boss@x.test", PW)

    assert session_data(iredadmin)[0]["dn"] == tree.user("boss@x.test")
    assert client.get("/api/domain/x.test").status_code == 200
    assert_error(client.get("/api/domain/other.test"), 403, "NOT_AUTHORIZED")
    assert client.get("/api/domains", {"name_only": "yes"}).json["_data"] == ["x.test"]


def test_standalone_normal_admin_logs_in(client, factory, iredadmin, tree):
    factory.domain("x.test")
    factory.domain("other.test")
    mail, password = factory.normal_admin("helper@admins.test", "H3lper#pw", domains=["x.test"])

    client.login(mail, password)

    [data] = session_data(iredadmin)
    assert (data["admin"], data["dn"]) == (mail, tree.admin(mail))
    assert client.get("/api/domain/x.test").status_code == 200
    assert_error(client.get("/api/domain/other.test"), 403, "NOT_AUTHORIZED")


def _disabled_admin(factory, directory, tree):
    mail, _ = factory.global_admin("off@admins.test", PW)
    directory.modify(tree.admin(mail), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})
    return mail


def _plain_user(factory, directory, tree):
    factory.domain("x.test")
    factory.user("joe@x.test", PW)
    return "joe@x.test"


def _admin_of_disabled_domain(factory, directory, tree):
    # What disabling a domain writes: accountStatus on the domain, domainStatus on its accounts.
    factory.domain("x.test")
    mail = "boss@x.test"
    factory.users.create_global_admin(mail, password_hash=passwords.hash_password(PW, "SSHA"))
    directory.modify(tree.domain("x.test"), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})
    directory.modify(tree.user(mail), {"domainStatus": [("MODIFY_ADD", ["disabled"])]})
    return mail


def _wrong_password(factory, directory, tree):
    mail, _ = factory.global_admin("root@admins.test", "Another#pw1")
    return mail


REFUSED = {
    "wrong password": _wrong_password,
    "unknown user": lambda factory, directory, tree: "nobody@admins.test",
    "disabled admin": _disabled_admin,
    "mail user who is no admin": _plain_user,
    "admin whose domain is disabled": _admin_of_disabled_domain,
    "username not an address": lambda factory, directory, tree: "root",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_login_refused(case, client, factory, directory, tree, iredadmin):
    username = REFUSED[case](factory, directory, tree)

    result = client.post("/api/login", {"username": username, "password": PW})

    assert_error(result, 401, "INVALID_CREDENTIALS")
    assert client.cookie is None
    assert sessions(iredadmin) == []
    [entry] = login_logs(iredadmin)
    assert entry["loglevel"] == "error"
    assert entry["admin"] == username
    assert entry["ip"] == "127.0.0.1"
    assert PW not in (entry["msg"] or "")


def test_missing_or_empty_password_is_bad_input(client, global_admin, iredadmin):
    assert_error(client.post("/api/login", {"username": global_admin[0]}), 400, "MISSING_PARAMETER")
    assert_error(client.post("/api/login", {"username": global_admin[0], "password": ""}), 400, "PW_EMPTY")
    assert sessions(iredadmin) == []


# -- every stored hash scheme ------------------------------------------------
# Fixed values made with Dovecot's `doveadm pw -p 'Pa55#wörd'` (and one $2b$
# bcrypt as Python's bcrypt writes it), so the test does not trust our own
# hashing code.

_SHA512_CRYPT = ("$6$Y6m4RkiEEEVwr386$WD33DHHM/XAkW4P/5gU9M8hDMr9YovxYefxTHmVHi7EpyaPrTWHoN5jmP6tNFY86"
                 ".igPf2IeqrgNFxijL4KDj1")
_MD5_CRYPT = "$1$H5aUG0yk$IS6evshr8KEyemGlGgfRy/"

HASHES = {
    "SSHA512": "{SSHA512}SFCO1l7MD0U10dHGJ93x3ktpIx++9J4zed/x4fVcAh6PbXXRPK3OFim3OECm9fw68LX7Zx1md8gH+YlGrBZ15TrLPU0=",
    "SSHA": "{SSHA}nA874fkrdrWYvEGdPSITdUyrpypuS1CS",
    "SHA512": "{SHA512}KhnDDroGfrrQQmL1H9ez/xVKQht3CRWY28upUzV2UWxvPk3x2GeDFcwDsDraC4FMXKoNx1AkeiOFc04alRGQ3Q==",
    "CRYPT-bcrypt-2b": "{CRYPT}$2b$04$5lV4CU/z/VIkhtQ.kfTmYuhoM.R0WiDVNfyS.1JqHbDNcTh.UIatq",
    "CRYPT-bcrypt-2y": "{CRYPT}$2y$05$ezWyAe01dw/nW8MkKLRRyeVrNCuKz32G8G1sObhafKDT6ar.6iOO.",
    "BLF-CRYPT": "{BLF-CRYPT}$2y$04$LR7aL4hVcEu1YVBYg8dfbug514cPlhs/J0J.TXlGYpeye6NIebcou",
    "CRYPT-sha512": "{CRYPT}" + _SHA512_CRYPT,
    "SHA512-CRYPT": "{SHA512-CRYPT}" + _SHA512_CRYPT,
    "CRYPT-md5": "{CRYPT}" + _MD5_CRYPT,
    "MD5-crypt": "{MD5}$1$6UlDFEmr$BYHG6yZ/fXWBC.LijZml.1",
    "MD5-ldap": "{MD5}j62WJ7uzsEbHiZ6wni2ywA==",
    "PLAIN-MD5": "{PLAIN-MD5}8fad9627bbb3b046c7899eb09e2db2c0",
    "PLAIN": "{PLAIN}" + PW,
}


def _lower_prefix(value: str) -> str:
    prefix, _, rest = value.partition("}")
    return prefix.lower() + "}" + rest


CASES = [pytest.param(v, id=k) for k, v in HASHES.items()] + \
        [pytest.param(_lower_prefix(v), id=k + "-lower") for k, v in HASHES.items()]


@pytest.mark.parametrize("stored", CASES)
def test_every_stored_scheme_logs_in(stored, client, global_admin, directory, tree, iredadmin):
    mail = global_admin[0]
    set_password(directory, tree.admin(mail), stored)

    assert_error(client.post("/api/login", {"username": mail, "password": WRONG}), 401, "INVALID_CREDENTIALS")
    result = client.post("/api/login", {"username": mail, "password": PW})

    assert result.status_code == 200, (stored, result.text)
    assert len(sessions(iredadmin)) == 1


def test_scheme_of_a_mail_user_admin(client, factory, directory, tree):
    factory.domain("x.test")
    mail = "postmaster@x.test"
    factory.users.create_global_admin(mail, password_hash="{PLAIN}x")
    set_password(directory, tree.user(mail), HASHES["BLF-CRYPT"])
    client.login(mail, PW)


# -- the cookie ----------------------------------------------------------------

def test_cookie_attributes_and_no_plain_token_stored(client, global_admin, iredadmin, settings):
    result = client.login(*global_admin)

    cookie = result.cookies[settings.session_cookie_name]
    assert cookie.http_only
    assert cookie.path == "/"
    assert not cookie.secure            # curl over plain http must send it back
    assert cookie.max_age is None and cookie.expires is None    # a session cookie
    raw = result.headers["set-cookie"]
    token = cookie.value
    # A bare token: nothing a cookie jar would quote or mangle.
    assert raw.startswith(f"{settings.session_cookie_name}={token};")
    assert len(token) >= 32 and all(c.isalnum() or c in "-_" for c in token)
    [row] = sessions(iredadmin)
    assert token not in row["session_id"]
    assert token not in row["data"]
    assert PW not in row["data"] and global_admin[1] not in row["data"]


def test_cookie_secure_when_configured(tmp_path, directory, iredadmin, global_admin, settings):
    client = other_client(tmp_path, directory, iredadmin, session_cookie_secure="yes")
    result = client.login(*global_admin)
    assert result.cookies[settings.session_cookie_name].secure


def test_session_valid_on_another_worker_and_after_restart(tmp_path, client, directory, global_admin):
    client.login(*global_admin)

    # A second app with its own engine on the same database file.
    worker = other_client(tmp_path, directory)
    worker.cookie = client.cookie
    result = worker.get("/api/domains")
    assert result.status_code == 200, result.text


def test_session_not_valid_with_another_secret_key(tmp_path, client, directory, global_admin):
    client.login(*global_admin)
    stranger = other_client(tmp_path, directory, secret_key="a-completely-different-key")
    stranger.cookie = client.cookie
    assert_error(stranger.get("/api/domains"), 401, "LOGIN_REQUIRED")


def test_forged_or_junk_cookie_is_refused(client, global_admin):
    for junk in ("x", "A" * 43, "A" * 500):
        client.cookie = junk
        assert_error(client.get("/api/domains"), 401, "LOGIN_REQUIRED")


# -- idle timeout ----------------------------------------------------------------

@pytest.fixture
def short_client(tmp_path, directory, iredadmin, global_admin):
    """Logged in on an app whose sessions expire after 60 idle seconds."""
    client = other_client(tmp_path, directory, iredadmin, session_timeout=60)
    client.login(*global_admin)
    return client


def test_idle_session_expires(short_client, iredadmin, global_admin):
    set_atime(iredadmin, utcnow() - timedelta(seconds=75))
    expired = short_client.cookie
    assert_error(short_client.get("/api/domains"), 401, "LOGIN_REQUIRED")
    # Logging in again works with the stale cookie still sent, and gives a new one.
    short_client.login(*global_admin)
    assert short_client.cookie != expired
    assert short_client.get("/api/domains").status_code == 200


def test_active_session_is_kept_alive(short_client, iredadmin):
    set_atime(iredadmin, utcnow() - timedelta(seconds=45))
    assert short_client.get("/api/domains").status_code == 200
    # The request moved atime forward: idle time counts from the last request.
    [row] = sessions(iredadmin)
    assert row["atime"] >= utcnow() - timedelta(seconds=5)
    set_atime(iredadmin, row["atime"] - timedelta(seconds=45))
    assert short_client.get("/api/domains").status_code == 200


def test_idle_sessions_are_purged_at_the_next_login(short_client, iredadmin, tmp_path, directory, global_admin):
    set_atime(iredadmin, utcnow() - timedelta(seconds=3600))
    old_key = sessions(iredadmin)[0]["session_id"]
    other = other_client(tmp_path, directory, iredadmin, session_timeout=60)
    other.login(*global_admin)
    assert [r["session_id"] for r in sessions(iredadmin)] != [old_key]
    assert len(sessions(iredadmin)) == 1


# -- logout ------------------------------------------------------------------------

def test_logout_ends_the_session(client, global_admin, iredadmin, settings):
    client.login(*global_admin)
    token = client.cookie
    assert len(sessions(iredadmin)) == 1

    result = client.post("/api/logout")

    assert result.status_code == 200 and result.json == {"_success": True}
    assert sessions(iredadmin) == []
    cleared = result.cookies[settings.session_cookie_name]
    assert cleared.value == "" and cleared.path == "/"
    assert cleared.expires is not None and cleared.expires <= datetime.now(timezone.utc)
    assert client.cookie is None
    client.cookie = token                       # a client that kept the old cookie
    assert_error(client.get("/api/domains"), 401, "LOGIN_REQUIRED")


def test_logout_ends_only_its_own_session(tmp_path, client, directory, global_admin, iredadmin):
    client.login(*global_admin)
    second = other_client(tmp_path, directory, iredadmin)
    second.login(*global_admin)
    assert len(sessions(iredadmin)) == 2
    client.post("/api/logout")
    assert len(sessions(iredadmin)) == 1
    assert second.get("/api/domains").status_code == 200


def test_logout_without_a_valid_session_still_clears_the_cookie(client, settings):
    client.cookie = "expired-or-made-up"
    result = client.post("/api/logout")
    assert result.status_code == 200, result.text
    cleared = result.cookies[settings.session_cookie_name]
    assert cleared.value == "" and cleared.expires is not None


# -- failed logins -------------------------------------------------------------------

@pytest.fixture
def strict_client(tmp_path, directory, iredadmin):
    return other_client(tmp_path, directory, iredadmin, login_max_failures=3, login_failure_window=600)


def test_too_many_failures_from_one_address(strict_client, global_admin, iredadmin, factory):
    mail, password = global_admin
    for _ in range(3):
        assert_error(strict_client.post("/api/login", {"username": mail, "password": "guess#1"}),
                     401, "INVALID_CREDENTIALS")

    result = strict_client.post("/api/login", {"username": mail, "password": password})

    assert_error(result, 429, "TOO_MANY_LOGIN_FAILURES")
    assert int(result.headers["retry-after"]) > 0
    assert sessions(iredadmin) == []
    failures = login_logs(iredadmin, "error")
    assert len(failures) == 3
    for row in failures:
        assert (row["admin"], row["ip"], row["event"]) == (mail, "127.0.0.1", "login")
        assert "guess#1" not in (row["msg"] or "")

    # Another admin behind the same address is not affected ...
    other = factory.global_admin("other@admins.test", "0ther#secret")
    strict_client.login(*other)
    [data] = session_data(iredadmin)
    assert (data["admin"], data["ip"]) == (other[0], "127.0.0.1")
    # ... but the guessed account is slowed on an address it never logged in from too.
    elsewhere = strict_client.post("/api/login", {"username": mail, "password": password},
                                   remote_addr="192.0.2.77")
    assert_error(elsewhere, 429, "TOO_MANY_LOGIN_FAILURES")


def test_failures_expire_after_the_window(strict_client, global_admin, iredadmin):
    mail, password = global_admin
    for _ in range(3):
        strict_client.post("/api/login", {"username": mail, "password": "guess#1"})
    assert_error(strict_client.post("/api/login", {"username": mail, "password": password}),
                 429, "TOO_MANY_LOGIN_FAILURES")

    with iredadmin.engine.begin() as conn:
        conn.execute(update(t.log).values(timestamp=utcnow() - timedelta(seconds=601)))

    assert strict_client.post("/api/login", {"username": mail, "password": password}).status_code == 200


def test_failures_counted_by_the_database_clock(tmp_path, directory, global_admin):
    """The failure window is measured with the same clock that stamps the log rows."""
    settings = make_settings(tmp_path, login_max_failures=2, login_failure_window=600)
    now = [datetime(2030, 1, 1, 12, 0, 0)]
    db = IredadminDB(make_engine(settings.sql_iredadmin_url), clock=lambda: now[0])
    db.create_tables()
    client = ApiClient(create_app(settings, Backends(directory=directory, iredadmin=db)), settings)
    mail, password = global_admin
    for _ in range(2):
        client.post("/api/login", {"username": mail, "password": "guess#1"})
    assert_error(client.post("/api/login", {"username": mail, "password": password}),
                 429, "TOO_MANY_LOGIN_FAILURES")
    now[0] += timedelta(seconds=601)
    assert client.post("/api/login", {"username": mail, "password": password}).status_code == 200


# -- throttling per account, per address and per pair ------------------------------------

@pytest.fixture
def clock():
    return Clock(datetime(2030, 1, 1, 12, 0, 0))


@pytest.fixture
def throttled(tmp_path, directory, clock):
    """An app with a hand-moved clock: 3 failures per account and pair, 6 per
    address, then 10 s doubling per further failure, at most 600 s."""
    settings = make_settings(tmp_path, login_max_failures=3, login_max_failures_per_address=6,
                             login_backoff_start=10, login_failure_window=600)
    db = IredadminDB(make_engine(settings.sql_iredadmin_url), clock=clock)
    db.create_tables()
    return ApiClient(create_app(settings, Backends(directory=directory, iredadmin=db)), settings), db


@pytest.fixture
def checked(monkeypatch):
    """Every password the login responder checks (password, stored hash)."""
    from iredldap.web.responders import login as login_module

    calls = []
    real = login_module.passwords.verify_password

    def spy(password, stored):
        calls.append((password, stored))
        return real(password, stored)

    monkeypatch.setattr(login_module.passwords, "verify_password", spy)
    return calls


def attempt(client, mail, password, ip):
    return client.post("/api/login", {"username": mail, "password": password}, remote_addr=ip)


def test_guesser_on_six_addresses_is_slowed_on_all_while_the_admin_logs_in(throttled, clock, checked,
                                                                            global_admin):
    client, db = throttled
    mail, password = global_admin
    office = "198.51.100.10"
    assert attempt(client, mail, password, office).status_code == 200     # its usual place
    checked.clear()

    guessers = [f"203.0.113.{n}" for n in range(1, 7)]
    results = [attempt(client, mail, f"guess#{round_}", ip) for round_ in range(5) for ip in guessers]

    # Only the first 3 of 30 were checked; the rest were refused without looking at the password.
    assert [r.status_code for r in results] == [401] * 3 + [429] * 27
    assert [p for p, _ in checked] == ["guess#0"] * 3
    assert {r.headers["retry-after"] for r in results[3:]} == {"10"}
    for r in results[3:]:
        assert_error(r, 429, "TOO_MANY_LOGIN_FAILURES")
    assert len(login_logs(db, "error")) == 3                # throttled attempts leave no row
    # The right password from a guesser's address (or any new one) is refused the same way, unchecked.
    checked.clear()
    for ip in (guessers[0], "192.0.2.200"):
        result = attempt(client, mail, password, ip)
        assert_error(result, 429, "TOO_MANY_LOGIN_FAILURES")
        assert result.headers["retry-after"] == "10"
    assert checked == []

    # The real admin at its usual place logs in meanwhile.
    result = attempt(client, mail, password, office)
    assert result.status_code == 200, result.text
    assert [d["ip"] for d in session_data(db)] == [office, office]

    # Retry-After is the time until an attempt is checked: not a second earlier ...
    clock.advance(9)
    result = attempt(client, mail, "guess#late", guessers[1])
    assert_error(result, 429, "TOO_MANY_LOGIN_FAILURES")
    assert result.headers["retry-after"] == "1"
    clock.advance(1)
    # ... then one more guess is checked, and the next wait doubles.
    assert_error(attempt(client, mail, "guess#late", guessers[1]), 401, "INVALID_CREDENTIALS")
    result = attempt(client, mail, password, guessers[2])
    assert result.headers["retry-after"] == "20"
    clock.advance(20)
    assert attempt(client, mail, password, "192.0.2.200").status_code == 200


def test_a_guesser_behind_a_nat_address_locks_out_no_other_admin(throttled, clock, checked, factory, global_admin):
    client, db = throttled
    victim, victim_password = global_admin
    colleague = factory.global_admin("colleague@admins.test", "C0lleague#pw")
    nat = "203.0.113.50"

    results = [attempt(client, victim, f"guess#{n}", nat) for n in range(10)]

    assert [r.status_code for r in results] == [401] * 3 + [429] * 7
    # Another admin behind the same address, never seen before, logs in with its password.
    assert attempt(client, *colleague, nat).status_code == 200
    # The guessed account stays locked from there, right password or not, unchecked.
    checked.clear()
    assert_error(attempt(client, victim, victim_password, nat), 429, "TOO_MANY_LOGIN_FAILURES")
    assert checked == []
    assert [d["admin"] for d in session_data(db)] == [colleague[0]]


def test_spraying_many_accounts_from_one_address(throttled, clock, factory, global_admin):
    client, db = throttled
    mail, password = global_admin
    known = factory.global_admin("known@admins.test", "Kn0wn#secret")
    sprayer = "203.0.113.99"
    assert attempt(client, *known, sprayer).status_code == 200    # logged in from there before

    results = [attempt(client, f"user{n}@admins.test", "guess#1", sprayer) for n in range(8)]

    # 6 per address, whatever the accounts; then every unknown account waits there.
    assert [r.status_code for r in results] == [401] * 6 + [429] * 2
    assert_error(attempt(client, mail, password, sprayer), 429, "TOO_MANY_LOGIN_FAILURES")
    # An admin that logged in from this address before is held to its own pair only.
    assert attempt(client, *known, sprayer).status_code == 200
    # Elsewhere nothing is locked.
    assert attempt(client, mail, password, "192.0.2.1").status_code == 200


def test_own_typos_are_forgiven_by_a_successful_login(throttled, global_admin):
    client, db = throttled
    mail, password = global_admin
    ip = "198.51.100.10"
    for _ in range(2):
        assert_error(attempt(client, mail, "typo#1", ip), 401, "INVALID_CREDENTIALS")
    assert attempt(client, mail, password, ip).status_code == 200
    for _ in range(2):
        assert_error(attempt(client, mail, "typo#2", ip), 401, "INVALID_CREDENTIALS")
    assert attempt(client, mail, password, ip).status_code == 200


def test_refused_attempts_do_not_push_the_lock(throttled, clock, global_admin):
    """A lock ends when its Retry-After said, however many attempts were refused
    meanwhile, and never lasts longer than LOGIN_FAILURE_WINDOW."""
    client, db = throttled
    mail, password = global_admin
    ip = "203.0.113.7"
    waits, checked_at = [], []
    while clock.now < datetime(2030, 1, 1, 13, 0, 0):          # a guesser trying for an hour
        result = attempt(client, mail, "guess#1", ip)
        if result.status_code == 401:
            checked_at.append(clock.now)
            continue
        assert result.status_code == 429, result.text
        wait = int(result.headers["retry-after"])
        waits.append(wait)
        for _ in range(20):                                     # hammering changes nothing
            assert attempt(client, mail, password, ip).headers["retry-after"] == str(wait)
        clock.advance(wait)
    # 10 s after the third failure, doubling per further failure, at most the window.
    assert waits[:6] == [10, 20, 40, 80, 160, 320]
    assert max(waits) <= 600
    # Failures are counted over the window: in any 600 s a guesser gets at most
    # 3 + log2(600/10) + 1 checked guesses.
    for start in checked_at:
        assert len([t for t in checked_at if start <= t < start + timedelta(seconds=600)]) <= 10
    clock.advance(600)
    assert attempt(client, mail, password, ip).status_code == 200


def test_unicode_and_punycode_spellings_count_as_one_account(throttled, factory):
    client, db = throttled
    factory.domain("xn--bcher-kva.test")
    factory.users.create_global_admin("boss@xn--bcher-kva.test", password_hash=passwords.hash_password(PW, "SSHA"))
    for name in ("boss@bücher.test", "BOSS@xn--bcher-kva.test", "boss@Bücher.test"):
        assert_error(attempt(client, name, "guess#1", "203.0.113.1"), 401, "INVALID_CREDENTIALS")
    assert_error(attempt(client, "boss@xn--bcher-kva.test", PW, "203.0.113.2"), 429, "TOO_MANY_LOGIN_FAILURES")
    assert {r["admin"] for r in login_logs(db, "error")} == {"boss@xn--bcher-kva.test"}


def test_retry_after_holds_on_the_real_clock(tmp_path, directory, iredadmin, global_admin):
    import time

    client = other_client(tmp_path, directory, iredadmin, login_max_failures=1, login_backoff_start=2,
                          login_failure_window=4)
    mail, password = global_admin
    assert_error(client.post("/api/login", {"username": mail, "password": "guess#1"}), 401, "INVALID_CREDENTIALS")
    result = client.post("/api/login", {"username": mail, "password": password})
    assert_error(result, 429, "TOO_MANY_LOGIN_FAILURES")
    wait = int(result.headers["retry-after"])
    assert 1 <= wait <= 2
    time.sleep(wait)
    assert client.post("/api/login", {"username": mail, "password": password}).status_code == 200


def test_concurrent_guesses_are_counted_against_each_other(throttled, global_admin):
    from concurrent.futures import ThreadPoolExecutor

    client, db = throttled
    mail = global_admin[0]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: attempt(client, mail, f"guess#{n}", f"203.0.113.{n}").status_code,
                                 range(16)))
    assert statuses.count(401) <= 3 and statuses.count(401) + statuses.count(429) == 16
    assert len(login_logs(db, "error")) == statuses.count(401)


# -- the admin changes after logging in --------------------------------------------------

def test_session_of_disabled_admin_ends(client, global_admin, directory, tree, iredadmin):
    client.login(*global_admin)
    directory.modify(tree.admin(global_admin[0]), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})

    assert_error(client.get("/api/domains"), 401, "LOGIN_REQUIRED")
    assert sessions(iredadmin) == []


def test_session_of_demoted_mail_user_admin_ends(client, factory, directory, tree, iredadmin):
    factory.domain("x.test")
    mail = "postmaster@x.test"
    factory.users.create_global_admin(mail, password_hash=passwords.hash_password(PW, "SSHA"))
    client.login(mail, PW)
    directory.modify(tree.user(mail), {"domainGlobalAdmin": [("MODIFY_DELETE", [])],
                                       "enabledService": [("MODIFY_DELETE", ["domainadmin"])]})

    assert_error(client.get("/api/domains"), 401, "LOGIN_REQUIRED")
    assert sessions(iredadmin) == []


def test_global_admin_demoted_to_normal_loses_global_rights_at_once(client, factory, directory, tree):
    factory.domain("x.test")
    mail, password = factory.normal_admin("helper@admins.test", "H3lper#pw")
    directory.modify(tree.admin(mail), {"domainGlobalAdmin": [("MODIFY_ADD", ["yes"])]})
    client.login(mail, password)
    assert client.get("/api/domain/x.test").status_code == 200
    directory.modify(tree.admin(mail), {"domainGlobalAdmin": [("MODIFY_DELETE", [])]})
    assert_error(client.get("/api/domain/x.test"), 403, "NOT_AUTHORIZED")


# -- a changed password ends the admin's other sessions ------------------------------------

NEW_PW = "N3w#Passw0rd"


def logged_in(tmp_path, directory, iredadmin, mail, password, ip="127.0.0.1") -> ApiClient:
    client = other_client(tmp_path, directory, iredadmin)
    result = client.post("/api/login", {"username": mail, "password": password}, remote_addr=ip)
    assert result.status_code == 200, result.text
    return client


def alive(client) -> bool:
    status = client.get("/api/domains").status_code
    assert status in (200, 401, 403), status
    return status != 401


@pytest.fixture
def mail_user_admin(factory):
    factory.domain("x.test")
    mail = "postmaster@x.test"
    factory.users.create_global_admin(mail, password_hash=passwords.hash_password(PW, "SSHA"))
    return mail, PW


def test_new_password_of_a_mail_user_admin_ends_its_sessions(tmp_path, directory, iredadmin, api, mail_user_admin,
                                                             global_admin):
    first = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    second = logged_in(tmp_path, directory, iredadmin, *mail_user_admin, ip="192.0.2.8")

    assert api.put(f"/api/user/{mail_user_admin[0]}", {"password": NEW_PW}).status_code == 200

    assert not alive(first) and not alive(second)
    assert [d["admin"] for d in session_data(iredadmin)] == [global_admin[0]]
    assert alive(api)                                    # the changer's own session stays
    logged_in(tmp_path, directory, iredadmin, mail_user_admin[0], NEW_PW)


def test_new_password_hash_ends_sessions_too(tmp_path, directory, iredadmin, api, mail_user_admin):
    victim = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    result = api.put(f"/api/user/{mail_user_admin[0]}", {"password_hash": passwords.hash_password(NEW_PW, "SSHA")})
    assert result.status_code == 200, result.text
    assert not alive(victim)


def test_own_new_password_keeps_the_own_session_only(tmp_path, directory, iredadmin, mail_user_admin, global_admin):
    me = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    my_other = logged_in(tmp_path, directory, iredadmin, *mail_user_admin, ip="192.0.2.8")
    someone_else = logged_in(tmp_path, directory, iredadmin, *global_admin)

    assert me.put(f"/api/user/{mail_user_admin[0]}", {"password": NEW_PW}).status_code == 200

    assert alive(me) and not alive(my_other) and alive(someone_else)
    assert sorted(d["admin"] for d in session_data(iredadmin)) == sorted([mail_user_admin[0], global_admin[0]])


def test_other_changes_keep_the_sessions(tmp_path, directory, iredadmin, api, mail_user_admin, factory):
    victim = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    assert api.put(f"/api/user/{mail_user_admin[0]}", {"name": "Post Master"}).status_code == 200
    assert alive(victim)
    assert api.put("/api/users/x.test", {"language": "de_DE"}).status_code == 200
    assert alive(victim)


def test_new_password_of_a_standalone_admin_ends_its_sessions(tmp_path, directory, iredadmin, factory, api):
    mail, password = factory.global_admin("second@admins.test", "S3cond#secret")
    own = logged_in(tmp_path, directory, iredadmin, mail, password)
    other = logged_in(tmp_path, directory, iredadmin, mail, password, ip="192.0.2.8")

    # Its own change: the other session ends, this one stays.
    assert own.put(f"/api/admin/{mail}", {"password": NEW_PW}).status_code == 200
    assert alive(own) and not alive(other)
    # A change by another admin: every session of it ends; the changer's stays.
    assert api.put(f"/api/admin/{mail}", {"password": "Th1rd#secret"}).status_code == 200
    assert not alive(own) and alive(api)
    assert mail not in [d["admin"] for d in session_data(iredadmin)]


def test_admin_api_on_a_mail_user_admin_ends_its_sessions(tmp_path, directory, iredadmin, api, mail_user_admin):
    victim = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    assert api.put(f"/api/admin/{mail_user_admin[0]}", {"password": NEW_PW}).status_code == 200
    assert not alive(victim)


def test_bulk_password_ends_the_sessions_of_the_domains_admins(tmp_path, directory, iredadmin, api, factory,
                                                               mail_user_admin, global_admin, tree):
    factory.domain("y.test")
    factory.users.create_global_admin("boss@y.test", password_hash=passwords.hash_password(PW, "SSHA"))
    standalone = factory.global_admin("admin@x.test", "St4ndalone#pw")     # an address in x.test, not a user
    victim = logged_in(tmp_path, directory, iredadmin, *mail_user_admin)
    elsewhere = logged_in(tmp_path, directory, iredadmin, "boss@y.test", PW)
    not_a_user = logged_in(tmp_path, directory, iredadmin, *standalone)

    assert api.put("/api/users/x.test", {"password": NEW_PW}).status_code == 200

    assert not alive(victim)
    assert alive(elsewhere) and alive(not_a_user) and alive(api)
    # The changer being one of the users: its own session stays.
    me = logged_in(tmp_path, directory, iredadmin, mail_user_admin[0], NEW_PW)
    my_other = logged_in(tmp_path, directory, iredadmin, mail_user_admin[0], NEW_PW, ip="192.0.2.8")
    assert me.put("/api/users/x.test", {"password": "An0ther#pw"}).status_code == 200
    assert alive(me) and not alive(my_other)


# -- odd input -------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["root@", "@admins.test", "a@b@admins.test", "x@.test", "(x)@admins.test",
                                      "*", "*@admins.test", "a,b=c@admins.test", "r" * 300 + "@admins.test",
                                      "root@admins.test\x00", "root@admins.test)(mail=*"])
def test_odd_usernames_are_refused_not_500(username, client, global_admin, iredadmin):
    result = client.post("/api/login", {"username": username, "password": global_admin[1]})
    assert result.status_code in (400, 401), result.text
    assert result.json["_success"] is False
    assert sessions(iredadmin) == []


def test_login_with_json_body(client, global_admin, iredadmin):
    result = client.post("/api/login", json_body={"username": global_admin[0], "password": global_admin[1]})
    assert result.status_code == 200, result.text
    assert len(sessions(iredadmin)) == 1


def test_password_is_not_trimmed(client, global_admin, directory, tree):
    mail = global_admin[0]
    set_password(directory, tree.admin(mail), "{PLAIN} pad ded ")
    assert_error(client.post("/api/login", {"username": mail, "password": "pad ded"}), 401, "INVALID_CREDENTIALS")
    client.login(mail, " pad ded ")


def test_admin_of_an_idn_domain_logs_in_with_the_unicode_name(client, factory, iredadmin):
    factory.domain("xn--bcher-kva.test")
    factory.users.create_global_admin("boss@xn--bcher-kva.test", password_hash=passwords.hash_password(PW, "SSHA"))
    client.login("Boss@Bücher.test", PW)
    assert session_data(iredadmin)[0]["admin"] == "boss@xn--bcher-kva.test"


# -- backends down ---------------------------------------------------------------------

def test_directory_down_is_503_and_not_a_failed_login(tmp_path, settings, iredadmin, client, global_admin):
    from iredldap.directory.connection import Directory

    client.login(*global_admin)
    down = Directory("ldap://127.0.0.1:1", settings.ldap_bind_dn, settings.ldap_bind_password, timeout=2)
    broken = ApiClient(create_app(settings, Backends(directory=down, iredadmin=iredadmin)), settings)

    assert_error(broken.post("/api/login", {"username": global_admin[0], "password": global_admin[1]}),
                 503, "DIRECTORY_UNAVAILABLE")
    assert login_logs(iredadmin, "error") == []
    broken.cookie = client.cookie
    assert_error(broken.get("/api/domains"), 503, "DIRECTORY_UNAVAILABLE")
    assert len(sessions(iredadmin)) == 1            # the session survives the outage
    assert client.get("/api/domains").status_code == 200


def test_database_down_is_503(tmp_path, directory, global_admin):
    settings = make_settings(tmp_path, sql_iredadmin_url=f"sqlite:///{tmp_path}")  # a folder: cannot be opened
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    client = ApiClient(create_app(settings, Backends(directory=directory, iredadmin=db)), settings)
    result = client.post("/api/login", {"username": global_admin[0], "password": global_admin[1]})
    assert_error(result, 503, "DATABASE_UNAVAILABLE")
    client.cookie = "some-token"
    assert_error(client.get("/api/domains"), 503, "DATABASE_UNAVAILABLE")


def test_simultaneous_right_logins_are_queued_not_refused(throttled, global_admin):
    """Each attempt's row is written before its check: those still in progress
    must not count as failures against the admin's own parallel logins."""
    from concurrent.futures import ThreadPoolExecutor

    client, db = throttled
    mail, password = global_admin
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: attempt(client, mail, password, "198.51.100.10").status_code,
                                 range(24)))
    assert statuses == [200] * 24
    assert len(login_logs(db, "info")) == 24 and login_logs(db, "error") == []
