"""Subscribable (mlmmj) lists, /api/ml and /api/mls (issue 14), with the
`local` backend: the LDAP entry read back attribute by attribute, Postfix's
own filters, the spool files mlmmj reads (and Debian's mlmmj-list), all or
nothing across the two halves, and the old lists never confused with these.
Runs on MOCK_SYNC and on a real slapd (the `directory` fixture).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from ldap3.utils.conv import escape_filter_chars

from iredldap.directory.connection import SUBTREE
from iredldap.mlmmj.spool import LocalSpool

from .conftest import build_app
from .support import ApiClient, assert_error
from .test_mlmmj_delivery import sink  # noqa: F401 - the SMTP sink fixture

PW = "Secr3t#pass"
SKEL = "/usr/share/mlmmj/text.skel"
DOMAINS = "o=domains,dc=example,dc=com"

# Postfix's lookups, as iRedMail ships them (mlmmj.md 2.5): virtual_group_maps
# (its mlmmj branch and what the whole filter requires) and transport_maps_user.
VIRTUAL_GROUP_MAPS = (
    "(&(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail)(enabledService=deliver)"
    "(|(&(|(memberOfGroup=%s)(shadowAddress=%s))(|(objectClass=mailUser)(objectClass=mailExternalUser)))"
    "(&(memberOfGroup=%s)(!(shadowAddress=%s))(|(objectClass=mailAlias)(objectClass=mailList)))"
    "(&(objectClass=mailList)(enabledService=mlmmj)(|(mail=%s)(shadowAddress=%s)))))")
TRANSPORT_MAPS_USER = (
    "(&(|(objectClass=mailUser)(&(objectClass=mailList)(enabledService=mlmmj)))(|(mail=%s)(shadowAddress=%s))"
    "(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail))")


def group_maps(directory, address: str) -> list[str]:
    flt = VIRTUAL_GROUP_MAPS.replace("%s", escape_filter_chars(address))
    return sorted(v for e in directory.search(DOMAINS, flt, scope=SUBTREE, attrs=("mail",)) for v in e.get("mail"))


def transport(directory, address: str) -> list[str]:
    domain = address.rpartition("@")[2]
    flt = TRANSPORT_MAPS_USER.replace("%s", escape_filter_chars(address))
    return [v for e in directory.search(f"domainName={domain},{DOMAINS}", flt, scope=SUBTREE,
                                        attrs=("mtaTransport",)) for v in e.get("mtaTransport")]


@pytest.fixture
def spool(tmp_path) -> LocalSpool:
    (tmp_path / "spool").mkdir(mode=0o700)
    return LocalSpool(tmp_path / "spool", tmp_path / "archive", SKEL)


@pytest.fixture
def ml_app(settings, directory, iredadmin, sqlite_templates, spool):
    return build_app(settings, directory, iredadmin, sqlite_templates, list_spool=spool)


@pytest.fixture
def mlapi(ml_app, settings, factory):
    factory.global_admin("root@admins.test", "R00t#secret")
    factory.domain("a.test", aliasDomains=["alias-a.test"])
    factory.domain("b.test")
    client = ApiClient(ml_app, settings)
    client.login("root@admins.test", "R00t#secret")
    return client


def ml_entry(factory, mail):
    local, _, domain = mail.partition("@")
    return factory.entry(f"mail={mail},ou=Groups,domainName={domain},{DOMAINS}")


def listdir(spool: LocalSpool, mail: str) -> Path:
    return spool.list_dir(mail)


def control(spool: LocalSpool, mail: str, name: str) -> str | None:
    path = listdir(spool, mail) / "control" / name
    return path.read_text() if path.exists() else None


def tree_of_files(root: Path) -> dict[str, str]:
    """Every path under `root` (symbolic links to folders not followed, as
    `Path.rglob`) with a file's text, "<dir>" for anything else."""
    tree: dict[str, str] = {}
    top = os.path.join(str(root), "")
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tree[path[len(top):]] = f.read()
            else:
                tree[path[len(top):]] = "<dir>"
    return tree


