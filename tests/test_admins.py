"""The domain-admin API, checked on the entries written, and the limits of normal admins."""

from __future__ import annotations

import pytest

from iredldap.web import authz
from iredldap.web import app as web_app
from iredldap.model import passwords
from iredldap.directory.admins import Principal
from iredldap.directory.connection import SUBTREE
from iredldap.directory.limits import AdminLimits, quota_limit_mb
from iredldap.errors import LimitExceeded

from .support import ApiClient

PW = "Adm1n#pass"
USER_PW = "Us3r#secret1"
MiB = 1024 * 1024


def admin(factory, mail):
    return factory.entry(factory.tree.admin(mail))


def user(factory, mail):
    return factory.entry(factory.tree.user(mail))


def domain(factory, name):
    return factory.entry(factory.tree.domain(name))


def everything(factory):
    """Every entry below the suffix, to show a refused request wrote nothing."""
    return sorted((e.dn, sorted((k, sorted(v)) for k, v in e.attrs.items()))
                  for e in factory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE))


def login(app, settings, mail, password=PW) -> ApiClient:
    client = ApiClient(app, settings)
    client.login(mail, password)
    return client


@pytest.fixture
def two_domains(factory):
    factory.domain("one.test")
    factory.domain("two.test")


# -- create ---------------------------------------------------------------------

def test_create_standalone_admin_writes_the_entry(api, factory):
    r = api.post("/api/admin/Boss@Admins.test", {
        "name": "The Boss", "password": PW, "language": "de_DE", "maxDomains": "5", "maxQuota": "2",
        "quotaUnit": "TB", "maxUsers": "100", "maxAliases": "200", "maxLists": "300",
        "disableViewingMailLog": "yes", "disableManagingQuarantinedMails": "no"})
    assert r.status_code == 201, r.text
    e = admin(factory, "boss@admins.test")
    assert e.dn.lower() == "mail=boss@admins.test,o=domainadmins,dc=example,dc=com"
    assert [c for c in e.get("objectClass") if c != "top"] == ["mailAdmin"]
    assert e.get("mail") == ["boss@admins.test"]
    assert e.get("cn") == ["The Boss"] and e.get("preferredLanguage") == ["de_DE"]
    assert e.get("accountStatus") == ["active"] and e.get("domainGlobalAdmin") == []
    assert e.first("userPassword").startswith("{SSHA512}")
    assert passwords.verify_password(PW, e.first("userPassword"))
    assert int(e.first("shadowLastChange")) > 19000
    assert sorted(e.get("accountSetting")) == sorted([
        "create_new_domains:yes", "create_max_domains:5", f"create_max_quota:{2 * 1024 * 1024}",
        "create_quota_unit:TB", "create_max_users:100", "create_max_aliases:200", "create_max_lists:300"])
    assert e.get("disabledService") == ["view_mail_log"]
    # The new admin can log in.
    login(api.client.app, api.settings, "boss@admins.test")


def test_create_global_admin_discards_the_limits(api, factory):
    r = api.post("/api/admin/chief@admins.test", {"password": PW, "isGlobalAdmin": "yes", "maxUsers": "3",
                                                  "maxQuota": "1", "quotaUnit": "GB",
                                                  "disableViewingMailLog": "yes", "accountStatus": "disabled"})
    assert r.status_code == 201, r.text
    e = admin(factory, "chief@admins.test")
    assert e.get("domainGlobalAdmin") == ["yes"] and e.get("accountStatus") == ["disabled"]
    assert e.get("accountSetting") == [] and e.get("disabledService") == []


def test_create_refuses_mail_users_and_duplicates_but_allows_hosted_domains(api, factory, two_domains):
    factory.user("john@one.test")
    before = everything(factory)
    r = api.post("/api/admin/john@one.test", {"password": PW})
    assert r.status_code == 409 and r.json["_msg"] == "ALREADY_EXISTS"
    assert everything(factory) == before
    assert api.post("/api/admin/root@admins.test", {"password": PW}).status_code == 409
    # A standalone admin may have an address in a hosted domain (it is an account of its own).
    assert api.post("/api/admin/helper@one.test", {"password": PW}).status_code == 201
    assert admin(factory, "helper@one.test") is not None
    assert api.post("/api/admin/helper@one.test", {"password": PW}).status_code == 409


