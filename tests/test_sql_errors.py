"""No SQL store lets a raw SQLAlchemy error out.

The stores reach their databases only through `iredldap.db.engine.Database`,
which turns whatever SQLAlchemy raises into `DatabaseUnavailable` /
`DatabaseError` and counts it.  Two checks hold that:

* every public method of every SQL store is called against a server that is
  down and against a database whose tables were dropped: only our errors
  come out, and (server down) each one is counted in the metrics.  A new
  public method without an entry in CALLS fails `test_every_public_method_is_called`;
* no module but `iredldap/db/engine.py` opens a connection or translates
  errors itself.
"""

from __future__ import annotations

import ast
import inspect
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import exc as sa_exc

from iredldap import metrics
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB
from iredldap.db.journal import JournalRow, JournalTable
from iredldap.db.login_throttle import LoginThrottle, ThrottleRules
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.db.sessions import Session, SessionStore
from iredldap.db.tokens import TokenStore
from iredldap.errors import DatabaseUnavailable, IredldapError
from iredldap.model.policy_addresses import domain_account, user_account

PACKAGE = Path(__file__).resolve().parent.parent / "iredldap"
# Nothing listens there.  (Without TLS: pymysql would load the system's CA
# certificates for every attempt, 20 ms of CPU each; the other modules' dead
# MariaDB URLs say the same.)
DEAD_SQL = "mysql+pymysql://root@127.0.0.1:1/nothing?ssl_disabled=1"

USER = user_account("user@example.com")
DOMAIN = domain_account("example.com")
SINCE = datetime(2024, 1, 1)
SESSION = Session(key="k" * 64, admin="admin@example.com", dn="mail=admin@example.com,o=domainAdmins", ip="192.0.2.1")
JOURNAL_ROW = JournalRow(id=1, kind="create", targets=["mail:a@example.com"], resume="back", state="running",
                         owner="worker", done=0, steps=1, sealed=False, created=SINCE, updated=SINCE, note="")

Call = Callable[[Any], Any]

