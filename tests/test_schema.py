"""The schema files: their content, and that slapd and the ldap3 mock load them.

The expected tables below restate the published iRedMail schema (names, OIDs,
matching rules, syntaxes with length hints, single-value flags, object class
kinds and MUST/MAY lists) so a change to schema/*.schema or *.ldif that would
make a real iRedMail directory's entries invalid shows up here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPAttributeError

from iredldap.directory.localslapd import SLAPD, LocalSlapd, slapd_available
from iredldap.directory.mock import mock_schema, mock_server
from iredldap.directory.schemafile import (
    AttributeTypeDef,
    ObjectClassDef,
    SchemaFile,
    load_schema,
    parse_attribute_type,
    parse_object_class,
)
from iredldap.paths import schema_dir

# Lets this module run on its own; conftest registers the same plugin and
# pytest loads a plugin module only once.  (Nothing is imported from it
# directly: that would import it before pytest can register it.)

SUFFIX = "dc=example,dc=com"  # the suffix of the `slapd` fixture

IRED = "1.3.6.1.4.1.32349.1.2."
IA5 = "1.3.6.1.4.1.1466.115.121.1.26"
INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
DSTRING = "1.3.6.1.4.1.1466.115.121.1.15"
GTIME = "1.3.6.1.4.1.1466.115.121.1.24"
BOOLEAN = "1.3.6.1.4.1.1466.115.121.1.7"
CI_IA5 = "caseIgnoreIA5Match"
CI_SUB = "caseIgnoreSubstringsMatch"

# name: (OID, EQUALITY, SUBSTR, SYNTAX, SINGLE-VALUE)
IREDMAIL_ATTRIBUTES: dict[str, tuple[str, str, str | None, str, bool]] = {
    "domainName": (IRED + "1.1", CI_IA5, CI_SUB, IA5 + "{255}", True),
    "mtaTransport": (IRED + "1.2", CI_IA5, CI_SUB, IA5, True),
    "domainStatus": (IRED + "1.3", CI_IA5, CI_SUB, IA5, True),
    "domainAdmin": (IRED + "1.4", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "domainGlobalAdmin": (IRED + "1.5", CI_IA5, CI_SUB, IA5, True),
    "domainBackupMX": (IRED + "1.6", CI_IA5, CI_SUB, IA5, True),
    "domainSenderBccAddress": (IRED + "1.7", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "domainRecipientBccAddress": (IRED + "1.8", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "domainMaxQuotaSize": (IRED + "1.9", "integerMatch", None, INTEGER, True),
    "domainCurrentQuotaSize": (IRED + "1.10", CI_IA5, CI_SUB, IA5, True),
    "domainMaxUserNumber": (IRED + "1.11", "integerMatch", None, INTEGER, True),
    "domainCurrentUserNumber": (IRED + "1.12", "integerMatch", None, INTEGER, True),
    "domainMaxAliasNumber": (IRED + "1.13", "integerMatch", None, INTEGER, True),
    "domainCurrentAliasNumber": (IRED + "1.14", "integerMatch", None, INTEGER, True),
    "domainMaxListNumber": (IRED + "1.15", "integerMatch", None, INTEGER, True),
    "domainCurrentListNumber": (IRED + "1.16", "integerMatch", None, INTEGER, True),
    "disclaimer": (IRED + "1.17", "caseIgnoreMatch", CI_SUB, DSTRING, True),
    "domainDefaultUserQuota": (IRED + "1.18", "integerMatch", None, INTEGER, True),
    "domainAliasName": (IRED + "1.19", CI_IA5, CI_SUB, IA5 + "{255}", False),
    "domainWhitelistIP": (IRED + "1.20", CI_IA5, CI_SUB, IA5, False),
    "domainWhitelistSender": (IRED + "1.21", CI_IA5, CI_SUB, IA5, False),
    "domainBlacklistIP": (IRED + "1.22", CI_IA5, CI_SUB, IA5, False),
    "domainBlacklistSender": (IRED + "1.23", CI_IA5, CI_SUB, IA5, False),
    "domainPendingAliasName": (IRED + "1.24", CI_IA5, CI_SUB, IA5 + "{255}", False),
    "mailUID": (IRED + "2.1", "integerMatch", None, INTEGER, True),
    "mailGID": (IRED + "2.2", "integerMatch", None, INTEGER, True),
    "storageBaseDirectory": (IRED + "2.3", "caseExactIA5Match", None, IA5, True),
    "mailMessageStore": (IRED + "2.4", "caseExactIA5Match", None, IA5, True),
    "mailQuota": (IRED + "2.5", "integerMatch", None, INTEGER, True),
    "mailQuotaMessageLimit": (IRED + "2.6", "integerMatch", None, INTEGER, True),
    "mailHost": (IRED + "2.7", CI_IA5, None, IA5, True),
    "mailForwardingAddress": (IRED + "2.8", CI_IA5, "caseIgnoreIA5SubstringsMatch", IA5 + "{320}", False),
    "accountStatus": (IRED + "2.9", CI_IA5, CI_SUB, IA5, True),
    "userRecipientBccAddress": (IRED + "2.10", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "userSenderBccAddress": (IRED + "2.11", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "backupMailAddress": (IRED + "2.12", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "enabledService": (IRED + "2.13", CI_IA5, CI_SUB, IA5, False),
    "memberOfGroup": (IRED + "2.14", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "expiredDate": (IRED + "2.18", "generalizedTimeMatch", None, GTIME, True),
    "shadowAddress": (IRED + "2.19", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "accountSetting": (IRED + "2.20", CI_IA5, CI_SUB, IA5, False),
    "userManager": (IRED + "2.21", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "mailWhitelistRecipient": (IRED + "2.22", CI_IA5, CI_SUB, IA5, False),
    "mailBlacklistRecipient": (IRED + "2.23", CI_IA5, CI_SUB, IA5, False),
    "disabledService": (IRED + "2.24", CI_IA5, CI_SUB, IA5, False),
    "allowNets": (IRED + "2.25", "caseIgnoreMatch", CI_SUB, DSTRING + "{1024}", True),
    "senderRelayHost": (IRED + "2.26", CI_IA5, CI_SUB, IA5 + "{255}", True),
    "maxMessageSize": (IRED + "2.27", "integerMatch", None, INTEGER, True),
    "mailboxFormat": (IRED + "2.28", CI_IA5, CI_SUB, IA5 + "{50}", True),
    "mailboxFolder": (IRED + "2.29", CI_IA5, CI_SUB, IA5 + "{50}", True),
    "recoveryEmail": (IRED + "2.30", CI_IA5, CI_SUB, IA5 + "{320}", True),
    "birthday": (IRED + "2.31", CI_IA5, CI_SUB, IA5 + "{10}", True),
    "accessPolicy": (IRED + "3.1", CI_IA5, CI_SUB, IA5, True),
    "hasMember": (IRED + "3.2", CI_IA5, CI_SUB, IA5, True),
    "listAllowedUser": (IRED + "3.3", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "listModerator": (IRED + "3.4", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "listOwner": (IRED + "3.5", CI_IA5, CI_SUB, IA5 + "{320}", False),
    "mailingListID": (IRED + "3.6", CI_IA5, CI_SUB, IA5 + "{36}", False),
}

IREDMAIL_OBJECT_CLASSES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "mailDomain": (IRED + "4.1", "STRUCTURAL", ("domainName",), (
        "cn", "mtaTransport", "domainAdmin", "enabledService",
        "disabledService", "domainBackupMX", "accountStatus", "mailHost",
        "domainSenderBccAddress", "domainRecipientBccAddress", "domainMaxQuotaSize", "domainCurrentQuotaSize",
        "domainMaxUserNumber", "domainCurrentUserNumber", "domainMaxAliasNumber", "domainCurrentAliasNumber",
        "domainMaxListNumber", "domainCurrentListNumber", "domainDefaultUserQuota", "domainAliasName",
        "domainPendingAliasName", "disclaimer", "description", "street",
        "telephoneNumber", "facsimileTelephoneNumber", "expiredDate", "accountSetting",
        "domainWhitelistIP", "domainWhitelistSender", "domainBlacklistIP", "domainBlacklistSender",
        "preferredLanguage", "senderRelayHost",
    )),
    "mailAdmin": (IRED + "4.2", "STRUCTURAL", ("mail",), (
        "domainGlobalAdmin", "description", "enabledService", "disabledService",
        "userPassword", "accountStatus", "cn", "sn",
        "preferredLanguage", "givenName", "expiredDate", "mailHost",
        "accountSetting", "shadowLastChange",
    )),
    "mailUser": (IRED + "4.3", "AUXILIARY", ("mail", "uid"), (
        "storageBaseDirectory", "mailMessageStore", "homeDirectory", "userPassword",
        "mailHost", "mailUID", "mailGID", "mailQuota",
        "mailQuotaMessageLimit", "mailForwardingAddress", "shadowAddress", "accountStatus",
        "userRecipientBccAddress", "userSenderBccAddress", "enabledService", "disabledService",
        "telephoneNumber", "backupMailAddress", "mtaTransport", "memberOfGroup",
        "expiredDate", "preferredLanguage", "disclaimer", "accountSetting",
        "title", "userManager", "mailWhitelistRecipient", "mailBlacklistRecipient",
        "domainGlobalAdmin", "allowNets", "senderRelayHost", "domainStatus",
        "maxMessageSize", "mailboxFormat", "mailboxFolder", "recoveryEmail",
        "birthday",
    )),
    "mailAlias": (IRED + "4.4", "STRUCTURAL", ("mail",), (
        "accountStatus", "description", "cn", "memberOfGroup",
        "enabledService", "disabledService", "mailForwardingAddress", "shadowAddress",
        "expiredDate", "accountSetting", "mailHost", "domainStatus",
        "accessPolicy", "listModerator",
    )),
    "mailList": (IRED + "4.5", "STRUCTURAL", ("mail",), (
        "cn", "accountStatus", "description", "accessPolicy",
        "shadowAddress", "enabledService", "disabledService", "memberOfGroup",
        "hasMember", "listAllowedUser", "expiredDate", "accountSetting",
        "mailHost", "member", "uniqueMember", "memberUid",
        "gidNumber", "domainStatus", "listModerator", "listOwner",
        "mtaTransport", "mailinglistID", "maxMessageSize",
    )),
    "mailExternalUser": (IRED + "4.6", "STRUCTURAL", ("memberOfGroup",), (
        "cn", "accountStatus", "mail", "enabledService",
        "disabledService", "description", "mailHost", "accountSetting",
        "shadowAddress", "domainStatus",
    )),
}

AMAVIS_ATTRIBUTE_NAMES = (
    "amavisVirusLover", "amavisBannedFilesLover", "amavisBypassVirusChecks", "amavisBypassSpamChecks",
    "amavisSpamTagLevel", "amavisSpamTag2Level", "amavisSpamKillLevel", "amavisSpamModifiesSubj",
    "amavisWhitelistSender", "amavisBlacklistSender", "amavisSpamQuarantineTo", "amavisSpamLover",
    "amavisBadHeaderLover", "amavisBypassBannedChecks", "amavisBypassHeaderChecks", "amavisVirusQuarantineTo",
    "amavisBannedQuarantineTo", "amavisBadHeaderQuarantineTo", "amavisLocal", "amavisMessageSizeLimit",
    "amavisWarnVirusRecip", "amavisWarnBannedRecip", "amavisWarnBadHeaderRecip", "amavisVirusAdmin",
    "amavisNewVirusAdmin", "amavisSpamAdmin", "amavisBannedAdmin", "amavisBadHeaderAdmin",
    "amavisBannedRuleNames", "amavisSpamDsnCutoffLevel", "amavisSpamQuarantineCutoffLevel", "amavisSpamSubjectTag",
    "amavisSpamSubjectTag2", "amavisArchiveQuarantineTo", "amavisAddrExtensionVirus", "amavisAddrExtensionSpam",
    "amavisAddrExtensionBanned", "amavisAddrExtensionBadHeader", "amavisSpamTag3Level", "amavisSpamSubjectTag3",
    "amavisUncheckedQuarantineTo", "amavisCleanQuarantineTo", "amavisUncheckedLover", "amavisForwardMethod",
    "amavisSaUserConf", "amavisSaUserName", "amavisDisclaimerOptions",
)  # OIDs 1.3.6.1.4.1.15312.2.2.1.1 ... .47, in this order
AMAVIS_ACCOUNT_OID = "1.3.6.1.4.1.15312.2.2.2.1"


def schema(name: str) -> SchemaFile:
    return load_schema(schema_dir() / name)


def by_name(items: list[Any]) -> dict[str, Any]:
    return {item.name: item for item in items}


# --- (a) the files ------------------------------------------------------------


@pytest.mark.parametrize("filename", ["iredmail.schema", "iredmail.ldif"])
def test_iredmail_attribute_types(filename: str) -> None:
    attrs = by_name(schema(filename).attribute_types)
    assert len(schema(filename).attribute_types) == 58
    assert set(attrs) == set(IREDMAIL_ATTRIBUTES)
    assert {a.oid for a in attrs.values()} == {v[0] for v in IREDMAIL_ATTRIBUTES.values()}
    for name, (oid, equality, substr, syntax, single) in IREDMAIL_ATTRIBUTES.items():
        at = attrs[name]
        got = (at.oid, at.equality, at.substr, at.syntax, at.single_value)
        assert got == (oid, equality, substr, syntax, single), name
        assert at.names == (name,) and at.ordering is None and at.sup is None and at.desc


@pytest.mark.parametrize("filename", ["iredmail.schema", "iredmail.ldif"])
def test_iredmail_object_classes(filename: str) -> None:
    classes = by_name(schema(filename).object_classes)
    assert set(classes) == set(IREDMAIL_OBJECT_CLASSES)
    for name, (oid, kind, must, may) in IREDMAIL_OBJECT_CLASSES.items():
        oc = classes[name]
        assert (oc.oid, oc.kind, oc.sup, oc.must, oc.may) == (oid, kind, ("top",), must, may), name


def test_iredmail_details_that_matter() -> None:
    for filename in ("iredmail.schema", "iredmail.ldif"):
        s = schema(filename)
        assert s.attribute_type("domainCurrentQuotaSize").syntax == IA5  # a string, not an INTEGER
        assert s.attribute_type("mailForwardingAddress").substr == "caseIgnoreIA5SubstringsMatch"
        assert s.attribute_type("mailingListID").single_value is False
        assert s.object_class("mailUser").kind == "AUXILIARY"
        assert s.object_class("mailExternalUser").must == ("memberOfGroup",)
        assert "mailinglistID" in s.object_class("mailList").may  # upstream spelling, matches case-insensitively


@pytest.mark.parametrize("family", ["iredmail", "amavis"])
def test_schema_and_ldif_forms_agree(family: str) -> None:
    conf, ldif = schema(f"{family}.schema"), schema(f"{family}.ldif")
    assert conf.attribute_types == ldif.attribute_types  # dataclass equality: every field but the raw text
    assert conf.object_classes == ldif.object_classes


def test_amavis_schema() -> None:
    s = schema("amavis.schema")
    assert [at.name for at in s.attribute_types] == list(AMAVIS_ATTRIBUTE_NAMES)
    assert [at.oid for at in s.attribute_types] == [f"1.3.6.1.4.1.15312.2.2.1.{n}" for n in range(1, 48)]
    local = s.attribute_type("amavisLocal")
    assert (local.oid, local.equality, local.syntax, local.single_value) == (
        "1.3.6.1.4.1.15312.2.2.1.19", "booleanMatch", BOOLEAN, True)
    assert s.attribute_type("amavisWhitelistSender").single_value is False
    assert s.attribute_type("amavisSpamSubjectTag").substr == "caseExactSubstringsMatch"
    (account,) = s.object_classes
    assert (account.name, account.oid, account.kind, account.sup, account.must) == (
        "amavisAccount", AMAVIS_ACCOUNT_OID, "AUXILIARY", ("top",), ())
    assert set(account.may) == set(AMAVIS_ATTRIBUTE_NAMES) | {"cn", "description"}
    assert len(account.may) == 49


def index_lines() -> list[str]:
    text = (schema_dir() / "indexes.conf").read_text()
    return [" ".join(line.split()[1:]) for line in text.splitlines() if line.startswith("index ")]


def index_ldif_values() -> tuple[str, list[str]]:
    """(dn, olcDbIndex values) of indexes.ldif, checking it is the expected change record."""
    lines = [line for line in (schema_dir() / "indexes.ldif").read_text().splitlines() if not line.startswith("#")]
    assert lines[0].startswith("dn: ") and lines[1:3] == ["changetype: modify", "add: olcDbIndex"]
    values = [line.split(": ", 1)[1] for line in lines[3:] if line.startswith("olcDbIndex: ")]
    return lines[0][4:], values


def test_index_files_agree() -> None:
    dn, values = index_ldif_values()
    assert dn == "olcDatabase={1}mdb,cn=config"
    assert values == index_lines()
    indexed = {attr.lower() for line in index_lines() for attr in line.split()[0].split(",")}
    # a few iRedMail lookups that must stay indexed
    assert {"mail", "shadowaddress", "domainname", "domainaliasname", "memberofgroup",
            "mailforwardingaddress", "enabledservice", "accountstatus", "mailinglistid"} <= indexed


# --- entries shared by the slapd and mock tests --------------------------------

DOMAIN_DN = f"domainName=example.com,o=domains,{SUFFIX}"
USER_DN = f"mail=john@example.com,ou=Users,{DOMAIN_DN}"

BASE_ENTRIES: list[tuple[str, list[str], dict[str, Any]]] = [
    (SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "example"}),
    (f"o=domains,{SUFFIX}", ["organization"], {"o": "domains"}),
    (f"o=domainAdmins,{SUFFIX}", ["organization"], {"o": "domainAdmins"}),
]

DOMAIN_ENTRY = (DOMAIN_DN, ["mailDomain"], {
    "domainName": "example.com", "cn": "Example Inc.", "mtaTransport": "dovecot", "accountStatus": "active",
    "enabledService": ["mail", "senderbcc", "recipientbcc"],
    "accountSetting": ["defaultQuota:1024", "minPasswordLength:8"],
    "domainAdmin": "admin@other.tld", "domainAliasName": ["example.net", "example.org"],
    "senderRelayHost": "[192.0.2.1]:587", "domainBackupMX": "no",
    "domainSenderBccAddress": "bcc-out@example.com", "domainRecipientBccAddress": "bcc-in@example.com",
    "domainCurrentQuotaSize": "10737418240", "domainCurrentUserNumber": 100, "disclaimer": "Bonjour — merci",
})

USER_ENTRY = (USER_DN, ["inetOrgPerson", "shadowAccount", "amavisAccount", "mailUser"], {
    "mail": "john@example.com", "uid": "john", "cn": "John Smith", "sn": "Smith", "givenName": "John",
    "userPassword": "{SSHA}secret", "accountStatus": "active", "mailQuota": 1073741824,
    "homeDirectory": "/var/vmail/vmail1/example.com/j/o/h/john-2026.05.14.10.20.30/",
    "mailboxFormat": "maildir", "enabledService": ["mail", "smtp", "imap", "pop3", "deliver", "internal"],
    "shadowLastChange": 20000, "amavisLocal": "TRUE", "preferredLanguage": "en_US", "domainStatus": "active",
    "shadowAddress": ["john.smith@example.com"], "mailForwardingAddress": ["john@elsewhere.tld"],
    "memberOfGroup": ["list@example.com"], "employeeNumber": "42", "expiredDate": "20991231235959Z",
})

OTHER_ENTRIES: list[tuple[str, list[str], dict[str, Any]]] = [
    (f"mail=@example.com,ou=Users,{DOMAIN_DN}", ["inetOrgPerson", "mailUser"], {
        "mail": "@example.com", "uid": "@example.com", "cn": "catch-all", "sn": "catch-all",
        "accountStatus": "active", "mailForwardingAddress": ["john@example.com"]}),
    (f"mail=info@example.com,ou=Aliases,{DOMAIN_DN}", ["mailAlias"], {
        "mail": "info@example.com", "accountStatus": "active", "enabledService": ["mail", "deliver"],
        "mailForwardingAddress": ["john@example.com"], "accessPolicy": "public",
        "listModerator": ["john@example.com"]}),
    (f"mail=list@example.com,ou=Groups,{DOMAIN_DN}", ["mailList"], {
        "mail": "list@example.com", "cn": "List", "accountStatus": "active", "accessPolicy": "membersonly",
        "enabledService": ["mail", "deliver", "mlmmj"], "mtaTransport": "mlmmj:example.com/list",
        "mailingListID": "0b5c6e2e-5b7b-4b5d-9a7e-2d0c8f2f1a11", "listOwner": ["john@example.com"]}),
    (f"memberOfGroup=list@example.com,ou=Externals,{DOMAIN_DN}", ["mailExternalUser"], {
        "memberOfGroup": "list@example.com", "mail": ["a@outside.tld", "b@outside.tld"], "accountStatus": "active"}),
    (f"mail=admin@other.tld,o=domainAdmins,{SUFFIX}", ["mailAdmin"], {
        "mail": "admin@other.tld", "cn": "Admin", "userPassword": "{SSHA}x", "accountStatus": "active",
        "domainGlobalAdmin": "no", "enabledService": ["domainadmin"], "preferredLanguage": "en_US",
        "shadowLastChange": 20000}),
]


def ou_entries() -> list[tuple[str, list[str], dict[str, Any]]]:
    return [(f"ou={ou},{DOMAIN_DN}", ["organizationalUnit"], {"ou": ou})
            for ou in ("Users", "Groups", "Aliases", "Externals")]


def all_entries() -> list[tuple[str, list[str], dict[str, Any]]]:
    return [*BASE_ENTRIES, DOMAIN_ENTRY, *ou_entries(), USER_ENTRY, *OTHER_ENTRIES]


def add_all(conn: ldap3.Connection, entries: list[tuple[str, list[str], dict[str, Any]]]) -> None:
    for dn, classes, attrs in entries:
        assert conn.add(dn, classes, attrs), (dn, conn.result)


# --- (b) slapd started from slapd.conf ------------------------------------------


def published(conn: ldap3.Connection) -> tuple[dict[str, AttributeTypeDef], dict[str, ObjectClassDef]]:
    """Our attribute types and object classes as the server's subschema lists them, by name."""
    assert conn.search("cn=Subschema", "(objectClass=subschema)", ldap3.BASE,
                       attributes=["attributeTypes", "objectClasses"])
    entry = conn.response[0]["attributes"]
    ours = ("( 1.3.6.1.4.1.32349.", "( 1.3.6.1.4.1.15312.")
    attrs = [parse_attribute_type(v) for v in entry["attributeTypes"] if v.startswith(ours)]
    classes = [parse_object_class(v) for v in entry["objectClasses"] if v.startswith(ours)]
    return by_name(attrs), by_name(classes)


