"""An iredldap INI from an existing iRedAdmin(-Pro) `settings.py`.

The file is Python; it is parsed (never run): top-level assignments of plain
values (strings, numbers, booleans, lists) are read, anything computed is
reported as not mapped.  Names are matched case-insensitively, since
iRedAdmin's own files mix `ldap_uri` and `DEFAULT_PASSWORD_SCHEME`.

What maps:

* `ldap_uri`, `ldap_bind_dn`, `ldap_bind_password`; `ldap_basedn`
  (`o=domains,<suffix>`: our LDAP_DOMAINS_DN, and LDAP_SUFFIX is its parent)
  and `ldap_domainadmin_dn`;
* the three databases `iredadmin_db_*`, `amavisd_db_*`, `iredapd_db_*`
  (`host`, `port`, `name`, `user`, `password`) as SQLAlchemy URLs.  The
  database kind is `SQL_DB_DRIVER`/`sql_db_type` when one is given
  (`mysql`, `mariadb`, `pgsql`, `postgresql`), else port 5432 means
  PostgreSQL and anything else MariaDB/MySQL (iRedMail's default) -- the
  notes say which was assumed;
* `ENABLE_RESTFUL_API`, `RESTRICT_API_ACCESS`, `RESTFUL_API_CLIENTS`;
* `DEFAULT_PASSWORD_SCHEME`, `storage_base_directory`,
  `default_mta_transport`, `default_language`, `SESSION_TIMEOUT`,
  `min_passwd_length`, `max_passwd_length`, `PASSWORD_HAS_*`;
* `mlmmjadmin_api_auth_token`, and `MLMMJADMIN_API_BASE_URL`,
  `MLMMJADMIN_API_AUTH_HEADER`, `MLMMJADMIN_API_VERIFY_SSL`,
  `MLMMJ_MTA_TRANSPORT_NAME` when the file sets them (mlmmj lists).

SECRET_KEY gets a new random value (iRedAdmin's sessions are not ours).
"""

from __future__ import annotations

import ast
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

from iredldap.config import PASSWORD_SCHEMES, Settings
from iredldap.errors import ConfigError

_DIRECT = {
    "ldap_uri": "ldap_uri",
    "ldap_bind_dn": "ldap_bind_dn",
    "ldap_bind_password": "ldap_bind_password",
    "ldap_domainadmin_dn": "ldap_admins_dn",
    "storage_base_directory": "storage_base_directory",
    "default_mta_transport": "default_mta_transport",
    "default_language": "default_language",
    "session_timeout": "session_timeout",
    "min_passwd_length": "min_password_length",
    "max_passwd_length": "max_password_length",
    "password_has_letter": "password_has_letter",
    "password_has_uppercase": "password_has_uppercase",
    "password_has_number": "password_has_number",
    "password_has_special_char": "password_has_special_char",
    "enable_restful_api": "enable_restful_api",
    "restrict_api_access": "restrict_api_access",
    "mlmmjadmin_api_auth_token": "mlmmjadmin_api_auth_token",
    # iRedAdmin's defaults (libs/default_settings.py), when settings.py overrides them.
    "mlmmjadmin_api_base_url": "mlmmjadmin_api_base_url",
    "mlmmjadmin_api_auth_header": "mlmmjadmin_api_auth_header",
    "mlmmjadmin_api_verify_ssl": "mlmmjadmin_api_verify_ssl",
    "mlmmj_mta_transport_name": "mlmmj_mta_transport_name",
}
_DATABASES = {"iredadmin": "sql_iredadmin_url", "amavisd": "sql_amavisd_url", "iredapd": "sql_iredapd_url"}
_DB_PARTS = ("host", "port", "name", "user", "password")
_DRIVER_NAMES = ("sql_db_driver", "sql_db_type", "db_type")
_MYSQL, _PGSQL = ("mysql", "mariadb"), ("pgsql", "postgresql", "postgres")
# Names read here without an iredldap key of their own.
_UNDERSTOOD = {"backend", "ldap_basedn", "restful_api_clients", "default_password_scheme", *_DRIVER_NAMES}


@dataclass
class Conversion:
    values: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)        # what was assumed or made up
    unmapped: list[str] = field(default_factory=list)     # what could not be carried over

    def ini(self) -> str:
        lines = ["# Written by `iredldap config-from-iredadmin`.", "[iredldap]"]
        lines += [f"{key} = {value}" for key, value in self.values.items()]
        return "\n".join(lines) + "\n"


def _text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return str(value)


