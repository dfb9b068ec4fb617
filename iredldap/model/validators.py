"""Checks and normalisation of the names the API receives: domains, addresses.

Everything is lower-cased; an internationalised domain name given in Unicode
is stored in its ASCII (punycode) form, as Postfix looks it up.
"""

from __future__ import annotations

import ipaddress
import re

import idna

from iredldap.errors import InvalidInput

# A DNS label after IDNA encoding: letters, digits, hyphens, not at the ends.
# (Used with fullmatch: a `$` would also match before a final line break.)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# Local parts iRedAdmin accepts (its `auth_email` rule): no '+', '=', '/'.
_LOCAL_PART = re.compile(r"[a-z0-9_.\-~!#$%&'*?^`{|}]+")


def domain_name(value: str, *, param: str = "domain") -> str:
    """Return the normalised (lower-case, punycode) domain or raise InvalidInput."""
    text = (value or "").strip().rstrip(".")
    if not text:
        raise InvalidInput(f"{param}: a domain name is required", code="INVALID_DOMAIN_NAME", param=param)
    try:
        ascii_name = text.encode("ascii").decode().lower()
    except UnicodeEncodeError:
        try:
            ascii_name = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise InvalidInput(f"{param}: {value!r} is not a valid domain name",
                               code="INVALID_DOMAIN_NAME", param=param) from None
    labels = ascii_name.split(".")
    for label in labels:
        # An `xn--` label must be real punycode, or Postfix gets a name nobody can type.
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise InvalidInput(f"{param}: {value!r} is not a valid domain name",
                                   code="INVALID_DOMAIN_NAME", param=param) from None
    if (len(ascii_name) > 253 or len(labels) < 2
            or not all(_LABEL.fullmatch(label) for label in labels)
            or labels[-1].isdigit()):
        raise InvalidInput(f"{param}: {value!r} is not a valid domain name", code="INVALID_DOMAIN_NAME", param=param)
    return ascii_name


def is_loopback_name(domain: str) -> bool:
    """Whether a (normalised) domain names the machine itself: localhost.localdomain,
    localhost4.localdomain4 ... (loopback in the usual /etc/hosts files and
    in systemd-resolved, and in iRedMail's Postfix `mydestination`), or a
    name under the reserved `localhost` top-level domain (RFC 6761)."""
    labels = domain.split(".")
    return labels[-1] == "localhost" or re.fullmatch(r"localhost\d*", labels[0]) is not None


def hostable_domain(domain: str, *, param: str = "domain") -> None:
    """Raise InvalidInput unless a (normalised) domain may be hosted as a
    mail domain or alias domain: not one of the machine's own names, which
    Postfix delivers locally (an account there would claim root@ and
    postmaster@ of the machine)."""
    if is_loopback_name(domain):
        raise InvalidInput(f"{param}: {domain} is a name of the machine itself, not a domain to host",
                           code="INVALID_DOMAIN_NAME", param=param)


def email(value: str, *, param: str = "mail") -> str:
    """Return the normalised address (`local@domain`) or raise InvalidInput."""
    text = (value or "").strip()
    local, sep, domain = text.rpartition("@")
    # ASCII before lower-casing: the Kelvin sign (U+212A) lower-cases to an ASCII "k".
    is_ascii = local.isascii()
    local = local.lower()
    if not is_ascii or not sep or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local) \
            or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidInput(f"{param}: {value!r} is not a valid email address", code="INVALID_MAIL", param=param)
    try:
        domain = domain_name(domain, param=param)
    except InvalidInput:
        raise InvalidInput(f"{param}: {value!r} is not a valid email address", code="INVALID_MAIL",
                           param=param) from None
    return f"{local}@{domain}"


def relay_host(value: str, *, param: str) -> str:
    """A Postfix next-hop: `[host]:port`, `host:port`, `transport:[host]:port` ..."""
    text = (value or "").strip()
    if not text or len(text) > 255 or any(c.isspace() for c in text) or any(c in text for c in ",()\"'\\"):
        raise InvalidInput(f"{param}: {value!r} is not a valid relay host", param=param)
    return text


# Next hops a normal admin may give: SMTP to a host name or an address
# outside this machine.  Other transports (lmtp, pipe, Amavisd's
# reinjection `smtp-amavis:` ...) and loopback or link-local addresses would
# let a tenant's mail skip the content filter or reach local services.
_TENANT_NEXT_HOP = re.compile(r"(?:(?:smtp|relay):)?(?:\[([^\[\]]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?",
                              re.IGNORECASE)


def tenant_relay_host(value: str, param: str) -> None:
    """Refuse next hops a normal admin may not route to (see _TENANT_NEXT_HOP)."""
    if value == "":
        return
    refused = InvalidInput(f"{param}: {value!r}: a domain admin may route only over smtp: to a host name or a "
                           "public or LAN address (not this machine, not link-local)",
                           code="INVALID_RELAY_HOST", param=param)
    match = _TENANT_NEXT_HOP.fullmatch(value)
    if not match:
        raise refused
    literal, name, port = match.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise refused
    host = literal if literal is not None else name
    if host.lower().startswith("ipv6:"):
        host = host[5:]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None:
        try:
            domain = domain_name(host, param=param)
        except InvalidInput:
            raise refused from None
        if is_loopback_name(domain):
            raise refused
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if (address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast
            or address.is_reserved):
        raise refused


def mx_host(value: str, *, param: str = "primarymx") -> str:
    """Primary MX of a backup-MX domain: an IP or host name, optional [..] and :port."""
    text = (value or "").strip()
    match = re.fullmatch(r"\[?([^\[\]]+?)\]?(?::([0-9]{1,5}))?", text)
    if not match:
        raise InvalidInput(f"{param}: {value!r} is not a host name or IP address", param=param)
    host, port = match.group(1), match.group(2)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        domain_name(host, param=param)
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidInput(f"{param}: port {port} is out of range", param=param)
    return text


def transport(value: str, *, param: str = "transport") -> str:
    """A Postfix transport (`dovecot`, `lmtp:unix:private/dovecot-lmtp`, `relay:[h]:25`)."""
    text = (value or "").strip()
    if not text or len(text) > 255 or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*(:\S*)?", text):
        raise InvalidInput(f"{param}: {value!r} is not a valid transport", param=param)
    return text
