"""Free-text search of listings (`search=`): the server's filter, then an exact check.

The API side of listings (paging, sorting, cursors) is `iredldap.model.listing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TypeVar

from iredldap.model.accounts import escape_filter_value


T = TypeVar("T")

_FILTER_SPECIAL = re.compile(r"[*()\\\x00]")


def search_filter(text: str, attrs: tuple[str, ...]) -> str:
    """`(|(attr=*text*)...)`, the server's part of a search; '' for none.

    Only the longest run of the text without filter syntax characters
    (`*()\\` and NUL) is sent, escaped: ldap3's mock mishandles escaped
    values, and an entry with the whole text has that run too.  What the
    server returns is then checked with `search_matches`.
    """
    runs = sorted((r.strip() for r in _FILTER_SPECIAL.split(text)), key=len)
    if not runs or not runs[-1]:
        return ""
    value = escape_filter_value(runs[-1])
    return "(|" + "".join(f"({a}=*{value}*)" for a in attrs) + ")"


def search_matches(entry, text: str, attrs: tuple[str, ...]) -> bool:
    """Whether one of `attrs` of the entry contains `text`, ignoring case."""
    wanted = text.strip().lower()
    return not wanted or any(wanted in value.lower() for attr in attrs for value in entry.get(attr))


def searched(entries: Iterable[T], text: str, attrs: tuple[str, ...]) -> Iterator[T]:
    """The entries that match `text` (what the server's filter let through, checked)."""
    if not text.strip():
        yield from entries
        return
    for entry in entries:
        if search_matches(entry, text, attrs):
            yield entry
