"""The service's own tables beside iRedAdmin's (issue #12, item 3).

On an existing iRedMail server the iredadmin database is iRedMail's, made
from iRedAdmin's DDL (tests/sql/iredadmin.*), and nobody ran
`iredldap init-sql`: the service creates its own tables (api_tokens ...) at
start, so a Bearer request is never a 500.  `init-sql` can be run any number
of times on every backend.
"""

from __future__ import annotations

import secrets

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.cli import main
from iredldap.db import tables
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB

from .conftest import make_settings
from .fixtures_policy import run_sql_file, SQL_DIR
from .fixtures_sql import MARIADB_ADMIN_URL, MARIADB_HOST, MARIADB_PORT, POSTGRESQL_ADMIN_URL, \
    POSTGRESQL_HOST, POSTGRESQL_PORT, _admin_engine, reachable_admin_engine
from .support import ApiClient


@pytest.fixture
def backend():
    return "mock"


def _fresh_database(kind: str, tmp_path):
    """(url, drop) of a new empty database."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'iredadmin.sqlite'}", lambda: None
    admin_url = MARIADB_ADMIN_URL if kind == "mariadb" else POSTGRESQL_ADMIN_URL
    admin = reachable_admin_engine(admin_url, f"{kind} not reachable ({admin_url})", fail=True)
    name = f"iredldap_test_iredadmin_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        if kind == "mariadb":
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            url = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
        else:
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
            url = f"postgresql+psycopg://postgres@{POSTGRESQL_HOST}:{POSTGRESQL_PORT}/{name}"

    def drop():
        with admin.connect() as conn:
            if kind == "mariadb":
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        admin.dispose()
    return url, drop


@pytest.fixture(params=["mariadb", "postgresql", "sqlite"])
def iredmail_iredadmin_url(request, tmp_path):
    """An iredadmin database as iRedMail makes it: iRedAdmin's tables only."""
    url, drop = _fresh_database(request.param, tmp_path)
    engine = create_engine(url, poolclass=NullPool)
    if request.param == "sqlite":
        # No SQLite DDL ships with iRedAdmin: its tables as we model them.
        tables.metadata.create_all(engine, tables=[tables.metadata.tables[n] for n in tables.IREDADMIN_TABLES])
    else:
        run_sql_file(engine, SQL_DIR / f"iredadmin.{'mysql' if request.param == 'mariadb' else 'pgsql'}")
    engine.dispose()
    yield url
    drop()


def _table_names(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_bearer_requests_without_init_sql(iredmail_iredadmin_url, tmp_path, directory, factory):
    before = _table_names(iredmail_iredadmin_url)
    assert "api_tokens" not in before
    settings = make_settings(tmp_path, sql_iredadmin_url=iredmail_iredadmin_url)
    iredadmin = IredadminDB(make_engine(iredmail_iredadmin_url))
    app = create_app(settings, Backends(directory=directory, iredadmin=iredadmin,
                                        amavisd=AmavisdDB(settings.sql_amavisd_url),
                                        iredapd=IredapdDB(settings.sql_iredapd_url)))
    # Created at start, before any request.
    after = _table_names(iredmail_iredadmin_url)
    assert after == before | {t.name for t in tables.own_tables()}

    factory.domain("example.com")
    api = ApiClient(app, settings)
    api.login(*factory.global_admin("root@admins.test", "R00t#secret"))
    made = api.post("/api/tokens", {"name": "script"})
    assert made.status_code == 201, made.text
    token = made.json["_data"]["token"]
    bearer = ApiClient(app, settings)
    listed = bearer.get("/api/domains", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert listed.json["_data"][0]["domainName"] == ["example.com"] or "example.com" in str(listed.json["_data"])
    with iredadmin.engine.connect() as conn:
        rows = conn.execute(text("SELECT admin, name, last_used FROM api_tokens")).all()
    assert [(r[0], r[1]) for r in rows] == [("root@admins.test", "script")]
    assert rows[0][2] is not None   # the Bearer request was recorded
    iredadmin.engine.dispose()


def _cli_env(url: str, tmp_path) -> dict:
    return {"IREDLDAP_CONFIG": None, "IREDLDAP_LDAP_BIND_DN": "cn=Manager,dc=example,dc=com",
            "IREDLDAP_LDAP_BIND_PASSWORD": "x", "IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com",
            "IREDLDAP_SECRET_KEY": "0123456789abcdef0123", "IREDLDAP_SQL_IREDADMIN_URL": url,
            "IREDLDAP_SQL_AMAVISD_URL": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
            "IREDLDAP_SQL_IREDAPD_URL": f"sqlite:///{tmp_path / 'iredapd.sqlite'}"}


@pytest.mark.parametrize("kind", ["mariadb", "postgresql", "sqlite"])
def test_init_sql_is_idempotent(kind, tmp_path):
    url, drop = _fresh_database(kind, tmp_path)
    try:
        env = _cli_env(url, tmp_path)
        for _ in range(3):
            result = CliRunner().invoke(main, ["init-sql"], env=env)
            assert result.exit_code == 0, result.output + (result.stderr or "")
            assert _table_names(url) >= set(tables.metadata.tables)
    finally:
        drop()


def test_init_sql_on_iredmail_database_keeps_its_tables(iredmail_iredadmin_url, tmp_path):
    before = _table_names(iredmail_iredadmin_url)
    for _ in range(2):
        result = CliRunner().invoke(main, ["init-sql"], env=_cli_env(iredmail_iredadmin_url, tmp_path))
        assert result.exit_code == 0, result.output + (result.stderr or "")
    after = _table_names(iredmail_iredadmin_url)
    # iRedAdmin's tables stay; ours are added, and on PostgreSQL (whose
    # iRedAdmin schema lacks it) deleted_mailboxes, which the LDAP backend uses.
    assert after >= before | {t.name for t in tables.own_tables()}
    assert after - before <= set(tables.metadata.tables)


@pytest.mark.servers
def test_start_fails_in_one_line_when_own_tables_cannot_be_made(tmp_path):
    """A database user that may read and write but not create tables."""
    url, drop = _fresh_database("mariadb", tmp_path)
    database = url.rsplit("/", 1)[1]
    user, password = f"ro_{secrets.token_hex(3)}", secrets.token_hex(8)
    admin = _admin_engine(MARIADB_ADMIN_URL)
    engine = create_engine(url, poolclass=NullPool)
    run_sql_file(engine, SQL_DIR / "iredadmin.mysql")
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(text(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'"))
        for host in ("%", "localhost"):
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO '{user}'@'{host}'"))
    try:
        limited = f"mysql+pymysql://{user}:{password}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"
        result = CliRunner().invoke(main, ["serve", "--bind", "127.0.0.1:1"], env=_cli_env(limited, tmp_path))
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "api_tokens" in lines[0] and "iredldap init-sql" in lines[0], lines[0]
        assert "api_tokens" not in _table_names(url)
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
        admin.dispose()
        drop()
