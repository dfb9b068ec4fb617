"""Aliases and mailing lists, checked on the entries and on Postfix's lookups."""

from __future__ import annotations

import threading

import pytest

from iredldap.directory.connection import SUBTREE

from .consumers import postfix
from .support import ApiClient

PW = "Secr3t#pass"


@pytest.fixture
def hosted(api, factory):
    factory.domain("a.test", aliasDomains=["alias-a.test"])
    factory.domain("b.test")
    for mail in ("u1@a.test", "u2@a.test", "u3@b.test"):
        assert api.post(f"/api/user/{mail}", {"password": PW}).status_code == 201


def alias(factory, mail):
    return factory.entry(factory.tree.alias(mail))


def mlist(factory, mail):
    return factory.entry(factory.tree.maillist(mail))


# -- aliases ------------------------------------------------------------------------

def test_alias_create_is_resolved_by_postfix(api, factory, hosted, directory):
    r = api.post("/api/alias/team@a.test", {"name": "Team", "members": "u1@a.test, U3@b.test,x@ext.test",
                                            "accessPolicy": "membersonly"})
    assert r.status_code == 201, r.text
    e = alias(factory, "team@a.test")
    assert [c for c in e.get("objectClass") if c.lower() != "top"] == ["mailAlias"]
    assert e.get("cn") == ["Team"] and e.get("accountStatus") == ["active"]
    assert sorted(e.get("enabledService")) == ["deliver", "mail"]
    assert e.get("accessPolicy") == ["membersonly"]
    assert e.get("shadowAddress") == ["team@alias-a.test"]
    assert sorted(postfix(directory, "virtual_alias_maps", "team@a.test")) == ["u1@a.test", "u3@b.test",
                                                                                "x@ext.test"]
    assert sorted(postfix(directory, "virtual_alias_maps", "team@alias-a.test")) == ["u1@a.test", "u3@b.test",
                                                                                      "x@ext.test"]
    assert factory.entry(factory.tree.domain("a.test")).get("domainCurrentAliasNumber") == ["1"]
    data = api.get("/api/alias/team@a.test").json["_data"]
    assert data["members"] == ["u1@a.test", "u3@b.test", "x@ext.test"]


def test_alias_members_change_by_value_and_disabled_alias_is_not_resolved(api, factory, hosted, directory):
    api.post("/api/alias/team@a.test", {"members": "u1@a.test"})
    assert api.put("/api/alias/team@a.test", {"addMember": "u2@a.test,u1@a.test"}).status_code == 200
    assert sorted(alias(factory, "team@a.test").get("mailForwardingAddress")) == ["u1@a.test", "u2@a.test"]
    assert api.put("/api/alias/team@a.test", {"removeMember": "u1@a.test,nobody@x.test"}).status_code == 200
    assert alias(factory, "team@a.test").get("mailForwardingAddress") == ["u2@a.test"]
    assert api.put("/api/alias/team@a.test", {"members": "u3@b.test"}).status_code == 200
    assert alias(factory, "team@a.test").get("mailForwardingAddress") == ["u3@b.test"]
    r = api.put("/api/alias/team@a.test", {"members": "u1@a.test", "addMember": "u2@a.test"})
    assert r.status_code == 400 and r.json["_msg"] == "CONFLICTING_PARAMETERS"
    assert api.put("/api/alias/team@a.test", {"accountStatus": "disabled"}).status_code == 200
    assert postfix(directory, "virtual_alias_maps", "team@a.test") == []


@pytest.mark.parametrize("policy", ["public", "domain", "subdomain", "membersonly", "moderatorsonly",
                                    "membersandmoderatorsonly"])
def test_alias_access_policies(api, factory, hosted, policy):
    assert api.post("/api/alias/p@a.test", {"accessPolicy": policy}).status_code == 201
    assert alias(factory, "p@a.test").get("accessPolicy") == [policy]


@pytest.mark.parametrize("address", ["u1@a.test", "u1@alias-a.test", "mine@a.test", "list@a.test"])
def test_taken_addresses_cannot_become_aliases(api, factory, hosted, address):
    api.put("/api/user/u2@a.test", {"addAlias": "mine@a.test"})
    api.post("/api/maillist/list@a.test")
    r = api.post(f"/api/alias/{address}")
    assert r.status_code == 409, r.text
    assert alias(factory, address) is None


