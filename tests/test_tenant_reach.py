"""A hostile tenant (a normal admin of own.test) and a careless client
against the web layer: URL parts parsed once, rules on routes, the
request's Access, tokens limited to domains, account types declared once.

The sections headed FINDING are attacks that got through (or got a 500 or a
wrong status) until the fix named in their commit; the others are attacks
that held, kept so they keep holding.  Every refusal is checked on what the
directory holds afterwards (and the policy tables, or the mlmmj spool, where
those are attacked).  Runs on MOCK_SYNC and on the real slapd.
"""

from __future__ import annotations

import base64

import pytest

from .support import ApiClient, BearerClient
from .test_attack_findings import holders_of, policy_rows
from .test_tenant_boundaries import PW, RESELLER, TENANT, snapshot, tenant_token, world  # noqa: F401 (fixtures)


def unchanged(factory, settings):
    return snapshot(factory), policy_rows(settings)


# -- FINDING 1: addAdmin told which addresses exist in other domains (403 or 404) --------------

@pytest.mark.parametrize("existing, missing", [
    ("someone@other.test", "nobody@other.test"),      # a mail user of another customer
    ("root@admins.test", "nobody@admins.test"),       # the global admin's login name
    ("ops@admins.test", "nobody2@admins.test"),       # a standalone admin of another customer
], ids=["other tenant's user", "global admin login", "other tenant's admin"])
def test_add_admin_answers_do_not_tell_whether_an_address_exists_elsewhere(world, factory, existing, missing):
    """A tenant probing addAdmin with addresses outside its domains got 403
    for an address that exists and 404 NO_SUCH_ACCOUNT for one that does
    not: it could enumerate other customers' mailboxes and the admins' login
    names (the global admin's included).  The answers must be the same, as
    for list members (test_tenant_boundaries)."""
    factory.normal_admin("ops@admins.test", "0ps#secret-pw", domains=["other.test"])
    before = snapshot(factory)
    answers = []
    for mail in (existing, missing):
        r = world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": mail})
        answers.append((r.status_code, r.json["_msg"], r.json["reason"].replace(mail, "<addr>")))
        assert snapshot(factory) == before, mail
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 403, answers


