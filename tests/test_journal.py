"""The write journal: a real slapd stopped (by the PID of the one this test
started) in the middle of a multi-entry write, then started again.  After the
next request, or after the journal is resumed as `iredldap check --repair`
does, every object is whole or absent, nothing asked for deletion survives,
nothing else is gone, and every removed mailbox has its deleted_mailboxes row.

The stop is deterministic: the test's Directory stops slapd just before its
k-th write of the request is sent, so that write and all after it fail.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from iredldap.model import passwords
from iredldap.backends import tree_of
from iredldap.db import tables as t
from iredldap.directory.base import init_tree
from iredldap.directory.connection import SUBTREE, Directory
from iredldap.directory.localslapd import LocalSlapd
from iredldap.directory.users import UserStore

from .conftest import build_app
from .support import ApiClient

pytestmark = pytest.mark.slapd

SUFFIX = "dc=example,dc=com"
ADMIN, ADMIN_PW = "root@admins.test", "R00t#pw"
HASH = passwords.hash_password("Us3r#secret", "SSHA")


class StoppingDirectory(Directory):
    """Stops its slapd just before the `stop_at`-th write (counted from `arm()`)."""

    def __init__(self, slapd: LocalSlapd, **kw):
        super().__init__(slapd.uri, slapd.root_dn, slapd.root_password, timeout=3, **kw)
        self.slapd = slapd
        self.writes = 0
        self.stop_at: int | None = None

    def arm(self, k: int) -> None:
        self.writes, self.stop_at = 0, k

    def _before_write(self) -> None:
        if self.stop_at is None:
            return
        self.writes += 1
        if self.writes == self.stop_at:
            self.stop_at = None
            self.slapd.stop()

    def add(self, dn, attrs):
        self._before_write()
        super().add(dn, attrs)

    def modify(self, dn, changes):
        if changes:
            self._before_write()
        super().modify(dn, changes)

    def increment(self, dn, attr, delta):
        self._before_write()
        return super().increment(dn, attr, delta)

    def delete(self, dn):
        self._before_write()
        super().delete(dn)


@pytest.fixture
def world(own_slapd, settings, iredadmin, sqlite_templates):
    directory = StoppingDirectory(own_slapd)
    tree = tree_of(settings)
    init_tree(directory, tree)
    from iredldap.directory.admins import AdminStore
    AdminStore(directory, tree).create_standalone(ADMIN, password_hash=passwords.hash_password(ADMIN_PW, "SSHA"),
                                                 is_global=True)
    app = build_app(settings, directory, iredadmin, sqlite_templates)
    client = ApiClient(app, settings)
    client.login(ADMIN, ADMIN_PW)
    return directory, client, tree


def dump(slapd: LocalSlapd) -> dict[str, dict[str, list[str]]]:
    """Every entry under the suffix, operational attributes left out."""
    conn = slapd.connection()
    try:
        conn.search(SUFFIX, "(objectClass=*)", SUBTREE, attributes=["*"])
        return {e["dn"].lower(): {k: sorted(str(x) for x in v) for k, v in e["attributes"].items()}
                for e in conn.response if e.get("type") == "searchResEntry"}
    finally:
        conn.unbind()


def journal_rows(iredadmin):
    with iredadmin.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.write_journal))]


def journal_steps(iredadmin):
    with iredadmin.engine.connect() as conn:
        return conn.execute(select(t.write_journal_steps)).all()


def deleted_rows(iredadmin):
    with iredadmin.engine.connect() as conn:
        return {r.username: r for r in conn.execute(select(t.deleted_mailboxes))}


def fill_domain(directory, tree, settings, domain: str, users: int) -> list[str]:
    from iredldap.directory.domains import DomainStore
    DomainStore(directory, tree, default_transport="dovecot").create(domain, {})
    store = UserStore(directory, tree, settings)
    return [store.create(f"u{i:03d}@{domain}", {}, password_hash=HASH) and f"u{i:03d}@{domain}"
            for i in range(users)]


@pytest.mark.parametrize("finish", ["next_request", "resume_all"])
def test_domain_delete_cut_short_is_finished(world, own_slapd, settings, iredadmin, finish):
    directory, client, tree = world
    mails = fill_domain(directory, tree, settings, "big.test", 200)
    fill_domain(directory, tree, settings, "other.test", 3)
    before = dump(own_slapd)
    doomed = {dn for dn in before if dn.endswith("domainname=big.test,o=domains," + SUFFIX)}
    assert len(doomed) == 1 + 4 + 200

    directory.arm(120)   # slapd goes after 119 of 205 entries are deleted
    r = client.delete("/api/domain/big.test")
    assert r.status_code == 503, r.text
    assert not own_slapd.running()
    [row] = [r for r in journal_rows(iredadmin) if r["kind"] == "delete"]
    assert row["state"] == "open" and row["resume"] == "forward" and row["done"] == 119
    # The rows were written before the first entry went.
    assert set(deleted_rows(iredadmin)) == set(mails)

    own_slapd.start()
    half = dump(own_slapd)
    assert 0 < len(doomed & set(half)) < len(doomed)
    if finish == "next_request":
        assert client.get("/api/domain/big.test").status_code == 404
    else:
        directory.journal.resume_all()
    after = dump(own_slapd)
    assert not doomed & set(after), "nothing asked for deletion survives"
    assert {dn: v for dn, v in before.items() if dn not in doomed} == after, "nothing else changed"
    rows = deleted_rows(iredadmin)
    assert set(rows) == set(mails)
    assert all(rows[m].maildir for m in mails)
    [row] = [r for r in journal_rows(iredadmin) if r["kind"] == "delete"]
    assert row["state"] == "done"
    assert not journal_steps(iredadmin), "a closed row keeps no entry contents"


@pytest.mark.parametrize("k", [2, 3, 5])
def test_domain_create_cut_short_is_undone_and_the_retry_succeeds(world, own_slapd, iredadmin, k):
    directory, client, tree = world
    before = dump(own_slapd)
    directory.arm(k)
    r = client.post("/api/domain/new.test", {"name": "New"})
    assert r.status_code == 503, r.text
    [row] = [r for r in journal_rows(iredadmin) if r["kind"] == "create"]
    assert row["state"] == "open" and row["done"] == k - 1

    own_slapd.start()
    assert len(dump(own_slapd)) == len(before) + k - 1  # half-written for now
    r = client.post("/api/domain/new.test", {"name": "New"})
    assert r.status_code == 201, r.text   # never 409 on a broken domain
    after = dump(own_slapd)
    domain_dn = "domainname=new.test,o=domains," + SUFFIX
    assert {dn for dn in after if dn.endswith(domain_dn)} == {domain_dn} | {
        f"ou={ou},{domain_dn}".lower() for ou in ("users", "groups", "aliases", "externals")}
    assert [r["state"] for r in journal_rows(iredadmin) if r["kind"] == "create"] == ["undone", "done"]


def test_domain_create_cut_short_is_absent_after_resume(world, own_slapd, iredadmin):
    directory, client, tree = world
    before = dump(own_slapd)
    directory.arm(4)
    assert client.post("/api/domain/new.test").status_code == 503
    own_slapd.start()
    assert directory.journal.resume_all()
    assert dump(own_slapd) == before
    assert client.get("/api/domain/new.test").status_code == 404


def _values_anywhere(dump_: dict, value: str) -> list[str]:
    return [f"{dn} {attr}" for dn, attrs in dump_.items() for attr, values in attrs.items()
            if value in (v.lower() for v in values)]


def test_user_rename_cut_short_is_rolled_forward(world, own_slapd, settings, iredadmin):
    directory, client, tree = world
    fill_domain(directory, tree, settings, "a.test", 3)
    from iredldap.directory.groups import AliasStore
    aliases = AliasStore(directory, tree)
    for i in range(40):
        aliases.create(f"al{i:02d}@a.test", {"members": ["u000@a.test", "u001@a.test"]})
    directory.modify(tree.user("u002@a.test"), {"mailForwardingAddress": [("MODIFY_ADD", ["u000@a.test"])]})
    directory.modify(tree.domain("a.test"), {"domainAdmin": [("MODIFY_ADD", ["u000@a.test"])]})
    before = dump(own_slapd)
    old, new = "u000@a.test", "ann@a.test"
    assert len(_values_anywhere(before, old)) == 1 + 40 + 1 + 1   # its own mail, aliases, a forward, domainAdmin

    directory.arm(20)   # the new entry and 18 of 42 references, then slapd goes
    r = client.post(f"/api/user/{old}/change_email/{new}")
    assert r.status_code == 503, r.text
    [row] = [r for r in journal_rows(iredadmin) if r["kind"] == "rename"]
    assert row["state"] == "open" and row["done"] == 19
    own_slapd.start()
    half = dump(own_slapd)
    assert _values_anywhere(half, old) and _values_anywhere(half, new)

    r = client.get(f"/api/user/{new}")
    assert r.status_code == 200, r.text
    after = dump(own_slapd)
    assert not _values_anywhere(after, old), "the old address is gone everywhere"
    assert tree.user(old).lower() not in after and tree.user(new).lower() in after
    assert len(_values_anywhere(after, new)) == len(_values_anywhere(before, old))
    # Nothing else changed: the same entries, values renamed.
    renamed = {dn.replace(old, new) if dn == tree.user(old).lower() else dn: attrs for dn, attrs in before.items()}
    assert set(renamed) == set(after)
    for dn in after:
        if dn == tree.user(new).lower():
            continue
        assert {a: sorted(new if v.lower() == old else v for v in vs) for a, vs in renamed[dn].items()} == after[dn], dn
    assert journal_rows(iredadmin)[-1]["state"] == "done"


def test_list_delete_with_externals_cut_short_is_rolled_forward(world, own_slapd, settings, iredadmin):
    directory, client, tree = world
    members = fill_domain(directory, tree, settings, "a.test", 30)
    externals = [f"ext{i:02d}@elsewhere.test" for i in range(20)]
    from iredldap.directory.groups import ListStore
    ListStore(directory, tree).create("staff@a.test", {"members": members + externals})
    before = dump(own_slapd)
    assert len(_values_anywhere(before, "staff@a.test")) == 1 + 30 + 1   # the list, members, externals entry
    doomed = {tree.maillist("staff@a.test").lower(), tree.externals("staff@a.test").lower()}
    assert doomed <= set(before)

    directory.arm(12)
    r = client.delete("/api/maillist/staff@a.test")
    assert r.status_code == 503, r.text
    own_slapd.start()
    assert 0 < len(_values_anywhere(dump(own_slapd), "staff@a.test")) < 32
    directory.journal.resume_all()
    after = dump(own_slapd)
    assert not _values_anywhere(after, "staff@a.test")
    assert set(after) == set(before) - doomed, "only the list and its externals entry are gone"
    for dn in after:
        if dn.startswith("domainname=a.test,"):
            assert after[dn]["domainCurrentListNumber"] == ["0"]
            continue
        assert {a: [v for v in vs if v.lower() != "staff@a.test"] for a, vs in before[dn].items()
                if [v for v in vs if v.lower() != "staff@a.test"]} == after[dn], dn


def test_domain_delete_refused_part_way_is_undone_with_its_rows(world, own_slapd, settings, iredadmin):
    """The directory answers but refuses a step: compensation puts everything
    back, the deleted_mailboxes rows written beforehand are taken back, the
    journal row is closed as undone."""
    directory, client, tree = world
    mails = fill_domain(directory, tree, settings, "keep.test", 20)
    before = dump(own_slapd)
    from iredldap.errors import DirectoryError
    real_delete = Directory.delete
    count = {"n": 0}

    def refusing(self, dn):
        count["n"] += 1
        if count["n"] == 10:
            raise DirectoryError("refused on purpose")
        real_delete(self, dn)
    directory.delete = refusing.__get__(directory)
    try:
        r = client.delete("/api/domain/keep.test")
    finally:
        del directory.delete
    assert r.status_code == 500 and r.json["_msg"] == "DIRECTORY_ERROR", r.text
    assert dump(own_slapd) == before
    assert not set(deleted_rows(iredadmin)) & set(mails)
    assert [r["state"] for r in journal_rows(iredadmin) if r["kind"] == "delete"] == ["undone"]


@contextmanager
def paused_at_write(directory, slapd, k: int, seconds: float = 3.6):
    """Pause slapd (SIGSTOP by its PID) just before the k-th write of the block,
    for longer than the LDAP timeout (3 s), then let it go on (SIGCONT).
    Yields a list that holds one entry once the pause happened."""
    pid = slapd._pid()
    paused, timers, writes = [], [], [0]

    def before_write():
        writes[0] += 1
        if writes[0] == k:
            os.kill(pid, signal.SIGSTOP)
            paused.append(pid)
            timer = threading.Timer(seconds, os.kill, (pid, signal.SIGCONT))
            timer.start()
            timers.append(timer)

    directory._before_write = before_write
    try:
        yield paused
    finally:
        del directory._before_write
        for timer in timers:
            timer.join()
        os.kill(pid, signal.SIGCONT)


def test_write_without_answer_that_landed_counts_as_done(world, own_slapd, iredadmin):
    """slapd paused (SIGSTOP by its PID) while a write of a create is on its
    way: the answer does not come within the LDAP timeout, slapd resumes and
    carries the write out; the service asks whether it landed, finds it did,
    finishes the create and answers 201 (audit: info, not error).  slapd may
    also drop a write whose connection was given up on: then the answer is
    503 with the journal row open, and the retry succeeds.  Which of the two
    happens is up to slapd's timing; both are checked for what they claim."""
    directory, client, tree = world
    with paused_at_write(directory, own_slapd, 3) as paused:
        r = client.post("/api/domain/slow.test", {"name": "Slow"})
    assert paused, "slapd was never paused"
    domain_dn = "domainname=slow.test,o=domains," + SUFFIX
    with iredadmin.engine.connect() as conn:
        audit = [a.loglevel for a in conn.execute(select(t.log.c.loglevel).where(t.log.c.msg.like("%slow.test%")))]
    if r.status_code == 201:
        # It landed and the service found out: the create is whole and says so.
        assert len([dn for dn in dump(own_slapd) if dn.endswith(domain_dn)]) == 5
        assert [r["state"] for r in journal_rows(iredadmin) if r["kind"] == "create"] == ["done"]
        assert audit == ["info"]
    else:
        # slapd dropped the write of the connection given up on, or the
        # service could not tell in time: 503 with the row open, and the
        # retry finds a whole domain or none, never a 409.
        assert r.status_code == 503, r.text
        assert audit == ["error"]
        assert [r["state"] for r in journal_rows(iredadmin) if r["kind"] == "create"] == ["open"]
        r = client.post("/api/domain/slow.test", {"name": "Slow"})
        assert r.status_code == 201, r.text
        assert len([dn for dn in dump(own_slapd) if dn.endswith(domain_dn)]) == 5


