"""What a normal (per-domain) admin may and may not do with domains."""

from __future__ import annotations

import pytest

from .support import ApiClient


@pytest.fixture
def two_domains(factory):
    factory.domain("mine.test", name="Mine")
    factory.domain("theirs.test", name="Theirs")


@pytest.fixture
def normal(app, settings, factory, two_domains) -> ApiClient:
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["mine.test"])
    client = ApiClient(app, settings)
    client.login("boss@admins.test", "B0ss#secret")
    return client


def entry(factory, domain):
    return factory.entry(factory.tree.domain(domain))


def test_normal_admin_reads_and_lists_only_its_domains(normal):
    assert normal.get("/api/domain/mine.test").status_code == 200
    assert normal.get("/api/domains", {"name_only": "yes"}).json["_data"] == ["mine.test"]


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/domain/theirs.test"),
    ("GET", "/api/domain/nowhere.test"),
    ("PUT", "/api/domain/theirs.test"),
    ("PUT", "/api/domain/nowhere.test"),
    ("DELETE", "/api/domain/theirs.test"),
    ("DELETE", "/api/domain/theirs.test/keep_mailbox_days/7"),
    ("GET", "/api/domain/admins/theirs.test"),
    ("PUT", "/api/domain/admins/theirs.test"),
    ("GET", "/api/domain/services/theirs.test"),
    ("PUT", "/api/domain/services/mine.test"),
])
def test_normal_admin_gets_403_elsewhere_whether_or_not_it_exists(normal, factory, method, path):
    before = entry(factory, "theirs.test").attrs
    params = {"name": "Hijacked"} if method == "PUT" and "admins" not in path and "services" not in path else None
    if "admins" in path and method == "PUT":
        params = {"addAdmin": "boss@admins.test"}
    if "services" in path and method == "PUT":
        params = {"addService": "self-service"}
    r = normal.request(method, path, params)
    assert r.status_code == 403, r.text
    assert r.json["_msg"] == "NOT_AUTHORIZED"
    assert entry(factory, "theirs.test").attrs == before
    assert entry(factory, "mine.test").get("enabledService") == ["mail"]


def test_normal_admin_may_not_create_domains_without_permission(normal, factory):
    r = normal.post("/api/domain/new.test")
    assert r.status_code == 403
    assert entry(factory, "new.test") is None


def test_normal_admin_may_not_raise_its_limits_or_flip_switches(normal, factory):
    for params in ({"numberOfUsers": "1000"}, {"quota": "99999"}, {"maxUserQuota": "1"},
                   {"transport": "relay:[evil.test]"}, {"is_backupmx": "yes"}, {"addService": "self-service"},
                   {"enableDomainProfile": "bcc"}):
        r = normal.put("/api/domain/mine.test", params)
        assert r.status_code == 403, (params, r.text)
        assert r.json.get("param") == next(iter(params))
    assert entry(factory, "mine.test").get("accountSetting") == []


def test_normal_admin_may_change_ordinary_settings(normal, factory):
    r = normal.put("/api/domain/mine.test", {"name": "Renamed", "defaultQuota": "50", "catchall": "x@b.test"})
    assert r.status_code == 200, r.text
    e = entry(factory, "mine.test")
    assert e.get("cn") == ["Renamed"] and e.get("accountSetting") == ["defaultQuota:50"]


def test_locked_profile_is_refused_to_normal_admin(api, normal, factory):
    assert api.put("/api/domain/mine.test", {"disableDomainProfile": "bcc"}).status_code == 200
    r = normal.put("/api/domain/mine.test", {"senderBcc": "spy@theirs.test"})
    assert r.status_code == 403
    assert entry(factory, "mine.test").get("domainSenderBccAddress") == []


def test_admin_allowed_to_create_domains_manages_them_up_to_its_limit(app, settings, factory, two_domains):
    factory.normal_admin("reseller@admins.test", "Res3ll#er", domains=["mine.test"],
                         settings=["create_new_domains:yes", "create_max_domains:2"])
    client = ApiClient(app, settings)
    client.login("reseller@admins.test", "Res3ll#er")
    r = client.post("/api/domain/second.test")
    assert r.status_code == 201, r.text
    assert entry(factory, "second.test").get("domainAdmin") == ["reseller@admins.test"]
    r = client.post("/api/domain/third.test")
    assert r.status_code == 403 and r.json["_msg"] == "EXCEEDED_LIMIT"
    assert entry(factory, "third.test") is None
    assert client.delete("/api/domain/second.test").status_code == 200
    assert entry(factory, "second.test") is None


def test_normal_admin_promotes_only_users_of_its_domains(normal, factory):
    factory.user("helper@mine.test")
    factory.user("outsider@theirs.test")
    factory.normal_admin("other@admins.test", "0ther#pw")
    assert normal.put("/api/domain/admins/mine.test", {"addAdmin": "outsider@theirs.test"}).status_code == 403
    assert normal.put("/api/domain/admins/mine.test", {"addAdmin": "other@admins.test"}).status_code == 403
    assert sorted(entry(factory, "mine.test").get("domainAdmin")) == ["boss@admins.test"]
    assert normal.put("/api/domain/admins/mine.test", {"addAdmin": "helper@mine.test"}).status_code == 200
    assert sorted(entry(factory, "mine.test").get("domainAdmin")) == ["boss@admins.test", "helper@mine.test"]


def test_disabled_admin_is_logged_out(normal, factory, directory):
    directory.modify(factory.tree.admin("boss@admins.test"), {"accountStatus": [("MODIFY_REPLACE", ["disabled"])]})
    r = normal.get("/api/domain/mine.test")
    assert r.status_code == 401 and r.json["_msg"] == "LOGIN_REQUIRED"
