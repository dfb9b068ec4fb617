"""The domain API, checked on the entries actually written (MOCK_SYNC and slapd)."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import select

from iredldap.db import tables
from iredldap.directory.connection import LEVEL, SUBTREE
from iredldap.errors import DirectoryUnavailable

from .consumers import postfix


def dn_of(factory, domain):
    return factory.tree.domain(domain)


def domain_entry(factory, domain):
    return factory.entry(dn_of(factory, domain))


def settings_of(entry):
    return sorted(entry.get("accountSetting"))


# -- create -------------------------------------------------------------------

def test_create_writes_domain_and_its_four_containers(api, factory):
    r = api.post("/api/domain/a.test", {"name": "A Inc", "language": "de_DE", "defaultQuota": "1024",
                                          "maxUserQuota": "2048", "quota": "10240", "numberOfUsers": "20",
                                          "numberOfAliases": "30", "numberOfLists": "40",
                                          "senderBcc": "archive@a.test", "recipientBcc": "in@b.test"})
    assert r.status_code == 201, r.text
    assert r.json == {"_success": True}
    entry = domain_entry(factory, "a.test")
    assert entry.get("domainName") == ["a.test"]
    assert entry.get("cn") == ["A Inc"]
    assert entry.get("preferredLanguage") == ["de_DE"]
    assert entry.get("mtaTransport") == ["dovecot"]
    assert entry.get("accountStatus") == ["active"]
    assert sorted(entry.get("enabledService")) == ["mail", "recipientbcc", "senderbcc"]
    assert settings_of(entry) == sorted(["defaultQuota:1024", "maxUserQuota:2048", "domainQuota:10240:MB",
                                         "numberOfUsers:20", "numberOfAliases:30", "numberOfLists:40"])
    assert entry.get("domainSenderBccAddress") == ["archive@a.test"]
    assert entry.get("domainRecipientBccAddress") == ["in@b.test"]
    children = factory.search(dn_of(factory, "a.test"), "(objectClass=organizationalUnit)", scope=LEVEL)
    assert sorted(e.first("ou") for e in children) == ["Aliases", "Externals", "Groups", "Users"]


def test_create_minimal_domain_is_what_iredmail_writes(api, factory):
    assert api.post("/api/domain/Min.Test").status_code == 201
    entry = domain_entry(factory, "min.test")
    assert [c for c in entry.get("objectClass") if c.lower() != "top"] == ["mailDomain"]
    assert entry.get("enabledService") == ["mail"]
    assert entry.get("accountSetting") == []


def test_create_with_catchall_alias_domains_and_backup_mx(api, factory):
    r = api.post("/api/domain/c.test", {"catchall": "x@other.test, Y@other.test", "aliasDomains": "c-alias.test",
                                          "is_backupmx": "yes", "primarymx": "[mx.c.test]:2525"})
    assert r.status_code == 201, r.text
    entry = domain_entry(factory, "c.test")
    assert entry.get("domainBackupMX") == ["yes"]
    assert entry.get("mtaTransport") == ["relay:[mx.c.test]:2525"]
    assert entry.get("domainAliasName") == ["c-alias.test"]
    assert "domainalias" in entry.get("enabledService")
    catchall = factory.entry(factory.tree.catchall("c.test"))
    assert sorted(catchall.get("mailForwardingAddress")) == ["x@other.test", "y@other.test"]


def test_create_idn_is_stored_in_punycode(api, factory):
    r = api.post("/api/domain/b%C3%BCcher.test")
    assert r.status_code == 201, r.text
    assert domain_entry(factory, "xn--bcher-kva.test") is not None


@pytest.mark.parametrize("name", ["bad_domain", "-x.test", "a..b", "nodot", "x.123", "a" * 64 + ".test", "xn--zz.test"])
def test_create_refuses_malformed_names(api, factory, name):
    r = api.post(f"/api/domain/{name}")
    assert r.status_code == 400
    assert r.json["_msg"] == "INVALID_DOMAIN_NAME"
    assert factory.search(factory.tree.domains_dn, "(objectClass=mailDomain)", scope=LEVEL) == []


def test_create_twice_is_a_conflict(api, factory):
    assert api.post("/api/domain/a.test", {"name": "first"}).status_code == 201
    r = api.post("/api/domain/a.test", {"name": "second"})
    assert r.status_code == 409 and r.json["_msg"] == "ALREADY_EXISTS"
    assert domain_entry(factory, "a.test").get("cn") == ["first"]


def test_create_refuses_a_name_used_as_alias_domain(api, factory):
    factory.domain("a.test", aliasDomains=["alias.test"])
    r = api.post("/api/domain/alias.test")
    assert r.status_code == 409
    assert domain_entry(factory, "alias.test") is None


@pytest.mark.parametrize("params, code", [
    ({"quota": "-5"}, "INVALID_PARAMETER"),
    ({"quota": "lots"}, "INVALID_PARAMETER"),
    ({"numberOfUsers": "-2"}, "INVALID_PARAMETER"),
    ({"senderBcc": "not-an-address"}, "INVALID_MAIL"),
    ({"catchall": "a@b.test,broken"}, "INVALID_MAIL"),
    ({"language": "english please"}, "INVALID_PARAMETER"),
    ({"bogus": "1"}, "UNKNOWN_PARAMETERS"),
    ({"primarymx": "mx.a.test"}, "MISSING_PARAMETER"),
    ({"transport": "relay:[x]", "is_backupmx": "yes"}, "CONFLICTING_PARAMETERS"),
    ({"name": "x", "cn": "y"}, "CONFLICTING_PARAMETERS"),
])
def test_create_bad_input_is_400_and_writes_nothing(api, factory, params, code):
    r = api.post("/api/domain/a.test", params)
    assert r.status_code == 400, r.text
    assert r.json["_success"] is False and r.json["_msg"] == code
    assert r.json["reason"]
    assert domain_entry(factory, "a.test") is None


def test_create_is_all_or_nothing(api, factory, directory, monkeypatch):
    """The fourth container fails: the domain and the first three are removed again."""
    real_add = directory.add
    calls = []

    def failing_add(dn, attrs):
        calls.append(dn)
        if dn.lower().startswith("ou=externals"):
            raise DirectoryUnavailable("simulated outage")
        return real_add(dn, attrs)

    monkeypatch.setattr(directory, "add", failing_add)
    r = api.post("/api/domain/a.test", {"catchall": "x@b.test"})
    assert r.status_code == 503 and r.json["_msg"] == "DIRECTORY_UNAVAILABLE"
    assert len(calls) == 5
    monkeypatch.undo()
    left = factory.search(factory.tree.domains_dn, "(objectClass=*)", scope=SUBTREE)
    assert [e.dn for e in left] == [factory.tree.domains_dn]


# -- read ---------------------------------------------------------------------

def test_get_returns_ldap_attributes_as_lists(api, factory):
    factory.domain("a.test", name="A", defaultQuota=10)
    r = api.get("/api/domain/a.test")
    assert r.status_code == 200
    data = r.json["_data"]
    assert data["domainName"] == ["a.test"] and data["cn"] == ["A"]
    assert data["accountSetting"] == ["defaultQuota:10"]
    assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values())


def test_get_unknown_domain_is_404(api):
    r = api.get("/api/domain/none.test")
    assert r.status_code == 404 and r.json["_msg"] == "NO_SUCH_DOMAIN"


def test_list_domains_name_only_and_disabled_only(api, factory):
    factory.domain("b.test")
    factory.domain("a.test")
    factory.domain("off.test", accountStatus="disabled")
    r = api.get("/api/domains", {"name_only": "yes"})
    assert r.json["_data"] == ["a.test", "b.test", "off.test"]
    r = api.get("/api/domains", {"name_only": "true", "disabled_only": "1"})
    assert r.json["_data"] == ["off.test"]
    r = api.get("/api/domains")
    assert [d["domainName"] for d in r.json["_data"]] == [["a.test"], ["b.test"], ["off.test"]]


# -- update -------------------------------------------------------------------

def test_update_profile_fields_and_settings(api, factory):
    factory.domain("a.test", name="Old", defaultQuota=100, minPasswordLength=8)
    r = api.put("/api/domain/a.test", {"cn": "New", "defaultQuota": "200", "minPasswordLength": "10",
                                         "maxPasswordLength": "30", "maxUserQuota": "500", "quota": "0",
                                         "numberOfUsers": "-1", "transport": "lmtp:unix:private/dovecot-lmtp",
                                         "language": "fr_FR"})
    assert r.status_code == 200, r.text
    entry = domain_entry(factory, "a.test")
    assert entry.get("cn") == ["New"]
    assert entry.get("mtaTransport") == ["lmtp:unix:private/dovecot-lmtp"]
    assert entry.get("preferredLanguage") == ["fr_FR"]
    assert settings_of(entry) == sorted(["defaultQuota:200", "minPasswordLength:10", "maxPasswordLength:30",
                                         "maxUserQuota:500", "domainQuota:0:MB", "numberOfUsers:-1"])


def test_update_keeps_settings_it_was_not_asked_to_change(api, factory, directory):
    factory.domain("a.test", defaultQuota=100)
    # A setting another tool wrote must survive.
    directory.modify(dn_of(factory, "a.test"), {"accountSetting": [("MODIFY_ADD", ["timezone:Europe/Berlin"])]})
    assert api.put("/api/domain/a.test", {"defaultQuota": "300"}).status_code == 200
    assert settings_of(domain_entry(factory, "a.test")) == ["defaultQuota:300", "timezone:Europe/Berlin"]


def test_disable_and_enable_domain_marks_every_account(api, factory, directory):
    factory.domain("a.test", catchall=["x@b.test"])
    factory.domain("b.test")
    factory.user("u1@a.test")
    factory.user("u2@a.test")
    factory.user("other@b.test")
    assert postfix(directory, "virtual_mailbox_maps", "u1@a.test")
    assert api.put("/api/domain/a.test", {"accountStatus": "disabled"}).status_code == 200
    entry = domain_entry(factory, "a.test")
    assert entry.get("accountStatus") == ["disabled"]
    for mail in ("u1@a.test", "u2@a.test"):
        assert factory.entry(factory.tree.user(mail)).get("domainStatus") == ["disabled"]
    assert factory.entry(factory.tree.catchall("a.test")).get("domainStatus") == ["disabled"]
    assert factory.entry(factory.tree.user("other@b.test")).get("domainStatus") == []
    assert postfix(directory, "virtual_mailbox_domains", "a.test") == []
    assert postfix(directory, "virtual_mailbox_maps", "u1@a.test") == []
    assert postfix(directory, "catchall_maps", "@a.test") == []

    assert api.put("/api/domain/a.test", {"accountStatus": "active"}).status_code == 200
    assert factory.entry(factory.tree.user("u1@a.test")).get("domainStatus") == []
    assert postfix(directory, "virtual_mailbox_domains", "a.test") == ["a.test"]
    assert postfix(directory, "virtual_mailbox_maps", "u1@a.test")


def test_bcc_sets_address_and_service_and_empty_removes_both(api, factory, directory):
    factory.domain("a.test")
    assert api.put("/api/domain/a.test", {"senderBcc": "s@b.test", "recipientBcc": "r@b.test"}).status_code == 200
    assert postfix(directory, "sender_bcc_maps_domain", "x@a.test") == ["s@b.test"]
    assert postfix(directory, "recipient_bcc_maps_domain", "x@a.test") == ["r@b.test"]
    assert api.put("/api/domain/a.test", {"senderBcc": ""}).status_code == 200
    entry = domain_entry(factory, "a.test")
    assert entry.get("domainSenderBccAddress") == []
    assert "senderbcc" not in entry.get("enabledService")
    assert "recipientbcc" in entry.get("enabledService")
    assert postfix(directory, "sender_bcc_maps_domain", "x@a.test") == []


def test_outbound_relay_set_and_removed(api, factory, directory):
    factory.domain("a.test")
    assert api.put("/api/domain/a.test", {"outboundRelay": "smtp:[192.0.2.1]:25"}).status_code == 200
    assert postfix(directory, "sender_dependent_relayhost_maps_domain", "u@a.test") == ["smtp:[192.0.2.1]:25"]
    assert api.put("/api/domain/a.test", {"outboundRelay": ""}).status_code == 200
    assert domain_entry(factory, "a.test").get("senderRelayHost") == []


def test_backup_mx_moves_domain_between_postfix_maps(api, factory, directory):
    factory.domain("a.test")
    assert postfix(directory, "virtual_mailbox_domains", "a.test") == ["a.test"]
    r = api.put("/api/domain/a.test", {"is_backupmx": "yes", "primarymx": "192.0.2.10"})
    assert r.status_code == 200, r.text
    assert postfix(directory, "virtual_mailbox_domains", "a.test") == []
    assert postfix(directory, "relay_domains", "a.test") == ["a.test"]
    assert postfix(directory, "transport_maps_domain", "a.test") == ["relay:[192.0.2.10]:25"]
    r = api.put("/api/domain/a.test", {"is_backupmx": "no"})
    assert r.status_code == 200
    assert postfix(directory, "virtual_mailbox_domains", "a.test") == ["a.test"]
    assert postfix(directory, "relay_domains", "a.test") == []
    assert postfix(directory, "transport_maps_domain", "a.test") == ["dovecot"]


def test_backup_mx_without_primary_lets_postfix_look_up_mx(api, factory, directory):
    factory.domain("a.test")
    assert api.put("/api/domain/a.test", {"is_backupmx": "yes"}).status_code == 200
    assert postfix(directory, "transport_maps_domain", "a.test") == ["relay:a.test"]


@pytest.mark.parametrize("params", [
    {"transport": "dovecot", "is_backupmx": "yes"},
    {"transport": "dovecot", "primarymx": "mx.x.test", "is_backupmx": "yes"},
    {"primarymx": "mx.x.test"},
    {"aliasDomains": "x.test", "addAliasDomain": "y.test"},
    {"services": "mail", "removeAllServices": ""},
    {"primarymx": "not a host!", "is_backupmx": "yes"},
    {"outboundRelay": "smtp:[a] b"},
    {"accountStatus": "sleeping"},
])
def test_update_bad_combinations_are_400_and_change_nothing(api, factory, params):
    factory.domain("a.test", name="Keep")
    before = domain_entry(factory, "a.test").attrs
    r = api.put("/api/domain/a.test", params)
    assert r.status_code == 400, r.text
    assert domain_entry(factory, "a.test").attrs == before


def test_catchall_create_change_and_remove(api, factory, directory):
    factory.domain("a.test")
    assert api.put("/api/domain/a.test", {"catchall": "one@b.test,two@b.test"}).status_code == 200
    assert sorted(postfix(directory, "catchall_maps", "@a.test")) == ["one@b.test", "two@b.test"]
    assert api.put("/api/domain/a.test", {"catchall": "two@b.test,three@b.test"}).status_code == 200
    assert sorted(postfix(directory, "catchall_maps", "@a.test")) == ["three@b.test", "two@b.test"]
    assert api.put("/api/domain/a.test", {"catchall": ""}).status_code == 200
    assert factory.entry(factory.tree.catchall("a.test")) is None


def test_alias_domains_add_remove_reset_and_shadow_addresses(api, factory, directory):
    factory.domain("a.test")
    factory.user("john@a.test")
    r = api.put("/api/domain/a.test", {"addAliasDomain": "x.test,Y.test"})
    assert r.status_code == 200, r.text
    entry = domain_entry(factory, "a.test")
    assert sorted(entry.get("domainAliasName")) == ["x.test", "y.test"]
    assert "domainalias" in entry.get("enabledService")
    assert postfix(directory, "virtual_mailbox_domains", "x.test") == ["a.test"]
    user = factory.entry(factory.tree.user("john@a.test"))
    assert sorted(user.get("shadowAddress")) == ["john@x.test", "john@y.test"]
    assert postfix(directory, "virtual_mailbox_maps", "john@y.test")

    assert api.put("/api/domain/a.test", {"removeAliasDomain": "x.test"}).status_code == 200
    assert domain_entry(factory, "a.test").get("domainAliasName") == ["y.test"]
    assert factory.entry(factory.tree.user("john@a.test")).get("shadowAddress") == ["john@y.test"]

    assert api.put("/api/domain/a.test", {"aliasDomains": "z.test"}).status_code == 200
    assert domain_entry(factory, "a.test").get("domainAliasName") == ["z.test"]
    assert factory.entry(factory.tree.user("john@a.test")).get("shadowAddress") == ["john@z.test"]

    assert api.put("/api/domain/a.test", {"aliasDomains": ""}).status_code == 200
    assert domain_entry(factory, "a.test").get("domainAliasName") == []
    assert factory.entry(factory.tree.user("john@a.test")).get("shadowAddress") == []


def test_alias_domain_may_not_be_another_domain(api, factory):
    factory.domain("a.test")
    factory.domain("b.test", aliasDomains=["taken.test"])
    for name in ("b.test", "taken.test", "a.test"):
        r = api.put("/api/domain/a.test", {"addAliasDomain": name})
        assert r.status_code in (400, 409), (name, r.text)
    assert domain_entry(factory, "a.test").get("domainAliasName") == []


def test_services_add_remove_reset_and_remove_all(api, factory):
    factory.domain("a.test")
    assert api.put("/api/domain/a.test", {"addService": "self-service,senderbcc"}).status_code == 200
    assert sorted(domain_entry(factory, "a.test").get("enabledService")) == ["mail", "self-service", "senderbcc"]
    assert api.put("/api/domain/services/a.test", {"disableService": "senderbcc"}).status_code == 200
    assert sorted(domain_entry(factory, "a.test").get("enabledService")) == ["mail", "self-service"]
    r = api.get("/api/domain/services/a.test")
    assert r.json["_data"] == ["mail", "self-service"]
    assert api.put("/api/domain/a.test", {"services": "mail,domainalias"}).status_code == 200
    assert sorted(domain_entry(factory, "a.test").get("enabledService")) == ["domainalias", "mail"]
    assert api.put("/api/domain/services/a.test", {"removeAllServices": ""}).status_code == 200
    assert domain_entry(factory, "a.test").get("enabledService") == []
    r = api.put("/api/domain/a.test", {"addService": "teleport"})
    assert r.status_code == 400


def test_profile_switches_are_account_settings(api, factory):
    factory.domain("a.test")
    r = api.put("/api/domain/a.test", {"disableDomainProfile": "bcc,relay", "disableUserProfile": "aliases",
                                         "disableUserPreference": "wblist"})
    assert r.status_code == 200, r.text
    assert settings_of(domain_entry(factory, "a.test")) == sorted([
        "disabledDomainProfile:bcc", "disabledDomainProfile:relay", "disabledUserProfile:aliases",
        "disabledUserPreference:wblist"])
    assert api.put("/api/domain/a.test", {"enableDomainProfile": "relay"}).status_code == 200
    assert "disabledDomainProfile:relay" not in domain_entry(factory, "a.test").get("accountSetting")
    assert api.put("/api/domain/a.test", {"disableDomainProfile": "nonsense"}).status_code == 400


def test_update_unknown_domain_is_404(api):
    assert api.put("/api/domain/none.test", {"name": "x"}).status_code == 404


def test_update_failure_part_way_restores_everything(api, factory, directory, monkeypatch):
    factory.domain("a.test")
    factory.user("u1@a.test")
    factory.user("u2@a.test")
    real_modify = directory.modify
    seen = []

    def failing(dn, changes):
        seen.append(dn)
        if "u2@a.test" in dn:
            raise DirectoryUnavailable("simulated")
        return real_modify(dn, changes)

    monkeypatch.setattr(directory, "modify", failing)
    r = api.put("/api/domain/a.test", {"accountStatus": "disabled", "name": "New"})
    assert r.status_code == 503
    monkeypatch.undo()
    entry = domain_entry(factory, "a.test")
    assert entry.get("accountStatus") == ["active"] and entry.get("cn") == []
    assert factory.entry(factory.tree.user("u1@a.test")).get("domainStatus") == []


# -- delete -------------------------------------------------------------------

def _deleted_rows(iredadmin):
    with iredadmin.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(tables.deleted_mailboxes).order_by(tables.deleted_mailboxes.c.username))]


def test_delete_removes_subtree_and_records_mailboxes(api, factory, iredadmin):
    factory.domain("a.test", catchall=["x@b.test"])
    factory.user("u1@a.test")
    factory.user("u2@a.test")
    r = api.delete("/api/domain/a.test/keep_mailbox_days/30")
    assert r.status_code == 200, r.text
    assert factory.search(dn_of(factory, "a.test"), "(objectClass=*)", scope=SUBTREE) == []
    rows = _deleted_rows(iredadmin)
    users = [row for row in rows if row["username"] != "@a.test"]
    assert [row["username"] for row in users] == ["u1@a.test", "u2@a.test"]
    # The catch-all (a mailUser entry with no mailbox) is no mailbox to remove:
    # a row with an empty maildir would point a clean-up job at the storage root.
    assert all(row["maildir"] for row in rows) and len(rows) == 2
    assert all(row["maildir"].startswith("/var/vmail/vmail1/a.test/u/") for row in users)
    assert all(row["domain"] == "a.test" and row["admin"] == "root@admins.test" for row in rows)
    assert all(row["delete_date"] is not None for row in users)


def test_delete_without_days_keeps_mailboxes_for_a_century_and_0_forever(api, factory, iredadmin):
    factory.domain("a.test")
    factory.user("u1@a.test")
    assert api.delete("/api/domain/a.test").status_code == 200
    rows = _deleted_rows(iredadmin)
    assert [r["username"] for r in rows] == ["u1@a.test"]
    assert rows[0]["delete_date"].year >= datetime.date.today().year + 99
    factory.domain("b.test")
    factory.user("u2@b.test")
    assert api.delete("/api/domain/b.test/keep_mailbox_days/0").status_code == 200
    assert [r["delete_date"] for r in _deleted_rows(iredadmin) if r["username"] == "u2@b.test"] == [None]


def test_delete_bad_days_and_unknown_domain(api, factory):
    factory.domain("a.test")
    assert api.delete("/api/domain/a.test/keep_mailbox_days/soon").status_code == 400
    assert api.delete("/api/domain/a.test/keep_mailbox_days/-1").status_code == 400
    assert domain_entry(factory, "a.test") is not None
    assert api.delete("/api/domain/none.test").status_code == 404


def test_delete_is_undone_when_the_database_fails(api, factory, iredadmin, monkeypatch):
    from iredldap.errors import DatabaseUnavailable
    factory.domain("a.test")
    factory.user("u1@a.test")

    def down(*args, **kwargs):
        raise DatabaseUnavailable("simulated")

    monkeypatch.setattr(iredadmin, "record_deleted_mailboxes", down)
    r = api.delete("/api/domain/a.test")
    assert r.status_code == 503 and r.json["_msg"] == "DATABASE_UNAVAILABLE"
    assert factory.entry(factory.tree.user("u1@a.test")) is not None
    assert len(factory.search(dn_of(factory, "a.test"), "(objectClass=*)", scope=SUBTREE)) == 6


# -- admins of a domain ----------------------------------------------------------

def test_domain_admins_add_remove_and_promote_user(api, factory):
    factory.domain("a.test")
    factory.normal_admin("boss@admins.test", "B0ss#secret")
    factory.user("helper@a.test")
    r = api.put("/api/domain/admins/a.test", {"addAdmin": "boss@admins.test,helper@a.test"})
    assert r.status_code == 200, r.text
    assert sorted(domain_entry(factory, "a.test").get("domainAdmin")) == ["boss@admins.test", "helper@a.test"]
    assert "domainadmin" in factory.entry(factory.tree.user("helper@a.test")).get("enabledService")
    assert api.get("/api/domain/admins/a.test").json["_data"] == ["boss@admins.test", "helper@a.test"]
    assert api.put("/api/domain/admins/a.test", {"removeAdmin": "boss@admins.test"}).status_code == 200
    assert domain_entry(factory, "a.test").get("domainAdmin") == ["helper@a.test"]
    assert api.put("/api/domain/admins/a.test", {"removeAllAdmins": ""}).status_code == 200
    assert domain_entry(factory, "a.test").get("domainAdmin") == []


def test_domain_admins_refuses_unknown_accounts(api, factory):
    factory.domain("a.test")
    r = api.put("/api/domain/admins/a.test", {"addAdmin": "ghost@a.test"})
    assert r.status_code == 404
    assert domain_entry(factory, "a.test").get("domainAdmin") == []
