"""Endpoint parameters: declared once, used to validate requests and to describe the API.

A `ParamSet` lists what an endpoint accepts.  `ParamSet.parse()` takes the raw
key/value pairs of a request (query string, form body or JSON object, merged
by the web layer) and returns clean Python values, or raises InvalidInput
naming the offending parameter.  Legacy names (`cn`, `mailQuota`, ...) are
aliases of the current ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from iredldap.model import validators
from iredldap.model.policy_addresses import account_of
from iredldap.errors import ConflictingParameters, InvalidInput, MissingParameter, UnknownParameters

Raw = str | int | float | bool | list | None

_TRUE = {"yes", "true", "1", "on", "y"}
_FALSE = {"no", "false", "0", "off", "n"}

# C0 and C1 control characters (tab, CR and LF included: no parameter is
# multi-line text) and unpaired UTF-16 surrogates, which no store can encode.
_FORBIDDEN_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Whole numbers as ASCII digits only: int() would also take "１２",
# "1_000", "+5" and " 5".
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")
_DECIMAL_NUMBER = re.compile(r"-?(?:[0-9]{1,19}(?:\.[0-9]{1,19})?|\.[0-9]{1,19})")
# Largest value of a signed 64-bit integer: what LDAP Integer attributes and
# the SQL BIGINT columns the values end up in hold, at most.
INT64_MAX = 2**63 - 1

# Most values a list parameter (forwarding, members, wblist addresses ...)
# takes, unless its kind names its own limit: MAX_LIST_ITEMS, set by
# create_app from the settings (the service reads its configuration once).
DEFAULT_MAX_LIST_ITEMS = 1000
_list_limit = {"max_items": DEFAULT_MAX_LIST_ITEMS}


def set_max_list_items(limit: int) -> None:
    """The limit of every list parameter that names none of its own."""
    if limit < 1:
        raise ValueError("the list limit must be at least 1")
    _list_limit["max_items"] = limit


def max_list_items() -> int:
    return _list_limit["max_items"]


def _shown(text: str, limit: int = 40) -> str:
    """A refused value, short enough for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _scalar(raw: Raw, name: str) -> str:
    """One value as text; JSON numbers and booleans are accepted as such."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise InvalidInput(f"{name}: given {len(raw)} times, expected once", param=name)
        raw = raw[0]
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, (int, float)):
        return str(raw)
    if not isinstance(raw, str):
        raise InvalidInput(f"{name}: expected a text value", param=name)
    if _FORBIDDEN_CHARS.search(raw):
        raise InvalidInput(f"{name}: control characters and unpaired surrogates are not allowed", param=name)
    return raw


def _items(raw: Raw, name: str, max_items: int | None = None) -> list[str]:
    """A comma-separated list (or a JSON array, or repeated keys), trimmed,
    blanks dropped; more than `max_items` values is refused before any of
    them is checked."""
    parts = raw if isinstance(raw, list) else [raw]
    items: list[str] = []
    for part in parts:
        items.extend(item.strip() for item in _scalar(part, name).split(","))
    items = [item for item in items if item]
    if max_items is not None and len(items) > max_items:
        raise InvalidInput(f"{name}: {len(items)} values given, at most {max_items} allowed", param=name)
    return items


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# -- kinds of values ---------------------------------------------------------

class Kind:
    """How one parameter's raw value becomes a Python value."""

    json_type = "string"

    def parse(self, raw: Raw, name: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict:
        return {"type": self.json_type}


@dataclass(frozen=True)
class Text(Kind):
    max_length: int = 255
    allow_empty: bool = True

    def parse(self, raw: Raw, name: str) -> str:
        value = _scalar(raw, name).strip()
        if not value and not self.allow_empty:
            raise InvalidInput(f"{name}: must not be empty", param=name)
        if len(value) > self.max_length:
            raise InvalidInput(f"{name}: longer than {self.max_length} characters", param=name)
        return value

    def schema(self) -> dict:
        return {"type": "string", "maxLength": self.max_length}


@dataclass(frozen=True)
class Secret(Kind):
    """A password: kept as given (no trimming), never echoed back."""

    def parse(self, raw: Raw, name: str) -> str:
        value = _scalar(raw, name)
        if not value:
            raise InvalidInput(f"{name}: must not be empty", code="PW_EMPTY", param=name)
        if len(value) > 1024:
            raise InvalidInput(f"{name}: longer than 1024 characters", param=name)
        return value

    def schema(self) -> dict:
        return {"type": "string", "format": "password"}


def _within(value, minimum, maximum, name: str):
    """`value` if it lies in [minimum, maximum] (None: no bound), else InvalidInput."""
    def shown(bound) -> str:
        return f"{bound:g}" if isinstance(bound, float) else str(bound)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name}: must be at least {shown(minimum)}", param=name)
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name}: must be at most {shown(maximum)}", param=name)
    return value