@pytest.mark.parametrize("params, code", [
    ({}, "MISSING_PARAMETER"),
    ({"password": "weak"}, "PW_SHORTER_THAN_MIN_LENGTH"),
    ({"password": PW, "maxQuota": "2"}, "MISSING_PARAMETER"),
    ({"password": PW, "quotaUnit": "GB"}, "MISSING_PARAMETER"),
    ({"password": PW, "maxQuota": "2", "quotaUnit": "PB"}, "INVALID_PARAMETER"),
    ({"password": PW, "maxQuota": "-2", "quotaUnit": "GB"}, "INVALID_PARAMETER"),
    ({"password": PW, "maxUsers": "-2"}, "INVALID_PARAMETER"),
    ({"password": PW, "maxDomains": "-5"}, "INVALID_PARAMETER"),
    ({"password": PW, "maxAliases": "many"}, "INVALID_PARAMETER"),
    ({"password": PW, "maxLists": "1.5"}, "INVALID_PARAMETER"),
    ({"password": PW, "isGlobalAdmin": "perhaps"}, "INVALID_PARAMETER"),
    ({"password": PW, "language": "klingon!"}, "INVALID_PARAMETER"),
    ({"password": PW, "quota": "10"}, "UNKNOWN_PARAMETERS"),
    ({"password": PW, "password_hash": "{SSHA}x"}, "UNKNOWN_PARAMETERS"),
])
def test_create_bad_input_is_400_and_writes_nothing(api, factory, params, code):
    before = everything(factory)
    r = api.post("/api/admin/boss@admins.test", params)
    assert r.status_code == 400, r.text
    assert code in r.json["_msg"].split(",")
    assert everything(factory) == before


def test_bad_address_is_400(api, factory):
    assert api.post("/api/admin/not-an-address", {"password": PW}).status_code == 400
    assert api.get("/api/admin/not-an-address").status_code == 400


# -- get --------------------------------------------------------------------------

def test_get_shows_attributes_managed_domains_and_limits(api, factory, two_domains):
    assert api.post("/api/admin/boss@admins.test", {
        "name": "Boss", "password": PW, "maxDomains": "5", "maxQuota": "2", "quotaUnit": "TB",
        "maxUsers": "100", "maxLists": "-1", "disableManagingQuarantinedMails": "yes"}).status_code == 201
    assert api.put("/api/domain/admins/two.test", {"addAdmin": "boss@admins.test"}).status_code == 200
    assert api.put("/api/domain/admins/one.test", {"addAdmin": "boss@admins.test"}).status_code == 200
    r = api.get("/api/admin/boss@admins.test")
    assert r.status_code == 200, r.text
    data = r.json["_data"]
    assert "userPassword" not in data
    assert data["mail"] == ["boss@admins.test"] and data["cn"] == ["Boss"]
    assert "mailAdmin" in data["objectClass"]
    assert data["managed_domains"] == ["one.test", "two.test"]
    assert data["isGlobalAdmin"] == "no"
    assert (data["maxDomains"], data["maxQuota"], data["quotaUnit"]) == (5, 2, "TB")
    assert (data["maxUsers"], data["maxAliases"], data["maxLists"]) == (100, 0, -1)
    assert data["disableViewingMailLog"] == "no" and data["disableManagingQuarantinedMails"] == "yes"
    root = api.get("/api/admin/root@admins.test").json["_data"]
    assert root["isGlobalAdmin"] == "yes" and root["managed_domains"] == []
    assert root["maxDomains"] == -1 and root["maxQuota"] == 0 and root["quotaUnit"] == "MB"


