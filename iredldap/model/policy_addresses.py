"""Addresses as Amavisd and iRedAPD keep them in their policy tables.

Local accounts (whose settings a row holds) and remote senders/recipients
(listed in white/blacklists) are written in these forms:

    form        example                 meaning
    email       user@example.com        one address
    domain      @example.com            every address of the domain
    subdomain   @.example.com           the domain and all its sub-domains
    tld         @.com                   every domain under a top-level domain
    catchall    @.                      everyone (the global account)
    ip          192.0.2.10, 2001:db8::7 one client address
    cidr        192.0.2.0/24            a network of client addresses

Both programs sort the rows that match a message by a priority stored with
the row: Amavisd by ``users.priority`` / ``mailaddr.priority`` (scale
`AMAVISD_PRIORITY`), iRedAPD by ``throttle.priority`` and
``greylisting.priority`` (scale `IREDAPD_PRIORITY`).  A row with the wrong
priority changes which setting wins, so the priority is always derived from
the form here, never taken from a client.

Values are lower-cased; domain names become punycode; IP addresses and
networks get their canonical text (a network given with host bits set is
reduced to its network address).  Quotes, semicolons, backslashes, percent
signs, spaces and control characters are never part of an accepted value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from iredldap.model import validators
from iredldap.errors import InvalidInput

AMAVISD_PRIORITY = {"email": 10, "ip": 9, "cidr": 7, "domain": 5, "subdomain": 3, "tld": 2, "catchall": 0}
IREDAPD_PRIORITY = {"email": 100, "ip": 80, "domain": 60, "subdomain": 50, "tld": 40, "catchall": 0}

# Local parts of remote addresses: what mail software really sends (VERP
# bounce addresses use + and =), minus everything with a meaning in SQL or
# in a comma-separated parameter.
_LOCAL = re.compile(r"^[a-z0-9._+=~!#$&^{|}-]+$")
_TLD = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

MAX_ADDRESS_LENGTH = 255    # users.email / mailaddr.email / iRedAPD account columns


def _bad(value: str, param: str, what: str) -> InvalidInput:
    return InvalidInput(f"{param}: {value!r} is not {what}", code="INVALID_ADDRESS", param=param)


def _ip_or_network(text: str) -> tuple[str, str] | None:
    """('ip', canonical) or ('cidr', canonical), or None if `text` is neither."""
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
        return "cidr", str(net)
    try:
        return "ip", str(ipaddress.ip_address(text))
    except ValueError:
        return None


def looks_like_network(text: str) -> bool:
    return "/" in text or bool(re.fullmatch(r"[0-9.]+|[0-9a-f:.]*:[0-9a-f:.]*", text))


def normalize(value: str, *, param: str, allowed: frozenset[str] | set[str]) -> tuple[str, str]:
    """(form, canonical value) of a policy address, or InvalidInput.

    `allowed` lists the forms the caller accepts (see the module doc).
    """
    raw = value
    text = (value or "").strip().lower()
    if not text or len(text) > MAX_ADDRESS_LENGTH or any(c.isspace() or ord(c) < 32 for c in text):
        raise _bad(raw, param, "a valid address")
    form: str
    if text == "@.":
        form, canonical = "catchall", text
    elif text.startswith("@."):
        name = text[2:]
        if "." in name:
            form, canonical = "subdomain", "@." + validators.domain_name(name, param=param)
        elif _TLD.fullmatch(name):
            form, canonical = "tld", text
        else:
            raise _bad(raw, param, "a valid @.domain")
    elif text.startswith("@"):
        form, canonical = "domain", "@" + validators.domain_name(text[1:], param=param)
    elif "@" in text:
        local, _, domain = text.rpartition("@")
        # (the local part as sent: the Kelvin sign U+212A lower-cases to an ASCII "k")
        if (not raw.strip().rpartition("@")[0].isascii() or not _LOCAL.fullmatch(local) or len(local) > 64
                or local.startswith(".") or local.endswith(".") or ".." in local):
            raise _bad(raw, param, "a valid email address")
        try:
            canonical = f"{local}@{validators.domain_name(domain, param=param)}"
        except InvalidInput:
            raise _bad(raw, param, "a valid email address") from None
        form = "email"
    else:
        found = _ip_or_network(text)
        if found is None:
            what = "a valid IP address or CIDR network" if looks_like_network(text) else "a valid address"
            raise _bad(raw, param, what)
        form, canonical = found
    if form not in allowed:
        raise InvalidInput(f"{param}: {raw!r} ({form}) is not accepted here", code="INVALID_ADDRESS", param=param)
    if len(canonical.encode("utf-8")) > MAX_ADDRESS_LENGTH:
        raise _bad(raw, param, f"at most {MAX_ADDRESS_LENGTH} characters long")
    return form, canonical


def form_of(value: str) -> str:
    """The form of a value already stored (for priorities); '' if unknown."""
    try:
        return normalize(value, param="address", allowed=set(AMAVISD_PRIORITY))[0]
    except InvalidInput:
        return ""


# White/blacklist entries (docs: IP, CIDR, email, @domain, @.domain, @.).
WBLIST_FORMS = frozenset({"ip", "cidr", "email", "domain", "subdomain", "tld", "catchall"})
# Greylisting whitelist senders (docs: IP, CIDR, email, @domain, @.domain).
GREYLIST_SENDER_FORMS = frozenset({"ip", "cidr", "email", "domain", "subdomain", "tld"})


def wblist_address(value: str, *, param: str) -> str:
    return normalize(value, param=param, allowed=WBLIST_FORMS)[1]


def greylist_sender(value: str, *, param: str) -> str:
    return normalize(value, param=param, allowed=GREYLIST_SENDER_FORMS)[1]


# -- the account of a URL: global, a domain or a mail user ---------------------

@dataclass(frozen=True)
class Account:
    """Whose setting: ``kind`` is global, domain or user; ``key`` is the row key
    (``@.``, ``@example.com``, ``user@example.com``); ``name`` the domain or
    address itself ('' for global)."""

    kind: str
    key: str
    name: str = ""

    @property
    def form(self) -> str:
        return {"global": "catchall", "domain": "domain", "user": "email"}[self.kind]

    @property
    def amavisd_priority(self) -> int:
        return AMAVISD_PRIORITY[self.form]

    @property
    def iredapd_priority(self) -> int:
        return IREDAPD_PRIORITY[self.form]


GLOBAL = Account("global", "@.")


def domain_account(raw: str, *, param: str = "domain") -> Account:
    domain = validators.domain_name(raw, param=param)
    return Account("domain", "@" + domain, domain)


def user_account(raw: str, *, param: str = "mail") -> Account:
    mail = validators.email(raw, param=param)
    if len(mail) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(f"{param}: longer than {MAX_ADDRESS_LENGTH} characters", code="INVALID_MAIL", param=param)
    return Account("user", mail, mail)


def account_of(raw: str, *, param: str = "account") -> Account:
    """`global`, a domain name or a mail address (URL segment of throttle,
    greylisting and white/blacklist endpoints); anything else is refused."""
    text = (raw or "").strip()
    if text.lower() == "global":
        return GLOBAL
    try:
        if "@" in text:
            return user_account(text, param=param)
        return domain_account(text, param=param)
    except InvalidInput:
        raise InvalidInput(f"{param}: {raw!r} is neither 'global', a domain name nor an email address",
                           code="INVALID_ACCOUNT", param=param) from None


def policy_keys_of(mail: str) -> list[str]:
    """Every account key whose settings apply to `mail`, as Amavisd and
    iRedAPD build them: the address, its domain, the catch-all, and the
    `@.` forms of the domain and of each parent domain."""
    local, at, domain = mail.rpartition("@")
    if not at or not local:
        return ["@."]
    keys = [mail, "@" + domain, "@."]
    labels = domain.split(".")
    keys += ["@." + ".".join(labels[i:]) for i in range(len(labels))]
    return keys


__all__ = ["AMAVISD_PRIORITY", "IREDAPD_PRIORITY", "Account", "GLOBAL", "account_of", "domain_account",
           "user_account", "normalize", "wblist_address", "greylist_sender", "policy_keys_of", "form_of"]
