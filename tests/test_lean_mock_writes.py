"""The fast test directory's own write path answers as ldap3's does.

`Directory.add/modify/delete` write to a MOCK_SYNC connection through the
mock's `lean_add`, `lean_modify` and `lean_delete`, which hand the mock its
request without building it in pyasn1 first.  Here the same writes go to two
mock worlds made alike, one the lean way and one through ldap3's Connection,
in lockstep: after each, the outcome (the value returned or the exception
raised, the result, ldap3's `last_error`) and every entry of the two worlds
must be the same.  (That the mock writes what slapd writes is the rest of
the suite, which runs on both.)
"""

from __future__ import annotations

import ldap3
import pytest
from ldap3.core import exceptions as lx

from iredldap.directory.connection import _write
from iredldap.directory.mock import POST_READ

from .conftest import mock_directory
from .test_mock_filters import _fill

SUFFIX = "dc=example,dc=com"
BASE = f"o=filters,{SUFFIX}"
ANN = f"mail=ann@a.test,{BASE}"
NEW = f"mail=new@a.test,{BASE}"
USER = ["mailUser", "inetOrgPerson", "shadowAccount"]


def _post_read(attr: str) -> list:
    from iredldap.directory.connection import _attribute_selection
    return [(POST_READ, False, _attribute_selection([attr]))]


# (operation, positional arguments, keyword arguments), sent in this order.
WRITES = [
    ("add", (NEW, USER, {"cn": ["New"], "sn": "N", "mail": ["new@a.test"], "uid": ["new"]}), {}),
    ("add", (NEW, USER, {"cn": ["Again"], "sn": ["N"]}), {}),                     # exists: 68
    ("add", (f"mail=two@a.test,{BASE}", None, {"objectClass": USER + ["mailUser"], "sn": ["T"], "cn": ["Two"]}), {}),
    ("add", (f"mail=three@a.test,{BASE}", ["inetOrgPerson"], {"objectclass": [b"mailUser"], "sn": ["T"],
                                                               "cn": ["Bj\xf6rn"], "mailQuota": [1024]}), {}),
    ("add", (f"mail=bin@a.test,{BASE}", USER, {"sn": ["B"], "cn": ["B"], "userPassword": [b"\xff\xfe\x00raw"]}), {}),
    ("add", (f"mail=nocls@a.test,{BASE}", None, {"sn": ["x"]}), {}),              # objectClass is mandatory
    ("add", (f"mail=badcls@a.test,{BASE}", ["noSuchClass"], {"sn": ["x"]}), {}),
    ("add", (f"mail=badattr@a.test,{BASE}", USER, {"sn": ["x"], "cn": ["x"], "noSuchAttr": ["x"]}), {}),
    ("add", (f"mail=badval@a.test,{BASE}", USER, {"sn": ["x"], "cn": ["x"], "shadowLastChange": ["soon"]}), {}),
    ("add", (f"mail=twice@a.test,{BASE}", USER, {"sn": ["x"], "cn": ["x"], "mailQuota": ["1", "2"]}), {}),
    ("add", (f"mail=tag@a.test,{BASE}", USER, {"sn": ["x"], "cn;lang-de": ["x"], "cn": ["y"]}), {}),
    ("add", (f"MAIL=Spaced@A.test , {BASE}", USER, {"sn": ["x"], "cn": ["x"]}), {}),
    ("add", ("not a dn", USER, {"sn": ["x"]}), {}),
    ("modify", (ANN, {"cn": [("MODIFY_ADD", ["Annie"])]}), {}),
    ("modify", (ANN, {"cn": [("MODIFY_DELETE", ["Annie"])], "sn": [("MODIFY_REPLACE", ["Smith"])]}), {}),
    ("modify", (ANN, {"cn": [("MODIFY_DELETE", ["nobody"])]}), {}),               # noSuchAttribute, as slapd
    ("modify", (ANN, {"shadowAddress": [("MODIFY_REPLACE", [])]}), {}),
    ("modify", (ANN, {"mailQuota": [("MODIFY_INCREMENT", ["5"])]}), {}),
    ("modify", (ANN, {"mailQuota": [("MODIFY_INCREMENT", ["-6"])]}), {"controls": _post_read("mailQuota")}),
    ("modify", (ANN, {"mailQuota": ("MODIFY_REPLACE", ["7"])}), {}),              # one change, not a list
    ("modify", (ANN, {"enabledService": [(0, ["pop3"]), (1, ["mail"])]}), {}),
    ("modify", (ANN, {"userPassword": [("MODIFY_REPLACE", [b"\x80\x81"])]}), {}),
    ("modify", (ANN, {"noSuchAttr": [("MODIFY_ADD", ["x"])]}), {}),
    ("modify", (ANN, {"cn": [("MODIFY_ADD", ["x"], "extra")]}), {}),              # malformed
    ("modify", (ANN, {"cn": [("MODIFY_SOMETHING", ["x"])]}), {}),
    ("modify", (ANN, {"cn": ("MODIFY_ADD", ["x"], "extra")}), {}),
    ("modify", (ANN, {"mailQuota": [("MODIFY_ADD", ["8"])]}), {}),                # single-valued, has one
    ("modify", (ANN, {"shadowLastChange": [("MODIFY_REPLACE", ["soon"])]}), {}),
    ("modify", (f"mail=nobody@a.test,{BASE}", {"cn": [("MODIFY_ADD", ["x"])]}), {}),
    ("modify", (ANN, {}), {}),
    ("modify", (ANN, [("cn", "x")]), {}),
    ("delete", (NEW,), {}),
    ("delete", (NEW,), {}),                                                       # gone: 32
    ("delete", (f"MAIL=Two@A.test , {BASE}",), {}),
    ("delete", ("not a dn",), {}),
]


