"""The domain's quota total (`domainCurrentQuotaSize`, quota_total.py): the
domain quota and an admin's maxUsers/maxQuota are checked from the domain
entries, without reading the list of the domain's users; the total equals
the sum of the users' `mailQuota` after every path that changes one, also
under parallel requests, after a write cut short and after an import; and
`iredldap check` finds and repairs a wrong one."""

from __future__ import annotations

import json

import pytest

from iredldap.directory.connection import LEVEL, REPLACE
from iredldap.model import passwords

from .support import assert_error, cli_env, parallel, reads_of_users, run_cli
from .test_journal import journal_rows, world  # noqa: F401 - `world`: a slapd stopped at the k-th write

PW = "Secr3t#pass"
MiB = 1024 * 1024
HASH = passwords.hash_password("Us3r#secret", "SSHA")
USERS = "(&(objectClass=mailUser)(!(mail=@*)))"


def real_sum(factory, domain: str) -> int:
    """The users' quotas added up, read by the test itself."""
    users = factory.search(factory.tree.container(domain, "Users"), USERS, scope=LEVEL, attrs=("mailQuota",))
    return sum(int(e.first("mailQuota") or 0) for e in users)


def total(factory, domain: str) -> list[str]:
    return factory.entry(factory.tree.domain(domain)).get("domainCurrentQuotaSize")


def assert_total(factory, domain: str, mb: int) -> None:
    """The entry's total is `mb` MB, and so is the real sum."""
    assert (total(factory, domain), real_sum(factory, domain)) == ([str(mb * MiB)], mb * MiB), domain


def add_users(factory, domain: str, count: int, quota_mb: int, prefix: str = "u") -> None:
    for i in range(count):
        factory.users.create(f"{prefix}{i}@{domain}", {"quota": quota_mb}, password_hash=HASH)


# -- no list of users read ---------------------------------------------------------------

def test_a_create_in_a_domain_with_a_domain_quota_reads_no_users(factory, api, directory, monkeypatch):
    factory.domain("big.test", quota=320)
    add_users(factory, "big.test", 30, 10)
    assert_total(factory, "big.test", 300)
    for i, status in ((30, 201), (31, 201), (32, 400)):
        with reads_of_users(directory, monkeypatch, ["big.test"]) as seen:
            result = api.post(f"/api/user/u{i}@big.test", {"password": PW, "quota": "10"})
        assert result.status_code == status, result.text
        assert dict(seen) == {}, (i, dict(seen))
    assert_error(result, 400, "EXCEEDED_DOMAIN_QUOTA", "quota")
    assert factory.entry(factory.tree.user("u32@big.test")) is None
    assert_total(factory, "big.test", 320)
    # A raise is held the same way.
    with reads_of_users(directory, monkeypatch, ["big.test"]) as seen:
        result = api.put("/api/user/u0@big.test", {"quota": "11"})
    assert_error(result, 400, "EXCEEDED_DOMAIN_QUOTA", "quota")
    assert dict(seen) == {}
    assert_total(factory, "big.test", 320)


def test_creates_by_an_admin_with_max_users_and_max_quota_read_no_users(factory, client, directory, monkeypatch):
    for name, count in (("one.test", 10), ("two.test", 5)):
        factory.domain(name)
        add_users(factory, name, count, 10)
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["one.test", "two.test"],
                         settings=["create_max_users:18", "create_max_quota:185"])
    client.login("boss@admins.test", "B0ss#secret")
    domains = ["one.test", "two.test"]
    # The first create under its maxQuota adds up each domain's quotas once
    # (the domains kept no total: made without a limit).
    with reads_of_users(directory, monkeypatch, domains) as seen:
        assert client.post("/api/user/n0@one.test", {"password": PW, "quota": "10"}).status_code == 201
    assert seen["paged_search"] == 2, dict(seen)
    assert_total(factory, "one.test", 110)
    assert_total(factory, "two.test", 50)
    calls = [("n1@two.test", "30", 403, "maxQuota"),     # 160 + 30 > 185
             ("n1@two.test", "0", 403, "maxQuota"),      # unlimited: not for a limited admin
             ("n1@two.test", "10", 201, None), ("n2@one.test", "15", 201, None),   # 18 users, 185 MB
             ("n3@two.test", "1", 403, "maxUsers")]
    for mail, quota, status, param in calls:
        with reads_of_users(directory, monkeypatch, domains) as seen:
            result = client.post(f"/api/user/{mail}", {"password": PW, "quota": quota})
        assert result.status_code == status, (mail, result.text)
        if param:
            assert_error(result, 403, "EXCEEDED_LIMIT", param)
        assert dict(seen) == {}, (mail, dict(seen))
    assert factory.entry(factory.tree.user("n3@two.test")) is None
    assert_total(factory, "one.test", 125)
    assert_total(factory, "two.test", 60)
    # A raise by the admin: from the totals as well.
    with reads_of_users(directory, monkeypatch, domains) as seen:
        assert client.put("/api/user/n1@two.test", {"quota": "11"}).status_code == 403
        assert client.put("/api/user/n1@two.test", {"quota": "5"}).status_code == 200
        assert client.put("/api/user/n2@one.test", {"quota": "20"}).status_code == 200
    assert dict(seen) == {}
    assert_total(factory, "one.test", 130)
    assert_total(factory, "two.test", 55)


