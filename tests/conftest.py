"""Shared fixtures.

The behaviour tests of the API run twice: on ldap3's MOCK_SYNC strategy
(fast) and on a real slapd started by the tests (what production sees).
Ask for `directory` to get both; `slapd_directory` for the real one only.
"""

from __future__ import annotations

import ldap3
import pytest

from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.config import Settings
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredapd import IredapdDB
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory
from iredldap.directory.mock import mock_server

from .support import ApiClient, Factory

pytest_plugins = ["tests.fixtures_slapd", "tests.fixtures_sql", "tests.fixtures_policy"]

SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=Manager,{SUFFIX}"
ROOT_PASSWORD = "secret"


def make_settings(tmp_path, **overrides) -> Settings:
    raw = {
        "ldap_uri": "ldap://127.0.0.1:389",
        "ldap_bind_dn": ROOT_DN,
        "ldap_bind_password": ROOT_PASSWORD,
        "ldap_suffix": SUFFIX,
        "sql_iredadmin_url": f"sqlite:///{tmp_path / 'iredadmin.sqlite'}",
        "sql_amavisd_url": f"sqlite:///{tmp_path / 'amavisd.sqlite'}",
        "sql_iredapd_url": f"sqlite:///{tmp_path / 'iredapd.sqlite'}",
        "secret_key": "test-secret-key-0123456789",
        "storage_base_directory": "/var/vmail/vmail1",
        "default_password_scheme": "SSHA512",
    }
    raw.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_mapping(raw)


def mock_directory() -> Directory:
    """A Directory on a fresh MOCK_SYNC server that knows our schema."""
    server = mock_server()
    seed = ldap3.Connection(server, user=ROOT_DN, password=ROOT_PASSWORD, client_strategy=ldap3.MOCK_SYNC)
    # MOCK_SYNC can only check a simple bind against a clear-text password entry.
    seed.strategy.add_entry(ROOT_DN, {"objectClass": ["person"], "cn": ["Manager"], "sn": ["Manager"],
                                      "userPassword": [ROOT_PASSWORD]})
    return Directory("ldap://mock", ROOT_DN, ROOT_PASSWORD, server=server, strategy=ldap3.MOCK_SYNC)


@pytest.fixture(params=["mock", "slapd"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def directory(backend, request, settings) -> Directory:
    if backend == "mock":
        directory = mock_directory()
    else:
        server = request.getfixturevalue("slapd_clean")
        directory = Directory(server.uri, server.root_dn, server.root_password)
    init_tree(directory, tree_of(settings))
    yield directory
    directory.close()


@pytest.fixture
def slapd_directory(slapd_clean, settings) -> Directory:
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    init_tree(directory, tree_of(settings))
    yield directory
    directory.close()


@pytest.fixture
def iredadmin(settings) -> IredadminDB:
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    db.create_tables()
    return db


@pytest.fixture
def app(settings, directory, iredadmin):
    # Amavisd's and iRedAPD's embedded SQLite files, with their tables, in tmp_path.
    amavisd, iredapd = AmavisdDB(settings.sql_amavisd_url), IredapdDB(settings.sql_iredapd_url)
    amavisd.create_tables()
    iredapd.create_tables()
    return create_app(settings, Backends(directory=directory, iredadmin=iredadmin, amavisd=amavisd,
                                         iredapd=iredapd))


@pytest.fixture
def factory(directory, settings) -> Factory:
    return Factory(directory, settings)


@pytest.fixture
def client(app, settings) -> ApiClient:
    return ApiClient(app, settings)


@pytest.fixture
def global_admin(factory) -> tuple[str, str]:
    return factory.global_admin("root@admins.test", "R00t#secret")


@pytest.fixture
def api(client, global_admin) -> ApiClient:
    """A client logged in as a global admin."""
    client.login(*global_admin)
    return client
