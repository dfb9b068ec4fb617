"""A normal admin against accounts above it and against other customers
(issue #10: no way up, no way across).

Every refusal is checked by reading the whole directory (and the token table)
before and after: a refused request changes nothing.  Runs on MOCK_SYNC and
on the real slapd.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from iredldap.model import passwords
from iredldap.db import tables as t
from iredldap.directory.connection import SUBTREE

from .conftest import SavedState
from .support import ApiClient
from .test_tokens import BearerClient

PW = "Us3r#secret"
TENANT = ("tenant@admins.test", "T3nant#secret")
RESELLER = ("reseller@admins.test", "R3seller#secret")


def snapshot(factory) -> dict:
    return {e.dn.lower(): {k.lower(): sorted(v) for k, v in e.attrs.items()
                           if k.lower() not in ("modifytimestamp", "entrycsn")}
            for e in factory.search(factory.tree.suffix, "(objectClass=*)", scope=SUBTREE)}


def password_of(factory, mail: str) -> list[str]:
    return factory.entry(factory.tree.user(mail)).get("userPassword")


# The world below, saved once per backend in each test process (see SavedState).
# Kept with the entries there were before it was built: a test whose other
# fixtures made more entries first builds its own.
_SAVED_WORLDS: dict[tuple[str, frozenset[str]], tuple[SavedState, dict[str, str]]] = {}


def _dns(factory) -> frozenset[str]:
    return frozenset(e.dn.lower() for e in factory.search(factory.tree.suffix, "(objectClass=*)", scope=SUBTREE,
                                                          attrs=("1.1",)))


@pytest.fixture
def world(app, settings, factory, directory, api, backend):
    """own.test with a global admin, a co-admin of another domain, a peer
    admin of own.test only and a plain user; a tenant admin of own.test.
    Built once per backend and test process, laid down again for each test
    (the entries, the sessions and the rest of the SQLite files)."""
    tenant = ApiClient(app, settings)
    key = (backend, _dns(factory))
    saved = _SAVED_WORLDS.get(key)
    if saved is not None:
        state, cookies = saved
        state.restore(directory, settings, over=True)
        api.cookie, tenant.cookie = cookies["global"], cookies["tenant"]
        return {"tenant": tenant, "global": api}
    _build_world(factory, directory)
    tenant.login(*TENANT)
    _SAVED_WORLDS[key] = SavedState(directory, settings), {"global": api.cookie, "tenant": tenant.cookie}
    return {"tenant": tenant, "global": api}


def _build_world(factory, directory) -> None:
    factory.domain("own.test")
    factory.domain("other.test")
    for mail in ("boss@own.test", "coadmin@own.test", "peer@own.test", "plain@own.test", "stale@own.test",
                 "someone@other.test"):
        factory.user(mail, PW)
    # boss: a mail user that is a global admin.
    directory.modify(factory.tree.user("boss@own.test"), {"domainGlobalAdmin": [("MODIFY_ADD", ["yes"])],
                                                          "enabledService": [("MODIFY_ADD", ["domainadmin"])]})
    # coadmin: admin of own.test and other.test; peer: of own.test only.
    for mail, domains in (("coadmin@own.test", ("own.test", "other.test")), ("peer@own.test", ("own.test",))):
        directory.modify(factory.tree.user(mail), {"enabledService": [("MODIFY_ADD", ["domainadmin"])]})
        for domain in domains:
            directory.modify(factory.tree.domain(domain), {"domainAdmin": [("MODIFY_ADD", [mail])]})
    # stale: named in other.test's domainAdmin, its domainadmin service off.
    directory.modify(factory.tree.domain("other.test"), {"domainAdmin": [("MODIFY_ADD", ["stale@own.test"])]})
    factory.normal_admin(*TENANT, domains=["own.test"])


# The world with the two tokens below, saved as the world is (same keys).
_SAVED_TOKENS: dict[tuple[str, frozenset[str]], tuple[SavedState, dict[str, str]]] = {}


@pytest.fixture
def tenant_token(world, api, app, settings, global_admin, factory, directory, backend):
    """A token of the tenant limited to its domain, and a global admin's token limited to own.test."""
    def make(admin: str) -> str:
        r = api.post("/api/tokens", {"admin": admin, "domains": "own.test"})
        assert r.status_code == 201, r.text
        return r.json["_data"]["token"]
    key = (backend, _dns(factory))
    saved = _SAVED_TOKENS.get(key)
    if saved is not None:
        state, tokens = saved
        state.restore(directory, settings, over=True)
    else:
        tokens = {"tenant token": make(TENANT[0]), "global admin's limited token": make("root@admins.test")}
        _SAVED_TOKENS[key] = SavedState(directory, settings), tokens
    return {how: BearerClient(app, settings, token) for how, token in tokens.items()}


