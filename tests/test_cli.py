"""The iredldap command on a real slapd: init, init-sql, create-admin."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from iredldap.model import passwords
from iredldap.cli import main
from iredldap.directory.connection import Directory, SUBTREE

from .support import cli_env, run_cli


@pytest.fixture
def env(slapd_clean, tmp_path):
    return cli_env(slapd_clean, tmp_path, iredadmin_file="db.sqlite")


run = run_cli


def test_init_creates_base_tree_once(env, slapd_clean):
    first = run(env, "init")
    assert first.exit_code == 0, first.output
    assert "created o=domains,dc=example,dc=com" in first.output
    second = run(env, "init")
    assert second.exit_code == 0 and "already present" in second.output
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    dns = sorted(e.dn for e in directory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE))
    assert dns == ["dc=example,dc=com", "o=domainAdmins,dc=example,dc=com", "o=domains,dc=example,dc=com"]


def test_create_admin_standalone_and_mail_user(env, slapd_clean):
    assert run(env, "init").exit_code == 0
    r = run(env, "create-admin", "Root@Admins.test", "--standalone", "--password", "R00t#secret")
    assert r.exit_code == 0, r.output
    directory = Directory(slapd_clean.uri, slapd_clean.root_dn, slapd_clean.root_password)
    admin = directory.get("mail=root@admins.test,o=domainAdmins,dc=example,dc=com")
    assert admin.get("domainGlobalAdmin") == ["yes"] and admin.get("accountStatus") == ["active"]
    assert passwords.verify_password("R00t#secret", admin.first("userPassword"))
    assert admin.first("userPassword").startswith("{SSHA512}")

    again = run(env, "create-admin", "root@admins.test", "--standalone", "--password", "x")
    assert again.exit_code == 1 and "ALREADY_EXISTS" in again.output
    assert run(env, "create-admin", "root@admins.test", "--standalone", "--password", "x",
               "--exist-ok").exit_code == 0

    # A mail user needs its domain first.
    missing = run(env, "create-admin", "postmaster@mail.test", "--password", "P0stm#ster")
    assert missing.exit_code == 1 and "NO_SUCH_DOMAIN" in missing.output


def test_init_sql_creates_iredadmin_tables(env, tmp_path):
    import sqlalchemy
    r = run(env, "init-sql")
    assert r.exit_code == 0, r.output
    names = set(sqlalchemy.inspect(sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")).get_table_names())
    assert {"sessions", "log", "deleted_mailboxes", "used_quota", "last_login"} <= names


def test_demo_is_idempotent(tmp_path):
    """The README's first command, minus serving: twice, and nothing is duplicated."""
    args = ["demo", "--dir", str(tmp_path / "demo"), "--ldap-port", "0", "--no-serve"]
    try:
        first = CliRunner().invoke(main, args, catch_exceptions=False)
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(main, args, catch_exceptions=False)
        assert second.exit_code == 0, second.output
        assert "username=postmaster@example.com" in second.output
        assert f"export IREDLDAP_CONFIG={tmp_path / 'demo' / 'iredldap.ini'}" in second.output
        lines = [l for l in (tmp_path / "demo" / "iredldap.ini").read_text().splitlines() if "=" in l]
        settings = dict(l.split(" = ", 1) for l in lines)
        directory = Directory(settings["ldap_uri"], settings["ldap_bind_dn"], settings["ldap_bind_password"])
        dns = [e.dn for e in directory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE)]
        assert len(dns) == len(set(dns)) == 9
        assert "mail=postmaster@example.com,ou=Users,domainName=example.com,o=domains,dc=example,dc=com" in dns
    finally:
        CliRunner().invoke(main, ["demo", "--dir", str(tmp_path / "demo"), "--ldap-port", "0", "--stop"])


