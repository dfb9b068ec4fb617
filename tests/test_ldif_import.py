"""`iredldap import` / `iredldap export`, round trips, and OpenLDAP's own ldapadd/ldapsearch.

Everything here runs on the real slapd, except the checks of `Importer.check`,
which run on both directories.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from iredldap.model import ldif
from iredldap.backends import tree_of
from iredldap.cli import main
from iredldap.directory.base import init_tree
from iredldap.directory.connection import SUBTREE, Directory
from iredldap.directory.import_ import Importer, LdifRejected

from .fixtures_slapd import wipe_tree
from .test_ldif_export import DOMAIN, PW, build_world, lookups

KINDS = [("domain", DOMAIN), ("catchall", DOMAIN), ("user", "jurgen@ldif.test"), ("alias", "team@ldif.test"),
         ("maillist", "staff@ldif.test"), ("admin", "boss@admins.test")]


@pytest.fixture
def backend(request) -> str:
    """The real slapd for this module (`directory`, `api` ... use it), unless a test asks for both."""
    return getattr(request, "param", "slapd")


@pytest.fixture
def env(slapd_clean, tmp_path, settings):
    return {
        "IREDLDAP_LDAP_URI": slapd_clean.uri,
        "IREDLDAP_LDAP_BIND_DN": slapd_clean.root_dn,
        "IREDLDAP_LDAP_BIND_PASSWORD": slapd_clean.root_password,
        "IREDLDAP_LDAP_SUFFIX": settings.ldap_suffix,
        "IREDLDAP_SQL_IREDADMIN_URL": settings.sql_iredadmin_url,
        "IREDLDAP_SECRET_KEY": "x" * 20,
    }


@pytest.fixture
def world(api, directory, factory):
    build_world(api, directory, factory)


def cli(env, *args):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def everything(directory) -> dict:
    """The whole tree: DN → attributes (for "nothing was written")."""
    return {e.dn.lower(): {k.lower(): sorted(v) for k, v in e.attrs.items()}
            for e in directory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE)}


def remove_domain(api, factory, directory) -> None:
    assert api.delete(f"/api/domain/{DOMAIN}").status_code == 200
    assert directory.get(factory.tree.domain(DOMAIN)) is None


def parsed(text: bytes) -> dict[str, dict[str, list[bytes]]]:
    reader = ldif.Reader(io.BytesIO(text))
    out = {r.dn.lower(): {k.lower(): v for k, v in r.attrs().items()} for r in reader}
    assert reader.problems == []
    return out


# -- round trip -----------------------------------------------------------------------------

def test_round_trip_export_delete_import_export(api, world, directory, factory, env, tmp_path):
    domain_file, admin_file = tmp_path / "domain.ldif", tmp_path / "admin.ldif"
    domain_file.write_bytes(api.get(f"/api/ldif/domain/{DOMAIN}").content)
    admin_file.write_bytes(api.get("/api/ldif/admin/boss@admins.test").content)
    before = lookups(directory)
    assert before["virtual_group_maps staff@ldif.test"] == ["anna@ldif.test", "jurgen@ldif.test", "out@ext.test"]
    assert before["dovecot j@ldif.test"] == ["jurgen@ldif.test"]

    remove_domain(api, factory, directory)
    assert api.delete("/api/admin/boss@admins.test").status_code == 200
    assert not any(lookups(directory).values())

    r = cli(env, "import", domain_file)
    assert r.exit_code == 0, r.output
    assert "11 entries, checked against the server's schema (cn=Subschema)" in r.output
    assert r.output.rstrip().endswith("added 11, skipped 0, replaced 0")
    assert cli(env, "import", admin_file).output.rstrip().endswith("added 1, skipped 0, replaced 0")

    assert api.get(f"/api/ldif/domain/{DOMAIN}").content == domain_file.read_bytes()
    assert api.get("/api/ldif/admin/boss@admins.test").content == admin_file.read_bytes()
    assert lookups(directory) == before
    # The hashes came back: the accounts can log in.
    assert api.post("/api/verify_password/user/jurgen@ldif.test", {"password": PW}).status_code == 200
    assert api.post("/api/verify_password/admin/boss@admins.test", {"password": PW}).status_code == 200


def test_cli_export_of_everything_restores_into_an_initialised_tree(api, world, directory, env, tmp_path,
                                                                   slapd_clean, settings):
    out = tmp_path / "all.ldif"
    r = cli(env, "export", "-o", out)
    assert r.exit_code == 0, r.output
    # The domain, its 10 entries, the global admin of the tests and boss.
    assert "exported 13 entries (all domains and admins)" in r.output
    assert not (tmp_path / "all.ldif.part").exists()
    text = out.read_bytes()
    assert "userpassword" in parsed(text)[factory_dn(settings, "jurgen@ldif.test")]
    before = lookups(directory)

    conn = slapd_clean.connection()
    wipe_tree(conn, settings.ldap_suffix)
    conn.unbind()
    assert cli(env, "init").exit_code == 0
    r = cli(env, "import", out)
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("added 13, skipped 0, replaced 0")
    assert lookups(directory) == before
    again = tmp_path / "again.ldif"
    assert cli(env, "export", "-o", again).exit_code == 0
    assert again.read_bytes() == text


def factory_dn(settings, mail: str) -> str:
    return tree_of(settings).user(mail).lower()


def test_cli_export_of_one_account_matches_the_api(api, world, env, tmp_path):
    for target, kind, name in (("ldif.test", "domain", DOMAIN), ("@ldif.test", "catchall", DOMAIN),
                               ("Jurgen@LDIF.test", "user", "jurgen@ldif.test"),
                               ("staff@ldif.test", "maillist", "staff@ldif.test"),
                               ("team@ldif.test", "alias", "team@ldif.test"),
                               ("boss@admins.test", "admin", "boss@admins.test")):
        r = CliRunner().invoke(main, ["export", target], env=env, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert r.stdout_bytes == api.get(f"/api/ldif/{kind}/{name}").content, target
    r = cli(env, "export", "nobody@ldif.test")
    assert r.exit_code == 1 and "NO_SUCH_ACCOUNT" in r.output
    r = cli(env, "export", "--no-passwords", "jurgen@ldif.test")
    assert b"userPassword" not in r.stdout_bytes and b"# password hashes: left out" in r.stdout_bytes


# -- OpenLDAP's tools ---------------------------------------------------------------------

def ldap_tool(slapd, tool: str, *args: str) -> bytes:
    path = shutil.which(tool)
    assert path, f"{tool} is missing (apt-get install ldap-utils)"
    done = subprocess.run([path, "-x", "-H", slapd.uri, "-D", slapd.root_dn, "-w", slapd.root_password, *args],
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_every_kind_loads_with_ldapadd_and_ldapsearch_agrees(api, world, directory, factory, slapd_clean,
                                                            settings, tmp_path):
    files = {}
    for kind, name in KINDS:
        files[kind] = tmp_path / f"{kind}.ldif"
        files[kind].write_bytes(api.get(f"/api/ldif/{kind}/{name}").content)
    # An empty directory with our schema: the base tree only.
    conn = slapd_clean.connection()
    wipe_tree(conn, settings.ldap_suffix)
    conn.unbind()
    init_tree(directory, tree_of(settings))
    for kind, _ in KINDS:
        exported = parsed(files[kind].read_bytes())
        if kind != "domain":  # loaded with the domain: take the entries out again first
            for dn in sorted(exported, key=len, reverse=True):
                if directory.exists(dn):
                    directory.delete(dn)
        ldap_tool(slapd_clean, "ldapadd", "-f", str(files[kind]))
        found = parsed(ldap_tool(slapd_clean, "ldapsearch", "-LLL", "-b", settings.ldap_suffix,
                                 "(objectClass=*)"))
        assert {dn: found[dn] for dn in exported} == exported, kind


# -- refusing broken files ---------------------------------------------------------------

def line_of(text: str, pattern: str, after: int = 0) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if number > after and re.search(pattern, line):
            return number
    raise AssertionError(pattern)


def bad_base64(text: str) -> tuple[str, list[int]]:
    lines = text.splitlines(keepends=True)
    n = line_of(text, r"^cn:: ")
    lines[n - 1] = "cn:: SsO8cm*lbiBNw7xsbGVy\n"
    return "".join(lines), [n]


def missing_parent(text: str) -> tuple[str, list[int]]:
    records = text.split("\n\n")
    users = next(r for r in records if r.startswith("dn: ou=Users,"))
    text = text.replace(users + "\n\n", "").replace("11 entries", "10 entries")
    return text, [n for n, line in enumerate(text.splitlines(), 1)
                  if re.match(r"dn::? ", line) and "ou=Users" in (line + text.splitlines()[n])]


def unknown_attribute(text: str) -> tuple[str, list[int]]:
    n = line_of(text, r"^dn: mail=jurgen@")
    lines = text.splitlines(keepends=True)
    lines.insert(n + 1, "shoeSize: 44\n")
    return "".join(lines), [n + 2]


def truncated(text: str) -> tuple[str, list[int]]:
    cut = text[:len(text) * 2 // 3]
    while cut.endswith("\n"):
        cut = cut[:-1]
    return cut, [len(cut.splitlines())]


@pytest.mark.parametrize("damage", [bad_base64, missing_parent, unknown_attribute, truncated])
def test_broken_files_are_refused_with_line_numbers_and_nothing_written(api, world, directory, factory,
                                                                       env, tmp_path, damage):
    good = api.get(f"/api/ldif/domain/{DOMAIN}").text
    remove_domain(api, factory, directory)
    broken, lines = damage(good)
    path = tmp_path / "broken.ldif"
    path.write_text(broken)
    before = everything(directory)
    r = cli(env, "import", path)
    assert r.exit_code == 1
    assert "nothing was written" in r.output
    reported = [int(m) for m in re.findall(rf"^{re.escape(str(path))}:(\d+): ", r.output, re.M)]
    assert set(lines) <= set(reported), (lines, r.output)
    assert everything(directory) == before
    if damage is truncated:
        assert "ends in the middle of a line" in r.output and "the file is incomplete" in r.output
    if damage is missing_parent:
        assert len(reported) == 3  # the catch-all and the two users


@pytest.mark.parametrize("backend", ["mock", "slapd"], indirect=True)
def test_check_reports_every_schema_problem(directory, settings, backend, tmp_path):
    text = """version: 1

