"""Defects found by attacking the service as a hostile tenant, a careless
client and a racing pair of requests (after issues #10 and #12).

Each test asserts the secure behaviour and fails on the code as reviewed.
Refusals are checked on what the directory and the policy databases hold,
not only on status codes.  Runs on MOCK_SYNC and on the real slapd.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from iredldap.directory.addresses import Addresses
from iredldap.directory.connection import SUBTREE
from iredldap.directory.domains import DomainStore
from iredldap.directory.limits import AdminLimits
from iredldap.directory.users import UserStore

from .support import ApiClient, every_row
from .test_tenant_boundaries import PW, RESELLER, TENANT, snapshot, tenant_token, world  # noqa: F401 (fixtures)


# One engine per database URL, holding no connection between calls (NullPool)
# but keeping its compiled statements: a new engine per call compiled each
# table's SELECT again (a third of the tenant-reach modules' CPU).
_POLICY_ENGINES: dict[str, sa.engine.Engine] = {}


def policy_rows(settings) -> dict:
    """Every row of every table of Amavisd's and iRedAPD's databases."""
    out = {}
    for url in (settings.sql_amavisd_url, settings.sql_iredapd_url):
        engine = _POLICY_ENGINES.get(url)
        if engine is None:
            engine = _POLICY_ENGINES[url] = sa.create_engine(url, poolclass=sa.pool.NullPool)
        out.update({(url, name): found for name, found in every_row(engine).items()})
    return out


def holders_of(factory, address: str) -> list[str]:
    """DNs of the users, lists and aliases that have `address` as mail or shadow address."""
    return sorted(e.dn.lower() for e in factory.search(
        factory.tree.domains_dn,
        f"(&(|(objectClass=mailUser)(objectClass=mailList)(objectClass=mailAlias))"
        f"(|(mail={address})(shadowAddress={address})))", scope=SUBTREE, attrs=("1.1",)))


# -- 1. no way up: taking a domain away from the admins above -------------------------

@pytest.fixture
def reseller(world, factory):
    """A reseller (may create domains) that manages own.test beside the tenant."""
    factory.normal_admin(*RESELLER, domains=["own.test"], settings=["create_new_domains:yes"])
    return RESELLER[0]


@pytest.mark.parametrize("params", [{"removeAdmin": RESELLER[0]}, {"removeAdmin": "coadmin@own.test"},
                                    {"removeAllAdmins": "yes"}], ids=["reseller", "coadmin", "all"])
def test_a_normal_admin_cannot_remove_admins_above_it_from_a_domain(world, tenant_token, reseller, factory, params):
    """The reseller (create_new_domains) and coadmin (also admin of
    other.test) hold rights beyond the tenant's: removing them from
    own.test's domainAdmin takes the domain away from them."""
    before = snapshot(factory)      # each refusal must leave it so (the next one starts from it)
    for how, caller in {"session": world["tenant"], **tenant_token}.items():
        r = caller.put("/api/domain/admins/own.test", params)
        assert r.status_code == 403, (how, r.text)
        assert snapshot(factory) == before, how
    assert {RESELLER[0], "coadmin@own.test"} <= set(factory.entry(factory.tree.domain("own.test")).get("domainAdmin"))


def test_promoting_a_user_does_not_hide_the_admins_removed_beside_it(world, reseller, factory):
    """With addAdmin in the same request, the removals are still checked
    against the domain's admins (not against the promoted user's entry)."""
    before = snapshot(factory)
    r = world["tenant"].put("/api/domain/admins/own.test", {"addAdmin": "plain@own.test", "removeAdmin": RESELLER[0]})
    assert r.status_code == 403, r.text
    assert snapshot(factory) == before
    assert {RESELLER[0], "coadmin@own.test"} <= set(factory.entry(factory.tree.domain("own.test")).get("domainAdmin"))


def test_a_normal_admin_still_removes_its_equals(world, reseller, factory):
    """A control (passes today): the fix for the test above must stay narrow."""
    r = world["tenant"].put("/api/domain/admins/own.test", {"removeAdmin": "peer@own.test"})
    assert r.status_code == 200, r.text
    assert "peer@own.test" not in factory.entry(factory.tree.domain("own.test")).get("domainAdmin")


