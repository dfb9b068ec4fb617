"""A directory or database that is down gives 503, and nothing is half-written."""

from __future__ import annotations

import pytest

from iredldap.model import passwords
from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.admins import AdminStore
from iredldap.directory.base import init_tree
from iredldap.directory.connection import Directory

from .support import ApiClient


def test_directory_down_is_503_and_recovers(own_slapd, settings, iredadmin):
    directory = Directory(own_slapd.uri, own_slapd.root_dn, own_slapd.root_password, timeout=3)
    tree = tree_of(settings)
    init_tree(directory, tree)
    AdminStore(directory, tree).create_standalone(
        "root@admins.test", password_hash=passwords.hash_password("R00t#pw", "SSHA"), is_global=True)
    client = ApiClient(create_app(settings, Backends(directory, iredadmin)), settings)
    client.login("root@admins.test", "R00t#pw")
    assert client.post("/api/domain/a.test", {"name": "Before"}).status_code == 201

    own_slapd.stop()
    for method, path, params in (("GET", "/api/domains", None), ("PUT", "/api/domain/a.test", {"name": "After"}),
                                 ("POST", "/api/domain/b.test", {}), ("DELETE", "/api/domain/a.test", None)):
        r = client.request(method, path, params)
        assert r.status_code == 503, (method, path, r.text)
        assert r.json["_msg"] == "DIRECTORY_UNAVAILABLE"
    r = client.post("/api/login", {"username": "root@admins.test", "password": "R00t#pw"})
    assert r.status_code == 503

    own_slapd.start()
    r = client.get("/api/domain/a.test")
    assert r.status_code == 200, r.text
    # A restart between two requests is not even noticed: the cut connection
    # is replaced and the read retried.
    own_slapd.stop()
    own_slapd.start()
    r = client.get("/api/domain/a.test")
    assert r.status_code == 200, r.text
    assert r.json["_data"]["cn"] == ["Before"]
    assert client.get("/api/domain/b.test").status_code == 404


def test_database_down_is_503(tmp_path, settings, directory, factory):
    factory.global_admin("root@admins.test", "R00t#pw")
    dead = IredadminDB(make_engine("mysql+pymysql://root@127.0.0.1:1/iredadmin?ssl_disabled=1"))
    client = ApiClient(create_app(settings, Backends(directory, dead)), settings)
    r = client.post("/api/login", {"username": "root@admins.test", "password": "R00t#pw"})
    assert r.status_code == 503 and r.json["_msg"] == "DATABASE_UNAVAILABLE"


@pytest.fixture
def garbling_server():
    """A TCP server on 127.0.0.1 that answers the first request with a cut-off LDAP message.

    The bytes are a message id and then an element of a class ldap3's decoder
    has no entry for: what a socket can hold when slapd dies mid-answer.
    """
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)

    def answer_once():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"\x30\x05\x02\x01\x01\x40\x00")

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    thread.join(5)


def test_cut_off_answer_is_unavailable_not_a_crash(garbling_server):
    from iredldap.errors import DirectoryUnavailable
    directory = Directory(garbling_server, "cn=admin,dc=example,dc=com", "secret", timeout=3)
    with pytest.raises(DirectoryUnavailable) as caught:
        directory.search("dc=example,dc=com", "(objectClass=*)")
    # The request may have reached the server, so a batch must check what landed.
    assert caught.value.maybe_landed is True


def _message_id(request: bytes) -> bytes:
    """The message ID element (tag, length, value) of an LDAPMessage sent to us."""
    at = 2 if request[1] < 0x80 else 2 + (request[1] & 0x7F)
    return request[at:at + 2 + request[at + 1]]


def _wrapped(*elements: bytes) -> bytes:
    body = b"".join(elements)
    assert len(body) < 0x80
    return bytes((0x30, len(body))) + body


def _answering_server(answer):
    """A TCP server on 127.0.0.1 that accepts the bind and then answers the
    next request with `answer(its message ID element)` and a search done."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    success = b"\x0a\x01\x00\x04\x00\x04\x00"

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                bind = _message_id(conn.recv(4096))
                conn.sendall(_wrapped(bind, b"\x61\x07" + success))
                search = _message_id(conn.recv(4096))
                conn.sendall(answer(search) + _wrapped(search, b"\x65\x07" + success))
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize("answer", [
    lambda mid: _wrapped(mid, b"\x64\x06\x04\x04dc=x"),                          # an entry without its attributes
    lambda mid: _wrapped(mid, b"\x64\x0e\x04\x04dc=x\x30\x06\x30\x04\x04\x02cn"),   # an attribute without values
    lambda mid: _wrapped(b"\x30" + bytes((len(mid),)) + mid, b"\x64\x06\x04\x04dc=x"),  # an ID that is no INTEGER
], ids=["no attributes", "no values", "id no integer"])
def test_a_malformed_search_entry_is_unavailable_not_a_crash(answer):
    """Entries the lean reader does not take (decoding.entry_of) go to
    ldap3's decoder: what is malformed there is the server's fault (503),
    as with ldap3's own reading, never a 500 from our code."""
    from iredldap.errors import DirectoryUnavailable
    listener, thread = _answering_server(answer)
    try:
        directory = Directory(f"ldap://127.0.0.1:{listener.getsockname()[1]}", "cn=admin,dc=example,dc=com",
                              "secret", timeout=3)
        with pytest.raises(DirectoryUnavailable):
            directory.search("dc=example,dc=com", "(objectClass=*)")
    finally:
        listener.close()
        thread.join(5)


def test_the_answering_server_answers_a_search_that_is_well_formed():
    """(The server above is a fair test: a well-formed entry is read.)"""
    listener, thread = _answering_server(
        lambda mid: _wrapped(mid, b"\x64\x13\x04\x04dc=x\x30\x0b\x30\x09\x04\x02cn\x31\x03\x04\x01a"))
    try:
        directory = Directory(f"ldap://127.0.0.1:{listener.getsockname()[1]}", "cn=admin,dc=example,dc=com",
                              "secret", timeout=3)
        [entry] = directory.search("dc=example,dc=com", "(objectClass=*)")
        assert (entry.dn, entry.get("cn")) == ("dc=x", ["a"])
    finally:
        listener.close()
        thread.join(5)
