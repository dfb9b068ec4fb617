"""A lean encoding of search requests, for `LeanSyncStrategy` (decoding.py).

ldap3 turns a search into the wire format in two steps: its filter parser
builds a tree, which becomes pyasn1 objects, which pyasn1's BER encoder
serialises -- most of what a search costs the service, far more than
slapd's answer (the caller's lookup of every request has a filter of some
twenty terms).  `search_message` writes the same bytes directly: BER with
definite lengths, as pyasn1 writes them, so the server sees exactly what
ldap3 would have sent (tests/test_lean_encoding.py compares the two).

The filter grammar is RFC 4515's, read as ldap3 reads it (names and values
stripped of surrounding blanks, `\\XX` escapes turned into bytes, a value
otherwise sent as its UTF-8).  What this module does not know (extensible
matches, anything malformed) raises `NotLean`: the caller then leaves the
search to ldap3, which answers as it always did.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

__all__ = ["NotLean", "SCOPE_NUMBERS", "search_message", "encode_filter"]


class NotLean(ValueError):
    """A request this encoder leaves to ldap3."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + _length(len(value)) + value


def _integer(tag: int, n: int) -> bytes:
    """INTEGER or ENUMERATED `n` (>= 0) in the fewest octets, two's complement."""
    return _tlv(tag, n.to_bytes(n.bit_length() // 8 + 1, "big"))


_OCTETS, _INTEGER, _ENUMERATED, _BOOLEAN, _SEQUENCE = 0x04, 0x02, 0x0A, 0x01, 0x30
# Filter choices (RFC 4511 4.5.1), context-specific tags.
_AND, _OR, _NOT, _EQUAL, _SUBSTRINGS, _GREATER, _LESS, _PRESENT, _APPROX = (
    0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0x87, 0xA8)
_INITIAL, _ANY, _FINAL = 0x80, 0x81, 0x82
_SEARCH_REQUEST, _CONTROLS = 0x63, 0xA0
_PAGED_RESULTS = "1.2.840.113556.1.4.319"
# ldap3's names of the search scopes (it takes their numbers too).
SCOPE_NUMBERS = {"BASE": 0, "LEVEL": 1, "SUBTREE": 2, 0: 0, 1: 1, 2: 2}


def _assertion_value(text: str) -> bytes:
    """A filter value as sent: UTF-8, with each `\\XX` the byte XX."""
    raw = text.encode("utf-8")
    if b"\\" not in raw:
        return raw
    if b"\x00" in raw or b"*" in raw:
        # ldap3 would escape this value once more (is_filter_escaped): a NUL,
        # or a '*' (in an ordering or approximate value), beside an escape.
        raise NotLean("a NUL or '*' beside an escape")
    pieces = raw.split(b"\\")
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        # ldap3 escapes a value with a lone backslash once more before sending
        # it; such values are left to ldap3.
        if len(piece) < 2 or piece[0] not in _HEX or piece[1] not in _HEX:
            raise NotLean("a backslash that is no escape")
        out.append(int(piece[:2], 16))
        out += piece[2:]
    return bytes(out)


_HEX = frozenset(b"0123456789abcdefABCDEF")


@lru_cache(maxsize=4096)
def _item(text: str) -> bytes:
    """One `attr<op>value` of a filter, without its parentheses (kept: most
    recur from request to request, the object classes, the caller's address)."""
    name, equals, value = text.strip().partition("=")
    if not equals:
        raise NotLean("a filter item without '='")
    if name.endswith(("~", ">", "<")):
        tag = {"~": _APPROX, ">": _GREATER, "<": _LESS}[name[-1]]
        attr = name[:-1].strip()
        return _tlv(tag, _tlv(_OCTETS, attr.encode()) + _tlv(_OCTETS, _assertion_value(value.strip())))
    if name.endswith(":"):
        raise NotLean("an extensible match")
    described = name.strip().encode()
    if not described or ":" in name:
        raise NotLean("an attribute description this encoder does not read")
    if value == "*":
        return _tlv(_PRESENT, described)
    if "*" in value:
        # As ldap3: the value stripped, then split at every '*'; empty parts dropped.
        parts = value.strip().split("*")
        pieces = b""
        if parts[0]:
            pieces += _tlv(_INITIAL, _assertion_value(parts[0]))
        pieces += b"".join(_tlv(_ANY, _assertion_value(p)) for p in parts[1:-1] if p)
        if parts[-1]:
            pieces += _tlv(_FINAL, _assertion_value(parts[-1]))
        if not pieces:
            # (`**`: ldap3 refuses it before sending; a server would refuse an empty SEQUENCE.)
            raise NotLean("a substring filter without a substring")
        return _tlv(_SUBSTRINGS, _tlv(_OCTETS, described) + _tlv(_SEQUENCE, pieces))
    return _tlv(_EQUAL, _tlv(_OCTETS, described) + _tlv(_OCTETS, _assertion_value(value.strip())))


_BLANKS = " \t\r\n"    # skipped between the parts of a filter, as ldap3 does


def _parse(text: str, pos: int) -> tuple[bytes, int]:
    """The filter starting at text[pos] (an opening parenthesis) and the
    position after its closing one."""
    if text[pos] != "(":
        raise NotLean("a filter must start with '('")
    pos += 1
    while pos < len(text) and text[pos] in _BLANKS:
        pos += 1
    if pos >= len(text):
        raise NotLean("a filter cut short")
    kind = text[pos]
    if kind in "&|!":
        pos += 1
        parts = []
        while True:
            while pos < len(text) and text[pos] in _BLANKS:
                pos += 1
            if pos >= len(text):
                raise NotLean("a filter cut short")
            if text[pos] == ")":
                break
            part, pos = _parse(text, pos)
            parts.append(part)
        if not parts or (kind == "!" and len(parts) != 1):
            raise NotLean("an empty or multiple negation")
        tag = {"&": _AND, "|": _OR, "!": _NOT}[kind]
        return _tlv(tag, b"".join(parts)), pos + 1
    end = text.find(")", pos)
    if end < 0 or "(" in text[pos:end]:
        raise NotLean("a malformed filter item")
    return _item(text[pos:end]), end + 1


@lru_cache(maxsize=256)
def encode_filter(text: str) -> bytes:
    """The BER of a filter string (RFC 4515), as ldap3 would send it."""
    text = text.strip()
    if not text.startswith("("):
        raise NotLean("a filter must be in parentheses")
    encoded, end = _parse(text, 0)
    if text[end:].strip():
        raise NotLean("text after the filter")
    return encoded


def paged_control(size: int, cookie: bytes | None) -> tuple[str, bool, bytes]:
    """The simple paged results control (RFC 2696), as ldap3's paged_search_control."""
    return _PAGED_RESULTS, False, _tlv(_SEQUENCE, _integer(_INTEGER, size) + _tlv(_OCTETS, cookie or b""))


def search_message(message_id: int, base: str, filterstr: str, *, scope: str | int, attrs: Sequence[str],
                   size_limit: int = 0, time_limit: int = 0, deref: int = 3, types_only: bool = False,
                   controls: Sequence[tuple[str, bool, bytes | None]] = ()) -> bytes:
    """A whole LDAPMessage carrying a SearchRequest (`base` as ldap3 sends it:
    already through its safe_dn; `scope` one of ldap3's BASE, LEVEL, SUBTREE)."""
    if scope not in SCOPE_NUMBERS:
        raise NotLean("an unknown scope")
    request = (_tlv(_OCTETS, base.encode("utf-8")) + _integer(_ENUMERATED, SCOPE_NUMBERS[scope]) + _integer(_ENUMERATED, deref)
               + _integer(_INTEGER, size_limit) + _integer(_INTEGER, time_limit)
               + _tlv(_BOOLEAN, b"\xff" if types_only else b"\x00") + encode_filter(filterstr)
               + _tlv(_SEQUENCE, b"".join(_tlv(_OCTETS, a.encode("utf-8")) for a in attrs)))
    body = _integer(_INTEGER, message_id) + _tlv(_SEARCH_REQUEST, request)
    if controls:
        encoded = b""
        for oid, critical, value in controls:
            control = _tlv(_OCTETS, oid.encode())
            if critical:
                control += _tlv(_BOOLEAN, b"\xff")
            if value is not None:
                control += _tlv(_OCTETS, value)
            encoded += _tlv(_SEQUENCE, control)
        body += _tlv(_CONTROLS, encoded)
    return _tlv(_SEQUENCE, body)