# -- 2. no way up: disabling the domain locks out the global admin in it ---------------

def test_a_normal_admin_cannot_disable_a_domain_holding_accounts_above_it(world, tenant_token, factory, app, settings):
    """boss@own.test is a global admin: a disabled domain marks it
    domainStatus=disabled and it can no longer log in, exactly what
    PUT /api/user/boss@own.test accountStatus=disabled is refused for."""
    before = snapshot(factory)      # each refusal must leave it so (the next one starts from it)
    for how, caller in {"session": world["tenant"], **tenant_token}.items():
        r = caller.put("/api/domain/own.test", {"accountStatus": "disabled"})
        assert r.status_code == 403, (how, r.text)
        assert snapshot(factory) == before, how
    assert not factory.entry(factory.tree.user("boss@own.test")).get("domainStatus")
    ApiClient(app, settings).login("boss@own.test", PW)


# -- 3. no way across: an address of a standalone global admin ----------------------------

@pytest.mark.parametrize("method, path, params", [
    ("POST", "/api/user/gboss@own.test", {"password": "Ta4en#0ver-pw"}),
    ("POST", "/api/alias/gboss@own.test", {"members": "plain@own.test"}),
    ("POST", "/api/maillist/gboss@own.test", {}),
    ("PUT", "/api/user/plain@own.test", {"addAlias": "gboss@own.test"}),
], ids=["user", "alias", "maillist", "per-user alias"])
def test_a_normal_admin_cannot_take_the_address_of_a_global_admin(world, api, factory, method, path, params):
    """gboss@own.test is a standalone global admin (o=domainAdmins).  Rights
    are counted by address (README "Who may do what"), and renaming into
    the address is refused, but creating a user, alias or list there, or a
    shadow address, gives the tenant the operator's mail (and with a
    mailbox and the `shadowaddress` service, an IMAP login under it)."""
    factory.global_admin("gboss@own.test", "G0d#secret-pw")
    before = snapshot(factory)
    r = world["tenant"].request(method, path, params)
    assert r.status_code in (403, 409), r.text
    assert holders_of(factory, "gboss@own.test") == []
    assert snapshot(factory) == before


def test_an_alias_domain_gives_no_account_the_address_of_an_admin(world, factory):
    """The admins' own addresses live in admins.test (not hosted here).  A
    tenant making admins.test an alias domain of own.test gets
    root@admins.test -- the global admin's address -- as the twin of
    root@own.test: mail to the operator lands in the tenant's mailbox."""
    tenant = world["tenant"]
    tenant.put("/api/domain/own.test", {"addAliasDomain": "admins.test"})
    tenant.post("/api/user/root@own.test", {"password": "Ta4en#0ver-pw"})
    assert holders_of(factory, "root@admins.test") == []
    assert holders_of(factory, TENANT[0]) == []