def test_the_demo_has_working_subscribable_lists(tmp_path):
    """The demo's settings put lists on a private local mlmmj spool."""
    from iredldap.config import Settings
    from iredldap.web.app import create_app
    from iredldap.backends import connect

    from .support import ApiClient
    folder = tmp_path / "demo"
    args = ["demo", "--dir", str(folder), "--ldap-port", "0", "--no-serve"]
    try:
        done = CliRunner().invoke(main, args, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        password = done.output.split("password=", 1)[1].split()[0]
        settings = Settings.from_sources(path=str(folder / "iredldap.ini"))
        assert settings.mlmmj_backend == "local" and settings.mlmmj_spool_dir == str(folder / "mlmmj")
        client = ApiClient(create_app(settings, connect(settings)), settings)
        client.login("postmaster@example.com", password)
        r = client.post("/api/ml/news@example.com", {"subscribers": "a@example.org", "require_confirm": "no"})
        assert r.status_code == 201, r.text
        assert (folder / "mlmmj" / "example.com" / "news" / "subscribers.d" / "a").read_text() == "a@example.org\n"
        assert client.delete("/api/ml/news@example.com").status_code == 200
        assert [p.name.rpartition("-")[0] for p in (folder / "mlmmj-archive" / "example.com").iterdir()] == ["news"]
    finally:
        CliRunner().invoke(main, ["demo", "--dir", str(folder), "--ldap-port", "0", "--stop"])


# -- files holding secrets are the owner's only ---------------------------------------

@pytest.fixture
def open_umask():
    """The loosest umask: a file created without an explicit mode would be 0666."""
    import os

    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch):
    """Modes must be right at creation: a chmod afterwards leaves a window."""
    import os
    import pathlib

    def refuse(*args, **kwargs):
        raise AssertionError(f"chmod after creation: {args}")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(pathlib.Path, "chmod", refuse)


def modes(folder, pattern="**/*") -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mode & 0o777 for p in sorted(folder.glob(pattern))}


def test_init_sql_creates_the_sqlite_files_0600(env, tmp_path, open_umask, no_chmod):
    r = run(env, "init-sql")
    assert r.exit_code == 0, r.output
    found = modes(tmp_path, "*.sqlite*")
    assert {"db.sqlite", "amavisd.sqlite", "iredapd.sqlite"} <= set(found)
    assert found == {name: 0o600 for name in found}, found


def test_demo_writes_its_secrets_0600(tmp_path, open_umask, no_chmod):
    folder = tmp_path / "demo"
    args = ["demo", "--dir", str(folder), "--ldap-port", "0", "--no-serve"]
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        found = modes(folder)
        secret_files = ["iredldap.ini", "demo-secrets", "iredadmin.sqlite", "amavisd.sqlite", "iredapd.sqlite",
                        "slapd/slapd.conf", "slapd/db/data.mdb"]
        for name in secret_files:
            assert found.get(name) == 0o600, (name, oct(found.get(name, 0)))
        # Everything slapd and the databases made: nothing readable by others.
        assert [name for name, mode in found.items() if mode & 0o077] == [], found
        assert found["slapd"] == found["slapd/db"] == 0o700
        assert (folder.stat().st_mode & 0o777) == 0o700
    finally:
        CliRunner().invoke(main, ["demo", "--dir", str(folder), "--ldap-port", "0", "--stop"])


def test_demo_makes_an_older_world_readable_ini_private(tmp_path, open_umask):
    import os

    folder = tmp_path / "demo"
    folder.mkdir()
    ini = folder / "iredldap.ini"
    ini.write_text("[iredldap]\n")
    os.chmod(ini, 0o644)
    try:
        result = CliRunner().invoke(main, ["demo", "--dir", str(folder), "--ldap-port", "0", "--no-serve"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert ini.stat().st_mode & 0o777 == 0o600
        assert "secret_key = " in ini.read_text()
    finally:
        CliRunner().invoke(main, ["demo", "--dir", str(folder), "--ldap-port", "0", "--stop"])


def test_private_files_helpers(tmp_path, open_umask):
    from iredldap.private_files import open_private, write_private

    write_private(tmp_path / "a", "secret\n")
    with open_private(tmp_path / "b") as out:
        out.write(b"secret\n")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        write_private(tmp_path / "link", "secret\n")     # never through a planted symlink
    assert not (tmp_path / "elsewhere").exists()
    assert modes(tmp_path, "[ab]") == {"a": 0o600, "b": 0o600}
    assert (tmp_path / "a").read_text() == "secret\n"
