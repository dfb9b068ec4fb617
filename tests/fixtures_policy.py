"""Fixtures for the Amavisd and iRedAPD databases.

* ``policy_sql`` -- which engine: ``sqlite`` unless a test parametrizes it
  (``@pytest.mark.parametrize("policy_sql", POLICY_BACKENDS, indirect=True)``).
* ``policy_dbs`` -- an `AmavisdDB` and an `IredapdDB` on that engine, every
  table emptied before the test.  SQLite databases get their tables from our
  own table definitions (what ``iredldap init-sql`` creates); MariaDB and
  PostgreSQL databases are created once per session from ``tests/sql/*.mysql``
  / ``*.pgsql`` -- the tables an iRedMail server has -- and dropped at the
  end.  A server that cannot be reached skips its tests.
* ``policy_app`` -- the API wired to those databases (tests put
  ``app = policy_app`` into their module to reuse ``client``/``api``).

Registered as a plugin (``pytest_plugins`` in conftest.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredapd import IredapdDB

from .fixtures_sql import (MARIADB_ADMIN_URL, MARIADB_HOST, MARIADB_PORT, POSTGRESQL_ADMIN_URL, POSTGRESQL_HOST,
                           POSTGRESQL_PORT, reachable_admin_engine)

POLICY_BACKENDS = ["sqlite", "mariadb", "postgresql"]
SQL_DIR = Path(__file__).parent / "sql"


def sql_statements(path: Path) -> list[str]:
    """The statements of an SQL file (comment lines dropped, split at ';')."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def run_sql_file(engine: Engine, path: Path) -> None:
    with engine.begin() as conn:
        for statement in sql_statements(path):
            conn.exec_driver_sql(statement)


@dataclass
class PolicyDBs:
    backend: str
    amavisd: AmavisdDB
    iredapd: IredapdDB


def _server_databases(kind: str, admin_url: str, where: str):
    admin = reachable_admin_engine(admin_url, f"{kind} not reachable at {where}")
    names = {db: f"iredldap_test_{db}_{secrets.token_hex(4)}" for db in ("amavisd", "iredapd")}
    urls = {}
    for db, name in names.items():
        with admin.connect() as conn:
            if kind == "MariaDB":
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
                urls[db] = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
            else:
                conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
                urls[db] = f"postgresql+psycopg://postgres@{POSTGRESQL_HOST}:{POSTGRESQL_PORT}/{name}"
    return admin, names, urls


@pytest.fixture(scope="session")
def _policy_engines():
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(scope="session")
def _policy_sqlite(tmp_path_factory, _policy_engines):
    folder = tmp_path_factory.mktemp("policy-sql")
    urls = {db: f"sqlite:///{folder / (db + '.sqlite')}" for db in ("amavisd", "iredapd")}
    for db, url in urls.items():
        engine = _policy_engines[url] = make_engine(url)
        (AmavisdDB if db == "amavisd" else IredapdDB)(engine).create_tables()
    return urls


@pytest.fixture(scope="session")
def _policy_mariadb(_policy_engines):
    admin, names, urls = _server_databases("MariaDB", MARIADB_ADMIN_URL, f"{MARIADB_HOST}:{MARIADB_PORT}")
    try:
        for db, url in urls.items():
            engine = _policy_engines[url] = make_engine(url)
            run_sql_file(engine, SQL_DIR / f"{db}.mysql")
        yield urls
    finally:
        for db, name in names.items():
            engine = _policy_engines.pop(urls.get(db, ""), None)
            if engine is not None:
                engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(scope="session")
def _policy_postgresql(_policy_engines):
    admin, names, urls = _server_databases("PostgreSQL", POSTGRESQL_ADMIN_URL,
                                           f"{POSTGRESQL_HOST}:{POSTGRESQL_PORT}")
    try:
        for db, url in urls.items():
            engine = _policy_engines[url] = make_engine(url)
            run_sql_file(engine, SQL_DIR / f"{db}.pgsql")
        yield urls
    finally:
        for db, name in names.items():
            engine = _policy_engines.pop(urls.get(db, ""), None)
            if engine is not None:
                engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        admin.dispose()


def empty_all_tables(engine: Engine) -> None:
    names = inspect(engine).get_table_names()
    # Counters refer to throttle rows (a foreign key on MySQL): first.
    names.sort(key=lambda n: (not n.endswith("_tracking"), n))
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")


@pytest.fixture
def policy_sql(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def policy_dbs(policy_sql, request, _policy_engines) -> PolicyDBs:
    urls = request.getfixturevalue(f"_policy_{policy_sql}")
    engines = {db: _policy_engines[url] for db, url in urls.items()}
    for engine in engines.values():
        empty_all_tables(engine)
    return PolicyDBs(policy_sql, AmavisdDB(engines["amavisd"]), IredapdDB(engines["iredapd"]))


@pytest.fixture
def amavisd_db(policy_dbs) -> AmavisdDB:
    return policy_dbs.amavisd


@pytest.fixture
def iredapd_db(policy_dbs) -> IredapdDB:
    return policy_dbs.iredapd


@pytest.fixture
def policy_app(settings, directory, iredadmin, policy_dbs, stage):
    """The API on the policy databases; on the default fixtures one app per
    worker and kind of database (the `Stage`'s), as the tables are emptied
    before each test and the engines are the session's."""
    shared = stage is not None and directory is stage.directory and iredadmin is stage.iredadmin
    app = stage.apps.get(("policy", policy_dbs.backend)) if shared else None
    if app is None:
        app = create_app(settings, Backends(directory=directory, iredadmin=iredadmin,
                                            amavisd=policy_dbs.amavisd, iredapd=policy_dbs.iredapd))
        if shared:
            stage.apps[("policy", policy_dbs.backend)] = app
    return app