def test_add_admin_of_a_missing_address_in_its_own_domain_is_still_404(world, factory):
    """Control: inside its own domains the tenant may be told what is missing."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": "nobody@own.test"})
    assert r.status_code == 404 and r.json["_msg"] == "NO_SUCH_ACCOUNT", r.text
    assert snapshot(factory) == before


# -- FINDING 2: an alias or list at the address of an admin above was the tenant's to change -----

GROUP_ATTACKS = [
    ("PUT", "/api/{kind}/{mail}", {"members": "plain@own.test"}),
    ("PUT", "/api/{kind}/{mail}", {"accountStatus": "disabled"}),
    ("POST", "/api/{kind}/{mail}/change_email/moved@own.test", {}),
    ("DELETE", "/api/{kind}/{mail}", None),
]


@pytest.mark.parametrize("kind", ["alias", "maillist"])
@pytest.mark.parametrize("method, path, params", GROUP_ATTACKS,
                         ids=[f"{m} {p.rsplit('/', 1)[-1]} {sorted(b or {})}" for m, p, b in GROUP_ATTACKS])
def test_a_normal_admin_cannot_take_over_an_alias_at_an_admins_address(world, api, factory, kind, method, path,
                                                                      params):
    """gboss@own.test is a standalone global admin; the operator made an
    alias (or list) at that address to get its mail (to someone@other.test).
    A tenant may not *create* an account there (test_attack_findings: it
    would get the operator's mail), but the existing one was changed with the
    domain-only rule (MAIL_DOMAIN): the tenant pointed it at its own mailbox,
    disabled it, renamed it away or deleted it.  Those writes now need
    MAIL_ACCOUNT, as for users."""
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    assert api.post(f"/api/{kind}/gboss@own.test", {"members": "someone@other.test"}).status_code == 201
    before = snapshot(factory)
    r = world["tenant"].request(method, path.format(kind=kind, mail="gboss@own.test"), params)
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before
    assert holders_of(factory, "gboss@own.test") != []


def test_a_normal_admin_still_changes_its_own_aliases(world, api, factory):
    """Control: the fix must stay narrow (an alias at a plain address)."""
    assert api.post("/api/alias/team@own.test", {"members": "someone@other.test"}).status_code == 201
    r = world["tenant"].put("/api/alias/team@own.test", {"members": "plain@own.test"})
    assert r.status_code == 200, r.text


# -- FINDING 3 (low): mailboxFolder took "." and ".." ------------------------------------------

@pytest.mark.parametrize("value", ["..", "."])
def test_mailbox_folder_is_a_folder_name_not_a_path_step(world, factory, value):
    """mailboxFolder is declared as a folder name below the home directory
    ([A-Za-z0-9._-]{1,50}); Dovecot (iRedMail: mail = <format>:~/<mailboxFolder>/)
    would open the home itself or its parent -- the hashed directory shared
    with the domain's other users whose names start alike -- as the mailbox."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/user/plain@own.test", {"mailboxFolder": value})
    assert r.status_code == 400 and r.json.get("param") == "mailboxFolder", r.text
    r = world["tenant"].post("/api/user/new@own.test", {"password": "N3w#secret-pw", "mailboxFolder": value})
    assert r.status_code == 400 and r.json.get("param") == "mailboxFolder", r.text
    assert snapshot(factory) == before


# -- FINDING 6: a cursor decoding to deeply nested JSON was a 500 ---------------------------------

DEEP_CURSOR = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")   # 2000 characters, under cursor's 2048


@pytest.mark.parametrize("path", ["/api/users/own.test", "/api/aliases/own.test", "/api/maillists/own.test",
                                  "/api/domains"])
def test_a_cursor_of_deeply_nested_json_is_400_not_500(world, factory, path):
    """GET <listing>?cursor=<base64 of 1500 '['>: a plain json.loads raises
    RecursionError there, which was a 500 INTERNAL_ERROR for any logged-in
    admin; the cursor is read as request bodies are (model/json_text)."""
    before = snapshot(factory)
    for caller in (world["tenant"], world["global"]):
        r = caller.get(path, {"cursor": DEEP_CURSOR})
        assert r.status_code == 400 and r.json.get("param") == "cursor", r.text
    assert snapshot(factory) == before


# -- FINDING 4 (low/medium): a tenant could host localhost.localdomain -----------------------------

@pytest.mark.parametrize("name", ["localhost.localdomain", "localhost4.localdomain4", "mail.localhost"])
@pytest.mark.parametrize("how", ["alias domain", "new domain"])
def test_a_tenant_cannot_host_the_machines_local_domain(world, factory, app, settings, how, name):
    """`localhost` is refused (one label), but `localhost.localdomain` --
    in iRedMail's Postfix `mydestination` ($myhostname, localhost,
    localhost.localdomain) -- was taken as an alias domain of own.test, or
    as a reseller's new domain.  The same spirit as refusing loopback relays
    (test_a_normal_admin_cannot_relay_to_loopback_by_its_standard_names):
    the tenant's accounts would claim the machine's own local addresses
    (root@, postmaster@localhost.localdomain; the routing consequence is
    Postfix's, not reproduced here)."""
    factory.normal_admin(*RESELLER, settings=["create_new_domains:yes"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    before = snapshot(factory)
    # Nobody hosts it, a global admin neither: Postfix delivers those names locally.
    for caller in (world["tenant"] if how == "alias domain" else reseller, world["global"]):
        if how == "alias domain":
            r = caller.put("/api/domain/own.test", {"addAliasDomain": name})
            param = "aliasDomains"
        else:
            r = caller.post(f"/api/domain/{name}")
            param = "domain"
        assert r.status_code == 400 and r.json["_msg"] == "INVALID_DOMAIN_NAME" and r.json["param"] == param, r.text
        assert snapshot(factory) == before


# -- FINDING 5 (minor, wrong status): a domain as its own alias domain was a 403 -----------------

def test_a_domain_as_its_own_alias_is_400_for_a_tenant_too(world, factory):
    """The global admin gets 400 "own.test is the domain itself"; the tenant
    got 403 NOT_AUTHORIZED "own.test: the domain of admin addresses with
    rights beyond yours" (own.test holds boss@own.test) -- a misleading
    refusal of a plain input error."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/own.test", {"addAliasDomain": "own.test"})
    assert r.status_code == 400 and r.json["param"] == "aliasDomains", r.text
    assert snapshot(factory) == before


# -- controls that held ------------------------------------------------------------------------

def test_changing_email_into_a_full_domain_is_refused(world, api, factory):
    factory.domain("two.test")
    factory.dir.modify(factory.tree.domain("two.test"), {"domainAdmin": [("MODIFY_ADD", [TENANT[0]])]})
    assert api.put("/api/domain/two.test", {"numberOfUsers": "1", "numberOfAliases": "-1",
                                            "numberOfLists": "-1"}).status_code == 200
    assert api.post("/api/user/first@two.test", {"password": "F1rst#secret-pw"}).status_code == 201
    tenant = world["tenant"]
    assert tenant.post("/api/alias/al@own.test", {"members": "plain@own.test"}).status_code == 201
    assert tenant.post("/api/maillist/ml@own.test", {}).status_code == 201
    before = snapshot(factory)
    for path, param in (("/api/user/plain@own.test/change_email/plain@two.test", "numberOfUsers"),
                        ("/api/alias/al@own.test/change_email/al@two.test", "numberOfAliases"),
                        ("/api/maillist/ml@own.test/change_email/ml@two.test", "numberOfLists")):
        r = tenant.post(path)
        assert r.status_code == 403 and r.json["param"] == param, (path, r.text)
        assert snapshot(factory) == before, path


def test_quota_zero_means_unlimited_and_is_refused_under_limits(world, api, factory):
    assert api.put("/api/domain/own.test", {"maxUserQuota": "100"}).status_code == 200
    tenant = world["tenant"]
    before = snapshot(factory)
    assert tenant.put("/api/user/plain@own.test", {"quota": "0"}).status_code == 400
    assert tenant.post("/api/user/q@own.test", {"password": "Qq1#secret-pw", "quota": "0"}).status_code == 400
    assert snapshot(factory) == before
    assert api.put("/api/domain/own.test", {"quota": "1000", "maxUserQuota": "0"}).status_code == 200
    before = snapshot(factory)
    assert tenant.put("/api/user/peer@own.test", {"quota": "0"}).status_code == 400
    assert tenant.post("/api/user/q@own.test", {"password": "Qq1#secret-pw", "quota": "0"}).status_code == 400
    assert snapshot(factory) == before


def test_shadow_addresses_only_in_own_domain_and_its_alias_domains(world, api, factory):
    assert api.put("/api/domain/other.test", {"addAliasDomain": "twin.test"}).status_code == 200
    before = snapshot(factory)
    tenant = world["tenant"]
    for address in ("x@twin.test", "x@TWIN.test.", "x@other.test"):
        for params in ({"addAlias": address}, {"aliases": address}):
            r = tenant.put("/api/user/plain@own.test", params)
            assert r.status_code == 400, (params, r.text)
        assert tenant.post(f"/api/alias/{address}", {"members": "plain@own.test"}).status_code == 403
    for alias_domain in ("other.test", "OTHER.TEST.", "twin.test"):
        assert tenant.put("/api/domain/own.test", {"addAliasDomain": alias_domain}).status_code == 409
    assert snapshot(factory) == before


def test_renames_into_admin_addresses_are_refused(world, factory):
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    factory.normal_admin("ops@own.test", "0ps#secret-pw", domains=["other.test"])
    tenant = world["tenant"]
    assert tenant.post("/api/alias/al@own.test", {"members": "plain@own.test"}).status_code == 201
    assert tenant.post("/api/maillist/ml@own.test", {}).status_code == 201
    before = snapshot(factory)
    for target in ("gboss@own.test", "ops@own.test", "GBOSS@own.test."):
        for kind, mail in (("alias", "al@own.test"), ("maillist", "ml@own.test"), ("user", "plain@own.test")):
            r = tenant.post(f"/api/{kind}/{mail}/change_email/{target}")
            assert r.status_code == 403, (kind, target, r.text)
    assert snapshot(factory) == before


def test_a_limited_token_keeps_body_addresses_inside_its_domains(world, api, factory, app, settings):
    """coadmin@own.test manages own.test and other.test; its token, own.test only."""
    r = api.post("/api/tokens", {"admin": "coadmin@own.test", "domains": "own.test"})
    coadmin = BearerClient(app, settings, r.json["_data"]["token"])
    assert api.post("/api/maillist/list@other.test", {"members": "someone@other.test"}).status_code == 201
    before = unchanged(factory, settings)
    for method, path, params in (
            ("PUT", "/api/domain/admins/own.test", {"addAdmin": "someone@other.test"}),
            ("POST", "/api/maillist/x@own.test", {"members": "someone@other.test"}),
            ("POST", "/api/user/plain@own.test/change_email/plain@other.test", {}),
            ("PUT", "/api/maillist/list@other.test", {"addMember": "plain@own.test"}),
            ("PUT", "/api/user/coadmin@own.test", {"name": "x"}),
            ("POST", "/api/domain/new.test", {})):
        r = coadmin.request(method, path, params)
        assert r.status_code == 403, (path, r.text)
        assert unchanged(factory, settings) == before, path
    assert coadmin.get("/api/domains", {"name_only": "yes"}).json["_data"] == ["own.test"]


GLOBAL_ONLY = [
    ("POST", "/api/user/new1@own.test", {"password": "N3w#secret-pw", "maildir": "/var/vmail/vmail1/other.test/x/"}),
    ("PUT", "/api/users/own.test", {"mtaTransport": "relay:[192.0.2.1]"}),
    ("PUT", "/api/user/plain@own.test", {"mtaTransport": "relay:[192.0.2.1]"}),
    ("PUT", "/api/domain/own.test", {"enableService": "self-service"}),
    ("PUT", "/api/user/plain@own.test", {"isGlobalAdmin": "yes"}),
    ("POST", "/api/domain/fresh.test", {"is_backupmx": "yes", "primarymx": "192.0.2.1"}),
]


@pytest.mark.parametrize("method, path, params", GLOBAL_ONLY, ids=[f"{m} {p} {sorted(b)}" for m, p, b in GLOBAL_ONLY])
def test_global_only_parameters_by_any_name(world, factory, app, settings, method, path, params):
    factory.normal_admin(*RESELLER, domains=["own.test"], settings=["create_new_domains:yes"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    before = snapshot(factory)
    for caller in (world["tenant"], reseller):
        r = caller.request(method, path, params)
        assert r.status_code == 403, (path, r.text)
        assert snapshot(factory) == before


# -- FINDING 2 on subscribable (mlmmj) lists: the same -----------------------------------------

from .test_mlmmj_lists import ml_app, mlapi, spool  # noqa: E402,F401 (fixtures)
from .test_mlmmj_lists import snapshot as ml_snapshot  # noqa: E402

ML_ATTACKS = [
    ("PUT", "/api/ml/gboss@a.test", {"owner": "tenant-box@a.test"}),
    ("PUT", "/api/ml/gboss@a.test", {"accountStatus": "disabled"}),
    ("POST", "/api/ml/gboss@a.test/change_email/moved@a.test", {}),
    ("DELETE", "/api/ml/gboss@a.test", None),
]


@pytest.mark.parametrize("method, path, params", ML_ATTACKS,
                         ids=[f"{m} {p.rsplit('/', 1)[-1]} {sorted(b or {})}" for m, p, b in ML_ATTACKS])
def test_a_normal_admin_cannot_take_over_a_subscribable_list_at_an_admins_address(ml_app, mlapi, settings, factory,
                                                                                 spool, method, path, params):
    """As above, on /api/ml/<mail> (its PUT, DELETE and change_email are MAIL_DOMAIN
    too): a subscribable list at gboss@a.test, a standalone global admin's address."""
    factory.global_admin("gboss@a.test", "G0d#secret-pw")
    assert mlapi.post("/api/ml/gboss@a.test", {"name": "Operator"}).status_code == 201
    factory.normal_admin("tenant@admins.test", "T3nant#secret", domains=["a.test"])
    tenant = ApiClient(ml_app, settings)
    tenant.login("tenant@admins.test", "T3nant#secret")
    before = ml_snapshot(factory, spool)
    r = tenant.request(method, path, params)
    assert r.status_code == 403, r.text
    assert ml_snapshot(factory, spool) == before


# -- control: parallel renames into a domain at its limits (real slapd) ------------------------

from iredldap.directory.connection import LEVEL  # noqa: E402

from .support import parallel  # noqa: E402
from .test_quota_total import racing  # noqa: E402,F401 (fixture: an app of its own on slapd, a global admin)


@pytest.mark.slapd
@pytest.mark.parametrize("limit", ["users", "quota", "aliases", "lists"])
def test_parallel_renames_into_a_domain_stop_at_its_limits(racing, limit):
    """Six accounts of src.test renamed into dst.test at once; dst.test
    holds two (numberOfUsers/Aliases/Lists 2, or 250 MB for 100 MB users)."""
    app, factory, settings, root = racing
    factory.domain("src.test")
    factory.domain("dst.test")
    api = ApiClient(app, settings)
    api.login(*root)
    limits = {"users": {"numberOfUsers": "2"}, "quota": {"quota": "250"}, "aliases": {"numberOfAliases": "2"},
              "lists": {"numberOfLists": "2"}}
    kind, ou = {"users": ("user", "Users"), "quota": ("user", "Users"), "aliases": ("alias", "Aliases"),
                "lists": ("maillist", "Groups")}[limit]
    calls = []
    for i in range(6):
        params = {"password": "Us3r#secret-pw", "quota": "100"} if kind == "user" else {}
        assert api.post(f"/api/{kind}/a{i}@src.test", params).status_code == 201
        calls.append(("POST", f"/api/{kind}/a{i}@src.test/change_email/a{i}@dst.test", {}))
    assert api.put("/api/domain/dst.test", limits[limit]).status_code == 200
    statuses = parallel(app, settings, calls, root, seconds=120)
    assert sorted(statuses)[:2] == [200, 200] and all(s in (400, 403) for s in sorted(statuses)[2:]), statuses
    held = factory.search(factory.tree.container("dst.test", ou), "(objectClass=*)", scope=LEVEL, attrs=("1.1",))
    assert len(held) == 2


def _holders(factory, address):
    from iredldap.directory.connection import SUBTREE
    return [e.dn for e in factory.search(
        factory.tree.domains_dn, "(&(|(objectClass=mailUser)(objectClass=mailAlias)(objectClass=mailList))"
        f"(|(mail={address})(shadowAddress={address})))", scope=SUBTREE, attrs=("1.1",))]


@pytest.mark.slapd
@pytest.mark.parametrize("first, second", [("user1", "user2"), ("user1", "alias"), ("alias", "list"),
                                           ("user1", "create"), ("alias", "addAlias"), ("list", "createalias")])
def test_parallel_renames_and_claims_of_one_address_leave_one_holder(racing, first, second):
    """change_email is not among test_races' claims: renames racing renames,
    creates and per-user aliases for the same new address."""
    app, factory, settings, root = racing
    factory.domain("r.test")
    api = ApiClient(app, settings)
    api.login(*root)
    pw = "Us3r#secret-pw"
    for path, params in (("/api/user/u1@r.test", {"password": pw}), ("/api/user/u2@r.test", {"password": pw}),
                         ("/api/alias/a1@r.test", {}), ("/api/maillist/l1@r.test", {})):
        assert api.post(path, params).status_code == 201
    taken = "taken@r.test"
    claims = {
        "user1": ("POST", f"/api/user/u1@r.test/change_email/{taken}", {}),
        "user2": ("POST", f"/api/user/u2@r.test/change_email/{taken}", {}),
        "alias": ("POST", f"/api/alias/a1@r.test/change_email/{taken}", {}),
        "list": ("POST", f"/api/maillist/l1@r.test/change_email/{taken}", {}),
        "create": ("POST", f"/api/user/{taken}", {"password": pw}),
        "createalias": ("POST", f"/api/alias/{taken}", {}),
        "addAlias": ("PUT", "/api/user/u2@r.test", {"addAlias": taken}),
    }
    statuses = parallel(app, settings, [claims[first], claims[second]], root, seconds=60)
    assert sorted(s < 300 for s in statuses) == [False, True], statuses
    assert len(_holders(factory, taken)) == 1, statuses


# -- a port of other digits than ASCII's ---------------------------------------------------------

@pytest.mark.parametrize("primarymx", ["[192.0.2.1]:\uff12\uff15", "mx.example.net:\u0662\u0665"])
def test_a_backup_mx_port_is_ascii_digits(world, factory, primarymx):
    """Python's int() and \\d take the fullwidth and Arabic-Indic digits; the
    value is stored as sent, and Postfix's transport (relay:[host]:port)
    would not parse it: the domain's mail would stay queued."""
    before = snapshot(factory)
    r = world["global"].post("/api/domain/backup.test", {"is_backupmx": "yes", "primarymx": primarymx})
    assert r.status_code == 400 and r.json["param"] == "primarymx", r.text
    assert snapshot(factory) == before


# -- a default quota over the largest a user may get ---------------------------------------------

def test_a_default_quota_over_the_max_user_quota_is_400(world, api, factory):
    """Every create without a quota of its own would then be refused."""
    assert api.put("/api/domain/own.test", {"maxUserQuota": "100"}).status_code == 200
    before = snapshot(factory)
    for caller in (world["tenant"], api):
        r = caller.put("/api/domain/own.test", {"defaultQuota": "200"})
        assert r.status_code == 400 and r.json["param"] == "defaultQuota", r.text
        assert snapshot(factory) == before
    assert api.put("/api/domain/own.test", {"defaultQuota": "50"}).status_code == 200
    before = snapshot(factory)
    r = api.put("/api/domain/own.test", {"maxUserQuota": "40"})
    assert r.status_code == 400 and r.json["param"] == "maxUserQuota", r.text
    assert snapshot(factory) == before
    r = api.post("/api/domain/fresh.test", {"defaultQuota": "200", "maxUserQuota": "100"})
    assert r.status_code == 400 and r.json["param"] == "defaultQuota", r.text
    assert snapshot(factory) == before
    # Both at once, in order; or no limit (0): fine.
    assert api.put("/api/domain/own.test", {"defaultQuota": "300", "maxUserQuota": "400"}).status_code == 200
    assert api.put("/api/domain/own.test", {"maxUserQuota": "0"}).status_code == 200
    assert world["tenant"].post("/api/user/fresh@own.test", {"password": "Fr3sh#secret-pw"}).status_code == 201
    assert factory.entry(factory.tree.user("fresh@own.test")).get("mailQuota") == [str(300 * 1024 * 1024)]


def test_a_domain_set_so_before_still_takes_other_changes(world, api, factory):
    factory.dir.modify(factory.tree.domain("own.test"),
                       {"accountSetting": [("MODIFY_ADD", ["defaultQuota:200", "maxUserQuota:100"])]})
    assert world["tenant"].put("/api/domain/own.test", {"name": "Own"}).status_code == 200
    assert factory.entry(factory.tree.domain("own.test")).get("cn") == ["Own"]


def test_a_users_own_address_as_its_alias_is_named_so_not_another_accounts(world, factory):
    before = snapshot(factory)
    for params in ({"addAlias": "plain@own.test"}, {"aliases": "PLAIN@own.test."}):
        r = world["tenant"].put("/api/user/plain@own.test", params)
        assert r.status_code == 409 and r.json["param"] == "aliases" and "own address" in r.json["reason"], r.text
        assert snapshot(factory) == before