def test_get_unknown_admin_or_plain_user_is_404(api, factory, two_domains):
    factory.user("plain@one.test")
    for mail in ("ghost@admins.test", "plain@one.test", "ghost@one.test"):
        r = api.get(f"/api/admin/{mail}")
        assert r.status_code == 404, (mail, r.text)
        assert api.put(f"/api/admin/{mail}", {"name": "x"}).status_code == 404
        assert api.delete(f"/api/admin/{mail}").status_code == 404
        assert api.post(f"/api/verify_password/admin/{mail}", {"password": USER_PW}).status_code == 404
    assert user(factory, "plain@one.test").get("cn") == ["plain"]


def test_quota_limit_written_by_other_tools_is_read(api, factory, directory):
    factory.normal_admin("old@admins.test", PW, settings=["create_max_quota:10:GB"])
    data = api.get("/api/admin/old@admins.test").json["_data"]
    assert data["maxQuota"] == 10 * 1024 and data["quotaUnit"] == "MB"
    assert quota_limit_mb({"create_max_quota": "10GB"}) == 10240
    assert quota_limit_mb({"create_max_quota": "512"}) == 512
    assert quota_limit_mb({"create_max_quota": "lots"}) is None


# -- update -----------------------------------------------------------------------

@pytest.fixture
def boss(api, factory):
    assert api.post("/api/admin/boss@admins.test", {"name": "Boss", "password": PW, "maxUsers": "10",
                                                    "maxDomains": "3", "maxQuota": "5", "quotaUnit": "GB"}
                    ).status_code == 201
    return "boss@admins.test"


def test_update_profile_and_password(api, factory, boss, directory):
    directory.modify(factory.tree.admin(boss), {"shadowLastChange": [("MODIFY_REPLACE", ["100"])]})
    r = api.put(f"/api/admin/{boss}", {"name": "Big Boss", "language": "fr_FR", "accountStatus": "disabled",
                                       "password": "N3w#password"})
    assert r.status_code == 200, r.text
    e = admin(factory, boss)
    assert e.get("cn") == ["Big Boss"] and e.get("preferredLanguage") == ["fr_FR"]
    assert e.get("accountStatus") == ["disabled"]
    assert e.first("userPassword").startswith("{SSHA512}")
    assert passwords.verify_password("N3w#password", e.first("userPassword"))
    assert int(e.first("shadowLastChange")) > 19000
    assert api.put(f"/api/admin/{boss}", {"name": "", "language": ""}).status_code == 200
    e = admin(factory, boss)
    assert e.get("cn") == [] and e.get("preferredLanguage") == []
    before = everything(factory)
    assert api.put(f"/api/admin/{boss}", {"password": "weak"}).status_code == 400
    assert everything(factory) == before


def test_update_limits_round_trip_and_removal(api, factory, boss):
    r = api.put(f"/api/admin/{boss}", {"maxUsers": "20", "maxAliases": "7", "maxQuota": "3", "quotaUnit": "TB",
                                       "disableViewingMailLog": "yes", "disableManagingQuarantinedMails": "yes"})
    assert r.status_code == 200, r.text
    e = admin(factory, boss)
    assert sorted(e.get("accountSetting")) == sorted([
        "create_new_domains:yes", "create_max_domains:3", "create_max_users:20", "create_max_aliases:7",
        f"create_max_quota:{3 * 1024 * 1024}", "create_quota_unit:TB"])
    assert sorted(e.get("disabledService")) == ["manage_quarantined_mails", "view_mail_log"]
    data = api.get(f"/api/admin/{boss}").json["_data"]
    assert (data["maxUsers"], data["maxAliases"], data["maxQuota"], data["quotaUnit"]) == (20, 7, 3, "TB")
    # 0 is unlimited (the setting goes); maxDomains=-1 takes domain creation away.
    r = api.put(f"/api/admin/{boss}", {"maxUsers": "0", "maxQuota": "0", "quotaUnit": "MB", "maxDomains": "-1",
                                       "disableViewingMailLog": "no"})
    assert r.status_code == 200, r.text
    e = admin(factory, boss)
    assert e.get("accountSetting") == ["create_max_aliases:7"]
    assert e.get("disabledService") == ["manage_quarantined_mails"]
    data = api.get(f"/api/admin/{boss}").json["_data"]
    assert (data["maxUsers"], data["maxQuota"], data["maxDomains"]) == (0, 0, -1)
    # maxDomains=0: may create domains, as many as it likes.
    assert api.put(f"/api/admin/{boss}", {"maxDomains": "0"}).status_code == 200
    assert sorted(admin(factory, boss).get("accountSetting")) == ["create_max_aliases:7", "create_new_domains:yes"]


