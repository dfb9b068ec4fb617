"""Uniqueness and limits under parallel requests, against a real slapd.

Each round starts its requests together (a barrier) and then reads the
directory: exactly one entry holds a contested address or domain name, the
loser left no entry, value or counter change behind, and parallel creates
by a limited admin stop exactly at its limit.
"""

from __future__ import annotations

import threading

import pytest

from iredldap.directory.connection import LEVEL, SUBTREE
from iredldap.directory.tree import f

from .support import ApiClient, Factory, parallel as run_in_parallel

pytestmark = pytest.mark.slapd

PW = "Secr3t#pass"
ROOT = ("root@admins.test", "R00t#secret")
BOSS = ("boss@admins.test", "B0ss#secret")
ROUNDS = 10
JOIN_SECONDS = 120


@pytest.fixture
def env(slapd_directory, settings, iredadmin):
    from iredldap.backends import Backends
    from iredldap.web.app import create_app
    factory = Factory(slapd_directory, settings)
    factory.domain("r.test")
    factory.global_admin(*ROOT)
    app = create_app(settings, Backends(slapd_directory, iredadmin))
    client = ApiClient(app, settings)
    client.login(*ROOT)
    assert client.post("/api/user/owner@r.test", {"password": PW}).status_code == 201
    return app, factory, settings


def parallel(app, settings, calls, login=ROOT) -> list[int]:
    """Run `calls` (method, path, params) at once, each with its own session; their statuses in order."""
    return run_in_parallel(app, settings, calls, login, seconds=JOIN_SECONDS)


# -- one address, two kinds ----------------------------------------------------------

# How each kind claims an address, and which entry then holds it.
CLAIMS = {
    "user": (lambda a: ("POST", f"/api/user/{a}", {"password": PW}), lambda t, a: t.user(a)),
    "alias": (lambda a: ("POST", f"/api/alias/{a}", {}), lambda t, a: t.alias(a)),
    "list": (lambda a: ("POST", f"/api/maillist/{a}", {}), lambda t, a: t.maillist(a)),
    "addAlias": (lambda a: ("PUT", "/api/user/owner@r.test", {"addAlias": a}), lambda t, a: t.user("owner@r.test")),
}


def holders(factory, address):
    return factory.search(factory.tree.domains_dn,
                          f("(&(|(objectClass=mailUser)(objectClass=mailAlias)(objectClass=mailList))"
                            "(|(mail=%s)(shadowAddress=%s)))", address, address), scope=SUBTREE, attrs=("1.1",))


def counters_match(factory, domain="r.test"):
    entry = factory.entry(factory.tree.domain(domain))
    for ou, attr, flt in (("Users", "domainCurrentUserNumber", f("(&(objectClass=mailUser)(!(mail=@%s)))", domain)),
                          ("Aliases", "domainCurrentAliasNumber", "(objectClass=mailAlias)"),
                          ("Groups", "domainCurrentListNumber", "(objectClass=mailList)")):
        have = len(factory.search(factory.tree.container(domain, ou), flt, scope=LEVEL, attrs=("1.1",)))
        assert int(entry.first(attr) or 0) == have, (attr, entry.first(attr), have)


@pytest.mark.parametrize("first,second", [("user", "alias"), ("user", "list"), ("alias", "list"),
                                          ("user", "addAlias"), ("alias", "addAlias"), ("list", "addAlias")])
