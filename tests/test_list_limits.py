"""A normal admin's maxAliases and maxLists, and a domain's numberOfAliases
and numberOfLists, held from the domains' counters (domainCurrentAliasNumber;
domainCurrentListNumber, shared by old lists and mlmmj lists): a create of
an alias, a list or an mlmmj list reads no list of the domains' aliases or
lists (no search of an ou=Aliases / ou=Groups container), on MOCK_SYNC and
slapd; parallel creates on slapd stop exactly at the limit with the counters
exact; an undone create gives its place back."""

from __future__ import annotations

import pytest

from iredldap.directory.connection import LEVEL
from iredldap.mlmmj.spool import LocalSpool
from iredldap.model.accounts import account_type

from .conftest import build_app
from .support import ApiClient, Factory, assert_error, parallel, reads_of

SKEL = "/usr/share/mlmmj/text.skel"
ROOT = ("root@admins.test", "R00t#secret")
BOSS = ("boss@admins.test", "B0ss#secret")

# kind -> (route, the container its entries live in, its counter, the admin's setting, its API parameter,
#          the domain's limit)
KINDS = {
    "alias": ("/api/alias/", "Aliases", "domainCurrentAliasNumber", "create_max_aliases", "maxAliases",
              "numberOfAliases"),
    "maillist": ("/api/maillist/", "Groups", "domainCurrentListNumber", "create_max_lists", "maxLists",
                 "numberOfLists"),
    "ml": ("/api/ml/", "Groups", "domainCurrentListNumber", "create_max_lists", "maxLists", "numberOfLists"),
}
# What each counter counts, read by the test itself.
COUNTED = {"domainCurrentAliasNumber": ("Aliases", "(objectClass=mailAlias)"),
           "domainCurrentListNumber": ("Groups", "(objectClass=mailList)")}


def spool_at(tmp_path) -> LocalSpool:
    (tmp_path / "spool").mkdir(mode=0o700)
    return LocalSpool(tmp_path / "spool", tmp_path / "archive", SKEL)


@pytest.fixture
def lists_app(settings, directory, iredadmin, sqlite_templates, tmp_path):
    """The API on both backends, with a local mlmmj spool; the root and two domains."""
    factory = Factory(directory, settings)
    factory.global_admin(*ROOT)
    factory.domain("one.test", aliasDomains=["alias-one.test"])
    factory.domain("two.test")
    return build_app(settings, directory, iredadmin, sqlite_templates, list_spool=spool_at(tmp_path)), factory


def login(app, settings, who) -> ApiClient:
    client = ApiClient(app, settings)
    client.login(*who)
    return client


def real_count(factory, domain: str, counter: str) -> int:
    ou, flt = COUNTED[counter]
    return len(factory.search(factory.tree.container(domain, ou), flt, scope=LEVEL, attrs=("1.1",)))


def assert_counters_exact(factory, *domains: str) -> None:
    for domain in domains:
        entry = factory.entry(factory.tree.domain(domain))
        for counter in COUNTED:
            assert [int(v) for v in entry.get(counter)] == [real_count(factory, domain, counter)], (domain, counter)


def reads_of_containers(directory, monkeypatch, factory, domains):
    """The searches listing the domains' aliases or lists (ou=Aliases, ou=Groups), as `reads_of` counts them."""
    return reads_of(directory, monkeypatch, domains, ("Aliases", "Groups"))


def fill(root: ApiClient, kind: str, domain: str, count: int, prefix: str = "old") -> None:
    for i in range(count):
        assert root.post(f"{KINDS[kind][0]}{prefix}{i}@{domain}").status_code == 201


