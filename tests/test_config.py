"""Settings: the INI file, IREDLDAP_* overrides, derived values, and one clear
error naming the setting when something is missing or wrong."""

from __future__ import annotations

import ipaddress
import os

import pytest
from click.testing import CliRunner

from iredldap.cli import main
from iredldap.config import Settings
from iredldap.errors import ConfigError

REQUIRED = {
    "IREDLDAP_LDAP_BIND_DN": "cn=vmailadmin,dc=example,dc=com",
    "IREDLDAP_LDAP_BIND_PASSWORD": "bind-pw",
    "IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com",
    "IREDLDAP_SECRET_KEY": "0123456789abcdef0123",
}

INI = """\
[iredldap]
LDAP_URI = ldap://ldap.internal:389
ldap_bind_dn = cn=vmailadmin,dc=example,dc=com
Ldap_Bind_Password = from-file
ldap_suffix = dc=example,dc=com
secret_key = file-secret-0123456789
session_timeout = 900
enable_restful_api = no
restful_api_clients = 192.0.2.1, 10.0.0.0/8 ,2001:db8::/32
url_prefix = /iredadmin
default_password_scheme = ssha
"""


def settings_from(environ: dict[str, str], path=None) -> Settings:
    return Settings.from_sources(environ=environ, path=path)


def error_of(environ: dict[str, str], path=None) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from(environ, path)
    return str(info.value)


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "iredldap.ini"
    path.write_text(INI, encoding="utf-8")
    return path


# -- reading -------------------------------------------------------------------

def test_ini_file_named_by_environment(ini):
    s = settings_from({"IREDLDAP_CONFIG": str(ini)})
    assert s.ldap_uri == "ldap://ldap.internal:389"
    assert s.ldap_bind_password == "from-file"
    assert s.session_timeout == 900
    assert s.enable_restful_api is False
    assert s.url_prefix == "/iredadmin"
    assert s.default_password_scheme.upper() == "SSHA"
    assert s.restful_api_clients == (ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("10.0.0.0/8"),
                                     ipaddress.ip_network("2001:db8::/32"))


def test_environment_wins_over_the_file(ini):
    s = settings_from({"IREDLDAP_CONFIG": str(ini), "IREDLDAP_LDAP_BIND_PASSWORD": "from-env",
                       "IREDLDAP_SESSION_TIMEOUT": "60", "IREDLDAP_ENABLE_RESTFUL_API": "yes",
                       "IREDLDAP_URL_PREFIX": ""})
    assert s.ldap_bind_password == "from-env"
    assert s.session_timeout == 60
    assert s.enable_restful_api is True
    assert s.url_prefix == ""
    assert s.ldap_uri == "ldap://ldap.internal:389"         # not overridden: from the file


def test_path_argument(ini):
    assert settings_from({}, path=str(ini)).ldap_bind_password == "from-file"


def test_environment_alone_and_defaults():
    s = settings_from(dict(REQUIRED))
    assert s.ldap_uri == "ldap://127.0.0.1:389"
    assert s.enable_restful_api is True
    assert s.restrict_api_access is False
    assert s.url_prefix == ""
    assert s.default_password_scheme == "SSHA512"
    assert s.storage_base_directory == "/var/vmail/vmail1"
    assert s.sql_iredadmin_url.startswith("sqlite:")
    assert s.session_cookie_secure is False


def test_other_environment_variables_are_ignored():
    s = settings_from({**REQUIRED, "HOME": "/root", "LDAP_SUFFIX": "dc=wrong", "iredldap_x": "1"})
    assert s.ldap_suffix == "dc=example,dc=com"


def test_containers_derived_from_the_suffix():
    s = settings_from(dict(REQUIRED))
    assert s.domains_dn == "o=domains,dc=example,dc=com"
    assert s.admins_dn == "o=domainAdmins,dc=example,dc=com"


def test_containers_can_be_overridden():
    s = settings_from({**REQUIRED, "IREDLDAP_LDAP_DOMAINS_DN": "ou=mail,dc=example,dc=com",
                       "IREDLDAP_LDAP_ADMINS_DN": "ou=admins,dc=example,dc=com"})
    assert s.domains_dn == "ou=mail,dc=example,dc=com"
    assert s.admins_dn == "ou=admins,dc=example,dc=com"