def assert_published_as_in_files(conn: ldap3.Connection) -> None:
    attrs, classes = published(conn)
    expected = schema("amavis.schema")
    expected.extend(schema("iredmail.schema"))
    assert set(attrs) == {at.name for at in expected.attribute_types}
    assert len(attrs) == 58 + 47
    for at in expected.attribute_types:
        assert attrs[at.name] == at, at.name  # every field, DESC included
    assert set(classes) == {oc.name for oc in expected.object_classes}
    for oc in expected.object_classes:
        got = classes[oc.name]
        assert (got.oid, got.kind, got.must) == (oc.oid, oc.kind, oc.must), oc.name
        assert [n.lower() for n in got.may] == [n.lower() for n in oc.may], oc.name


@pytest.mark.slapd
def test_slapd_publishes_schema(slapd: LocalSlapd) -> None:
    conn = slapd.connection()
    try:
        assert_published_as_in_files(conn)
        attrs, classes = published(conn)
        assert attrs["domainCurrentQuotaSize"].syntax == IA5
        assert attrs["mailForwardingAddress"].substr == "caseIgnoreIA5SubstringsMatch"
        assert classes["mailUser"].kind == "AUXILIARY"
        assert classes["mailExternalUser"].must == ("memberOfGroup",)
    finally:
        conn.unbind()