def snapshot(factory, spool: LocalSpool) -> tuple[dict, dict]:
    entries = {e.dn.lower(): {k.lower(): sorted(v) for k, v in e.attrs.items()
                              if k.lower() not in ("modifytimestamp", "entrycsn")}
               for e in factory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE)}
    files = tree_of_files(spool.spool_dir)
    if spool.archive_dir is not None:
        files.update({f"archive/{k}": v for k, v in tree_of_files(spool.archive_dir).items()})
    return entries, files


def counter(factory, domain: str) -> str:
    return factory.entry(f"domainName={domain},{DOMAINS}").first("domainCurrentListNumber")


FULL = {
    "name": "Sales Team", "accessPolicy": "membersonly", "owner": "Boss@a.test,boss2@ext.test",
    "moderators": "mod@a.test", "max_message_size": "10240", "newsletter_description": "News for all",
    "is_newsletter": "yes", "subject_prefix": "[sales] ", "disable_archive": "yes",
    "custom_headers": "X-Team: sales\nX-Other: 1", "extra_addresses": "extra@a.test",
}


# -- create -------------------------------------------------------------------------

def test_create_writes_the_entry_iredmail_expects(mlapi, factory, directory, spool):
    r = mlapi.post("/api/ml/sales@a.test", FULL)
    assert r.status_code == 201, r.text
    e = ml_entry(factory, "sales@a.test")
    assert [c for c in e.get("objectClass") if c.lower() != "top"] == ["mailList"]
    assert e.get("mail") == ["sales@a.test"]
    assert e.get("mtaTransport") == ["mlmmj:a.test/sales"]
    assert str(uuid.UUID(e.first("mailingListID"))) == e.first("mailingListID")
    assert e.get("accountStatus") == ["active"]
    assert sorted(e.get("enabledService")) == ["deliver", "mail", "mlmmj"]
    assert e.get("cn") == ["Sales Team"]
    assert e.get("accessPolicy") == ["membersonly"]
    assert e.get("maxMessageSize") == ["10240"]
    assert e.get("shadowAddress") == ["sales@alias-a.test"]
    assert sorted(e.get("listOwner")) == ["boss2@ext.test", "boss@a.test"]
    assert e.get("listModerator") == ["mod@a.test"]
    assert sorted(e.get("listAllowedUser")) == ["boss2@ext.test", "boss@a.test", "mod@a.test"]
    assert e.get("description") == ["News for all"]
    assert not e.get("domainStatus") and not e.get("memberOfGroup") and not e.get("mailForwardingAddress")
    assert counter(factory, "a.test") == "1"
    # Postfix: known and routed to mlmmj, under its alias-domain twin too.
    assert group_maps(directory, "sales@a.test") == ["sales@a.test"]
    assert group_maps(directory, "sales@alias-a.test") == ["sales@a.test"]
    assert transport(directory, "sales@a.test") == ["mlmmj:a.test/sales"]
    # mlmmj: the list directory and its control files.
    d = listdir(spool, "sales@a.test")
    assert d == spool.spool_dir / "a.test" / "sales"
    for sub in ("archive", "control", "subscribers.d", "digesters.d", "nomailsubs.d", "text", "subconf"):
        assert (d / sub).is_dir(), sub
    assert control(spool, "sales@a.test", "name") == "Sales Team\n"
    assert control(spool, "sales@a.test", "owner") == "boss@a.test\nboss2@ext.test\n"
    assert control(spool, "sales@a.test", "moderators") == "mod@a.test\n"
    assert control(spool, "sales@a.test", "maxmailsize") == "10240\n"
    assert control(spool, "sales@a.test", "prefix") == "[sales] \n"
    assert control(spool, "sales@a.test", "listaddress") == "sales@a.test\nextra@a.test\n"
    assert control(spool, "sales@a.test", "noarchive") == ""
    assert control(spool, "sales@a.test", "enable_newsletter_subscription") == ""
    assert control(spool, "sales@a.test", "subonlypost") == ""     # accessPolicy=membersonly
    assert control(spool, "sales@a.test", "modonlypost") is None
    headers = control(spool, "sales@a.test", "customheaders").splitlines()
    assert headers[:2] == ["X-Other: 1", "X-Team: sales"] and "List-Id: <sales@a.test>" in headers
    # GET: the entry and the profile in one object.
    data = mlapi.get("/api/ml/sales@a.test").json["_data"]
    assert data["mail"] == ["sales@a.test"] and data["mtaTransport"] == ["mlmmj:a.test/sales"]
    assert data["name"] == "Sales Team" and data["subject_prefix"] == "[sales] "
    assert data["is_newsletter"] == "yes" and data["disable_archive"] == "yes"
    assert data["only_subscriber_can_post"] == "yes" and data["owner"] == ["boss2@ext.test", "boss@a.test"]
    assert "subscribers" not in data


