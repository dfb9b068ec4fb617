"""Probes of the reshaped web layer (issue 13) from outside: a hostile tenant,
a domain-limited token and a careless client against the request context
built once (one lookup, entries reused), the token's domain limit without the
old proxy, and URL parts parsed once from their declaration.

Every refusal is checked on what the directory and the policy databases hold
afterwards, not only on the status.  Runs on MOCK_SYNC and on the real slapd.
"""

from __future__ import annotations

import pytest

from iredldap.model import passwords

from .support import ApiClient
from .test_attack_findings import policy_rows
from .test_tenant_boundaries import PW, TENANT, snapshot, tenant_token, world  # noqa: F401 (fixtures)
from .support import BearerClient


def unchanged(factory, settings):
    """What a refused request must leave as it was: the directory and the policy tables."""
    return snapshot(factory), policy_rows(settings)


# -- a token's domain limit, now applied from the request's Access -------------------------

def test_a_limited_token_lists_only_its_domains(world, tenant_token, factory):
    factory.domain("third.test")
    factory.dir.modify(factory.tree.domain("other.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    for how, caller in tenant_token.items():
        r = caller.get("/api/domains", {"name_only": "yes"})
        assert r.status_code == 200, (how, r.text)
        assert r.json["_data"] == ["own.test"], how
        full = caller.get("/api/domains").json["_data"]
        assert [e["domainName"] for e in full] == [["own.test"]], how


LIMITED_OUTSIDE = [
    ("GET", "/api/users/other.test", None),
    ("PUT", "/api/users/other.test", {"accountStatus": "disabled"}),
    ("GET", "/api/users/OTHER.TEST.", None),
    ("GET", "/api/user/Someone@Other.Test", None),
    ("PUT", "/api/user/someone@other.test.", {"name": "x"}),
    ("GET", "/api/ldif/domain/other.test", None),
    ("GET", "/api/ldif/user/someone@other.test", None),
    ("GET", "/api/aliases/other.test", None),
    ("POST", "/api/alias/new@other.test", {}),
    ("POST", "/api/user/plain@own.test/change_email/plain@other.test", {}),
    ("POST", "/api/throttle/other.test/inbound", {"period": "60", "max_msgs": "1"}),
    ("POST", "/api/throttle/someone@other.test/outbound", {"period": "60", "max_msgs": "1"}),
    ("POST", "/api/throttle/global/outbound", {"period": "60", "max_msgs": "1"}),
    ("POST", "/api/throttle/GLOBAL/outbound", {"period": "60", "max_msgs": "1"}),
    ("POST", "/api/greylisting/@other.test", {"status": "disable"}),
    ("POST", "/api/greylisting/other.test/whitelists", {"addWhitelistSenders": "@spam.test"}),
    ("POST", "/api/wblist/inbound/whitelist/someone@other.test", {"addresses": "@spam.test"}),
    ("PUT", "/api/spampolicy/domain/other.test", {"bypass_spam_checks": "yes"}),
    ("PUT", "/api/spampolicy/global", {"bypass_spam_checks": "yes"}),
    ("GET", "/api/admins", None),
    ("POST", "/api/domain/fresh.test", {}),
    ("PUT", "/api/domain/admins/own.test", {"addAdmin": "someone@other.test"}),
]


@pytest.mark.parametrize("method, path, params", LIMITED_OUTSIDE, ids=[f"{m} {p}" for m, p, _ in LIMITED_OUTSIDE])
def test_a_limited_token_reaches_nothing_outside_its_domains(world, tenant_token, factory, settings, method, path,
                                                             params):
    factory.dir.modify(factory.tree.domain("other.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    before = unchanged(factory, settings)   # each refusal must leave it so (the next one starts from it)
    for how, caller in tenant_token.items():
        r = caller.request(method, path, params)
        assert r.status_code in (400, 403), (how, r.status_code, r.text)
        assert unchanged(factory, settings) == before, how


def test_a_limited_tokens_admin_limits_count_every_domain_of_the_admin(world, app, settings, api, factory):
    """maxUsers counts over all the admin's domains, also when its token names only one."""
    factory.domain("second.test")
    factory.normal_admin("capped@admins.test", "C4pped#secret", domains=["own.test", "second.test"],
                         settings=["create_max_users:7"])
    for mail in ("one@second.test", "two@second.test"):  # own.test holds 5 users: 7 in all
        factory.user(mail, PW)
    r = api.post("/api/tokens", {"admin": "capped@admins.test", "domains": "own.test"})
    capped = BearerClient(app, settings, r.json["_data"]["token"])
    before = snapshot(factory)
    r = capped.post("/api/user/more@own.test", {"password": "M0re#secret"})
    assert r.status_code >= 400 and r.json["param"] == "maxUsers", r.text
    assert snapshot(factory) == before


# -- the entries of the lookup belong to the URL's account ------------------------------------

@pytest.mark.parametrize("kind", ["alias", "maillist"])
def test_a_user_route_at_a_groups_address_is_404_and_leaves_it(world, api, factory, kind):
    assert api.post(f"/api/{kind}/team@own.test", {"members": "plain@own.test"}).status_code == 201
    before = snapshot(factory)
    for caller in (world["tenant"], api):
        for method, params in (("GET", None), ("PUT", {"name": "Hijack", "password": "N3w#password"}),
                               ("DELETE", None)):
            r = caller.request(method, "/api/user/team@own.test", params)
            assert r.status_code == 404, (method, r.text)
    assert snapshot(factory) == before


def test_a_user_at_the_address_of_a_standalone_global_admin_is_out_of_reach(world, api, factory, app, settings):
    """twin@own.test is a plain mail user and, apart from it, a standalone
    global admin of the same address (the one that logs in under it)."""
    factory.user("twin@own.test", PW)
    factory.global_admin("twin@own.test", "Tw1n#admin-pw")
    before = snapshot(factory)
    tenant = world["tenant"]
    for method, path, params in (("PUT", "/api/user/twin@own.test", {"password": "N3w#password"}),
                                 ("PUT", "/api/user/twin@own.test", {"accountStatus": "disabled"}),
                                 ("POST", "/api/user/twin@own.test/change_email/twin2@own.test", {}),
                                 ("DELETE", "/api/user/twin@own.test", None),
                                 ("POST", "/api/throttle/twin@own.test/outbound", {"period": "60", "max_msgs": "1"})):
        r = tenant.request(method, path, params)
        assert r.status_code == 403 and "twin@own.test" in r.json["reason"], (method, path, r.text)
    assert snapshot(factory) == before
    # The standalone admin logs in as a global admin, and acts as one.
    twin = ApiClient(app, settings)
    twin.login("twin@own.test", "Tw1n#admin-pw")
    assert twin.get("/api/admins").status_code == 200


def test_the_url_domain_entry_is_the_domain_not_its_catchall(world, api, factory):
    assert api.put("/api/domain/own.test", {"catchall": "plain@own.test"}).status_code == 200
    r = world["tenant"].get("/api/domain/own.test")
    assert r.status_code == 200 and r.json["_data"]["domainName"] == ["own.test"], r.text
    assert world["tenant"].put("/api/domain/own.test", {"name": "Own"}).status_code == 200
    assert factory.entry(factory.tree.domain("own.test")).get("cn") == ["Own"]
    assert factory.entry(factory.tree.catchall("own.test")).get("cn") == ["catch-all"]


def test_a_user_put_by_an_admin_on_itself_changes_only_itself(world, app, settings, factory):
    peer = ApiClient(app, settings)
    peer.login("peer@own.test", PW)
    r = peer.put("/api/user/peer@own.test", {"name": "Peer Renamed"})
    assert r.status_code == 200, r.text
    assert factory.entry(factory.tree.user("peer@own.test")).get("cn") == ["Peer Renamed"]
    # Disabling itself is refused, and changes nothing.
    before = snapshot(factory)
    assert peer.put("/api/user/peer@own.test", {"accountStatus": "disabled"}).status_code == 403
    assert snapshot(factory) == before


# -- URL parts parsed once ------------------------------------------------------------------

@pytest.mark.parametrize("path, status", [
    ("/api/user/plain@own.test%00", 400),
    ("/api/user/plain%00@own.test", 400),
    ("/api/user/" + "a" * 3000 + "@own.test", 400),
    ("/api/user/plain@" + "b" * 300 + ".test", 400),
    ("/api/user/@own.test", 400),
    ("/api/user/plain@own.test@own.test", 400),
    ("/api/users/own..test", 400),
    ("/api/throttle/@own.test/inbound", 400),
    ("/api/throttle/own.test/sideways", 400),
    ("/api/wblist/inbound/greylist/own.test", 400),
])
def test_malformed_url_parts_are_400_and_write_nothing(world, factory, settings, path, status):
    before = unchanged(factory, settings)   # each refusal must leave it so (the next one starts from it)
    for caller in (world["tenant"], world["global"]):
        r = caller.put(path, {"name": "x"}) if "/user/" in path else caller.request("POST", path, {"period": "60"})
        assert r.status_code in (status, 405), (path, r.status_code, r.text)
        assert unchanged(factory, settings) == before


@pytest.mark.parametrize("path", ["/api/user/PLAIN@OWN.TEST", "/api/user/plain@Own.Test.",
                                  "/api/user/plain%40own.test"])
def test_case_and_trailing_dot_name_the_same_user(world, factory, path):
    r = world["tenant"].put(path, {"name": "Same"})
    assert r.status_code == 200, r.text
    assert factory.entry(factory.tree.user("plain@own.test")).get("cn") == ["Same"]


@pytest.mark.parametrize("target", ["boss@own.test", "BOSS@own.test", "boss@OWN.TEST."])
@pytest.mark.parametrize("days", ["1", "0", "-1", "abc", "99999999"])
def test_keep_mailbox_days_of_an_account_above_is_403_whatever_the_days(world, factory, target, days):
    before = snapshot(factory)
    r = world["tenant"].delete(f"/api/user/{target}/keep_mailbox_days/{days}")
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("days", ["-1", "36501", "1.5", "abc", "", " ", "1e3"])
def test_keep_mailbox_days_out_of_range_is_400(world, factory, days):
    before = snapshot(factory)
    r = world["tenant"].delete(f"/api/user/plain@own.test/keep_mailbox_days/{days}")
    assert r.status_code in (400, 404, 405), r.text
    assert snapshot(factory) == before


def test_an_idn_domain_is_one_domain_whatever_its_spelling(world, api, factory):
    assert api.post("/api/domain/bücher.test").status_code == 201
    api.put("/api/domain/admins/xn--bcher-kva.test", {"addAdmin": "peer@own.test"})
    factory.dir.modify(factory.tree.domain("xn--bcher-kva.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    tenant = world["tenant"]
    assert tenant.post("/api/user/anna@bücher.test", {"password": "Ann4#secret"}).status_code == 201
    assert tenant.get("/api/user/anna@xn--bcher-kva.test").status_code == 200
    assert factory.entry(factory.tree.user("anna@xn--bcher-kva.test")) is not None


# -- no stale decisions --------------------------------------------------------------------

def test_a_disabled_admin_and_its_token_fail_at_once(world, api, factory, app, settings):
    r = api.post("/api/tokens", {"admin": TENANT[0]})
    bearer = BearerClient(app, settings, r.json["_data"]["token"])
    assert bearer.get("/api/users/own.test").status_code == 200
    assert world["tenant"].get("/api/users/own.test").status_code == 200
    assert api.put(f"/api/admin/{TENANT[0]}", {"accountStatus": "disabled"}).status_code == 200
    before = snapshot(factory)
    for caller in (world["tenant"], bearer):
        assert caller.get("/api/users/own.test").status_code == 401
        assert caller.put("/api/user/plain@own.test", {"name": "After"}).status_code == 401
    assert snapshot(factory) == before


def test_a_domain_taken_away_is_refused_at_once(world, api, factory):
    tenant = world["tenant"]
    assert tenant.get("/api/users/own.test").status_code == 200
    assert api.put("/api/domain/admins/own.test", {"removeAdmin": TENANT[0]}).status_code == 200
    before = snapshot(factory)
    assert tenant.put("/api/user/plain@own.test", {"name": "After"}).status_code == 403
    assert tenant.get("/api/domains", {"name_only": "yes"}).json["_data"] == []
    assert snapshot(factory) == before


def test_a_demoted_global_admin_is_a_normal_admin_at_once(world, api, factory, app, settings):
    boss = ApiClient(app, settings)
    boss.login("boss@own.test", PW)
    assert boss.get("/api/admins").status_code == 200
    assert api.put("/api/user/boss@own.test", {"isGlobalAdmin": "no"}).status_code == 200
    before = snapshot(factory)
    assert boss.get("/api/admins").status_code in (401, 403)
    assert boss.put("/api/user/someone@other.test", {"name": "After"}).status_code in (401, 403)
    assert snapshot(factory) == before


def test_a_revoked_limited_token_fails_at_once(world, tenant_token, api, factory):
    caller = tenant_token["tenant token"]
    assert caller.get("/api/users/own.test").status_code == 200
    [token] = [t for t in api.get("/api/tokens").json["_data"] if t["admin"] == TENANT[0]]
    assert api.delete(f"/api/token/{token['id']}").status_code == 200
    before = snapshot(factory)
    assert caller.put("/api/user/plain@own.test", {"name": "After"}).status_code == 401
    assert snapshot(factory) == before
    assert passwords.verify_password(PW, factory.entry(factory.tree.user("plain@own.test")).get("userPassword")[0])


@pytest.mark.parametrize("how", ["deleted", "renamed", "admin role removed"])
def test_the_session_of_a_removed_admin_does_not_work_for_the_next_owner_of_the_address(
        world, api, app, settings, factory, how):
    """ann@own.test, an admin of own.test, is logged in.  Her account goes
    (deleted, renamed, or her admin role removed) before her browser sends
    another request; the tenant then makes a new ann@own.test and promotes it.
    Ann's old cookie must not act as the new account."""
    assert api.post("/api/user/ann@own.test", {"password": "Ann#0ld-passw"}).status_code == 201
    assert api.put("/api/domain/admins/own.test", {"addAdmin": "ann@own.test"}).status_code == 200
    old_ann = ApiClient(app, settings)
    old_ann.login("ann@own.test", "Ann#0ld-passw")
    if how == "deleted":
        assert api.delete("/api/user/ann@own.test").status_code == 200
    elif how == "renamed":
        assert api.post("/api/user/ann@own.test/change_email/ann.left@own.test").status_code == 200
    else:
        assert api.delete("/api/admin/ann@own.test").status_code == 200
        assert api.delete("/api/user/ann@own.test").status_code == 200
    tenant = world["tenant"]
    assert tenant.post("/api/user/ann@own.test", {"password": "Ann#n3w-passw"}).status_code == 201
    assert tenant.put("/api/domain/admins/own.test", {"addAdmin": "ann@own.test"}).status_code == 200
    before = snapshot(factory)
    revived = old_ann.put("/api/user/plain@own.test", {"name": "By old Ann"})
    assert revived.status_code == 401, revived.text
    assert snapshot(factory) == before


def test_the_session_of_an_admin_ends_with_its_domain(world, api, app, settings, factory):
    assert api.post("/api/domain/gone.test").status_code == 201
    assert api.post("/api/user/ann@gone.test", {"password": "Ann#0ld-passw"}).status_code == 201
    assert api.put("/api/domain/admins/gone.test", {"addAdmin": "ann@gone.test"}).status_code == 200
    old_ann = ApiClient(app, settings)
    old_ann.login("ann@gone.test", "Ann#0ld-passw")
    assert api.delete("/api/domain/gone.test").status_code == 200
    assert api.post("/api/domain/gone.test").status_code == 201
    assert api.post("/api/user/ann@gone.test", {"password": "Ann#n3w-passw"}).status_code == 201
    assert api.put("/api/domain/admins/gone.test", {"addAdmin": "ann@gone.test"}).status_code == 200
    before = snapshot(factory)
    assert old_ann.put("/api/domain/gone.test", {"name": "By old Ann"}).status_code == 401
    assert snapshot(factory) == before


# -- every route, odd URL parts: never a 500, a refusal writes nothing ------------------------

ODD_PARTS = ["GLOBAL", "@own.test", "a%00b@own.test", "x" * 400, "٣", "someone@other.test"]


# Some hundred requests: on MOCK_SYNC only (the parsing is the same on slapd); the policy
# tables are checked by the focused tests above.
@pytest.mark.parametrize("backend", ["mock"])
def test_odd_url_parts_on_every_route(backend, world, tenant_token, factory, settings):
    import re

    from iredldap.web.app import RULES

    callers = {"session": world["tenant"], "token": tenant_token["tenant token"]}
    problems = []
    # What a refusal must leave as it found (what the last refusal left).
    before = None
    for template, method in sorted(RULES):
        parts = re.findall(r"{(\w+)}", template)
        if not parts or template.startswith(("/api/docs", "/api/token/")):
            continue
        for value in ODD_PARTS:
            path = template
            for part in parts:
                path = path.replace("{%s}" % part, value)
            for how, caller in callers.items():
                if method != "GET" and before is None:
                    before = snapshot(factory)
                r = caller.request(method, path, {"name": "x"} if method in ("PUT", "POST") else None)
                if r.status_code >= 500:
                    problems.append((how, method, path, r.status_code, r.text[:120]))
                if method == "GET":
                    continue
                if r.status_code < 300:
                    before = None   # accepted: it may have changed things; taken anew before the next
                elif snapshot(factory) != before:
                    problems.append(("changed by a refusal", how, method, path, r.status_code))
                    before = None
    assert not problems, "\n".join(map(str, problems))


def test_a_mail_user_admin_cannot_disable_itself_through_the_bulk_update(world, app, settings, factory):
    """PUT /api/user/<own address> refuses accountStatus; the bulk update of
    its domain must not lock the admin out either: its account is skipped."""
    peer = ApiClient(app, settings)
    peer.login("peer@own.test", PW)
    r = peer.put("/api/users/own.test", {"accountStatus": "disabled"})
    assert r.status_code == 200, r.text
    assert r.json["_data"] == {"updated": 1,
                               "skipped": ["boss@own.test", "coadmin@own.test", "peer@own.test", "stale@own.test"]}
    assert factory.entry(factory.tree.user("peer@own.test")).get("accountStatus") == ["active"]
    assert factory.entry(factory.tree.user("plain@own.test")).get("accountStatus") == ["disabled"]
    assert peer.get("/api/users/own.test").status_code == 200
