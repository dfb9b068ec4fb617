"""LoginThrottle and the session purge on a changed password, on SQLite,
MariaDB and PostgreSQL (the log and sessions tables of each; see
tests/fixtures_sql.py).  The HTTP side is in tests/test_login.py."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from iredldap.db import tables as t
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.login_throttle import LoginThrottle, ThrottleRules
from iredldap.db.sessions import SessionStore

from .support import Clock

T0 = datetime(2031, 5, 6, 12, 0, 0)
RULES = ThrottleRules(max_failures=3, max_failures_per_address=5, window=600, backoff_start=10,
                      known_address_days=30)


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def db(iredadmin_db, clock) -> IredadminDB:
    return IredadminDB(iredadmin_db.engine, clock=clock)


def fail(db, account, ip):
    return db.add_log(admin=account, ip=ip, event="login", loglevel="error", msg="[API] Login failed")


def succeed(db, account, ip):
    return db.add_log(admin=account, ip=ip, event="login", loglevel="info", msg="[API] Login")


def test_counters(db, clock):
    throttle = LoginThrottle(db, RULES)
    a, b = "a@example.com", "b@example.com"
    succeed(db, a, "192.0.2.1")                       # a's usual address
    clock.advance(3600)
    for n in range(3):
        fail(db, a, f"203.0.113.{n}")                 # one per address: the account counts them
    assert throttle.wait(a, "203.0.113.9") == 10      # any address a never logged in from
    assert throttle.wait(a, "192.0.2.1") == 0         # its usual one
    assert throttle.wait(b, "203.0.113.0") == 0       # another account behind a guesser's address
    clock.advance(4)
    fail(db, a, "203.0.113.3")
    assert throttle.wait(a, "203.0.113.9") == 20      # doubled, from the newest failure
    clock.advance(20)
    assert throttle.wait(a, "203.0.113.9") == 0
    # Failures older than the window are forgotten.
    clock.advance(600)
    assert throttle.wait(a, "203.0.113.9") == 0


def test_pair_and_address_counters(db, clock):
    throttle = LoginThrottle(db, RULES)
    a = "a@example.com"
    succeed(db, a, "192.0.2.1")
    for _ in range(3):
        fail(db, a, "192.0.2.1")
    assert throttle.wait(a, "192.0.2.1") == 10        # known, but its own pair counts
    succeed(db, a, "192.0.2.1")
    assert throttle.wait(a, "192.0.2.1") == 0         # forgiven by the login
    for n in range(5):
        fail(db, f"x{n}@example.com", "198.51.100.1")  # spraying accounts from one address
    assert throttle.wait("new@example.com", "198.51.100.1") == 10
    succeed(db, "old@example.com", "198.51.100.1")
    assert throttle.wait("old@example.com", "198.51.100.1") == 0


def test_own_row_is_not_counted_and_long_names_are_one_account(db, clock):
    throttle = LoginThrottle(db, RULES)
    long_name = "r" * 300                             # longer than log.admin: stored cut
    for n in range(3):
        fail(db, long_name, f"203.0.113.{n}")
    own = fail(db, long_name, "203.0.113.50")
    assert throttle.wait(long_name, "203.0.113.50", attempt_id=own) == 10
    other = fail(db, "c@example.com", "203.0.113.60")
    assert throttle.wait("c@example.com", "203.0.113.60", attempt_id=other) == 0


@pytest.mark.parametrize("outcome, expected", [("info", 0), ("error", 10)])
def test_an_attempt_waits_for_an_earlier_one_in_progress(db, clock, outcome, expected):
    import threading
    import time

    from iredldap.db.login_throttle import ATTEMPT_MSG

    throttle = LoginThrottle(db, RULES)
    a, ip = "a@example.com", "203.0.113.1"
    for _ in range(2):
        fail(db, a, ip)
    earlier = db.add_log(admin=a, ip=ip, event="login", loglevel="error", msg=ATTEMPT_MSG)
    ours = db.add_log(admin=a, ip=ip, event="login", loglevel="error", msg=ATTEMPT_MSG)
    later = db.add_log(admin=a, ip=ip, event="login", loglevel="error", msg=ATTEMPT_MSG)   # not waited for
    # The earlier one would be the third failure: ours must know how it ends.
    ender = threading.Timer(0.3, lambda: db.update_log(earlier, admin=a, loglevel=outcome, msg="ended"))
    started = time.monotonic()
    ender.start()
    try:
        assert throttle.wait(a, ip, attempt_id=ours) == expected
    finally:
        ender.join()
    assert time.monotonic() - started >= 0.3


def session_admins(db) -> list[str]:
    import json

    with db.engine.connect() as conn:
        return sorted(json.loads(r.data)["admin"] for r in conn.execute(select(t.sessions.c.data)))


def test_sessions_end_on_a_changed_password(db):
    store = SessionStore(db, "k" * 20, 1800)
    store.start(admin="a@x.test", dn="mail=a@x.test,ou=Users,domainName=x.test,o=domains,dc=ex", ip="192.0.2.1")
    second = store.start(admin="a@x.test", dn="mail=a@x.test,ou=Users,domainName=x.test,o=domains,dc=ex",
                         ip="192.0.2.2")
    store.start(admin="b@x.test", dn="mail=b@x.test,ou=Users,domainName=x.test,o=domains,dc=ex", ip="192.0.2.1")
    store.start(admin="s@x.test", dn="mail=s@x.test,o=domainAdmins,dc=ex", ip="192.0.2.1")
    store.start(admin="aa@x.test", dn="mail=aa@x.test,ou=Users,domainName=x.test,o=domains,dc=ex", ip="192.0.2.1")
    store.start(admin="c@y.test", dn="mail=c@y.test,ou=Users,domainName=y.test,o=domains,dc=ex", ip="192.0.2.1")
    keep = store.resolve(second)

    assert store.end_all_of("A@x.test", keep=keep) == 1
    assert session_admins(db) == ["a@x.test", "aa@x.test", "b@x.test", "c@y.test", "s@x.test"]
    assert store.resolve(second) is not None

    assert store.end_all_in("x.test", "domainName=x.test, o=domains, dc=ex", skip=frozenset({"AA@x.test"})) == 2
    assert session_admins(db) == ["aa@x.test", "c@y.test", "s@x.test"]