ABOVE = ("boss@own.test", "coadmin@own.test")
ATTACKS = [
    ("PUT", "/api/user/{mail}", {"password": "N3w#password"}),
    ("PUT", "/api/user/{mail}", {"password_hash": "{PLAIN}N3w#password"}),
    ("PUT", "/api/user/{mail}", {"accountStatus": "disabled"}),
    ("PUT", "/api/user/{mail}", {"forwarding": "thief@elsewhere.test"}),
    ("PUT", "/api/user/{mail}", {"removeService": "domainadmin"}),
    ("POST", "/api/user/{mail}/change_email/taken-over@own.test", {}),
    ("DELETE", "/api/user/{mail}", None),
    ("DELETE", "/api/user/{mail}/keep_mailbox_days/1", None),
]


@pytest.mark.parametrize("target", ABOVE)
@pytest.mark.parametrize("method, path, params", ATTACKS, ids=[f"{m} {p} {sorted(b or {})}" for m, p, b in ATTACKS])
def test_a_normal_admin_cannot_touch_accounts_above_it(world, tenant_token, factory, app, settings, target, method,
                                                       path, params):
    callers = {"session": world["tenant"], **tenant_token}
    before = snapshot(factory)      # each refusal must leave it so (the next one starts from it)
    for how, caller in callers.items():
        r = caller.request(method, path.format(mail=target), params)
        assert r.status_code == 403, (how, r.text)
        assert r.json["_msg"] == "NOT_AUTHORIZED" and target in r.json["reason"], (how, r.json)
        assert snapshot(factory) == before, how
    # The account still logs in with its own password, not with the attacker's.
    client = ApiClient(app, settings)
    assert client.post("/api/login", {"username": target, "password": "N3w#password"}).status_code == 401
    client.login(target, PW)


def test_a_normal_admin_still_manages_its_equals_and_plain_users(world, factory):
    tenant = world["tenant"]
    for mail in ("peer@own.test", "plain@own.test"):
        r = tenant.put(f"/api/user/{mail}", {"password": "N3w#password", "name": "Renamed"})
        assert r.status_code == 200, r.text
        assert passwords.verify_password("N3w#password", password_of(factory, mail)[0])


def test_a_stale_domain_admin_value_counts_as_a_right(world, factory):
    """stale@own.test is named in other.test's domainAdmin: switching its
    domainadmin service on would make it other.test's admin."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/user/stale@own.test", {"addService": "domainadmin"})
    assert r.status_code == 403 and "stale@own.test" in r.json["reason"], r.text
    assert snapshot(factory) == before


def test_a_normal_admin_cannot_promote_an_account_with_rights_elsewhere(world, factory):
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": "stale@own.test"})
    assert r.status_code == 403 and "stale@own.test" in r.json["reason"], r.text
    assert snapshot(factory) == before
    assert world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": "plain@own.test"}).status_code == 200
    assert factory.entry(factory.tree.user("plain@own.test")).has_value("enabledService", "domainadmin")


def test_a_normal_admin_cannot_rename_an_admin_into_rights_elsewhere(world, factory):
    """other.test names ghost@own.test as its admin (no such account): renaming
    a co-admin of own.test to that address would make it other.test's admin."""
    factory.dir.modify(factory.tree.domain("other.test"), {"domainAdmin": [("MODIFY_ADD", ["ghost@own.test"])]})
    before = snapshot(factory)
    r = world["tenant"].post("/api/user/peer@own.test/change_email/ghost@own.test")
    assert r.status_code == 403 and "ghost@own.test" in r.json["reason"], r.text
    assert snapshot(factory) == before
    assert world["tenant"].post("/api/user/peer@own.test/change_email/peer2@own.test").status_code == 200


