"""Settings: read once, in one place.

One INI file (its path in IREDLDAP_CONFIG; section `[iredldap]`) and then
environment variables `IREDLDAP_<KEY>` on top.  Keys are case-insensitive in
the file.  A missing or malformed setting raises ConfigError naming it, and
`iredldap serve` turns that into one line on stderr.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from iredldap.errors import ConfigError

ENV_PREFIX = "IREDLDAP_"
# Read when neither IREDLDAP_CONFIG nor `iredldap --config` names a file.
DEFAULT_CONFIG = "/etc/iredldap/iredldap.ini"
# IREDLDAP_* variables that are not settings: the file's path, and the
# password `iredldap create-admin` reads (it would otherwise be an unknown
# setting and stop the very command that reads it).
NOT_SETTINGS = frozenset({ENV_PREFIX + "CONFIG", ENV_PREFIX + "ADMIN_PASSWORD",
                          # gunicorn.conf.py's (they are gunicorn's, not the app's).
                          *(ENV_PREFIX + name for name in ("BIND", "WORKERS", "THREADS", "FORWARDED_ALLOW_IPS"))})
LDIF_EXPORT_PASSWORDS = ("global-admins", "always", "never")
MLMMJ_BACKENDS = ("mlmmjadmin", "local")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_TRANSPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PASSWORD_SCHEMES = ("SSHA512", "SSHA", "SHA512", "BCRYPT", "SHA512-CRYPT", "MD5", "PLAIN-MD5", "PLAIN")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_ldap_uris(text: str) -> tuple[str, ...]:
    """URIs separated by spaces or commas, as OpenLDAP's tools take LDAP_URI."""
    return tuple(part for part in re.split(r"[\s,]+", text.strip()) if part)


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off", ""):
        return False
    raise ConfigError(f"{name}: expected yes/no, got {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    nets = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR network") from None
    return tuple(nets)


