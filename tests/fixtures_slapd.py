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

Registered as a plugin (``pytest_plugins = ["tests.fixtures_slapd"]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
from ldap3.utils.dn import to_dn

from iredldap.directory.localslapd import SLAPD, LocalSlapd, slapd_available

SUFFIX = "dc=example,dc=com"
ROOT_PASSWORD = "secret"

__all__ = ["ROOT_PASSWORD", "SUFFIX", "require_slapd", "slapd", "slapd_clean", "slapd_conn", "own_slapd", "wipe_tree"]


def require_slapd() -> None:
    """Fail the test (never skip) when OpenLDAP's slapd is not installed."""
    if not slapd_available():
        pytest.fail(
            f"{SLAPD} is missing: the LDAP tests need OpenLDAP's slapd "
            "(Debian/Ubuntu: apt-get install slapd ldap-utils)",
            pytrace=False,
        )


def wipe_tree(conn: ldap3.Connection, base: str) -> int:
    """Delete `base` and all entries below it; return how many were deleted.

    A missing `base` is fine (nothing to delete).  Children go before their
    parents because slapd refuses to delete an entry that has children.
    """
    try:
        found = conn.search(base, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"])
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:   # a connection that raises on errors
        return 0
    if not found:
        if conn.result["result"] == 32:  # noSuchObject
            return 0
        raise RuntimeError(f"cannot list {base}: {conn.result}")
    dns = [entry["dn"] for entry in conn.response if entry.get("type") == "searchResEntry"]
    for dn in sorted(dns, key=lambda d: len(to_dn(d)), reverse=True):
        if not conn.delete(dn) and conn.result["result"] != 32:
            raise RuntimeError(f"cannot delete {dn}: {conn.result}")
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
