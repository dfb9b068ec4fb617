"""SQL fixtures: the same tests on SQLite, MariaDB and PostgreSQL.

* ``sql_url`` -- parametrized over ``sqlite`` (a temporary file),
  ``mariadb`` and ``postgresql``.  For the servers one fresh database named
  ``iredldap_test_<random>`` is created per test session through an admin
  connection and dropped at the end.  A server that cannot be reached makes
  its tests skip ("MariaDB not reachable at 127.0.0.1:3306").
* ``iredadmin_db`` -- an `IredadminDB` on ``sql_url`` with all tables created
  and emptied before each test (rows deleted; the database is reused).

Registered as a plugin (``pytest_plugins = ["tests.fixtures_sql"]``).
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.tables import metadata

MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
POSTGRESQL_HOST, POSTGRESQL_PORT = "127.0.0.1", 5432

MARIADB_ADMIN_URL = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/"
POSTGRESQL_ADMIN_URL = f"postgresql+psycopg://postgres@{POSTGRESQL_HOST}:{POSTGRESQL_PORT}/postgres"

SQL_BACKENDS = ["sqlite", "mariadb", "postgresql"]


def _admin_engine(url: str) -> Engine:
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )


def reachable_admin_engine(url: str, missing: str, *, fail: bool = False) -> Engine:
    """An AUTOCOMMIT engine on a database server, checked with one query; an
    unreachable server skips the test (or fails it, where the test is about
    that server) with `missing` as the reason."""
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        admin.dispose()
        (pytest.fail if fail else pytest.skip)(missing)
    return admin


def _test_db_name() -> str:
    return f"iredldap_test_{secrets.token_hex(5)}"


@pytest.fixture(scope="session")
def _sql_engines():
    """url -> Engine, shared by all tests of the session."""
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


def _dispose(engines: dict[str, Engine], url: str) -> None:
    engine = engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@pytest.fixture(scope="session")
def _sql_url_sqlite(tmp_path_factory, _sql_engines):
    url = f"sqlite:///{tmp_path_factory.mktemp('sql') / 'iredadmin.sqlite'}"
    yield url
    _dispose(_sql_engines, url)


@pytest.fixture(scope="session")
def _sql_url_mariadb(_sql_engines):
    admin = reachable_admin_engine(MARIADB_ADMIN_URL, f"MariaDB not reachable at {MARIADB_HOST}:{MARIADB_PORT}")
    name = _test_db_name()
    with admin.connect() as conn:
        conn.execute(text(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ))
    url = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    try:
        yield url
    finally:
        _dispose(_sql_engines, url)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(scope="session")
def _sql_url_postgresql(_sql_engines):
    admin = reachable_admin_engine(POSTGRESQL_ADMIN_URL, f"PostgreSQL not reachable at {POSTGRESQL_HOST}:{POSTGRESQL_PORT}")
    name = _test_db_name()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    url = f"postgresql+psycopg://postgres@{POSTGRESQL_HOST}:{POSTGRESQL_PORT}/{name}"
    try:
        yield url
    finally:
        _dispose(_sql_engines, url)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request) -> str:
    """URL of an (initially empty) test database on each backend."""
    return request.getfixturevalue(f"_sql_url_{request.param}")


@pytest.fixture
def sql_engine(sql_url, _sql_engines) -> Engine:
    """The session's Engine (from `make_engine`) for `sql_url`."""
    engine = _sql_engines.get(sql_url)
    if engine is None:
        engine = _sql_engines[sql_url] = make_engine(sql_url)
    return engine


@pytest.fixture
def iredadmin_db(sql_engine) -> IredadminDB:
    """IredadminDB with all tables present and empty."""
    db = IredadminDB(sql_engine)
    db.create_tables()
    with sql_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
    return db