# -- no list of aliases or lists read -----------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_creates_by_an_admin_with_max_aliases_or_max_lists_read_no_entries(kind, lists_app, settings, directory,
                                                                           monkeypatch):
    app, factory = lists_app
    route, _, counter, setting, param, _ = KINDS[kind]
    root = login(app, settings, ROOT)
    fill(root, kind, "one.test", 3)
    fill(root, kind, "two.test", 2)
    # The other kind of list counts too (both are the domain's lists).
    other = {"ml": "maillist", "maillist": "ml"}.get(kind)
    if other:
        fill(root, other, "two.test", 1, prefix="other")
    domains = ["one.test", "two.test"]
    have = real_count(factory, "one.test", counter) + real_count(factory, "two.test", counter)
    assert have == (6 if other else 5)
    # Over both domains (one search of the domain entries after the write),
    # and alone in one (the increment's value decides: no read after it).
    for managed, room, calls in ((domains, 2, [("n0@one.test", 201), ("n1@two.test", 201), ("n2@one.test", 403),
                                               ("n3@two.test", 403)]),
                                 (["two.test"], 1, [("m0@two.test", 201), ("m1@two.test", 403)])):
        most = sum(real_count(factory, d, counter) for d in managed) + room
        boss = (f"boss{len(managed)}@admins.test", BOSS[1])
        factory.normal_admin(boss[0], boss[1], domains=managed, settings=[f"{setting}:{most}"])
        client = login(app, settings, boss)
        for mail, status in calls:
            with reads_of_containers(directory, monkeypatch, factory, domains) as seen:
                result = client.post(f"{route}{mail}")
            assert result.status_code == status, (mail, result.text)
            written = factory.entry(factory.tree.dn(account_type(kind), mail))
            if status == 403:
                assert_error(result, 403, "EXCEEDED_LIMIT", param)
            assert (written is not None) == (status == 201), mail
            assert dict(seen) == {}, (mail, dict(seen))
    assert_counters_exact(factory, *domains)
    assert real_count(factory, "one.test", counter) == 4
    assert real_count(factory, "two.test", counter) == (4 if other else 3) + 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_creates_in_a_domain_with_number_of_aliases_or_lists_read_no_entries(kind, lists_app, settings, directory,
                                                                             monkeypatch):
    app, factory = lists_app
    route, _, counter, _, _, domain_limit = KINDS[kind]
    root = login(app, settings, ROOT)
    fill(root, kind, "one.test", 3)
    assert root.put("/api/domain/one.test", {domain_limit: "5"}).status_code == 200
    for i, status in ((0, 201), (1, 201), (2, 403)):
        with reads_of_containers(directory, monkeypatch, factory, ["one.test"]) as seen:
            result = root.post(f"{route}n{i}@one.test")
        assert result.status_code == status, result.text
        assert dict(seen) == {}, (i, dict(seen))
    assert_error(result, 403, "EXCEEDED_LIMIT", domain_limit)
    assert real_count(factory, "one.test", counter) == 5
    assert_counters_exact(factory, "one.test")


# -- an undone create gives its place back ---------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_undone_create_leaves_the_counter_exact(kind, lists_app, settings):
    app, factory = lists_app
    route, _, counter, setting, param, domain_limit = KINDS[kind]
    root = login(app, settings, ROOT)
    fill(root, kind, "one.test", 2)
    # Someone holds x@alias-one.test: the twin a new x@one.test would get there.
    assert root.post("/api/user/ann@one.test", {"password": "Us3r#secret1"}).status_code == 201
    assert root.put("/api/user/ann@one.test", {"addAlias": "x@alias-one.test"}).status_code == 200
    # One place left, by the domain's limit and by the admin's.
    assert root.put("/api/domain/one.test", {domain_limit: "3"}).status_code == 200
    factory.normal_admin(*BOSS, domains=["one.test"], settings=[f"{setting}:3"])
    boss = login(app, settings, BOSS)
    # Found after the write (the twin is checked with the address): the
    # entry and its increment are undone.
    result = boss.post(f"{route}x@one.test")
    assert result.status_code == 409, result.text
    assert factory.entry(factory.tree.dn(account_type(kind), "x@one.test")) is None
    assert_counters_exact(factory, "one.test")
    assert real_count(factory, "one.test", counter) == 2
    # The place given back is there for the next one, and only one.
    assert boss.post(f"{route}y@one.test").status_code == 201
    assert_error(boss.post(f"{route}z@one.test"), 403, "EXCEEDED_LIMIT")
    assert_counters_exact(factory, "one.test")
    assert real_count(factory, "one.test", counter) == 3