def test_journal_holds_no_clear_text_password(world, own_slapd, settings, iredadmin):
    directory, client, tree = world
    from iredldap.directory.domains import DomainStore
    DomainStore(directory, tree, default_transport="dovecot").create("pw.test", {})
    secret = "Cl3ar#Text-Secret"
    directory.arm(2)   # the user lands, the counter does not
    r = client.post("/api/user/ann@pw.test", {"password": secret})
    assert r.status_code == 503, r.text
    [row] = [r for r in journal_rows(iredadmin) if r["kind"] == "create" and "mail:ann@pw.test" in r["targets"]]
    assert row["state"] == "open"
    text = " ".join(s.step for s in journal_steps(iredadmin))
    assert "userPassword" in text and secret not in text
    own_slapd.start()
    # A create cut short is undone: the retry creates the user afresh.
    r = client.post("/api/user/ann@pw.test", {"password": secret})
    assert r.status_code == 201, r.text
    entry = directory.get(tree.domain("pw.test"))
    assert entry.get("domainCurrentUserNumber") == ["1"]


def test_single_write_without_answer_tells_the_truth(world, own_slapd, iredadmin, settings):
    """A one-entry change (no journal) whose answer does not come in time:
    slapd is paused (SIGSTOP by its PID) just before the modify and resumed
    after the LDAP timeout.  Whatever slapd then does with the write, the
    answer and the audit row agree with the directory: 200 and `info` when
    the change is there, 503 and `error` when it is not -- never a 503 for a
    change that landed."""
    directory, client, tree = world
    fill_domain(directory, tree, settings, "quiet.test", 0)
    UserStore(directory, tree, settings).create("ann@quiet.test", {}, password_hash=HASH)
    with paused_at_write(directory, own_slapd, 1) as paused:
        r = client.put("/api/user/ann@quiet.test", {"name": "Ann Paused"})
    assert paused, "slapd was never paused"
    cn = dump(own_slapd)["mail=ann@quiet.test,ou=users,domainname=quiet.test,o=domains," + SUFFIX]["cn"]
    with iredadmin.engine.connect() as conn:
        audit = [a.loglevel for a in conn.execute(select(t.log.c.loglevel)
                                                  .where(t.log.c.msg.like("%PUT /api/user/ann@quiet.test%")))]
    if cn == ["Ann Paused"]:
        assert r.status_code == 200 and audit == ["info"], (r.text, audit)
    else:
        assert cn == ["ann"]
        assert r.status_code == 503 and audit == ["error"], (r.text, audit)
