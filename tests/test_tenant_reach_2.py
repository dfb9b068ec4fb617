"""A hostile tenant (the normal admin of own.test of test_tenant_boundaries'
world) and a careless client, against the fixes of test_tenant_reach (other
spellings, other routes to the same entries) and against what that did not
attack: LDIF export, API tokens, the audit log, /api/check, paging and
sorting parameters.

Sections headed FINDING got through until the fix named in their commit;
the others held and are kept so they keep holding.  Refusals are checked on
what the directory (or the policy tables) hold afterwards.  Runs on MOCK_SYNC and on the real slapd.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from iredldap.model import passwords

from .support import ApiClient, BearerClient, every_row
from .test_attack_findings import holders_of, policy_rows
from .test_ldif_export import client_for, records
from .test_tenant_boundaries import PW, RESELLER, TENANT, snapshot, tenant_token, world  # noqa: F401 (fixtures)

THIEF = "thief@elsewhere.test"


def reseller_client(factory, app, settings):
    factory.normal_admin(*RESELLER, settings=["create_new_domains:yes"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    return reseller


# == FINDING A: domain-wide BCC and relay reach the mailbox of a global admin in the domain ==========

DOMAIN_WIDE = [
    {"recipientBcc": THIEF},      # a copy of every mail *to* own.test, boss@own.test's included
    {"senderBcc": THIEF},         # a copy of every mail *from* own.test
    {"outboundRelay": "smtp:[192.0.2.66]:25"},   # boss's outgoing mail through the tenant's relay
]


@pytest.mark.parametrize("params", DOMAIN_WIDE, ids=lambda p: next(iter(p)))
def test_domain_wide_copies_of_mail_spare_the_accounts_above_the_tenant(world, factory, params):
    """boss@own.test is a global admin with a mailbox in own.test.  The
    tenant may not set forwarding, BCC or a relay on boss itself
    (MAIL_ACCOUNT: test_tenant_boundaries), and may not disable the domain
    while boss is in it (DomainItem.on_put: `outranking`).  But the domain's
    own BCC / relay settings -- which Postfix applies to every address of the
    domain without a setting of its own (recipient_bcc_maps_domain,
    sender_bcc_maps_domain, sender_dependent_relayhost_maps) -- were the
    tenant's to set: a copy of all of the global admin's mail, or all of its
    outgoing mail through a host of the tenant's choosing."""
    assert factory.entry(factory.tree.user("boss@own.test")).get("userRecipientBccAddress") == []
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", params)
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


