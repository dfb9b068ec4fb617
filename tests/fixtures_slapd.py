"""A real OpenLDAP server for the tests.

* ``slapd`` (session) -- a started :class:`~iredldap.directory.localslapd.LocalSlapd`
  in a temporary folder, serving ``dc=example,dc=com`` (``SUFFIX``) with the
  iRedMail schema.  Use ``slapd.uri``, ``slapd.root_dn``
  (``cn=Manager,dc=example,dc=com``) and ``slapd.root_password``
  (``"secret"``).  The data persists for the whole session; it is stopped at
  the end.  Without /usr/sbin/slapd the fixture fails (it does not skip): the
  project's test command installs slapd.
* ``slapd_clean`` (function) -- the same ``slapd`` object, after everything
  under the suffix (the suffix entry included) has been deleted, so the test
  starts from an empty database.
* ``slapd_conn`` (function) -- an ldap3 ``Connection`` bound as the rootdn to
  the emptied server (``slapd.connection()``, no schema loaded: send
  booleans as ``"TRUE"``); unbound after the test.
* ``own_slapd`` (function) -- a slapd of this test alone (same suffix and
  password, its own folder and port), started; the test may stop and start
  it.  Stopped after the test.
* ``wipe_tree(conn, base)`` -- the helper behind ``slapd_clean``: deletes
  ``base`` and everything below it, deepest entries first.
* ``add_request``/``add_encoded``, ``send_request`` -- adds and deletes
  written as BER by the tests themselves, without ldap3's pyasn1 (what
  ``wipe_tree`` and ``conftest.SavedState`` send; tests/test_saved_state.py).

Registered as a plugin (``pytest_plugins = ["tests.fixtures_slapd"]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
from ldap3.utils.asn1 import decode_message_fast
from ldap3.utils.dn import to_dn

from iredldap.directory.decoding import lean_reads, search as lean_search
from iredldap.directory.encoding import _INTEGER, _OCTETS, _SEQUENCE, _integer, _tlv
from iredldap.directory.localslapd import SLAPD, LocalSlapd, slapd_available

SUFFIX = "dc=example,dc=com"
ROOT_PASSWORD = "secret"

__all__ = ["ROOT_PASSWORD", "SUFFIX", "require_slapd", "slapd", "slapd_clean", "slapd_conn", "own_slapd", "wipe_tree",
           "add_request", "add_encoded", "send_request"]


def require_slapd() -> None:
    """Fail the test (never skip) when OpenLDAP's slapd is not installed."""
    if not slapd_available():
        pytest.fail(
            f"{SLAPD} is missing: the LDAP tests need OpenLDAP's slapd "
            "(Debian/Ubuntu: apt-get install slapd ldap-utils)",
            pytrace=False,
        )


# -- the tests' own writes, encoded once --------------------------------------------
# Laying a saved world down again (conftest.SavedState) and emptying the tree
# before each slapd test add and delete thousands of entries a run.  Through
# ldap3 each request is built of pyasn1 objects and encoded by pyasn1, several
# times what slapd spends on it; these requests are BER written directly
# (RFC 4511 4.7 and 4.8), an add's once per saved entry, and sent on the
# connection's socket one at a time, each answer awaited (slapd may carry out
# requests of one connection in parallel; parents must come before children).

_ADD_REQUEST, _DEL_REQUEST, _SET = 0x68, 0x4A, 0x31     # (the rest: encoding.py's)
NO_SUCH_OBJECT = 32


def add_request(dn: str, attrs: dict[str, list[bytes]]) -> bytes:
    """The protocolOp of an AddRequest of `dn` with these values (as stored)."""
    attributes = b"".join(
        _tlv(_SEQUENCE, _tlv(_OCTETS, name.encode()) + _tlv(_SET, b"".join(_tlv(_OCTETS, v) for v in values)))
        for name, values in attrs.items())
    return _tlv(_ADD_REQUEST, _tlv(_OCTETS, dn.encode()) + _tlv(_SEQUENCE, attributes))


def delete_request(dn: str) -> bytes:
    return _tlv(_DEL_REQUEST, dn.encode())


def send_request(conn: ldap3.Connection, op: bytes) -> tuple[int, str]:
    """Send one request (its protocolOp) on the bound SYNC connection `conn`;
    the resultCode and diagnostic message of the answer."""
    with conn.connection_lock:
        message_id = conn.server.next_message_id()
        conn.socket.sendall(_tlv(_SEQUENCE, _integer(_INTEGER, message_id) + op))
        answers = conn.strategy.receiving()
    if len(answers) != 1:
        raise RuntimeError(f"expected one answer to message {message_id}, got {len(answers)}")
    answer = decode_message_fast(answers[0])
    if answer["messageID"] != message_id:
        raise RuntimeError(f"an answer to message {answer['messageID']}, not {message_id}")
    result = answer["payload"]
    return result[0][3], bytes(result[2][3]).decode("utf-8", "replace")


def add_encoded(conn: ldap3.Connection, dn: str, op: bytes) -> None:
    """Add an entry by its encoded request (`add_request`); raise unless it was added."""
    code, message = send_request(conn, op)
    if code != 0:
        raise RuntimeError(f"cannot add {dn}: result {code} {message}")


def wipe_tree(conn: ldap3.Connection, base: str) -> int:
    """Delete `base` and all entries below it; return how many were deleted.

    A missing `base` is fine (nothing to delete).  Children go before their
    parents because slapd refuses to delete an entry that has children.
    """
    try:
        lean_search(lean_reads(conn), base, "(objectClass=*)", scope=ldap3.SUBTREE, attrs=["1.1"])
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:   # a connection that raises on errors
        return 0
    if conn.result["result"] == NO_SUCH_OBJECT:
        return 0
    if conn.result["result"] != 0:
        raise RuntimeError(f"cannot list {base}: {conn.result}")
    dns = [entry["dn"] for entry in conn.response if entry.get("type") == "searchResEntry"]
    for dn in sorted(dns, key=lambda d: len(to_dn(d)), reverse=True):
        code, message = send_request(conn, delete_request(dn))
        if code not in (0, NO_SUCH_OBJECT):
            raise RuntimeError(f"cannot delete {dn}: result {code} {message}")
    return len(dns)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSlapd]:
    require_slapd()
    data_dir: Path = tmp_path_factory.mktemp("slapd")
    server = LocalSlapd(data_dir, suffix=SUFFIX, root_password=ROOT_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slapd_clean(slapd: LocalSlapd) -> LocalSlapd:
    conn = slapd.connection()
    try:
        wipe_tree(conn, slapd.suffix)
    finally:
        conn.unbind()
    return slapd


@pytest.fixture
def slapd_conn(slapd_clean: LocalSlapd) -> Iterator[ldap3.Connection]:
    conn = slapd_clean.connection()
    try:
        yield conn
    finally:
        conn.unbind()


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[LocalSlapd]:
    require_slapd()
    server = LocalSlapd(tmp_path / "slapd", suffix=SUFFIX, root_password=ROOT_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()
