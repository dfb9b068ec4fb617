"""domainCurrent*Number equal the real count after racing creates (some of
them refused: duplicates, over the limit), deletes and imports."""

from __future__ import annotations

import threading

import pytest

from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.directory.connection import LEVEL

from .support import ApiClient, Factory

pytestmark = pytest.mark.slapd

PW = "Us3r#secret-pw"


def real_count(factory, domain, ou, cls):
    return len(factory.search(factory.tree.container(domain, ou), f"(objectClass={cls})", scope=LEVEL,
                              attrs=("1.1",)))


def test_counters_hold_with_failing_creates_and_deletes_mixed_in(slapd_directory, settings, iredadmin):
    factory = Factory(slapd_directory, settings)
    factory.domain("mix.test", numberOfUsers=8, numberOfAliases=3)
    factory.global_admin("root@admins.test", "R00t#secret")
    for i in range(4):
        factory.user(f"old{i}@mix.test")
    app = create_app(settings, Backends(slapd_directory, iredadmin))
    statuses = []

    def run(method, path, params=None):
        client = ApiClient(app, settings)
        client.login("root@admins.test", "R00t#secret")
        statuses.append((method, path, client.request(method, path, params).status_code))

    jobs = [("POST", f"/api/user/new{i}@mix.test", {"password": PW}) for i in range(7)]      # 4 places left + 2 freed
    jobs += [("POST", f"/api/user/old{i}@mix.test", {"password": PW}) for i in range(2)]     # duplicates: 409
    jobs += [("POST", "/api/user/bad@mix.test", {"password": PW, "quota": "-5"})]            # refused: 400
    jobs += [("DELETE", f"/api/user/old{i}@mix.test", None) for i in (2, 3)]
    jobs += [("POST", f"/api/alias/al{i}@mix.test", {}) for i in range(5)]                   # 3 places
    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(statuses) == len(jobs)
    entry = factory.entry(factory.tree.domain("mix.test"))
    users = real_count(factory, "mix.test", "Users", "mailUser")
    aliases = real_count(factory, "mix.test", "Aliases", "mailAlias")
    assert users <= 8 and aliases <= 3
    assert entry.get("domainCurrentUserNumber") == [str(users)]
    assert entry.get("domainCurrentAliasNumber") == [str(aliases)]
    created = [p for m, p, s in statuses if m == "POST" and "/user/new" in p and s == 201]
    assert users == 4 - 2 + len(created)
    assert all(s == 409 for m, p, s in statuses if "/user/old" in p and m == "POST")


def test_import_that_skips_existing_entries_leaves_counters_right(slapd_directory, settings, tmp_path):
    from iredldap.directory.import_ import Importer
    factory = Factory(slapd_directory, settings)
    factory.domain("imp.test")
    factory.user("a@imp.test")
    base = "domainName=imp.test,o=domains,dc=example,dc=com"
    lines = [f"dn: {base}", "objectClass: mailDomain", "domainName: imp.test", "domainCurrentUserNumber: 9",
             "domainCurrentAliasNumber: 4", ""]
    for local in ("a", "b", "c"):
        lines += [f"dn: mail={local}@imp.test,ou=Users,{base}", "objectClass: inetOrgPerson", "objectClass: mailUser",
                  "objectClass: shadowAccount", "objectClass: amavisAccount", f"mail: {local}@imp.test",
                  f"uid: {local}", f"cn: {local}", f"sn: {local}", "accountStatus: active",
                  f"homeDirectory: /var/vmail/vmail1/imp.test/{local}", ""]
    path = tmp_path / "imp.ldif"
    path.write_text("\n".join(lines))
    importer = Importer(slapd_directory, factory.tree)
    result = importer.run(importer.check(path))
    assert (result.added, result.skipped) == (2, 2)
    entry = factory.entry(factory.tree.domain("imp.test"))
    assert entry.get("domainCurrentUserNumber") == ["3"]
    assert entry.get("domainCurrentAliasNumber") == ["0"]
