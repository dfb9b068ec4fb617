"""A hostile tenant against the whole-domain rules
(Access.above_in, DOMAIN_CHANGE, DELETE_DOMAIN, ACCOUNT_CHANGE on a domain,
DomainItem.on_put's DOMAIN_WIDE_PARAMS) and the alias-domain twin logic of
Access.outranks; and the rules' breadth (a domain with nobody above the
tenant keeps everything; reads stay open).

Each test asserts the secure behaviour (those under FINDING got through
until the commit that made the twin count everywhere); refusals are checked
on the directory snapshot and the policy tables.  Runs on MOCK_SYNC and slapd.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from iredldap.model import passwords

from .test_attack_findings import holders_of, policy_rows
from .test_tenant_boundaries import PW, RESELLER, TENANT, snapshot, tenant_token, world  # noqa: F401 (fixtures)
from .test_tenant_reach_2 import reseller_client

THIEF = "thief@elsewhere.test"
GBOSS_PW = "G0d#secret-pw"


def manage(factory, domain: str, admin: str = TENANT[0]) -> None:
    factory.dir.modify(factory.tree.domain(domain), {"domainAdmin": [("MODIFY_ADD", [admin])]})


@pytest.fixture
def twin(world, api, factory):
    """mine.test: the tenant's, no mail user above it.  The operator gave it
    the alias domain twin.test and made a standalone global admin
    gboss@twin.test, whose mail goes to the mailbox gboss@mine.test (Postfix:
    x@twin.test is x@mine.test).  The tenant may not touch that mailbox
    (Access.outranks reads the twin, e5880df)."""
    factory.domain("mine.test")
    factory.user("box@mine.test", PW)
    manage(factory, "mine.test")
    assert api.put("/api/domain/mine.test", {"addAliasDomain": "twin.test"}).status_code == 200
    factory.user("gboss@mine.test", PW)
    factory.global_admin("gboss@twin.test", GBOSS_PW)
    r = world["tenant"].put("/api/user/gboss@mine.test", {"password": "N3w#password"})
    assert r.status_code == 403, r.text      # the per-user rule holds
    return "gboss@mine.test"


# == FINDING 1: the bulk user update did not skip the twin of an admin above =======================

@pytest.mark.parametrize("params", [{"password": "Bulk#passw0rd"}, {"accountStatus": "disabled"}],
                         ids=["password", "disable"])
def test_bulk_update_skips_the_twin_of_an_admin_above(world, factory, twin, params):
    """PUT /api/user/gboss@mine.test is refused (its twin gboss@twin.test is a
    global admin), but PUT /api/users/mine.test skips only `outranking`
    (mail users whose own rights are above): the mailbox that takes the
    global admin's mail gets the tenant's password (or is disabled)."""
    dn = factory.tree.user(twin).lower()
    before = snapshot(factory)[dn]
    r = world["tenant"].put("/api/users/mine.test", params)
    assert r.status_code in (200, 403), r.text
    assert passwords.verify_password(PW, factory.entry(factory.tree.user(twin)).get("userPassword")[0])
    assert snapshot(factory)[dn] == before
    if r.status_code == 200:
        assert twin in r.json["_data"]["skipped"], r.json


# == FINDING 2: authz's whole-domain check ignored the alias domains (on_put read them) ============

DOMAIN_POLICIES = [
    ("POST", "/api/throttle/{d}/inbound", {"max_msgs": "1", "period": "86400"}),
    ("DELETE", "/api/throttle/{d}/inbound", None),
    ("POST", "/api/wblist/inbound/blacklist/{d}", {"addresses": "@."}),
    ("PUT", "/api/wblist/inbound/whitelist/{d}", {"addresses": "@."}),
    ("POST", "/api/greylisting/{d}", {"status": "enable"}),
    ("POST", "/api/greylisting/{d}/whitelists", {"addWhitelistSenders": "@example.net"}),
    ("PUT", "/api/spampolicy/domain/{d}", {"bypass_spam_checks": "yes"}),
    ("DELETE", "/api/spampolicy/domain/{d}", None),
]
POLICY_IDS = [f"{m} {p}" for m, p, _ in DOMAIN_POLICIES]


@pytest.mark.parametrize("method, path, params", DOMAIN_POLICIES, ids=POLICY_IDS)
def test_domain_policies_count_an_admin_above_in_an_alias_domain(world, settings, twin, method, path, params):
    """DomainItem.on_put refuses mine.test's recipientBcc because of
    gboss@twin.test (it reads the alias domains); the authz check of the
    domain's policies (ACCOUNT_CHANGE / DOMAIN_CHANGE) calls above_in([domain])
    only: @mine.test's blacklist of everyone, throttle or spam policy reach
    gboss@mine.test, the mailbox of the global admin's mail."""
    assert world["tenant"].put("/api/domain/mine.test", {"recipientBcc": THIEF}).status_code == 403
    before = policy_rows(settings)
    # (spellings in one test: a refusal leaves what the next starts from)
    for spelling in ("mine.test", "MINE.TEST."):
        r = world["tenant"].request(method, path.format(d=spelling), params)
        assert r.status_code == 403, (spelling, r.text)
        assert policy_rows(settings) == before, spelling


