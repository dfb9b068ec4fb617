"""The profile of an mlmmj (subscribable) list: mlmmjadmin 3.6.3's parameters,
declared once (reference mlmmj.md 3.4).

`PROFILE_PARAMS` is the table: for each parameter its kind, the file it
lives in under the list's `control/`, what a create without it leaves, how
its input is split and checked, and a description.  Everything else here is
derived from it:

* `check_form` -- a form in mlmmjadmin's vocabulary (names to strings, the
  shape mlmmjadmin's POST/PUT take), checked and normalised: both spool
  backends call it first, so a bad value is refused before anything is
  written or sent;
* `control_writes` -- what a create or update does to `control/` (the
  conflict rules and the `customheaders` defaults included), as a list of
  file writes a spool applies in order;
* `profile_of` -- the 43 keys of mlmmjadmin's GET, read from `control/`;
* `form_of_profile` -- a GET answer turned back into a create form (for
  moving a list);
* `PROFILE_PARAMSET` / `form_of` -- the same parameters as the API's own
  `Param`s (yes/no flags as Booleans, addresses checked), and the way back
  from their parsed values to mlmmjadmin's form.

Pure model: no file or network access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from iredldap.errors import InvalidInput, UnknownParameters
from iredldap.model import validators
from iredldap.model.params import (Boolean, CheckedList, EmailList, Integer, Kind, Param, ParamSet, Raw,
                                   _FORBIDDEN_CHARS, _scalar)

ProfileKind = Literal["boolean", "list", "normal", "text"]


@dataclass(frozen=True)
class ProfileParam:
    name: str
    kind: ProfileKind
    # The file under control/.
    file: str
    description: str
    # What a create without this parameter leaves ("yes"/"no" for flags;
    # None: nothing is written).
    default: str | None = None
    # Lists: the separator of the input (',' or a newline).
    split: str = ","
    # Lists: each item must be an address, stored lower-cased (otherwise
    # kept as given, spaces removed).
    addresses: bool = False
    aliases: tuple[str, ...] = ()


def _flag(name: str, file: str, description: str, default: str | None = None) -> ProfileParam:
    return ProfileParam(name, "boolean", file, description, default)


# In the order of mlmmjadmin's GET answer (reference 3.4, last paragraph);
# `owners` (alias of `owner`) is reported right after it.
PROFILE_PARAMS: tuple[ProfileParam, ...] = (
    _flag("close_list", "closedlist", "No subscribing or unsubscribing by mail"),
    _flag("only_moderator_can_post", "modonlypost", "Only moderators may post (checked against From:)", "no"),
    _flag("only_subscriber_can_post", "subonlypost", "Only subscribers may post (checked against From:)", "yes"),
    _flag("disable_subscription", "closedlistsub", "No new subscriptions; unsubscribing still works"),
    _flag("disable_subscription_confirm", "nosubconfirm", "Subscribe without asking the subscriber to confirm"),
    _flag("disable_digest_subscription", "nodigestsub", "Refuse subscriptions to the digest version"),
    _flag("disable_digest_text", "nodigesttext", "Digests carry no text part summing up the threads"),
    _flag("disable_nomail_subscription", "nonomailsub", "Refuse subscriptions to the no-mail version"),
    _flag("if_mod_send_only_mod_moderate", "ifmodsendonlymodmoderate",
          "A post of a moderator is moderated by that moderator only", "yes"),
    _flag("moderated", "moderated", "Every post waits for a moderator"),
    _flag("moderate_non_subscriber_post", "modnonsubposts",
          "Posts of senders who may not post are moderated instead of refused", "no"),
    _flag("disable_retrieving_old_posts", "noget", "No retrieving of archived posts by mail (list+get-N)", "yes"),
    _flag("only_subscriber_can_get_old_posts", "subonlyget", "Only subscribers may retrieve archived posts", "yes"),
    _flag("disable_retrieving_subscribers", "nolistsubsemail", "Owners cannot get the subscriber list by mail"),
    _flag("notify_sender_when_moderated", "notifymod", "Tell the sender that the post waits for moderation", "no"),
    _flag("notify_owner_when_sub_unsub", "notifysub", "Tell the owners about each (un)subscription", "no"),
    _flag("disable_send_copy_to_sender", "notmetoo", "Senders get no copy of their own posts"),
    _flag("disable_notify_subscription_moderated", "nosubmodmails",
          "Do not tell a subscriber that the subscription waits for moderation"),
    _flag("disable_notify_when_missing_listaddress", "notoccdenymails",
          "No refusal notice when the list address is not in To:/Cc:"),
    _flag("disable_notify_when_access_denied", "noaccessdenymails", "No refusal notice when access rules deny a post"),
    _flag("disable_notify_when_subscriber_only", "nosubonlydenymails",
          "No refusal notice to a non-subscriber of a subscribers-only list"),
    _flag("disable_notify_when_moderator_only", "nomodonlydenymails",
          "No refusal notice to a non-moderator of a moderators-only list"),
    _flag("disable_notify_when_exceeding_max_mail_size", "nomaxmailsizedenymails",
          "No refusal notice for a post over the size limit"),
    _flag("disable_archive", "noarchive", "Posts are not kept in the archive", "no"),
    _flag("tocc", "tocc", "Posts need not name the list in To: or Cc:", "yes"),
    _flag("reply_to_sender", "replyto", "Replies go to the sender rather than the list"),
    _flag("enable_newsletter_subscription", "enable_newsletter_subscription",
          "Subscribing and unsubscribing through the newsletter web pages"),
    ProfileParam("custom_headers", "list", "customheaders",
                 "Headers added to each post, one 'Name: value' per line (the List-* headers, "
                 "Precedence and Reply-To are always added)", split="\n"),
    ProfileParam("remove_headers", "list", "delheaders", "Header names removed from each post, comma-separated"),
    ProfileParam("extra_addresses", "list", "listaddress", "Other addresses of the list, comma-separated"),
    ProfileParam("owner", "list", "owner", "Owners (they get list+owner mail), comma-separated",
                 aliases=("owners",)),
    ProfileParam("max_message_size", "normal", "maxmailsize", "Largest post in bytes (0: no limit)"),
    ProfileParam("subject_prefix", "normal", "prefix", "Text put before the Subject: of each post"),
    ProfileParam("relay_host", "normal", "relayhost", "SMTP server mlmmj sends through (mlmmj's default: 127.0.0.1)"),
    ProfileParam("smtp_helo", "normal", "smtphelo", "Name mlmmj gives in its SMTP HELO"),
    ProfileParam("smtp_port", "normal", "smtpport", "Port of the SMTP server mlmmj sends through"),
    ProfileParam("name", "normal", "name", "Short description of the list"),
    ProfileParam("moderate_subscription", "boolean", "submod",
                 "Subscriptions wait for the subscription moderators (or the owners)"),
    ProfileParam("moderators", "list", "moderators", "Moderators of posts, comma-separated", addresses=True),
    ProfileParam("subscription_moderators", "list", "submod",
                 "Moderators of subscriptions, comma-separated (given: subscriptions are moderated)",
                 addresses=True),
    ProfileParam("footer_text", "text", "footer_text", "Plain-text footer added to each post"),
    ProfileParam("footer_html", "text", "footer_html", "HTML footer added to each post"),
)

BY_NAME: dict[str, ProfileParam] = {p.name: p for p in PROFILE_PARAMS}
ALIASES: dict[str, str] = {a: p.name for p in PROFILE_PARAMS for a in p.aliases}

#: The keys of mlmmjadmin's GET, in its order (43).
PROFILE_KEYS: tuple[str, ...] = tuple(key for p in PROFILE_PARAMS for key in (p.name, *p.aliases))

#: Parameters whose defaults depend on the list address (create only).
ADDRESS_DEFAULTS = ("owner", "moderators")

#: Headers always appended to `customheaders` ({list}: the address, {local},
#: {domain}: its parts); a given line with one of these names is dropped.
DEFAULT_CUSTOM_HEADERS: tuple[tuple[str, str], ...] = (
    ("Precedence", "bulk"),
    ("List-Id", "<{list}>"),
    ("Reply-To", "{list}"),
    ("List-Post", "<mailto:{list}>"),
    ("List-Subscribe", "<mailto:{local}+subscribe@{domain}?subject=Subscribe>"),
    ("List-Unsubscribe", "<mailto:{local}+unsubscribe@{domain}?subject=Unsubscribe>"),
)
_DEFAULT_HEADER_NAMES = frozenset(name.lower() for name, _ in DEFAULT_CUSTOM_HEADERS)

_POSTING_FLAGS = ("only_moderator_can_post", "only_subscriber_can_post")
# Writing one posting flag (yes) removes the other's file.
_EXCLUDES = {"modonlypost": "subonlypost", "subonlypost": "modonlypost"}
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*:?")
# Line breaks Python's str.splitlines() (and Unicode-aware readers of mail)
# know besides the control characters params._FORBIDDEN_CHARS refuses:
# mlmmj reads control files by '\n' only, so a value holding one would be
# one line to mlmmj but several to any reader that splits on them.
_UNICODE_LINE_BREAKS = re.compile("[\u2028\u2029]")


# mlmmjadmin's pattern of a list's local part in its routes (reference mlmmj.md
# 3.3) and the length of the last label of its domain.  A new list (created,
# or the target of change_email) must fit it with either backend: a list
# mlmmjadmin could not reach is one iRedMail's tools cannot manage, and the
# characters it leaves out ('*', '?', '$', '`', '|', '{', '}', "'", '%', '!',
# '^', '~') are the ones a shell or a glob would make something of in the
# list directory's path (Postfix's pipe hands it to a wrapper script).
LIST_LOCAL_PART = re.compile(r"[\w#-][\w.+=/&#-]*", re.ASCII)


def check_new_list_address(mail: str, param: str = "mail") -> None:
    """InvalidInput unless `mail` (already a checked, lower-cased address)
    fits mlmmjadmin's route pattern (LIST_LOCAL_PART)."""
    local, _, domain = mail.rpartition("@")
    if not LIST_LOCAL_PART.fullmatch(local) or "/" in local or not 2 <= len(domain.rpartition(".")[2]) <= 15:
        raise InvalidInput(f"{param}: {mail!r} cannot be a subscribable list's address (mlmmjadmin takes only "
                           "letters, digits and . _ - # & in its local part)", code="INVALID_MAIL", param=param)


