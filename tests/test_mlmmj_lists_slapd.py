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


def test_change_email_cut_short_is_finished_forward_with_the_spool(world, own_slapd, iredadmin):
    directory, client, spool = world
    assert client.post("/api/ml/news@a.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    directory.arm(1)     # the new entry's add: the list directory has moved already
    r = client.post("/api/ml/news@a.test/change_email/renamed@a.test")
    assert r.status_code == 503, r.text
    assert spool.list_dir("renamed@a.test").is_dir() and not spool.list_dir("news@a.test").exists()
    own_slapd.start()
    assert client.get("/api/ml/renamed@a.test").status_code == 200   # rolled forward
    after = dump(own_slapd)
    assert LIST_DN not in after
    new = after["mail=renamed@a.test,ou=groups,domainname=a.test,o=domains," + SUFFIX]
    assert new["mtaTransport"] == ["mlmmj:a.test/renamed"]
    assert [s.mail for s in spool.subscribers("renamed@a.test")] == ["s@x.test"]


def test_change_email_refused_by_ldap_moves_the_spool_back(world, own_slapd):
    directory, client, spool = world
    assert client.post("/api/ml/news@a.test").status_code == 201
    before = dump(own_slapd)
    # The new entry's add is refused (an LDAP error, not a lost directory).
    refuse = directory.add

    def refused(dn, attrs):
        from iredldap.errors import InvalidInput
        raise InvalidInput("refused by the directory")
    directory.add = refused
    try:
        r = client.post("/api/ml/news@a.test/change_email/renamed@a.test")
    finally:
        directory.add = refuse
    assert r.status_code == 400, r.text
    assert dump(own_slapd) == before
    assert spool.list_dir("news@a.test").is_dir() and not spool.list_dir("renamed@a.test").exists()


# -- parallel requests (the slapd keeps running) ------------------------------------------

def _parallel(client_of, calls):
    import threading
    results = []

    def run(method, path, params):
        results.append(client_of().request(method, path, params).status_code)

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_parallel_creates_of_one_address_and_of_the_last_free_place(world, own_slapd, settings):
    directory, client, spool = world
    app = client.client.app

    def client_of():
        c = ApiClient(app, settings)
        c.login(ADMIN, ADMIN_PW)
        return c

    # One address for an mlmmj list, an old list, an alias and a user at
    # once (different DNs: the check after the write decides): one wins; a
    # losing list's entry is undone, and its mlmmj directory never made.
    for n in range(4):
        mail = f"same{n}@a.test"
        results = _parallel(client_of, [("POST", f"/api/ml/{mail}", {"name": "A"}),
                                        ("POST", f"/api/maillist/{mail}", {}),
                                        ("POST", f"/api/alias/{mail}", {}),
                                        ("POST", f"/api/user/{mail}", {"password": "Us3r#secret1"})])
        assert sorted(results) == [201, 409, 409, 409], results
        state = dump(own_slapd)
        holders = [dn for dn in state if dn.startswith(f"mail={mail},")]
        assert len(holders) == 1, holders
        is_ml = "mlmmj" in state[holders[0]].get("enabledService", [])
        assert spool.list_dir(mail).exists() == is_ml
    groups = ",ou=groups,domainname=a.test,o=domains," + SUFFIX

    def lists_in(state):
        return [dn for dn in state if dn.endswith(groups)]

    have = len(lists_in(dump(own_slapd)))
    assert counter(dump(own_slapd)) == [str(have)]
    # numberOfLists: one place left, taken by one of four parallel creates of both kinds.
    assert client.put("/api/domain/a.test", {"numberOfLists": str(have + 1)}).status_code == 200
    results = _parallel(client_of, [("POST", f"/api/ml/l{i}@a.test", {}) for i in range(2)]
                        + [("POST", f"/api/maillist/o{i}@a.test", {}) for i in range(2)])
    assert sorted(results) == [201, 403, 403, 403], results
    state = dump(own_slapd)
    assert len(lists_in(state)) == have + 1 and counter(state) == [str(have + 1)]
    # No folder for the domain at all when every race so far was won by another kind.
    domain_dir = spool.spool_dir / "a.test"
    made = {p.name for p in domain_dir.iterdir()} if domain_dir.exists() else set()
    assert made == {dn.split(",")[0].split("=")[1].split("@")[0] for dn in lists_in(state)
                    if "mlmmj" in state[dn].get("enabledService", [])}