def test_bulk_update_skips_accounts_above_and_names_them(world, factory, iredadmin):
    r = world["tenant"].put("/api/users/own.test", {"password": "Bulk#passw0rd"})
    assert r.status_code == 200, r.text
    assert r.json["_data"] == {"updated": 2, "skipped": ["boss@own.test", "coadmin@own.test", "stale@own.test"]}
    for mail in ("boss@own.test", "coadmin@own.test", "stale@own.test"):
        assert passwords.verify_password(PW, password_of(factory, mail)[0]), mail
    for mail in ("peer@own.test", "plain@own.test"):
        assert passwords.verify_password("Bulk#passw0rd", password_of(factory, mail)[0]), mail
    # The audit row says what was skipped.
    with iredadmin.engine.connect() as conn:
        msgs = [row.msg for row in conn.execute(select(t.log).where(t.log.c.event == "update"))]
    assert any("skipped boss@own.test, coadmin@own.test, stale@own.test" in m for m in msgs), msgs
    # A global admin's bulk change reaches everybody.
    r = world["global"].put("/api/users/own.test", {"accountStatus": "disabled"})
    assert r.json["_data"] == {"updated": 5, "skipped": []}


def test_bulk_disable_by_a_limited_token_skips_the_global_admin(world, tenant_token, factory):
    r = tenant_token["global admin's limited token"].put("/api/users/own.test", {"accountStatus": "disabled"})
    assert r.status_code == 200, r.text
    assert "boss@own.test" in r.json["_data"]["skipped"]
    assert factory.entry(factory.tree.user("boss@own.test")).get("accountStatus") == ["active"]
    assert factory.entry(factory.tree.user("plain@own.test")).get("accountStatus") == ["disabled"]


