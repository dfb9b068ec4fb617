"""A private slapd configured as iRedMail configures its own, for the benchmarks.

Beyond `LocalSlapd` (mdb, iRedMail's schema and indexes): the access rules
of iRedMail's slapd.conf as /work/shared/reference/iredmail-ldap-model.md
§2.4 describes them (password and forwarding attributes: self write, vmail
read, vmailadmin write; the domain and user attributes Postfix and Dovecot
read: vmail read, vmailadmin write, users read; the domain subtrees: their
standalone admins write, their users read; o=domains and o=domainAdmins:
vmail read, vmailadmin write), and the two service accounts `cn=vmail`
and `cn=vmailadmin` below the suffix.  The benchmarked service binds as
`cn=vmailadmin`, as iRedAdmin does, never as the rootdn: slapd then
evaluates every ACL on every operation, as in production.
"""

from __future__ import annotations

from pathlib import Path

import ldap3

from iredldap.directory.localslapd import LocalSlapd, ssha

VMAIL_PASSWORD = "Vmail#bench-pw"
VMAILADMIN_PASSWORD = "Vmailadmin#bench-pw"

_SECRET_ATTRS = "userPassword,mailForwardingAddress,employeeNumber"
_NAME_ATTRS = "cn,sn,gn,givenName,telephoneNumber"
_ADMIN_ATTRS = "domainAdmin,domainGlobalAdmin,domainSenderBccAddress,domainRecipientBccAddress"
_MAIL_ATTRS = ("objectClass,domainName,mtaTransport,enabledService,domainBackupMX,domainMaxQuotaSize,"
               "domainMaxUserNumber,domainPendingAliasName,mail,accountStatus,domainStatus,"
               "userSenderBccAddress,userRecipientBccAddress,mailQuota,backupMailAddress,shadowAddress,"
               "memberOfGroup,member,uniqueMember,storageBaseDirectory,homeDirectory,mailMessageStore,"
               "mailingListID")


class IredmailSlapd(LocalSlapd):
    @property
    def vmail_dn(self) -> str:
        return f"cn=vmail,{self.suffix}"

    @property
    def vmailadmin_dn(self) -> str:
        return f"cn=vmailadmin,{self.suffix}"

    def _acl(self) -> list[str]:
        s = self.suffix
        vmail, admin = f'dn.exact="{self.vmail_dn}"', f'dn.exact="{self.vmailadmin_dn}"'
        return [
            f"access to attrs={_SECRET_ATTRS}",
            "    by anonymous auth", "    by self write", f"    by {vmail} read", f"    by {admin} write",
            "    by users none",
            f"access to attrs={_NAME_ATTRS}",
            "    by anonymous auth", "    by self write", f"    by {vmail} read", f"    by {admin} write",
            "    by users read",
            f"access to attrs={_ADMIN_ATTRS}",
            "    by self read", f"    by {vmail} read", f"    by {admin} write", "    by users none",
            f"access to attrs={_MAIL_ATTRS}",
            "    by anonymous auth", "    by self read", f"    by {vmail} read", f"    by {admin} write",
            "    by users read",
            f'access to dn.regex="domainName=([^,]+),o=domains,{s}$"',
            "    by anonymous auth", "    by self write", f"    by {vmail} read", f"    by {admin} write",
            f'    by dn.regex="mail=[^,]+@$1,o=domainAdmins,{s}$" write',
            f'    by dn.regex="mail=[^,]+@$1,ou=Users,domainName=$1,o=domains,{s}$" read',
            "    by users none",
            f'access to dn.subtree="o=domains,{s}"',
            "    by anonymous auth", "    by self write", f"    by {vmail} read", f"    by {admin} write",
            "    by users read",
            f'access to dn.subtree="o=domainAdmins,{s}"',
            "    by anonymous auth", "    by self write", f"    by {vmail} read", f"    by {admin} write",
            "    by users none",
            "access to *",
            "    by anonymous auth", "    by self write", f"    by {admin} write", "    by users read",
        ]

    def _slapd_conf(self) -> str:
        return super()._slapd_conf() + "\n".join(self._acl()) + "\n"

    def add_service_accounts(self) -> None:
        """cn=vmail and cn=vmailadmin, as the rootdn (once the suffix exists)."""
        conn = self.connection()
        try:
            for dn, name, password in ((self.vmail_dn, "vmail", VMAIL_PASSWORD),
                                       (self.vmailadmin_dn, "vmailadmin", VMAILADMIN_PASSWORD)):
                conn.add(dn, ["person", "top"], {"cn": [name], "sn": [name], "userPassword": [ssha(password)]})
        finally:
            conn.unbind()

    def vmailadmin_connection(self) -> ldap3.Connection:
        conn = ldap3.Connection(ldap3.Server(self.uri, get_info=ldap3.NONE), user=self.vmailadmin_dn,
                                password=VMAILADMIN_PASSWORD, raise_exceptions=True, auto_bind=True)
        return conn


def folder_of(slapd: LocalSlapd) -> Path:
    return slapd.data_dir
