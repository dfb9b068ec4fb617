"""Account types, declared once.

Each declaration names the template the entry is created from (object
classes, RDN and parent come from the template's `dn:` line), and the
fields: an API parameter and where it goes in LDAP (an attribute, or an
`accountSetting` key).  Create, update, GET and the API document are derived
from these declarations; parameters whose effect is more than "set one
value" (catch-all, alias domains, services ...) are declared here too, and
the store implements them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from iredldap.model import validators
from iredldap.errors import InvalidInput
from iredldap.model.listing import list_params
from iredldap.model.params import (ACCOUNT_STATUS, INT64_MAX, Boolean, Choice, Converted, DomainList, Email, EmailList, Integer,
                     JoinedList, NameList, Param, ParamSet, Secret, Text)
from iredldap.model.templates import Template, load


def _language(value: str, *, param: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", value):
        raise InvalidInput(f"{param}: {value!r} is not a language code such as en_US", param=param)
    return value


LANGUAGE = Converted(check=_language, allow_empty=True, description="language code, e.g. en_US")


@dataclass(frozen=True)
class Field:
    param: Param
    attr: str = ""            # an LDAP attribute
    setting: str = ""         # or an accountSetting key
    # API value -> LDAP value; None (or an empty value) removes the attribute.
    encode: Callable[[Any], str | None] = str
    # An enabledService value that must be present while the field is set.
    service: str = ""
    on_create: bool = True
    # The attribute holds a list (the parameter is a comma-separated list).
    multi: bool = False


@dataclass(frozen=True)
class AccountType:
    name: str
    template_name: str
    fields: tuple[Field, ...]
    # Parameters handled by the store's own code.
    extra_update: tuple[Param, ...] = ()
    extra_create: tuple[Param, ...] = ()
    conflicts: tuple[tuple[str, ...], ...] = ()
    requires: tuple[tuple[str, str], ...] = ()

    @property
    def template(self) -> Template:
        return load(self.template_name)

    @property
    def object_classes(self) -> tuple[str, ...]:
        return self.template.object_classes

    @property
    def rdn_attr(self) -> str:
        return self.template.dn.split("=", 1)[0]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.param.name == name)

    def create_params(self) -> ParamSet:
        return ParamSet(tuple(f.param for f in self.fields if f.on_create) + self.extra_create,
                        self.conflicts, self.requires)

    def update_params(self) -> ParamSet:
        return ParamSet(tuple(f.param for f in self.fields) + self.extra_update, self.conflicts, self.requires)


MiB = 1024 * 1024
# Quotas in MB: mailQuota holds bytes (an LDAP Integer that Dovecot reads as
# a signed 64-bit number), so MB × MiB must fit in 64 bits.
MAX_QUOTA_MB = INT64_MAX // MiB
MB = Integer(minimum=0, maximum=MAX_QUOTA_MB)
# Counts of accounts: far more than any server holds, and within the 32-bit
# integers iRedAdmin's own code and forms assume.
MAX_COUNT = 2**31 - 1
LIMIT = Integer(minimum=-1, maximum=MAX_COUNT)  # -1: may not create any

DOMAIN_SERVICES = ("mail", "domainalias", "senderbcc", "recipientbcc", "self-service")
DOMAIN_PROFILES = ("bcc", "relay", "catchall", "aliases", "throttle", "greylisting", "wblist", "spampolicy",
                   "backupmx", "password_policies", "advanced")
USER_PROFILES = ("bcc", "forwarding", "relay", "aliases", "throttle", "greylisting", "wblist", "spampolicy")
USER_PREFERENCES = ("personal_info", "forwarding", "wblist", "quarantine", "rcvd_mails", "spampolicy")

# Parameters of PUT /api/domain/<domain> that need more than one attribute set.
_DOMAIN_EXTRA = (
    Param("is_backupmx", Boolean(), "Serve as backup MX for this domain", global_only=True, profile="backupmx"),
    Param("primarymx", Converted(check=validators.mx_host, description="host or IP, optional :port"),
          "Primary MX to relay to (with is_backupmx=yes)", global_only=True, profile="backupmx"),
    Param("catchall", EmailList(), "Catch-all targets (empty: no catch-all)", profile="catchall"),
    Param("aliasDomains", DomainList(), "Replace all alias domains (empty: none)", profile="aliases"),
    Param("addAliasDomain", DomainList(), "Add alias domains", profile="aliases"),
    Param("removeAliasDomain", DomainList(), "Remove alias domains", profile="aliases"),
    Param("services", NameList(DOMAIN_SERVICES), "Replace the enabled services", global_only=True),
    Param("addService", NameList(DOMAIN_SERVICES), "Enable services", aliases=("enableService",),
          global_only=True),
    Param("removeService", NameList(DOMAIN_SERVICES), "Disable services", aliases=("disableService",),
          global_only=True),
    Param("removeAllServices", Text(16), "Disable every service, mail included (value ignored)",
          global_only=True),
    Param("disableDomainProfile", NameList(DOMAIN_PROFILES), "Hide domain profile tabs from normal admins",
          global_only=True),
    Param("enableDomainProfile", NameList(DOMAIN_PROFILES), "Show domain profile tabs to normal admins",
          global_only=True),
    Param("disableUserProfile", NameList(USER_PROFILES), "Hide user profile tabs from normal admins",
          global_only=True),
    Param("enableUserProfile", NameList(USER_PROFILES), "Show user profile tabs to normal admins",
          global_only=True),
    Param("disableUserPreference", NameList(USER_PREFERENCES), "Hide self-service preferences from users",
          global_only=True),
    Param("enableUserPreference", NameList(USER_PREFERENCES), "Show self-service preferences to users",
          global_only=True),
)

DOMAIN = AccountType(
    name="domain",
    template_name="domain",
    fields=(
        Field(Param("name", Text(255), "Short description of the domain (company name)", aliases=("cn",)), attr="cn"),
        Field(Param("accountStatus", ACCOUNT_STATUS, "Enable or disable the domain: active, disabled"),
              attr="accountStatus"),
        Field(Param("language", LANGUAGE, "Default preferred language of new users", aliases=("preferredLanguage",)),
              attr="preferredLanguage"),
        Field(Param("transport", Converted(check=validators.transport, allow_empty=False,
                                           description="Postfix transport"),
                    "Transport program (mtaTransport)", aliases=("mtaTransport",), global_only=True),
              attr="mtaTransport"),
        Field(Param("quota", MB, "Mailbox quota of the whole domain, in MB (0: unlimited)", global_only=True),
              setting="domainQuota", encode=lambda mb: f"{mb}:MB"),
        Field(Param("defaultQuota", MB, "Default quota of new users, in MB"), setting="defaultQuota"),
        Field(Param("maxUserQuota", MB, "Largest quota a user may get, in MB", global_only=True),
              setting="maxUserQuota"),
        Field(Param("minPasswordLength", Integer(minimum=0, maximum=1024), "Shortest password allowed",
                    profile="password_policies"), setting="minPasswordLength"),
        Field(Param("maxPasswordLength", Integer(minimum=0, maximum=1024), "Longest password allowed (0: no limit)",
                    profile="password_policies"), setting="maxPasswordLength"),
        Field(Param("numberOfUsers", LIMIT, "Most mail users (0: unlimited, -1: none)", global_only=True),
              setting="numberOfUsers"),
        Field(Param("numberOfAliases", LIMIT, "Most aliases (0: unlimited, -1: none)", global_only=True),
              setting="numberOfAliases"),
        Field(Param("numberOfLists", LIMIT, "Most mailing lists (0: unlimited, -1: none)", global_only=True),
              setting="numberOfLists"),
        Field(Param("senderBcc", Email(allow_empty=True), "BCC address for mail sent from the domain (empty: none)",
                    profile="bcc"), attr="domainSenderBccAddress", service="senderbcc"),
        Field(Param("recipientBcc", Email(allow_empty=True), "BCC address for mail sent to the domain (empty: none)",
                    profile="bcc"), attr="domainRecipientBccAddress", service="recipientbcc"),
        Field(Param("outboundRelay", Converted(check=validators.relay_host, description="Postfix next hop"),
                    "Relay host for outbound mail, e.g. smtp:[192.0.2.1]:25 (empty: none)", profile="relay",
                    normal_admin_check=validators.tenant_relay_host),
              attr="senderRelayHost"),
    ),
    extra_update=_DOMAIN_EXTRA,
    extra_create=tuple(p for p in _DOMAIN_EXTRA
                       if p.name in ("catchall", "aliasDomains", "is_backupmx", "primarymx")),
    conflicts=(
        ("aliasDomains", "addAliasDomain"), ("aliasDomains", "removeAliasDomain"),
        ("transport", "is_backupmx"), ("transport", "primarymx"),
        ("services", "addService"), ("services", "removeService"),
        ("removeAllServices", "services"), ("removeAllServices", "addService"), ("removeAllServices", "removeService"),
    ),
    requires=(("primarymx", "is_backupmx"),),
)

DOMAIN_ADMINS_PARAMS = ParamSet((
    Param("addAdmin", EmailList(), "Make these admins of the domain"),
    Param("removeAdmin", EmailList(), "Remove these admins from the domain"),
    Param("removeAllAdmins", Text(16), "Remove every admin of the domain (value ignored)"),
), conflicts=(("removeAllAdmins", "addAdmin"), ("removeAllAdmins", "removeAdmin")))

DOMAIN_SERVICES_PARAMS = ParamSet(tuple(p for p in _DOMAIN_EXTRA
                                        if p.name in ("services", "addService", "removeService", "removeAllServices")),
                                  conflicts=tuple(c for c in DOMAIN.conflicts
                                                  if all("ervice" in name for name in c)))

DOMAIN_LIST_PARAMS = ParamSet((
    Param("name_only", Boolean(), "Return only the domain names"),
    Param("disabled_only", Boolean(), "Return only disabled domains"),
)) + list_params(("domain", "name"), (("domainName", "domain"), ("cn", "name")), what="domain name")



# -- aliases and mailing lists --------------------------------------------------

ACCESS_POLICY = Choice(("public", "domain", "subdomain", "membersonly", "moderatorsonly",
                        "membersandmoderatorsonly"),
                       synonyms=(("allowedonly", "moderatorsonly"), ("open", "public")))


def _sender_pattern(value: str, *, param: str) -> str:
    """A listAllowedUser item: an address, `domain`, `*@domain` or `.domain`."""
    item = value.lower()
    bare = item[2:] if item.startswith("*@") else item[1:] if item.startswith((".", "@")) else item
    if "@" in bare:
        validators.email(bare, param=param)
    else:
        validators.domain_name(bare, param=param)
    return item


def _address_list(description: str) -> JoinedList:
    return JoinedList(check=validators.email, description=description)


_GROUP_FIELDS = (
    Field(Param("name", Text(255), "Display name", aliases=("cn",)), attr="cn"),
    Field(Param("accountStatus", ACCOUNT_STATUS, "Enable or disable: active, disabled"), attr="accountStatus"),
    Field(Param("accessPolicy", ACCESS_POLICY, "Who may send to it"), attr="accessPolicy"),
    Field(Param("moderators", _address_list("comma-separated addresses"),
                "Moderators (always allowed to send; empty: none)", aliases=("listModerator",)),
          attr="listModerator", multi=True),
)
_MEMBERS = (
    Param("members", EmailList(), "Replace the members"),
    Param("addMember", EmailList(), "Add members", aliases=("addMembers",)),
    Param("removeMember", EmailList(), "Remove members", aliases=("removeMembers",)),
)
_MEMBER_CONFLICTS = (("members", "addMember"), ("members", "removeMember"))

ALIAS = AccountType(
    name="alias",
    template_name="alias",
    fields=_GROUP_FIELDS,
    extra_create=_MEMBERS[:1],
    extra_update=_MEMBERS,
    conflicts=_MEMBER_CONFLICTS,
)

MAILLIST = AccountType(
    name="maillist",
    template_name="maillist",
    fields=_GROUP_FIELDS + (
        Field(Param("owner", _address_list("comma-separated addresses"), "Owners of the list",
                    aliases=("owners", "listOwner")), attr="listOwner", multi=True),
        Field(Param("allowedSenders", JoinedList(check=_sender_pattern, description="addresses or domains"),
                    "Senders always allowed: address, domain, *@domain or .domain (sub-domains)",
                    aliases=("listAllowedUser",)), attr="listAllowedUser", multi=True),
        Field(Param("max_message_size", Integer(minimum=0, maximum=INT64_MAX), "Largest message in bytes (0: no limit)",
                    aliases=("maxMessageSize",)), attr="maxMessageSize", encode=lambda n: str(n) if n else None),
    ),
    extra_create=_MEMBERS[:1],
    extra_update=_MEMBERS,
    conflicts=_MEMBER_CONFLICTS,
)

GROUP_LIST_PARAMS = ParamSet((
    Param("email_only", Boolean(), "Return only the addresses"),
    Param("disabled_only", Boolean(), "Return only disabled accounts"),
)) + list_params(("mail", "name"), (("cn", "name"),))

# -- mail users ----------------------------------------------------------------

USER_SERVICE_NAMES = NameList(max_length=64)
MAILBOX_FORMAT = Choice(("maildir", "mdbox", "sdbox"))


def _mailbox_folder(value: str, *, param: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,50}", value):
        raise InvalidInput(f"{param}: {value!r} is not a folder name", param=param)
    return value


def _maildir(value: str, *, param: str) -> str:
    path = value.lower()
    if not path.startswith("/") or ".." in path.split("/") or any(c.isspace() for c in path):
        raise InvalidInput(f"{param}: {value!r} is not an absolute path", param=param)
    return path if path.endswith("/") else path + "/"


def _phone(value: str, *, param: str) -> str:
    if not re.fullmatch(r"[0-9+()./ -]{1,32}", value):
        raise InvalidInput(f"{param}: {value!r} is not a phone number", param=param)
    return value


USER = AccountType(
    name="user",
    template_name="user",
    fields=(
        Field(Param("name", Text(255), "Display name (empty: the local part)", aliases=("cn",)), attr="cn"),
        Field(Param("gn", Text(255), "Given name", aliases=("givenName",)), attr="givenName"),
        Field(Param("sn", Text(255), "Surname (empty: the local part)"), attr="sn"),
        Field(Param("accountStatus", ACCOUNT_STATUS, "Enable or disable the user: active, disabled"),
              attr="accountStatus"),
        Field(Param("language", LANGUAGE, "Preferred language", aliases=("preferredLanguage",)),
              attr="preferredLanguage"),
        Field(Param("quota", MB, "Mailbox quota in MB (0: unlimited)", aliases=("mailQuota",)),
              attr="mailQuota", encode=lambda mb: str(mb * MiB) if mb else None),
        Field(Param("employeeid", Text(64), "Employee number", aliases=("employeeNumber",)),
              attr="employeeNumber"),
        Field(Param("transport", Converted(check=validators.transport, description="Postfix transport"),
                    "Per-user transport (mtaTransport)", aliases=("mtaTransport",), global_only=True),
              attr="mtaTransport", on_create=False),
        Field(Param("senderBcc", Email(allow_empty=True), "BCC address for mail the user sends (empty: none)",
                    profile="bcc"), attr="userSenderBccAddress", on_create=False),
        Field(Param("recipientBcc", Email(allow_empty=True), "BCC address for mail the user receives (empty: none)",
                    profile="bcc"), attr="userRecipientBccAddress", on_create=False),
        Field(Param("outboundRelay", Converted(check=validators.relay_host, description="Postfix next hop"),
                    "Relay host for mail the user sends (empty: none)", profile="relay",
                    normal_admin_check=validators.tenant_relay_host),
              attr="senderRelayHost", on_create=False),
        Field(Param("mailboxFormat", MAILBOX_FORMAT, "Dovecot mailbox format"), attr="mailboxFormat"),
        Field(Param("mailboxFolder", Converted(check=_mailbox_folder, description="folder name"),
                    "Mailbox folder below the home directory"), attr="mailboxFolder"),
        Field(Param("maildir", Converted(check=_maildir, description="absolute path"),
                    "Absolute mailbox path (lower-cased)", global_only=True), attr="homeDirectory"),
        Field(Param("telephoneNumber", JoinedList(check=_phone, description="comma-separated"),
                    "Telephone numbers"), attr="telephoneNumber", multi=True, on_create=False),
        Field(Param("mobile", JoinedList(check=_phone, description="comma-separated"),
                    "Mobile numbers"), attr="mobile", multi=True, on_create=False),
    ),
    extra_create=(
        Param("password", Secret(), "Password (checked against the domain's password policy)"),
        Param("password_hash", Text(1024, allow_empty=False), "An already hashed password, e.g. {SSHA512}..."),
    ),
    extra_update=(
        Param("password", Secret(), "New password"),
        Param("password_hash", Text(1024, allow_empty=False), "New password, already hashed"),
        Param("isGlobalAdmin", Boolean(), "Make the user a global admin (or not)", global_only=True),
        Param("forwarding", EmailList(), "Replace the forwarding addresses (own address: keep a copy)",
              profile="forwarding"),
        Param("addForwarding", EmailList(), "Add forwarding addresses", profile="forwarding"),
        Param("removeForwarding", EmailList(), "Remove forwarding addresses", profile="forwarding"),
        Param("aliases", EmailList(), "Replace the per-user alias addresses", profile="aliases"),
        Param("addAlias", EmailList(), "Add per-user alias addresses", profile="aliases"),
        Param("removeAlias", EmailList(), "Remove per-user alias addresses", profile="aliases"),
        Param("services", USER_SERVICE_NAMES, "Replace the enabled services"),
        Param("addService", USER_SERVICE_NAMES, "Enable services", aliases=("enableService",)),
        Param("removeService", USER_SERVICE_NAMES, "Disable services", aliases=("disableService",)),
    ),
    conflicts=(
        ("password", "password_hash"),
        ("forwarding", "addForwarding"), ("forwarding", "removeForwarding"),
        ("aliases", "addAlias"), ("aliases", "removeAlias"),
        ("services", "addService"), ("services", "removeService"),
    ),
)

USER_LIST_PARAMS = ParamSet((
    Param("email_only", Boolean(), "Return only the addresses"),
    Param("disabled_only", Boolean(), "Return only disabled users"),
)) + list_params(("mail", "name"), (("cn", "name"),))

USERS_BULK_PARAMS = ParamSet((
    Param("accountStatus", ACCOUNT_STATUS, "Enable or disable every user of the domain"),
    Param("password", Secret(), "Give every user this password"),
    Param("language", LANGUAGE, "Preferred language of every user", aliases=("preferredLanguage",)),
    Param("transport", Converted(check=validators.transport, allow_empty=False, description="Postfix transport"),
          "Transport of every user", aliases=("mtaTransport",), global_only=True),
))

PASSWORD_PARAMS = ParamSet((Param("password", Secret(), "Plain password to check", required=True),))


# -- standalone admins (and the admin side of mail users) ------------------------

# The admin's limits, in its own accountSetting (iRedAdmin's keys).  maxDomains
# also sets `create_new_domains:yes` (may create domains at all).  maxQuota is
# stored in MB (`create_max_quota:<MB>`); the unit it was given in is kept
# beside it (`create_quota_unit:<unit>`) so GET shows it back as sent.
ADMIN_SETTINGS = {"maxDomains": "create_max_domains", "maxUsers": "create_max_users",
                  "maxAliases": "create_max_aliases", "maxLists": "create_max_lists",
                  "maxQuota": "create_max_quota"}
ADMIN_CREATE_DOMAINS = "create_new_domains"
ADMIN_QUOTA_UNIT = "create_quota_unit"
QUOTA_UNITS = {"MB": 1, "GB": 1024, "TB": 1024 * 1024}
# disable<Something>=yes puts this value into the admin's `disabledService`.
ADMIN_DISABLED_SERVICES = {"disableViewingMailLog": "view_mail_log",
                           "disableManagingQuarantinedMails": "manage_quarantined_mails"}
# Parameters that only mean something for a normal admin: with
# isGlobalAdmin=yes they are discarded, as iRedAdmin-Pro documents.
ADMIN_NORMAL_ONLY = ("maxDomains", "maxQuota", "quotaUnit", "maxUsers", "maxAliases", "maxLists",
                     *ADMIN_DISABLED_SERVICES)
# create_max_*: 0 unlimited (the setting is removed), -1 none at all.
ADMIN_LIMIT = Integer(minimum=-1, maximum=MAX_COUNT)


def _admin_limit(n: int) -> str | None:
    return str(n) if n else None


def _admin_extra(*, create: bool) -> tuple[Param, ...]:
    return (
        Param("password", Secret(), "Password (checked against the global password policy)", required=create),
        Param("isGlobalAdmin", Boolean(), "Global admin (yes) or normal domain admin (no)"),
        Param("maxDomains", ADMIN_LIMIT,
              "Domains this admin may create and manage (0: unlimited, -1: may not create domains)"),
        Param("maxQuota", MB, "Mailbox quota this admin may hand out over all its domains, in quotaUnit "
                              "(0: unlimited)"),
        Param("quotaUnit", Choice(tuple(QUOTA_UNITS)), "Unit of maxQuota: TB, GB or MB"),
        Param("disableViewingMailLog", Boolean(), "Disallow viewing the log of inbound/outbound mails"),
        Param("disableManagingQuarantinedMails", Boolean(), "Disallow managing quarantined mails"),
    )


ADMIN_LIST_PARAMS = ParamSet((
    Param("email_only", Boolean(), "Return only the addresses"),
    Param("disabled_only", Boolean(), "Return only disabled admins"),
)) + list_params(("mail", "name"), (("cn", "name"),))

ADMIN = AccountType(
    name="admin",
    template_name="admin",
    fields=(
        Field(Param("name", Text(255), "Display name", aliases=("cn",)), attr="cn"),
        Field(Param("accountStatus", ACCOUNT_STATUS, "Enable or disable the admin: active, disabled"),
              attr="accountStatus"),
        Field(Param("language", LANGUAGE, "Preferred language of the web UI", aliases=("preferredLanguage",)),
              attr="preferredLanguage"),
        Field(Param("maxUsers", ADMIN_LIMIT, "Mail users over all its domains (0: unlimited, -1: none)"),
              setting=ADMIN_SETTINGS["maxUsers"], encode=_admin_limit),
        Field(Param("maxAliases", ADMIN_LIMIT, "Mail aliases over all its domains (0: unlimited, -1: none)"),
              setting=ADMIN_SETTINGS["maxAliases"], encode=_admin_limit),
        Field(Param("maxLists", ADMIN_LIMIT, "Mailing lists over all its domains (0: unlimited, -1: none)"),
              setting=ADMIN_SETTINGS["maxLists"], encode=_admin_limit),
    ),
    extra_create=_admin_extra(create=True),
    extra_update=_admin_extra(create=False),
    requires=(("maxQuota", "quotaUnit"), ("quotaUnit", "maxQuota")),
)