def test_update_bad_input_writes_nothing(api, factory, boss):
    before = everything(factory)
    for params in ({"maxQuota": "5"}, {"quotaUnit": "GB"}, {"maxUsers": "-3"}, {"bogus": "1"},
                   {"name": "a", "cn": "b"}, {"accountStatus": "maybe"}, {"maxQuota": "x", "quotaUnit": "GB"}):
        r = api.put(f"/api/admin/{boss}", params)
        assert r.status_code == 400, (params, r.text)
    assert everything(factory) == before


def test_promote_to_global_discards_limits_in_the_same_request(api, factory, boss):
    r = api.put(f"/api/admin/{boss}", {"isGlobalAdmin": "yes", "maxUsers": "99", "maxLists": "5"})
    assert r.status_code == 200, r.text
    e = admin(factory, boss)
    assert e.get("domainGlobalAdmin") == ["yes"]
    assert "create_max_users:10" in e.get("accountSetting")
    assert not any(v.startswith("create_max_lists") for v in e.get("accountSetting"))
    # Still global: limits sent alone are discarded too.
    assert api.put(f"/api/admin/{boss}", {"maxLists": "5"}).status_code == 200
    assert not any(v.startswith("create_max_lists") for v in admin(factory, boss).get("accountSetting"))
    assert api.put(f"/api/admin/{boss}", {"isGlobalAdmin": "no", "maxLists": "5"}).status_code == 200
    e = admin(factory, boss)
    assert e.get("domainGlobalAdmin") == [] and "create_max_lists:5" in e.get("accountSetting")


def test_global_admin_cannot_demote_disable_or_delete_itself(api, factory):
    before = everything(factory)
    assert api.put("/api/admin/root@admins.test", {"isGlobalAdmin": "no"}).status_code == 403
    assert api.put("/api/admin/root@admins.test", {"accountStatus": "disabled"}).status_code == 403
    assert api.delete("/api/admin/root@admins.test").status_code == 403
    assert everything(factory) == before
    assert api.put("/api/admin/root@admins.test", {"name": "Root"}).status_code == 200


# -- delete -----------------------------------------------------------------------

def test_delete_standalone_admin_removes_every_domainadmin_value(api, factory, boss, two_domains, directory):
    factory.domain("three.test")
    factory.normal_admin("other@admins.test", PW, domains=["one.test"])
    for name in ("one.test", "two.test", "three.test"):
        assert api.put(f"/api/domain/admins/{name}", {"addAdmin": boss}).status_code == 200
    # An account forwarding to the admin's address keeps doing so: only the admin role goes.
    factory.user("fan@one.test", mailForwardingAddress=[boss], enabledService=["forward"])
    r = api.delete(f"/api/admin/{boss}")
    assert r.status_code == 200, r.text
    assert admin(factory, boss) is None
    assert domain(factory, "one.test").get("domainAdmin") == ["other@admins.test"]
    assert domain(factory, "two.test").get("domainAdmin") == []
    assert domain(factory, "three.test").get("domainAdmin") == []
    assert factory.search("dc=example,dc=com", f"(domainAdmin={boss})", scope=SUBTREE) == []
    assert user(factory, "fan@one.test").get("mailForwardingAddress") == [boss]
    assert api.delete(f"/api/admin/{boss}").status_code == 404