def test_a_reseller_cannot_delete_a_domain_whose_alias_domain_holds_an_admin_above(world, factory, app, settings,
                                                                                   twin):
    """DELETE_DOMAIN: above_in([domain]) misses gboss@twin.test; deleting
    mine.test deletes the mailbox of the global admin's mail (which the
    reseller may not delete by DELETE /api/user)."""
    reseller = reseller_client(factory, app, settings)
    manage(factory, "mine.test", RESELLER[0])
    assert reseller.delete(f"/api/user/{twin}").status_code == 403
    before = snapshot(factory)
    for path in ("/api/domain/mine.test", "/api/domain/mine.test/keep_mailbox_days/1"):
        r = reseller.delete(path)
        assert r.status_code == 403, (path, r.text)
        assert snapshot(factory) == before, path


# == FINDING 3: removing the alias domain that holds an admin above was allowed ====================

@pytest.mark.parametrize("params", [{"removeAliasDomain": "twin.test"}, {"aliasDomains": ""},
                                    {"aliasDomains": "other-twin.test"}, {"removeAliasDomain": "TWIN.TEST."}],
                         ids=["removeAliasDomain", "aliasDomains empty", "aliasDomains replaced",
                              "removeAliasDomain spelled"])
def test_removing_an_alias_domain_holding_an_admin_above(world, factory, twin, params):
    """twin.test carries a global admin's address (gboss@twin.test).  The
    tenant may not add twin.test (DomainItem._check_admin_names) nor change
    the domain's BCC (DOMAIN_WIDE_PARAMS), but it may drop twin.test:
    Postfix then knows no twin.test and refuses the global admin's mail
    (the "cut it off" of the domain blacklist), and the shadow addresses
    at twin.test go."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/mine.test", params)
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


# == held: the domain-wide parameters with the admin above only in an alias domain ==================

@pytest.mark.parametrize("params", [{"recipientBcc": THIEF}, {"senderBcc": THIEF},
                                    {"outboundRelay": "smtp:[192.0.2.66]:25"}, {"catchall": "box@mine.test"},
                                    {"catchall": ""}, {"accountStatus": "disabled"}],
                         ids=["recipientBcc", "senderBcc", "outboundRelay", "catchall", "no catchall", "disable"])
def test_domain_wide_params_count_an_alias_domains_admin(world, factory, twin, params):
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/MINE.TEST.", params)
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


def test_domain_wide_params_count_a_standalone_admin_in_an_alias_domain_without_a_mailbox(world, api, factory):
    """No account at gboss@mine.test: a catch-all of mine.test takes gboss@twin.test's mail."""
    factory.domain("mine.test")
    manage(factory, "mine.test")
    assert api.put("/api/domain/mine.test", {"addAliasDomain": "twin.test"}).status_code == 200
    factory.global_admin("gboss@twin.test", GBOSS_PW)
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/mine.test", {"catchall": THIEF})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


# == held: IDN spellings of a domain holding a standalone admin above ===============================

@pytest.fixture
def idn(world, api, factory):
    factory.domain("xn--bcher-kva.test")
    manage(factory, "xn--bcher-kva.test")
    factory.global_admin("gboss@xn--bcher-kva.test", GBOSS_PW)
    return "xn--bcher-kva.test"


