"""/healthz, /readyz and /metrics (resources/health.py, iredldap.metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from iredldap import metrics
from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine, translate_db_errors
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB
from iredldap.directory.connection import Directory
from iredldap.errors import ConfigError, DatabaseError

from .conftest import ROOT_DN, ROOT_PASSWORD, make_settings
from .support import ApiClient

DEAD_SQL = "mysql+pymysql://root@127.0.0.1:1/nothing?ssl_disabled=1"
DEAD_LDAP = "ldap://127.0.0.1:1"


@pytest.fixture
def make_client(tmp_path, directory, iredadmin):
    """An app with its own settings and, where given, other backends."""
    def make(*, directory_=None, iredadmin_=None, amavisd=None, iredapd=None, **overrides) -> ApiClient:
        settings = make_settings(tmp_path, **overrides)
        if amavisd is None:
            amavisd = AmavisdDB(settings.sql_amavisd_url)
            amavisd.create_tables()
        if iredapd is None:
            iredapd = IredapdDB(settings.sql_iredapd_url)
            iredapd.create_tables()
        backends = Backends(directory=directory_ or directory, iredadmin=iredadmin_ or iredadmin,
                            amavisd=amavisd, iredapd=iredapd)
        return ApiClient(create_app(settings, backends), settings)
    return make


def dead_directory() -> Directory:
    return Directory(DEAD_LDAP, ROOT_DN, ROOT_PASSWORD, timeout=2)


# -- /healthz -------------------------------------------------------------------------

def test_healthz_answers_whatever_is_down(make_client):
    client = make_client(directory_=dead_directory(), iredadmin_=IredadminDB(make_engine(DEAD_SQL)))
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"_success": True, "_data": {"status": "alive"}}


def test_health_is_outside_the_api_switch_and_restriction(make_client):
    off = make_client(enable_restful_api="no")
    assert off.get("/api/domains").status_code == 404
    for path in ("/healthz", "/readyz", "/metrics"):
        assert off.get(path).status_code == 200, path
    restricted = make_client(restrict_api_access="yes", restful_api_clients="192.0.2.0/24")
    assert restricted.get("/api/domains").status_code == 403
    for path in ("/healthz", "/readyz", "/metrics"):
        assert restricted.get(path).status_code == 200, path


def test_health_under_url_prefix(make_client):
    client = make_client(url_prefix="/iredadmin")     # ApiClient prepends the prefix
    assert client.get("/healthz").status_code == 200
    assert client.client.simulate_get("/healthz").status_code == 404


# -- /readyz ---------------------------------------------------------------------------

def test_readyz_all_up(make_client, tmp_path):
    spool = tmp_path / "mlmmj"
    spool.mkdir()
    r = make_client(mlmmj_backend="local", mlmmj_spool_dir=spool).get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["_data"] == {"directory": "ok", "iredadmin": "ok", "amavisd": "ok", "iredapd": "ok", "mlmmj": "ok"}


def test_readyz_shows_mlmmj_down_without_failing(make_client):
    # The default backend, mlmmjadmin, is not running here: only the
    # subscribable lists are out (they answer 503).
    r = make_client(mlmmjadmin_api_base_url="http://127.0.0.1:1/api").get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["_data"]["mlmmj"].startswith("unavailable:") and r.json["_data"]["directory"] == "ok"


def test_readyz_directory_down(make_client):
    r = make_client(directory_=dead_directory()).get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json["_msg"] == "NOT_READY" and r.json["reason"] == "not reachable: directory"
    data = r.json["_data"]
    assert data["directory"].startswith("unavailable:") and data["iredadmin"] == "ok"


def test_readyz_databases_down(make_client):
    r = make_client(iredadmin_=IredadminDB(make_engine(DEAD_SQL)), iredapd=IredapdDB(DEAD_SQL)).get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json["reason"] == "not reachable: iredadmin, iredapd"
    data = r.json["_data"]
    assert data["directory"] == "ok" and data["amavisd"] == "ok"
    assert data["iredadmin"].startswith("unavailable:") and data["iredapd"].startswith("unavailable:")


def test_readyz_sqlite_never_created_is_absent_not_down(make_client, tmp_path):
    missing = tmp_path / "never" / "amavisd.sqlite"
    r = make_client(amavisd=AmavisdDB(f"sqlite:///{missing}")).get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["_data"]["amavisd"] == "absent"
    assert not missing.exists()     # asking did not create it


def test_readyz_directory_recovers(own_slapd, settings, make_client):
    from iredldap.backends import tree_of
    from iredldap.directory.base import init_tree

    directory = Directory(own_slapd.uri, own_slapd.root_dn, own_slapd.root_password, timeout=3)
    init_tree(directory, tree_of(settings))
    client = make_client(directory_=directory)
    assert client.get("/readyz").status_code == 200
    own_slapd.stop()
    r = client.get("/readyz")
    assert r.status_code == 503 and "directory" in r.json["reason"]
    own_slapd.start()
    assert client.get("/readyz").status_code == 200


# -- /metrics ---------------------------------------------------------------------------

def requests_of(endpoint: str, method: str, status: str) -> float:
    return metrics.sample("iredldap_http_requests_total", {"endpoint": endpoint, "method": method, "status": status})


def test_request_counters_and_latency_move(api, factory):
    factory.domain("x.test")
    before = requests_of("/api/domain/{domain}", "GET", "200")
    before_404 = requests_of("/api/domain/{domain}", "GET", "404")
    latency_before = metrics.sample("iredldap_http_request_duration_seconds_count",
                                    {"endpoint": "/api/domain/{domain}", "method": "GET", "status": "200"})
    unmatched = requests_of("unmatched", "GET", "404")
    assert api.get("/api/domain/x.test").status_code == 200
    assert api.get("/api/domain/x.test").status_code == 200
    assert api.get("/api/domain/nowhere.test").status_code == 404
    assert api.get("/api/no/such/thing").status_code == 404
    assert requests_of("/api/domain/{domain}", "GET", "200") == before + 2
    assert requests_of("/api/domain/{domain}", "GET", "404") == before_404 + 1
    assert requests_of("unmatched", "GET", "404") == unmatched + 1
    assert metrics.sample("iredldap_http_request_duration_seconds_count",
                          {"endpoint": "/api/domain/{domain}", "method": "GET", "status": "200"}) == latency_before + 2

    text = api.get("/metrics")
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert 'iredldap_http_requests_total{endpoint="/api/domain/{domain}",method="GET",status="200"}' in text.text
    assert "iredldap_http_request_duration_seconds_bucket" in text.text
    # Concrete paths never become labels.
    assert "x.test" not in text.text and "nowhere" not in text.text


def test_ldap_and_sql_errors_are_counted(make_client, factory, global_admin):
    ldap_before = metrics.sample("iredldap_ldap_errors_total", {"code": "DIRECTORY_UNAVAILABLE"})
    down = make_client(directory_=dead_directory(), iredadmin_=IredadminDB(make_engine(DEAD_SQL)))
    # (Taken after the start, which meets the dead database once itself: its own
    # tables, and finishing unfinished journal rows.)
    sql_before = metrics.sample("iredldap_sql_errors_total", {"code": "DATABASE_UNAVAILABLE"})
    assert down.post("/api/login", {"username": global_admin[0], "password": global_admin[1]}).status_code == 503
    assert metrics.sample("iredldap_sql_errors_total", {"code": "DATABASE_UNAVAILABLE"}) == sql_before + 1
    down = make_client(directory_=dead_directory())
    assert down.post("/api/login", {"username": global_admin[0], "password": global_admin[1]}).status_code == 503
    assert metrics.sample("iredldap_ldap_errors_total", {"code": "DIRECTORY_UNAVAILABLE"}) >= ldap_before + 1
    # A statement error (not an outage) is counted under its own code.
    errors_before = metrics.sample("iredldap_sql_errors_total", {"code": "DATABASE_ERROR"})
    with pytest.raises(DatabaseError), translate_db_errors(), make_engine("sqlite://").connect() as conn:
        conn.execute(text("SELECT nothing FROM nowhere"))
    assert metrics.sample("iredldap_sql_errors_total", {"code": "DATABASE_ERROR"}) == errors_before + 1
    # Shown at /metrics.
    assert 'iredldap_sql_errors_total{code="DATABASE_UNAVAILABLE"}' in make_client().get("/metrics").text


def test_metrics_restricted_to_the_api_clients(make_client):
    client = make_client(restrict_metrics_access="yes", restful_api_clients="192.0.2.0/24")
    r = client.get("/metrics")
    assert r.status_code == 403 and r.json["_msg"] == "NOT_AUTHORIZED"
    assert client.get("/metrics", remote_addr="192.0.2.7").status_code == 200
    # Health stays open.
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_metrics_restriction_needs_a_client_list(tmp_path):
    with pytest.raises(ConfigError, match="RESTRICT_METRICS_ACCESS"):
        make_settings(tmp_path, restrict_metrics_access="yes")


def test_metrics_of_all_workers_with_prometheus_multiproc_dir(tmp_path):
    """gunicorn workers: with PROMETHEUS_MULTIPROC_DIR the counters of every process are added up."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = str(Path(__file__).resolve().parent.parent)
    count = ("from iredldap import metrics; metrics.observe_request('GET', '/api/domains', 200, 0.01); "
             "metrics.count_error('ldap', 'DIRECTORY_UNAVAILABLE')")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, cwd=root, check=True)
    out = subprocess.run([sys.executable, "-c", "from iredldap import metrics; print(metrics.exposition()[0].decode())"],
                         env=env, cwd=root, check=True, capture_output=True, text=True).stdout
    assert 'iredldap_http_requests_total{endpoint="/api/domains",method="GET",status="200"} 2.0' in out
    assert 'iredldap_ldap_errors_total{code="DIRECTORY_UNAVAILABLE"} 2.0' in out
