"""The mail-user API, checked on the entries written and on what Postfix and Dovecot find."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import threading

import pytest
from sqlalchemy import insert, select

from iredldap.model import passwords
from iredldap.db import tables
from iredldap.directory.connection import SUBTREE

from .consumers import dovecot_user, postfix
from .support import ApiClient

PW = "Secr3t#pass"


def user(factory, mail):
    return factory.entry(factory.tree.user(mail))


def domain(factory, name):
    return factory.entry(factory.tree.domain(name))


@pytest.fixture
def a_test(factory):
    return factory.domain("a.test", defaultQuota=100)


# -- create -------------------------------------------------------------------

def test_create_writes_the_entry_iredmail_expects(api, factory, a_test):
    r = api.post("/api/user/John.Doe@A.test", {"name": "John Doe", "password": PW, "language": "de_DE",
                                               "quota": "50", "gn": "John", "sn": "Doe", "employeeid": "E7"})
    assert r.status_code == 201, r.text
    e = user(factory, "john.doe@a.test")
    assert sorted(c for c in e.get("objectClass") if c.lower() in
                  ("inetorgperson", "shadowaccount", "amavisaccount", "mailuser")) == \
        ["amavisAccount", "inetOrgPerson", "mailUser", "shadowAccount"]
    assert e.get("mail") == ["john.doe@a.test"] and e.get("uid") == ["john.doe"]
    assert e.get("cn") == ["John Doe"] and e.get("givenName") == ["John"] and e.get("sn") == ["Doe"]
    assert e.get("employeeNumber") == ["E7"] and e.get("preferredLanguage") == ["de_DE"]
    assert e.get("mailQuota") == [str(50 * 1024 * 1024)]
    # No per-user transport (as iRedAdmin): Postfix uses the domain's.
    assert e.get("accountStatus") == ["active"] and e.get("mtaTransport") == []
    assert e.get("amavisLocal") == ["TRUE"]
    assert re.fullmatch(r"/var/vmail/vmail1/a\.test/j/o/h/john\.doe-\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d/",
                        e.first("homeDirectory"))
    assert abs(int(e.first("shadowLastChange")) - datetime.date.today().toordinal()
               + datetime.date(1970, 1, 1).toordinal()) <= 1
    services = e.get("enabledService")
    for needed in ("mail", "deliver", "smtp", "imap", "pop3", "lmtp", "forward", "shadowaddress", "quota-status"):
        assert needed in services
    assert "domainadmin" not in services
    assert e.first("userPassword").startswith("{SSHA512}")
    assert passwords.verify_password(PW, e.first("userPassword"))
    assert domain(factory, "a.test").get("domainCurrentUserNumber") == ["1"]


def test_create_uses_domain_defaults(api, factory, a_test, directory):
    directory.modify(factory.tree.domain("a.test"), {"mtaTransport": [("MODIFY_REPLACE", ["lmtp:unix:private/x"])],
                                                     "preferredLanguage": [("MODIFY_REPLACE", ["fr_FR"])]})
    assert api.post("/api/user/u@a.test", {"password": PW}).status_code == 201
    e = user(factory, "u@a.test")
    assert e.get("mailQuota") == [str(100 * 1024 * 1024)]
    # The domain's transport is not copied; Postfix finds it on the domain.
    assert e.get("mtaTransport") == []
    assert postfix(directory, "transport_maps_user", "u@a.test") == []
    assert postfix(directory, "transport_maps_domain", "a.test") == ["lmtp:unix:private/x"]
    assert e.get("preferredLanguage") == ["fr_FR"]
    assert e.get("cn") == ["u"]


def test_created_user_is_found_by_postfix_and_dovecot(api, factory, a_test, directory):
    assert api.post("/api/user/john@a.test", {"password": PW}).status_code == 201
    assert api.put("/api/user/john@a.test", {"addAlias": "jd@a.test"}).status_code == 200
    for address in ("john@a.test", "jd@a.test"):
        home = postfix(directory, "virtual_mailbox_maps", address)
        assert home == [user(factory, "john@a.test").first("homeDirectory")]
        assert postfix(directory, "sender_login_maps", address) == ["john@a.test"]
        # No per-user transport: Postfix falls back to the domain's.
        assert postfix(directory, "transport_maps_user", address) == []
        assert postfix(directory, "transport_maps_domain", "a.test") == ["dovecot"]
        assert dovecot_user(directory, address, "imap") == ["john@a.test"]
    assert dovecot_user(directory, "john@a.test", "pop3tls") == ["john@a.test"]


def test_disabled_users_and_users_without_deliver_are_not_found(api, factory, a_test, directory):
    for mail in ("off@a.test", "nodeliver@a.test"):
        assert api.post(f"/api/user/{mail}", {"password": PW}).status_code == 201
    assert api.put("/api/user/off@a.test", {"accountStatus": "disabled"}).status_code == 200
    assert api.put("/api/user/nodeliver@a.test", {"removeService": "deliver"}).status_code == 200
    assert postfix(directory, "virtual_mailbox_maps", "off@a.test") == []
    assert dovecot_user(directory, "off@a.test") == []
    assert postfix(directory, "virtual_mailbox_maps", "nodeliver@a.test") == []
    assert dovecot_user(directory, "nodeliver@a.test") == ["nodeliver@a.test"]  # may still log in
    factory.domain("b.test")
    assert api.post("/api/user/x@b.test", {"password": PW}).status_code == 201
    assert api.put("/api/domain/b.test", {"accountStatus": "disabled"}).status_code == 200
    assert postfix(directory, "virtual_mailbox_maps", "x@b.test") == []
    assert dovecot_user(directory, "x@b.test") == []
    # A user created in a disabled domain is born disabled with it.
    assert api.post("/api/user/late@b.test", {"password": PW}).status_code == 201
    assert user(factory, "late@b.test").get("domainStatus") == ["disabled"]


def test_create_accepts_status_and_password_hash(api, factory, a_test):
    hashed = passwords.hash_password("any thing", "SHA512-CRYPT")
    r = api.post("/api/user/h@a.test", {"password_hash": hashed, "accountStatus": "disabled"})
    assert r.status_code == 201, r.text
    e = user(factory, "h@a.test")
    assert e.get("userPassword") == [hashed] and e.get("accountStatus") == ["disabled"]
    bcrypt_hash = "{BCRYPT}" + passwords.hash_password("x", "BCRYPT")[len("{CRYPT}"):]
    assert api.post("/api/user/b@a.test", {"password_hash": bcrypt_hash}).status_code == 201
    assert user(factory, "b@a.test").first("userPassword").startswith("{CRYPT}$2b$")


@pytest.mark.parametrize("params, code", [
    ({}, "MISSING_PARAMETER"),
    ({"password": "short1#A"[:5]}, "PW_SHORTER_THAN_MIN_LENGTH"),
    ({"password": "alllowercase1#"}, "PW_NO_UPPERCASE"),
    ({"password": "NoDigits#here"}, "PW_NO_DIGIT_NUMBER"),
    ({"password": "NoSpecial1here"}, "PW_NO_SPECIAL_CHAR"),
    ({"password": "Ünïcode#1pass"}, "PW_NON_ASCII"),
    ({"password": PW, "password_hash": "{SSHA}abc"}, "CONFLICTING_PARAMETERS"),
    ({"password_hash": "plain-text"}, "INVALID_PASSWORD_SCHEME"),
    ({"password": PW, "quota": "-1"}, "INVALID_PARAMETER"),
    ({"password": PW, "mailboxFormat": "mbox2"}, "INVALID_PARAMETER"),
    ({"password": PW, "maildir": "relative/path"}, "INVALID_PARAMETER"),
    ({"password": PW, "forwarding": "x@b.test"}, "UNKNOWN_PARAMETERS"),
])
def test_create_bad_input_is_400_and_writes_nothing(api, factory, a_test, params, code):
    r = api.post("/api/user/u@a.test", params)
    assert r.status_code == 400, r.text
    assert code in r.json["_msg"].split(",")
    assert user(factory, "u@a.test") is None
    assert domain(factory, "a.test").get("domainCurrentUserNumber") == ["0"]


def test_create_enforces_the_domain_rules(api, factory, directory):
    factory.domain("q.test", maxUserQuota=100, quota=250, numberOfUsers=3, minPasswordLength=12)
    r = api.post("/api/user/a@q.test", {"password": PW})
    assert r.status_code == 400 and "PW_SHORTER_THAN_MIN_LENGTH" in r.json["_msg"]
    strong = "Much#longer1pass"
    r = api.post("/api/user/a@q.test", {"password": strong, "quota": "101"})
    assert r.status_code == 400 and r.json["_msg"] == "EXCEEDED_MAX_USER_QUOTA"
    assert api.post("/api/user/a@q.test", {"password": strong, "quota": "100"}).status_code == 201
    assert api.post("/api/user/b@q.test", {"password": strong, "quota": "100"}).status_code == 201
    r = api.post("/api/user/c@q.test", {"password": strong, "quota": "100"})
    assert r.status_code == 400 and r.json["_msg"] == "EXCEEDED_DOMAIN_QUOTA"
    assert api.post("/api/user/c@q.test", {"password": strong, "quota": "50"}).status_code == 201
    r = api.post("/api/user/d@q.test", {"password": strong, "quota": "0"})
    assert r.status_code in (400, 403)
    assert user(factory, "d@q.test") is None
    # The fourth user is over numberOfUsers=3.
    directory.modify(factory.tree.domain("q.test"), {"accountSetting": [("MODIFY_DELETE", ["domainQuota:250:MB"])]})
    r = api.post("/api/user/d@q.test", {"password": strong, "quota": "10"})
    assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT"
    assert user(factory, "d@q.test") is None
    assert domain(factory, "q.test").get("domainCurrentUserNumber") == ["3"]


def test_create_refuses_backup_mx_unknown_domain_and_taken_addresses(api, factory, a_test):
    factory.domain("mx.test", is_backupmx=True)
    assert api.post("/api/user/u@mx.test", {"password": PW}).status_code == 400
    assert api.post("/api/user/u@nowhere.test", {"password": PW}).status_code == 404
    assert api.post("/api/user/john@a.test", {"password": PW}).status_code == 201
    assert api.put("/api/user/john@a.test", {"addAlias": "taken@a.test"}).status_code == 200
    r = api.post("/api/user/taken@a.test", {"password": PW})
    assert r.status_code == 409
    r = api.post("/api/user/john@a.test", {"password": PW})
    assert r.status_code == 409


def test_numberofusers_holds_under_concurrent_creates(slapd_directory, settings, iredadmin, factory_slapd):
    """Ten creates race for five places: exactly five users exist afterwards."""
    from iredldap.backends import Backends
    from iredldap.web.app import create_app
    factory_slapd.domain("race.test", numberOfUsers=5)
    factory_slapd.global_admin("root@admins.test", "R00t#secret")
    app = create_app(settings, Backends(slapd_directory, iredadmin))
    results = []

    def create(i):
        client = ApiClient(app, settings)
        client.login("root@admins.test", "R00t#secret")
        results.append(client.post(f"/api/user/u{i}@race.test", {"password": PW}).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    users = factory_slapd.search(factory_slapd.tree.container("race.test", "Users"), "(objectClass=mailUser)",
                                 scope=SUBTREE)
    assert len(users) <= 5
    assert results.count(201) == len(users)
    assert domain(factory_slapd, "race.test").get("domainCurrentUserNumber") == [str(len(users))]


@pytest.fixture
def factory_slapd(slapd_directory, settings):
    from .support import Factory
    return Factory(slapd_directory, settings)


# -- passwords ------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["SSHA512", "SSHA", "BCRYPT", "SHA512-CRYPT", "SHA512", "MD5"])
def test_each_scheme_is_stored_as_dovecot_verifies(tmp_path, directory, iredadmin, factory, scheme):
    from iredldap.backends import Backends
    from iredldap.web.app import create_app
    from tests.conftest import make_settings
    settings = make_settings(tmp_path, default_password_scheme=scheme)
    factory.domain("a.test")
    factory.global_admin("root@admins.test", "R00t#secret")
    client = ApiClient(create_app(settings, Backends(directory, iredadmin)), settings)
    client.login("root@admins.test", "R00t#secret")
    assert client.post("/api/user/u@a.test", {"password": PW}).status_code == 201
    stored = user(factory, "u@a.test").first("userPassword")
    expected_prefix = {"BCRYPT": "{CRYPT}$2b$", "MD5": "{CRYPT}$1$"}.get(scheme, "{" + scheme + "}")
    assert stored.startswith(expected_prefix)
    doveadm = shutil.which("doveadm")
    assert doveadm, "doveadm missing: apt-get install dovecot-core (scripts/test does)"
    ok = subprocess.run([doveadm, "-c", "/dev/null", "pw", "-t", stored, "-p", PW], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([doveadm, "-c", "/dev/null", "pw", "-t", stored, "-p", PW + "x"], capture_output=True)
    assert bad.returncode != 0
    assert client.post("/api/verify_password/user/u@a.test", {"password": PW}).status_code == 200
    r = client.post("/api/verify_password/user/u@a.test", {"password": "wrong"})
    assert r.status_code == 400 and r.json["_msg"] == "PW_MISMATCH"


def test_password_change_updates_hash_and_shadowlastchange(api, factory, a_test, directory):
    assert api.post("/api/user/u@a.test", {"password": PW}).status_code == 201
    directory.modify(factory.tree.user("u@a.test"), {"shadowLastChange": [("MODIFY_REPLACE", ["100"])]})
    assert api.put("/api/user/u@a.test", {"password": "N3w#password"}).status_code == 200
    e = user(factory, "u@a.test")
    assert passwords.verify_password("N3w#password", e.first("userPassword"))
    assert int(e.first("shadowLastChange")) > 20000
    r = api.put("/api/user/u@a.test", {"password": "weak"})
    assert r.status_code == 400
    assert passwords.verify_password("N3w#password", user(factory, "u@a.test").first("userPassword"))


# -- update ---------------------------------------------------------------------

@pytest.fixture
def john(api, factory, a_test):
    assert api.post("/api/user/john@a.test", {"password": PW, "name": "John"}).status_code == 201
    return "john@a.test"


def test_update_profile_fields(api, factory, john):
    r = api.put(f"/api/user/{john}", {"cn": "Johnny", "gn": "J", "sn": "Smith", "quota": "0", "language": "it_IT",
                                      "employeeid": "42", "transport": "relay:[h.test]:25",
                                      "senderBcc": "s@b.test", "recipientBcc": "r@b.test",
                                      "outboundRelay": "[relay.test]:587", "mailboxFormat": "mdbox",
                                      "mailboxFolder": "Mail", "telephoneNumber": "123,456", "mobile": "789"})
    assert r.status_code == 200, r.text
    e = user(factory, john)
    assert e.get("cn") == ["Johnny"] and e.get("givenName") == ["J"] and e.get("sn") == ["Smith"]
    assert e.get("mailQuota") == [] and e.get("preferredLanguage") == ["it_IT"]
    assert e.get("employeeNumber") == ["42"] and e.get("mtaTransport") == ["relay:[h.test]:25"]
    assert e.get("userSenderBccAddress") == ["s@b.test"] and e.get("userRecipientBccAddress") == ["r@b.test"]
    assert e.get("senderRelayHost") == ["[relay.test]:587"]
    assert e.get("mailboxFormat") == ["mdbox"] and e.get("mailboxFolder") == ["Mail"]
    assert sorted(e.get("telephoneNumber")) == ["123", "456"] and e.get("mobile") == ["789"]
    assert api.put(f"/api/user/{john}", {"name": "", "senderBcc": "", "telephoneNumber": "456"}).status_code == 200
    e = user(factory, john)
    assert e.get("cn") == ["john"] and e.get("userSenderBccAddress") == [] and e.get("telephoneNumber") == ["456"]


def test_bcc_and_relay_are_found_by_postfix(api, factory, john, directory):
    api.put(f"/api/user/{john}", {"senderBcc": "s@b.test", "recipientBcc": "r@b.test",
                                  "outboundRelay": "smtp:[192.0.2.5]:25"})
    assert postfix(directory, "sender_bcc_maps_user", john) == ["s@b.test"]
    assert postfix(directory, "recipient_bcc_maps_user", john) == ["r@b.test"]
    assert postfix(directory, "sender_dependent_relayhost_maps_user", john) == ["smtp:[192.0.2.5]:25"]


def test_forwarding_reset_add_remove_and_keep_copy(api, factory, john, directory):
    assert api.put(f"/api/user/{john}", {"forwarding": "x@b.test, JOHN@a.test"}).status_code == 200
    assert sorted(postfix(directory, "virtual_alias_maps", john)) == ["john@a.test", "x@b.test"]
    assert api.put(f"/api/user/{john}", {"removeService": "forward"}).status_code == 200
    assert postfix(directory, "virtual_alias_maps", john) == []
    assert api.put(f"/api/user/{john}", {"addForwarding": "y@b.test", "removeForwarding": "john@a.test"}).status_code == 200
    e = user(factory, john)
    assert sorted(e.get("mailForwardingAddress")) == ["x@b.test", "y@b.test"]
    assert "forward" in e.get("enabledService")
    assert api.put(f"/api/user/{john}", {"forwarding": ""}).status_code == 200
    assert user(factory, john).get("mailForwardingAddress") == []
    r = api.put(f"/api/user/{john}", {"forwarding": "a@b.test", "addForwarding": "c@b.test"})
    assert r.status_code == 400


def test_per_user_aliases(api, factory, john, directory):
    api.put("/api/domain/a.test", {"addAliasDomain": "alias.test"})
    assert user(factory, john).get("shadowAddress") == ["john@alias.test"]
    r = api.put(f"/api/user/{john}", {"addAlias": "jj@a.test,jj@alias.test"})
    assert r.status_code == 200, r.text
    assert sorted(user(factory, john).get("shadowAddress")) == ["jj@a.test", "jj@alias.test", "john@alias.test"]
    assert postfix(directory, "virtual_mailbox_maps", "jj@alias.test")
    for bad, status in (("x@elsewhere.test", 400), ("john@a.test", 409), ("bad", 400)):
        r = api.put(f"/api/user/{john}", {"addAlias": bad})
        assert r.status_code == status, (bad, r.text)
    assert api.put(f"/api/user/{john}", {"removeAlias": "jj@a.test"}).status_code == 200
    # Resetting per-user aliases keeps the alias-domain twin the domain maintains.
    assert api.put(f"/api/user/{john}", {"aliases": ""}).status_code == 200
    assert user(factory, john).get("shadowAddress") == ["john@alias.test"]
    assert api.put(f"/api/user/{john}", {"aliases": "a@a.test", "addAlias": "b@a.test"}).status_code == 400


def test_services_and_global_admin(api, factory, john):
    assert api.put(f"/api/user/{john}", {"services": "mail,deliver,imap,vpn"}).status_code == 200
    assert sorted(user(factory, john).get("enabledService")) == ["deliver", "imap", "mail", "vpn"]
    assert api.put(f"/api/user/{john}", {"isGlobalAdmin": "yes"}).status_code == 200
    e = user(factory, john)
    assert e.get("domainGlobalAdmin") == ["yes"] and "domainadmin" in e.get("enabledService")
    assert api.put(f"/api/user/{john}", {"isGlobalAdmin": "no"}).status_code == 200
    e = user(factory, john)
    assert e.get("domainGlobalAdmin") == [] and "domainadmin" not in e.get("enabledService")


def test_update_unknown_user_and_bad_input(api, factory, john):
    assert api.put("/api/user/ghost@a.test", {"name": "x"}).status_code == 404
    before = user(factory, john).attrs
    for params in ({"quota": "x"}, {"accountStatus": "maybe"}, {"bogus": "1"}, {"gn": "a", "givenName": "b"}):
        assert api.put(f"/api/user/{john}", params).status_code == 400
    assert user(factory, john).attrs == before


def test_get_user_has_derived_fields_and_no_password(api, factory, john, iredadmin, directory):
    factory.domain("b.test")
    api.put("/api/domain/admins/a.test", {"addAdmin": john})
    factory.dir.add(factory.tree.alias("team@a.test"), {
        "objectClass": ["mailAlias"], "mail": ["team@a.test"], "accountStatus": ["active"],
        "enabledService": ["mail", "deliver"], "mailForwardingAddress": [john]})
    directory.modify(factory.tree.user(john), {"memberOfGroup": [("MODIFY_ADD", ["list@a.test"])]})
    with iredadmin.engine.begin() as conn:
        conn.execute(insert(tables.used_quota).values(username=john, bytes=1234, messages=5, domain="a.test"))
        conn.execute(insert(tables.last_login).values(username=john, domain="a.test", imap=1700000000, pop3=None,
                                                      lda=1600000000))
    data = api.get(f"/api/user/{john}").json["_data"]
    assert "userPassword" not in data
    assert data["managed_domains"] == ["a.test"] and data["mailing_aliases"] == ["team@a.test"]
    assert data["mailing_lists"] == ["list@a.test"]
    assert data["stored_bytes"] == 1234 and data["stored_messages"] == 5
    assert data["last_login"] == "2023-11-14T22:13:20+00:00"


def test_list_users(api, factory, john, a_test):
    api.put("/api/domain/a.test", {"catchall": "x@b.test"})
    assert api.post("/api/user/zed@a.test", {"password": PW}).status_code == 201
    api.put("/api/user/zed@a.test", {"accountStatus": "disabled"})
    assert api.get("/api/users/a.test", {"email_only": "yes"}).json["_data"] == ["john@a.test", "zed@a.test"]
    assert api.get("/api/users/a.test", {"email_only": "yes", "disabled_only": "yes"}).json["_data"] == ["zed@a.test"]
    full = api.get("/api/users/a.test").json["_data"]
    assert [u["mail"] for u in full] == [["john@a.test"], ["zed@a.test"]]
    assert all("userPassword" not in u for u in full)
    assert api.get("/api/users/none.test").status_code == 404


def test_bulk_update_of_all_users(api, factory, john):
    assert api.post("/api/user/zed@a.test", {"password": PW}).status_code == 201
    r = api.put("/api/users/a.test", {"accountStatus": "disabled", "language": "es_ES", "transport": "lmtp:x",
                                      "password": "B4lk#password"})
    assert r.status_code == 200, r.text
    for mail in (john, "zed@a.test"):
        e = user(factory, mail)
        assert e.get("accountStatus") == ["disabled"] and e.get("preferredLanguage") == ["es_ES"]
        assert e.get("mtaTransport") == ["lmtp:x"]
        assert passwords.verify_password("B4lk#password", e.first("userPassword"))
    assert api.put("/api/users/a.test", {"password": "weak"}).status_code == 400
    assert api.put("/api/users/a.test", {"quota": "5"}).status_code == 400


# -- delete and change_email -------------------------------------------------------

def _references(factory, address):
    """Every entry anywhere under the suffix that still names the address."""
    attrs = ("mail", "shadowAddress", "mailForwardingAddress", "domainAdmin", "memberOfGroup", "listModerator",
             "listOwner", "listAllowedUser", "userSenderBccAddress", "userRecipientBccAddress",
             "domainSenderBccAddress", "domainRecipientBccAddress")
    flt = "(|" + "".join(f"({a}={address})" for a in attrs) + ")"
    return [e.dn for e in factory.search("dc=example,dc=com", flt, scope=SUBTREE)]


@pytest.fixture
def referenced_john(api, factory, john, directory):
    """john@a.test named everywhere an address can be named."""
    factory.domain("b.test")
    assert api.post("/api/user/friend@b.test", {"password": PW}).status_code == 201
    api.put("/api/user/friend@b.test", {"forwarding": john, "senderBcc": john})
    api.put("/api/domain/a.test", {"catchall": f"{john},other@b.test", "recipientBcc": john})
    api.put("/api/domain/admins/b.test", {"addAdmin": john})
    directory.add(factory.tree.alias("team@a.test"), {
        "objectClass": ["mailAlias"], "mail": ["team@a.test"], "accountStatus": ["active"],
        "enabledService": ["mail", "deliver"], "mailForwardingAddress": [john, "other@b.test"]})
    directory.add(factory.tree.maillist("list@a.test"), {
        "objectClass": ["mailList"], "mail": ["list@a.test"], "accountStatus": ["active"],
        "enabledService": ["mail", "deliver"], "listModerator": [john], "listOwner": [john]})
    directory.modify(factory.tree.user(john), {"memberOfGroup": [("MODIFY_ADD", ["list@a.test"])]})
    assert len(_references(factory, john)) >= 6
    return john


def test_delete_removes_user_and_every_reference(api, factory, referenced_john, iredadmin):
    r = api.delete(f"/api/user/{referenced_john}/keep_mailbox_days/7")
    assert r.status_code == 200, r.text
    assert user(factory, referenced_john) is None
    assert _references(factory, referenced_john) == []
    catchall = factory.entry(factory.tree.catchall("a.test"))
    assert catchall.get("mailForwardingAddress") == ["other@b.test"]
    with iredadmin.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(tables.deleted_mailboxes))]
    assert [(r["username"], r["domain"]) for r in rows] == [(referenced_john, "a.test")]
    assert rows[0]["delete_date"] == datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(7)
    assert rows[0]["maildir"].startswith("/var/vmail/vmail1/a.test/j/o/h/john-")
    assert domain(factory, "a.test").get("domainCurrentUserNumber") == ["0"]


def test_delete_without_days_keeps_a_century_and_unknown_is_404(api, factory, john, iredadmin):
    assert api.delete(f"/api/user/{john}").status_code == 200
    with iredadmin.engine.connect() as conn:
        row = conn.execute(select(tables.deleted_mailboxes)).one()
    assert row.delete_date.year >= datetime.date.today().year + 99
    assert api.delete(f"/api/user/{john}").status_code == 404


def test_change_email_moves_entry_and_references(api, factory, referenced_john, directory):
    home = user(factory, referenced_john).first("homeDirectory")
    r = api.post(f"/api/user/{referenced_john}/change_email/johnny@a.test")
    assert r.status_code == 200, r.text
    assert user(factory, referenced_john) is None
    moved = user(factory, "johnny@a.test")
    assert moved.get("mail") == ["johnny@a.test"] and moved.get("uid") == ["johnny"]
    assert moved.first("homeDirectory") == home
    assert moved.get("memberOfGroup") == ["list@a.test"]
    assert _references(factory, referenced_john) == []
    assert postfix(directory, "virtual_mailbox_maps", "johnny@a.test") == [home]
    assert "johnny@a.test" in postfix(directory, "catchall_maps", "@a.test")
    assert postfix(directory, "virtual_alias_maps", "team@a.test").count("johnny@a.test") == 1
    assert "johnny@a.test" in domain(factory, "b.test").get("domainAdmin")


def test_change_email_to_another_domain_and_refusals(api, factory, john, directory):
    factory.domain("b.test", aliasDomains=["b-alias.test"])
    assert api.post(f"/api/user/{john}/change_email/j@b.test").status_code == 200
    moved = user(factory, "j@b.test")
    assert moved.get("shadowAddress") == ["j@b-alias.test"]
    assert domain(factory, "a.test").get("domainCurrentUserNumber") == ["0"]
    assert domain(factory, "b.test").get("domainCurrentUserNumber") == ["1"]
    assert api.post("/api/user/k@a.test", {"password": PW}).status_code == 201
    assert api.post("/api/user/k@a.test/change_email/j@b.test").status_code == 409
    assert api.post("/api/user/k@a.test/change_email/k@nowhere.test").status_code == 404
    assert api.post("/api/user/k@a.test/change_email/not-an-address").status_code == 400
    assert user(factory, "k@a.test") is not None


def test_normal_admin_is_confined_to_its_domains(app, settings, factory, a_test, api):
    factory.domain("b.test")
    assert api.post("/api/user/x@b.test", {"password": PW}).status_code == 201
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["a.test"])
    boss = ApiClient(app, settings)
    boss.login("boss@admins.test", "B0ss#secret")
    assert boss.post("/api/user/u@a.test", {"password": PW}).status_code == 201
    assert boss.post("/api/user/u@b.test", {"password": PW}).status_code == 403
    assert boss.get("/api/user/x@b.test").status_code == 403
    assert boss.get("/api/user/ghost@b.test").status_code == 403
    assert boss.put("/api/user/u@a.test", {"isGlobalAdmin": "yes"}).status_code == 403
    assert boss.put("/api/user/u@a.test", {"maildir": "/tmp/x"}).status_code == 403
    assert boss.post("/api/user/u@a.test/change_email/u@b.test").status_code == 403
    assert boss.delete("/api/user/x@b.test").status_code == 403
    assert boss.get("/api/users/b.test").status_code == 403
    assert boss.post("/api/verify_password/user/u@a.test", {"password": PW}).status_code == 403
    assert user(factory, "u@a.test").get("domainGlobalAdmin") == []
    assert user(factory, "x@b.test") is not None


def test_policies_follow_change_email_and_go_with_delete(api, factory, john):
    assert api.put(f"/api/spampolicy/user/{john}", {"bypass_spam_checks": "yes"}).status_code == 200
    assert api.post(f"/api/throttle/{john}/outbound", {"period": "60", "max_msgs": "5"}).status_code == 200
    assert api.post(f"/api/user/{john}/change_email/jo@a.test").status_code == 200
    assert api.get("/api/spampolicy/user/jo@a.test").json["_data"]["bypass_spam_checks"] is True
    assert api.get("/api/throttle/jo@a.test/outbound").json["_data"]["max_msgs"] == 5
    # An account re-created under the old address starts clean.
    assert api.post(f"/api/user/{john}", {"password": PW}).status_code == 201
    assert api.get(f"/api/spampolicy/user/{john}").json["_data"] == {}
    assert api.get(f"/api/throttle/{john}/outbound").json["_data"] == {}
    assert api.delete("/api/user/jo@a.test").status_code == 200
    assert api.post("/api/user/jo@a.test", {"password": PW}).status_code == 201
    assert api.get("/api/spampolicy/user/jo@a.test").json["_data"] == {}
    assert api.get("/api/throttle/jo@a.test/outbound").json["_data"] == {}


# -- a new mailbox path is never one in use ---------------------------------------------------

class _OneSecond:
    """time for iredldap.model.mailbox only: always the same second."""

    NOW = 1_800_000_000.0

    @staticmethod
    def time():
        return _OneSecond.NOW


def test_a_new_mailbox_path_steps_past_every_path_in_use(api, factory, settings, iredadmin, monkeypatch):
    """Paths held as homeDirectory, as mailMessageStore (relative, as
    iRedMail splits /var/vmail + vmail1/...) or by a kept mailbox are
    skipped a second at a time; with every second of the bound taken the
    create is refused and writes nothing."""
    from iredldap.model.mailbox import FREE_PATH_STEPS, home_directory

    monkeypatch.setattr("iredldap.model.mailbox.time", _OneSecond)
    base = settings.storage_base_directory.rstrip("/")
    factory.domain("x.test")
    path = [home_directory("ann@x.test", base, now=_OneSecond.NOW + k) for k in range(FREE_PATH_STEPS)]
    # second 0: a homeDirectory; 1: a mailMessageStore below the base's parent; 2: a kept mailbox.
    factory.user("holder@x.test")
    factory.dir.modify(factory.tree.user("holder@x.test"), {"homeDirectory": [("MODIFY_REPLACE", [path[0]])]})
    factory.user("old@x.test", mailMessageStore=[base.rpartition("/")[2] + path[1][len(base):]])
    with iredadmin.engine.begin() as conn:
        conn.execute(insert(tables.deleted_mailboxes).values(
            username="gone@x.test", domain="x.test", maildir=path[2].rstrip("/"), admin="x",
            timestamp=datetime.datetime(2026, 1, 1)))
    assert api.post("/api/user/ann@x.test", {"password": "Ann#Secret1"}).status_code == 201
    assert factory.entry(factory.tree.user("ann@x.test")).first("homeDirectory") == path[3]

    # Every second of the bound taken (ann holds path[3], keep the rest busy too).
    for k, taken in enumerate(path[4:]):
        factory.user(f"busy{k}@x.test")
        factory.dir.modify(factory.tree.user(f"busy{k}@x.test"), {"homeDirectory": [("MODIFY_REPLACE", [taken])]})
    assert api.post("/api/user/ann@x.test/change_email/ann.old@x.test").status_code == 200
    r = api.post("/api/user/ann@x.test", {"password": "Ann#Secret1"})
    assert r.status_code == 409 and r.json["_msg"] == "CONFLICT", r.text
    assert factory.entry(factory.tree.user("ann@x.test")) is None