@pytest.mark.parametrize("text,value", [("yes", True), ("no", False), ("true", True), ("False", False),
                                        ("1", True), ("0", False), ("on", True), ("OFF", False)])
def test_boolean_spellings(text, value):
    assert settings_from({**REQUIRED, "IREDLDAP_RESTRICT_API_ACCESS": text,
                          "IREDLDAP_RESTFUL_API_CLIENTS": "127.0.0.1"}).restrict_api_access is value


def test_variables_of_the_command_line_are_not_settings():
    # `iredldap create-admin` reads the password from IREDLDAP_ADMIN_PASSWORD.
    settings_from({**REQUIRED, "IREDLDAP_ADMIN_PASSWORD": "S3cret#pw"})


# -- errors name the setting ------------------------------------------------------

def without(key: str) -> dict[str, str]:
    return {k: v for k, v in REQUIRED.items() if k != key}


@pytest.mark.parametrize("environ,name", [
    (without("IREDLDAP_LDAP_SUFFIX"), "LDAP_SUFFIX"),
    (without("IREDLDAP_LDAP_BIND_DN"), "LDAP_BIND_DN"),
    (without("IREDLDAP_LDAP_BIND_PASSWORD"), "LDAP_BIND_PASSWORD"),
    (without("IREDLDAP_SECRET_KEY"), "SECRET_KEY"),
    ({**REQUIRED, "IREDLDAP_SECRET_KEY": "short"}, "SECRET_KEY"),
    ({**REQUIRED, "IREDLDAP_DEFAULT_PASSWORD_SCHEME": "ROT13"}, "DEFAULT_PASSWORD_SCHEME"),
    ({**REQUIRED, "IREDLDAP_RESTFUL_API_CLIENTS": "192.0.2.1, not-an-ip"}, "RESTFUL_API_CLIENTS"),
    ({**REQUIRED, "IREDLDAP_RESTFUL_API_CLIENTS": "10.0.0.0/33"}, "RESTFUL_API_CLIENTS"),
    ({**REQUIRED, "IREDLDAP_TRUSTED_PROXIES": "proxy.example.com"}, "TRUSTED_PROXIES"),
    ({**REQUIRED, "IREDLDAP_RESTRICT_API_ACCESS": "yes"}, "RESTFUL_API_CLIENTS"),
    ({**REQUIRED, "IREDLDAP_ENABLE_RESTFUL_API": "maybe"}, "ENABLE_RESTFUL_API"),
    ({**REQUIRED, "IREDLDAP_SESSION_TIMEOUT": "half an hour"}, "SESSION_TIMEOUT"),
    ({**REQUIRED, "IREDLDAP_SESSION_TIMEOUT": "0"}, "SESSION_TIMEOUT"),
    ({**REQUIRED, "IREDLDAP_LOGIN_MAX_FAILURES": "0"}, "LOGIN_MAX_FAILURES"),
    ({**REQUIRED, "IREDLDAP_URL_PREFIX": "/iredadmin/"}, "URL_PREFIX"),
    ({**REQUIRED, "IREDLDAP_URL_PREFIX": "iredadmin"}, "URL_PREFIX"),
    ({**REQUIRED, "IREDLDAP_LDAP_URI": "http://ldap"}, "LDAP_URI"),
    ({**REQUIRED, "IREDLDAP_STORAGE_BASE_DIRECTORY": "vmail"}, "STORAGE_BASE_DIRECTORY"),
    ({**REQUIRED, "IREDLDAP_SQL_IREDADMIN_URL": "/var/lib/iredadmin.sqlite"}, "SQL_IREDADMIN_URL"),
    ({**REQUIRED, "IREDLDAP_LDAP_SUFIX": "dc=typo"}, "LDAP_SUFIX"),
])
def test_bad_setting_names_the_setting(environ, name):
    message = error_of(environ)
    assert message.startswith(name + ":"), message
    assert "\n" not in message