def test_one_address_one_holder(env, first, second):
    app, factory, settings = env
    tree = factory.tree
    for i in range(ROUNDS):
        address = f"{first.lower()}-{second.lower()}-{i}@r.test"
        statuses = parallel(app, settings, [CLAIMS[first][0](address), CLAIMS[second][0](address)])
        assert sorted(s // 100 for s in statuses) == [2, 4] and 409 in statuses, (i, statuses)
        found = holders(factory, address)
        assert len(found) == 1, (i, statuses, [e.dn for e in found])
        winner, loser = (first, second) if statuses[0] < 400 else (second, first)
        assert found[0].dn.lower() == CLAIMS[winner][1](tree, address).lower()
        if loser == "addAlias":
            assert not factory.entry(tree.user("owner@r.test")).has_value("shadowAddress", address)
        else:
            assert factory.entry(CLAIMS[loser][1](tree, address)) is None
    counters_match(factory)


def test_one_address_two_users_adding_it(env):
    app, factory, settings = env
    client = ApiClient(app, settings)
    client.login(*ROOT)
    assert client.post("/api/user/other@r.test", {"password": PW}).status_code == 201
    for i in range(ROUNDS):
        address = f"shared-{i}@r.test"
        statuses = parallel(app, settings, [("PUT", "/api/user/owner@r.test", {"addAlias": address}),
                                            ("PUT", "/api/user/other@r.test", {"addAlias": address})])
        assert sorted(statuses) == [200, 409], (i, statuses)
        assert len(holders(factory, address)) == 1


# -- one domain name, as a domain or an alias domain ------------------------------------------

def test_new_domain_against_a_tenants_alias_domain(env):
    app, factory, settings = env
    factory.domain("home.test")
    factory.normal_admin(*BOSS, domains=["home.test"])
    client = ApiClient(app, settings)
    client.login(*ROOT)
    assert client.post("/api/user/ann@home.test", {"password": PW}).status_code == 201
    root, boss = ApiClient(app, settings), ApiClient(app, settings)
    root.login(*ROOT)
    boss.login(*BOSS)
    tree = factory.tree
    for i in range(ROUNDS):
        name = f"new{i}.test"
        start = threading.Barrier(2)
        statuses = {}

        def run(who, client, method, path, params):
            start.wait(timeout=JOIN_SECONDS)
            statuses[who] = client.request(method, path, params).status_code

        threads = [threading.Thread(target=run, args=("root", root, "POST", f"/api/domain/{name}", {}), daemon=True),
                   threading.Thread(target=run, args=("boss", boss, "PUT", "/api/domain/home.test",
                                                      {"addAliasDomain": name}), daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_SECONDS)
        assert len(statuses) == 2, "a request did not finish in time"
        assert sorted(s // 100 for s in statuses.values()) == [2, 4] and 409 in statuses.values(), (i, statuses)
        found = factory.search(tree.domains_dn, f("(&(objectClass=mailDomain)(|(domainName=%s)(domainAliasName=%s)))",
                                                  name, name), scope=LEVEL, attrs=("domainName",))
        assert len(found) == 1, (i, statuses, [e.dn for e in found])
        home = factory.entry(tree.domain("home.test"))
        ann = factory.entry(tree.user("ann@home.test"))
        if statuses["root"] == 201:
            assert found[0].dn.lower() == tree.domain(name).lower()
            assert not home.has_value("domainAliasName", name)
            assert not ann.has_value("shadowAddress", f"ann@{name}")
        else:
            assert found[0].dn.lower() == tree.domain("home.test").lower()
            assert home.has_value("domainAliasName", name)
            assert ann.has_value("shadowAddress", f"ann@{name}")
            assert factory.search(tree.domains_dn, f("(domainName=%s)", name), scope=SUBTREE, attrs=("1.1",)) == []
            assert factory.entry(tree.container(name, "Users")) is None


# -- an admin's limits -----------------------------------------------------------------------

def _limited(env, setting):
    app, factory, settings = env
    factory.domain("lim1.test")
    factory.domain("lim2.test")
    factory.normal_admin(*BOSS, domains=["lim1.test", "lim2.test"], settings=[setting])
    return app, factory, settings


def _count(factory, ou, flt, domains=("lim1.test", "lim2.test")):
    return sum(len(factory.search(factory.tree.container(d, ou), flt, scope=LEVEL, attrs=("1.1",))) for d in domains)


@pytest.mark.parametrize("kind,path,params,setting,ou,flt", [
    ("users", "/api/user/u{i}@lim{d}.test", {"password": PW}, "create_max_users:{most}", "Users",
     "(&(objectClass=mailUser)(!(mail=@*)))"),
    ("aliases", "/api/alias/a{i}@lim{d}.test", {}, "create_max_aliases:{most}", "Aliases", "(objectClass=mailAlias)"),
    ("lists", "/api/maillist/l{i}@lim{d}.test", {}, "create_max_lists:{most}", "Groups", "(objectClass=mailList)"),
])
def test_parallel_creates_stop_at_the_admins_limit(env, kind, path, params, setting, ou, flt):
    """Two exist, the limit is five: of ten parallel creates exactly three stay."""
    app, factory, settings = _limited(env, setting.format(most=5))
    boss = ApiClient(app, settings)
    boss.login(*BOSS)
    for i in (100, 101):
        assert boss.post(path.format(i=i, d=1 + i % 2), params).status_code == 201
    statuses = parallel(app, settings, [("POST", path.format(i=i, d=1 + i % 2), params) for i in range(10)],
                        login=BOSS)
    assert _count(factory, ou, flt) == 5, statuses
    assert statuses.count(201) == 3 and statuses.count(403) == 7, statuses
    counters_match(factory, "lim1.test")
    counters_match(factory, "lim2.test")


def test_parallel_creates_stop_at_the_admins_quota(env):
    """350 MB to hand out, 100 MB each: of ten parallel creates exactly three stay."""
    app, factory, settings = _limited(env, "create_max_quota:350")
    calls = [("POST", f"/api/user/q{i}@lim{1 + i % 2}.test", {"password": PW, "quota": "100"}) for i in range(10)]
    statuses = parallel(app, settings, calls, login=BOSS)
    users = [e for d in ("lim1.test", "lim2.test")
             for e in factory.search(factory.tree.container(d, "Users"), "(objectClass=mailUser)", scope=LEVEL,
                                     attrs=("mailQuota",))]
    assert len(users) == 3, statuses
    assert sum(int(e.first("mailQuota")) for e in users) == 300 * 1024 * 1024
    assert statuses.count(201) == 3 and statuses.count(403) == 7, statuses
    counters_match(factory, "lim1.test")
    counters_match(factory, "lim2.test")


def test_parallel_domain_creates_stop_at_max_domains(env):
    app, factory, settings = env
    factory.domain("mine.test")
    factory.normal_admin(*BOSS, domains=["mine.test"], settings=["create_new_domains:yes", "create_max_domains:4"])
    statuses = parallel(app, settings, [("POST", f"/api/domain/d{i}.test", {}) for i in range(10)], login=BOSS)
    managed = factory.search(factory.tree.domains_dn, f("(&(objectClass=mailDomain)(domainAdmin=%s))", BOSS[0]),
                             scope=LEVEL, attrs=("domainName",))
    assert len(managed) == 4, statuses
    assert statuses.count(201) == 3 and statuses.count(403) == 7, statuses
    created = {f"d{i}.test" for i in range(10)}
    # A loser's domain left nothing behind, not even a container.
    assert len([e for e in factory.search(factory.tree.domains_dn, "(objectClass=mailDomain)", scope=LEVEL,
                                          attrs=("domainName",)) if e.first("domainName") in created]) == 3
    assert len(factory.search(factory.tree.domains_dn, "(objectClass=organizationalUnit)", scope=SUBTREE,
                              attrs=("1.1",))) == 4 * (1 + 1 + 3)  # r.test, mine.test, three new ones


def test_parallel_creates_stop_at_number_of_users(env):
    """The domain's own numberOfUsers: of ten parallel creates exactly the free places stay."""
    app, factory, settings = env
    factory.domain("five.test", numberOfUsers=5)
    statuses = parallel(app, settings, [("POST", f"/api/user/u{i}@five.test", {"password": PW}) for i in range(10)])
    assert _count(factory, "Users", "(objectClass=mailUser)", ("five.test",)) == 5, statuses
    assert statuses.count(201) == 5, statuses
    counters_match(factory, "five.test")


def test_parallel_quota_raises_stop_at_the_admins_quota(env):
    """400 MB to hand out, ten users of 10 MB each raised to 100 MB at once: exactly three get it."""
    app, factory, settings = _limited(env, "create_max_quota:400")
    root = ApiClient(app, settings)
    root.login(*ROOT)
    for i in range(10):
        assert root.post(f"/api/user/q{i}@lim{1 + i % 2}.test", {"password": PW, "quota": "10"}).status_code == 201
    statuses = parallel(app, settings, [("PUT", f"/api/user/q{i}@lim{1 + i % 2}.test", {"quota": "100"})
                                        for i in range(10)], login=BOSS)
    quotas = sorted(int(factory.entry(factory.tree.user(f"q{i}@lim{1 + i % 2}.test")).first("mailQuota")) // 2 ** 20
                    for i in range(10))
    assert quotas == [10] * 7 + [100] * 3, (quotas, statuses)
    assert statuses.count(200) == 3 and statuses.count(403) == 7, statuses
