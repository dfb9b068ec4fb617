"""Subscribable lists when the directory dies half-way (a real slapd, stopped
by the PID of the one this test started, just before the k-th write of the
request; see tests/test_journal.py): after slapd is back and the next
request has settled the journal, the list is whole or absent in LDAP *and*
in the mlmmj spool (the `local` backend).
"""

from __future__ import annotations

import pytest

from iredldap.directory.domains import DomainStore
from iredldap.mlmmj.spool import LocalSpool

from .conftest import build_app
from .support import ApiClient
from .test_journal import ADMIN, ADMIN_PW, SUFFIX, StoppingDirectory, dump, journal_rows

pytestmark = pytest.mark.slapd

SKEL = "/usr/share/mlmmj/text.skel"
LIST_DN = "mail=news@a.test,ou=groups,domainname=a.test,o=domains," + SUFFIX


@pytest.fixture
def world(own_slapd, settings, iredadmin, sqlite_templates, tmp_path):
    from iredldap.backends import tree_of
    from iredldap.directory.admins import AdminStore
    from iredldap.directory.base import init_tree
    from iredldap.model import passwords
    directory = StoppingDirectory(own_slapd)
    tree = tree_of(settings)
    init_tree(directory, tree)
    AdminStore(directory, tree).create_standalone(ADMIN, password_hash=passwords.hash_password(ADMIN_PW, "SSHA"),
                                                 is_global=True)
    DomainStore(directory, tree, default_transport="dovecot").create("a.test", {})
    (tmp_path / "spool").mkdir(mode=0o700)
    spool = LocalSpool(tmp_path / "spool", tmp_path / "archive", SKEL)
    app = build_app(settings, directory, iredadmin, sqlite_templates, list_spool=spool)
    client = ApiClient(app, settings)
    client.login(ADMIN, ADMIN_PW)
    return directory, client, spool


def counter(state) -> list[str]:
    return state["domainname=a.test,o=domains," + SUFFIX]["domainCurrentListNumber"]


@pytest.mark.parametrize("k", [1, 2])
def test_create_cut_short_leaves_neither_half(world, own_slapd, iredadmin, k):
    # k=1: the entry's add fails (mlmmj never touched); k=2: the counter
    # after the list directory was made (the directory goes again).
    directory, client, spool = world
    before = dump(own_slapd)
    directory.arm(k)
    r = client.post("/api/ml/news@a.test", {"name": "News", "subscribers": "s@x.test", "require_confirm": "no"})
    assert r.status_code == 503, r.text
    assert not spool.list_dir("news@a.test").exists()
    own_slapd.start()
    # The next request on the address finishes what the journal has.
    assert client.get("/api/ml/news@a.test").status_code == 404
    assert dump(own_slapd) == before
    assert not spool.list_dir("news@a.test").exists()
    assert all(r["state"] in ("undone", "done") for r in journal_rows(iredadmin))
    # And a retry succeeds whole.
    assert client.post("/api/ml/news@a.test", {"name": "News"}).status_code == 201
    assert spool.list_dir("news@a.test").is_dir()
    assert counter(dump(own_slapd)) == ["1"]


@pytest.mark.parametrize("k", [1, 2])
def test_update_cut_short_leaves_both_halves_as_they_were(world, own_slapd, k):
    directory, client, spool = world
    assert client.post("/api/ml/news@a.test", {"name": "Before", "moderators": "m1@a.test"}).status_code == 201
    before = dump(own_slapd)
    profile = spool.profile("news@a.test")
    directory.arm(k)     # the cn/listModerator modify, or the listAllowedUser one
    r = client.put("/api/ml/news@a.test", {"name": "After", "moderators": "m2@a.test", "subject_prefix": "[n]"})
    assert r.status_code == 503, r.text
    own_slapd.start()
    assert client.get("/api/ml/news@a.test").status_code == 200
    assert dump(own_slapd) == before
    assert spool.profile("news@a.test") == profile


def test_delete_cut_short_is_finished(world, own_slapd, iredadmin):
    directory, client, spool = world
    assert client.post("/api/ml/news@a.test").status_code == 201
    directory.arm(1)     # the entry's delete: the list directory is already archived
    r = client.delete("/api/ml/news@a.test")
    assert r.status_code == 503, r.text
    assert not spool.list_dir("news@a.test").exists()
    own_slapd.start()
    assert client.get("/api/ml/news@a.test").status_code == 404   # rolled forward
    after = dump(own_slapd)
    assert LIST_DN not in after and counter(after) == ["0"]
    assert [p.name.rpartition("-")[0] for p in (spool.archive_dir / "a.test").iterdir()] == ["news"]
    assert [r["state"] for r in journal_rows(iredadmin) if r["kind"] == "delete"] == ["done"]
