"""Test helpers: an API client that keeps the session cookie, entry factories,
the checks of an error answer and of rows written, and the preamble of the
policy tests (spam policy, throttling, greylisting, white/blacklists)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import urlencode

import falcon.testing
import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine

from iredldap.model import passwords
from iredldap.backends import tree_of
from iredldap.cli import main as cli_main
from iredldap.config import Settings
from iredldap.directory.admins import AdminStore
from iredldap.directory.connection import BASE, SUBTREE, Directory, Entry
from iredldap.directory.domains import DomainStore
from iredldap.directory.users import UserStore


class ApiClient:
    """falcon's TestClient keeps no cookies; this one does, like curl -b/-c."""

    def __init__(self, app, settings: Settings, *, remote_addr: str = "127.0.0.1"):
        self.client = falcon.testing.TestClient(app)
        self.settings = settings
        self.cookie: str | None = None
        self.remote_addr = remote_addr

    def request(self, method: str, path: str, params: dict | None = None, *, json_body=None, query=None,
                headers=None, remote_addr=None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"{self.settings.session_cookie_name}={self.cookie}"
        body = None
        if json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        elif params is not None:
            body = urlencode(params, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.settings.url_prefix + path
        result = self.client.simulate_request(method, url, body=body, headers=headers,
                                              query_string=urlencode(query, doseq=True) if query else None,
                                              remote_addr=remote_addr or self.remote_addr)
        cookie = result.cookies.get(self.settings.session_cookie_name)
        if cookie is not None:
            self.cookie = cookie.value or None
        return result

    def get(self, path, params=None, **kw):
        return self.request("GET", path, None, query=params, **kw)

    def post(self, path, params=None, **kw):
        return self.request("POST", path, params if params is not None else {}, **kw)

    def put(self, path, params=None, **kw):
        return self.request("PUT", path, params if params is not None else {}, **kw)

    def delete(self, path, params=None, **kw):
        return self.request("DELETE", path, params, **kw)

    def login(self, username: str, password: str):
        result = self.post("/api/login", {"username": username, "password": password})
        assert result.status_code == 200, result.text
        return result


class BearerClient(ApiClient):
    """An API client that sends a token instead of a cookie."""

    def __init__(self, app, settings, token: str):
        super().__init__(app, settings)
        self.token = token

    def request(self, method, path, params=None, *, headers=None, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return super().request(method, path, params, headers=headers, **kw)


class Factory:
    """Entries written straight into the directory (not through the API)."""

    def __init__(self, directory: Directory, settings: Settings):
        self.dir = directory
        self.settings = settings
        self.tree = tree_of(settings)
        self.domains = DomainStore(directory, self.tree, default_transport=settings.default_mta_transport)
        self.admins = AdminStore(directory, self.tree)
        self.users = UserStore(directory, self.tree, settings)

    def domain(self, domain: str, /, **values) -> str:
        self.domains.create(domain, values)
        return domain

    def global_admin(self, mail: str, password: str) -> tuple[str, str]:
        self.admins.create_standalone(mail, password_hash=passwords.hash_password(password, "SSHA"), is_global=True)
        return mail, password

    def normal_admin(self, mail: str, password: str, *, domains=(), settings=()) -> tuple[str, str]:
        self.admins.create_standalone(mail, password_hash=passwords.hash_password(password, "SSHA"))
        if settings:
            self.dir.modify(self.tree.admin(mail), {"accountSetting": [("MODIFY_ADD", list(settings))]})
        for domain in domains:
            self.dir.modify(self.tree.domain(domain), {"domainAdmin": [("MODIFY_ADD", [mail])]})
        return mail, password

    def user(self, mail: str, password: str = "Us3r#secret", **extra) -> str:
        return self.users.create(mail, {}, password_hash=passwords.hash_password(password, "SSHA"),
                                 extra={k: list(v) for k, v in extra.items()})

    def entry(self, dn: str) -> Entry | None:
        return self.dir.get(dn)

    def search(self, base: str, filterstr: str, *, scope=BASE, attrs=("*",)) -> list[Entry]:
        return self.dir.search(base, filterstr, scope=scope, attrs=attrs)


def cli_env(slapd, tmp_path, *, iredadmin_file: str = "iredadmin.sqlite") -> dict[str, str]:
    """IREDLDAP_* settings for running the CLI against a private slapd and SQLite files in `tmp_path`."""
    return {
        "IREDLDAP_LDAP_URI": slapd.uri,
        "IREDLDAP_LDAP_BIND_DN": slapd.root_dn,
        "IREDLDAP_LDAP_BIND_PASSWORD": slapd.root_password,
        "IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com",
        "IREDLDAP_SQL_IREDADMIN_URL": f"sqlite:///{tmp_path / iredadmin_file}",
        "IREDLDAP_SQL_AMAVISD_URL": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
        "IREDLDAP_SQL_IREDAPD_URL": f"sqlite:///{tmp_path / 'iredapd.sqlite'}",
        "IREDLDAP_SECRET_KEY": "x" * 20,
    }


def run_cli(env, *args):
    return CliRunner().invoke(cli_main, list(args), env=env, catch_exceptions=False)


class Clock:
    """A clock moved by hand (the database layer takes it in place of its own)."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


def assert_error(result, status: int, code: str, param: str | None = None) -> dict:
    """The answer is our JSON error: `status`, `_msg` == `code` with a reason
    (and the parameter named, when `param` is given); its body is returned."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"].startswith("application/json"), result.headers
    body = result.json
    assert body["_success"] is False, body
    assert body["_msg"] == code, result.text
    assert isinstance(body.get("reason"), str) and body["reason"], body
    if param:
        assert body.get("param") == param, result.text
    return body


def rows(db, table, *order_by) -> list[dict]:
    """The rows of `table` in the database of store `db` (`db.engine`), as dicts."""
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(*order_by))]