def _range_schema(json_type: str, minimum, maximum) -> dict:
    bounds = {"minimum": minimum, "maximum": maximum}
    return {"type": json_type, **{k: v for k, v in bounds.items() if v is not None}}


@dataclass(frozen=True)
class Integer(Kind):
    minimum: int | None = 0
    # Never unbounded: at most what a signed 64-bit integer holds.
    maximum: int | None = INT64_MAX
    json_type = "integer"

    def parse(self, raw: Raw, name: str) -> int:
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if isinstance(raw, int) and not isinstance(raw, bool):      # a JSON number
            value = raw
        else:
            text = _scalar(raw, name)
            if not _WHOLE_NUMBER.fullmatch(text):
                raise InvalidInput(f"{name}: {_shown(text)} is not a whole number (ASCII digits)", param=name)
            value = int(text)
        return _within(value, self.minimum, self.maximum, name)

    def schema(self) -> dict:
        return _range_schema("integer", self.minimum, self.maximum)


@dataclass(frozen=True)
class Boolean(Kind):
    json_type = "boolean"

    def parse(self, raw: Raw, name: str) -> bool:
        text = _scalar(raw, name).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidInput(f"{name}: expected yes/no, true/false or 1/0, got {text!r}", param=name)

    def schema(self) -> dict:
        return {"type": "string", "enum": ["yes", "no", "true", "false", "1", "0"]}


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...]
    # Other spellings clients send, mapped to a canonical choice.
    synonyms: tuple[tuple[str, str], ...] = ()

    def parse(self, raw: Raw, name: str) -> str:
        text = _scalar(raw, name).strip()
        lookup = {c.lower(): c for c in self.choices} | {k.lower(): v for k, v in self.synonyms}
        try:
            return lookup[text.lower()]
        except KeyError:
            raise InvalidInput(f"{name}: {text!r} is not one of {', '.join(self.choices)}", param=name) from None

    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices)}


ACCOUNT_STATUS = Choice(("active", "disabled"),
                        synonyms=(("enable", "active"), ("enabled", "active"),
                                  ("disable", "disabled"), ("inactive", "disabled")))


@dataclass(frozen=True)
class Email(Kind):
    allow_empty: bool = False

    def parse(self, raw: Raw, name: str) -> str:
        text = _scalar(raw, name).strip()
        if not text and self.allow_empty:
            return ""
        return validators.email(text, param=name)

    def schema(self) -> dict:
        return {"type": "string", "format": "email"}


@dataclass(frozen=True)
class Domain(Kind):
    def parse(self, raw: Raw, name: str) -> str:
        return validators.domain_name(_scalar(raw, name), param=name)

    def schema(self) -> dict:
        return {"type": "string", "format": "hostname"}


@dataclass(frozen=True)
class ListKind(Kind):
    """A list parameter: comma-separated text, a JSON array or repeated keys.

    `max_items` bounds how many values it takes (None: MAX_LIST_ITEMS); the
    API document shows the bound as `maxItems`.
    """

    max_items: int | None = field(default=None, kw_only=True)

    def limit(self) -> int:
        return self.max_items if self.max_items is not None else max_list_items()

    def items(self, raw: Raw, name: str) -> list[str]:
        return _items(raw, name, self.limit())

    def list_schema(self, description: str) -> dict:
        # The value is a string (or an array of strings); maxItems is the
        # bound on the number of values either way.
        return {"type": "string", "description": f"{description}; at most {self.limit()} values",
                "maxItems": self.limit()}


@dataclass(frozen=True)
class NameList(ListKind):
    """Comma-separated names, optionally from a fixed vocabulary."""

    choices: tuple[str, ...] = ()
    max_length: int = 64

    def parse(self, raw: Raw, name: str) -> list[str]:
        items = self.items(raw, name)
        if self.choices:
            lookup = {c.lower(): c for c in self.choices}
            bad = [i for i in items if i.lower() not in lookup]
            if bad:
                raise InvalidInput(f"{name}: unknown value(s) {', '.join(bad)}; allowed: {', '.join(self.choices)}",
                                   param=name)
            items = [lookup[i.lower()] for i in items]
        for item in items:
            if len(item) > self.max_length or not all(c.isalnum() or c in "-_." for c in item):
                raise InvalidInput(f"{name}: {item!r} is not a valid name", param=name)
        return _dedupe(items)

    def schema(self) -> dict:
        description = "comma-separated names"
        if self.choices:
            description += "; allowed: " + ", ".join(self.choices)
        return self.list_schema(description)