def test_domain_wide_bcc_is_still_the_tenants_where_nobody_is_above_it(world, api, factory):
    """Control: in a domain without accounts above it, the tenant keeps its BCC."""
    factory.domain("mine.test")
    factory.user("someone@mine.test", PW)
    factory.dir.modify(factory.tree.domain("mine.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    r = world["tenant"].put("/api/domain/mine.test", {"recipientBcc": THIEF})
    assert r.status_code == 200, r.text


# == FINDING A2: the same through the domain's policies ==============================================

DOMAIN_POLICIES = [
    ("POST", "/api/throttle/{d}/outbound", {"max_msgs": "1", "period": "86400"}),
    ("POST", "/api/wblist/inbound/blacklist/{d}", {"addresses": "@."}),
]


@pytest.mark.parametrize("spelling", ["own.test", "OWN.TEST."])
@pytest.mark.parametrize("method, path, params", DOMAIN_POLICIES, ids=["throttle", "blacklist"])
def test_domain_policies_spare_the_accounts_above_the_tenant(world, settings, method, path, params, spelling):
    """test_attack_findings refuses the tenant a throttle of one mail a day or
    an inbound blacklist of everyone (`@.`) on boss@own.test (a global
    admin): "it cuts it off just as well".  The same on the domain (iRedAPD
    and Amavisd apply @own.test's settings to every address of it without
    its own) cuts boss off all the same, and is the tenant's to set."""
    before = policy_rows(settings)
    r = world["tenant"].request(method, path.format(d=spelling), params)
    assert r.status_code == 403, r.text
    assert policy_rows(settings) == before


@pytest.mark.parametrize("method, path, params", [
    *DOMAIN_POLICIES, ("PUT", "/api/spampolicy/domain/{d}", {"bypass_spam_checks": "yes"})],
    ids=["throttle", "blacklist", "spampolicy"])
def test_domain_policies_are_still_the_tenants_where_nobody_is_above_it(world, factory, settings, method, path,
                                                                        params):
    """Control: mine.test holds no address above the tenant."""
    factory.domain("mine.test")
    factory.user("someone@mine.test", PW)
    factory.dir.modify(factory.tree.domain("mine.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    before = policy_rows(settings)
    r = world["tenant"].request(method, path.format(d="mine.test"), params)
    assert r.status_code == 200, r.text
    assert policy_rows(settings) != before


def test_the_domains_spam_policy_spares_the_accounts_above_the_tenant(world, settings):
    before = policy_rows(settings)
    for method in ("PUT", "DELETE"):
        r = world["tenant"].request(method, "/api/spampolicy/domain/own.test",
                                    {"bypass_spam_checks": "yes"} if method == "PUT" else None)
        assert r.status_code == 403 and "boss@own.test" in r.json["reason"], r.text
        assert policy_rows(settings) == before


# == held: per-user policies of an admin above by other spellings; locked policy tabs ==============

USER_POLICIES = [
    ("POST", "/api/throttle/{m}/outbound", {"max_msgs": "1", "period": "86400"}),
    ("POST", "/api/wblist/inbound/blacklist/{m}", {"addresses": "@."}),
    ("PUT", "/api/spampolicy/user/{m}", {"bypass_spam_checks": "no"}),
    ("POST", "/api/greylisting/{m}", {"status": "enable"}),
]


@pytest.mark.parametrize("spelling", ["BOSS@OWN.TEST", "boss@own.test.", "Boss@Own.Test."])
@pytest.mark.parametrize("method, path, params", USER_POLICIES, ids=["throttle", "blacklist", "spampolicy",
                                                                    "greylisting"])
def test_user_policies_of_an_admin_above_by_any_spelling(world, settings, method, path, params, spelling):
    """Held: the per-user refusal (test_attack_findings) by other spellings."""
    before = policy_rows(settings)
    r = world["tenant"].request(method, path.format(m=spelling), params)
    assert r.status_code in (400, 403), r.text
    assert policy_rows(settings) == before


LOCKED_POLICIES = [
    ("POST", "/api/throttle/{a}/outbound", {"max_msgs": "5", "period": "3600"}),
    ("DELETE", "/api/throttle/{a}/outbound", None),
    ("POST", "/api/wblist/inbound/whitelist/{a}", {"addresses": "@."}),
    ("PUT", "/api/wblist/inbound/whitelist/{a}", {"addresses": "@."}),
    ("PUT", "/api/spampolicy/{kind}/{a}", {"bypass_spam_checks": "yes"}),
    ("DELETE", "/api/spampolicy/{kind}/{a}", None),
    ("POST", "/api/greylisting/{a}", {"status": "disable"}),
    ("POST", "/api/greylisting/{a}/whitelists", {"addWhitelistSenders": "@example.net"}),
]


@pytest.mark.parametrize("account", ["own.test", "plain@own.test", "PLAIN@OWN.TEST."])
def test_locked_policy_tabs_hold_by_every_route(world, api, settings, account):
    """Held: with the four tabs locked by the global admin, no policy route takes a tenant's change."""
    tabs = "throttle,wblist,spampolicy,greylisting"
    assert api.put("/api/domain/own.test", {"disableDomainProfile": tabs, "disableUserProfile": tabs}).status_code \
        == 200
    before = policy_rows(settings)
    kind = "user" if "@" in account else "domain"
    for method, path, params in LOCKED_POLICIES:
        r = world["tenant"].request(method, path.format(a=account, kind=kind), params)
        assert r.status_code in (403, 404), (method, path, r.text)
        assert policy_rows(settings) == before, (method, path)


# == FINDING C: the operator's alias at a standalone admin's address, reached through the domain ======

@pytest.fixture
def operators_alias(world, api, factory):
    """mine.test: the tenant's domain, no mail user above it.  gboss@mine.test
    is a standalone global admin; the operator's alias there takes its mail
    (to someone@other.test) -- the case of test_tenant_reach's FINDING 2."""
    factory.domain("mine.test")
    factory.user("box@mine.test", PW)
    factory.dir.modify(factory.tree.domain("mine.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    factory.global_admin("gboss@mine.test", "G0d#secret-pw")
    assert api.post("/api/alias/gboss@mine.test", {"members": "someone@other.test"}).status_code == 201
    assert world["tenant"].put("/api/alias/gboss@mine.test", {"accountStatus": "disabled"}).status_code == 403
    return "gboss@mine.test"


@pytest.mark.parametrize("params", [{"accountStatus": "disabled"}, {"recipientBcc": THIEF}],
                         ids=["disable the domain", "domain recipientBcc"])
def test_a_tenant_cannot_reach_an_admins_alias_through_its_domain(world, factory, operators_alias, params):
    """The tenant may not disable (or change) the alias at gboss@mine.test
    (403 since 6d7015d), but disabling mine.test disables it with the rest
    (accountStatus of a domain is refused only for *mail users* above the
    caller: Access.outranking), and the domain's recipientBcc copies its mail."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/mine.test", params)
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


def test_a_catch_all_takes_no_mail_of_a_standalone_admin(world, factory):
    """test_attack_findings refuses a user, alias, list or shadow address at
    gboss@own.test (a standalone global admin, no account at the address):
    "it gives the tenant the operator's mail".  A catch-all of own.test
    gives it the same mail (Postfix: no account at gboss@own.test, so
    @own.test's catch-all receives it)."""
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", {"catchall": "plain@own.test"})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


def test_a_reseller_cannot_delete_an_admins_alias_with_its_domain(world, factory, app, settings, operators_alias):
    """DELETE /api/domain/mine.test by a reseller managing it: DELETE_DOMAIN
    refuses a domain holding *mail users* above the caller, not an alias at
    an admin's address -- which DELETE /api/alias/gboss@mine.test may not delete."""
    reseller = reseller_client(factory, app, settings)
    factory.dir.modify(factory.tree.domain("mine.test"), {"domainAdmin": [("MODIFY_ADD", [RESELLER[0]])]})
    assert reseller.delete("/api/alias/gboss@mine.test").status_code == 403
    before = snapshot(factory)
    r = reseller.delete("/api/domain/mine.test")
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


def test_an_admin_at_an_alias_domain_address_is_above_the_tenant_in_the_target_domain(world, api, factory):
    """own.test has the alias domain twin.test (Postfix delivers x@twin.test to
    x@own.test).  The operator makes a standalone global admin gboss@twin.test:
    its mail is gboss@own.test's.  The tenant may not create an account at an
    admin's address (MAIL_ACCOUNT), but gboss@own.test is not one by spelling:
    an alias there took the global admin's mail, until MAIL_ACCOUNT read the
    rights of the address's twins in the alias domains too.  (Adding twin.test *after*
    the admin exists is refused: DomainItem._check_admin_names.)"""
    assert api.put("/api/domain/own.test", {"addAliasDomain": "twin.test"}).status_code == 200
    factory.global_admin("gboss@twin.test", "G0d#secret-pw")
    assert world["tenant"].put("/api/domain/own.test", {"addAliasDomain": "twin2.test"}).status_code == 200
    before = snapshot(factory)
    for path, params in (("/api/alias/gboss@own.test", {"members": "plain@own.test"}),
                         ("/api/user/gboss@own.test", {"password": "N3w#secret-pw"})):
        r = world["tenant"].post(path, params)
        assert r.status_code == 403, (path, r.text)
        assert snapshot(factory) == before, path
    r = world["tenant"].put("/api/user/plain@own.test", {"addAlias": "gboss@own.test"})
    assert r.status_code in (403, 409), r.text
    assert snapshot(factory) == before


# == FINDING B: a line break in a URL's address or domain was a 500 ===================================

# Body parameters refuse control characters (400 INVALID_PARAMETER); the URL's
# {mail}, {domain} and {new_mail} did not: Python's `$` matches before a final
# "\n", so validators.domain_name took "x.test\n" ("x.test\n." once its dot is
# stripped) and validators.email took "gboss\n@own.test"; the LDIF template
# then raised ValueError ("template value ... contains a line break"): a 500
# for any admin that can create there (a tenant in its own domain).  A rename
# (change_email) was not refused at all: it answered 200 and stored
# mail=plain2\n@own.test (and that DN), on MOCK_SYNC and on slapd alike.

URL_LINE_BREAKS = [
    ("reseller", "/api/domain/fresh.test%0A.", {}),
    ("reseller", "/api/domain/mail.localhost%0A.", {}),
    ("global", "/api/domain/fresh.test%0A.", {}),
    ("tenant", "/api/user/gboss%0A@own.test", {"password": "N3w#secret-pw"}),
    ("tenant", "/api/alias/gboss%0A@own.test", {"members": "plain@own.test"}),
    ("tenant", "/api/maillist/gboss%0A@own.test", {}),
    ("tenant", "/api/user/plain@own.test/change_email/plain2%0A@own.test", {}),
    ("tenant", "/api/alias/al@own.test/change_email/al2%0A@own.test", {}),
]


@pytest.mark.parametrize("who, path, params", URL_LINE_BREAKS, ids=[f"{w} {p}" for w, p, _ in URL_LINE_BREAKS])
def test_a_line_break_in_a_url_address_is_400_not_500(world, factory, app, settings, who, path, params):
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    callers = {"tenant": world["tenant"], "global": world["global"]}
    if who == "reseller":
        callers["reseller"] = reseller_client(factory, app, settings)
    assert world["tenant"].post("/api/alias/al@own.test", {"members": "plain@own.test"}).status_code == 201
    before = snapshot(factory)
    r = callers[who].post(path, params)
    assert r.status_code == 400, r.text
    assert snapshot(factory) == before


# == held: line breaks in body parameters ============================================================

@pytest.mark.parametrize("name", ["mail.localhost\n.", "other.test\n.", "own.test\n."],
                         ids=["under .localhost", "another tenant's domain", "its own domain"])
def test_an_alias_domain_with_a_line_break_is_400(world, factory, app, settings, name):
    reseller = reseller_client(factory, app, settings)
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", {"addAliasDomain": name})
    assert r.status_code == 400, r.text
    for caller in (reseller, world["global"]):
        r = caller.post("/api/domain/ok.test", {"aliasDomains": name})
        assert r.status_code == 400, r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("params", [
    {"addAlias": "gboss\n@own.test"}, {"aliases": "x\n@own.test"}, {"forwarding": "y\n@own.test"},
    {"addAlias": "gboss@own.test\n."}])
def test_an_address_with_a_line_break_is_400(world, factory, params):
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    before = snapshot(factory)
    r = world["tenant"].put("/api/user/plain@own.test", params)
    assert r.status_code == 400, r.text
    assert snapshot(factory) == before


# == held: the first round's fixes under other spellings ============================================

@pytest.mark.parametrize("spelling", ["GBOSS@OWN.TEST", "gboss@own.test.", "GBoss@Own.Test.",
                                      "%20gboss@own.test%20"])
@pytest.mark.parametrize("kind", ["alias", "maillist"])
def test_an_alias_at_an_admins_address_by_any_spelling(world, api, factory, kind, spelling):
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    assert api.post(f"/api/{kind}/gboss@own.test", {"members": "someone@other.test"}).status_code == 201
    before = snapshot(factory)
    tenant = world["tenant"]
    for method, path, params in (("PUT", f"/api/{kind}/{spelling}", {"members": "plain@own.test"}),
                                 ("POST", f"/api/{kind}/{spelling}/change_email/moved@own.test", {}),
                                 ("DELETE", f"/api/{kind}/{spelling}", None)):
        r = tenant.request(method, path, params)
        assert r.status_code in (400, 403), (method, path, r.text)
        assert snapshot(factory) == before, path
    assert holders_of(factory, "gboss@own.test") != []


@pytest.mark.parametrize("target", ["GBOSS@OWN.TEST.", "gboss@own.test"])
def test_a_new_account_at_an_admins_address_by_any_spelling(world, factory, target):
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    before = snapshot(factory)
    tenant = world["tenant"]
    for path, params in ((f"/api/alias/{target}", {"members": "plain@own.test"}),
                         (f"/api/maillist/{target}", {}),
                         (f"/api/user/{target}", {"password": "N3w#secret-pw"})):
        assert tenant.post(path, params).status_code == 403, path
    for params in ({"addAlias": target}, {"aliases": target}, {"forwarding": target}):
        r = tenant.put("/api/user/plain@own.test", params)
        if "forwarding" in params:
            continue    # forwarding to an address is not holding it
        assert r.status_code in (400, 403, 409), (params, r.text)
    assert holders_of(factory, "gboss@own.test") == []
    snap = snapshot(factory)
    plain = factory.tree.user("plain@own.test").lower()
    assert {k: v for k, v in snap.items() if k != plain} == {k: v for k, v in before.items() if k != plain}


@pytest.mark.parametrize("mail", ["SOMEONE@OTHER.TEST.", "someone@other.test.", "Root@Admins.Test",
                                  "someone@xn--nxasmq6b.test"])
def test_add_admin_outside_by_any_spelling(world, factory, mail):
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": mail})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("mail", ["COADMIN@OWN.TEST.", "Coadmin@Own.Test", " coadmin@own.test "])
def test_remove_admin_above_by_any_spelling(world, factory, mail):
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/admins/own.test", {"removeAdmin": mail})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("name", ["LOCALHOST.LOCALDOMAIN.", "Mail.LocalHost.", "mail.\uff4c\uff4f\uff43\uff41\uff4c"
                                  "\uff48\uff4f\uff53\uff54", "LOCALHOST6.LOCALDOMAIN6", "a.b.localhost"])
def test_the_machines_names_by_any_spelling(world, factory, app, settings, name):
    reseller = reseller_client(factory, app, settings)
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", {"addAliasDomain": name})
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_DOMAIN_NAME", r.text
    r = reseller.post("/api/domain/new.test", {"aliasDomains": name})
    assert r.status_code == 400, r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("domain", ["OWN.TEST", "own.test.", "Own.Test."])
def test_bulk_update_by_any_spelling_skips_the_accounts_above(world, factory, domain):
    r = world["tenant"].put(f"/api/users/{domain}", {"password": "Bulk#passw0rd"})
    assert r.status_code == 200, r.text
    for mail in ("boss@own.test", "coadmin@own.test", "stale@own.test"):
        assert passwords.verify_password(PW, factory.entry(factory.tree.user(mail)).get("userPassword")[0]), mail


@pytest.mark.parametrize("domain", ["own.test", "OWN.TEST."])
def test_bulk_disable_by_any_spelling_spares_the_accounts_above(world, factory, domain):
    r = world["tenant"].put(f"/api/users/{domain}", {"accountStatus": "inactive"})
    assert r.status_code == 200, r.text
    for mail in ("boss@own.test", "coadmin@own.test", "stale@own.test"):
        assert factory.entry(factory.tree.user(mail)).get("accountStatus") == ["active"], mail


@pytest.mark.parametrize("status", ["disabled", "Disabled", "inactive", "DISABLE"])
def test_disabling_a_domain_holding_an_admin_above_by_any_spelling(world, factory, status):
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/OWN.TEST.", {"accountStatus": status})
    assert r.status_code in (400, 403), r.text
    assert snapshot(factory) == before


@pytest.mark.parametrize("value", [" .. ", "..\n", "./", "a/..", "%2e%2e"])
def test_mailbox_folder_other_steps(world, factory, value):
    before = snapshot(factory)
    r = world["tenant"].put("/api/user/plain@own.test", {"mailboxFolder": value})
    if r.status_code == 200:
        stored = factory.entry(factory.tree.user("plain@own.test")).get("mailboxFolder")
        assert stored not in (["."], [".."]) and all("/" not in v and "\n" not in v for v in stored), stored
    else:
        assert r.status_code == 400, r.text
        assert snapshot(factory) == before


def test_default_quota_over_max_at_create_by_a_reseller(world, api, factory, app, settings):
    """A reseller (may create domains) cannot set maxUserQuota; its new domain's
    defaultQuota is then unlimited by it, and its own quota ceiling holds."""
    reseller = reseller_client(factory, app, settings)
    before = snapshot(factory)
    r = reseller.post("/api/domain/fresh.test", {"defaultQuota": "200", "maxUserQuota": "100"})
    assert r.status_code in (400, 403), r.text
    assert snapshot(factory) == before


# == held: LDIF export as a tenant ==================================================================

def test_a_tenants_ldif_export_holds_no_hash_of_an_account_above(world, api, factory, directory, iredadmin,
                                                                tmp_path):
    """With LDIF_EXPORT_PASSWORDS=always a normal admin gets hashes, but not
    those of the accounts above it (boss, coadmin, stale) by any route."""
    tenant = client_for(directory, iredadmin, tmp_path, TENANT, ldif_export_passwords="always")
    r = tenant.get("/api/ldif/domain/own.test")
    assert r.status_code == 200, r.text
    hashed = sorted(rec.dn.split(",")[0].lower() for rec in records(r.content) if "userPassword" in rec.attrs())
    assert hashed == ["mail=peer@own.test", "mail=plain@own.test"], hashed
    for spelling in ("boss@own.test", "BOSS@OWN.TEST.", "coadmin@own.test", "Stale@Own.Test"):
        r = tenant.get(f"/api/ldif/user/{spelling}")
        assert r.status_code == 200, r.text
        assert not any("userPassword" in rec.attrs() for rec in records(r.content)), spelling
    for path in ("/api/ldif/user/Peer@Own.Test.",):
        r = tenant.get(path)
        assert any("userPassword" in rec.attrs() for rec in records(r.content)), path
    for path in ("/api/ldif/admin/root@admins.test", "/api/ldif/admin/boss@own.test",
                 f"/api/ldif/admin/{TENANT[0]}", "/api/ldif/domain/other.test", "/api/ldif/domain/OTHER.TEST.",
                 "/api/ldif/user/someone@other.test", "/api/ldif/catchall/other.test",
                 "/api/ldif/domain/admins.test"):
        assert tenant.get(path).status_code in (403, 404), path


def test_a_tenants_ldif_export_hides_other_tenants_lists(world, api, factory):
    assert api.post("/api/maillist/theirs@other.test", {"members": "coadmin@own.test"}).status_code == 201
    assert api.post("/api/alias/fwd@other.test", {"members": "coadmin@own.test"}).status_code == 201
    for path in ("/api/ldif/domain/own.test", "/api/ldif/user/coadmin@own.test"):
        r = world["tenant"].get(path)
        assert r.status_code == 200, r.text
        assert b"theirs@other.test" not in r.content and b"fwd@other.test" not in r.content, r.content


def test_a_limited_token_exports_only_its_domains(world, api, app, settings):
    r = api.post("/api/tokens", {"admin": "coadmin@own.test", "domains": "own.test"})
    coadmin = BearerClient(app, settings, r.json["_data"]["token"])
    for path in ("/api/ldif/domain/other.test", "/api/ldif/user/someone@other.test",
                 "/api/ldif/admin/coadmin@own.test", "/api/ldif/catchall/other.test"):
        assert coadmin.get(path).status_code == 403, path
    r = api.post("/api/tokens", {"domains": "own.test"})
    limited_global = BearerClient(app, settings, r.json["_data"]["token"])
    for path in ("/api/ldif/domain/other.test", "/api/ldif/admin/root@admins.test",
                 "/api/ldif/admin/boss@own.test"):
        assert limited_global.get(path).status_code == 403, path
    r = limited_global.get("/api/ldif/domain/own.test")
    assert r.status_code == 200 and b"userPassword" not in r.content, r.content[:300]


def test_no_ldif_import_over_http(world, factory):
    """Import is the command line's only (iredldap import): no method writes through /api/ldif."""
    before = snapshot(factory)
    body = "dn: mail=x@own.test,ou=Users,domainName=own.test,o=domains,dc=example,dc=com\nobjectClass: mailUser\n"
    for caller in (world["tenant"], world["global"]):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/api/ldif/domain/own.test", "/api/ldif/user/x@own.test", "/api/ldif", "/api/ldif/import"):
                r = caller.request(method, path, None, headers={"Content-Type": "text/ldif"})
                assert r.status_code in (404, 405), (method, path, r.status_code)
                r = caller.client.simulate_request(method, path, body=body, headers={"Content-Type": "text/ldif"})
                assert r.status_code in (401, 404, 405), (method, path, r.status_code)
    assert snapshot(factory) == before


# == held: API tokens ===============================================================================

@pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")     # (the FOO and put it sends)
def test_a_read_only_token_writes_by_no_method(world, api, factory, app, settings):
    r = api.post("/api/tokens", {"admin": TENANT[0], "read_only": "yes"})
    ro = BearerClient(app, settings, r.json["_data"]["token"])
    before = snapshot(factory)
    for method in ("POST", "PUT", "DELETE", "PATCH", "FOO", "put"):
        r = ro.request(method, "/api/user/plain@own.test", {"name": "ro-was-here"},
                       headers={"X-HTTP-Method-Override": "GET", "X-Method-Override": "GET"})
        assert r.status_code in (403, 405), (method, r.text)
        assert snapshot(factory) == before, method
    for method in ("HEAD", "GET", "OPTIONS"):
        r = ro.request(method, "/api/user/plain@own.test", {"name": "ro-was-here"},
                       headers={"X-HTTP-Method-Override": "PUT"})
        assert snapshot(factory) == before, method
    r = ro.request("GET", "/api/user/plain@own.test", query={"name": "ro-was-here"},
                   headers={"X-HTTP-Method-Override": "PUT"})
    assert snapshot(factory) == before


def test_a_token_ends_with_its_admin(world, api, factory, app, settings):
    r = api.post("/api/tokens", {"admin": TENANT[0]})
    token = BearerClient(app, settings, r.json["_data"]["token"])
    assert token.get("/api/user/plain@own.test").status_code == 200
    assert api.delete(f"/api/admin/{TENANT[0]}").status_code == 200
    before = snapshot(factory)
    assert token.get("/api/user/plain@own.test").status_code == 401
    assert token.put("/api/user/plain@own.test", {"name": "ghost"}).status_code == 401
    assert snapshot(factory) == before
    # A new admin at the same address does not inherit the old token.
    factory.normal_admin(TENANT[0], TENANT[1], domains=["own.test"])
    assert token.put("/api/user/plain@own.test", {"name": "ghost"}).status_code == 401
    assert snapshot(factory)[factory.tree.user("plain@own.test").lower()] == \
        before[factory.tree.user("plain@own.test").lower()]


def test_a_demoted_global_admins_token_is_a_normal_admins(world, api, factory, app, settings):
    factory.global_admin("g2@admins.test", "G2#secret-pw1")
    r = api.post("/api/tokens", {"admin": "g2@admins.test"})
    token = BearerClient(app, settings, r.json["_data"]["token"])
    assert token.get("/api/admins").status_code == 200
    assert api.put("/api/admin/g2@admins.test", {"isGlobalAdmin": "no"}).status_code == 200
    before = snapshot(factory)
    for method, path, params in (("GET", "/api/admins", None), ("GET", "/api/log", None),
                                 ("POST", "/api/tokens", {}), ("PUT", "/api/user/boss@own.test", {"name": "x"}),
                                 ("PUT", "/api/admin/g2@admins.test", {"isGlobalAdmin": "yes"})):
        assert token.request(method, path, params).status_code == 403, path
        assert snapshot(factory) == before, path


def test_a_limited_token_loses_a_domain_its_admin_lost(world, api, factory, app, settings):
    r = api.post("/api/tokens", {"admin": "coadmin@own.test", "domains": "own.test"})
    token = BearerClient(app, settings, r.json["_data"]["token"])
    assert token.put("/api/user/plain@own.test", {"name": "before"}).status_code == 200
    assert api.put("/api/domain/admins/own.test", {"removeAdmin": "coadmin@own.test"}).status_code == 200
    before = snapshot(factory)
    for method, path, params in (("PUT", "/api/user/plain@own.test", {"name": "after"}),
                                 ("GET", "/api/users/own.test", None),
                                 ("GET", "/api/ldif/domain/own.test", None)):
        assert token.request(method, path, params).status_code == 403, path
    assert snapshot(factory) == before
    assert token.get("/api/domains", {"name_only": "yes"}).json["_data"] == []


GLOBAL_ROUTES = [("GET", "/api/tokens", None), ("POST", "/api/tokens", {}),
                 ("POST", "/api/tokens", {"admin": "root@admins.test"}), ("GET", "/api/token/1", None),
                 ("DELETE", "/api/token/1", None), ("GET", "/api/log", None), ("GET", "/api/check", None),
                 ("GET", "/api/check", {"domains": "own.test"}), ("GET", "/api/admins", None),
                 ("POST", "/api/verify_password/user/boss@own.test", {"password": PW}),
                 ("POST", "/api/verify_password/admin/root@admins.test", {"password": "R00t#secret"})]


@pytest.mark.parametrize("method, path, params", GLOBAL_ROUTES, ids=[f"{m} {p} {sorted(b or {})}"
                                                                     for m, p, b in GLOBAL_ROUTES])
def test_global_routes_refuse_a_tenant_and_limited_tokens(world, tenant_token, iredadmin, method, path, params):
    with iredadmin.engine.connect() as conn:
        tokens_before = conn.execute(sa.text("select id, revoked from api_tokens order by id")).all()
    for how, caller in {"session": world["tenant"], **tenant_token}.items():
        r = caller.request(method, path, params if method != "GET" else None,
                           query=params if method == "GET" else None)
        assert r.status_code == 403, (how, r.text)
    with iredadmin.engine.connect() as conn:
        assert conn.execute(sa.text("select id, revoked from api_tokens order by id")).all() == tokens_before


# == held: the audit log holds no secret ============================================================

def test_the_audit_log_holds_no_password_by_any_spelling(world, api, factory, iredadmin):
    secrets = [f"Zz9#leak-{i}-pw" for i in range(14)]
    tenant = world["tenant"]
    tenant.put("/api/user/plain@own.test", json_body={"password": secrets[0]})
    tenant.put("/api/user/plain@own.test", {"password": secrets[1]})
    tenant.put("/api/user/plain@own.test", {"PASSWORD": secrets[2]})
    tenant.put("/api/user/plain@own.test", {"password_hash": "{PLAIN}" + secrets[3]})
    tenant.request("PUT", "/api/user/plain@own.test", None, query={"password": secrets[4]})
    tenant.post("/api/user/new@own.test", {"password": secrets[5], "name": "n"})
    tenant.put("/api/users/own.test", {"password": secrets[6]})
    api.post("/api/admin/x@admins.test", {"password": secrets[7]})
    api.post("/api/verify_password/user/plain@own.test", {"password": secrets[8]})
    tenant.put("/api/user/plain@own.test", json_body={"password": [secrets[9]]})
    tenant.put("/api/user/plain@own.test", json_body={"name": {"password": secrets[10]}})
    tenant.put("/api/user/plain@own.test", {"pw": secrets[11], "name": "y"})
    tenant.put("/api/user/boss@own.test", {"password": secrets[12]})        # refused: 403
    r = api.post("/api/tokens", {"admin": TENANT[0], "name": "n"})
    secrets.append(r.json["_data"]["token"])
    ApiClient(api.client.app, api.settings).post("/api/login", {"username": TENANT[0], "password": secrets[13]})
    rows = every_row(iredadmin.engine)
    text = repr(rows)
    assert "[API]" in text
    for secret in secrets:
        assert secret not in text, (secret, [r for r in rows["log"] if secret in r])
    # Nor may a tenant read the log at all.
    assert tenant.get("/api/log").status_code == 403


# == held: paging and sorting parameters ============================================================

LISTINGS = ["/api/users/own.test", "/api/aliases/own.test", "/api/maillists/own.test", "/api/domains"]
BAD_PAGING = [{"page_size": "0"}, {"page_size": "-1"}, {"page_size": "1001"}, {"page_size": "9" * 40},
              {"page": "0"}, {"page": "-5"}, {"page": "1e3"}, {"page_size": "\uff15"}, {"page_size": "5 "},
              {"sort": "userPassword"}, {"sort": "mailQuota"}, {"order": "sideways"},
              {"page": "2", "cursor": "e30"}, {"page_size": ["5", "6"]}]


@pytest.mark.parametrize("path", LISTINGS)
def test_bad_paging_is_400_for_a_tenant(world, path):
    for params in BAD_PAGING:
        r = world["tenant"].get(path, params)
        assert r.status_code == 400, (params, r.status_code, r.text[:300])


@pytest.mark.parametrize("path", LISTINGS)
def test_a_deep_page_is_empty_not_slow_or_500(world, path):
    r = world["tenant"].get(path, {"page": "1000000", "page_size": "1000"})
    assert r.status_code == 200 and r.json["_data"] == [], r.text[:300]


@pytest.mark.parametrize("search", ["*)(userPassword=*", "*", "\\2a", ")(objectClass=*", "\x00", "other.test"])
def test_search_finds_nothing_of_other_tenants(world, api, search):
    assert api.post("/api/alias/twin@other.test", {"members": "someone@other.test"}).status_code == 201
    for path in LISTINGS:
        r = world["tenant"].get(path, {"search": search})
        assert r.status_code in (200, 400), (path, r.text[:300])
        if r.status_code == 200:
            assert "other.test" not in str(r.json["_data"]) and "userPassword" not in r.text, (path, r.text[:300])


def test_the_log_refuses_bad_paging(api):
    for params in ({"page_size": "0"}, {"page_size": "1001"}, {"page": "0"}, {"page": "-1"},
                   {"from": "2024-13-01"}, {"from": "2025-01-02", "to": "2025-01-01"}, {"sort": "msg"}):
        r = api.get("/api/log", params)
        assert r.status_code == 400, (params, r.text)
    r = api.get("/api/log", {"page": "10000000", "page_size": "1000"})
    assert r.status_code == 200 and r.json["_data"] == [], r.text[:300]


# == held: IDN spellings of the tenant's domain ====================================================

def test_an_admins_address_in_an_idn_domain_by_its_unicode_spelling(world, api, factory):
    from urllib.parse import quote
    factory.domain("xn--bcher-kva.test")
    factory.dir.modify(factory.tree.domain("xn--bcher-kva.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    factory.global_admin("gboss@xn--bcher-kva.test", "G0d#secret-pw")
    assert api.post("/api/alias/gboss@xn--bcher-kva.test", {"members": "someone@other.test"}).status_code == 201
    before = snapshot(factory)
    tenant = world["tenant"]
    for spelling in ("gboss@bücher.test", "GBOSS@BÜCHER.TEST.", "gboss@XN--BCHER-KVA.TEST"):
        url = quote(spelling)
        for method, path, params in (("PUT", f"/api/alias/{url}", {"members": "plain@own.test"}),
                                     ("DELETE", f"/api/alias/{url}", None),
                                     ("POST", f"/api/alias/{url}/change_email/x@xn--bcher-kva.test", {}),
                                     ("POST", f"/api/user/{url}", {"password": "N3w#secret-pw"})):
            r = tenant.request(method, path, params)
            assert r.status_code in (403, 409), (spelling, method, path, r.text)
            assert snapshot(factory) == before, (spelling, method, path)
    # Control: the tenant does reach the domain by its Unicode name.
    assert tenant.post("/api/alias/" + quote("team@bücher.test"), {"members": "plain@own.test"}).status_code == 201