# Tables as reflected, by database kind and table names: the tests' databases
# are copies of a few templates, so each kind is reflected once, not once a call.
_REFLECTED: dict[tuple[str, tuple[str, ...]], MetaData] = {}


def every_row(engine: Engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every row of every table of the database (but the tables in `skip`),
    each table's rows as sorted reprs: what a test compares before and after
    a request that must change nothing."""
    if engine.dialect.name == "sqlite":
        return _every_sqlite_row(engine, skip)
    names = tuple(sorted(sa_inspect(engine).get_table_names()))
    meta = _REFLECTED.get((engine.dialect.name, names))
    if meta is None:
        meta = _REFLECTED[(engine.dialect.name, names)] = MetaData()
        meta.reflect(engine)
    with engine.connect() as conn:
        return {table.name: sorted(map(repr, conn.execute(select(table)).all()))
                for table in meta.sorted_tables if table.name not in skip}


def _every_sqlite_row(engine: Engine, skip: tuple[str, ...]) -> dict[str, list[str]]:
    # SQLite through its own driver: the same rows (as the driver gives
    # them), without an inspector and a compiled SELECT per table and call,
    # which cost most of a snapshot (the attack and policy tests take one
    # before and after every refused request).
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        names = [r[0] for r in cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {name: sorted(map(repr, cursor.execute(f'SELECT * FROM "{name}"').fetchall()))
                for name in names if name not in skip}
    finally:
        conn.close()


def query_rows(engine: Engine, sql: str, **params) -> list[dict]:
    """Rows of a query, as dicts; bytes (Amavisd's binary columns) decoded."""
    with engine.connect() as conn:
        found = conn.execute(text(sql), params).mappings().all()
    return [{k: (bytes(v).decode() if isinstance(v, (bytes, memoryview)) else v) for k, v in r.items()}
            for r in found]


# -- the policy tests' preamble ---------------------------------------------------
# test_spampolicy, test_throttle, test_greylisting and test_wblist import these;
# the three fixtures then apply to that module only.

POLICY_DOMAIN, POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER = (
    "example.com", "alice@example.com", "bob@example.com", "carol@other.test")


def all_policy_dbs():
    """Parametrize a test over the policy databases (SQLite, MariaDB, PostgreSQL)."""
    from .fixtures_policy import POLICY_BACKENDS
    return pytest.mark.parametrize("policy_sql", POLICY_BACKENDS, indirect=True)


@pytest.fixture(params=["mock"])
def backend(request):
    """The policies live in SQL: the directory's fast kind suffices."""
    return request.param


@pytest.fixture
def app(policy_app):
    return policy_app


@pytest.fixture
def accounts(factory):
    factory.domain(POLICY_DOMAIN)
    factory.domain("other.test")
    for mail in (POLICY_USER, POLICY_OTHER_USER, POLICY_STRANGER):
        factory.user(mail)


def parallel(app, settings, calls, login, *, seconds: float = 120) -> list[int]:
    """Run `calls` (method, path, params) at once through `app`, each with its
    own session of `login`; their statuses in order (bounded waits)."""
    clients = []
    for _ in calls:
        client = ApiClient(app, settings)
        client.login(*login)
        clients.append(client)
    start = threading.Barrier(len(calls))
    statuses: list[int | None] = [None] * len(calls)

    def run(i, method, path, params):
        start.wait(timeout=seconds)
        statuses[i] = clients[i].request(method, path, params).status_code

    threads = [threading.Thread(target=run, args=(i, *call), daemon=True) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a request did not finish in time"
    return statuses  # type: ignore[return-value]


def reads_of_users(directory, monkeypatch, domains):
    """`reads_of` the domains' ou=Users containers."""
    return reads_of(directory, monkeypatch, domains, ("Users",))


@contextlib.contextmanager
def reads_of(directory, monkeypatch, domains, ous):
    """Count the searches and paged searches that list entries of the
    domains' containers `ous` (a search of such a container, or below it with
    more than the base entry in scope) and the entries they return; reading
    one account's own entry is not a list."""
    containers = tuple(f"ou={ou.lower()},domainname={d},o=domains,dc=example,dc=com" for d in domains for ou in ous)
    seen: Counter = Counter()
    with monkeypatch.context() as patch:
        for name in ("search", "paged_search"):
            original = getattr(directory, name)

            def wrapper(base, *args, _name=name, _original=original, **kwargs):
                result = _original(base, *args, **kwargs)
                where = base.lower().replace(" ", "")
                if where in containers or (where.endswith(containers) and kwargs.get("scope", SUBTREE) != BASE):
                    seen[_name] += 1
                    result = list(result)
                    seen["entries"] += len(result)
                return result
            patch.setattr(directory, name, wrapper)
        yield seen
