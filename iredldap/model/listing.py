"""Listing that scales: paging, sorting and a search filter over a stream of entries.

The stores hand over an iterator over LDAP paged results
(`Directory.paged_search`), so the directory is read a few hundred entries
at a time; `select()` keeps only what the answer needs:

* no paging asked (the default, what iRedAdmin-Pro clients expect): every
  entry, sorted -- memory grows with the result, as before;
* ``page`` + ``page_size``: a bounded heap of ``page * page_size`` entries
  (`heapq.nsmallest`), so page 1 of a domain of 100,000 users holds 50
  entries, not 100,000; a deep page holds more (at most all of them);
* ``cursor`` (the ``_next_cursor`` of the previous page) + ``page_size``:
  entries after the cursor's sort key only, in a heap of ``page_size``:
  constant memory at any depth.  This is the way to walk a large domain.

Sorting happens here, not on the server: OpenLDAP sorts only with the
`sssvlv` overlay (iRedMail's slapd does not load it), and `mail`, `cn` and
`domainName` have no ORDERING matching rule to sort by.  Sorting here gives
the same order on every server (and on ldap3's mock) at the price of reading
the whole (filtered) result once per page; the total is counted on the way.
The ``search`` filter is sent to the server as an LDAP substring filter on
the address and the display name, its value escaped.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from iredldap.errors import InvalidInput
from iredldap.model import json_text
from iredldap.model.params import Choice, Integer, Param, ParamSet, Text

T = TypeVar("T")
Key = tuple[str, ...]

MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000


def list_params(sort_choices: tuple[str, ...], sort_synonyms: tuple[tuple[str, str], ...] = (),
                *, what: str = "address") -> ParamSet:
    """The paging, sorting and search parameters of a listing endpoint."""
    return ParamSet(
        (
            Param("page", Integer(minimum=1, maximum=MAX_PAGE),
                  "Page to return, from 1 (default 1 when page_size is given)"),
            Param("page_size", Integer(minimum=1, maximum=MAX_PAGE_SIZE),
                  f"Entries per page, at most {MAX_PAGE_SIZE} (default 50 with page or cursor); "
                  "without page, page_size and cursor everything is returned"),
            Param("cursor", Text(2048, allow_empty=False),
                  "Continue after the previous page: its `_next_cursor` (same sort and order; "
                  "constant memory at any depth)"),
            Param("sort", Choice(sort_choices, synonyms=sort_synonyms),
                  f"Sort by: {', '.join(sort_choices)} (default {sort_choices[0]})"),
            Param("order", Choice(("asc", "desc")), "Sort order: asc (default) or desc"),
            Param("search", Text(255),
                  f"Only entries whose {what} or display name contains this text (case-insensitive)"),
        ),
        conflicts=(("page", "cursor"),),
    )


@dataclass(frozen=True)
class Listing:
    """What a listing request asks for, from the parsed parameters."""

    sort: str
    descending: bool = False
    search: str = ""
    page: int | None = None
    page_size: int | None = None
    after: Key | None = None

    @classmethod
    def of(cls, values: dict[str, Any], default_sort: str) -> Listing:
        sort = values.get("sort") or default_sort
        descending = values.get("order") == "desc"
        after = None
        if "cursor" in values:
            after = _decode_cursor(values["cursor"], sort, descending)
        paged = "page" in values or "page_size" in values or after is not None
        return cls(sort=sort, descending=descending, search=values.get("search", ""),
                   page=(values.get("page", 1) if after is None else None) if paged else None,
                   page_size=values.get("page_size", 50) if paged else None, after=after)

    @property
    def paged(self) -> bool:
        return self.page_size is not None


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    listing: Listing
    next_cursor: str | None = None

    def envelope(self, data: list) -> dict:
        """`_data` and the paging keys beside it."""
        out: dict[str, Any] = {"_success": True, "_data": data, "_total": self.total}
        if self.listing.paged:
            if self.listing.page is not None:
                out["_page"] = self.listing.page
            out["_page_size"] = self.listing.page_size
            if self.next_cursor is not None:
                out["_next_cursor"] = self.next_cursor
        return out


class _Counted(Generic[T]):
    def __init__(self, items: Iterable[T]):
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[T]:
        for item in self._items:
            self.count += 1
            yield item


def select(entries: Iterable[T], key: Callable[[T], Key], listing: Listing) -> Page[T]:
    """The entries of the requested page, in order, and how many there are in all."""
    counted = _Counted(entries)
    size = listing.page_size
    if size is None:        # not paged
        items = sorted(counted, key=key, reverse=listing.descending)
        return Page(items, counted.count, listing)
    stream: Iterable[T] = counted
    if listing.after is not None:
        after, desc = listing.after, listing.descending
        stream = (e for e in counted if (key(e) < after if desc else key(e) > after))
        skip = 0
    else:
        skip = ((listing.page or 1) - 1) * size
    # One more than needed tells whether another page follows.
    wanted = skip + size + 1
    best = (heapq.nlargest if listing.descending else heapq.nsmallest)(wanted, stream, key=key)
    more = len(best) > skip + size
    items = best[skip:skip + size]
    cursor = _encode_cursor(key(items[-1]), listing) if more and items else None
    return Page(items, counted.count, listing, cursor)


def _encode_cursor(key: Key, listing: Listing) -> str:
    raw = json.dumps({"s": listing.sort, "o": "desc" if listing.descending else "asc", "k": list(key)},
                     separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, descending: bool) -> Key:
    try:
        raw = json_text.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = raw["k"]
        if not (isinstance(key, list) and key and all(isinstance(k, str) for k in key)):
            raise ValueError
        same = raw["s"] == sort and raw["o"] == ("desc" if descending else "asc")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this service gave out", param="cursor") from None
    if not same:
        raise InvalidInput("cursor: it was made for another sort or order; send the same sort and order",
                           param="cursor")
    return tuple(key)


def entry_key(sort: str, fields: dict[str, str], unique: str) -> Callable[[Any], Key]:
    """Sort key of an LDAP entry: the sort field's attribute, then the unique one
    (so that entries with the same name keep a fixed order), lower-cased."""
    attr = fields[sort]

    def key(entry) -> Key:
        first = entry.first(attr).lower()
        return (first,) if attr == unique else (first, entry.first(unique).lower())

    return key