def read_assignments(source: str, filename: str = "settings.py") -> tuple[dict[str, object], list[str]]:
    """Top-level `NAME = <plain value>` of a Python file (lower-cased names), and the names skipped."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ConfigError(f"{filename}: not a Python file iRedAdmin could read (line {exc.lineno}: {exc.msg})") \
            from None
    found: dict[str, object] = {}
    skipped: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            skipped += [f"{n} (line {node.lineno}: not a plain value)" for n in names]
            continue
        for name in names:
            found[name.lower()] = literal
    return found, skipped


def _database_url(prefix: str, found: dict[str, object], kind_hint: str | None, conv: Conversion) -> str | None:
    parts = {p: found.get(f"{prefix}_db_{p}") for p in _DB_PARTS}
    if not any(v not in (None, "") for v in parts.values()):
        return None
    port = str(parts["port"] or "").strip()
    if kind_hint in _PGSQL or (kind_hint is None and port == "5432"):
        scheme, kind = "postgresql+psycopg", "PostgreSQL"
    else:
        scheme, kind = "mysql+pymysql", "MariaDB/MySQL"
    if kind_hint is None:
        conv.notes.append(f"{prefix} database taken for {kind} (port {port or 'not given'}; no SQL_DB_DRIVER)")
    user = quote(str(parts["user"] or prefix), safe="")
    password = parts["password"]
    auth = user + (f":{quote(str(password), safe='')}" if password not in (None, "") else "")
    host = str(parts["host"] or "127.0.0.1")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{auth}@{host}{':' + port if port else ''}/{quote(str(parts['name'] or prefix), safe='')}"


def convert(source: str, filename: str = "settings.py") -> Conversion:
    found, skipped = read_assignments(source, filename)
    conv = Conversion()
    conv.unmapped += skipped
    backend = str(found.get("backend", "ldap")).lower()
    if backend != "ldap":
        raise ConfigError(f"{filename}: backend = {backend!r}; iredldap serves the OpenLDAP edition only")

    basedn = str(found.get("ldap_basedn", "") or "")
    for name, key in _DIRECT.items():
        if name in found and found[name] not in (None, ""):
            conv.values[key] = _text(found[name])
    if basedn:
        conv.values["ldap_domains_dn"] = basedn
        first, _, parent = basedn.partition(",")
        if parent:
            conv.values["ldap_suffix"] = parent
        else:
            conv.unmapped.append(f"ldap_basedn ({basedn!r} has no parent for LDAP_SUFFIX)")
    else:
        conv.unmapped.append("ldap_basedn (missing: set LDAP_SUFFIX)")
    # Our order: LDAP first, as iRedAdmin's file.
    conv.values = dict(sorted(conv.values.items(), key=lambda kv: (not kv[0].startswith("ldap_"), )))

    kind = next((str(found[n]).lower() for n in _DRIVER_NAMES if found.get(n)), None)
    if kind is not None and kind not in _MYSQL + _PGSQL:
        conv.unmapped.append(f"SQL_DB_DRIVER ({kind!r} is not mysql or pgsql)")
        kind = None
    for prefix, key in _DATABASES.items():
        url = _database_url(prefix, found, kind, conv)
        if url is None:
            conv.unmapped.append(f"{prefix}_db_* (not in the file: set {key.upper()})")
        else:
            conv.values[key] = url

    clients = found.get("restful_api_clients")
    if clients:
        conv.values["restful_api_clients"] = _text(clients if isinstance(clients, (list, tuple, set))
                                                   else [clients])
    scheme = found.get("default_password_scheme")
    if scheme:
        if str(scheme).upper() in PASSWORD_SCHEMES:
            conv.values["default_password_scheme"] = str(scheme).upper()
        else:
            conv.unmapped.append(f"DEFAULT_PASSWORD_SCHEME ({scheme!r}: iredldap knows {', '.join(PASSWORD_SCHEMES)})")

    conv.values["secret_key"] = secrets.token_urlsafe(32)
    conv.notes.append("SECRET_KEY: a new random value (iRedAdmin's sessions do not carry over)")

    for name in sorted(found):
        if name not in _DIRECT and name not in _UNDERSTOOD and not any(
                name.startswith(f"{p}_db_") for p in _DATABASES):
            conv.unmapped.append(f"{name} (no iredldap setting)")

    try:
        Settings.from_mapping(dict(conv.values))
    except ConfigError as exc:
        conv.notes.append(f"the result does not start yet: {exc.reason}")
    return conv