# Store class -> public method -> a call that reaches the database.
CALLS: dict[type, dict[str, Call]] = {
    IredadminDB: {
        "reflect": lambda db: db.reflect(),
        "create_tables": lambda db: db.create_tables(),
        "ensure_own_tables": lambda db: db.ensure_own_tables(),
        "ping": lambda db: db.ping(),
        "create_session": lambda db: db.create_session("key", {"admin": "a@example.com"}),
        "load_session": lambda db: db.load_session("key", 600),
        "delete_session": lambda db: db.delete_session("key"),
        "delete_sessions_where": lambda db: db.delete_sessions_where(lambda _data: True, containing="a"),
        "purge_sessions": lambda db: db.purge_sessions(600),
        "add_log": lambda db: db.add_log(admin="a@example.com", ip="192.0.2.1", event="login"),
        "count_log": lambda db: db.count_log(event="login", since=SINCE),
        "update_log": lambda db: db.update_log(1, admin="a@example.com", loglevel="info", msg="m"),
        "delete_log": lambda db: db.delete_log(1),
        "failed_logins": lambda db: db.failed_logins(admin="a@example.com", ip="192.0.2.1", since=SINCE,
                                                     exclude_id=1, pending_msg="p"),
        "last_successful_login": lambda db: db.last_successful_login(admin="a@example.com", ip="192.0.2.1",
                                                                     since=SINCE),
        "record_deleted_mailboxes": lambda db: db.record_deleted_mailboxes(
            [{"username": "u@example.com", "domain": "example.com", "maildir": "example.com/u/"}],
            admin="a@example.com", keep_days=7),
        "unrecord_deleted_mailboxes": lambda db: db.unrecord_deleted_mailboxes(["u@example.com"], since=SINCE,
                                                                               admin="a@example.com"),
        "kept_maildirs": lambda db: db.kept_maildirs(["example.com/u/"]),
        "delete_used_quota": lambda db: db.delete_used_quota(usernames=["u@example.com"], domains=["example.com"]),
        "used_quota_usernames": lambda db: db.used_quota_usernames(),
        "deleted_mailbox_usernames": lambda db: db.deleted_mailbox_usernames(),
        "mailbox_facts": lambda db: db.mailbox_facts("u@example.com"),
        "read_log": lambda db: db.read_log(admin="a@example.com", since=SINCE, until=SINCE + timedelta(days=1)),
        "create_token": lambda db: db.create_token(token_hash="h", admin="a@example.com"),
        "find_token": lambda db: db.find_token(token_hash="h"),
        "list_tokens": lambda db: db.list_tokens(admin="a@example.com"),
        "revoke_token": lambda db: db.revoke_token(1),
        "revoke_tokens_of": lambda db: db.revoke_tokens_of(["a@example.com"]),
        "touch_token": lambda db: db.touch_token(1),
    },
    AmavisdDB: {
        "create_tables": lambda db: db.create_tables(),
        "ping": lambda db: db.ping(),
        "get_policy": lambda db: db.get_policy(USER),
        "set_policy": lambda db: db.set_policy(USER, {"bypass_spam_checks": "Y"}),
        "delete_policy": lambda db: db.delete_policy(USER),
        "list_addresses": lambda db: db.list_addresses(USER, "inbound", "whitelist"),
        "add_addresses": lambda db: db.add_addresses(USER, "inbound", "whitelist", ["friend@example.org"]),
        "remove_addresses": lambda db: db.remove_addresses(USER, "inbound", "whitelist", ["friend@example.org"]),
    },
    IredapdDB: {
        "create_tables": lambda db: db.create_tables(),
        "ping": lambda db: db.ping(),
        "has_max_rcpts": lambda db: db.has_max_rcpts(),
        "get_throttle": lambda db: db.get_throttle(USER, "outbound"),
        "set_throttle": lambda db: db.set_throttle(USER, "outbound", period=60, limits={"max_msgs": 10}),
        "delete_throttle": lambda db: db.delete_throttle(USER, "outbound"),
        "get_greylisting": lambda db: db.get_greylisting(DOMAIN),
        "all_greylisting": lambda db: db.all_greylisting(),
        "set_greylisting": lambda db: db.set_greylisting(DOMAIN, True),
        "delete_greylisting": lambda db: db.delete_greylisting(DOMAIN),
        "whitelisted_senders": lambda db: db.whitelisted_senders(DOMAIN),
        "change_whitelist": lambda db: db.change_whitelist(DOMAIN, add=["192.0.2.7"]),
        "spf_domains": lambda db: db.spf_domains(),
        "change_spf_domains": lambda db: db.change_spf_domains(add=["example.org"]),
    },
    JournalTable: {
        "ping": lambda j: j.ping(),
        "open": lambda j: j.open(kind="create", targets=["mail:a@example.com"], resume="back", owner="w",
                                 steps=[{"op": "add"}]),
        "append": lambda j: j.append(1, 1, [{"op": "add"}]),
        "truncate": lambda j: j.truncate(1, 0),
        "mark_done": lambda j: j.mark_done(1, 1),
        "set_state": lambda j: j.set_state(1, "open", note="n"),
        "claim": lambda j: j.claim(JOURNAL_ROW, "other"),
        "close": lambda j: j.close(1, "done"),
        "unfinished": lambda j: j.unfinished(),
        "get": lambda j: j.get(1),
        "steps": lambda j: j.steps(1),
    },
    PolicyAccounts: {
        "forget": lambda p: p.forget("example.com"),
        "accounts": lambda p: p.accounts(),
        "rename": lambda p: p.rename("old@example.com", "new@example.com"),
    },
    SessionStore: {
        "start": lambda s: s.start(admin="a@example.com", dn="mail=a@example.com,o=x", ip="192.0.2.1"),
        "resolve": lambda s: s.resolve("token"),
        "end": lambda s: s.end(SESSION),
        "end_all_of": lambda s: s.end_all_of("a@example.com"),
        "end_all_in": lambda s: s.end_all_in("example.com", "domainName=example.com,o=domains"),
    },
    TokenStore: {
        "create": lambda s: s.create(admin="a@example.com"),
        "resolve": lambda s: s.resolve("irdl_token"),
        "list": lambda s: s.list(),
        "get": lambda s: s.get(1),
        "revoke": lambda s: s.revoke(1),
    },
    LoginThrottle: {
        "wait": lambda s: s.wait("a@example.com", "192.0.2.1"),
    },
}