# -- the total exact after every path ------------------------------------------------------

def test_the_total_is_exact_after_every_path_that_changes_a_quota(factory, api, directory, tmp_path):
    factory.domain("q1.test", quota=1000)
    factory.domain("q2.test", quota=2000)
    factory.domain("free.test")
    assert api.post("/api/user/a@q1.test", {"password": PW, "quota": "100"}).status_code == 201
    assert api.post("/api/user/b@q1.test", {"password": PW, "quota": "200"}).status_code == 201
    assert api.post("/api/user/c@q2.test", {"password": PW, "quota": "70"}).status_code == 201
    assert_total(factory, "q1.test", 300)
    assert_total(factory, "q2.test", 70)
    # PUT: raised, lowered; unlimited refused under a domain quota.
    assert api.put("/api/user/a@q1.test", {"quota": "150"}).status_code == 200
    assert api.put("/api/user/b@q1.test", {"quota": "50"}).status_code == 200
    assert_total(factory, "q1.test", 200)
    assert_error(api.put("/api/user/a@q1.test", {"quota": "0"}), 400, "EXCEEDED_DOMAIN_QUOTA", "quota")
    assert api.put("/api/user/a@q1.test", {"name": "Ann", "quota": "150"}).status_code == 200   # no change
    assert_total(factory, "q1.test", 200)
    # Bulk PUT (it changes no quota).
    assert api.put("/api/users/q1.test", {"language": "de_DE"}).status_code == 200
    assert_total(factory, "q1.test", 200)
    # change_email across domains: the quota moves from one total to the
    # other -- refused (nothing moved) where it would pass the domain quota.
    assert api.put("/api/domain/q2.test", {"quota": "200"}).status_code == 200
    assert_error(api.post("/api/user/a@q1.test/change_email/a@q2.test"), 400, "EXCEEDED_DOMAIN_QUOTA", "quota")
    assert factory.entry(factory.tree.user("a@q1.test")) is not None
    assert_total(factory, "q1.test", 200)
    assert_total(factory, "q2.test", 70)
    assert api.put("/api/domain/q2.test", {"quota": "2000"}).status_code == 200
    assert api.post("/api/user/a@q1.test/change_email/a@q2.test").status_code == 200
    assert_total(factory, "q1.test", 50)
    assert_total(factory, "q2.test", 220)
    # Delete.
    assert api.delete("/api/user/b@q1.test").status_code == 200
    assert_total(factory, "q1.test", 0)
    # A domain without a limit keeps no total (nothing needs it).
    assert api.post("/api/user/d@free.test", {"password": PW, "quota": "30"}).status_code == 201
    assert total(factory, "free.test") == []
    # Into a domain that keeps none: the old domain's total gives the quota up.
    assert api.post("/api/user/c@q2.test/change_email/c@free.test").status_code == 200
    assert_total(factory, "q2.test", 150)
    assert total(factory, "free.test") == []
    # A total kept without a limit (the limit taken away) still moves, also to unlimited.
    assert api.put("/api/domain/q2.test", {"quota": "0"}).status_code == 200
    assert api.put("/api/user/a@q2.test", {"quota": "0"}).status_code == 200
    assert_total(factory, "q2.test", 0)
    assert api.put("/api/user/a@q2.test", {"quota": "40"}).status_code == 200
    assert_total(factory, "q2.test", 40)

    # LDIF import: a file whose total is not the sum of its users' quotas
    # (another server's, or edited) is counted again.
    exported = api.get("/api/ldif/domain/q2.test")
    assert exported.status_code == 200
    text = exported.text
    assert f"domainCurrentQuotaSize: {40 * MiB}" in text
    assert api.delete("/api/domain/q2.test").status_code == 200
    assert factory.entry(factory.tree.domain("q2.test")) is None     # the total went with the domain
    path = tmp_path / "q2.ldif"
    path.write_text(text.replace(f"domainCurrentQuotaSize: {40 * MiB}", "domainCurrentQuotaSize: 999"))
    from iredldap.directory.import_ import Importer
    importer = Importer(directory, factory.tree)
    importer.run(importer.check(path))
    assert_total(factory, "q2.test", 40)