def test_alias_limit_and_bad_input(api, factory, hosted):
    api.put("/api/domain/a.test", {"numberOfAliases": "1"})
    assert api.post("/api/alias/one@a.test").status_code == 201
    r = api.post("/api/alias/two@a.test")
    assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT"
    assert alias(factory, "two@a.test") is None
    for params in ({"accessPolicy": "everyone"}, {"members": "not an address"}, {"bogus": "1"}):
        assert api.post("/api/alias/three@b.test", params).status_code == 400
    assert alias(factory, "three@b.test") is None
    assert api.post("/api/alias/x@nowhere.test").status_code == 404


def test_alias_rename_and_delete_carry_references(api, factory, hosted, directory):
    api.post("/api/alias/team@a.test", {"members": "u1@a.test"})
    api.post("/api/alias/all@a.test", {"members": "team@a.test,u2@a.test"})
    api.put("/api/user/u3@b.test", {"forwarding": "team@a.test"})
    r = api.post("/api/alias/team@a.test/change_email/crew@a.test")
    assert r.status_code == 200, r.text
    assert alias(factory, "team@a.test") is None
    assert alias(factory, "crew@a.test").get("mailForwardingAddress") == ["u1@a.test"]
    assert alias(factory, "crew@a.test").get("shadowAddress") == ["crew@alias-a.test"]
    assert sorted(alias(factory, "all@a.test").get("mailForwardingAddress")) == ["crew@a.test", "u2@a.test"]
    assert factory.entry(factory.tree.user("u3@b.test")).get("mailForwardingAddress") == ["crew@a.test"]
    assert factory.search("dc=example,dc=com", "(|(mail=team@a.test)(mailForwardingAddress=team@a.test)"
                          "(shadowAddress=team@alias-a.test))", scope=SUBTREE) == []
    assert api.delete("/api/alias/crew@a.test").status_code == 200
    assert alias(factory, "all@a.test").get("mailForwardingAddress") == ["u2@a.test"]
    assert factory.search("dc=example,dc=com", "(mailForwardingAddress=crew@a.test)", scope=SUBTREE) == []
    assert factory.entry(factory.tree.domain("a.test")).get("domainCurrentAliasNumber") == ["1"]


def test_list_aliases(api, factory, hosted):
    api.post("/api/alias/b@a.test")
    api.post("/api/alias/a@a.test")
    api.put("/api/alias/b@a.test", {"accountStatus": "disabled"})
    assert api.get("/api/aliases/a.test", {"email_only": "yes"}).json["_data"] == ["a@a.test", "b@a.test"]
    assert api.get("/api/aliases/a.test", {"email_only": "yes", "disabled_only": "yes"}).json["_data"] == \
        ["b@a.test"]
    assert [d["mail"] for d in api.get("/api/aliases/a.test").json["_data"]] == [["a@a.test"], ["b@a.test"]]


# -- mailing lists --------------------------------------------------------------------

def test_list_members_are_resolved_by_virtual_group_maps(api, factory, hosted, directory):
    api.post("/api/alias/nested@a.test", {"members": "deep@ext.test"})
    r = api.post("/api/maillist/staff@a.test", {
        "name": "Staff", "accessPolicy": "domain",
        "members": "u1@a.test,u3@b.test,outside@ext.test,other@ext2.test,nested@a.test"})
    assert r.status_code == 201, r.text
    e = mlist(factory, "staff@a.test")
    assert e.get("cn") == ["Staff"] and e.get("accessPolicy") == ["domain"]
    assert sorted(e.get("enabledService")) == ["deliver", "displayedInGlobalAddressBook", "mail"]
    assert factory.entry(factory.tree.user("u1@a.test")).get("memberOfGroup") == ["staff@a.test"]
    assert factory.entry(factory.tree.user("u3@b.test")).get("memberOfGroup") == ["staff@a.test"]
    ext = factory.entry(factory.tree.externals("staff@a.test"))
    assert sorted(ext.get("mail")) == ["other@ext2.test", "outside@ext.test"]
    assert ext.get("memberOfGroup") == ["staff@a.test"]
    got = sorted(postfix(directory, "virtual_group_maps", "staff@a.test"))
    assert got == ["nested@a.test", "other@ext2.test", "outside@ext.test", "u1@a.test", "u3@b.test"]
    assert api.get("/api/maillist/staff@a.test").json["_data"]["members"] == got
    # A disabled member is not expanded.
    api.put("/api/user/u1@a.test", {"accountStatus": "disabled"})
    assert "u1@a.test" not in postfix(directory, "virtual_group_maps", "staff@a.test")