def _check_sql_url(name: str, url: str) -> None:
    """The URL parses and its driver can be loaded, checked at start-up:
    otherwise every worker would fail on its first query."""
    from sqlalchemy import exc as sa_exc

    from iredldap.db.engine import database_url

    try:
        parsed = database_url(url)
        dialect = parsed.get_dialect()
    except sa_exc.NoSuchModuleError:
        raise ConfigError(f"{name}: unknown database type {url.split('://', 1)[0]!r} "
                          "(use sqlite:///, mysql+pymysql:// or postgresql+psycopg://)") from None
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise ConfigError(f"{name}: not a usable SQLAlchemy URL ({exc})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(f"{name}: the database driver for {parsed.drivername} is not installed ({exc}); "
                          "use mysql+pymysql:// or postgresql+psycopg://") from None


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with its default.

    Field names are the setting keys in lower case; `from_sources` documents
    how they are read.
    """

    # One URI or several, separated by spaces or commas (as OpenLDAP's
    # tools take them): tried in that order (iredldap.directory.connection).
    ldap_uri: str = "ldap://127.0.0.1:389"
    ldap_bind_dn: str = ""
    ldap_bind_password: str = field(default="", repr=False)
    ldap_suffix: str = ""
    # Derived from ldap_suffix unless given.
    ldap_domains_dn: str = ""
    ldap_admins_dn: str = ""
    ldap_timeout: int = 10
    # Seconds before a directory server found down is tried again.
    ldap_retry_interval: int = 10

    sql_iredadmin_url: str = "sqlite:////var/lib/iredldap/iredadmin.sqlite"
    # Amavisd's database (spam policies, white/blacklists) and iRedAPD's
    # (throttling, greylisting); on an iRedMail server: the existing ones.
    sql_amavisd_url: str = "sqlite:////var/lib/iredldap/amavisd.sqlite"
    sql_iredapd_url: str = "sqlite:////var/lib/iredldap/iredapd.sqlite"

    enable_restful_api: bool = True
    restrict_api_access: bool = False
    restful_api_clients: tuple[Network, ...] = ()
    # /metrics only for RESTFUL_API_CLIENTS (/healthz and /readyz stay open).
    restrict_metrics_access: bool = False
    # Addresses of reverse proxies whose X-Forwarded-For we believe.
    trusted_proxies: tuple[Network, ...] = ()
    url_prefix: str = ""

    default_password_scheme: str = "SSHA512"
    storage_base_directory: str = "/var/vmail/vmail1"
    default_mta_transport: str = "dovecot"
    default_language: str = "en_US"
    # Global password policy (a domain's accountSetting overrides the lengths).
    min_password_length: int = 8
    max_password_length: int = 0
    password_has_letter: bool = True
    password_has_uppercase: bool = True
    password_has_number: bool = True
    password_has_special_char: bool = True

    secret_key: str = field(default="", repr=False)
    session_timeout: int = 1800
    session_cookie_name: str = "iRedAdmin-LDAP"
    session_cookie_secure: bool = False
    # Failed logins counted over the window (see iredldap.db.login_throttle):
    # per account and per (address, account) pair, and per address for all
    # accounts; past a threshold each attempt waits LOGIN_BACKOFF_START
    # seconds, doubled per further failure, at most the window.
    login_max_failures: int = 5
    login_failure_window: int = 600
    login_max_failures_per_address: int = 50
    login_backoff_start: int = 30
    # An address the account logged in from within these days is held only
    # to the pair counter (0: none is).
    login_known_address_days: int = 30
    # Password hashes in LDIF exports: global-admins (only a global admin's
    # exports have them), always, or never.
    ldif_export_passwords: str = "global-admins"
    # iRedAdmin's `mlmmjadmin_api_auth_token`, carried over by
    # `iredldap config-from-iredadmin` for mlmmj (subscribable) lists.
    mlmmjadmin_api_auth_token: str = field(default="", repr=False)
    # mlmmj (subscribable) lists: which backend writes the list directories
    # (iredldap.mlmmj.list_spool_of): `mlmmjadmin`, iRedMail's HTTP API,
    # with iRedAdmin's setting names; or `local`, the spool on this machine.
    mlmmj_backend: str = "mlmmjadmin"
    mlmmjadmin_api_base_url: str = "http://127.0.0.1:7790/api"
    mlmmjadmin_api_auth_header: str = "X-MLMMJADMIN-API-AUTH-TOKEN"
    mlmmjadmin_api_verify_ssl: bool = False
    # Seconds a request to mlmmjadmin may take.
    mlmmjadmin_api_timeout: int = 10
    # mtaTransport of a list is `<this>:<domain>/<localpart>` (Postfix's pipe transport).
    mlmmj_mta_transport_name: str = "mlmmj"
    mlmmj_spool_dir: str = "/var/vmail/mlmmj"
    # Where a deleted list is kept (empty: beside it in the spool, as mlmmjadmin).
    mlmmj_archive_dir: str = "/var/vmail/mlmmj-archive"
    mlmmj_skel_dir: str = "/usr/share/mlmmj/text.skel"
    # Bounded input: a request body larger than this many bytes is refused
    # (413) before it is read; a list parameter takes at most this many values.
    max_request_body: int = 1024 * 1024
    max_list_items: int = 1000

    @property
    def ldap_uris(self) -> tuple[str, ...]:
        """LDAP_URI as a list, in the order given."""
        return split_ldap_uris(self.ldap_uri)

    @property
    def domains_dn(self) -> str:
        return self.ldap_domains_dn or f"o=domains,{self.ldap_suffix}"

    @property
    def admins_dn(self) -> str:
        return self.ldap_admins_dn or f"o=domainAdmins,{self.ldap_suffix}"

    # -- reading ------------------------------------------------------------

    @classmethod
    def from_sources(cls, environ: dict[str, str] | None = None, path: str | None = None) -> "Settings":
        """Read the INI file `path`, or the one named by IREDLDAP_CONFIG, or
        DEFAULT_CONFIG if it exists; then the environment.  An error in the
        settings says which file was read (or that none was)."""
        environ = dict(os.environ if environ is None else environ)
        raw: dict[str, str] = {}
        path = path or environ.get(ENV_PREFIX + "CONFIG")
        if not path and Path(DEFAULT_CONFIG).is_file():
            path = DEFAULT_CONFIG
        if path:
            parser = configparser.ConfigParser(interpolation=None)
            try:
                with open(path, encoding="utf-8") as fh:
                    parser.read_file(fh)
            except OSError as exc:
                raise ConfigError(f"IREDLDAP_CONFIG: cannot read {path}: {exc.strerror}") from None
            except configparser.Error as exc:
                raise ConfigError(f"IREDLDAP_CONFIG: {path} is not a valid INI file: {exc}") from None
            section = "iredldap" if parser.has_section("iredldap") else None
            if section is None:
                raise ConfigError(f"IREDLDAP_CONFIG: {path} has no [iredldap] section")
            raw.update({k.lower(): v for k, v in parser.items(section)})
        for key, value in environ.items():
            if key.startswith(ENV_PREFIX) and key not in NOT_SETTINGS:
                raw[key[len(ENV_PREFIX):].lower()] = value
        try:
            return cls.from_mapping(raw)
        except ConfigError as exc:
            where = (f"settings file: {path}" if path else
                     f"no settings file was read: set IREDLDAP_CONFIG, use `iredldap --config FILE` "
                     f"or create {DEFAULT_CONFIG}")
            raise ConfigError(f"{exc.reason} ({where})") from None

    @classmethod
    def from_mapping(cls, raw: dict[str, str]) -> "Settings":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"{unknown[0].upper()}: unknown setting")
        values: dict[str, Any] = {}
        for key, text in raw.items():
            name = key.upper()
            default = known[key].default
            if isinstance(default, bool):
                values[key] = _bool(name, text)
            elif isinstance(default, int):
                values[key] = _int(name, text)
            elif isinstance(default, tuple):
                values[key] = _networks(name, text)
            else:
                values[key] = text.strip()
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.ldap_suffix:
            raise ConfigError("LDAP_SUFFIX: missing (e.g. dc=example,dc=com)")
        if not self.ldap_uris:
            raise ConfigError("LDAP_URI: missing (e.g. ldap://127.0.0.1:389)")
        for uri in self.ldap_uris:
            if not uri.startswith(("ldap://", "ldaps://", "ldapi://")):
                raise ConfigError(f"LDAP_URI: expected ldap://, ldaps:// or ldapi:// URIs separated by spaces "
                                  f"or commas, got {uri!r}")
        if len(set(u.lower() for u in self.ldap_uris)) != len(self.ldap_uris):
            raise ConfigError("LDAP_URI: a server is listed twice")
        if self.ldap_retry_interval < 1:
            raise ConfigError("LDAP_RETRY_INTERVAL: must be a positive number of seconds")
        if not self.ldap_bind_dn:
            raise ConfigError("LDAP_BIND_DN: missing (the read-write DN, e.g. cn=vmailadmin,dc=example,dc=com)")
        if not self.ldap_bind_password:
            raise ConfigError("LDAP_BIND_PASSWORD: missing")
        if self.default_password_scheme.upper() not in PASSWORD_SCHEMES:
            raise ConfigError(
                f"DEFAULT_PASSWORD_SCHEME: {self.default_password_scheme!r} is not one of {', '.join(PASSWORD_SCHEMES)}")
        if len(self.secret_key) < 16:
            raise ConfigError("SECRET_KEY: missing or shorter than 16 characters")
        if self.url_prefix and (not self.url_prefix.startswith("/") or self.url_prefix.endswith("/")):
            raise ConfigError(f"URL_PREFIX: must start with / and not end with / (e.g. /iredadmin), got {self.url_prefix!r}")
        if not self.storage_base_directory.startswith("/"):
            raise ConfigError("STORAGE_BASE_DIRECTORY: must be an absolute path")
        if "://" not in self.sql_iredadmin_url:
            raise ConfigError("SQL_IREDADMIN_URL: expected an SQLAlchemy URL such as sqlite:////var/lib/iredldap/iredadmin.sqlite")
        for key in ("sql_amavisd_url", "sql_iredapd_url"):
            if "://" not in getattr(self, key):
                raise ConfigError(f"{key.upper()}: expected an SQLAlchemy URL such as "
                                  f"mysql+pymysql://amavisd:secret@127.0.0.1/amavisd")
        for key in ("sql_iredadmin_url", "sql_amavisd_url", "sql_iredapd_url"):
            _check_sql_url(key.upper(), getattr(self, key))
        if self.session_timeout <= 0:
            raise ConfigError("SESSION_TIMEOUT: must be a positive number of seconds")
        # 0 would not mean "no limit": every login would be refused as one failure too many.
        if self.login_max_failures < 1:
            raise ConfigError("LOGIN_MAX_FAILURES: must be at least 1")
        if self.login_max_failures_per_address < 1:
            raise ConfigError("LOGIN_MAX_FAILURES_PER_ADDRESS: must be at least 1")
        for key in ("login_failure_window", "login_backoff_start"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key.upper()}: must be a positive number of seconds")
        if self.login_known_address_days < 0:
            raise ConfigError("LOGIN_KNOWN_ADDRESS_DAYS: must not be negative")
        if self.ldif_export_passwords not in LDIF_EXPORT_PASSWORDS:
            raise ConfigError(f"LDIF_EXPORT_PASSWORDS: expected one of {', '.join(LDIF_EXPORT_PASSWORDS)}, "
                              f"got {self.ldif_export_passwords!r}")
        if self.max_request_body < 1024:
            raise ConfigError("MAX_REQUEST_BODY: must be at least 1024 bytes")
        if self.max_list_items < 1:
            raise ConfigError("MAX_LIST_ITEMS: must be at least 1")
        self._check_mlmmj()
        if self.restrict_api_access and not self.restful_api_clients:
            raise ConfigError("RESTFUL_API_CLIENTS: empty while RESTRICT_API_ACCESS is on; nobody could use the API")
        if self.restrict_metrics_access and not self.restful_api_clients:
            raise ConfigError("RESTFUL_API_CLIENTS: empty while RESTRICT_METRICS_ACCESS is on; "
                              "nobody could read /metrics")

    def _check_mlmmj(self) -> None:
        if self.mlmmj_backend not in MLMMJ_BACKENDS:
            raise ConfigError(f"MLMMJ_BACKEND: expected one of {', '.join(MLMMJ_BACKENDS)}, got {self.mlmmj_backend!r}")
        if not self.mlmmjadmin_api_base_url.startswith(("http://", "https://")):
            raise ConfigError("MLMMJADMIN_API_BASE_URL: expected an http:// or https:// URL such as "
                              "http://127.0.0.1:7790/api")
        if not _HEADER_NAME.fullmatch(self.mlmmjadmin_api_auth_header):
            raise ConfigError(f"MLMMJADMIN_API_AUTH_HEADER: {self.mlmmjadmin_api_auth_header!r} is not an HTTP header name")
        if self.mlmmjadmin_api_timeout < 1:
            raise ConfigError("MLMMJADMIN_API_TIMEOUT: must be a positive number of seconds")
        if not _TRANSPORT_NAME.fullmatch(self.mlmmj_mta_transport_name):
            raise ConfigError(f"MLMMJ_MTA_TRANSPORT_NAME: {self.mlmmj_mta_transport_name!r} is not a Postfix "
                              "transport name")
        for key in ("mlmmj_spool_dir", "mlmmj_skel_dir"):
            if not getattr(self, key).startswith("/"):
                raise ConfigError(f"{key.upper()}: must be an absolute path")
        if self.mlmmj_archive_dir and not self.mlmmj_archive_dir.startswith("/"):
            raise ConfigError("MLMMJ_ARCHIVE_DIR: must be an absolute path (or empty)")