def test_a_reseller_cannot_delete_a_domain_holding_a_global_admin(world, app, settings, factory):
    factory.normal_admin(*RESELLER, domains=["own.test"], settings=["create_new_domains:yes"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    before = snapshot(factory)
    for path in ("/api/domain/own.test", "/api/domain/own.test/keep_mailbox_days/1"):
        r = reseller.delete(path)
        assert r.status_code == 403 and "boss@own.test" in r.json["reason"], r.text
        assert snapshot(factory) == before
    # Without accounts above it, the reseller's delete goes through.
    factory.domain("mine.test")
    factory.user("someone@mine.test", PW)
    factory.dir.modify(factory.tree.domain("mine.test"), {"domainAdmin": [("MODIFY_ADD", [RESELLER[0]])]})
    assert reseller.delete("/api/domain/mine.test").status_code == 200
    assert factory.entry(factory.tree.domain("mine.test")) is None


# -- nothing learned about other customers ---------------------------------------------

def test_list_member_answers_do_not_tell_whether_an_address_exists_elsewhere(world, factory):
    tenant = world["tenant"]
    assert tenant.post("/api/maillist/team@own.test").status_code == 201
    before = snapshot(factory)
    answers = []
    for member in ("someone@other.test", "nobody@other.test"):
        for params in ({"addMember": member}, {"members": member}):
            r = tenant.put("/api/maillist/team@own.test", params)
            answers.append((r.status_code, r.json["_msg"], r.json["reason"].replace(member, "<addr>")))
        r = tenant.post(f"/api/maillist/new-{member.partition('@')[0]}@own.test", {"members": member})
        answers.append((r.status_code, r.json["_msg"], r.json["reason"].replace(member, "<addr>")))
    assert answers[:3] == answers[3:], answers
    assert all(a[0] == 403 for a in answers), answers
    assert snapshot(factory) == before


def test_alias_domain_conflicts_do_not_name_the_owner(world, api, factory):
    assert api.put("/api/domain/other.test", {"addAliasDomain": "twin.test"}).status_code == 200
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", {"addAliasDomain": "twin.test"})
    assert r.status_code == 409, r.text
    assert "other.test" not in r.text
    assert snapshot(factory) == before


def test_a_user_view_shows_only_the_callers_domains(world, api, factory):
    # coadmin@own.test: member of a list and target of an alias in other.test, admin of both domains.
    assert api.post("/api/maillist/theirs@other.test", {"members": "coadmin@own.test"}).status_code == 201
    assert api.post("/api/maillist/ours@own.test", {"members": "coadmin@own.test"}).status_code == 201
    assert api.post("/api/alias/fwd@other.test", {"members": "coadmin@own.test"}).status_code == 201
    assert api.post("/api/alias/fwd@own.test", {"members": "coadmin@own.test"}).status_code == 201
    seen = world["tenant"].get("/api/user/coadmin@own.test").json["_data"]
    assert seen["managed_domains"] == ["own.test"]
    assert seen["mailing_lists"] == ["ours@own.test"] and seen["memberOfGroup"] == ["ours@own.test"]
    assert seen["mailing_aliases"] == ["fwd@own.test"]
    assert "other.test" not in str(seen)
    full = api.get("/api/user/coadmin@own.test").json["_data"]
    assert full["managed_domains"] == ["other.test", "own.test"]
    assert full["mailing_lists"] == ["ours@own.test", "theirs@other.test"]
    assert full["mailing_aliases"] == ["fwd@other.test", "fwd@own.test"]


# -- tokens fail closed ------------------------------------------------------------------

@pytest.mark.parametrize("domains", ["", ",", " , "])
def test_a_token_with_an_empty_domain_list_is_refused(world, api, iredadmin, domains):
    with iredadmin.engine.connect() as conn:
        before = conn.execute(select(t.api_tokens)).all()
    r = api.post("/api/tokens", {"admin": TENANT[0], "domains": domains})
    assert r.status_code == 400 and r.json["param"] == "domains", r.text
    with iredadmin.engine.connect() as conn:
        assert conn.execute(select(t.api_tokens)).all() == before


# -- routing a normal admin may set -----------------------------------------------------

BYPASSES = ["[127.0.0.1]:10025", "smtp:[127.0.0.1]:10025", "smtp-amavis:[127.0.0.1]:10025", "127.0.0.1:25",
            "[127.1.2.3]", "lmtp:unix:private/dovecot-lmtp", "dovecot", "[::1]:25", "[ipv6:::ffff:127.0.0.1]:25",
            "[169.254.169.254]:25", "[0.0.0.0]:25", "localhost:25", "relay:mx.localhost", "[fe80::1]:25",
            "pipe:x", "smtp:[192.0.2.1]:70000",
            # A port of other digits than ASCII's (int() reads them, Postfix does not)
            "smtp:[192.0.2.1]:\uff12\uff15", "[192.0.2.1]:\u0662\u0665"]


@pytest.mark.parametrize("value", BYPASSES)
def test_a_normal_admin_cannot_route_mail_to_this_machine(world, factory, value):
    before = snapshot(factory)
    for path in ("/api/user/plain@own.test", "/api/domain/own.test"):
        r = world["tenant"].put(path, {"outboundRelay": value})
        assert r.status_code == 400 and r.json["param"] == "outboundRelay", (path, r.text)
    assert snapshot(factory) == before


@pytest.mark.parametrize("value", ["smtp:[192.0.2.1]:25", "[mail.example.net]:587", "relay:[198.51.100.7]",
                                   "smtp.example.net", "[192.168.1.2]:25"])
def test_a_normal_admin_may_route_to_real_relays(world, factory, value):
    assert world["tenant"].put("/api/user/plain@own.test", {"outboundRelay": value}).status_code == 200
    assert factory.entry(factory.tree.user("plain@own.test")).get("senderRelayHost") == [value]


def test_a_global_admin_may_route_locally(world, factory):
    assert world["global"].put("/api/user/plain@own.test", {"outboundRelay": "[127.0.0.1]:10025"}).status_code == 200
    assert factory.entry(factory.tree.user("plain@own.test")).get("senderRelayHost") == ["[127.0.0.1]:10025"]


@pytest.mark.parametrize("value", ["{SSHA512}abc", "{CRYPT}$6$salt", "{CRYPT}garbage", "{SHA512}AAAA",
                                   "{PLAIN-MD5}not-hex", "{BCRYPT}$2b$12$short"])
def test_password_hash_must_have_the_form_of_its_scheme(world, factory, value):
    before = snapshot(factory)
    for caller in (world["tenant"], world["global"]):
        r = caller.put("/api/user/plain@own.test", {"password_hash": value})
        assert r.status_code == 400 and r.json["_msg"] == "INVALID_PASSWORD_SCHEME", r.text
        r = caller.post("/api/user/new@own.test", {"password_hash": value})
        assert r.status_code == 400, r.text
    assert snapshot(factory) == before