def test_list_member_changes(api, factory, hosted, directory):
    api.post("/api/maillist/staff@a.test", {"members": "u1@a.test,x@ext.test"})
    assert api.put("/api/maillist/staff@a.test", {"addMember": "u2@a.test,y@ext.test"}).status_code == 200
    assert sorted(postfix(directory, "virtual_group_maps", "staff@a.test")) == \
        ["u1@a.test", "u2@a.test", "x@ext.test", "y@ext.test"]
    assert api.put("/api/maillist/staff@a.test", {"removeMember": "u1@a.test,x@ext.test"}).status_code == 200
    assert factory.entry(factory.tree.user("u1@a.test")).get("memberOfGroup") == []
    assert sorted(postfix(directory, "virtual_group_maps", "staff@a.test")) == ["u2@a.test", "y@ext.test"]
    assert api.put("/api/maillist/staff@a.test", {"members": "u3@b.test"}).status_code == 200
    assert postfix(directory, "virtual_group_maps", "staff@a.test") == ["u3@b.test"]
    r = api.put("/api/maillist/staff@a.test", {"addMember": "ghost@a.test"})
    assert r.status_code == 400 and r.json["_msg"] == "NO_SUCH_ACCOUNT"
    assert postfix(directory, "virtual_group_maps", "staff@a.test") == ["u3@b.test"]


def test_list_moderators_owners_and_allowed_senders(api, factory, hosted):
    r = api.post("/api/maillist/staff@a.test", {"moderators": "u1@a.test", "owner": "u2@a.test",
                                                "allowedSenders": "b.test,*@ext.test,.sub.test,boss@x.test",
                                                "max_message_size": "1048576"})
    assert r.status_code == 201, r.text
    e = mlist(factory, "staff@a.test")
    assert e.get("listModerator") == ["u1@a.test"] and e.get("listOwner") == ["u2@a.test"]
    assert sorted(e.get("listAllowedUser")) == ["*@ext.test", ".sub.test", "b.test", "boss@x.test"]
    assert e.get("maxMessageSize") == ["1048576"]
    assert api.put("/api/maillist/staff@a.test", {"moderators": ""}).status_code == 200
    assert mlist(factory, "staff@a.test").get("listModerator") == []


def test_list_delete_removes_memberships_and_externals(api, factory, hosted, directory):
    api.post("/api/maillist/staff@a.test", {"members": "u1@a.test,x@ext.test"})
    api.put("/api/user/u2@a.test", {"forwarding": "staff@a.test"})
    assert api.delete("/api/maillist/staff@a.test", {"archive": "no"}).status_code == 200
    assert mlist(factory, "staff@a.test") is None
    assert factory.entry(factory.tree.externals("staff@a.test")) is None
    assert factory.search("dc=example,dc=com", "(|(memberOfGroup=staff@a.test)(mailForwardingAddress=staff@a.test))",
                          scope=SUBTREE) == []


def test_list_rename_moves_memberships(api, factory, hosted, directory):
    api.post("/api/maillist/staff@a.test", {"members": "u1@a.test,x@ext.test"})
    r = api.post("/api/maillist/staff@a.test/change_email/crew@b.test")
    assert r.status_code == 200, r.text
    assert mlist(factory, "staff@a.test") is None
    assert factory.entry(factory.tree.user("u1@a.test")).get("memberOfGroup") == ["crew@b.test"]
    assert factory.entry(factory.tree.externals("crew@b.test")).get("mail") == ["x@ext.test"]
    assert factory.entry(factory.tree.externals("staff@a.test")) is None
    assert sorted(postfix(directory, "virtual_group_maps", "crew@b.test")) == ["u1@a.test", "x@ext.test"]
    assert factory.search("dc=example,dc=com", "(|(memberOfGroup=staff@a.test)(mail=staff@a.test))",
                          scope=SUBTREE) == []
    assert factory.entry(factory.tree.domain("a.test")).get("domainCurrentListNumber") == ["0"]
    assert factory.entry(factory.tree.domain("b.test")).get("domainCurrentListNumber") == ["1"]


