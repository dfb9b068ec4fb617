"""An offline ldap3 server that knows the iRedMail schema.

ldap3's MOCK_SYNC strategy keeps entries in memory on the Server object and
uses the server's schema to check attribute names, object class names,
single-valued attributes and value syntaxes.  (It does not enforce MUST/MAY
lists or structural rules; only a real slapd does.)  ldap3 ships the subschema
of an OpenLDAP 2.4 server with core, cosine, inetorgperson and nis loaded;
this module adds our amavis.schema and iredmail.schema to it.

Usage::

    conn = ldap3.Connection(mock_server(), user=..., password=...,
                            client_strategy=ldap3.MOCK_SYNC)
"""

from __future__ import annotations

import json
from functools import cache

import ldap3
from ldap3.protocol.rfc4512 import DsaInfo, SchemaInfo
from ldap3.protocol.schemas.slapd24 import slapd_2_4_dsa_info, slapd_2_4_schema

from iredldap.directory.schemafile import SchemaFile, load_schema
from iredldap.paths import schema_dir

__all__ = ["mock_schema", "mock_server", "our_schema"]

# Names from the standard schemas that iRedMail entries rely on.  The bundled
# 2.4 subschema has all of them; checked so a future ldap3 that drops one
# fails loudly here instead of deep inside a test.
REQUIRED_STANDARD = (
    "top", "organization", "organizationalUnit", "dcObject", "person", "inetOrgPerson",
    "shadowAccount", "homeDirectory", "shadowLastChange", "preferredLanguage",
    "employeeNumber", "departmentNumber", "mobile", "memberUid", "gidNumber",
    "mail", "uid", "cn", "sn", "givenName", "userPassword", "member", "uniqueMember",
)

SCHEMA_FILES = ("amavis.schema", "iredmail.schema")

# slapd's stamp on every write, which the bundled 2.4 subschema lacks; known
# here so that searches asking for it (ceilings.py) are accepted.  MOCK_SYNC
# never sets it.
OPERATIONAL = ["( 1.3.6.1.4.1.4203.666.1.7 NAME 'entryCSN' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 "
               "SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )"]


@cache
def our_schema() -> SchemaFile:
    """The definitions of schema/amavis.schema and schema/iredmail.schema."""
    merged = SchemaFile()
    for name in SCHEMA_FILES:
        merged.extend(load_schema(schema_dir() / name))
    return merged


def _merge(existing: list[str], added: list[str]) -> list[str]:
    """Add definitions, replacing any bundled one with the same OID."""
    def oid(definition: str) -> str:
        return definition.strip().lstrip("(").split()[0]

    new_oids = {oid(d) for d in added}
    return [d for d in existing if oid(d) not in new_oids] + added


@cache
def _schema_json() -> str:
    data = json.loads(slapd_2_4_schema)
    raw = data["raw"]
    ours = our_schema()
    raw["attributeTypes"] = _merge(raw["attributeTypes"], [at.definition for at in ours.attribute_types] + OPERATIONAL)
    raw["objectClasses"] = _merge(raw["objectClasses"], [oc.definition for oc in ours.object_classes])
    return json.dumps(data)


@cache
def mock_schema() -> SchemaInfo:
    """The bundled OpenLDAP 2.4 subschema extended with ours (built once)."""
    schema = SchemaInfo.from_json(_schema_json())
    missing = [n for n in REQUIRED_STANDARD if n not in schema.attribute_types and n not in schema.object_classes]
    if missing:
        raise RuntimeError(f"ldap3's bundled OpenLDAP schema lacks {', '.join(missing)}")
    return schema


@cache
def _dsa_info() -> DsaInfo:
    return DsaInfo.from_json(slapd_2_4_dsa_info)


def mock_server() -> ldap3.Server:
    """A fresh Server for ``Connection(..., client_strategy=ldap3.MOCK_SYNC)``.

    Each call returns a new Server because MOCK_SYNC stores the directory
    data on it; the parsed schema is shared (ldap3 only reads it).
    """
    return ldap3.Server.from_definition("iredldap-mock", _dsa_info(), mock_schema())