@pytest.mark.parametrize("method, path, params", DOMAIN_POLICIES, ids=POLICY_IDS)
def test_domain_policies_of_an_idn_domain_by_any_spelling(world, settings, idn, method, path, params):
    before = policy_rows(settings)
    for spelling in ("bücher.test", "BÜCHER.TEST.", "XN--BCHER-KVA.TEST"):
        r = world["tenant"].request(method, path.format(d=quote(spelling)), params)
        assert r.status_code == 403, (spelling, r.text)
        assert policy_rows(settings) == before, spelling


@pytest.mark.parametrize("spelling", ["bücher.test", "BÜCHER.TEST."])
def test_domain_wide_params_of_an_idn_domain_by_any_spelling(world, factory, idn, spelling):
    before = snapshot(factory)
    for params in ({"catchall": THIEF}, {"accountStatus": "disabled"}, {"recipientBcc": THIEF}):
        r = world["tenant"].put(f"/api/domain/{quote(spelling)}", params)
        assert r.status_code == 403, (params, r.text)
        assert snapshot(factory) == before, params


# == held: the order of 400 and 403 ================================================================

MALFORMED = [
    ("POST", "/api/wblist/inbound/greylist/{d}", {"addresses": "@."}),
    ("POST", "/api/wblist/sideways/blacklist/{d}", {"addresses": "@."}),
    ("POST", "/api/throttle/{d}/sideways", {"max_msgs": "1", "period": "86400"}),
    ("DELETE", "/api/throttle/{d}/sideways", None),
]


@pytest.mark.parametrize("domain", ["own.test", "mine.test"], ids=["someone above", "nobody above"])
@pytest.mark.parametrize("method, path, params", MALFORMED, ids=[f"{m} {p}" for m, p, _ in MALFORMED])
def test_a_malformed_url_part_is_400_for_a_tenant_of_the_domain(world, factory, settings, method, path, params,
                                                                domain):
    factory.domain("mine.test")
    manage(factory, "mine.test")
    before = policy_rows(settings)
    r = world["tenant"].request(method, path.format(d=domain), params)
    assert r.status_code == 400, r.text
    assert policy_rows(settings) == before


def test_a_malformed_days_is_400_for_a_reseller_of_a_domain_with_someone_above(world, factory, app, settings):
    reseller = reseller_client(factory, app, settings)
    manage(factory, "own.test", RESELLER[0])
    before = snapshot(factory)
    r = reseller.delete("/api/domain/own.test/keep_mailbox_days/-1")
    assert r.status_code == 400, r.text
    r = reseller.delete("/api/domain/own.test/keep_mailbox_days/1")
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


# == held: no 500 from the new paths ================================================================

@pytest.mark.parametrize("method, path, params", DOMAIN_POLICIES, ids=POLICY_IDS)
def test_policies_of_a_domain_that_does_not_exist(world, settings, method, path, params):
    for domain in ("nowhere.test", "n%C3%B6where.test"):
        before = policy_rows(settings)
        r = world["tenant"].request(method, path.format(d=domain), params)
        assert r.status_code == 403, (domain, r.text)
        assert policy_rows(settings) == before, domain
        r = world["global"].request(method, path.format(d=domain), params)
        assert r.status_code < 500, (domain, r.text)


def test_odd_alias_domain_values_in_the_directory_are_no_500(world, factory):
    """domainAliasName values an import or an old tool left behind (upper
    case, a filter special): the whole-domain check still answers."""
    factory.domain("mine.test")
    manage(factory, "mine.test")
    factory.dir.modify(factory.tree.domain("mine.test"),
                       {"domainAliasName": [("MODIFY_ADD", ["TWIN.TEST", "tw*in.test", "a(b).test"])]})
    factory.global_admin("gboss@twin.test", GBOSS_PW)
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/mine.test", {"recipientBcc": THIEF})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


# == over-breadth: a domain with nobody above the tenant keeps everything =========================

@pytest.fixture
def clean(world, factory):
    """mine.test: the tenant's, with a plain user, a peer admin of mine.test
    only, and an alias domain mine-alias.test; nobody above the tenant."""
    factory.domain("mine.test", aliasDomains=["mine-alias.test"])
    factory.user("box@mine.test", PW)
    factory.user("mpeer@mine.test", PW)
    factory.dir.modify(factory.tree.user("mpeer@mine.test"), {"enabledService": [("MODIFY_ADD", ["domainadmin"])]})
    manage(factory, "mine.test", "mpeer@mine.test")
    manage(factory, "mine.test")
    return "mine.test"


