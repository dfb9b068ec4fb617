"""`iredldap check [--repair]` and GET /api/check on a directory broken on purpose:
every kind of problem is found, --repair leaves `check` clean (apart from
what is reported only), and the exit status says whether anything is wrong."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from iredldap.backends import Backends, tree_of
from iredldap.web.app import create_app
from iredldap.db import iredapd as apd
from iredldap.db import tables as t
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB
from iredldap.directory.base import init_tree
from iredldap.directory.connection import ADD, REPLACE, Directory
from iredldap.directory.groups import AliasStore, ListStore

from .conftest import make_settings
from .support import ApiClient, Factory, cli_env, run_cli

pytestmark = pytest.mark.slapd


@pytest.fixture
def env(slapd_clean, tmp_path):
    return cli_env(slapd_clean, tmp_path)


run = run_cli


@pytest.fixture
def broken(env, slapd_clean, tmp_path):
    """A directory and databases with one of each problem (and healthy parts)."""
    assert run(env, "init-sql").exit_code == 0
    settings = make_settings(tmp_path)
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    tree = tree_of(settings)
    init_tree(directory, tree)
    factory = Factory(directory, settings)
    for d in ("good.test", "bad.test"):
        factory.domain(d)
    factory.global_admin("root@admins.test", "R00t#secret")
    factory.user("ann@good.test")
    factory.user("bob@bad.test")
    factory.user("cat@bad.test")
    aliases, lists = AliasStore(directory, tree), ListStore(directory, tree)
    aliases.create("team@good.test", {"members": ["ann@good.test"]})
    lists.create("staff@good.test", {"members": ["ann@good.test", "ext@elsewhere.test"]})
    healthy_dns = {e.dn for e in directory.subtree(tree.domain("good.test"))}

    # Half-written domain: a container missing.
    directory.delete(tree.container("bad.test", "Aliases"))
    # A counter that drifted.
    directory.modify(tree.domain("bad.test"), {"domainCurrentUserNumber": [(REPLACE, ["7"])]})
    # References to addresses nobody has.
    directory.modify(tree.user("bob@bad.test"), {"mailForwardingAddress": [(ADD, ["gone@good.test",
                                                                                  "far@elsewhere.test"])],
                                                 "memberOfGroup": [(ADD, ["nolist@good.test"])]})
    directory.modify(tree.domain("bad.test"), {"domainAdmin": [(ADD, ["ghost@admins.test"])]})
    # An externals entry whose list is gone, and one without members.
    directory.add(tree.externals("old@bad.test"), {"objectClass": ["mailExternalUser"],
                                                    "memberOfGroup": ["old@bad.test"], "mail": ["x@y.test"],
                                                    "accountStatus": ["active"]})
    lists.create("empty@bad.test", {"members": ["z@elsewhere.test"]})
    directory.modify(tree.externals("empty@bad.test"), {"mail": [(REPLACE, [])]})
    # An address claimed twice.
    directory.modify(tree.user("cat@bad.test"), {"shadowAddress": [(ADD, ["bob@bad.test"])]})
    # Policy rows of an account and of a domain that do not exist.
    iredapd = IredapdDB(settings.sql_iredapd_url)
    iredapd.create_tables()
    with iredapd.database.write() as conn:
        conn.execute(insert(apd.greylisting).values(account="nobody@bad.test", priority=10, sender="@.",
                                                    sender_priority=0, active=0))
        conn.execute(insert(apd.greylisting).values(account="@vanished.test", priority=60, sender="@.",
                                                    sender_priority=0, active=0))
    # A mailbox whose user is gone without a deleted_mailboxes row.
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    with db.engine.begin() as conn:
        conn.execute(insert(t.used_quota).values(username="lost@bad.test", bytes=10, messages=1,
                                                 domain="bad.test"))
    # An unfinished journal row (a worker that died mid-create of a user).
    from iredldap.db.journal import JournalTable
    from iredldap.directory.journal import add_step
    dn = tree.user("half@bad.test")
    attrs = {"objectClass": ["inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount"], "mail": ["half@bad.test"],
             "uid": ["half"], "cn": ["half"], "sn": ["half"], "accountStatus": ["active"],
             "homeDirectory": ["/var/vmail/vmail1/bad.test/half"]}
    directory.add(dn, attrs)
    JournalTable(db.engine).open(kind="create", targets=["mail:half@bad.test"], resume="back",
                                 owner="deadhost.invalid:1", steps=[add_step(dn, attrs)], done=1)
    with db.engine.begin() as conn:
        conn.execute(t.write_journal.update().values(state="open"))
    return directory, tree, healthy_dns, settings


def test_check_finds_each_problem_and_repair_leaves_it_clean(env, broken):
    directory, tree, healthy_dns, settings = broken
    r = run(env, "check", "--json")
    assert r.exit_code == 1, r.output
    report = json.loads(r.output)
    counts = report["counts"]
    assert counts == {"open_journal": 1, "half_written": 2, "counter": 1, "dangling_reference": 3,
                      "empty_externals": 1, "duplicate_address": 1, "orphan_policy": 2,
                      "mailbox_without_row": 1, "list_without_mlmmj": 0}, report["findings"]
    details = " | ".join(f"{f['dn']}: {f['detail']}" for f in report["findings"])
    for text in ("gone@good.test has no account", "nolist@good.test is not a mailing list",
                 "ghost@admins.test is not an admin", "lacks its container ou=Aliases",
                 "domainCurrentUserNumber is 7, the real count is 3", "bob@bad.test is claimed by 2",
                 "nobody@bad.test", "@vanished.test", "lost@bad.test"):
        assert text in details
    assert "far@elsewhere.test" not in details   # outside this server: not ours to judge
    assert "good.test" not in {f["dn"].rpartition(",o=domains")[0][-9:] for f in report["findings"]}

    # Human-readable output, limited to one domain.
    r = run(env, "check", "good.test")
    assert r.exit_code == 0 and "nothing wrong" in r.output, r.output

    r = run(env, "check", "--repair")
    assert r.exit_code == 1, r.output    # duplicates and lost mailboxes are reported, not guessed at
    assert "[repaired]" in r.output and "[not repaired]" in r.output
    r = run(env, "check", "--json")
    left = json.loads(r.output)
    assert {k: v for k, v in left["counts"].items() if v} == {"duplicate_address": 1, "mailbox_without_row": 1}
    # What was repaired is really so.
    bob = directory.get(tree.user("bob@bad.test"))
    assert bob.get("mailForwardingAddress") == ["far@elsewhere.test"] and not bob.get("memberOfGroup")
    domain = directory.get(tree.domain("bad.test"))
    assert domain.get("domainCurrentUserNumber") == ["2"] and domain.get("domainAdmin") == []
    assert directory.exists(tree.container("bad.test", "Aliases"))
    assert not directory.exists(tree.externals("old@bad.test"))
    assert not directory.exists(tree.externals("empty@bad.test"))
    assert not directory.exists(tree.user("half@bad.test"))      # the create was rolled back
    assert {e.dn for e in directory.subtree(tree.domain("good.test"))} == healthy_dns

    # Fix the rest by hand: then everything is clean, exit 0.
    directory.modify(tree.user("cat@bad.test"), {"shadowAddress": [(REPLACE, [])]})
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    db.record_deleted_mailboxes([{"username": "lost@bad.test", "domain": "bad.test", "maildir": "x"}],
                                admin="root@admins.test", keep_days=None)
    r = run(env, "check")
    assert r.exit_code == 0 and "nothing wrong" in r.output, r.output


def test_api_check_reports_to_global_admins_only(broken, tmp_path):
    directory, tree, healthy_dns, settings = broken
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    app = create_app(settings, Backends(directory, db, amavisd=AmavisdDB(settings.sql_amavisd_url),
                                        iredapd=IredapdDB(settings.sql_iredapd_url)))
    # create_app finished the dead worker's journal row at start.
    assert not directory.exists(tree.user("half@bad.test"))
    api = ApiClient(app, settings)
    api.login("root@admins.test", "R00t#secret")
    r = api.get("/api/check")
    assert r.status_code == 200, r.text
    data = r.json["_data"]
    assert data["clean"] is False and data["counts"]["half_written"] == 2 and data["counts"]["open_journal"] == 0
    assert api.get("/api/check", {"domains": "good.test"}).json["_data"]["clean"] is True
    # A GET repairs nothing.
    assert not directory.exists(tree.container("bad.test", "Aliases"))
    assert directory.exists(tree.externals("old@bad.test"))
    Factory(directory, settings).normal_admin("dom@admins.test", "D0m#secret-pw", domains=["good.test"])
    other = ApiClient(app, settings)
    other.login("dom@admins.test", "D0m#secret-pw")
    assert other.get("/api/check").status_code == 403