def test_a_reseller_cannot_host_the_admins_addresses(world, factory, app, settings):
    """The same through a new domain: a reseller creates admins.test (not
    hosted yet) and a user at the global admin's address in it."""
    factory.normal_admin(*RESELLER, settings=["create_new_domains:yes"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    reseller.post("/api/domain/admins.test")
    reseller.post("/api/user/root@admins.test", {"password": "Ta4en#0ver-pw"})
    assert holders_of(factory, "root@admins.test") == []


# -- 4. uniqueness under concurrent requests ---------------------------------------------

def _race(monkeypatch, cls, name: str, key: str, requests: list, *, also: tuple = ()) -> list:
    """Run `requests` (callables) at once, each held after its first
    `cls.name(..., key)` check (key None: any) until all have checked: the
    interleaving two clients get by chance.  Later checks (after the write)
    are not held.  `also`: more (class, method) checks held the same way,
    for requests whose check before the write is another method."""
    barrier = threading.Barrier(len(requests), timeout=5)
    held: list[str] = []
    broken: list[str] = []      # checks that waited in vain: the race did not happen
    lock = threading.Lock()

    def holding(real):
        def checked(self, value, *args, **kwargs):
            result = real(self, value, *args, **kwargs)
            with lock:
                hold = (key is None or value == key) and len(held) < len(requests)
                if hold:
                    held.append(value)
            if hold:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    broken.append(value)
            return result
        return checked

    for target, method in ((cls, name), *also):
        monkeypatch.setattr(target, method, holding(getattr(target, method)))
    results: list = [None] * len(requests)

    def run(i):
        results[i] = requests[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not broken, f"not every request reached the check held ({held}): nothing raced"
    return results


def test_one_address_is_one_account_under_concurrent_creates(world, factory, app, settings, monkeypatch):
    """POST /api/user/dup@own.test and POST /api/alias/dup@own.test at the
    same moment: the address is checked before the write only, both win."""
    one, two = ApiClient(app, settings), ApiClient(app, settings)
    one.login(*TENANT)
    two.login(*TENANT)
    # The alias checks with Addresses.taken; the user with the search for a
    # free mailbox path, which tells whether the address is free too.
    results = _race(monkeypatch, Addresses, "taken", "dup@own.test", [
        lambda: one.post("/api/user/dup@own.test", {"password": "Dup#l1cate-pw"}).status_code,
        lambda: two.post("/api/alias/dup@own.test", {"members": "plain@own.test"}).status_code,
    ], also=((UserStore, "_free_home_directory"),))
    assert len(holders_of(factory, "dup@own.test")) == 1, results
    assert sorted(results) == [201, 409], results


def test_one_alias_domain_name_is_one_domain_under_concurrent_changes(world, api, factory, app, settings, monkeypatch):
    """Two domains adding the same alias domain at the same moment: both
    keep it, and Postfix finds two domains for twin.test."""
    factory.normal_admin("other-admin@admins.test", "0ther#admin-pw", domains=["other.test"])
    other = ApiClient(app, settings)
    other.login("other-admin@admins.test", "0ther#admin-pw")
    results = _race(monkeypatch, DomainStore, "owner_of_name", "twin.test", [
        lambda: world["tenant"].put("/api/domain/own.test", {"addAliasDomain": "twin.test"}).status_code,
        lambda: other.put("/api/domain/other.test", {"addAliasDomain": "twin.test"}).status_code,
    ])
    owners = factory.search(factory.tree.domains_dn, "(&(objectClass=mailDomain)(domainAliasName=twin.test))",
                            scope=SUBTREE, attrs=("domainName",))
    assert len(owners) == 1, (results, [e.dn for e in owners])
    assert sorted(results) == [200, 409], results


def test_an_admins_user_limit_holds_under_concurrent_creates(world, factory, app, settings, monkeypatch):
    """The tenant may have 6 mail users over its domains (create_max_users)
    and has 5: two creates at the same moment both pass the check made
    before the write (the domain's own numberOfUsers is re-counted after
    the write, the admin's limit is not)."""
    factory.dir.modify(factory.tree.admin(TENANT[0]), {"accountSetting": [("MODIFY_ADD", ["create_max_users:6"])]})
    assert factory.users.count("own.test") == 5
    one, two = ApiClient(app, settings), ApiClient(app, settings)
    one.login(*TENANT)
    two.login(*TENANT)
    results = _race(monkeypatch, AdminLimits, "check_users", None, [
        lambda: one.post("/api/user/first@own.test", {"password": "F1rst#user-pw"}).status_code,
        lambda: two.post("/api/user/second@own.test", {"password": "S3cond#user-pw"}).status_code,
    ])
    assert factory.users.count("own.test") == 6, results
    assert sorted(results) == [201, 403], results


# -- 5. no way up: the policies of accounts above -------------------------------------------

@pytest.mark.parametrize("method, path, params", [
    ("POST", "/api/throttle/boss@own.test/outbound", {"max_msgs": "1", "period": "86400"}),
    ("POST", "/api/wblist/inbound/blacklist/boss@own.test", {"addresses": "@."}),
    ("PUT", "/api/spampolicy/user/boss@own.test", {"bypass_spam_checks": "no"}),
    ("POST", "/api/greylisting/boss@own.test", {"status": "enable"}),
], ids=["throttle", "blacklist", "spampolicy", "greylisting"])
def test_a_normal_admin_cannot_change_the_policies_of_a_global_admin(world, settings, method, path, params):
    """boss@own.test is a global admin.  Its password, status and forwarding
    are out of the tenant's reach, but an outbound throttle of one mail a
    day or an inbound blacklist of everyone (`@.`) cuts it off just as well."""
    before = policy_rows(settings)
    r = world["tenant"].request(method, path, params)
    assert r.status_code == 403, r.text
    assert policy_rows(settings) == before


# -- 6. no info about other tenants ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/users/own.test", "/api/ldif/user/plain@own.test",
                                  "/api/ldif/domain/own.test"])
def test_listings_and_exports_do_not_name_other_tenants_lists(world, api, path):
    """GET /api/user/plain@own.test hides memberOfGroup values of lists in
    other customers' domains; the listing and the LDIF exports show them."""
    assert api.post("/api/maillist/secret-project@other.test", {"members": "plain@own.test"}).status_code == 201
    assert "secret-project" not in world["tenant"].get("/api/user/plain@own.test").text
    r = world["tenant"].get(path)
    assert r.status_code == 200, r.text
    assert "secret-project" not in r.text
    assert "other.test" not in r.text


# -- 7. tenant routing values: loopback by its well-known names ----------------------------------

@pytest.mark.parametrize("value", ["smtp:[localhost.localdomain]:10025", "[localhost4.localdomain4]:10026",
                                   "localhost6.localdomain6:10025"])
def test_a_normal_admin_cannot_relay_to_loopback_by_its_standard_names(world, factory, value):
    """`localhost` and `*.localhost` are refused, but RHEL/Rocky's /etc/hosts
    (served as DNS by systemd-resolved, which also synthesizes
    localhost.localdomain) names 127.0.0.1 localhost.localdomain,
    localhost4.localdomain4 and ::1 localhost6.localdomain6: the tenant's
    mail then reaches Amavisd's reinjection port and skips the filter."""
    before = snapshot(factory)
    for path in ("/api/user/plain@own.test", "/api/domain/own.test"):
        r = world["tenant"].put(path, {"outboundRelay": value})
        assert r.status_code == 400 and r.json["param"] == "outboundRelay", (path, r.text)
    assert snapshot(factory) == before


# -- 8. tokens fail closed: a deleted admin's token must not come back -------------------------

@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_the_token_of_a_removed_admin_does_not_work_for_the_next_owner_of_the_address(
        world, api, app, settings, factory, iredadmin, how):
    """ann@own.test, an admin of own.test, has a token for a script.  Ann
    leaves: her account is deleted (or renamed).  Her token is refused --
    until somebody creates ann@own.test again and makes it an admin, when
    the old token (still in Ann's scripts) acts as the new account.  The
    token row was never revoked."""
    from sqlalchemy import select

    from iredldap.db import tables as t
    from .support import BearerClient

    assert api.post("/api/user/ann@own.test", {"password": "Ann#0ld-passw"}).status_code == 201
    assert api.put("/api/domain/admins/own.test", {"addAdmin": "ann@own.test"}).status_code == 200
    r = api.post("/api/tokens", {"admin": "ann@own.test", "name": "ann's script"})
    assert r.status_code == 201, r.text
    old_token = BearerClient(app, settings, r.json["_data"]["token"])
    assert old_token.get("/api/users/own.test").status_code == 200
    if how == "deleted":
        assert api.delete("/api/user/ann@own.test").status_code == 200
    else:
        assert api.post("/api/user/ann@own.test/change_email/ann.left@own.test").status_code == 200
    assert old_token.get("/api/users/own.test").status_code == 401
    # The tenant hires another Ann.
    tenant = world["tenant"]
    assert tenant.post("/api/user/ann@own.test", {"password": "Ann#n3w-passw"}).status_code == 201
    assert tenant.put("/api/domain/admins/own.test", {"addAdmin": "ann@own.test"}).status_code == 200
    revived = old_token.get("/api/users/own.test")
    assert revived.status_code == 401, revived.text
    with iredadmin.engine.connect() as conn:
        rows = conn.execute(select(t.api_tokens.c.revoked).where(t.api_tokens.c.admin == "ann@own.test")).all()
    assert rows and all(row.revoked is not None for row in rows), rows


# -- 9. one mailbox, one account -------------------------------------------------------------------

class _FrozenClock:
    """time for iredldap.model.mailbox only: every mailbox path made in the same second."""

    FIXED = 1_800_000_000.0

    @staticmethod
    def localtime(secs=None):
        import time
        return time.localtime(_FrozenClock.FIXED)

    @staticmethod
    def strftime(fmt, t=None):
        import time
        return time.strftime(fmt, t if t is not None else time.localtime(_FrozenClock.FIXED))

    @staticmethod
    def time():
        return _FrozenClock.FIXED


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_new_user_never_gets_a_mailbox_path_already_in_use(world, factory, iredadmin, monkeypatch, how):
    """The mailbox path is the address plus a timestamp in whole seconds, and
    is not checked against the paths in use: a script that renames (or
    deletes, keeping the mailbox) ann@own.test and creates a new
    ann@own.test within the same second gives the new account the old
    one's maildir -- the new user reads the old mail, and for a deleted
    one the cleanup of the kept mailbox later removes the new user's."""
    from sqlalchemy import select

    from iredldap.db import tables as t

    monkeypatch.setattr("iredldap.model.mailbox.time", _FrozenClock)
    tenant = world["tenant"]
    assert tenant.post("/api/user/ann@own.test", {"password": "Ann#0ld-passw"}).status_code == 201
    old_home = factory.entry(factory.tree.user("ann@own.test")).first("homeDirectory")
    if how == "renamed":
        assert tenant.post("/api/user/ann@own.test/change_email/ann.old@own.test").status_code == 200
    else:
        assert tenant.delete("/api/user/ann@own.test/keep_mailbox_days/30").status_code == 200
    assert tenant.post("/api/user/ann@own.test", {"password": "Ann#n3w-passw"}).status_code == 201
    new_home = factory.entry(factory.tree.user("ann@own.test")).first("homeDirectory")
    in_use = [e.first("homeDirectory") for e in factory.search(
        factory.tree.domains_dn, "(objectClass=mailUser)", scope=SUBTREE, attrs=("homeDirectory",))]
    with iredadmin.engine.connect() as conn:
        kept = [row.maildir for row in conn.execute(select(t.deleted_mailboxes.c.maildir))]
    assert in_use.count(new_home) == 1, (old_home, in_use)
    assert new_home not in kept, (new_home, kept)


# -- 10. limits: handing a domain to a puppet admin and leaving it ------------------------------------

def test_a_reseller_cannot_pass_its_domain_limit_through_a_puppet_admin(world, factory, app, settings):
    """A reseller allowed one domain (create_max_domains:1) creates a.test,
    makes a mailbox of a.test (whose password it chose) an admin of a.test,
    removes itself from a.test's admins -- and may create the next domain,
    which it manages while the puppet manages a.test for it.  Repeat at will."""
    factory.normal_admin(*RESELLER, settings=["create_new_domains:yes", "create_max_domains:1"])
    reseller = ApiClient(app, settings)
    reseller.login(*RESELLER)
    assert reseller.post("/api/domain/a.test").status_code == 201
    assert reseller.post("/api/domain/b.test").status_code == 403      # the limit works
    assert reseller.post("/api/user/puppet@a.test", {"password": "Pupp3t#passw"}).status_code == 201
    reseller.put("/api/domain/admins/a.test", {"addAdmin": "puppet@a.test"})
    reseller.put("/api/domain/admins/a.test", {"removeAdmin": RESELLER[0]})
    reseller.post("/api/domain/b.test")
    assert factory.entry(factory.tree.domain("b.test")) is None


# -- 11. never log passwords: a careless client's misnamed password --------------------------------------

@pytest.mark.parametrize("name", ["pw", "kennwort", "new_pw"])
def test_a_misnamed_password_is_not_written_to_the_audit_log(api, world, iredadmin, name):
    """`{"pw": ...}` is refused as an unknown parameter, and its value is
    written in clear into iRedAdmin's log table (shown on iRedAdmin's log
    page and by GET /api/log): only names that look secret are hidden.  A
    parameter the endpoint does not declare should be named, never shown."""
    from .test_tokens import log_rows

    secret = "Sup3r#Secret-value"
    r = api.put("/api/user/plain@own.test", {name: secret})
    assert r.status_code == 400, r.text
    rows = log_rows(iredadmin)
    assert rows and any(name in row["msg"] for row in rows), rows
    assert not any(secret in str(row) for row in rows), [row["msg"] for row in rows if name in row["msg"]]