@dataclass(frozen=True)
class Converted(Kind):
    """A text value checked by a validator function (relay hosts, transports)."""

    check: Any = None
    allow_empty: bool = True
    description: str = ""

    def parse(self, raw: Raw, name: str) -> str:
        text = _scalar(raw, name).strip()
        if not text:
            if self.allow_empty:
                return ""
            raise InvalidInput(f"{name}: must not be empty", param=name)
        return self.check(text, param=name)

    def schema(self) -> dict:
        return {"type": "string", "description": self.description}


@dataclass(frozen=True)
class Number(Kind):
    """A decimal number (spam scores)."""

    minimum: float | None = None
    maximum: float | None = None
    json_type = "number"

    def parse(self, raw: Raw, name: str) -> float:
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):    # a JSON number
            value = float(raw)
            text = str(raw)
        else:
            text = _scalar(raw, name)
            if not _DECIMAL_NUMBER.fullmatch(text):
                raise InvalidInput(f"{name}: {_shown(text)} is not a number (ASCII digits, optional .decimals)",
                                   param=name)
            value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"{name}: {_shown(text)} is not a number", param=name)
        return _within(value, self.minimum, self.maximum, name)

    def schema(self) -> dict:
        return _range_schema("number", self.minimum, self.maximum)


@dataclass(frozen=True)
class _CheckedItems(ListKind):
    """Comma-separated values, each checked (and normalised) by a validator
    function called as ``check(item, param=name)``; duplicates dropped."""

    check: Any = None
    description: str = ""

    def checked(self, raw: Raw, name: str) -> list[str]:
        return _dedupe(self.check(item, param=name) for item in self.items(raw, name))

    def schema(self) -> dict:
        return self.list_schema(self.description or "comma-separated values")


@dataclass(frozen=True)
class CheckedList(_CheckedItems):
    """Checked comma-separated values, handed on as a list."""

    def parse(self, raw: Raw, name: str) -> list[str]:
        return self.checked(raw, name)


@dataclass(frozen=True)
class EmailList(CheckedList):
    """Comma-separated addresses; empty means 'none'."""

    check: Any = validators.email
    description: str = "comma-separated email addresses"


@dataclass(frozen=True)
class DomainList(CheckedList):
    check: Any = validators.domain_name
    description: str = "comma-separated domain names"


@dataclass(frozen=True)
class JoinedList(_CheckedItems):
    """Checked comma-separated values handed on as one comma-separated text
    (what the multi-valued LDAP fields of `iredldap.model.accounts` take);
    empty: none."""

    def parse(self, raw: Raw, name: str) -> str:
        return ",".join(self.checked(raw, name))


@dataclass(frozen=True)
class Blankable(Kind):
    """Another kind, or None when the value is empty (JSON null or ''):
    "not set here", e.g. to let a lower-priority setting apply."""

    kind: Kind

    def parse(self, raw: Raw, name: str) -> Any:
        if raw is None or (isinstance(raw, str) and not raw.strip()) or raw == [""]:
            return None
        return self.kind.parse(raw, name)

    def schema(self) -> dict:
        return {**self.kind.schema(), "nullable": True}


# -- declarations ------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    summary: str = ""
    aliases: tuple[str, ...] = ()
    required: bool = False
    # Only a global admin may send it (limits, quotas, services ...).
    global_only: bool = False
    # iRedAdmin profile tab it belongs to: a normal admin cannot change it
    # when the domain lists that tab in `disabledDomainProfile`.
    profile: str = ""
    # A stricter check of the parsed value when a normal admin sends it
    # (what a tenant may set is narrower than what the operator may).
    normal_admin_check: Callable[[Any, str], None] | None = None


@dataclass(frozen=True)
class ParamSet:
    params: tuple[Param, ...] = ()
    # Groups of parameter names of which at most one may be given.
    conflicts: tuple[tuple[str, ...], ...] = ()
    # (a, b): a given requires b given.
    requires: tuple[tuple[str, str], ...] = ()
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)
    by_alias: dict[str, Param] = field(init=False, repr=False, compare=False)
    # (addX, removeX) pairs, by the API's names (also add_x / remove_x): one
    # request may not both add and remove a value (which would win?).
    opposites: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "by_alias", {a: p for p in self.params for a in p.aliases})
        object.__setattr__(self, "opposites", tuple(
            (p.name, "remove" + p.name[3:]) for p in self.params
            if p.name.startswith("add") and "remove" + p.name[3:] in self.by_name))

    def parse(self, raw: dict[str, Raw]) -> dict[str, Any]:
        unknown = sorted(k for k in raw if k not in self.by_name and k not in self.by_alias)
        if unknown:
            raise UnknownParameters(f"unknown parameter(s): {', '.join(unknown)}", params=unknown)
        given: dict[str, tuple[str, Raw]] = {}
        for key, value in raw.items():
            param = self.by_name.get(key) or self.by_alias[key]
            if param.name in given:
                raise ConflictingParameters(
                    f"{key} and {given[param.name][0]} are the same parameter; give only one", param=param.name)
            given[param.name] = (key, value)
        for group in self.conflicts:
            present = [name for name in group if name in given]
            if len(present) > 1:
                raise ConflictingParameters(f"{' and '.join(present)} cannot be used together", params=present)
        for needs, needed in self.requires:
            if needs in given and needed not in given:
                raise MissingParameter(f"{needs} must be used with {needed}", param=needed)
        for param in self.params:
            if param.required and param.name not in given:
                raise MissingParameter(f"{param.name}: required", param=param.name)
        parsed = {name: self.by_name[name].kind.parse(value, key) for name, (key, value) in given.items()}
        for add, remove in self.opposites:
            if isinstance(parsed.get(add), list) and isinstance(parsed.get(remove), list):
                both = sorted({str(v).lower() for v in parsed[add]} & {str(v).lower() for v in parsed[remove]})
                if both:
                    raise InvalidInput(f"{add} and {remove} both name {', '.join(both)}", param=remove)
        return parsed

    def __add__(self, other: "ParamSet") -> "ParamSet":
        return ParamSet(self.params + other.params, self.conflicts + other.conflicts,
                        self.requires + other.requires)