def file_lines(content: str | None) -> list[str]:
    """The lines of a control or subscriber file as mlmmj reads them: split
    on '\n' only (not on the other breaks str.splitlines() knows)."""
    if not content:
        return []
    lines = content.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _fail(name: str, what: str) -> InvalidInput:
    return InvalidInput(f"{name}: {what}", param=name)


# -- checking a form ---------------------------------------------------------

def _items(param: ProfileParam, value: str) -> list[str]:
    """The values of a list parameter as mlmmjadmin splits them, blanks dropped,
    duplicates dropped (first kept)."""
    if param.split == "\n":
        items = [line.strip() for line in value.replace("\r\n", "\n").split("\n")]
    else:
        items = [item.replace(" ", "").replace("\t", "") for item in value.split(",")]
    return list(dict.fromkeys(item for item in items if item))


def _checked_items(param: ProfileParam, value: str) -> list[str]:
    items = _items(param, value)
    for item in items:
        if _FORBIDDEN_CHARS.search(item):
            raise _fail(param.name, f"{item!r}: control characters are not allowed")
    if param.addresses:
        items = list(dict.fromkeys(validators.email(item, param=param.name) for item in items))
    if param.name == "remove_headers":
        for item in items:
            if not _HEADER_NAME.fullmatch(item):
                raise _fail(param.name, f"{item!r} is not a header name")
    if param.name == "custom_headers":
        for line in items:
            if not _HEADER_NAME.fullmatch(line.partition(":")[0] + ":") or ":" not in line:
                raise _fail(param.name, f"{line!r} is not a 'Name: value' header line")
    return items