def test_deleted_admin_is_logged_out(app, settings, api, factory, boss):
    client = login(app, settings, boss)
    assert client.get("/api/domains").status_code == 200
    assert api.delete(f"/api/admin/{boss}").status_code == 200
    assert client.get("/api/domains").status_code == 401


# -- mail users that are admins -----------------------------------------------------

def test_mail_user_admin_get_update_and_demote(api, factory, two_domains):
    factory.user("john@one.test")
    assert api.put("/api/domain/admins/one.test", {"addAdmin": "john@one.test"}).status_code == 200
    assert api.put("/api/domain/admins/two.test", {"addAdmin": "john@one.test"}).status_code == 200
    data = api.get("/api/admin/john@one.test").json["_data"]
    assert data["managed_domains"] == ["one.test", "two.test"] and data["isGlobalAdmin"] == "no"
    assert "domainadmin" in data["enabledService"]
    assert "homeDirectory" not in data and "userPassword" not in data and "mailQuota" not in data
    r = api.put("/api/admin/john@one.test", {"maxUsers": "5", "maxDomains": "2", "maxQuota": "1",
                                             "quotaUnit": "GB", "disableViewingMailLog": "yes"})
    assert r.status_code == 200, r.text
    e = user(factory, "john@one.test")
    assert sorted(e.get("accountSetting")) == sorted(["create_max_users:5", "create_new_domains:yes",
                                                      "create_max_domains:2", "create_max_quota:1024",
                                                      "create_quota_unit:GB"])
    assert "view_mail_log" in e.get("disabledService")
    assert api.put("/api/admin/john@one.test", {"isGlobalAdmin": "yes"}).status_code == 200
    assert user(factory, "john@one.test").get("domainGlobalAdmin") == ["yes"]
    assert api.put("/api/admin/john@one.test", {"isGlobalAdmin": "no", "name": ""}).status_code == 200
    e = user(factory, "john@one.test")
    # Demoted, it is still a normal admin; an empty name falls back to the local part (cn is required).
    assert e.get("domainGlobalAdmin") == [] and "domainadmin" in e.get("enabledService")
    assert e.get("cn") == ["john"]


def test_mail_user_global_admin_promoted_via_user_api(api, factory, two_domains):
    factory.user("jane@one.test", USER_PW)
    assert api.put("/api/user/jane@one.test", {"isGlobalAdmin": "yes"}).status_code == 200
    data = api.get("/api/admin/jane@one.test").json["_data"]
    assert data["isGlobalAdmin"] == "yes"
    assert api.post("/api/verify_password/admin/jane@one.test", {"password": USER_PW}).status_code == 200


def test_delete_mail_user_admin_keeps_the_mailbox(api, factory, two_domains):
    factory.user("john@one.test")
    home = user(factory, "john@one.test").first("homeDirectory")
    assert api.put("/api/domain/admins/one.test", {"addAdmin": "john@one.test"}).status_code == 200
    assert api.put("/api/domain/admins/two.test", {"addAdmin": "john@one.test"}).status_code == 200
    assert api.put("/api/admin/john@one.test", {"isGlobalAdmin": "yes"}).status_code == 200
    factory.dir.modify(factory.tree.user("john@one.test"), {"accountSetting": [
        ("MODIFY_ADD", ["create_max_users:5", "create_new_domains:yes", "timezone:Europe/Paris"])],
        "disabledService": [("MODIFY_ADD", ["view_mail_log"])]})
    r = api.delete("/api/admin/john@one.test")
    assert r.status_code == 200, r.text
    e = user(factory, "john@one.test")
    assert e is not None and e.first("homeDirectory") == home
    assert e.get("domainGlobalAdmin") == [] and "domainadmin" not in e.get("enabledService")
    assert "mail" in e.get("enabledService") and "imap" in e.get("enabledService")
    assert e.get("accountSetting") == ["timezone:Europe/Paris"] and e.get("disabledService") == []
    assert domain(factory, "one.test").get("domainAdmin") == []
    assert domain(factory, "two.test").get("domainAdmin") == []
    assert api.get("/api/admin/john@one.test").status_code == 404
    assert api.get("/api/user/john@one.test").status_code == 200
    assert api.delete("/api/admin/john@one.test").status_code == 404


