"""The lookups Postfix and Dovecot run against the directory (iRedMail's samples).

Tests use them to check that what the API wrote is found by the real
consumers, which never change for us.  `%s` is the full address or domain,
`%d` the domain; Postfix escapes the key as an LDAP filter value, as we do.
"""

from __future__ import annotations

from ldap3.utils.conv import escape_filter_chars

from iredldap.directory.connection import LEVEL, SUBTREE, Directory

DOMAINS = "o=domains,dc=example,dc=com"

# name: (base, scope, filter, result attribute)
POSTFIX = {
    "virtual_mailbox_domains": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(|(domainName=%s)(&(enabledService=domainalias)(domainAliasName=%s)))"
        "(!(domainBackupMX=yes))(accountStatus=active)(enabledService=mail))", "domainName"),
    "relay_domains": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(|(domainName=%s)(&(enabledService=domainalias)(domainAliasName=%s)))"
        "(domainBackupMX=yes)(accountStatus=active)(enabledService=mail))", "domainName"),
    "transport_maps_domain": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(accountStatus=active)(enabledService=mail)"
        "(|(domainName=%s)(domainAliasName=%s)))", "mtaTransport"),
    "virtual_mailbox_maps": (
        DOMAINS, SUBTREE,
        "(&(objectClass=mailUser)(|(mail=%s)(shadowAddress=%s))(accountStatus=active)"
        "(!(domainStatus=disabled))(enabledService=mail)(enabledService=deliver))", "homeDirectory"),
    "transport_maps_user": (
        None, SUBTREE,
        "(&(|(objectClass=mailUser)(&(objectClass=mailList)(enabledService=mlmmj)))(|(mail=%s)(shadowAddress=%s))"
        "(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail))", "mtaTransport"),
    "sender_login_maps": (
        DOMAINS, SUBTREE,
        "(&(objectClass=mailUser)(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail)"
        "(enabledService=smtp)(|(mail=%s)(shadowAddress=%s)))", "mail"),
    "sender_bcc_maps_user": (
        None, LEVEL,
        "(&(|(mail=%s)(shadowAddress=%s))(objectClass=mailUser)(accountStatus=active)(!(domainStatus=disabled))"
        "(enabledService=mail)(enabledService=senderbcc))", "userSenderBccAddress"),
    "recipient_bcc_maps_user": (
        None, LEVEL,
        "(&(|(mail=%s)(shadowAddress=%s))(objectClass=mailUser)(accountStatus=active)(!(domainStatus=disabled))"
        "(enabledService=mail)(enabledService=recipientbcc))", "userRecipientBccAddress"),
    "sender_dependent_relayhost_maps_user": (
        None, LEVEL,
        "(&(objectClass=mailUser)(mail=%s)(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail))",
        "senderRelayHost"),
    "virtual_alias_maps": (
        DOMAINS, SUBTREE,
        "(&(|(mail=%s)(shadowAddress=%s))(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail)"
        "(enabledService=deliver)(|(objectClass=mailAlias)(&(objectClass=mailUser)(enabledService=forward))))",
        "mailForwardingAddress"),
    "virtual_group_maps": (
        DOMAINS, SUBTREE,
        "(&(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail)(enabledService=deliver)"
        "(|(&(|(memberOfGroup=%s)(shadowAddress=%s))(|(objectClass=mailUser)(objectClass=mailExternalUser)))"
        "(&(memberOfGroup=%s)(!(shadowAddress=%s))(|(objectClass=mailAlias)(objectClass=mailList)))"
        "(&(objectClass=mailList)(enabledService=mlmmj)(|(mail=%s)(shadowAddress=%s)))))", "mail"),
    "catchall_maps": (
        DOMAINS, SUBTREE,
        "(&(objectClass=mailUser)(accountStatus=active)(!(domainStatus=disabled))(|(mail=%s)(shadowAddress=%s)))",
        "mailForwardingAddress"),
    "sender_bcc_maps_domain": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(|(domainName=%d)(domainAliasName=%d))(accountStatus=active)"
        "(enabledService=mail)(enabledService=senderbcc))", "domainSenderBccAddress"),
    "recipient_bcc_maps_domain": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(|(domainName=%d)(domainAliasName=%d))(accountStatus=active)"
        "(enabledService=mail)(enabledService=recipientbcc))", "domainRecipientBccAddress"),
    "sender_dependent_relayhost_maps_domain": (
        DOMAINS, LEVEL,
        "(&(objectClass=mailDomain)(accountStatus=active)(enabledService=mail)"
        "(|(domainName=%d)(domainAliasName=%d)))", "senderRelayHost"),
}

DOVECOT_USER = (
    DOMAINS, SUBTREE,
    "(&(objectClass=mailUser)(accountStatus=active)(!(domainStatus=disabled))(enabledService=mail)"
    "(enabledService=%s)(|(mail=%u)(&(enabledService=shadowaddress)(shadowAddress=%u))))")


def postfix(directory: Directory, table: str, key: str) -> list[str]:
    """What Postfix gets for `key` from the named map (all result values)."""
    base, scope, template, result = POSTFIX[table]
    domain = key.rpartition("@")[2]
    if base is None:
        # Per-domain maps search below the domain: `domainName=%d,o=domains` (sub)
        # or its `ou=Users` (one level).
        base = f"domainName={domain},{DOMAINS}" if scope == SUBTREE else f"ou=Users,domainName={domain},{DOMAINS}"
    flt = template.replace("%s", escape_filter_chars(key)).replace("%d", escape_filter_chars(domain))
    values: list[str] = []
    for entry in directory.search(base, flt, scope=scope, attrs=(result,)):
        values.extend(entry.get(result))
    return values


def dovecot_user(directory: Directory, login: str, protocol: str = "imap") -> list[str]:
    """The mail addresses Dovecot's passdb/userdb filter finds for a login."""
    base, scope, template = DOVECOT_USER
    flt = template.replace("%s", protocol).replace("%u", escape_filter_chars(login))
    return [e.first("mail") for e in directory.search(base, flt, scope=scope, attrs=("mail",))]