def check_form(form: Mapping[str, str]) -> dict[str, str]:
    """`form` (mlmmjadmin's parameter names to text) checked: unknown names,
    flags other than yes/no, addresses that are not addresses, a size that
    is no number, a line break in a one-line value -> InvalidInput.  Returns
    the form with aliases resolved (`owners` -> `owner`), flags lower-cased,
    address lists lower-cased.  mlmmjadmin itself ignores or drops such
    values without a word; we refuse them before anything is written."""
    unknown = sorted(k for k in form if k not in BY_NAME and k not in ALIASES)
    if unknown:
        raise UnknownParameters(f"unknown list parameter(s): {', '.join(unknown)}", params=unknown)
    clean: dict[str, str] = {}
    for key, raw in form.items():
        name = ALIASES.get(key, key)
        param = BY_NAME[name]
        if name in clean:
            raise _fail(name, f"given twice (as {key} and {name})")
        if not isinstance(raw, str):
            raise _fail(name, "expected a text value")
        if "\x00" in raw:
            raise _fail(name, "NUL characters are not allowed")
        if _UNICODE_LINE_BREAKS.search(raw):
            raise _fail(name, "Unicode line or paragraph separators (U+2028, U+2029) are not allowed")
        if param.kind == "boolean":
            value = raw.strip().lower()
            if value not in ("yes", "no"):
                raise _fail(name, f"expected yes or no, got {raw!r}")
        elif param.kind == "list":
            value = param.split.join(_checked_items(param, raw))
        elif param.kind == "normal":
            if _FORBIDDEN_CHARS.search(raw):
                raise _fail(name, "must be one line without control characters")
            value = raw
            if name in ("max_message_size", "smtp_port") and raw.strip():
                if not raw.strip().isascii() or not raw.strip().isdigit():
                    raise _fail(name, f"{raw!r} is not a whole number")
                value = str(int(raw.strip()))
                if name == "smtp_port" and not 0 < int(value) < 65536:
                    raise _fail(name, "must be between 1 and 65535")
            elif name in ("relay_host", "smtp_helo"):
                value = raw.strip()
                if value and not _HOST.fullmatch(value):
                    raise _fail(name, f"{raw!r} is not a host name or IP address")
        else:
            value = raw
        clean[name] = value
    return clean