def test_unknown_key_in_the_file(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text(INI + "colour = blue\n", encoding="utf-8")
    assert error_of({}, str(path)).startswith("COLOUR:")


def test_file_without_the_section(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text(INI.replace("[iredldap]", "[other]"), encoding="utf-8")
    assert error_of({"IREDLDAP_CONFIG": str(path)}).startswith("IREDLDAP_CONFIG:")


def test_missing_file(tmp_path):
    assert error_of({"IREDLDAP_CONFIG": str(tmp_path / "none.ini")}).startswith("IREDLDAP_CONFIG:")


def test_secrets_not_in_repr():
    text = repr(settings_from(dict(REQUIRED)))
    assert REQUIRED["IREDLDAP_SECRET_KEY"] not in text
    assert REQUIRED["IREDLDAP_LDAP_BIND_PASSWORD"] not in text


# -- the command line ---------------------------------------------------------------

def clean_env(**values: str) -> dict[str, str | None]:
    """CliRunner's env: unset every IREDLDAP_* variable of the test run, then set ours."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("IREDLDAP_")}
    env.update(values)
    return env


@pytest.mark.parametrize("change,name", [
    ({"IREDLDAP_LDAP_SUFFIX": None}, "LDAP_SUFFIX"),
    ({"IREDLDAP_ENABLE_RESTFUL_API": "perhaps"}, "ENABLE_RESTFUL_API"),
    ({"IREDLDAP_RESTFUL_API_CLIENTS": "nowhere"}, "RESTFUL_API_CLIENTS"),
])
def test_serve_with_a_bad_setting_exits_with_one_line(change, name):
    env = clean_env(**REQUIRED)
    env.update(change)
    result = CliRunner().invoke(main, ["serve", "--bind", "127.0.0.1:1"], env=env)
    assert result.exit_code not in (0, None)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.output


def test_create_admin_with_password_from_environment(slapd_directory, tmp_path, settings):
    """IREDLDAP_ADMIN_PASSWORD is read by the command, not taken for an unknown setting."""
    env = clean_env(
        IREDLDAP_LDAP_URI=slapd_directory.uri,
        IREDLDAP_LDAP_BIND_DN=slapd_directory.bind_dn,
        IREDLDAP_LDAP_BIND_PASSWORD="secret",
        IREDLDAP_LDAP_SUFFIX=settings.ldap_suffix,
        IREDLDAP_SECRET_KEY=settings.secret_key,
        IREDLDAP_SQL_IREDADMIN_URL=settings.sql_iredadmin_url,
        IREDLDAP_ADMIN_PASSWORD="S3cret#pw",
    )
    result = CliRunner().invoke(main, ["create-admin", "boss@admins.test", "--standalone"], env=env)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    entry = slapd_directory.get(f"mail=boss@admins.test,{settings.admins_dn}")
    assert entry is not None and entry.get("domainGlobalAdmin") == ["yes"]


def test_gunicorn_conf_variables_are_not_settings():
    """gunicorn.conf.py reads IREDLDAP_BIND, _WORKERS, _THREADS and
    _FORWARDED_ALLOW_IPS; the app must not refuse them as unknown settings."""
    env = {"IREDLDAP_LDAP_SUFFIX": "dc=example,dc=com", "IREDLDAP_LDAP_BIND_DN": "cn=Manager,dc=example,dc=com",
           "IREDLDAP_LDAP_BIND_PASSWORD": "secret", "IREDLDAP_SECRET_KEY": "x" * 20,
           "IREDLDAP_BIND": "127.0.0.1:9000", "IREDLDAP_WORKERS": "2", "IREDLDAP_THREADS": "4",
           "IREDLDAP_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    assert Settings.from_sources(env).ldap_suffix == "dc=example,dc=com"


def test_input_bounds_are_settings():
    base = {"IREDLDAP_LDAP_SUFFIX": "dc=x", "IREDLDAP_LDAP_BIND_DN": "cn=x,dc=x", "IREDLDAP_LDAP_BIND_PASSWORD": "x",
            "IREDLDAP_SECRET_KEY": "x" * 20}
    settings = Settings.from_sources(base)
    assert (settings.max_request_body, settings.max_list_items) == (1024 * 1024, 1000)
    settings = Settings.from_sources({**base, "IREDLDAP_MAX_REQUEST_BODY": "4096", "IREDLDAP_MAX_LIST_ITEMS": "5"})
    assert (settings.max_request_body, settings.max_list_items) == (4096, 5)
    with pytest.raises(ConfigError, match="MAX_LIST_ITEMS"):
        Settings.from_sources({**base, "IREDLDAP_MAX_LIST_ITEMS": "0"})
    with pytest.raises(ConfigError, match="MAX_REQUEST_BODY"):
        Settings.from_sources({**base, "IREDLDAP_MAX_REQUEST_BODY": "10"})