@pytest.mark.parametrize("params", [{"recipientBcc": THIEF}, {"senderBcc": THIEF},
                                    {"outboundRelay": "smtp:[192.0.2.66]:25"}, {"catchall": "box@mine.test"},
                                    {"accountStatus": "disabled"}, {"removeAliasDomain": "mine-alias.test"},
                                    {"addAliasDomain": "mine-alias2.test"}])
def test_a_domain_with_nobody_above_keeps_its_domain_wide_params(world, factory, clean, params):
    r = world["tenant"].put("/api/domain/mine.test", params)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method, path, params", DOMAIN_POLICIES, ids=POLICY_IDS)
def test_a_domain_with_nobody_above_keeps_its_policies(world, settings, clean, method, path, params):
    r = world["tenant"].request(method, path.format(d="mine.test"), params)
    assert r.status_code == 200, r.text


def test_a_domain_with_nobody_above_keeps_its_bulk_update_and_deletion(world, factory, app, settings, clean):
    r = world["tenant"].put("/api/users/mine.test", {"password": "Bulk#passw0rd"})
    assert r.status_code == 200 and r.json["_data"]["skipped"] == [], r.text
    reseller = reseller_client(factory, app, settings)
    manage(factory, "mine.test", RESELLER[0])
    r = reseller.delete("/api/domain/mine.test")
    assert r.status_code == 200, r.text


def test_a_tenant_token_keeps_the_domain_with_nobody_above(world, api, app, settings, clean):
    from .support import BearerClient
    r = api.post("/api/tokens", {"admin": TENANT[0], "domains": "mine.test"})
    token = BearerClient(app, settings, r.json["_data"]["token"])
    for method, path, params in DOMAIN_POLICIES[:3]:
        r = token.request(method, path.format(d="mine.test"), params)
        assert r.status_code == 200, (path, r.text)
    r = token.put("/api/domain/mine.test", {"recipientBcc": THIEF})
    assert r.status_code == 200, r.text


READS = ["/api/domain/{d}", "/api/users/{d}", "/api/domain/admins/{d}", "/api/domain/services/{d}",
         "/api/throttle/{d}/inbound", "/api/throttle/{d}/outbound", "/api/greylisting/{d}",
         "/api/greylisting/{d}/whitelists", "/api/wblist/inbound/blacklist/{d}", "/api/wblist/outbound/whitelist/{d}",
         "/api/spampolicy/domain/{d}", "/api/aliases/{d}", "/api/maillists/{d}", "/api/ldif/domain/{d}"]


@pytest.mark.parametrize("path", READS)
def test_reads_stay_open_in_a_domain_with_someone_above(world, api, factory, path):
    """own.test holds boss@own.test; add an admin in an alias domain too."""
    assert api.put("/api/domain/own.test", {"addAliasDomain": "twin.test"}).status_code == 200
    factory.global_admin("gboss@twin.test", GBOSS_PW)
    r = world["tenant"].get(path.format(d="own.test"))
    assert r.status_code == 200, r.text


# == held?: taking the twin address of a standalone admin by other routes =========================

@pytest.fixture
def bare_twin(world, api, factory):
    """mine.test with alias domain twin.test and a standalone global admin
    gboss@twin.test; no account at gboss@mine.test (nothing takes its mail yet)."""
    factory.domain("mine.test")
    factory.user("box@mine.test", PW)
    manage(factory, "mine.test")
    assert api.put("/api/domain/mine.test", {"addAliasDomain": "twin.test"}).status_code == 200
    factory.global_admin("gboss@twin.test", GBOSS_PW)
    assert world["tenant"].post("/api/alias/al@mine.test", {"members": "box@mine.test"}).status_code == 201
    return "gboss@mine.test"