def test_a_missing_or_garbled_total_is_counted_once(factory, api, directory, monkeypatch):
    factory.domain("old.test", quota=1000)
    add_users(factory, "old.test", 4, 25)
    for broken in ([], ["many"]):
        # As a server the total was never kept on (or another tool garbled) has it.
        directory.modify(factory.tree.domain("old.test"), {"domainCurrentQuotaSize": [(REPLACE, broken)]})
        with reads_of_users(directory, monkeypatch, ["old.test"]) as seen:
            assert api.post(f"/api/user/new{len(broken)}@old.test", {"password": PW, "quota": "5"}).status_code == 201
        assert seen["paged_search"] == 1, dict(seen)
        with reads_of_users(directory, monkeypatch, ["old.test"]) as seen:
            assert api.post(f"/api/user/next{len(broken)}@old.test", {"password": PW, "quota": "5"}).status_code == 201
        assert dict(seen) == {}
    assert_total(factory, "old.test", 100 + 4 * 5)


def test_an_undone_create_gives_its_reservation_back(factory, api):
    factory.domain("q.test", quota=250, aliasDomains=["alias.test"])
    assert api.post("/api/user/ann@q.test", {"password": PW, "quota": "100"}).status_code == 201
    # Someone holds x@alias.test: the twin a new x@q.test would get there.
    assert api.put("/api/user/ann@q.test", {"addAlias": "x@alias.test"}).status_code == 200
    result = api.post("/api/user/x@q.test", {"password": PW, "quota": "100"})
    assert result.status_code == 409, result.text
    assert factory.entry(factory.tree.user("x@q.test")) is None
    assert_total(factory, "q.test", 100)
    # The 100 MB given back are there for the next one.
    assert api.post("/api/user/y@q.test", {"password": PW, "quota": "150"}).status_code == 201
    assert_total(factory, "q.test", 250)


# -- parallel requests on slapd -------------------------------------------------------------

@pytest.fixture
def racing(slapd_directory, settings, iredadmin):
    from iredldap.backends import Backends
    from iredldap.web.app import create_app
    from .support import Factory
    factory = Factory(slapd_directory, settings)
    root = factory.global_admin("root@admins.test", "R00t#secret")
    return create_app(settings, Backends(slapd_directory, iredadmin)), factory, settings, root


@pytest.mark.slapd
def test_parallel_creates_never_pass_the_domain_quota(racing):
    """350 MB, 100 MB each: of eight parallel creates exactly three stay."""
    app, factory, settings, root = racing
    factory.domain("par.test", quota=350)
    statuses = parallel(app, settings, [("POST", f"/api/user/p{i}@par.test", {"password": PW, "quota": "100"})
                                        for i in range(8)], root, seconds=120)
    assert sorted(statuses) == [201] * 3 + [400] * 5, statuses
    assert_total(factory, "par.test", 300)
    users = factory.search(factory.tree.container("par.test", "Users"), USERS, scope=LEVEL, attrs=("1.1",))
    assert len(users) == 3
    assert factory.entry(factory.tree.domain("par.test")).get("domainCurrentUserNumber") == ["3"]


@pytest.mark.slapd
def test_parallel_raises_and_changes_of_one_quota_keep_the_total_exact(racing):
    app, factory, settings, root = racing
    factory.domain("par.test", quota=200)
    add_users(factory, "par.test", 8, 10)
    # Eight raises from 10 to 40 MB at once: 80 + 30 k <= 200, so four.
    statuses = parallel(app, settings, [("PUT", f"/api/user/u{i}@par.test", {"quota": "40"}) for i in range(8)],
                        root, seconds=120)
    assert sorted(statuses) == [200] * 4 + [400] * 4, statuses
    assert_total(factory, "par.test", 200)
    # Eight changes of one user's quota at once: some may be told to try
    # again (409), the total follows the one that landed.
    factory.dir.modify(factory.tree.domain("par.test"), {"accountSetting": [(REPLACE, ["domainQuota:5000:MB"])]})
    before, u0_before = real_sum(factory, "par.test"), int(factory.entry(factory.tree.user("u0@par.test")).first("mailQuota"))
    wanted = [100 + 10 * i for i in range(8)]
    statuses = parallel(app, settings, [("PUT", "/api/user/u0@par.test", {"quota": str(mb)}) for mb in wanted],
                        root, seconds=120)
    assert set(statuses) <= {200, 409} and 200 in statuses, statuses
    u0_after = int(factory.entry(factory.tree.user("u0@par.test")).first("mailQuota"))
    assert u0_after // MiB in wanted
    assert total(factory, "par.test") == [str(before - u0_before + u0_after)]
    assert real_sum(factory, "par.test") == before - u0_before + u0_after