dn: domainName=new.test,o=domains,dc=example,dc=com
objectClass: mailDomain
objectClass: noSuchClass
domainName: new.test
domainCurrentUserNumber: many
mtaTransport: a
mtaTransport: b
accountStatus: active

dn: mail=x@new.test,ou=Users,domainName=new.test,o=domains,dc=example,dc=com
objectClass: inetOrgPerson
mail: y@new.test
amavisLocal: yes

dn: DomainName=NEW.test,o=domains,dc=example,dc=com
objectClass: mailDomain
domainName: new.test

dn: not a dn
objectClass: top

dn: ou=Users,domainName=new.test,o=domains,dc=example,dc=com
ou: Users
createTimestamp: 20240101000000Z
"""
    importer = Importer(directory, tree_of(settings))
    X = "mail=x@new.test,ou=Users,domainName=new.test,o=domains,dc=example,dc=com"  # noqa: N806
    file = tmp_path / "check.ldif"
    file.write_text(text)
    with pytest.raises(LdifRejected) as caught:
        importer.check(file)
    got = [(p.line, p.message) for p in caught.value.problems]
    expected = [
        (5, "object class 'noSuchClass' is not in the schema"),
        (7, "domainCurrentUserNumber: 'many' must be a whole number"),
        (9, "mtaTransport takes a single value"),
        (12, f"{X} lacks required attribute(s): cn, sn"),
        (12, f"{X}: the value mail=x@new.test of its name is not among its attributes"),
        (15, "amavisLocal is not allowed by the entry's object classes"),  # no amavisAccount
        (15, "amavisLocal: 'yes' must be TRUE or FALSE"),
        (17, "DomainName=NEW.test,o=domains,dc=example,dc=com is in the file twice (first on line 3)"),
        (21, "not a valid DN (attribute type not present): 'not a dn'"),
        (24, "ou=Users,domainName=new.test,o=domains,dc=example,dc=com has no objectClass"),
    ]
    assert sorted(got) == sorted(expected), "\n".join(map(repr, sorted(got)))
    source = "the server's schema (cn=Subschema)" if backend == "slapd" else "OpenLDAP's standard schema"
    assert importer.schema.source.startswith(source)


# -- skip, replace, resume -----------------------------------------------------------------

def test_existing_entries_are_skipped_or_replaced(api, world, directory, factory, env, tmp_path):
    path = tmp_path / "domain.ldif"
    original = api.get(f"/api/ldif/domain/{DOMAIN}").content
    path.write_bytes(original)
    r = cli(env, "import", path)
    assert r.exit_code == 0, r.output
    assert re.search(r"^skipped: mail=jurgen@ldif.test,ou=Users,domainName=ldif.test,o=domains,dc=example,"
                     r"dc=com \(line \d+\): it exists$", r.output, re.M)
    assert r.output.rstrip().endswith("added 0, skipped 11, replaced 0")

    jurgen = factory.tree.user("jurgen@ldif.test")
    directory.modify(jurgen, {"cn": [("MODIFY_REPLACE", ["Someone Else"])],
                              "telephoneNumber": [("MODIFY_ADD", ["123"])],
                              "userPassword": [("MODIFY_REPLACE", ["{PLAIN}changed"])]})
    assert api.put("/api/alias/team@ldif.test", {"addMember": "y@ext.test"}).status_code == 200
    r = cli(env, "import", "--replace", path)
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("added 0, skipped 0, replaced 2, unchanged 9")
    assert f"replaced: {jurgen} (line " in r.output
    assert api.get(f"/api/ldif/domain/{DOMAIN}").content == original

    # An export without hashes replaces everything but the hash.
    directory.modify(jurgen, {"cn": [("MODIFY_REPLACE", ["Someone Else"])]})
    path.write_bytes(ldif_without_passwords(original))
    r = cli(env, "import", "--replace", path)
    assert r.output.rstrip().endswith("added 0, skipped 0, replaced 1, unchanged 10"), r.output
    assert api.get(f"/api/ldif/domain/{DOMAIN}").content == original


def ldif_without_passwords(text: bytes) -> bytes:
    records = list(ldif.Reader(io.BytesIO(text)))
    body = "".join(ldif.entry_text(r.dn, [(k, v) for k, v in r.attrs().items() if k != "userPassword"])
                   for r in records)
    return (ldif.header("domain ldif.test") + body + ldif.end_marker(len(records))).encode()


def test_an_interrupted_import_finishes_on_the_next_run(api, world, directory, factory, env, tmp_path,
                                                       monkeypatch):
    path = tmp_path / "domain.ldif"
    original = api.get(f"/api/ldif/domain/{DOMAIN}").content
    path.write_bytes(original)
    remove_domain(api, factory, directory)

    real_add = Directory.add
    calls = []

    def add_then_interrupt(self, dn, attrs):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(dn)
        real_add(self, dn, attrs)
    monkeypatch.setattr(Directory, "add", add_then_interrupt)
    r = cli(env, "import", path)
    assert r.exit_code == 130
    assert "added 5, skipped 0, replaced 0" in r.output and "run the same command again" in r.output
    monkeypatch.setattr(Directory, "add", real_add)

    r = cli(env, "import", path)
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("added 6, skipped 5, replaced 0")
    assert api.get(f"/api/ldif/domain/{DOMAIN}").content == original


def test_children_before_parents_in_the_file_are_added_parents_first(api, world, directory, factory, env,
                                                                      tmp_path):
    original = api.get(f"/api/ldif/domain/{DOMAIN}").content
    records = list(ldif.Reader(io.BytesIO(original)))
    reversed_text = "version: 1\n\n" + "".join(ldif.entry_text(r.dn, r.attrs().items()) for r in reversed(records))
    path = tmp_path / "reversed.ldif"
    path.write_text(reversed_text)
    remove_domain(api, factory, directory)
    r = cli(env, "import", path)
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("added 11, skipped 0, replaced 0")
    assert parsed(api.get(f"/api/ldif/domain/{DOMAIN}").content) == parsed(original)


def test_a_write_the_directory_refuses_stops_with_its_line(api, world, directory, factory, env, tmp_path):
    original = api.get("/api/ldif/user/jurgen@ldif.test").text
    # Valid to every check, but slapd refuses it: mailUser needs mail, and the
    # entry names a structural class chain slapd rejects (two structural classes).
    broken = original.replace("objectClass: inetOrgPerson\n", "objectClass: inetOrgPerson\nobjectClass: device\n")
    path = tmp_path / "user.ldif"
    path.write_text(broken)
    directory.delete(factory.tree.user("jurgen@ldif.test"))
    r = cli(env, "import", path)
    assert r.exit_code == 1
    assert re.search(rf"{re.escape(str(path))}:5: mail=jurgen@ldif.test,.*: ", r.output), r.output
    assert "added 0, skipped 0, replaced 0" in r.output


def test_check_only_and_standard_input(api, world, directory, factory, env):
    text = api.get(f"/api/ldif/domain/{DOMAIN}").content
    remove_domain(api, factory, directory)
    before = everything(directory)
    r = CliRunner().invoke(main, ["import", "--check", "-"], env=env, input=text, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("-: 11 entries, checked against")
    assert everything(directory) == before
    r = CliRunner().invoke(main, ["import", "-"], env=env, input=text, catch_exceptions=False)
    assert r.exit_code == 0 and r.output.rstrip().endswith("added 11, skipped 0, replaced 0")
    assert api.get(f"/api/ldif/domain/{DOMAIN}").content == text