def test_a_bare_create_and_the_defaults(mlapi, factory, spool):
    assert mlapi.post("/api/ml/plain@b.test").status_code == 201
    e = ml_entry(factory, "plain@b.test")
    assert e.get("cn") == ["plain"] and not e.get("accessPolicy") and not e.get("listOwner")
    assert not e.get("shadowAddress")
    assert control(spool, "plain@b.test", "owner") == "postmaster@b.test\n"
    assert control(spool, "plain@b.test", "smtpport") == "10027\n"
    assert control(spool, "plain@b.test", "subonlypost") == ""
    other = mlapi.post("/api/ml/other@b.test")
    assert other.status_code == 201
    assert ml_entry(factory, "other@b.test").first("mailingListID") != e.first("mailingListID")
    assert counter(factory, "b.test") == "2"


def test_subscribers_at_create_and_by_put(mlapi, factory, spool):
    r = mlapi.post("/api/ml/news@a.test", {"subscribers": "alice@x.test,Bob@y.test", "require_confirm": "no"})
    assert r.status_code == 201, r.text
    d = listdir(spool, "news@a.test")
    assert (d / "subscribers.d" / "a").read_text() == "alice@x.test\n"
    assert (d / "subscribers.d" / "b").read_text() == "bob@y.test\n"
    r = mlapi.put("/api/ml/news@a.test", {"add_subscribers": "dave@z.test", "subscription": "digest",
                                          "require_confirm": "no"})
    assert r.status_code == 200, r.text
    assert (d / "digesters.d" / "d").read_text() == "dave@z.test\n"
    r = mlapi.put("/api/ml/news@a.test", {"add_subscribers": "nora@z.test", "subscription": "nomail",
                                          "require_confirm": "no"})
    assert (d / "nomailsubs.d" / "n").read_text() == "nora@z.test\n"
    # Debian's mlmmj reads what we wrote.
    listed = subprocess.run(["/usr/bin/mlmmj-list", "-L", str(d)], capture_output=True, text=True, timeout=30)
    assert sorted(listed.stdout.split()) == ["alice@x.test", "bob@y.test"]
    digest = subprocess.run(["/usr/bin/mlmmj-list", "-L", str(d), "-d"], capture_output=True, text=True, timeout=30)
    assert digest.stdout.split() == ["dave@z.test"]
    data = mlapi.get("/api/ml/news@a.test", {"with_subscribers": "yes"}).json["_data"]
    assert sorted((s["mail"], s["subscription"]) for s in data["subscribers"]) == [
        ("alice@x.test", "normal"), ("bob@y.test", "normal"), ("dave@z.test", "digest"), ("nora@z.test", "nomail")]
    assert mlapi.put("/api/ml/news@a.test", {"remove_subscribers": "alice@x.test,dave@z.test"}).status_code == 200
    assert not (d / "subscribers.d" / "a").exists() and not (d / "digesters.d" / "d").exists()
    assert (d / "subscribers.d" / "b").read_text() == "bob@y.test\n"
    # Subscribers are never in LDAP.
    e = ml_entry(factory, "news@a.test")
    assert not any("bob@y.test" in v for values in e.attrs.values() for v in values)


