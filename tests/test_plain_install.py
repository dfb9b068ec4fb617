"""A plain pip install (no extras) talks to an iRedMail server's databases
(issue #12, item 2): a fresh venv serves with MariaDB and PostgreSQL URLs,
written as iRedMail writes them (no driver named) and with the driver.
The iredadmin databases are made from iRedAdmin's DDL and `init-sql` is not
run.  Needs the package index (pip) and this machine's MariaDB/PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from iredldap.backends import tree_of
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory

from .conftest import make_settings
from .servers import free_port, stop, wait_http
from .support import Factory
from .test_own_tables import _fresh_database
from .fixtures_policy import run_sql_file, SQL_DIR

# a venv made with pip, serving on MariaDB and PostgreSQL; under pytest-xdist one
# worker runs the module with test_packaging (conftest's ONE_WORKER_GROUPS), so the
# wheel and the venv are made once (session-scoped: xdist may run other modules'
# tests between these, which would end a module fixture)
pytestmark = [pytest.mark.servers]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def plain_venv(tmp_path_factory, project_wheel):
    """A new venv with the checkout's wheel (what `pip install .` builds: conftest's
    project_wheel) installed by pip, with the dependencies pip resolves for it and
    no extras.  The venv gets no pip of its own: this process's pip installs into it."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           str(project_wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def test_plain_install_has_the_drivers(plain_venv):
    probe = subprocess.run([str(plain_venv / "bin" / "python"), "-c", "import pymysql, psycopg; print('ok')"],
                           capture_output=True, text=True, timeout=60, cwd="/")
    assert probe.stdout.strip() == "ok", probe.stderr


@pytest.mark.parametrize("kind, scheme", [("mariadb", "mysql://"), ("mariadb", "mysql+pymysql://"),
                                          ("postgresql", "postgresql://"),
                                          ("postgresql", "postgresql+psycopg://")])
def test_serves_with_server_databases(plain_venv, kind, scheme, tmp_path, slapd_clean):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url, drop = _fresh_database(kind, tmp_path)
    try:
        engine = create_engine(url, poolclass=NullPool)
        run_sql_file(engine, SQL_DIR / ("iredadmin.mysql" if kind == "mariadb" else "iredadmin.pgsql"))
        engine.dispose()
        configured = scheme + url.split("://", 1)[1]
        settings = make_settings(tmp_path, ldap_uri=slapd_clean.uri, ldap_bind_dn=slapd_clean.root_dn,
                                 ldap_bind_password=slapd_clean.root_password)
        directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
        init_tree(directory, tree_of(settings))
        Factory(directory, settings).global_admin("root@admins.test", "R00t#secret")
        directory.close()
        ini = tmp_path / "iredldap.ini"
        ini.write_text("[iredldap]\n"
                       f"ldap_uri = {settings.ldap_uri}\nldap_bind_dn = {settings.ldap_bind_dn}\n"
                       f"ldap_bind_password = {settings.ldap_bind_password}\nldap_suffix = {settings.ldap_suffix}\n"
                       f"secret_key = {settings.secret_key}\nsql_iredadmin_url = {configured}\n"
                       f"sql_amavisd_url = {configured}\nsql_iredapd_url = {configured}\n")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IREDLDAP_")}
        env["IREDLDAP_CONFIG"] = str(ini)
        proc = subprocess.Popen([str(plain_venv / "bin" / "iredldap"), "serve", "--bind", f"127.0.0.1:{port}",
                                 "--workers", "2"], env=env, cwd="/", stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60) == 200
            base = f"http://127.0.0.1:{port}/api"
            http = requests.Session()
            r = http.post(base + "/login", data={"username": "root@admins.test", "password": "R00t#secret"},
                          timeout=30)
            assert r.status_code == 200, r.text
            r = http.post(base + "/tokens", data={"name": "plain"}, timeout=30)
            assert r.status_code == 201, r.text
            r = requests.get(base + "/domains", headers={"Authorization": f"Bearer {r.json()['_data']['token']}"},
                             timeout=30)
            assert r.status_code == 200, r.text
            from sqlalchemy import inspect
            engine = create_engine(url, poolclass=NullPool)
            assert "api_tokens" in inspect(engine).get_table_names()   # made at start, no init-sql
            engine.dispose()
        finally:
            stop(proc)
    finally:
        drop()


def test_unusable_url_is_one_line_naming_the_setting(plain_venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IREDLDAP_")}
    env.update({"IREDLDAP_LDAP_BIND_DN": "cn=x,dc=example,dc=com", "IREDLDAP_LDAP_BIND_PASSWORD": "x",
                "IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com", "IREDLDAP_SECRET_KEY": "0123456789abcdef0123",
                "IREDLDAP_SQL_AMAVISD_URL": "mysql+mysqldb://amavisd@127.0.0.1/amavisd"})
    done = subprocess.run([str(plain_venv / "bin" / "iredldap"), "serve", "--bind", "127.0.0.1:1"], env=env,
                          cwd="/", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iredldap: configuration error: SQL_AMAVISD_URL:"), done.stderr