def _world() -> ldap3.Connection:
    conn = mock_directory()._connection()
    _fill(conn, SUFFIX, BASE)
    return conn


def _dit(conn: ldap3.Connection) -> dict:
    return {dn: {name: sorted(values) for name, values in entry.items()} for dn, entry in conn.server.dit.items()}


def _outcome(conn: ldap3.Connection, send) -> tuple:
    try:
        returned = send()
    except Exception as exc:  # noqa: BLE001 - ldap3's own add of a tagged name raises KeyError
        return ("raised", type(exc).__name__, str(exc), conn.last_error)
    result = {k: conn.result.get(k) for k in ("result", "description", "message", "type", "controls")}
    return ("returned", returned, result, conn.last_error)


def test_every_write_answers_and_writes_as_ldap3_does():
    lean_world, ldap3_world = _world(), _world()
    assert _dit(lean_world) == _dit(ldap3_world)
    raised = 0
    for operation, args, kwargs in WRITES:
        ours = _outcome(lean_world, lambda: _write(lean_world, operation, *args, **kwargs))
        ldap3s = _outcome(ldap3_world, lambda: getattr(ldap3_world, operation)(*args, **kwargs))
        assert ours == ldap3s, (operation, args)
        assert _dit(lean_world) == _dit(ldap3_world), (operation, args)
        raised += ours[0] == "raised"
    # The list reaches both ends: writes that land and writes refused.
    assert 8 < raised < len(WRITES) - 8, raised


def test_the_lean_path_is_taken(monkeypatch):
    conn = _world()
    for name in ("add", "modify", "delete", "send"):
        if name != "send":
            monkeypatch.setattr(conn, name, lambda *a, **k: pytest.fail("ldap3's Connection wrote"))
    _write(conn, "add", NEW, USER, {"cn": ["New"], "sn": ["N"]})
    _write(conn, "modify", NEW, {"cn": [("MODIFY_ADD", ["Newer"])]})
    assert sorted(conn.server.dit[NEW]["cn"]) == [b"New", b"Newer"]
    _write(conn, "delete", NEW)
    assert NEW not in conn.server.dit


def test_a_read_only_or_closed_connection_is_left_to_ldap3():
    conn = _world()
    conn.read_only = True
    with pytest.raises(lx.LDAPConnectionIsReadOnlyError):
        _write(conn, "modify", ANN, {"cn": [("MODIFY_ADD", ["x"])]})
    closed = _world()
    closed.unbind()
    ours = _outcome(closed, lambda: _write(closed, "delete", ANN))
    ldap3s = _outcome(closed, lambda: closed.delete(ANN))
    assert ours == ldap3s and ours[0] == "raised"


# Writes ldap3 refuses before it sends anything, each sent after a write that
# failed (so `last_error` holds that failure's description): ldap3 clears
# `last_error` first, before it looks at the DN or copies the attributes.
REFUSED_AFTER_A_FAILURE = [
    ("add", ("", USER, {"cn": ["x"], "sn": ["x"]}), {}),                                  # empty DN
    ("add", ("not a dn", USER, {"cn": ["x"], "sn": ["x"]}), {}),
    ("modify", ("not a dn", {"cn": [("MODIFY_ADD", ["x"])]}), {}),
    ("delete", ("",), {}),
    ("delete", ("not a dn",), {}),
    # Not a dictionary of attributes: ldap3 reads each name's lower().
    ("add", (NEW, USER, [("cn", ["x"]), ("sn", ["x"])]), {}),
    ("add", (NEW, USER, ["cn", "sn"]), {}),
    # ldap3 deep-copies the attributes first; a generator of values does not copy.
    ("add", (NEW, USER, {"cn": (v for v in ["gen"]), "sn": ["x"]}), {}),
]


@pytest.mark.parametrize("operation,args,kwargs", REFUSED_AFTER_A_FAILURE,
                         ids=[f"{op}-{i}" for i, (op, _a, _k) in enumerate(REFUSED_AFTER_A_FAILURE)])
def test_a_write_refused_before_sending_answers_as_ldap3_after_a_failure(operation, args, kwargs):
    lean_world, ldap3_world = _world(), _world()
    failing = (f"mail=badcls@a.test,{BASE}", ["noSuchClass"], {"sn": ["x"]})
    assert _outcome(lean_world, lambda: _write(lean_world, "add", *failing)) == \
        _outcome(ldap3_world, lambda: ldap3_world.add(*failing))
    assert lean_world.last_error and ldap3_world.last_error
    ours = _outcome(lean_world, lambda: _write(lean_world, operation, *args, **kwargs))
    ldap3s = _outcome(ldap3_world, lambda: getattr(ldap3_world, operation)(*args, **kwargs))
    assert ours == ldap3s
    assert _dit(lean_world) == _dit(ldap3_world)