def test_require_confirm_runs_mlmmj_sub_and_subscribes_nobody_yet(mlapi, spool):
    assert mlapi.post("/api/ml/conf@a.test", {"relay_host": "127.0.0.1", "smtp_port": "9"}).status_code == 201
    r = mlapi.put("/api/ml/conf@a.test", {"add_subscribers": "carol@x.test"})   # require_confirm: yes by default
    assert r.status_code == 200, r.text
    d = listdir(spool, "conf@a.test")
    assert not (d / "subscribers.d" / "c").exists()
    assert [p.name for p in (d / "subconf").iterdir() if p.name.endswith("-carol=x.test")]


# -- update ---------------------------------------------------------------------------

def test_update_changes_both_halves(mlapi, factory, directory, spool):
    mlapi.post("/api/ml/sales@a.test", FULL)
    before_id = ml_entry(factory, "sales@a.test").first("mailingListID")
    r = mlapi.put("/api/ml/sales@a.test", {"name": "Renamed", "accessPolicy": "moderatorsonly",
                                           "moderators": "m2@a.test", "max_message_size": "0",
                                           "subject_prefix": "", "newsletter_description": "",
                                           "disable_archive": "no"})
    assert r.status_code == 200, r.text
    e = ml_entry(factory, "sales@a.test")
    assert e.get("cn") == ["Renamed"] and e.get("accessPolicy") == ["moderatorsonly"]
    assert e.get("listModerator") == ["m2@a.test"]
    assert sorted(e.get("listAllowedUser")) == ["boss2@ext.test", "boss@a.test", "m2@a.test"]
    assert not e.get("maxMessageSize") and not e.get("description")
    assert e.first("mailingListID") == before_id and e.get("mtaTransport") == ["mlmmj:a.test/sales"]
    assert control(spool, "sales@a.test", "name") == "Renamed\n"
    assert control(spool, "sales@a.test", "moderators") == "m2@a.test\n"
    assert control(spool, "sales@a.test", "maxmailsize") is None
    assert control(spool, "sales@a.test", "prefix") is None
    assert control(spool, "sales@a.test", "noarchive") is None
    assert control(spool, "sales@a.test", "modonlypost") == "" and control(spool, "sales@a.test", "subonlypost") is None
    # Disabled: Postfix no longer routes it.
    assert mlapi.put("/api/ml/sales@a.test", {"accountStatus": "disabled"}).status_code == 200
    assert ml_entry(factory, "sales@a.test").get("accountStatus") == ["disabled"]
    assert group_maps(directory, "sales@a.test") == [] and transport(directory, "sales@a.test") == []
    assert mlapi.put("/api/ml/sales@a.test", {"accountStatus": "active"}).status_code == 200
    assert transport(directory, "sales@a.test") == ["mlmmj:a.test/sales"]


def test_a_disabled_domain_stops_its_lists(mlapi, factory, directory):
    mlapi.post("/api/ml/sales@a.test")
    assert mlapi.put("/api/domain/a.test", {"accountStatus": "disabled"}).status_code == 200
    assert ml_entry(factory, "sales@a.test").get("domainStatus") == ["disabled"]
    assert group_maps(directory, "sales@a.test") == [] and transport(directory, "sales@a.test") == []
    # A list created while its domain is disabled starts disabled too.
    assert mlapi.post("/api/ml/later@a.test").status_code == 201
    assert ml_entry(factory, "later@a.test").get("domainStatus") == ["disabled"]
    assert transport(directory, "later@a.test") == []


# -- delete, rename, the domain ---------------------------------------------------------

def test_delete_archives_by_default_and_keep_archive_no_removes(mlapi, factory, spool):
    mlapi.post("/api/ml/one@a.test", {"subscribers": "s@x.test", "require_confirm": "no"})
    mlapi.post("/api/ml/two@a.test")
    assert counter(factory, "a.test") == "2"
    assert mlapi.delete("/api/ml/one@a.test").status_code == 200
    assert ml_entry(factory, "one@a.test") is None and not listdir(spool, "one@a.test").exists()
    archived = list((spool.archive_dir / "a.test").iterdir())
    assert len(archived) == 1 and archived[0].name.startswith("one-")
    assert (archived[0] / "one" / "subscribers.d" / "s").read_text() == "s@x.test\n"
    assert mlapi.delete("/api/ml/two@a.test", query={"keep_archive": "no"}).status_code == 200
    assert not listdir(spool, "two@a.test").exists()
    assert len(list((spool.archive_dir / "a.test").iterdir())) == 1
    assert counter(factory, "a.test") == "0"
    assert_error(mlapi.delete("/api/ml/two@a.test"), 404, "NO_SUCH_ACCOUNT")