def test_list_limit(api, factory, hosted):
    api.put("/api/domain/a.test", {"numberOfLists": "-1"})
    r = api.post("/api/maillist/x@a.test")
    assert r.status_code == 403
    assert mlist(factory, "x@a.test") is None


def test_normal_admin_cannot_add_other_customers_accounts(app, settings, api, factory, hosted):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["a.test"])
    boss = ApiClient(app, settings)
    boss.login("boss@admins.test", "B0ss#secret")
    assert boss.post("/api/maillist/staff@a.test", {"members": "u1@a.test,x@ext.test"}).status_code == 201
    r = boss.put("/api/maillist/staff@a.test", {"addMember": "u3@b.test"})
    assert r.status_code == 403
    assert factory.entry(factory.tree.user("u3@b.test")).get("memberOfGroup") == []
    assert boss.post("/api/alias/x@b.test").status_code == 403
    assert boss.get("/api/maillists/b.test").status_code == 403
    assert boss.post("/api/maillist/staff@a.test/change_email/staff@b.test").status_code == 403


# -- concurrency (real slapd) -----------------------------------------------------------

@pytest.fixture
def slapd_api(slapd_directory, settings, iredadmin):
    from iredldap.backends import Backends
    from iredldap.web.app import create_app
    from .support import Factory
    factory = Factory(slapd_directory, settings)
    factory.domain("c.test")
    factory.global_admin("root@admins.test", "R00t#secret")
    app = create_app(settings, Backends(slapd_directory, iredadmin))
    return app, factory


def _parallel(app, settings, calls):
    results = []

    def run(method, path, params):
        client = ApiClient(app, settings)
        client.login("root@admins.test", "R00t#secret")
        results.append(client.request(method, path, params).status_code)

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_fifty_parallel_add_member_calls_all_land(slapd_api, settings, slapd_directory):
    app, factory = slapd_api
    client = ApiClient(app, settings)
    client.login("root@admins.test", "R00t#secret")
    for i in range(10):
        assert client.post(f"/api/user/m{i}@c.test", {"password": PW}).status_code == 201
    assert client.post("/api/maillist/big@c.test").status_code == 201
    assert client.post("/api/alias/big-alias@c.test").status_code == 201
    calls = []
    for i in range(50):
        member = f"m{i}@c.test" if i < 10 else f"x{i}@ext.test"
        calls.append(("PUT", "/api/maillist/big@c.test", {"addMember": member}))
        calls.append(("PUT", "/api/alias/big-alias@c.test", {"addMember": f"y{i}@ext.test"}))
    results = _parallel(app, settings, calls)
    assert results.count(200) == 100, results
    assert len(postfix(slapd_directory, "virtual_group_maps", "big@c.test")) == 50
    assert len(factory.entry(factory.tree.alias("big-alias@c.test")).get("mailForwardingAddress")) == 50


def test_two_parallel_creates_of_one_address(slapd_api, settings):
    app, factory = slapd_api
    results = _parallel(app, settings, [("POST", "/api/alias/same@c.test", {}),
                                        ("POST", "/api/alias/same@c.test", {})])
    assert sorted(results) == [201, 409]
    results = _parallel(app, settings, [("POST", "/api/user/same2@c.test", {"password": PW}),
                                        ("POST", "/api/user/same2@c.test", {"password": PW})])
    assert sorted(results) == [201, 409]


def test_admin_limits_for_aliases_and_lists_are_shared_across_domains(app, settings, api, factory, hosted):
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["a.test", "b.test"],
                         settings=["create_max_aliases:2", "create_max_lists:1"])
    boss = ApiClient(app, settings)
    boss.login("boss@admins.test", "B0ss#secret")
    assert boss.post("/api/alias/one@a.test").status_code == 201
    assert boss.post("/api/alias/two@b.test").status_code == 201
    r = boss.post("/api/alias/three@a.test")
    assert r.status_code == 403 and r.json["param"] == "maxAliases"
    assert alias(factory, "three@a.test") is None
    assert boss.post("/api/maillist/l1@b.test").status_code == 201
    r = boss.post("/api/maillist/l2@a.test")
    assert r.status_code == 403 and r.json["param"] == "maxLists"
    assert mlist(factory, "l2@a.test") is None
