"""Account types, declared once.

Each declaration names the template the entry is created from (object
classes, RDN and parent come from the template's `dn:` line), what tells
its entries apart from every other type's (`object_class` and `distinct`:
`filter()` for LDAP, `matches()` in memory), its counter and limits, where
its members live, its routes, and the fields: an API parameter and where it
goes in LDAP (an attribute, or an `accountSetting` key).  Create, update,
GET, the filters and DNs of the stores, the limits checks, the LDIF export,
the access rules of its routes and the API document are derived from these
declarations; parameters whose effect is more than "set one value"
(catch-all, alias domains, services ...) are declared here too, and the
store implements them.  `ACCOUNT_TYPES` (at the end) is the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Sequence

from ldap3.utils.conv import escape_filter_chars

from iredldap.model import subscribable, validators
from iredldap.errors import InvalidInput, NoSuchAccount
from iredldap.model.listing import list_params
from iredldap.model.params import (ACCOUNT_STATUS, INT64_MAX, Boolean, Choice, Converted, DomainList, Email, EmailList, Integer,
                     JoinedList, NameList, NO_PARAMS, Param, ParamSet, Secret, Text)
from iredldap.model.templates import Template, load

# RFC 4515's specials in a filter value, as ldap3's escape_filter_chars
# writes them -- for text in one pass, without ldap3's encoding lookups
# (a caller's lookup escapes a dozen values).
_FILTER_ESCAPES = str.maketrans({"\\": "\\5c", "*": "\\2a", "(": "\\28", ")": "\\29", "\x00": "\\00"})


def escape_filter_value(value: str) -> str:
    """A value to put in an LDAP filter, its special characters escaped."""
    if isinstance(value, str):
        return value.translate(_FILTER_ESCAPES)
    return escape_filter_chars(value)     # (bytes: ldap3's own way)


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
class Has:
    """A test that tells a type apart from other types of its object class:
    the entry has `value` in `attr` (a trailing `*`: a value starting so) --
    or, with `absent`, has no such value."""

    attr: str
    value: str
    absent: bool = False

    def ldap(self) -> str:
        value = self.value
        escaped = escape_filter_value(value[:-1]) + "*" if value.endswith("*") else escape_filter_value(value)
        test = f"({self.attr}={escaped})"
        return f"(!{test})" if self.absent else test

    def holds(self, attrs: Mapping[str, Sequence[Any]]) -> bool:
        want = self.value.lower()
        found = any(v.startswith(want[:-1]) if want.endswith("*") else v == want
                    for v in _values(attrs, self.attr))
        return found != self.absent


def _values(attrs: Mapping[str, Sequence[Any]], name: str) -> list[str]:
    """The values of `name` (any spelling), lower-cased text."""
    return [(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).lower()
            for key, values in attrs.items() if key.lower() == name.lower() for v in values]


# Where a type's members live (the store class for each: directory/groups.py).
MEMBERS_IN_ENTRY = "mailForwardingAddress"   # in the entry's own mailForwardingAddress
MEMBERS_POINT_TO_IT = "memberOfGroup"        # on the members: `memberOfGroup: <its address>`; members
                                             # not hosted here in the entry of its `members_template`


@dataclass(frozen=True)
class Routes:
    """A type's URI templates (empty: it has none)."""

    item: str = ""            # one account: /api/alias/{mail}
    collection: str = ""      # the accounts of a domain (or all): /api/aliases/{domain}
    change_email: str = ""    # a new address: /api/alias/{mail}/change_email/{new_mail}