# -- verify_password ----------------------------------------------------------------

def test_verify_password(api, factory, boss):
    assert api.post(f"/api/verify_password/admin/{boss}", {"password": PW}).status_code == 200
    r = api.post(f"/api/verify_password/admin/{boss}", {"password": "Wrong#pass1"})
    assert r.status_code == 400 and r.json["_msg"] == "PW_MISMATCH"
    r = api.post(f"/api/verify_password/admin/{boss}")
    assert r.status_code == 400 and r.json["_msg"] == "MISSING_PARAMETER"


# -- who may --------------------------------------------------------------------------

def test_admin_routes_are_global_only_in_the_table():
    rows = {k: v for k, v in web_app.RULES.items() if "/api/admin/" in k[0] or "/verify_password/admin/" in k[0]}
    assert set(rows) == {("/api/admin/{mail}", m) for m in ("GET", "POST", "PUT", "DELETE")} | {
        ("/api/verify_password/admin/{mail}", "POST")}
    assert set(rows.values()) == {authz.Rule.GLOBAL}


def test_normal_admin_gets_403_and_writes_nothing(app, settings, api, factory, two_domains):
    factory.normal_admin("helper@admins.test", PW, domains=["one.test"], settings=["create_max_users:2"])
    factory.normal_admin("other@admins.test", PW)
    factory.user("john@one.test")
    assert api.put("/api/domain/admins/one.test", {"addAdmin": "john@one.test"}).status_code == 200
    helper = login(app, settings, "helper@admins.test")
    before = everything(factory)
    for method, path, params in (
            ("GET", "/api/admin/other@admins.test", None),
            ("GET", "/api/admin/helper@admins.test", None),
            ("POST", "/api/admin/new@admins.test", {"password": PW}),
            ("POST", "/api/admin/new@one.test", {"password": PW, "isGlobalAdmin": "yes"}),
            ("PUT", "/api/admin/helper@admins.test", {"isGlobalAdmin": "yes"}),
            ("PUT", "/api/admin/helper@admins.test", {"maxUsers": "1000"}),
            ("PUT", "/api/admin/other@admins.test", {"isGlobalAdmin": "yes"}),
            ("PUT", "/api/admin/john@one.test", {"isGlobalAdmin": "yes"}),
            ("DELETE", "/api/admin/other@admins.test", None),
            ("DELETE", "/api/admin/john@one.test", None),
            ("POST", "/api/verify_password/admin/other@admins.test", {"password": PW}),
            ("POST", "/api/verify_password/admin/helper@admins.test", {"password": PW}),
            # Nor through the user API:
            ("PUT", "/api/user/john@one.test", {"isGlobalAdmin": "yes"}),
    ):
        r = helper.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json["_msg"] == "NOT_AUTHORIZED"
    assert everything(factory) == before


def test_mail_user_normal_admin_cannot_raise_itself(app, settings, api, factory, two_domains):
    factory.user("john@one.test", USER_PW)
    assert api.put("/api/domain/admins/one.test", {"addAdmin": "john@one.test"}).status_code == 200
    assert api.put("/api/admin/john@one.test", {"maxUsers": "1"}).status_code == 200
    john = login(app, settings, "john@one.test", USER_PW)
    before = everything(factory)
    assert john.put("/api/user/john@one.test", {"isGlobalAdmin": "yes"}).status_code == 403
    assert john.put("/api/admin/john@one.test", {"maxUsers": "100"}).status_code == 403
    assert john.put("/api/admin/john@one.test", {"isGlobalAdmin": "yes"}).status_code == 403
    assert john.put("/api/domain/admins/two.test", {"addAdmin": "john@one.test"}).status_code == 403
    assert everything(factory) == before