def test_change_email_moves_entry_transport_and_spool(mlapi, factory, directory, spool):
    mlapi.post("/api/ml/old@a.test", {"name": "Keep", "subscribers": "s@x.test", "require_confirm": "no"})
    mlid = ml_entry(factory, "old@a.test").first("mailingListID")
    r = mlapi.post("/api/ml/old@a.test/change_email/new@b.test")
    assert r.status_code == 200, r.text
    assert ml_entry(factory, "old@a.test") is None
    e = ml_entry(factory, "new@b.test")
    assert e.get("mtaTransport") == ["mlmmj:b.test/new"] and e.first("mailingListID") == mlid
    assert e.get("cn") == ["Keep"] and not e.get("shadowAddress")
    assert transport(directory, "new@b.test") == ["mlmmj:b.test/new"] and transport(directory, "old@a.test") == []
    assert not listdir(spool, "old@a.test").exists()
    assert control(spool, "new@b.test", "listaddress").splitlines()[0] == "new@b.test"
    assert (listdir(spool, "new@b.test") / "subscribers.d" / "s").read_text() == "s@x.test\n"
    assert counter(factory, "a.test") == "0" and counter(factory, "b.test") == "1"


def test_domain_delete_takes_its_lists_and_their_spool(mlapi, factory, spool):
    mlapi.post("/api/ml/one@b.test")
    mlapi.post("/api/maillist/old@b.test")
    assert mlapi.delete("/api/domain/b.test").status_code == 200
    assert ml_entry(factory, "one@b.test") is None
    assert not listdir(spool, "one@b.test").exists()
    archived = list((spool.archive_dir / "b.test").iterdir())
    assert [p.name.rpartition("-")[0] for p in archived] == ["one"]


# -- the two kinds of list ----------------------------------------------------------------

def test_old_and_new_lists_are_never_confused(mlapi, factory, spool):
    assert mlapi.post("/api/maillist/old@a.test", {"members": "x@ext.test"}).status_code == 201
    assert mlapi.post("/api/ml/new@a.test").status_code == 201
    assert counter(factory, "a.test") == "2"
    assert mlapi.get("/api/mls/a.test", {"email_only": "yes"}).json["_data"] == ["new@a.test"]
    assert mlapi.get("/api/maillists/a.test", {"email_only": "yes"}).json["_data"] == ["old@a.test"]
    full = mlapi.get("/api/mls/a.test").json["_data"]
    assert [d["mail"] for d in full] == [["new@a.test"]] and full[0]["owner"] == ["postmaster@a.test"]
    assert_error(mlapi.get("/api/ml/old@a.test"), 404, "NO_SUCH_ACCOUNT")
    assert_error(mlapi.get("/api/maillist/new@a.test"), 404, "NO_SUCH_ACCOUNT")
    assert_error(mlapi.put("/api/ml/old@a.test", {"name": "x"}), 404, "NO_SUCH_ACCOUNT")
    assert_error(mlapi.delete("/api/maillist/new@a.test"), 404, "NO_SUCH_ACCOUNT")
    assert_error(mlapi.post("/api/ml/old@a.test/change_email/x@a.test"), 404, "NO_SUCH_ACCOUNT")
    # LDIF: each kind at its own route.
    assert mlapi.get("/api/ldif/ml/new@a.test").status_code == 200
    assert "enabledService: mlmmj" in mlapi.get("/api/ldif/ml/new@a.test").text
    assert_error(mlapi.get("/api/ldif/ml/old@a.test"), 404, "NO_SUCH_ACCOUNT")
    assert_error(mlapi.get("/api/ldif/maillist/new@a.test"), 404, "NO_SUCH_ACCOUNT")
    # Deleting one kind leaves the other and counts down the one counter.
    assert mlapi.delete("/api/maillist/old@a.test").status_code == 200
    assert counter(factory, "a.test") == "1" and ml_entry(factory, "new@a.test") is not None


