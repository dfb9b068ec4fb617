"""Several directory servers in LDAP_URI (issue 16): the order, failing over,
read-your-writes within a request, coming back, /readyz and /metrics.

Two independent slapds (no replication: what each holds shows which one a
write went to), each of this test alone, on private 127.0.0.1 ports; a server
is stopped by its PID (LocalSlapd.stop) and started again.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from iredldap import metrics
from iredldap.backends import Backends, tree_of
from iredldap.directory.admins import AdminStore
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory
from iredldap.directory.localslapd import LocalSlapd, Replication
from iredldap.directory.tree import Tree
from iredldap.errors import ConfigError, DirectoryUnavailable
from iredldap.model import passwords
from iredldap.web.app import create_app

from .conftest import make_settings
from .fixtures_slapd import ROOT_PASSWORD, SUFFIX, require_slapd
from .support import ApiClient

pytestmark = pytest.mark.slapd

RETRY = 1      # seconds before a down server is tried again
TREE = Tree(SUFFIX, f"o=domains,{SUFFIX}", f"o=domainAdmins,{SUFFIX}")


@pytest.fixture
def two_slapds(tmp_path):
    require_slapd()
    servers = [LocalSlapd(tmp_path / name, suffix=SUFFIX, root_password=ROOT_PASSWORD) for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def kill(server: LocalSlapd) -> None:
    """Stop a slapd by its PID and wait until it is gone."""
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    server.stop()       # waits for that PID to end (and reaps it)
    assert server.pid() is None


def holds(server: LocalSlapd, dn: str) -> bool:
    conn = server.connection()
    try:
        return bool(conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["1.1"]))
    finally:
        conn.unbind()


def failovers(frm: str, to: str) -> float:
    return metrics.sample("iredldap_ldap_failovers_total", {"from_server": frm, "to_server": to})


# -- settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["ldap://a.test:389 ldap://b.test:389", "ldap://a.test:389,ldap://b.test:389",
                                  " ldap://a.test:389 ,\tldap://b.test:389 "])
def test_ldap_uri_takes_a_list(tmp_path, text):
    settings = make_settings(tmp_path, ldap_uri=text)
    assert settings.ldap_uris == ("ldap://a.test:389", "ldap://b.test:389")
    assert make_settings(tmp_path).ldap_uris == ("ldap://127.0.0.1:389",)


@pytest.mark.parametrize("text, message", [
    ("ldap://a.test http://b.test", "LDAP_URI: expected ldap://"),
    (" , ", "LDAP_URI: missing"),
    ("ldap://a.test ldap://A.test", "LDAP_URI: a server is listed twice"),
])
def test_ldap_uri_list_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        make_settings(tmp_path, ldap_uri=text)


def test_retry_interval_setting(tmp_path):
    assert make_settings(tmp_path).ldap_retry_interval == 10
    assert make_settings(tmp_path, ldap_retry_interval="3").ldap_retry_interval == 3
    with pytest.raises(ConfigError, match="LDAP_RETRY_INTERVAL"):
        make_settings(tmp_path, ldap_retry_interval="0")


def test_backends_get_every_server(tmp_path):
    from iredldap.backends import connect
    settings = make_settings(tmp_path, ldap_uri="ldap://127.0.0.1:1, ldap://127.0.0.1:2", ldap_retry_interval="4")
    directory = connect(settings).directory
    assert directory.uris == ("ldap://127.0.0.1:1", "ldap://127.0.0.1:2") and directory.retry_interval == 4


# -- the directory ----------------------------------------------------------------------

def test_first_listed_is_used_then_the_next_then_the_first_again(two_slapds):
    a, b = two_slapds
    directory = Directory(f"{a.uri} {b.uri}", a.root_dn, a.root_password, timeout=3, retry_interval=RETRY)
    init_tree(directory, TREE)
    assert holds(a, SUFFIX) and not holds(b, SUFFIX)

    moved = failovers(a.uri, b.uri)
    kill(a)
    init_tree(directory, TREE)      # outside a request: moves on its own
    assert holds(b, SUFFIX)
    assert failovers(a.uri, b.uri) == moved + 1
    states = {s.uri: s for s in directory.servers()}
    assert states[a.uri].up is False and states[b.uri].up is True

    a.start()
    # Not before the retry interval...
    directory.begin_request()
    directory.add(f"ou=early,{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": ["early"]})
    assert holds(b, f"ou=early,{SUFFIX}")
    # ...but after it, the next request goes back to the first server.
    time.sleep(RETRY + 0.2)
    back = failovers(b.uri, a.uri)
    directory.begin_request()
    directory.add(f"ou=later,{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": ["later"]})
    assert holds(a, f"ou=later,{SUFFIX}") and not holds(b, f"ou=later,{SUFFIX}")
    assert failovers(b.uri, a.uri) == back + 1
    directory.close()


def test_a_request_stays_on_the_server_it_wrote_to(two_slapds):
    a, b = two_slapds
    directory = Directory([a.uri, b.uri], a.root_dn, a.root_password, timeout=3, retry_interval=RETRY)
    for server in (a, b):
        conn = server.connection()
        conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "example"})
        conn.unbind()
    ou = f"ou=written,{SUFFIX}"

    # Before a write: a request moves to the next server when its own fails.
    directory.begin_request()
    assert directory.exists(SUFFIX)
    kill(a)
    assert directory.exists(SUFFIX)          # answered by b
    a.start()
    time.sleep(RETRY + 0.2)

    # After a write: it does not move (b has not got what it wrote to a).
    directory.begin_request()
    directory.add(ou, {"objectClass": ["organizationalUnit"], "ou": ["written"]})
    assert holds(a, ou)
    kill(a)
    with pytest.raises(DirectoryUnavailable, match="unreachable"):
        directory.get(ou)
    with pytest.raises(DirectoryUnavailable):
        directory.delete(ou)
    assert not holds(b, ou)
    # The next request is free to use b.
    directory.begin_request()
    assert directory.get(ou) is None and directory.exists(SUFFIX)
    directory.close()


def test_a_request_that_wrote_reconnects_to_the_same_server(two_slapds):
    """As with one server: a restart of its server within the request is survived."""
    a, b = two_slapds
    directory = Directory([a.uri, b.uri], a.root_dn, a.root_password, timeout=3, retry_interval=60)
    directory.begin_request()
    init_tree(directory, TREE)
    a.stop()
    a.start()
    assert directory.exists(SUFFIX)
    assert not holds(b, SUFFIX)
    directory.close()


def test_all_down_is_unavailable_and_either_coming_back_is_used(two_slapds):
    a, b = two_slapds
    directory = Directory([a.uri, b.uri], a.root_dn, a.root_password, timeout=3, retry_interval=60)
    kill(a)
    kill(b)
    directory.begin_request()
    with pytest.raises(DirectoryUnavailable):
        directory.exists(SUFFIX)
    # Both are down and not due for a retry for a minute: still, both are tried.
    b.start()
    directory.begin_request()
    assert directory.exists(SUFFIX) is False
    assert {s.uri: s.up for s in directory.servers()} == {a.uri: False, b.uri: True}
    directory.close()


# -- through the API ----------------------------------------------------------------------

def test_api_fails_over_503_only_when_all_down_and_readyz_names_each(two_slapds, tmp_path, iredadmin):
    a, b = two_slapds
    settings = make_settings(tmp_path, ldap_uri=f"{a.uri},{b.uri}", ldap_retry_interval=str(RETRY))
    directory = Directory(settings.ldap_uris, a.root_dn, a.root_password, timeout=3, retry_interval=RETRY)
    tree = tree_of(settings)
    # Two independent directories: the admin is in each.
    for server in (a, b):
        alone = Directory(server.uri, server.root_dn, server.root_password)
        init_tree(alone, tree)
        AdminStore(alone, tree).create_standalone(
            "root@admins.test", password_hash=passwords.hash_password("R00t#pw", "SSHA"), is_global=True)
        alone.close()
    client = ApiClient(create_app(settings, Backends(directory, iredadmin)), settings)
    client.login("root@admins.test", "R00t#pw")

    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["_data"]["directory"] == "ok"
    assert r.json["_data"][f"directory {a.uri}"] == "ok" and r.json["_data"][f"directory {b.uri}"] == "ok"

    assert client.post("/api/domain/one.test", {}).status_code == 201
    assert holds(a, f"domainName=one.test,{tree.domains_dn}")

    kill(a)
    # The session (SQL) still holds; the directory answers from b.
    r = client.post("/api/domain/two.test", {})
    assert r.status_code == 201, r.text
    assert holds(b, f"domainName=two.test,{tree.domains_dn}")
    assert client.get("/api/domain/two.test").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["_data"]["directory"] == "degraded: 1 of 2 servers unavailable"
    assert r.json["_data"][f"directory {a.uri}"].startswith("unavailable:")
    assert r.json["_data"][f"directory {b.uri}"] == "ok"
    assert f'iredldap_ldap_failovers_total{{from_server="{a.uri}",to_server="{b.uri}"}}' in client.get("/metrics").text

    kill(b)
    r = client.get("/api/domain/two.test")
    assert r.status_code == 503 and r.json["_msg"] == "DIRECTORY_UNAVAILABLE", r.text
    assert client.post("/api/domain/three.test", {}).status_code == 503
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["reason"] == "not reachable: directory"
    assert r.json["_data"]["directory"] == "unavailable: no server answers"

    # b back: used at once (everything was down).
    b.start()
    assert client.get("/api/domain/two.test").status_code == 200
    # a back: /readyz finds it, and the next request goes to it again.
    a.start()
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["_data"] == {**r.json["_data"], "directory": "ok"}
    assert client.post("/api/domain/four.test", {}).status_code == 201
    assert holds(a, f"domainName=four.test,{tree.domains_dn}")
    assert not holds(b, f"domainName=four.test,{tree.domains_dn}")
    directory.close()


def test_going_back_waits_until_the_first_has_caught_up(two_slapds):
    """With sync_base, a thread goes back to the first server only once its
    contextCSN has every change of the server in use (here two independent
    servers: a's catches up when a write lands on it directly)."""
    a, b = two_slapds
    # syncprov keeps the contextCSN; no consumers: they stay independent.  The
    # same serverID on both, so that a change made on a directly stands for
    # a having caught up with b.
    for server in (a, b):
        server.stop()
        server.replication = Replication(1)
        server.start()
    directory = Directory([a.uri, b.uri], a.root_dn, a.root_password, timeout=3, retry_interval=RETRY,
                          sync_base=SUFFIX)
    for server in (a, b):
        conn = server.connection()
        conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "example"})
        conn.unbind()
    directory.begin_request()
    assert directory.exists(SUFFIX)
    kill(a)
    directory.begin_request()
    assert directory.exists(SUFFIX)          # a read finds a gone (a write on a cut connection is not retried)
    directory.modify(SUFFIX, {"o": [("MODIFY_REPLACE", ["on b"])]})      # b is now ahead of a
    a.start()
    time.sleep(RETRY + 0.2)
    directory.begin_request()
    assert directory.get(SUFFIX, attrs=("o",)).first("o") == "on b"      # a is behind: still b
    assert {s.uri: s.behind for s in directory.servers()}[a.uri] is True
    conn = a.connection()
    conn.modify(SUFFIX, {"o": [("MODIFY_REPLACE", ["on a"])]})            # a's contextCSN moves past b's
    conn.unbind()
    directory.begin_request()
    assert directory.get(SUFFIX, attrs=("o",)).first("o") == "on b"      # not asked again before the interval
    time.sleep(RETRY + 0.2)
    directory.begin_request()
    assert directory.get(SUFFIX, attrs=("o",)).first("o") == "on a"
    assert {s.uri: s.behind for s in directory.servers()}[a.uri] is False
    directory.close()
