"""A hostile tenant on the policy routes' {account} spellings (alias domains,
twins, catch-all forms, subdomains, `global` in odd case), and a careless
client (repeats, odd booleans, repeated keys, trailing slashes, HEAD/OPTIONS,
odd values hunting for a 500).  The tests named test_finding_* got a wrong
answer until the commit that fixed them; the rest held.  Refusals are
checked on the directory snapshot and the policy tables."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from .test_attack_findings import policy_rows
from .test_tenant_boundaries import PW, TENANT, snapshot, world  # noqa: F401 (fixtures)


# What a request makes of its input before it reaches a store (parsing,
# routing, methods) is the same on either directory: those tests run on
# MOCK_SYNC only; the ones that write or read accounts run on both.
MOCK_ONLY = pytest.mark.parametrize("backend", ["mock"])


def both(factory, settings):
    return snapshot(factory), policy_rows(settings)


@pytest.fixture
def twin(world, api, factory):
    """own.test (boss@own.test a global admin) gets the alias domain twin.test."""
    assert api.put("/api/domain/own.test", {"addAliasDomain": "twin.test"}).status_code == 200
    return "twin.test"


POLICY_WRITES = [
    ("POST", "/api/throttle/{a}/inbound", {"max_msgs": "1", "period": "86400"}),
    ("DELETE", "/api/throttle/{a}/outbound", None),
    ("POST", "/api/greylisting/{a}", {"status": "enable"}),
    ("DELETE", "/api/greylisting/{a}", None),
    ("POST", "/api/greylisting/{a}/whitelists", {"addWhitelistSenders": "@example.net"}),
    ("POST", "/api/wblist/inbound/blacklist/{a}", {"addresses": "@."}),
    ("PUT", "/api/wblist/inbound/whitelist/{a}", {"addresses": "@."}),
    ("DELETE", "/api/wblist/outbound/whitelist/{a}", None),
]
POLICY_IDS = [f"{m} {p}" for m, p, _ in POLICY_WRITES]

ODD_ACCOUNTS = ["twin.test", "TWIN.TEST.", "boss@twin.test", "x@twin.test", "plain@twin.test", "@own.test",
                "@twin.test", "@.own.test", "*@own.test", "sub.own.test", "GLOBAL", "Global", "global.",
                "@.", "own.test@", "boss@own.test@own.test", "%40own.test"]


def _in_url(account: str) -> str:
    return account if account.startswith("%") else quote(account, safe="@")


# Each write tries every spelling in one test: a refusal leaves everything as
# it was, so what one leaves is what the next starts from (one world a write,
# not one a spelling).
@pytest.mark.parametrize("method, path, params", POLICY_WRITES, ids=POLICY_IDS)
def test_policy_account_spellings_for_a_tenant(world, factory, settings, twin, method, path, params):
    before = both(factory, settings)
    for account in ODD_ACCOUNTS:
        r = world["tenant"].request(method, path.format(a=_in_url(account)), params)
        assert r.status_code in (400, 403, 404), (account, r.text)
        assert both(factory, settings) == before, account


@pytest.mark.parametrize("account", ["twin.test", "boss@twin.test", "plain@twin.test", "@own.test", "sub.own.test"])
@pytest.mark.parametrize("kind", ["domain", "user"])
def test_spampolicy_account_spellings_for_a_tenant(world, factory, settings, twin, account, kind):
    before = both(factory, settings)
    for method in ("PUT", "DELETE"):
        r = world["tenant"].request(method, f"/api/spampolicy/{kind}/{account}",
                                    {"bypass_spam_checks": "yes"} if method == "PUT" else None)
        assert r.status_code in (400, 403, 404), r.text
        assert both(factory, settings) == before


@pytest.mark.parametrize("method, path, params", POLICY_WRITES, ids=POLICY_IDS)
def test_policy_account_spellings_are_no_500_for_a_global_admin(world, factory, settings, twin, method, path,
                                                                 params):
    for account in ODD_ACCOUNTS:
        r = world["global"].request(method, path.format(a=_in_url(account)), params)
        assert r.status_code < 500, (account, r.text)


@MOCK_ONLY
@pytest.mark.parametrize("spelling", ["GLOBAL", "Global", "global.", " global"])
def test_global_in_odd_case_is_not_the_global_for_a_tenant(world, factory, settings, spelling):
    before = both(factory, settings)
    for method, path, params in POLICY_WRITES + [("PUT", "/api/spampolicy/{a}", {"bypass_spam_checks": "yes"})]:
        r = world["tenant"].request(method, path.format(a=quote(spelling)), params)
        assert r.status_code in (400, 403, 404), (path, r.text)
        assert both(factory, settings) == before, path


# -- body addresses of other tenants: allowed as senders, never an owner --------------------------

def test_a_tenant_wblist_of_other_tenants_senders_writes_only_its_own_account(world, factory, settings):
    """@other.test / someone@other.test as *senders* on plain@own.test's list
    are fine; the row's owner must be plain@own.test, nothing of other.test's."""
    r = world["tenant"].post("/api/wblist/inbound/whitelist/plain@own.test",
                             {"addresses": "someone@other.test,@other.test"})
    assert r.status_code == 200, r.text
    assert sorted(world["global"].get("/api/wblist/inbound/whitelist/plain@own.test").json["_data"]) == \
        ["@other.test", "someone@other.test"]
    for acct in ("someone@other.test", "other.test"):
        assert world["global"].get(f"/api/wblist/inbound/whitelist/{acct}").json["_data"] == [], acct
        assert world["global"].get(f"/api/wblist/outbound/whitelist/{acct}").json["_data"] == [], acct


@pytest.mark.parametrize("extra", [{"account": "someone@other.test"}, {"mail": "someone@other.test"},
                                   {"domain": "other.test"}, {"owner": "someone@other.test"}])
def test_a_body_cannot_name_another_owner(world, factory, settings, extra):
    before = both(factory, settings)
    r = world["tenant"].post("/api/wblist/inbound/blacklist/plain@own.test", {"addresses": "@.", **extra})
    if r.status_code == 200:
        assert world["global"].get("/api/wblist/inbound/blacklist/someone@other.test").json["_data"] == []
        assert world["global"].get("/api/wblist/inbound/blacklist/other.test").json["_data"] == []
    else:
        assert r.status_code == 400, r.text
        assert both(factory, settings) == before


# -- careless clients: repeats ----------------------------------------------------------------

@pytest.mark.parametrize("kind, mail, params", [
    ("user", "twice@own.test", {"password": "Tw1ce#secret-pw"}),
    ("alias", "twice@own.test", {"members": "plain@own.test"}),
    ("maillist", "twice@own.test", {}),
])
def test_create_twice_is_409_and_delete_twice_is_404(world, factory, settings, kind, mail, params):
    tenant = world["tenant"]
    r = tenant.post(f"/api/{kind}/{mail}", params)
    assert r.status_code == 201, r.text
    before = both(factory, settings)
    r = tenant.post(f"/api/{kind}/{mail}", {**params, "name": "Changed"})
    assert r.status_code == 409, r.text
    assert both(factory, settings) == before
    r = tenant.delete(f"/api/{kind}/{mail}")
    assert r.status_code == 200, r.text
    before = both(factory, settings)
    r = tenant.delete(f"/api/{kind}/{mail}")
    assert r.status_code == 404, r.text
    assert both(factory, settings) == before


def test_create_domain_twice_is_409(world, factory, settings):
    api = world["global"]
    assert api.post("/api/domain/fresh.test", {}).status_code == 201
    before = both(factory, settings)
    for spelling in ("fresh.test", "FRESH.TEST", "fresh.test."):
        r = api.post(f"/api/domain/{spelling}", {"name": "Other"})
        assert r.status_code == 409, (spelling, r.text)
        assert both(factory, settings) == before
    assert api.delete("/api/domain/fresh.test").status_code == 200
    before = both(factory, settings)
    assert api.delete("/api/domain/fresh.test").status_code == 404
    assert both(factory, settings) == before


def test_policy_delete_twice_is_no_500(world, factory, settings):
    api = world["global"]
    assert api.post("/api/throttle/plain@own.test/inbound", {"max_msgs": "5", "period": "60"}).status_code == 200
    for _ in range(2):
        r = api.delete("/api/throttle/plain@own.test/inbound")
        assert r.status_code in (200, 404), r.text
    assert api.get("/api/throttle/plain@own.test/inbound").json["_data"] == {}


# -- careless clients: booleans, repeated keys, JSON --------------------------------------------

@pytest.mark.parametrize("value, expected", [("on", True), ("1", True), ("True", True), ("YES", True),
                                             ("off", False), ("0", False), ("False", False), ("NO", False)])
@MOCK_ONLY
def test_boolean_spellings_on_the_spam_policy(world, value, expected):
    api = world["global"]
    r = api.put("/api/spampolicy/user/plain@own.test", {"bypass_spam_checks": value})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert api.get("/api/spampolicy/user/plain@own.test").json["_data"]["bypass_spam_checks"] is expected


@MOCK_ONLY
@pytest.mark.parametrize("value", ["maybe", "2", "-1", "", "yes,no", "tru"])
def test_odd_boolean_is_400_or_blank(world, factory, settings, value):
    api = world["global"]
    before = both(factory, settings)
    r = api.put("/api/spampolicy/user/plain@own.test", {"bypass_spam_checks": value})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert both(factory, settings) == before


@MOCK_ONLY
def test_repeated_form_keys_are_not_silently_half_taken(world, factory, settings):
    """name=a&name=b: either a 400 or one defined value, never a 500."""
    before = both(factory, settings)
    r = world["tenant"].put("/api/user/plain@own.test", {"name": ["A", "B"]})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert both(factory, settings) == before
    r = world["tenant"].put("/api/user/plain@own.test", {"accountStatus": ["active", "disabled"]})
    assert r.status_code in (200, 400), r.text


@MOCK_ONLY
def test_repeated_keys_in_a_json_body(world, factory, settings):
    tenant = world["tenant"]
    body = '{"name": "A", "name": "B"}'
    headers = {"Cookie": f"{tenant.settings.session_cookie_name}={tenant.cookie}",
               "Content-Type": "application/json"}
    r = tenant.client.simulate_request("PUT", tenant.settings.url_prefix + "/api/user/plain@own.test", body=body,
                                       headers=headers)
    assert r.status_code in (200, 400), r.text


@pytest.mark.parametrize("body", [[], "x", 1, None, {"name": ["A"]}, {"name": {"x": 1}}, {"quota": 1e400},
                                  {"quota": 10**40}, {"quota": True}, {"name": None}])
@MOCK_ONLY
def test_odd_json_bodies_are_no_500(world, factory, settings, body):
    before = both(factory, settings)
    r = world["tenant"].request("PUT", "/api/user/plain@own.test", json_body=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert both(factory, settings) == before


# -- trailing slashes, HEAD, OPTIONS ---------------------------------------------------------------

GETS = ["/api/domains", "/api/domain/own.test", "/api/users/own.test", "/api/user/plain@own.test",
        "/api/aliases/own.test", "/api/maillists/own.test", "/api/domain/admins/own.test",
        "/api/throttle/own.test/inbound", "/api/greylisting/own.test", "/api/greylisting/own.test/whitelists",
        "/api/wblist/inbound/whitelist/own.test", "/api/spampolicy/domain/own.test",
        "/api/spampolicy/user/plain@own.test", "/api/spampolicy/global", "/api/throttle/global/outbound",
        "/api/admins", "/api/log"]


@MOCK_ONLY
@pytest.mark.parametrize("path", GETS)
def test_head_is_get_without_a_body(world, path):
    api = world["global"]
    g = api.get(path)
    h = api.request("HEAD", path)
    assert h.status_code == g.status_code, (h.status_code, g.status_code, h.text)
    assert h.content == b"", h.content[:200]


@MOCK_ONLY
@pytest.mark.parametrize("path", GETS)
def test_options_is_no_500(world, path):
    r = world["global"].request("OPTIONS", path)
    assert r.status_code < 500, r.text


@MOCK_ONLY
@pytest.mark.parametrize("path", GETS)
def test_trailing_slash_is_no_500(world, path):
    r = world["global"].get(path + "/")
    assert r.status_code < 500, r.text


def test_trailing_slash_writes_nothing_else(world, factory, settings):
    before = both(factory, settings)
    r = world["tenant"].put("/api/user/boss@own.test/", {"password": "N3w#password"})
    assert r.status_code in (403, 404, 405), r.text
    r = world["tenant"].delete("/api/user/boss@own.test/")
    assert r.status_code in (403, 404, 405), r.text
    assert both(factory, settings) == before


# -- odd values, hunting 500s ----------------------------------------------------------------------

ODD_WRITES = [
    ("PUT", "/api/user/plain@own.test", {"quota": str(10**30)}),
    ("PUT", "/api/user/plain@own.test", {"quota": "-0"}),
    ("PUT", "/api/user/plain@own.test", {"quota": "1e3"}),
    ("PUT", "/api/user/plain@own.test", {"quota": "\uff11\uff10"}),
    ("PUT", "/api/user/plain@own.test", {"aliases": ""}),
    ("PUT", "/api/user/plain@own.test", {"aliases": ","}),
    ("PUT", "/api/user/plain@own.test", {"forwarding": ", ,"}),
    ("PUT", "/api/user/plain@own.test", {"addAlias": "\uff50lain2@own.test"}),
    ("PUT", "/api/user/plain@own.test", {"addAlias": "pla\u0131n@own.test"}),
    ("PUT", "/api/user/plain@own.test", {"addAlias": "a\u0301@own.test"}),
    ("PUT", "/api/user/plain@own.test", {"name": "\x00"}),
    ("PUT", "/api/user/plain@own.test", {"name": "x" * 100000}),
    ("PUT", "/api/domain/own.test", {"numberOfUsers": str(2**64)}),
    ("PUT", "/api/domain/own.test", {"quota": "99999999999999999999999"}),
    ("PUT", "/api/domain/own.test", {"addAliasDomain": ""}),
    ("PUT", "/api/domain/own.test", {"aliasDomains": ","}),
    ("PUT", "/api/domain/own.test", {"addAliasDomain": "\uff54win2.test"}),
    ("PUT", "/api/domain/admins/own.test", {"addAdmin": ""}),
    ("PUT", "/api/domain/admins/own.test", {"removeAdmin": ","}),
    ("POST", "/api/alias/al9@own.test", {"members": ""}),
    ("POST", "/api/alias/al9@own.test", {"members": ","}),
    ("POST", "/api/maillist/ml9@own.test", {"members": "\uff50lain@own.test"}),
    ("POST", "/api/throttle/plain@own.test/inbound", {"max_msgs": str(2**63), "period": "60"}),
    ("POST", "/api/throttle/plain@own.test/inbound", {"max_msgs": "1", "period": str(2**31)}),
    ("POST", "/api/throttle/plain@own.test/inbound", {"max_msgs": "", "period": "60"}),
    ("POST", "/api/throttle/plain@own.test/inbound", {"max_msgs": "1.5", "period": "60"}),
    ("POST", "/api/throttle/plain@own.test/inbound", {"max_msgs": "1", "period": "\u0666\u0660"}),
    ("POST", "/api/greylisting/plain@own.test/whitelists", {"addWhitelistSenders": ""}),
    ("POST", "/api/greylisting/plain@own.test/whitelists", {"addWhitelistSenders": "999.1.1.1/99"}),
    ("POST", "/api/greylisting/plain@own.test/whitelists", {"addWhitelistSenders": "::ffff:1.2.3.4/200"}),
    ("POST", "/api/wblist/inbound/whitelist/plain@own.test", {"addresses": ""}),
    ("POST", "/api/wblist/inbound/whitelist/plain@own.test", {"addresses": "1.2.3.4/33,fe80::1%eth0"}),
    ("POST", "/api/wblist/inbound/whitelist/plain@own.test", {"addresses": "\uff20other.test"}),
    ("POST", "/api/wblist/inbound/whitelist/plain@own.test", {"addresses": "x@" + "a" * 300 + ".test"}),
    ("PUT", "/api/spampolicy/user/plain@own.test", {"spam_score": "1e400"}),
    ("PUT", "/api/spampolicy/user/plain@own.test", {"spam_score": "nan"}),
    ("PUT", "/api/spampolicy/user/plain@own.test", {"spam_score": "inf"}),
    ("PUT", "/api/spampolicy/user/plain@own.test", {"spam_score": "1" * 5000}),
    ("PUT", "/api/spampolicy/user/plain@own.test", {"banned_rulenames": ","}),
    ("POST", "/api/user/plain@own.test/change_email/\uff50lain3@own.test", {}),
    ("POST", "/api/user/\uff4eew@own.test", {"password": "N3w#secret-pw"}),
    ("POST", "/api/user/new\u00a0x@own.test", {"password": "N3w#secret-pw"}),
    ("POST", "/api/user/new2@own.test", {"password": "N3w#secret-pw", "quota": str(10**30)}),
    ("POST", "/api/user/new3@own.test", {"password": ""}),
    ("POST", "/api/user/new4@own.test", {"password": "\x00" * 20}),
]


@MOCK_ONLY
@pytest.mark.parametrize("method, path, params", ODD_WRITES, ids=[f"{m} {p} {b}"[:90] for m, p, b in ODD_WRITES])
def test_odd_values_are_no_500(world, factory, settings, method, path, params):
    for who in ("tenant", "global"):
        before = both(factory, settings)
        r = world[who].request(method, path, params)
        assert r.status_code < 500, (who, r.text)
        if r.status_code >= 400:
            assert both(factory, settings) == before, who


ODD_QUERIES = [{"page": str(10**30)}, {"page": "-1"}, {"page": ""}, {"limit": str(10**30)}, {"limit": "0"},
               {"sort": "\x00"}, {"cursor": ""}, {"name_only": "maybe"}, {"search": "*"}, {"search": "\\"},
               {"search": "(" * 50}, {"fields": ","}]


@MOCK_ONLY
@pytest.mark.parametrize("path", ["/api/users/own.test", "/api/domains", "/api/aliases/own.test", "/api/log"])
def test_odd_queries_are_no_500(world, path):
    for query in ODD_QUERIES:
        r = world["global"].get(path, query)
        assert r.status_code < 500, (query, r.text)


# == FINDINGS (each got a wrong answer before its fix; each asserts the correct behaviour) =========

def _raw(client, method, path, body: bytes | str, ctype: str):
    headers = {"Cookie": f"{client.settings.session_cookie_name}={client.cookie}", "Content-Type": ctype}
    return client.client.simulate_request(method, client.settings.url_prefix + path, body=body, headers=headers)


@pytest.mark.parametrize("body", ['{"accountStatus": "disabled", "accountStatus": "active"}',
                                  '{"name": "A", "name": "B"}'], ids=["accountStatus", "name"])
@MOCK_ONLY
def test_finding_repeated_keys_in_a_json_body_are_400_as_in_a_form(world, factory, settings, body):
    """A form with name=A&name=B is 400 "name: given 2 times, expected once";
    the same in JSON ({"name": "A", "name": "B"}) was taken silently, the
    last value winning (Python's json.loads): a careless client's intent
    (disable? activate?) is guessed instead of refused."""
    key = json.loads(body) and body.split('"')[1]
    form = world["tenant"].put("/api/user/plain@own.test", {key: ["x", "y"]})
    assert form.status_code == 400, form.text
    before = both(factory, settings)
    r = _raw(world["tenant"], "PUT", "/api/user/plain@own.test", body, "application/json")
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_REQUEST" and key in r.json["reason"], r.text
    assert both(factory, settings) == before


@pytest.mark.parametrize("body", [b"name=%ff", b"name=caf%E9", b"name=%ED%A0%80"],
                         ids=["0xff", "latin-1 e-acute", "encoded surrogate"])
@MOCK_ONLY
def test_finding_a_form_body_that_is_not_utf8_is_400_not_replacement_characters(world, factory, settings, body):
    """A JSON body with invalid UTF-8 is 400 INVALID_REQUEST, and a JSON lone
    surrogate is 400; a form body with %FF (or a latin-1 client's caf%E9, or
    the UTF-8-encoded surrogate %ED%A0%80) was decoded with replacement:
    200, and cn became U+FFFD ('caf\\ufffd').  The data is corrupted
    silently instead of refused."""
    before = both(factory, settings)
    r = _raw(world["tenant"], "PUT", "/api/user/plain@own.test", body, "application/x-www-form-urlencoded")
    assert r.status_code == 400, r.text
    assert both(factory, settings) == before
    assert "\ufffd" not in "".join(factory.entry(factory.tree.user("plain@own.test")).get("cn"))


@pytest.mark.parametrize("method, path, params", [
    ("POST", "/api/user/\u212aing@own.test", {"password": "N3w#secret-pw"}),
    ("POST", "/api/alias/\u212aing@own.test", {"members": "plain@own.test"}),
    ("PUT", "/api/user/plain@own.test", {"addAlias": "\u212aing@own.test"}),
    ("POST", "/api/user/plain@own.test/change_email/\u212aing@own.test", {}),
    ("PUT", "/api/user/plain@own.test", {"forwarding": "\u212aing@other.test"}),
], ids=["create user", "create alias", "addAlias", "change_email", "forwarding"])
def test_finding_a_kelvin_sign_in_a_local_part_is_400_like_other_non_ascii(world, factory, settings, method, path,
                                                                           params):
    """validators.email lowercases the local part before checking it is
    ASCII: U+212A KELVIN SIGN lowercases to ASCII 'k', so
    POST /api/user/\\u212aing@own.test created king@own.test (201), while
    every other non-ASCII local part (fullwidth 'ｂoss', 'PLAİN', 'boſs') is
    400 INVALID_MAIL.  The address stored is not the one the client sent."""
    for other in ("\uff42oss@own.test", "bo\u017fs@own.test"):
        assert world["tenant"].post(f"/api/user/{quote(other)}", {"password": "N3w#secret-pw"}).status_code == 400
    before = both(factory, settings)
    r = world["tenant"].request(method, quote(path, safe="/@"), params)
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_MAIL", r.text
    assert both(factory, settings) == before


ADD_AND_REMOVE = [
    ("/api/user/plain@own.test", {"addAlias": "a3@own.test", "removeAlias": "a3@own.test"}),
    ("/api/user/plain@own.test", {"addForwarding": "someone@other.test", "removeForwarding": "someone@other.test"}),
    ("/api/domain/admins/own.test", {"addAdmin": "plain@own.test", "removeAdmin": "plain@own.test"}),
    ("/api/domain/own.test", {"addAliasDomain": "z9.test", "removeAliasDomain": "z9.test"}),
]


@pytest.mark.parametrize("path, params", ADD_AND_REMOVE, ids=[next(iter(b)) for _, b in ADD_AND_REMOVE])
def test_finding_adding_and_removing_one_value_at_once_is_400(world, factory, settings, path, params):
    """POST /api/greylisting/<a>/whitelists with addWhitelistSenders and
    removeWhitelistSenders naming one sender is 400 ("... both name ...");
    the LDAP routes took the same contradiction with 200 and the add won:
    PUT /api/user/plain@own.test addAlias=a3@own.test&removeAlias=a3@own.test
    left a3@own.test as an alias, addAdmin+removeAdmin made plain@own.test an
    admin of own.test, addAliasDomain+removeAliasDomain added z9.test."""
    g = world["tenant"].post("/api/greylisting/plain@own.test/whitelists",
                             {"addWhitelistSenders": "@y.test", "removeWhitelistSenders": "@y.test"})
    assert g.status_code == 400, g.text
    before = both(factory, settings)
    r = world["tenant"].put(path, params)
    assert r.status_code == 400, r.text
    assert both(factory, settings) == before


# == held: a sweep of odd values over the other routes (no 500) ===================================

SWEEP_VALUES = ["", " ", "0", "-1", "1" * 400, "\u212a", "a" * 5000, "%00", "\u00e9", "[]", "null", "a,b", ",", "@",
                "@.", "..", "x@y", "\uff11"]


def _sweep(v):
    return [("POST", "/api/tokens", {"admin": v}), ("POST", "/api/tokens", {"admin": TENANT[0], "domains": v}),
            ("POST", "/api/tokens", {"admin": TENANT[0], "expires": v}), ("DELETE", f"/api/token/{v}", None),
            ("POST", "/api/verify_password/user/plain@own.test", {"password": v}),
            ("POST", "/api/check", {"mail": v}),
            ("PUT", "/api/admin/tenant@admins.test", {"name": v}), ("PUT", "/api/admin/tenant@admins.test", {"maxDomains": v}),
            ("POST", "/api/admin/new1@admins.test", {"password": "N3w#secret-pw", "domains": v}),
            ("PUT", "/api/domain/services/own.test", {"enableService": v}),
            ("POST", "/api/domain/d1.test", {"quota": v}), ("POST", "/api/domain/d1.test", {"aliasDomains": v}),
            ("PUT", "/api/domain/own.test", {"disabledDomainProfile": v}), ("PUT", "/api/domain/own.test", {"timezone": v}),
            ("PUT", "/api/user/plain@own.test", {"language": v}), ("PUT", "/api/user/plain@own.test", {"password": v}),
            ("PUT", "/api/user/plain@own.test", {"memberOfGroup": v}), ("PUT", "/api/user/plain@own.test", {"senderBcc": v}),
            ("DELETE", f"/api/domain/own.test/keep_mailbox_days/{v}", None),
            ("DELETE", f"/api/user/plain@own.test/keep_mailbox_days/{v}", None),
            ("POST", "/api/login", {"username": v, "password": v}),
            ("POST", "/api/greylisting/whitelist_spf_domains", {"addDomains": v}),
            ("POST", f"/api/throttle/plain@own.test/{v}", {"period": "1"})]


@pytest.mark.parametrize("value", SWEEP_VALUES, ids=ascii)
def test_sweep_of_odd_values_is_no_500(world, factory, settings, value):
    for who in ("global", "tenant"):
        for method, path, params in _sweep(value):
            r = world[who].request(method, path, params)
            assert r.status_code < 500, (who, method, path, r.text)


@pytest.mark.parametrize("path", ["/api/spampolicy/global", "/api/throttle/global/outbound", "/api/admins",
                                  "/api/log", "/api/domain/other.test", "/api/user/someone@other.test",
                                  "/api/throttle/other.test/inbound", "/api/user/plain@own.test"])
@MOCK_ONLY
def test_head_for_a_tenant_has_the_status_of_get_and_no_body(world, path):
    g = world["tenant"].get(path)
    h = world["tenant"].request("HEAD", path)
    assert h.status_code == g.status_code and h.content == b"", (h.status_code, g.status_code)


def test_a_kelvin_sign_reaches_no_admin_above(world, factory, settings):
    """The Kelvin-sign spelling bypasses no rule (kboss@own.test: a global
    admin with a mailbox; kop@own.test standalone): it was normalised to "k"
    before every rule (403), and is now refused as the address it is not (400)."""
    factory.user("kboss@own.test", PW)
    factory.dir.modify(factory.tree.user("kboss@own.test"), {"domainGlobalAdmin": [("MODIFY_ADD", ["yes"])],
                                                             "enabledService": [("MODIFY_ADD", ["domainadmin"])]})
    factory.global_admin("kop@own.test", "G0d#secret-pw")
    k = quote("\u212a")
    before = both(factory, settings)
    for method, path, params in [("PUT", f"/api/user/{k}boss@own.test", {"password": "N3w#secret-pw"}),
                                 ("DELETE", f"/api/user/{k}boss@own.test", None),
                                 ("POST", f"/api/throttle/{k}boss@own.test/inbound", {"max_msgs": "1", "period": "60"}),
                                 ("PUT", f"/api/spampolicy/user/{k}boss@own.test", {"bypass_spam_checks": "yes"}),
                                 ("POST", f"/api/user/{k}op@own.test", {"password": "N3w#secret-pw"}),
                                 ("POST", f"/api/alias/{k}op@own.test", {}),
                                 ("PUT", "/api/user/plain@own.test", {"addAlias": "\u212aop@own.test"})]:
        r = world["tenant"].request(method, path, params)
        assert r.status_code in (400, 403), (path, r.text)
        assert both(factory, settings) == before, path


@pytest.mark.parametrize("query", ["name=%ff", "name=caf%E9", "name=%ED%A0%80"],
                         ids=["0xff", "latin-1 e-acute", "encoded surrogate"])
@MOCK_ONLY
def test_a_query_string_that_is_not_utf8_is_400_too(world, factory, settings, query):
    """Parameters may come in the query string as well (as iRedAdmin-Pro reads them)."""
    before = both(factory, settings)
    r = world["tenant"].client.simulate_request(
        "PUT", settings.url_prefix + "/api/user/plain@own.test", query_string=query,
        headers={"Cookie": f"{settings.session_cookie_name}={world['tenant'].cookie}"})
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_REQUEST", r.text
    assert both(factory, settings) == before
    good = world["tenant"].client.simulate_request(
        "PUT", settings.url_prefix + "/api/user/plain@own.test", query_string="name=caf%C3%A9",
        headers={"Cookie": f"{settings.session_cookie_name}={world['tenant'].cookie}"})
    assert good.status_code == 200, good.text
    assert factory.entry(factory.tree.user("plain@own.test")).get("cn") == ["café"]