_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")


# -- what a create or update writes ---------------------------------------------

@dataclass(frozen=True)
class ControlWrite:
    """One change in `control/`: `content` None deletes the file; with
    `keep` an existing file stays as it is (else it is made with `content`)."""

    file: str
    content: str | None
    keep: bool = False


def _address_parts(mail: str) -> dict[str, str]:
    local, _, domain = mail.rpartition("@")
    return {"list": mail, "local": local, "domain": domain}


def custom_header_lines(mail: str, given: Iterable[str]) -> list[str]:
    """`customheaders` as mlmmjadmin writes it: the given lines that have a
    `:` and no default header's name, sorted, then the defaults for `mail`."""
    kept = sorted(line for line in given
                  if ":" in line and line.partition(":")[0].strip().lower() not in _DEFAULT_HEADER_NAMES)
    parts = _address_parts(mail)
    return kept + [f"{name}: {value.format(**parts)}" for name, value in DEFAULT_CUSTOM_HEADERS]


def _lines(values: Iterable[str]) -> str:
    return "".join(f"{value}\n" for value in values)


def with_defaults(mail: str, form: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """A create form: what the caller gave, then mlmmjadmin's defaults for the
    parameters it lacks (`defaults`: the profile defaults of the table plus
    the server's own, e.g. iRedMail's smtp_port) -- a default that would
    contradict a given posting flag is left out."""
    full = dict(form)
    postmaster = "postmaster@" + mail.rpartition("@")[2]
    for name in ADDRESS_DEFAULTS:
        full.setdefault(name, postmaster)
    full.setdefault("custom_headers", "")
    full.setdefault("remove_headers", "")
    if "footer_html" in full:
        full.setdefault("footer_text", "")
    for name, value in defaults.items():
        if name in full:
            continue
        if name in _POSTING_FLAGS and value == "yes" and any(
                full.get(other) == "yes" for other in _POSTING_FLAGS if other != name):
            continue
        full[name] = value
    return full


def table_defaults() -> dict[str, str]:
    """The create defaults of the table (stock mlmmjadmin 3.6.3)."""
    return {p.name: p.default for p in PROFILE_PARAMS if p.default is not None}


def control_writes(mail: str, form: Mapping[str, str]) -> list[ControlWrite]:
    """What writing the checked `form` (see `check_form`; for a create, after
    `with_defaults`) does to `control/` of the list `mail`, in order."""
    form = dict(form)
    if form.get("only_moderator_can_post") == "yes" and "only_subscriber_can_post" in form:
        form["only_subscriber_can_post"] = "no"
    writes: list[ControlWrite] = []
    for param in PROFILE_PARAMS:
        if param.name not in form or param.file == "submod":
            continue
        value = form[param.name]
        if param.kind == "boolean":
            if value == "yes":
                writes.append(ControlWrite(param.file, ""))
                if param.file in _EXCLUDES:
                    writes.append(ControlWrite(_EXCLUDES[param.file], None))
            else:
                writes.append(ControlWrite(param.file, None))
        elif param.kind == "list":
            items = value.split(param.split) if value else []
            if param.name == "custom_headers":
                writes.append(ControlWrite(param.file, _lines(custom_header_lines(mail, items))))
            elif param.name == "extra_addresses":
                writes.append(ControlWrite(param.file, _lines([mail] + [i for i in items if i.lower() != mail])))
            elif param.name == "remove_headers":
                items = [i if i.endswith(":") else i + ":" for i in items]
                writes.append(ControlWrite(param.file, _lines(items) if items else None))
            else:
                writes.append(ControlWrite(param.file, _lines(items) if items else None))
        elif param.kind == "normal":
            if param.name == "max_message_size" and value in ("", "0"):
                value = ""
            writes.append(ControlWrite(param.file, value + "\n" if value else None))
        else:
            text = value.strip()
            writes.append(ControlWrite(param.file, text + "\n" if text else None))
            if param.name == "footer_html" and text:
                writes.append(ControlWrite("footer_text", "\n", keep=True))
    writes.extend(_submod_writes(form))
    return writes


def _submod_writes(form: Mapping[str, str]) -> list[ControlWrite]:
    flag, moderators = form.get("moderate_subscription"), form.get("subscription_moderators")
    items = moderators.split(",") if moderators else []
    if flag == "no":
        return [ControlWrite("submod", None)]
    if flag == "yes":
        if moderators is None:
            return [ControlWrite("submod", "", keep=True)]
        return [ControlWrite("submod", _lines(items))]
    if moderators is not None:
        return [ControlWrite("submod", _lines(items) if items else None)]
    return []


def extra_addresses_of(mail: str, listaddress: str | None) -> list[str]:
    return [line for line in file_lines(listaddress) if line.strip() and line.strip().lower() != mail]


# -- reading ------------------------------------------------------------------

def profile_of(mail: str, read: Callable[[str], str | None]) -> dict[str, str | list[str]]:
    """mlmmjadmin's GET answer (all 43 keys, its order) from `read(file)`,
    which gives the content of `control/<file>` or None."""
    out: dict[str, str | list[str]] = {}
    for param in PROFILE_PARAMS:
        content = read(param.file)
        value: str | list[str]
        if param.kind == "boolean":
            value = "yes" if content is not None else "no"
        elif param.kind == "list":
            lines = [line for line in file_lines(content) if line.strip()]
            if param.name == "extra_addresses":
                lines = extra_addresses_of(mail, content)
            if param.addresses:
                lines = [line.lower() for line in lines]
            value = sorted(lines)
        elif param.kind == "normal":
            value = (content or "").split("\n", 1)[0]
        else:
            value = (content or "").strip()
        out[param.name] = value
        for alias in param.aliases:
            out[alias] = value
    return out


def form_of_profile(profile: Mapping[str, Any]) -> dict[str, str]:
    """A GET answer as a create form that rebuilds the same `control/`
    (aliases left out, the List-* headers left to the new address)."""
    form: dict[str, str] = {}
    for param in PROFILE_PARAMS:
        value = profile.get(param.name)
        if value is None:
            continue
        if param.kind == "list":
            items = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            if param.name == "custom_headers":
                items = [i for i in items if i.partition(":")[0].strip().lower() not in _DEFAULT_HEADER_NAMES]
            form[param.name] = param.split.join(items)
        else:
            form[param.name] = str(value)
    if form.get("moderate_subscription") == "no":
        form.pop("subscription_moderators", None)
    return form


# -- the same parameters as the API's Params ---------------------------------------

@dataclass(frozen=True)
class LineText(Kind):
    """One line of text kept as given (a subject prefix keeps its trailing space)."""

    max_length: int = 255

    def parse(self, raw: Raw, name: str) -> str:
        value = _scalar(raw, name)
        if len(value) > self.max_length:
            raise _fail(name, f"longer than {self.max_length} characters")
        return value

    def schema(self) -> dict:
        return {"type": "string", "maxLength": self.max_length}


@dataclass(frozen=True)
class MultiLineText(Kind):
    """Text that may hold line breaks (footers, header lines); other control
    characters are refused."""

    max_length: int = 20000

    def parse(self, raw: Raw, name: str) -> str:
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise _fail(name, "expected a text value")
        if _FORBIDDEN_CHARS.search(raw.replace("\r\n", "\n").replace("\n", "").replace("\t", "")):
            raise _fail(name, "control characters other than line breaks and tabs are not allowed")
        if len(raw) > self.max_length:
            raise _fail(name, f"longer than {self.max_length} characters")
        return raw

    def schema(self) -> dict:
        return {"type": "string", "maxLength": self.max_length}


def _header_name(value: str, *, param: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise _fail(param, f"{value!r} is not a header name")
    return value


def _host(value: str, *, param: str) -> str:
    if not _HOST.fullmatch(value):
        raise _fail(param, f"{value!r} is not a host name or IP address")
    return value


@dataclass(frozen=True)
class HostName(Kind):
    def parse(self, raw: Raw, name: str) -> str:
        text = _scalar(raw, name).strip()
        return _host(text, param=name) if text else ""

    def schema(self) -> dict:
        return {"type": "string", "description": "a host name or an IP address"}


def _api_kind(param: ProfileParam) -> Kind:
    if param.kind == "boolean":
        return Boolean()
    if param.kind == "text" or param.name == "custom_headers":
        return MultiLineText()
    if param.name == "remove_headers":
        return CheckedList(check=_header_name, description="comma-separated header names")
    if param.kind == "list":
        return EmailList()
    if param.name == "max_message_size":
        return Integer(minimum=0)
    if param.name == "smtp_port":
        return Integer(minimum=1, maximum=65535)
    if param.name in ("relay_host", "smtp_helo"):
        return HostName()
    return LineText()


# Where mlmmj sends a list's mail: on iRedMail, Amavisd's MLMMJ policy bank
# (DKIM signing).  A domain admin who could point it elsewhere could make
# list mail skip the content filter, so only a global admin may change it.
_GLOBAL_ONLY = frozenset({"relay_host", "smtp_port", "smtp_helo"})

#: mlmmjadmin's profile parameters as the API declares them (`name` is the
#: list's display name on the LDAP side too; the web layer decides).
PROFILE_API_PARAMS: tuple[Param, ...] = tuple(
    Param(p.name, _api_kind(p), p.description, aliases=p.aliases, global_only=p.name in _GLOBAL_ONLY)
    for p in PROFILE_PARAMS)
PROFILE_PARAMSET = ParamSet(PROFILE_API_PARAMS)


def form_of(parsed: Mapping[str, Any]) -> dict[str, str]:
    """Values parsed by `PROFILE_PARAMSET` (others are left out) as
    mlmmjadmin's form: True/False -> yes/no, lists joined."""
    form: dict[str, str] = {}
    for name, value in parsed.items():
        param = BY_NAME.get(name)
        if param is None:
            continue
        if isinstance(value, bool):
            form[name] = "yes" if value else "no"
        elif isinstance(value, list):
            form[name] = param.split.join(value)
        else:
            form[name] = str(value)
    return form
