"""`iredldap config-from-iredadmin` (issue #12, item 6) on a settings.py
written here the way iRedMail's installer writes iRedAdmin-Pro's (LDAP
edition), including values it cannot map."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner

from iredldap.cli import main
from iredldap.config import Settings

SETTINGS_PY = '''\
# iRedAdmin-Pro settings (sample written by the test)
import os

webmaster = 'postmaster@example.com'
storage_base_directory = '/var/vmail/vmail1'
default_mta_transport = 'dovecot'
default_language = 'en_US'
backend = 'ldap'

ldap_uri = 'ldap://10.0.0.5:389'
ldap_basedn = 'o=domains,dc=corp,dc=example'
ldap_domainadmin_dn = 'o=domainAdmins,dc=corp,dc=example'
ldap_bind_dn = 'cn=vmailadmin,dc=corp,dc=example'
ldap_bind_password = 'Ld@p pass/1'

iredadmin_db_host = '127.0.0.1'
iredadmin_db_port = 3306
iredadmin_db_name = 'iredadmin'
iredadmin_db_user = 'iredadmin'
iredadmin_db_password = 'adm#pw'

amavisd_db_host = '127.0.0.1'
amavisd_db_port = 3306
amavisd_db_name = 'amavisd'
amavisd_db_user = 'amavisd'
amavisd_db_password = 'am@v'

iredapd_db_host = '127.0.0.1'
iredapd_db_port = 3306
iredapd_db_name = 'iredapd'
iredapd_db_user = 'iredapd'
iredapd_db_password = 'apd:pw'

ENABLE_RESTFUL_API = True
RESTRICT_API_ACCESS = True
RESTFUL_API_CLIENTS = ['192.0.2.10', '10.1.0.0/16']
mlmmjadmin_api_auth_token = 'mlmmj-token-123'
DEFAULT_PASSWORD_SCHEME = 'SSHA512'
min_passwd_length = 10
AMAVISD_QUARANTINE_HOST = os.environ.get('QHOST', '127.0.0.1')
SHOW_USED_QUOTA = True
'''


def _convert(tmp_path, text=SETTINGS_PY, *args):
    src = tmp_path / "settings.py"
    src.write_text(text)
    out = tmp_path / "etc" / "iredldap.ini"
    result = CliRunner().invoke(main, ["config-from-iredadmin", str(src), "-o", str(out), *args],
                                env={"IREDLDAP_CONFIG": None})
    return result, out


def test_writes_a_working_ini(tmp_path):
    result, out = _convert(tmp_path)
    assert result.exit_code == 0, result.output + result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    s = Settings.from_sources(environ={}, path=str(out))
    assert s.ldap_uri == "ldap://10.0.0.5:389"
    assert s.ldap_bind_dn == "cn=vmailadmin,dc=corp,dc=example"
    assert s.ldap_bind_password == "Ld@p pass/1"
    assert s.ldap_suffix == "dc=corp,dc=example"
    assert s.domains_dn == "o=domains,dc=corp,dc=example" and s.admins_dn == "o=domainAdmins,dc=corp,dc=example"
    from sqlalchemy.engine import make_url
    for url, user, password, name in ((s.sql_iredadmin_url, "iredadmin", "adm#pw", "iredadmin"),
                                      (s.sql_amavisd_url, "amavisd", "am@v", "amavisd"),
                                      (s.sql_iredapd_url, "iredapd", "apd:pw", "iredapd")):
        u = make_url(url)
        assert (u.drivername, u.username, u.password, u.host, u.port, u.database) == \
            ("mysql+pymysql", user, password, "127.0.0.1", 3306, name)
    assert s.enable_restful_api and s.restrict_api_access
    assert [str(n) for n in s.restful_api_clients] == ["192.0.2.10/32", "10.1.0.0/16"]
    assert s.mlmmjadmin_api_auth_token == "mlmmj-token-123"
    assert s.default_password_scheme == "SSHA512"
    assert s.min_password_length == 10
    assert len(s.secret_key) >= 32
    # What it could not map is named.
    err = result.stderr
    assert "not mapped: AMAVISD_QUARANTINE_HOST (line" in err and "not a plain value" in err
    assert "not mapped: show_used_quota (no iredldap setting)" in err
    assert "not mapped: webmaster (no iredldap setting)" in err
    assert "note: SECRET_KEY" in err
    assert "Ld@p pass/1" not in err     # no secret on the terminal


def test_postgresql_port_and_missing_parts(tmp_path):
    text = SETTINGS_PY.replace("3306", "5432").replace("DEFAULT_PASSWORD_SCHEME = 'SSHA512'",
                                                      "DEFAULT_PASSWORD_SCHEME = 'NTLM'")
    text = "\n".join(l for l in text.splitlines() if not l.startswith("iredapd_db_"))
    result, out = _convert(tmp_path, text)
    assert result.exit_code == 0, result.stderr
    values = out.read_text()
    assert "sql_iredadmin_url = postgresql+psycopg://iredadmin:adm%23pw@127.0.0.1:5432/iredadmin" in values
    assert "sql_iredapd_url" not in values
    assert "not mapped: iredapd_db_* (not in the file: set SQL_IREDAPD_URL)" in result.stderr
    assert "taken for PostgreSQL (port 5432" in result.stderr
    assert "not mapped: DEFAULT_PASSWORD_SCHEME ('NTLM'" in result.stderr


def test_refuses_sql_backends_and_existing_files(tmp_path):
    result, out = _convert(tmp_path, SETTINGS_PY.replace("backend = 'ldap'", "backend = 'mysql'"))
    assert result.exit_code == 2 and "OpenLDAP edition only" in result.stderr
    assert not out.exists()
    first, out = _convert(tmp_path)
    before = out.read_text()
    second, _ = _convert(tmp_path)
    assert second.exit_code == 1 and "--force" in second.stderr and out.read_text() == before
    third, _ = _convert(tmp_path, SETTINGS_PY, "--force")
    assert third.exit_code == 0


def test_force_makes_an_existing_file_private_before_writing_and_never_follows_a_link(tmp_path):
    first, out = _convert(tmp_path)
    out.chmod(0o644)
    # Watch the mode the secrets are written under: any write to a file that
    # is still 0644 would be seen by other users.
    import iredldap.private_files as private_files
    seen = []
    real_fdopen = private_files.os.fdopen

    def fdopen(fd, *args, **kw):
        seen.append(os.fstat(fd).st_mode & 0o777)
        return real_fdopen(fd, *args, **kw)

    private_files.os.fdopen = fdopen
    try:
        again, _ = _convert(tmp_path, SETTINGS_PY, "--force")
    finally:
        private_files.os.fdopen = real_fdopen
    assert again.exit_code == 0, again.stderr
    assert seen == [0o600] and (out.stat().st_mode & 0o777) == 0o600
    # A link at the output path is not followed: the file it points to stays as it was.
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    out.unlink()
    out.symlink_to(victim)
    linked, _ = _convert(tmp_path, SETTINGS_PY, "--force")
    assert linked.exit_code == 1 and "cannot write" in linked.stderr
    assert victim.read_text() == "untouched"