# -- parallel creates on slapd -------------------------------------------------------------------------

@pytest.fixture
def racing(slapd_directory, settings, iredadmin, sqlite_templates, tmp_path):
    factory = Factory(slapd_directory, settings)
    factory.global_admin(*ROOT)
    for name in ("p1.test", "p2.test"):
        factory.domain(name)
    spool = spool_at(tmp_path)
    return build_app(settings, slapd_directory, iredadmin, sqlite_templates, list_spool=spool), factory, spool


# The creates of each race: aliases, or both kinds of list (they share the limit).
RACES = {"aliases": ("domainCurrentAliasNumber", lambda i: KINDS["alias"][0]),
         "lists": ("domainCurrentListNumber", lambda i: KINDS["ml" if i % 2 else "maillist"][0])}


@pytest.mark.slapd
@pytest.mark.parametrize("race", sorted(RACES))
@pytest.mark.parametrize("limit", ["admin of one domain", "admin of two domains", "domain"])
def test_parallel_creates_stop_at_three(race, limit, racing, settings):
    """maxAliases / maxLists / numberOfAliases / numberOfLists of 3: of eight
    parallel creates exactly three stay, the counters exact."""
    app, factory, spool = racing
    counter, route = RACES[race]
    setting = {"aliases": "create_max_aliases:3", "lists": "create_max_lists:3"}[race]
    domains = ["p1.test", "p2.test"] if limit == "admin of two domains" else ["p1.test"]
    if limit == "domain":
        who = ROOT
        root = login(app, settings, ROOT)
        assert root.put("/api/domain/p1.test", {KINDS["alias" if race == "aliases" else "ml"][5]: "3"}).status_code \
            == 200
    else:
        who = BOSS
        factory.normal_admin(*BOSS, domains=domains, settings=[setting])
    calls = [("POST", f"{route(i)}r{i}@{domains[i % len(domains)]}", {}) for i in range(8)]
    statuses = parallel(app, settings, calls, who, seconds=120)
    assert sorted(statuses) == [201] * 3 + [403] * 5, statuses
    assert sum(real_count(factory, d, counter) for d in domains) == 3
    assert_counters_exact(factory, "p1.test", "p2.test")
    # A loser left no mlmmj list behind.
    made = {mail for (_, path, _), status in zip(calls, statuses) if status == 201 and "/api/ml/" in path
            for mail in [path.rsplit("/", 1)[1]]}
    assert {m for m in (c[1].rsplit("/", 1)[1] for c in calls) if spool.list_dir(m).exists()} == made


# -- a change of address into another domain ----------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_move_into_a_full_domain_is_refused_from_its_counter(kind, lists_app, settings, directory, monkeypatch):
    app, factory = lists_app
    route, _, counter, _, _, domain_limit = KINDS[kind]
    root = login(app, settings, ROOT)
    fill(root, kind, "one.test", 2)
    fill(root, kind, "two.test", 2)
    assert root.put("/api/domain/two.test", {domain_limit: "3"}).status_code == 200
    dn = factory.tree.dn(account_type(kind), "old0@one.test")
    for new, status in (("moved0@two.test", 200), ("moved1@two.test", 403)):
        source = f"old{new[5]}@one.test"
        with reads_of_containers(directory, monkeypatch, factory, ["one.test", "two.test"]) as seen:
            result = root.post(f"{route}{source}/change_email/{new}")
        assert result.status_code == status, result.text
        assert dict(seen) == {}, (new, dict(seen))
        moved = factory.entry(factory.tree.dn(account_type(kind), new))
        assert (moved is not None) == (status == 200)
        assert (factory.entry(factory.tree.dn(account_type(kind), source)) is None) == (status == 200)
    assert_error(result, 403, "EXCEEDED_LIMIT", domain_limit)
    assert factory.entry(dn) is None
    assert (real_count(factory, "one.test", counter), real_count(factory, "two.test", counter)) == (1, 3)
    assert_counters_exact(factory, "one.test", "two.test")