@pytest.mark.slapd
def test_slapd_rootpw_is_hashed(slapd: LocalSlapd) -> None:
    conf = slapd.conf_path.read_text()
    assert "rootpw {SSHA}" in conf and slapd.root_password not in conf
    conn = ldap3.Connection(ldap3.Server(slapd.uri, get_info=ldap3.NONE), user=slapd.root_dn, password="wrong")
    assert not conn.bind() and conn.result["result"] == 49  # invalidCredentials
    assert slapd.running()


@pytest.mark.slapd
def test_slapd_accepts_iredmail_tree(slapd_conn: ldap3.Connection) -> None:
    add_all(slapd_conn, all_entries())
    assert slapd_conn.search(DOMAIN_DN, "(&(objectClass=mailUser)(accountStatus=active)(amavisLocal=TRUE))",
                             attributes=["mailQuota", "enabledService", "shadowAddress"])
    dns = {e["dn"] for e in slapd_conn.response}
    assert USER_DN in dns
    assert slapd_conn.search(SUFFIX, "(|(mail=john.smith@example.com)(shadowAddress=john.smith@example.com))")
    assert [e["dn"] for e in slapd_conn.response] == [USER_DN]


# --- (d) what a real slapd refuses and MOCK_SYNC would not ---------------------

BAD_ENTRIES = {
    "mailUser without uid": (
        f"mail=nouid@example.com,{SUFFIX}", ["inetOrgPerson", "mailUser"],
        {"mail": "nouid@example.com", "cn": "x", "sn": "x"}, 65),  # objectClassViolation
    "mailExternalUser without memberOfGroup": (
        f"cn=ext,{SUFFIX}", ["mailExternalUser"], {"cn": "ext", "mail": "a@b.c"}, 65),
    "attribute outside MUST/MAY": (
        f"domainName=bad.com,{SUFFIX}", ["mailDomain"], {"domainName": "bad.com", "uid": "nope"}, 65),
    "two values in a SINGLE-VALUE attribute": (
        f"domainName=two.com,{SUFFIX}", ["mailDomain"],
        {"domainName": "two.com", "accountStatus": ["active", "disabled"]}, 19),  # constraintViolation
    "non-integer quota": (
        f"mail=q@example.com,{SUFFIX}", ["inetOrgPerson", "mailUser"],
        {"mail": "q@example.com", "uid": "q", "cn": "q", "sn": "q", "mailQuota": "lots"}, 21),  # invalidAttributeSyntax
    "only an auxiliary class": (
        f"mail=aux@example.com,{SUFFIX}", ["mailUser"], {"mail": "aux@example.com", "uid": "aux"}, 65),
}