def test_disabled_admin_is_refused(app, settings, api, factory, boss):
    client = login(app, settings, boss)
    assert api.put(f"/api/admin/{boss}", {"accountStatus": "disabled"}).status_code == 200
    assert client.get("/api/domains").status_code == 401
    with pytest.raises(AssertionError):
        login(app, settings, boss)


# -- limits ---------------------------------------------------------------------------

@pytest.fixture
def reseller(app, settings, api, factory, two_domains):
    """A normal admin of one.test and two.test, made and limited through the API, logged in."""
    def make(**limits) -> ApiClient:
        r = api.post("/api/admin/res@admins.test", {"password": PW, **limits})
        assert r.status_code == 201, r.text
        for name in ("one.test", "two.test"):
            assert api.put(f"/api/domain/admins/{name}", {"addAdmin": "res@admins.test"}).status_code == 200
        return login(app, settings, "res@admins.test")
    return make


def test_max_users_is_shared_across_domains(reseller, api, factory):
    client = reseller(maxUsers="3")
    assert api.put("/api/domain/one.test", {"catchall": "x@else.test"}).status_code == 200  # not a user
    for mail in ("a@one.test", "b@two.test", "c@one.test"):
        r = client.post(f"/api/user/{mail}", {"password": USER_PW})
        assert r.status_code == 201, (mail, r.text)
    before = everything(factory)
    for mail in ("d@two.test", "d@one.test"):
        r = client.post(f"/api/user/{mail}", {"password": USER_PW})
        assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT" and r.json["param"] == "maxUsers"
    assert everything(factory) == before
    # The global admin is not limited by it, and after a delete there is room again.
    assert api.post("/api/user/g@one.test", {"password": USER_PW}).status_code == 201
    assert client.post("/api/user/d@two.test", {"password": USER_PW}).status_code == 403
    assert client.delete("/api/user/g@one.test").status_code == 200
    assert client.delete("/api/user/a@one.test").status_code == 200
    assert client.post("/api/user/d@two.test", {"password": USER_PW}).status_code == 201


def test_max_users_minus_one_means_none(reseller, factory):
    client = reseller(maxUsers="-1")
    r = client.post("/api/user/a@one.test", {"password": USER_PW})
    assert r.status_code == 403 and r.json["param"] == "maxUsers"
    assert user(factory, "a@one.test") is None


def test_max_quota_is_shared_across_domains(reseller, api, factory):
    client = reseller(maxQuota="1", quotaUnit="GB")
    assert client.post("/api/user/a@one.test", {"password": USER_PW, "quota": "500"}).status_code == 201
    assert client.post("/api/user/b@two.test", {"password": USER_PW, "quota": "500"}).status_code == 201
    before = everything(factory)
    for mail, quota in (("c@one.test", "25"), ("c@two.test", "0")):
        r = client.post(f"/api/user/{mail}", {"password": USER_PW, "quota": quota})
        assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT" and r.json["param"] == "maxQuota"
    # Raising a quota counts too (the user's own current quota is replaced, not added).
    r = client.put("/api/user/a@one.test", {"quota": "525"})
    assert r.status_code == 403 and r.json["param"] == "maxQuota"
    r = client.put("/api/user/a@one.test", {"quota": "0"})
    assert r.status_code == 403 and r.json["param"] == "maxQuota"
    assert everything(factory) == before
    assert client.put("/api/user/a@one.test", {"quota": "524"}).status_code == 200
    assert user(factory, "a@one.test").get("mailQuota") == [str(524 * MiB)]
    assert client.put("/api/user/a@one.test", {"quota": "100"}).status_code == 200
    assert client.post("/api/user/c@one.test", {"password": USER_PW, "quota": "424"}).status_code == 201
    # A domain's default quota counts when no quota is given.
    assert api.put("/api/domain/two.test", {"defaultQuota": "10"}).status_code == 200
    r = client.post("/api/user/d@two.test", {"password": USER_PW})
    assert r.status_code == 403 and r.json["param"] == "maxQuota"
    # The global admin is not limited by it.
    assert api.post("/api/user/e@two.test", {"password": USER_PW, "quota": "5000"}).status_code == 201
    assert api.put("/api/user/a@one.test", {"quota": "0"}).status_code == 200