NO_PARAMS = ParamSet()


# -- what each endpoint declares -----------------------------------------------

@dataclass(frozen=True)
class Operation:
    """One responder's declaration: the parameters it reads (and nothing else)
    and what the API document says about it.

    Resources keep them in ``operations``, keyed by HTTP method, or
    ``METHOD_suffix`` for a responder added with a route suffix
    (``on_delete_keep`` → ``"DELETE_keep"``); the responder reads its
    parameters with ``read_params(req, self.operations[...])`` and
    ``iredldap.web.openapi`` builds the document from the same objects.
    """

    summary: str
    params: ParamSet = NO_PARAMS
    # Status of a success (201 for creations).
    status: int = 200
    # JSON schema of `_data`; None: a success is `{"_success": true}` alone.
    data: dict | None = None
    description: str = ""
    # A listing: `_total` (and with paging `_page`, `_page_size`, `_next_cursor`) beside `_data`.
    listing: bool = False
    # Not the JSON envelope: media type -> schema of what a success returns.
    content: dict | None = None


# -- parts of URL templates -------------------------------------------------------
#
# A URL part is checked as it arrived (its message names it so); the
# authentication middleware (iredldap.web.url) parses every part with these
# before the access check, and responders receive the results.

class UrlEmail(Email):
    def parse(self, raw: Raw, name: str) -> str:
        return validators.email(str(raw), param=name)


class UrlDomain(Domain):
    def parse(self, raw: Raw, name: str) -> str:
        return validators.domain_name(str(raw), param=name)


@dataclass(frozen=True)
class UrlChoice(Choice):
    # The name the message gives it, when not the URL part's.
    label: str = ""

    def parse(self, raw: Raw, name: str) -> str:
        value = str(raw).strip().lower()
        if value not in self.choices:
            param = self.label or name
            raise InvalidInput(f"{param}: {raw!r} is not one of {', '.join(self.choices)}", param=param)
        return value


class KeepDays(Integer):
    """The <n> of `.../keep_mailbox_days/<n>`."""

    def parse(self, raw: Raw, name: str) -> int:
        try:
            days = int(str(raw))
        except ValueError:
            raise InvalidInput(f"keep_mailbox_days: {raw!r} is not a whole number",
                               param="keep_mailbox_days") from None
        if not 0 <= days <= KEEP_DAYS_MAX:
            raise InvalidInput(f"keep_mailbox_days: must be between 0 and {KEEP_DAYS_MAX}", param="keep_mailbox_days")
        return days


class AccountPart(Text):
    """`global`, a domain name or a mail address, as a policy_addresses.Account."""

    def parse(self, raw: Raw, name: str) -> Any:
        return account_of(str(raw), param=name)


#: Mailboxes of deleted accounts are kept at most this many days (100 years).
KEEP_DAYS_MAX = 36500

# Parts of URL templates ({domain}, {mail}, ...): how they are checked.
URL_PARAMS: dict[str, Param] = {p.name: p for p in (
    Param("domain", UrlDomain(), "Domain name (Unicode names are converted to punycode)"),
    Param("mail", UrlEmail(), "Email address"),
    Param("new_mail", UrlEmail(), "The new email address"),
    Param("days", KeepDays(minimum=0, maximum=KEEP_DAYS_MAX), "Keep the mailboxes this many days (0: no removal date)"),
    Param("account", AccountPart(320, allow_empty=False), "`global`, a domain name or an email address"),
    Param("direction", UrlChoice(("inbound", "outbound")), "inbound or outbound"),
    Param("listname", UrlChoice(("whitelist", "blacklist"), label="list"), "whitelist or blacklist"),
)}