@dataclass(frozen=True)
class AccountType:
    name: str
    template_name: str
    fields: tuple[Field, ...] = ()
    # Parameters handled by the store's own code.
    extra_update: tuple[Param, ...] = ()
    extra_create: tuple[Param, ...] = ()
    extra_delete: tuple[Param, ...] = ()
    conflicts: tuple[tuple[str, ...], ...] = ()
    requires: tuple[tuple[str, str], ...] = ()
    # -- what it is in the directory --------------------------------------------
    label: str = ""           # one of them, in messages: "mailing list"
    plural: str = ""          # several: "mailing lists"
    object_class: str = ""    # the template's object class that tells it apart ...
    distinct: tuple[Has, ...] = ()   # ... with these, from the other types of that class
    not_found: str = "{label} {name} does not exist"
    not_found_code: str = ""  # NoSuchAccount's code when it is not there (default NO_SUCH_ACCOUNT)
    counter: str = ""         # its domain's domainCurrent*Number attribute
    domain_limit: str = ""    # accountSetting key of its domain's limit (numberOfLists)
    admin_limit: str = ""     # API parameter of a normal admin's limit (maxLists; ADMIN_SETTINGS)
    members: str = ""         # where its members live: MEMBERS_IN_ENTRY, MEMBERS_POINT_TO_IT, or none
    members_template: str = ""  # the template of the entry holding members not hosted here
    routes: Routes = Routes()
    export_summary: str = ""  # what its LDIF export holds ("a mailing list and ...")

    @property
    def template(self) -> Template:
        return load(self.template_name)

    @property
    def object_classes(self) -> tuple[str, ...]:
        return self.template.object_classes

    @property
    def rdn_attr(self) -> str:
        return self.template.rdn_attr

    @property
    def url_part(self) -> str:
        """What names one of them in a URL: `domain` or `mail`."""
        return "domain" if self.template.key == "domain" else "mail"

    @property
    def container(self) -> str:
        """The `ou` below its domain it lives in ("" for none)."""
        return self.template.container

    @property
    def below_domain(self) -> bool:
        """An entry inside a domain (an address Postfix resolves), not the domain or an admin."""
        return "domainName=$domain," in self.template.parent

    @property
    def ldif_route(self) -> str:
        return f"/api/ldif/{self.name}/{{{self.url_part}}}"

    def filter(self, extra: str = "", *values: str) -> str:
        """The LDAP filter selecting exactly the entries of this type; with
        `extra`, only those of them matching it too (`%s` in `extra` stand
        for `values`, escaped here)."""
        if values:
            extra = extra % tuple(escape_filter_value(v) for v in values)
        if not extra:
            return self._selector
        return "(&" + self._selector_terms + extra + ")"

    @cached_property
    def _selector_terms(self) -> str:
        """The terms that select this type's entries (the same for every request)."""
        return f"(objectClass={self.object_class})" + "".join(h.ldap() for h in self.distinct)

    @cached_property
    def _selector(self) -> str:
        return "(&" + self._selector_terms + ")" if self.distinct else self._selector_terms

    def matches(self, attrs: Mapping[str, Sequence[Any]]) -> bool:
        """Whether an entry (its attributes) is of this type: `filter()`, in memory."""
        return self.object_class.lower() in _values(attrs, "objectClass") and all(h.holds(attrs) for h in self.distinct)

    def missing(self, name: str) -> NoSuchAccount:
        return NoSuchAccount(self.not_found.format(label=self.label, name=name), code=self.not_found_code or None)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.param.name == name)

    def create_params(self) -> ParamSet:
        return ParamSet(tuple(f.param for f in self.fields if f.on_create) + self.extra_create,
                        self.conflicts, self.requires)

    def update_params(self) -> ParamSet:
        return ParamSet(tuple(f.param for f in self.fields) + self.extra_update, self.conflicts, self.requires)

    def delete_params(self) -> ParamSet:
        return ParamSet(self.extra_delete) if self.extra_delete else NO_PARAMS


def any_class(types: Iterable[AccountType], *more: str) -> str:
    """A filter for every entry of one of `types` or of the object classes `more`."""
    classes = dict.fromkeys([t.object_class for t in types] + list(more))
    return "(|" + "".join(f"(objectClass={c})" for c in classes) + ")"


def any_of(types: Sequence[AccountType]) -> str:
    """A filter for the entries of any of `types`."""
    return types[0].filter() if len(types) == 1 else "(|" + "".join(t.filter() for t in types) + ")"


def _name_status_language(name: str, status_of: str, language: str) -> tuple[Field, ...]:
    """The display name, accountStatus and preferredLanguage fields most types have."""
    return (Field(Param("name", Text(255), name, aliases=("cn",)), attr="cn"),
            Field(Param("accountStatus", ACCOUNT_STATUS, f"Enable or disable {status_of}: active, disabled"),
                  attr="accountStatus"),
            Field(Param("language", LANGUAGE, language, aliases=("preferredLanguage",)), attr="preferredLanguage"))


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