@pytest.mark.slapd
@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_slapd_refuses_schema_violations(slapd_conn: ldap3.Connection, case: str) -> None:
    add_all(slapd_conn, BASE_ENTRIES[:1])
    dn, classes, attrs, code = BAD_ENTRIES[case]
    assert not slapd_conn.add(dn, classes, attrs)
    assert slapd_conn.result["result"] == code, slapd_conn.result


# --- (c) slapd started from the cn=config .ldif files --------------------------


@pytest.mark.slapd
def test_ldif_forms_load_into_cn_config(tmp_path: Path) -> None:
    if not slapd_available():
        pytest.fail(f"{SLAPD} is missing: install OpenLDAP's slapd", pytrace=False)
    server = LocalSlapd(tmp_path / "slapd", suffix=SUFFIX, config_style="ldif")
    server.start()
    try:
        conn = server.connection()
        assert_published_as_in_files(conn)
        add_all(conn, [*BASE_ENTRIES, DOMAIN_ENTRY, *ou_entries(), USER_ENTRY])
        bad_dn, bad_classes, bad_attrs, code = BAD_ENTRIES["mailUser without uid"]
        assert not conn.add(bad_dn, bad_classes, bad_attrs) and conn.result["result"] == code
        conn.unbind()

        # indexes.ldif is a change for cn=config; slapd checks every index on the way in
        config = server.connection(server.config_dn, server.root_password)
        dn, values = index_ldif_values()
        assert config.modify(dn, {"olcDbIndex": [(ldap3.MODIFY_ADD, values)]}), config.result
        assert config.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["olcDbIndex"])
        assert config.response[0]["attributes"]["olcDbIndex"] == values
        config.unbind()
    finally:
        server.stop()