def test_max_domains_counts_managed_domains(reseller, api, factory):
    client = reseller(maxDomains="3")
    assert client.post("/api/domain/three.test").status_code == 201
    assert domain(factory, "three.test").get("domainAdmin") == ["res@admins.test"]
    r = client.post("/api/domain/four.test")
    assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT" and r.json["param"] == "maxDomains"
    assert domain(factory, "four.test") is None
    # The limit is raised by a global admin: room for one more.
    assert api.put("/api/admin/res@admins.test", {"maxDomains": "4"}).status_code == 200
    assert client.post("/api/domain/four.test").status_code == 201
    # maxDomains=-1: no domain creation at all.
    assert api.put("/api/admin/res@admins.test", {"maxDomains": "-1"}).status_code == 200
    r = client.post("/api/domain/five.test")
    assert r.status_code == 403 and r.json["_msg"] == "NOT_AUTHORIZED"
    assert domain(factory, "five.test") is None


def test_admin_without_limits_is_unlimited_but_may_not_create_domains(reseller, factory):
    client = reseller()
    for i in range(3):
        assert client.post(f"/api/user/u{i}@two.test", {"password": USER_PW, "quota": "0"}).status_code == 201
    assert client.post("/api/domain/three.test").status_code == 403


def test_alias_and_list_limits_count_across_managed_domains(directory, settings, factory, two_domains):
    """check_aliases / check_lists, on entries written directly (the alias and list APIs call them)."""
    from iredldap.directory.users import UserStore
    limits = AdminLimits(factory.domains, UserStore(directory, factory.tree, settings))
    factory.domain("three.test")
    for name in ("one.test", "two.test"):
        directory.modify(factory.tree.domain(name), {"domainAdmin": [("MODIFY_ADD", ["res@admins.test"])]})
    for mail in ("a1@one.test", "a2@two.test", "a3@three.test"):
        directory.add(factory.tree.alias(mail), {"objectClass": ["mailAlias"], "mail": [mail],
                                                 "accountStatus": ["active"]})
    for mail in ("l1@one.test", "l2@two.test"):
        directory.add(factory.tree.maillist(mail), {"objectClass": ["mailList"], "mail": [mail],
                                                    "accountStatus": ["active"]})

    # The limits read the domains' counters, which the stores keep: here set to what was written.
    from iredldap.directory.journal import Applier
    for name in ("one.test", "two.test", "three.test"):
        Applier(directory).recount(factory.tree.domain(name), ("domainCurrentAliasNumber", "domainCurrentListNumber"))

    def who(*settings_, is_global=False):
        return Principal(mail="res@admins.test", dn="", is_global=is_global, is_mail_user=False,
                         settings=dict(s.split(":", 1) for s in settings_))

    limited = who("create_max_aliases:3", "create_max_lists:2")
    limits.check_aliases(limited)            # 2 of 3 (three.test is not its domain)
    with pytest.raises(LimitExceeded) as exc:
        limits.check_aliases(limited, adding=2)
    assert exc.value.details["param"] == "maxAliases"
    with pytest.raises(LimitExceeded) as exc:
        limits.check_lists(limited)
    assert exc.value.details["param"] == "maxLists"
    limits.check_lists(who("create_max_lists:2", is_global=True), adding=10)
    limits.check_lists(who())
    with pytest.raises(LimitExceeded):
        limits.check_aliases(who("create_max_aliases:-1"))
    usage = limits.usage(limited)
    assert (usage.domains, usage.aliases, usage.lists, usage.users) == (2, 2, 2, 0)