def _hide_and_show(name: str, choices: tuple[str, ...], what: str, whom: str) -> tuple[Param, Param]:
    """disable<name> / enable<name>: the global admin hides or shows `what` from `whom`."""
    return (Param(f"disable{name}", NameList(choices), f"Hide {what} from {whom}", global_only=True),
            Param(f"enable{name}", NameList(choices), f"Show {what} to {whom}", global_only=True))


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
    *_hide_and_show("DomainProfile", DOMAIN_PROFILES, "domain profile tabs", "normal admins"),
    *_hide_and_show("UserProfile", USER_PROFILES, "user profile tabs", "normal admins"),
    *_hide_and_show("UserPreference", USER_PREFERENCES, "self-service preferences", "users"),
)

DOMAIN = AccountType(
    name="domain", template_name="domain", label="domain", plural="domains",
    object_class="mailDomain", not_found_code="NO_SUCH_DOMAIN",
    routes=Routes(item="/api/domain/{domain}", collection="/api/domains"),
    export_summary="a domain and every entry under it",
    fields=(
        *_name_status_language("Short description of the domain (company name)", "the domain",
                               "Default preferred language of new users"),
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

# A domain's parameters whose effect reaches the mail of every address of the
# domain that has no setting of its own: Postfix's BCC and relay maps of the
# domain, the catch-all (every address without an account).  A normal admin
# changes them only where no address of the domain is above it.
DOMAIN_WIDE_PARAMS = ("senderBcc", "recipientBcc", "outboundRelay", "catchall")

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
    name="alias", template_name="alias", label="alias", plural="mail aliases",
    object_class="mailAlias",
    counter="domainCurrentAliasNumber", domain_limit="numberOfAliases", admin_limit="maxAliases",
    members=MEMBERS_IN_ENTRY,
    routes=Routes(item="/api/alias/{mail}", collection="/api/aliases/{domain}",
                  change_email="/api/alias/{mail}/change_email/{new_mail}"),
    export_summary="an alias",
    fields=_GROUP_FIELDS,
    extra_create=_MEMBERS[:1],
    extra_update=_MEMBERS,
    conflicts=_MEMBER_CONFLICTS,
)

# Subscribable (mlmmj) lists are mailList entries too: `enabledService:
# mlmmj` marks them (iredmail-ldap-model, mlmmj.md); these lists are the others.
MAILLIST = AccountType(
    name="maillist", template_name="maillist", label="mailing list", plural="mailing lists",
    object_class="mailList", distinct=(Has("enabledService", "mlmmj", absent=True),),
    counter="domainCurrentListNumber", domain_limit="numberOfLists", admin_limit="maxLists",
    members=MEMBERS_POINT_TO_IT, members_template="externals",
    routes=Routes(item="/api/maillist/{mail}", collection="/api/maillists/{domain}",
                  change_email="/api/maillist/{mail}/change_email/{new_mail}"),
    export_summary="a mailing list and the entry of its external members",
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
    # `archive` only means something for mlmmj lists; accepted and ignored here.
    extra_delete=(Param("archive", Boolean(), "Archive an mlmmj list first (ignored here)"),),
    conflicts=_MEMBER_CONFLICTS,
)

# Subscribable (mlmmj) lists: the LDAP entry Postfix and iRedAPD read
# (mlmmj.md 2.3); settings and subscribers live in the mlmmj spool
# (model/subscribable.py, iredldap.mlmmj).  No members in LDAP.  They share
# the old lists' counter and limits: both are "mailing lists" to a domain.
MLMMJ_LIST = AccountType(
    name="ml", template_name="mlmmj", label="subscribable mailing list", plural="subscribable mailing lists",
    object_class="mailList", distinct=(Has("enabledService", "mlmmj"),),
    counter="domainCurrentListNumber", domain_limit="numberOfLists", admin_limit="maxLists",
    routes=Routes(item="/api/ml/{mail}", collection="/api/mls/{domain}",
                  change_email="/api/ml/{mail}/change_email/{new_mail}"),
    export_summary="a subscribable (mlmmj) mailing list's entry (its settings and subscribers are in mlmmj)",
    fields=_GROUP_FIELDS[:3] + (   # name, accountStatus, accessPolicy, as on the other groups
        Field(Param("owner", _address_list("comma-separated addresses"), "Owners (mail to <list>+owner@)",
                    aliases=("owners",)), attr="listOwner", multi=True),
        Field(Param("moderators", _address_list("comma-separated addresses"), "Moderators (empty: none)"),
              attr="listModerator", multi=True),
        Field(Param("max_message_size", Integer(minimum=0, maximum=INT64_MAX), "Largest post in bytes (0: no limit)"),
              attr="maxMessageSize", encode=lambda n: str(n) if n else None),
        Field(Param("newsletter_description", Text(1024), "Short text shown on the newsletter subscription page"),
              attr="description"),
    ),
    extra_create=subscribable.PROFILE + subscribable.CREATE_SUBSCRIBERS,
    extra_update=subscribable.PROFILE + subscribable.UPDATE_SUBSCRIBERS,
    extra_delete=(subscribable.KEEP_ARCHIVE,),
)

GROUP_LIST_PARAMS = ParamSet((
    Param("email_only", Boolean(), "Return only the addresses"),
    Param("disabled_only", Boolean(), "Return only disabled accounts"),
)) + list_params(("mail", "name"), (("cn", "name"),))

# -- mail users ----------------------------------------------------------------

USER_SERVICE_NAMES = NameList(max_length=64)
MAILBOX_FORMAT = Choice(("maildir", "mdbox", "sdbox"))


def _mailbox_folder(value: str, *, param: str) -> str:
    # "." and ".." fit the characters but are steps, not folders: Dovecot
    # would open the home itself, or its parent (shared with other users).
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,50}", value) or value in (".", ".."):
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
    name="user", template_name="user", label="user", plural="mail users",
    # The catch-all (`mail=@domain`) is a mailUser too, and no user.
    object_class="mailUser", distinct=(Has("mail", "@*", absent=True),),
    counter="domainCurrentUserNumber", domain_limit="numberOfUsers", admin_limit="maxUsers",
    routes=Routes(item="/api/user/{mail}", collection="/api/users/{domain}",
                  change_email="/api/user/{mail}/change_email/{new_mail}"),
    export_summary="a mail user",
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
    name="admin", template_name="admin", label="admin", plural="admins",
    object_class="mailAdmin",
    routes=Routes(item="/api/admin/{mail}", collection="/api/admins"),
    export_summary="an admin (a standalone admin, or the mail user holding the role)",
    fields=(
        *_name_status_language("Display name", "the admin", "Preferred language of the web UI"),
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

# The per-domain catch-all: the mailUser `mail=@<domain>` (no parameters of its
# own: PUT /api/domain/<domain> sets it).
CATCHALL = AccountType(
    name="catchall", template_name="catchall", label="catch-all", plural="catch-alls",
    object_class="mailUser", distinct=(Has("mail", "@*"),),
    not_found="domain {name} has no catch-all address",
    export_summary="a domain's catch-all entry",
)

# -- the registry ---------------------------------------------------------------

# Every type, in the order exports and their routes are listed.
ACCOUNT_TYPES = (DOMAIN, CATCHALL, USER, MAILLIST, MLMMJ_LIST, ALIAS, ADMIN)
# The entries below a domain: their addresses share one space.
ADDRESS_TYPES = tuple(t for t in ACCOUNT_TYPES if t.below_domain)
# Addresses that stand for other addresses (aliases, lists).
GROUP_TYPES = tuple(t for t in ACCOUNT_TYPES if t.members)
# A mail user holding an admin role (as iRedAdmin marks it).
ADMIN_ROLE = "(|(domainGlobalAdmin=yes)(enabledService=domainadmin))"


def sharing(account: AccountType) -> tuple[AccountType, ...]:
    """The types counted together with `account` (its counter and limits):
    both kinds of mailing list are the domain's lists."""
    return tuple(t for t in ACCOUNT_TYPES if account.counter and t.counter == account.counter) or (account,)


def account_type(name: str) -> AccountType:
    return next(t for t in ACCOUNT_TYPES if t.name == name)