def test_both_kinds_share_the_domains_list_limit(mlapi, factory, spool):
    assert mlapi.put("/api/domain/a.test", {"numberOfLists": "2"}).status_code == 200
    assert mlapi.post("/api/maillist/old@a.test").status_code == 201
    assert mlapi.post("/api/ml/new@a.test").status_code == 201
    before = snapshot(factory, spool)
    assert_error(mlapi.post("/api/ml/third@a.test"), 403, "EXCEEDED_LIMIT")
    r = mlapi.post("/api/maillist/third@a.test")
    assert r.status_code == 403, r.text
    assert snapshot(factory, spool) == before


def test_the_admins_max_lists_counts_both_kinds(ml_app, settings, factory, mlapi, spool):
    factory.normal_admin("tenant@admins.test", "T3nant#secret", domains=["a.test"],
                         settings=["create_max_lists:2"])
    tenant = ApiClient(ml_app, settings)
    tenant.login("tenant@admins.test", "T3nant#secret")
    assert tenant.post("/api/ml/one@a.test").status_code == 201
    assert tenant.post("/api/maillist/two@a.test").status_code == 201
    before = snapshot(factory, spool)
    r = tenant.post("/api/ml/three@a.test")
    assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT", r.text
    assert snapshot(factory, spool) == before


def test_check_counts_both_kinds(mlapi, factory, directory, settings, iredadmin, spool):
    from iredldap.backends import tree_of
    from iredldap.check import Checker
    from iredldap.directory.journal import WriteJournal
    from iredldap.db.journal import JournalTable
    mlapi.post("/api/maillist/old@a.test")
    mlapi.post("/api/ml/new@a.test")
    tree = tree_of(settings)
    checker = Checker(directory, tree, iredadmin=iredadmin, spool=spool,
                      journal=WriteJournal(JournalTable(iredadmin.database), directory, tree.domains_dn))
    assert [f for f in checker.run(["a.test"]).findings if f.kind in ("counter", "list_without_mlmmj")] == []
    directory.modify(tree.domain("a.test"), {"domainCurrentListNumber": [("MODIFY_REPLACE", ["5"])]})
    report = checker.run(["a.test"], repair=True)
    assert [f.detail for f in report.findings if f.kind == "counter"] == [
        "domainCurrentListNumber is 5, the real count is 2"]
    assert counter(factory, "a.test") == "2"
    # A subscribable list whose mlmmj directory went missing is reported (an old list has none).
    spool.delete("new@a.test", archive=False)
    assert [(f.kind, f.dn.split(",")[0]) for f in checker.run().findings if f.kind == "list_without_mlmmj"] == [
        ("list_without_mlmmj", "mail=new@a.test")]


# -- bad input and taken names: 4xx, nothing written ---------------------------------------