# Public methods that never touch a database.
NO_DATABASE = {(IredadminDB, "now"), (TokenStore, "hash"), (LoginThrottle, "delay")}

RULES = ThrottleRules(max_failures=3, max_failures_per_address=10, window=600, backoff_start=10,
                      known_address_days=0)


def _stores(iredadmin: Any, amavisd: Any, iredapd: Any) -> dict[type, Any]:
    return {
        IredadminDB: IredadminDB(iredadmin),
        AmavisdDB: AmavisdDB(amavisd),
        IredapdDB: IredapdDB(iredapd),
        JournalTable: JournalTable(iredadmin),
        PolicyAccounts: PolicyAccounts(AmavisdDB(amavisd), IredapdDB(iredapd)),
        SessionStore: SessionStore(IredadminDB(iredadmin), "secret", 600),
        TokenStore: TokenStore(IredadminDB(iredadmin), "secret"),
        LoginThrottle: LoginThrottle(IredadminDB(iredadmin), RULES),
    }


CASES = [(cls, name) for cls, calls in CALLS.items() for name in calls]


def test_every_public_method_is_called():
    for cls in CALLS:
        public = {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}
        untested = sorted(public - set(CALLS[cls]) - {name for c, name in NO_DATABASE if c is cls})
        assert not untested, f"{cls.__name__}: give these a call in CALLS (or NO_DATABASE): {untested}"


@pytest.fixture(scope="module")
def dead_stores():
    stores = _stores(make_engine(DEAD_SQL), DEAD_SQL, DEAD_SQL)
    yield stores
    stores[IredadminDB].engine.dispose()


@pytest.mark.parametrize("cls,name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_server_down_is_database_unavailable_and_counted(dead_stores, cls, name):
    before = metrics.sample("iredldap_sql_errors_total", {"code": DatabaseUnavailable.code})
    with pytest.raises(DatabaseUnavailable) as caught:
        CALLS[cls][name](dead_stores[cls])
    assert isinstance(caught.value.__cause__, sa_exc.SQLAlchemyError)
    assert metrics.sample("iredldap_sql_errors_total", {"code": DatabaseUnavailable.code}) >= before + 1


@pytest.fixture
def tableless_stores(tmp_path):
    """SQLite files that exist but hold no tables (dropped, or never made)."""
    urls = {}
    for name in ("iredadmin", "amavisd", "iredapd"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        with engine.connect() as conn:       # creates the empty file
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        urls[name] = f"sqlite:///{tmp_path / name}.db"
    return _stores(make_engine(urls["iredadmin"]), urls["amavisd"], urls["iredapd"])


@pytest.mark.parametrize("cls,name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_missing_tables_give_only_our_errors(tableless_stores, cls, name):
    # Some calls succeed (they skip or create missing tables); none may leak
    # a raw SQLAlchemy error.
    try:
        CALLS[cls][name](tableless_stores[cls])
    except IredldapError:
        pass


# -- structure: connections come from iredldap/db/engine.py alone -------------------

ENGINE_MODULE = PACKAGE / "db" / "engine.py"


def _own_connections(path: Path) -> list[str]:
    """Places in `path` that open a connection or translate errors themselves."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("connect", "raw_connection"):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr == "begin" and "engine" in ast.unparse(node.value):
            found.append(f"line {node.lineno}: engine .begin")
        elif isinstance(node, (ast.Name, ast.Attribute)) and \
                (node.id if isinstance(node, ast.Name) else node.attr) in ("translate_db_errors", "create_engine"):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if p != ENGINE_MODULE),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_engine_module_opens_connections(path):
    assert not _own_connections(path), f"{path.relative_to(PACKAGE.parent)}: {_own_connections(path)}"


def test_the_structure_check_sees_an_own_connection(tmp_path):
    # The test above must be able to fail.
    bad = tmp_path / "bad.py"
    bad.write_text("def f(self):\n    with self.engine.connect() as conn:\n        pass\n"
                   "    with self.source.engine.begin():\n        pass\n")
    assert len(_own_connections(bad)) == 2