TWIN_TAKEOVERS = [
    ("PUT", "/api/user/box@mine.test", {"addAlias": "gboss@twin.test"}),
    ("PUT", "/api/user/box@mine.test", {"addAlias": "gboss@mine.test"}),
    ("PUT", "/api/user/box@mine.test", {"aliases": "GBOSS@MINE.TEST."}),
    ("POST", "/api/user/box@mine.test/change_email/gboss@mine.test", {}),
    ("POST", "/api/user/box@mine.test/change_email/GBoss@Mine.Test.", {}),
    ("POST", "/api/alias/al@mine.test/change_email/gboss@mine.test", {}),
    ("POST", "/api/user/gboss@mine.test", {"password": "N3w#secret-pw"}),
    ("POST", "/api/user/GBOSS@MINE.TEST.", {"password": "N3w#secret-pw"}),
    ("POST", "/api/alias/gboss@mine.test", {"members": "box@mine.test"}),
    ("POST", "/api/maillist/gboss@mine.test", {}),
    ("POST", "/api/alias/gboss@twin.test", {"members": "box@mine.test"}),
    ("POST", "/api/user/gboss@twin.test", {"password": "N3w#secret-pw"}),
]


@pytest.mark.parametrize("method, path, params", TWIN_TAKEOVERS, ids=[f"{m} {p} {sorted(b)}"
                                                                       for m, p, b in TWIN_TAKEOVERS])
def test_no_account_takes_the_twin_of_a_standalone_admin(world, factory, bare_twin, method, path, params):
    before = snapshot(factory)
    r = world["tenant"].request(method, path, params)
    assert r.status_code in (400, 403, 404, 409), r.text
    assert snapshot(factory) == before
    assert holders_of(factory, "gboss@mine.test") == [] and holders_of(factory, "gboss@twin.test") == []


# == held: spellings of {account} for own.test (boss@own.test above) ================================

MORE_POLICIES = DOMAIN_POLICIES + [
    ("DELETE", "/api/greylisting/{d}", None),
    ("DELETE", "/api/wblist/inbound/blacklist/{d}", {"addresses": "@."}),
    ("POST", "/api/wblist/outbound/whitelist/{d}", {"addresses": "@."}),
]


@pytest.mark.parametrize("method, path, params", MORE_POLICIES, ids=[f"{m} {p}" for m, p, _ in MORE_POLICIES])
def test_domain_policies_of_own_test_by_any_spelling(world, settings, method, path, params):
    before = policy_rows(settings)
    for spelling in ("%20own.test", "own.test%20", "Own.Test", "OWN.TEST."):
        r = world["tenant"].request(method, path.format(d=spelling), params)
        assert r.status_code in (400, 403), (spelling, r.text)
        assert policy_rows(settings) == before, spelling


# == over-breadth: a mail-user admin of a domain with nobody above it ==============================

def test_a_mail_user_admin_keeps_its_clean_domain(world, factory, app, settings, clean):
    from .support import ApiClient
    mpeer = ApiClient(app, settings)
    mpeer.login("mpeer@mine.test", PW)
    for method, path, params in DOMAIN_POLICIES:
        r = mpeer.request(method, path.format(d="mine.test"), params)
        assert r.status_code == 200, (method, path, r.text)
    for params in ({"recipientBcc": THIEF}, {"catchall": "box@mine.test"}, {"removeAliasDomain": "mine-alias.test"}):
        r = mpeer.put("/api/domain/mine.test", params)
        assert r.status_code == 200, (params, r.text)


# == held: the twin mailbox's own policies and account routes ======================================

TWIN_USER_ROUTES = [
    ("POST", "/api/throttle/{m}/inbound", {"max_msgs": "1", "period": "86400"}),
    ("POST", "/api/wblist/inbound/blacklist/{m}", {"addresses": "@."}),
    ("PUT", "/api/spampolicy/user/{m}", {"bypass_spam_checks": "yes"}),
    ("POST", "/api/greylisting/{m}", {"status": "enable"}),
    ("PUT", "/api/user/{m}", {"forwarding": THIEF}),
    ("POST", "/api/user/{m}/change_email/moved@mine.test", {}),
    ("DELETE", "/api/user/{m}/keep_mailbox_days/1", None),
]


@pytest.mark.parametrize("method, path, params", TWIN_USER_ROUTES, ids=[f"{m} {p}" for m, p, _ in TWIN_USER_ROUTES])
def test_the_twin_mailbox_by_any_spelling(world, factory, settings, twin, method, path, params):
    before, rows = snapshot(factory), policy_rows(settings)
    for spelling in ("gboss@mine.test", "GBOSS@MINE.TEST.", "GBoss@Mine.Test"):
        r = world["tenant"].request(method, path.format(m=spelling), params)
        assert r.status_code in (400, 403), (spelling, r.text)
        assert snapshot(factory) == before and policy_rows(settings) == rows, spelling
