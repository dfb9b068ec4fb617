"""deploy/: the systemd unit and the nginx location, used as they are
(issue #12, item 6).

The service is started with the unit's ExecStart and Environment (paths
moved into the test's folder, as systemd's RuntimeDirectory would make
them), behind Debian's nginx running deploy/nginx-iredldap.conf inside a
server block that also serves "iRedAdmin" at /iredadmin/.  A real HTTP
client (requests) configured like the public PHP wrapper, with a base URL
ending in `/`, goes through nginx: login, a domain, a user, throttling, a
token.  Both processes run on free 127.0.0.1 ports and are stopped by PID.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
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

# nginx and gunicorn processes
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
VENV_BIN = Path(sys.executable).parent


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.fixture
def service(tmp_path, slapd_clean):
    """The service as the unit starts it, with URL_PREFIX /iredadmin."""
    unit = unit_values((DEPLOY / "iredldap.service").read_text())
    env_lines = dict(v.split("=", 1) for v in unit["Environment"])
    assert env_lines["IREDLDAP_CONFIG"] == "/etc/iredldap/iredldap.ini"
    assert unit["RuntimeDirectory"] == ["iredldap iredldap/metrics"]
    assert env_lines["PROMETHEUS_MULTIPROC_DIR"] == "/run/iredldap/metrics"

    settings = make_settings(tmp_path, ldap_uri=slapd_clean.uri, ldap_bind_dn=slapd_clean.root_dn,
                             ldap_bind_password=slapd_clean.root_password, url_prefix="/iredadmin",
                             trusted_proxies="127.0.0.1")
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    init_tree(directory, tree_of(settings))
    factory = Factory(directory, settings)
    factory.global_admin("postmaster@admins.test", "P0stmaster#pw")

    ini = tmp_path / "iredldap.ini"
    ini.write_text("[iredldap]\n" + "".join(
        f"{k} = {getattr(settings, k) if not isinstance(getattr(settings, k), tuple) else '127.0.0.1'}\n"
        for k in ("ldap_uri", "ldap_bind_dn", "ldap_bind_password", "ldap_suffix", "sql_iredadmin_url",
                  "sql_amavisd_url", "sql_iredapd_url", "secret_key", "url_prefix", "trusted_proxies")))
    # The amavisd/iredapd SQLite files of this test get their tables (an
    # iRedMail server has them already); the iredadmin one is left empty.
    for db in ("amavisd", "iredapd"):
        from iredldap.db.amavisd import AmavisdDB
        from iredldap.db.iredapd import IredapdDB
        (AmavisdDB if db == "amavisd" else IredapdDB)(getattr(settings, f"sql_{db}_url")).create_tables()

    run_dir = tmp_path / "run" / "iredldap"
    (run_dir / "metrics").mkdir(parents=True)      # what RuntimeDirectory= makes
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IREDLDAP_")}
    env.update(env_lines)
    env.update({"IREDLDAP_CONFIG": str(ini), "IREDLDAP_BIND": f"127.0.0.1:{port}", "IREDLDAP_WORKERS": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics")})
    exec_start = unit["ExecStart"][0]
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word) for word in shlex.split(exec_start)]
    assert argv[0] == "/opt/iredldap/venv/bin/iredldap"
    argv[0] = str(VENV_BIN / "iredldap")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/iredadmin/healthz", proc, timeout=60) == 200
        yield port, run_dir, directory, settings
    finally:
        stop(proc)
        directory.close()


@pytest.fixture
def nginx(tmp_path, service):
    if not Path(NGINX).exists():
        pytest.fail("nginx not installed (scripts/test installs Debian's nginx)")
    api_port = service[0]
    snippet = (DEPLOY / "nginx-iredldap.conf").read_text()
    assert "proxy_pass http://127.0.0.1:7790;" in snippet
    (tmp_path / "iredldap.tmpl").write_text(snippet.replace("127.0.0.1:7790", f"127.0.0.1:{api_port}"))
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "logs").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        include {tmp_path}/iredldap.tmpl;
        # Stands in for iRedAdmin's own location.
        location ~ ^/iredadmin(/.*)? {{ return 200 "iRedAdmin web panel\\n"; }}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/iredadmin/", proc, timeout=30)
        yield port
    finally:
        stop(proc)


def test_client_through_nginx(nginx, service):
    api_port, run_dir, directory, settings = service
    # Configured like the public PHP wrapper's README: the base URL ends in "/".
    base = f"http://127.0.0.1:{nginx}/iredadmin/api/"
    http = requests.Session()
    assert requests.get(f"http://127.0.0.1:{nginx}/iredadmin/", timeout=10).text == "iRedAdmin web panel\n"

    r = http.post(base + "/login", data={"username": "postmaster@admins.test", "password": "P0stmaster#pw"},
                  timeout=30)
    assert r.status_code == 200 and r.json() == {"_success": True}, r.text
    r = http.post(base + "/domain/drop.test", data={"name": "Drop-in Co"}, timeout=30)
    assert r.status_code == 201, r.text
    r = http.post(base + "/user/ann@drop.test/", data={"name": "Ann", "password": "Ann#Secret1"}, timeout=30)
    assert r.status_code == 201, r.text
    entry = directory.get(f"mail=ann@drop.test,ou=Users,domainName=drop.test,{settings.domains_dn}")
    assert entry is not None and entry.get("cn") == ["Ann"]
    r = http.post(base + "/throttle/drop.test/inbound/", data={"period": "3600", "max_msgs": "20"}, timeout=30)
    assert r.status_code == 200, r.text
    r = http.get(base + "/throttle/drop.test/inbound/", timeout=30)
    assert r.json()["_data"]["max_msgs"] == 20
    r = http.get(base + "/domains", timeout=30)
    assert r.status_code == 200 and "drop.test" in r.text
    # A token made over the API (the iredadmin database had no api_tokens table).
    r = http.post(base + "/tokens", data={"name": "through nginx"}, timeout=30)
    assert r.status_code == 201, r.text
    token = r.json()["_data"]["token"]
    r = requests.get(base + "/users/drop.test", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200 and "ann@drop.test" in r.text
    # The API index and the docs through the same location.
    index = requests.get(base, timeout=30).json()["_data"]
    assert index["docs"] == "/iredadmin/api/docs"
    assert requests.get(f"http://127.0.0.1:{nginx}{index['openapi']}", timeout=30).status_code == 200
    # The audit log saw the client's address through X-Forwarded-For.
    import sqlalchemy
    engine = sqlalchemy.create_engine(settings.sql_iredadmin_url)
    with engine.connect() as conn:
        ips = {row[0] for row in conn.execute(sqlalchemy.text("SELECT ip FROM log"))}
    engine.dispose()
    assert ips == {"127.0.0.1"}
    # Workers share their counters through the RuntimeDirectory's metrics folder.
    assert list((run_dir / "metrics").glob("*.db"))
    metrics = requests.get(f"http://127.0.0.1:{api_port}/iredadmin/metrics", timeout=30).text
    assert 'iredldap_http_requests_total{' in metrics