@pytest.mark.slapd
def test_parallel_creates_by_an_admin_stop_at_its_quota_with_totals_exact(racing):
    app, factory, settings, root = racing
    for name in ("m1.test", "m2.test"):
        factory.domain(name)
        add_users(factory, name, 3, 10)
    boss = factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["m1.test", "m2.test"],
                                settings=["create_max_quota:260"])
    # 60 MB given out; 100 MB each, across both domains: exactly two stay.
    statuses = parallel(app, settings, [("POST", f"/api/user/p{i}@m{1 + i % 2}.test", {"password": PW, "quota": "100"})
                                        for i in range(8)], boss, seconds=120)
    assert sorted(statuses) == [201] * 2 + [403] * 6, statuses
    assert real_sum(factory, "m1.test") + real_sum(factory, "m2.test") == 260 * MiB
    for name in ("m1.test", "m2.test"):
        assert total(factory, name) == [str(real_sum(factory, name))]


# -- a write cut short, and `iredldap check` ------------------------------------------------

@pytest.mark.slapd
@pytest.mark.parametrize("path,k", [("create", 2), ("raise", 2), ("delete", 3)])
def test_a_write_cut_short_leaves_the_total_exact(path, k, world, own_slapd, settings, iredadmin):
    directory, client, tree = world
    from .support import Factory
    factory = Factory(directory, settings)
    factory.domain("cut.test", quota=1000)
    add_users(factory, "cut.test", 3, 100)
    # Its writes: the reservation (or the user's delete), then the user's
    # add / modify (or the counter, then the total's release).
    send = {"create": ("POST", "/api/user/new@cut.test", {"password": PW, "quota": "50"}),
            "raise": ("PUT", "/api/user/u0@cut.test", {"quota": "150"}),
            "delete": ("DELETE", "/api/user/u1@cut.test", None)}[path]
    directory.arm(k)
    result = client.request(*send)
    assert result.status_code == 503, result.text
    own_slapd.start()
    # The next request naming the account finishes the journal row.
    client.get(f"/api/user/{send[1].rsplit('/', 1)[1]}")
    assert [r["state"] for r in journal_rows(iredadmin)][-1] in ("done", "undone")
    expected = {"create": 300, "raise": 300, "delete": 200}[path]
    assert_total(factory, "cut.test", expected)


@pytest.mark.slapd
def test_check_finds_and_repairs_a_wrong_total(slapd_clean, tmp_path):
    from iredldap.backends import tree_of
    from iredldap.directory.base import init_tree
    from iredldap.directory.connection import Directory
    from .conftest import make_settings
    from .support import Factory
    env = cli_env(slapd_clean, tmp_path)
    assert run_cli(env, "init-sql").exit_code == 0
    settings = make_settings(tmp_path)
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    init_tree(directory, tree_of(settings))
    factory = Factory(directory, settings)
    for name in ("off.test", "odd.test", "fine.test"):
        factory.domain(name, quota=1000)
        add_users(factory, name, 2, 30)
    directory.modify(factory.tree.domain("off.test"), {"domainCurrentQuotaSize": [(REPLACE, ["12345"])]})
    directory.modify(factory.tree.domain("odd.test"), {"domainCurrentQuotaSize": [(REPLACE, ["lots"])]})
    r = run_cli(env, "check", "--json")
    assert r.exit_code == 1, r.output
    found = [f for f in json.loads(r.output)["findings"] if f["kind"] == "counter"]
    assert sorted(f["detail"] for f in found) == [
        f"domainCurrentQuotaSize is 12345, the users' quotas add up to {60 * MiB}",
        f"domainCurrentQuotaSize is lots, the users' quotas add up to {60 * MiB}"]
    assert run_cli(env, "check", "--repair").exit_code == 0
    for name in ("off.test", "odd.test", "fine.test"):
        assert_total(factory, name, 60)
    r = run_cli(env, "check")
    assert r.exit_code == 0 and "nothing wrong" in r.output, r.output