# --- (e) the ldap3 MOCK_SYNC server ---------------------------------------------


def mock_connection() -> ldap3.Connection:
    conn = ldap3.Connection(mock_server(), client_strategy=ldap3.MOCK_SYNC, raise_exceptions=False)
    conn.bind()
    return conn


def test_mock_knows_the_schema() -> None:
    info = mock_schema()
    for name in [*IREDMAIL_ATTRIBUTES, *AMAVIS_ATTRIBUTE_NAMES, "homeDirectory", "shadowLastChange",
                 "preferredLanguage", "employeeNumber", "mail", "uid"]:
        assert name in info.attribute_types, name
    for name in [*IREDMAIL_OBJECT_CLASSES, "amavisAccount", "inetOrgPerson", "shadowAccount",
                 "organization", "organizationalUnit", "dcObject"]:
        assert name in info.object_classes, name
    assert info.attribute_types["accountStatus"].single_value
    assert info.object_classes["mailUser"].kind == ldap3.protocol.rfc4512.CLASS_AUXILIARY
    assert mock_server() is not mock_server()  # fresh data store each time


def test_mock_accepts_iredmail_tree() -> None:
    conn = mock_connection()
    add_all(conn, all_entries())
    assert conn.search(DOMAIN_DN, "(&(objectClass=mailUser)(accountStatus=active))",
                       attributes=["mailQuota", "amavisLocal", "enabledService"])
    users = {e["dn"]: e["attributes"] for e in conn.response}
    assert users[USER_DN]["mailQuota"] == 1073741824
    assert users[USER_DN]["amavisLocal"] is True
    assert conn.search(f"o=domainAdmins,{SUFFIX}", "(objectClass=mailAdmin)", attributes=["mail"])
    assert [e["attributes"]["mail"] for e in conn.response] == [["admin@other.tld"]]
    # every mock_server() starts empty
    assert not mock_connection().search(SUFFIX, "(objectClass=*)")


def test_mock_checks_names_but_not_structure() -> None:
    conn = mock_connection()
    with pytest.raises(LDAPAttributeError):
        conn.add(f"cn=x,{SUFFIX}", ["person"], {"cn": "x", "sn": "x", "noSuchAttribute": "1"})
    # MUST lists are not enforced by the mock: only a real slapd catches this
    dn, classes, attrs, _ = BAD_ENTRIES["mailUser without uid"]
    assert conn.add(dn, classes, attrs)