@pytest.mark.parametrize("method,path,params,status,code", [
    ("POST", "/api/ml/x@a.test", {"subscribers": "a@x.test", "subscription": "weekly"}, 400, "INVALID_PARAMETER"),
    ("POST", "/api/ml/x@a.test", {"subscribers": "not-an-address"}, 400, "INVALID_MAIL"),
    ("POST", "/api/ml/x@a.test", {"owner": "bad@@x"}, 400, "INVALID_MAIL"),
    ("POST", "/api/ml/x@a.test", {"custom_headers": "no colon here"}, 400, "INVALID_PARAMETER"),
    ("POST", "/api/ml/x@a.test", {"close_list": "maybe"}, 400, "INVALID_PARAMETER"),
    ("POST", "/api/ml/x@a.test", {"bogus": "1"}, 400, "UNKNOWN_PARAMETERS"),
    ("POST", "/api/ml/x@missing.test", {}, 404, "NO_SUCH_DOMAIN"),
    ("POST", "/api/ml/user@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/ml/alias@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/ml/oldlist@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/ml/taken@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/ml/user@alias-a.test", {}, 409, "ALREADY_EXISTS"),
    ("PUT", "/api/ml/taken@a.test", {"add_subscribers": "x@y.test", "subscription": "daily"}, 400, "INVALID_PARAMETER"),
    ("PUT", "/api/ml/taken@a.test", {"add_subscribers": "x@y.test,nope"}, 400, "INVALID_MAIL"),
    ("PUT", "/api/ml/taken@a.test", {"name": "n", "remove_headers": "Bad Header"}, 400, "INVALID_PARAMETER"),
    ("PUT", "/api/ml/taken@a.test", {"name": "n", "smtp_port": "99999"}, 400, "INVALID_PARAMETER"),
    ("PUT", "/api/ml/nosuch@a.test", {"name": "n"}, 404, "NO_SUCH_ACCOUNT"),
    ("POST", "/api/maillist/taken@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/alias/taken@a.test", {}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/user/taken@a.test", {"password": PW}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/ml/taken@a.test/change_email/user@a.test", {}, 409, "ALREADY_EXISTS"),
])
def test_bad_input_changes_nothing(mlapi, factory, spool, method, path, params, status, code):
    factory.user("user@a.test", PW)
    assert mlapi.post("/api/alias/alias@a.test").status_code == 201
    assert mlapi.post("/api/maillist/oldlist@a.test").status_code == 201
    assert mlapi.post("/api/ml/taken@a.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    before = snapshot(factory, spool)
    r = mlapi.request(method, path, params)
    assert r.status_code == status and r.json["_msg"] == code, r.text
    assert snapshot(factory, spool) == before


# -- access ------------------------------------------------------------------------------

def test_another_domains_admin_reaches_nothing(ml_app, settings, factory, mlapi, spool):
    assert mlapi.post("/api/ml/sales@b.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    factory.normal_admin("tenant@admins.test", "T3nant#secret", domains=["a.test"])
    tenant = ApiClient(ml_app, settings)
    tenant.login("tenant@admins.test", "T3nant#secret")
    before = snapshot(factory, spool)
    for method, path, params in [
            ("GET", "/api/ml/sales@b.test", None), ("GET", "/api/mls/b.test", None),
            ("POST", "/api/ml/new@b.test", {}), ("PUT", "/api/ml/sales@b.test", {"add_subscribers": "me@a.test",
                                                                                  "require_confirm": "no"}),
            ("PUT", "/api/ml/sales@b.test", {"remove_subscribers": "s@x.test"}),
            ("DELETE", "/api/ml/sales@b.test", None), ("GET", "/api/ldif/ml/sales@b.test", None),
            ("POST", "/api/ml/sales@b.test/change_email/sales@a.test", {})]:
        r = tenant.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)
    # Into its own domain it may not move another's list, nor take one of its own elsewhere.
    assert tenant.post("/api/ml/mine@a.test").status_code == 201
    before = snapshot(factory, spool)
    assert tenant.post("/api/ml/mine@a.test/change_email/mine@b.test").status_code == 403
    # Global-only mlmmj settings (where list mail is sent) are the operator's.
    r = tenant.put("/api/ml/mine@a.test", {"relay_host": "evil.example"})
    assert r.status_code == 403, r.text
    assert snapshot(factory, spool) == before
    # Subscribers may be anywhere: outside addresses are fine.
    r = tenant.put("/api/ml/mine@a.test", {"add_subscribers": "anyone@b.test,ext@elsewhere.test",
                                           "require_confirm": "no"})
    assert r.status_code == 200, r.text
    assert sorted(s.mail for s in spool.subscribers("mine@a.test")) == ["anyone@b.test", "ext@elsewhere.test"]


# -- all or nothing ----------------------------------------------------------------------

def test_spool_unavailable_is_503_and_ldap_unchanged(mlapi, factory, spool):
    assert mlapi.post("/api/ml/kept@a.test").status_code == 201
    before = snapshot(factory, spool)
    away = spool.spool_dir.with_name("spool-away")
    spool.spool_dir.rename(away)     # the spool is gone: the backend cannot be used
    try:
        for method, path, params in [("POST", "/api/ml/new@a.test", {}),
                                     ("PUT", "/api/ml/kept@a.test", {"name": "changed"}),
                                     ("PUT", "/api/ml/kept@a.test", {"add_subscribers": "s@x.test",
                                                                     "require_confirm": "no"}),
                                     ("DELETE", "/api/ml/kept@a.test", None),
                                     ("POST", "/api/ml/kept@a.test/change_email/moved@a.test", {}),
                                     ("DELETE", "/api/domain/a.test", None)]:
            r = mlapi.request(method, path, params)
            assert r.status_code == 503 and r.json["_success"] is False, (method, path, r.text)
            assert not spool.spool_dir.exists()
            away.rename(spool.spool_dir)
            assert snapshot(factory, spool) == before, (method, path)
            spool.spool_dir.rename(away)
        # Readiness tells, without failing: only the lists are out.
        ready = mlapi.get("/readyz")
        assert ready.json["_data"]["mlmmj"].startswith("unavailable")
    finally:
        if away.exists():
            away.rename(spool.spool_dir)


def test_a_spool_failure_after_the_entry_undoes_the_entry(mlapi, factory, spool):
    # The domain's place in the spool is taken by a file: the entry is
    # written, then mlmmj's half fails, and the entry goes again.
    (spool.spool_dir / "a.test").write_text("in the way")
    before = snapshot(factory, spool)
    r = mlapi.post("/api/ml/new@a.test", {"subscribers": "s@x.test", "require_confirm": "no"})
    # (the spool says it cannot be written: 503, as when it is gone)
    assert r.status_code == 503 and r.json["_msg"] == "MLMMJ_UNAVAILABLE", r.text
    assert snapshot(factory, spool) == before
    assert counter(factory, "a.test") in (None, "0")


def test_a_failed_subscriber_change_puts_the_profile_back(mlapi, factory, spool):
    assert mlapi.post("/api/ml/news@a.test", {"name": "Before"}).status_code == 201
    before = snapshot(factory, spool)
    # mlmmj-sub (require_confirm=yes) is missing: the subscription fails
    # after the entry and the profile changed; both are put back.
    spool.mlmmj_sub = str(spool.spool_dir / "no-such-mlmmj-sub")
    r = mlapi.put("/api/ml/news@a.test", {"name": "After", "subject_prefix": "[x]", "add_subscribers": "s@x.test"})
    assert r.status_code == 502 and r.json["_msg"] == "SUB_COMMAND_NOT_FOUND", r.text
    assert snapshot(factory, spool) == before


# -- what mlmmj does with a list the API made ----------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
def test_mail_to_a_list_made_through_the_api_reaches_its_subscribers(mlapi, spool, sink):
    # The list, its prefix and where mlmmj sends, all set through /api/ml;
    # then a message handed to mlmmj-receive as Postfix's pipe transport does.
    from .test_mlmmj_delivery import LIST, post, relay_to
    domain = LIST.partition("@")[2]
    assert mlapi.post(f"/api/domain/{domain}").status_code == 201
    r = mlapi.post(f"/api/ml/{LIST}", {"subject_prefix": "[sales]", "accessPolicy": "public", **relay_to(sink)})
    assert r.status_code == 201, r.text
    r = mlapi.put(f"/api/ml/{LIST}", {"add_subscribers": "alice@example.org,bob@example.org",
                                      "require_confirm": "no"})
    assert r.status_code == 200, r.text
    post(spool.list_dir(LIST))
    got = sink.wait_for(2, timeout=20)
    assert sorted(r for m in got for r in m.rcpt_to) == ["alice@example.org", "bob@example.org"]
    assert {m.headers["subject"] for m in got} == {"[sales] hello"}
    # Moderated through the API: the next post is held for the moderator.
    sink.state.messages.clear()
    assert mlapi.put(f"/api/ml/{LIST}", {"moderated": "yes", "moderators": "mod@example.com"}).status_code == 200
    post(spool.list_dir(LIST), subject="second")
    sink.wait_for(1, timeout=20)
    assert [r for m in sink.messages for r in m.rcpt_to] == ["mod@example.com"]
    assert list((spool.list_dir(LIST) / "moderation").iterdir())
