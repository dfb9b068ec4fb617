"""Listing that scales: page/page_size, cursor, sort, search and the total,
on every listing endpoint, on MOCK_SYNC and on a real slapd; and proof that
a listing holds a bounded number of entries whatever the domain's size."""

from __future__ import annotations

import tracemalloc
import weakref

import pytest
from ldap3.utils.ciDict import CaseInsensitiveDict
from ldap3.utils.dn import safe_dn

from iredldap.model import listing as listing_module
from iredldap.directory.connection import Directory, Entry
from iredldap.model.listing import Listing, select

from .support import assert_error

PW = "Secr3t#pass"
# (local part, display name): names sort differently from addresses.
PEOPLE = [("anna", "Zoe Anna"), ("bert", "Yves Bert"), ("carl", "Xena Carl"), ("dora", "Walter Dora"),
          ("emil", "Victor Emil"), ("fritz", "Ulla Fritz"), ("gina", "Tom Gina")]


@pytest.fixture
def people(api, factory):
    factory.domain("p.test")
    for local, name in PEOPLE:
        assert api.post(f"/api/user/{local}@p.test", {"password": PW, "name": name}).status_code == 201
    return sorted(f"{local}@p.test" for local, _ in PEOPLE)


def emails(result) -> list[str]:
    assert result.status_code == 200, result.text
    return [item if isinstance(item, str) else item["mail"][0] for item in result.json["_data"]]


def test_without_paging_everything_comes_as_before_with_the_total(api, people):
    r = api.get("/api/users/p.test")
    assert emails(r) == people
    assert r.json["_total"] == len(people)
    assert "_page" not in r.json and "_page_size" not in r.json and "_next_cursor" not in r.json
    r = api.get("/api/users/p.test", {"email_only": "yes"})
    assert r.json["_data"] == people and r.json["_total"] == len(people)


def test_pages_and_the_total(api, people):
    pages = [api.get("/api/users/p.test", {"email_only": "yes", "page": n, "page_size": 3}) for n in (1, 2, 3, 4)]
    assert [emails(p) for p in pages] == [people[0:3], people[3:6], people[6:7], []]
    for n, page in enumerate(pages, 1):
        assert page.json["_total"] == 7
        assert page.json["_page"] == n and page.json["_page_size"] == 3
    # page_size alone is page 1; page alone has 50 per page.
    r = api.get("/api/users/p.test", {"page_size": 2})
    assert emails(r) == people[:2] and r.json["_page"] == 1
    r = api.get("/api/users/p.test", {"page": 1})
    assert emails(r) == people and r.json["_page_size"] == 50


def test_sort_by_name_and_descending(api, people):
    by_name = [f"{local}@p.test" for local, _ in sorted(PEOPLE, key=lambda p: p[1].lower())]
    assert emails(api.get("/api/users/p.test", {"sort": "name"})) == by_name
    assert emails(api.get("/api/users/p.test", {"sort": "cn", "email_only": "yes"})) == by_name
    assert emails(api.get("/api/users/p.test", {"sort": "name", "order": "desc"})) == by_name[::-1]
    assert emails(api.get("/api/users/p.test", {"order": "desc", "page": 2, "page_size": 2})) == people[::-1][2:4]
    assert_error(api.get("/api/users/p.test", {"sort": "quota"}), 400, "INVALID_PARAMETER", "sort")
    assert_error(api.get("/api/users/p.test", {"order": "up"}), 400, "INVALID_PARAMETER", "order")


def test_search_on_address_and_name_case_insensitive(api, people):
    assert emails(api.get("/api/users/p.test", {"search": "ER"})) == ["bert@p.test", "dora@p.test"]  # bERt, waltER
    assert emails(api.get("/api/users/p.test", {"search": "gina@"})) == ["gina@p.test"]
    r = api.get("/api/users/p.test", {"search": "o", "page_size": 1})
    assert r.json["_total"] == 4 and emails(r) == ["anna@p.test"]  # zOe, dOra, victOr, tOm
    # Filter syntax is only text.
    for hostile in ("*", ")(mail=*", "\\", "(|(objectClass=*)", "a*n", "é"):
        r = api.get("/api/users/p.test", {"search": hostile})
        assert r.status_code == 200 and r.json["_data"] == [], (hostile, r.text)
    # Control characters are refused like in every text parameter.
    r = api.get("/api/users/p.test", {"search": "\x01"})
    assert r.status_code == 400 and r.json["param"] == "search", r.text
    assert emails(api.get("/api/users/p.test", {"search": ""})) == people


def test_cursor_walks_the_whole_list(api, people):
    for sort, order in (("mail", "asc"), ("name", "desc")):
        full = emails(api.get("/api/users/p.test", {"sort": sort, "order": order}))
        seen, cursor, rounds = [], None, 0
        while True:
            query = {"sort": sort, "order": order, "page_size": 3, "email_only": "yes"}
            if cursor:
                query["cursor"] = cursor
            r = api.get("/api/users/p.test", query)
            assert r.json["_total"] == 7
            seen += emails(r)
            cursor = r.json.get("_next_cursor")
            rounds += 1
            if not cursor:
                break
        assert seen == full and rounds == 3


def test_bad_cursors_are_400(api, people):
    cursor = api.get("/api/users/p.test", {"page_size": 2}).json["_next_cursor"]
    assert_error(api.get("/api/users/p.test", {"cursor": cursor, "sort": "name"}), 400, "INVALID_PARAMETER", "cursor")
    assert_error(api.get("/api/users/p.test", {"cursor": cursor, "order": "desc"}), 400, "INVALID_PARAMETER",
                 "cursor")
    assert_error(api.get("/api/users/p.test", {"cursor": "bm9wZQ"}), 400, "INVALID_PARAMETER", "cursor")
    assert_error(api.get("/api/users/p.test", {"cursor": "!!"}), 400, "INVALID_PARAMETER", "cursor")
    assert_error(api.get("/api/users/p.test", {"cursor": cursor, "page": 2}), 400, "CONFLICTING_PARAMETERS")


@pytest.mark.parametrize("bad", [{"page": 0}, {"page_size": 0}, {"page_size": 1001}, {"page": "x"}])
def test_paging_limits(api, people, bad):
    assert_error(api.get("/api/users/p.test", bad), 400, "INVALID_PARAMETER")


def test_disabled_only_combines_with_search_and_paging(api, people):
    for mail in ("anna@p.test", "bert@p.test", "carl@p.test"):
        assert api.put(f"/api/user/{mail}", {"accountStatus": "disabled"}).status_code == 200
    r = api.get("/api/users/p.test", {"disabled_only": "yes", "search": "a", "page_size": 1, "page": 2})
    # disabled: anna, bert, carl; containing "a": anna, carl (Carl, Xena), bert? no (Yves Bert)
    assert r.json["_total"] == 2 and emails(r) == ["carl@p.test"]


@pytest.mark.parametrize("kind,plural", [("alias", "aliases"), ("maillist", "maillists")])
def test_aliases_and_lists_page_sort_search(api, factory, kind, plural):
    factory.domain("g.test")
    names = {"a1": "Sales", "a2": "Accounting", "a3": "Board", "a4": "Marketing"}
    for local, name in names.items():
        assert api.post(f"/api/{kind}/{local}@g.test", {"name": name}).status_code == 201
    r = api.get(f"/api/{plural}/g.test", {"email_only": "yes", "page": 2, "page_size": 3})
    assert r.json["_data"] == ["a4@g.test"] and r.json["_total"] == 4
    r = api.get(f"/api/{plural}/g.test", {"sort": "name"})
    assert emails(r) == ["a2@g.test", "a3@g.test", "a4@g.test", "a1@g.test"]
    r = api.get(f"/api/{plural}/g.test", {"search": "ing", "order": "desc"})
    assert emails(r) == ["a4@g.test", "a2@g.test"] and r.json["_total"] == 2


def test_domains_page_sort_search(api, factory):
    for domain, name in (("d1.test", "Delta"), ("d2.test", "Alpha"), ("d3.test", "Charlie"), ("x.test", "Bravo")):
        factory.domain(domain, name=name)
    r = api.get("/api/domains", {"name_only": "yes"})
    assert r.json["_data"] == ["d1.test", "d2.test", "d3.test", "x.test"] and r.json["_total"] == 4
    r = api.get("/api/domains", {"name_only": "yes", "sort": "name"})
    assert r.json["_data"] == ["d2.test", "x.test", "d3.test", "d1.test"]
    r = api.get("/api/domains", {"name_only": "yes", "sort": "domain", "order": "desc", "page": 2, "page_size": 3})
    assert r.json["_data"] == ["d1.test"] and r.json["_total"] == 4 and r.json["_page"] == 2
    r = api.get("/api/domains", {"search": "d"})   # d1-d3 by name, Delta, Charlie by cn; not x.test (Bravo)
    assert [d["domainName"][0] for d in r.json["_data"]] == ["d1.test", "d2.test", "d3.test"]
    r = api.get("/api/domains", {"name_only": "yes", "search": "BRAV"})
    assert r.json["_data"] == ["x.test"]


def test_admins_listing(api, factory):
    factory.domain("a.test")
    factory.normal_admin("zed@admins.test", "Z3d#secret", domains=["a.test"])
    factory.normal_admin("amy@admins.test", "Amy#s3cret")
    assert api.post("/api/user/boss@a.test", {"password": PW, "name": "Boss"}).status_code == 201
    assert api.put("/api/user/boss@a.test", {"isGlobalAdmin": "yes"}).status_code == 200
    assert api.post("/api/user/plain@a.test", {"password": PW}).status_code == 201
    everyone = ["amy@admins.test", "boss@a.test", "root@admins.test", "zed@admins.test"]
    r = api.get("/api/admins", {"email_only": "yes"})
    assert r.json["_data"] == everyone and r.json["_total"] == 4
    r = api.get("/api/admins", {"page": 2, "page_size": 3})
    assert [a["mail"][0] for a in r.json["_data"]] == ["zed@admins.test"] and r.json["_total"] == 4
    assert r.json["_data"][0]["managed_domains"] == ["a.test"] and r.json["_data"][0]["isGlobalAdmin"] == "no"
    r = api.get("/api/admins", {"search": "BOSS"})
    assert [a["mail"][0] for a in r.json["_data"]] == ["boss@a.test"]
    assert r.json["_data"][0]["isGlobalAdmin"] == "yes" and "userPassword" not in r.json["_data"][0]
    r = api.get("/api/admins", {"email_only": "yes", "order": "desc", "search": "admins.test"})
    assert r.json["_data"] == ["zed@admins.test", "root@admins.test", "amy@admins.test"]


def test_normal_admin_pages_over_its_own_domains_only(app, settings, api, factory):
    from .support import ApiClient

    for domain in ("m1.test", "m2.test", "m3.test", "other.test"):
        factory.domain(domain)
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["m1.test", "m2.test", "m3.test"])
    boss = ApiClient(app, settings)
    boss.login("boss@admins.test", "B0ss#secret")
    r = boss.get("/api/domains", {"name_only": "yes", "page_size": 2, "page": 2})
    assert r.json["_data"] == ["m3.test"] and r.json["_total"] == 3
    assert boss.get("/api/domains", {"name_only": "yes", "search": "other"}).json["_total"] == 0


# -- memory ---------------------------------------------------------------------

def _entries(n: int):
    """n entries made one at a time, as paged results hand them over."""
    for i in range(n):
        yield Entry(f"mail=u{i:05d}@big.test,ou=Users,domainName=big.test,o=domains,dc=example,dc=com",
                    {"mail": [f"u{i:05d}@big.test"], "cn": [f"User number {i:05d} of the big domain"],
                     "objectClass": ["inetOrgPerson", "mailUser"], "description": ["x" * 200]})


def _peak(listing: Listing, n: int = 20_000) -> tuple[int, list]:
    key = listing_module.entry_key(listing.sort, {"mail": "mail", "name": "cn"}, "mail")
    tracemalloc.start()
    try:
        page = select(_entries(n), key, listing)
        return tracemalloc.get_traced_memory()[1], page
    finally:
        tracemalloc.stop()


def test_select_memory_is_bounded_by_the_page_not_the_domain():
    everything, page = _peak(Listing(sort="mail"))
    assert page.total == 20_000 and len(page.items) == 20_000
    first, page = _peak(Listing(sort="name", page=1, page_size=50))
    assert page.total == 20_000 and [e.first("mail") for e in page.items][:2] == ["u00000@big.test", "u00001@big.test"]
    # Constant at any depth with a cursor: entries after the cursor, 51 at a time.
    cursor = listing_module._encode_cursor(("user number 19000 of the big domain", "u19000@big.test"),
                                           Listing(sort="name"))
    deep, page = _peak(Listing.of({"cursor": cursor, "sort": "name", "page_size": 50}, "mail"))
    assert page.items[0].first("mail") == "u19001@big.test" and page.total == 20_000
    assert page.next_cursor is not None
    assert everything > 10_000_000, everything            # about 1 KB an entry, all kept
    assert first < everything / 50 and first < 400_000, (first, everything)
    assert deep < everything / 50 and deep < 400_000, (deep, everything)


def _add_users(conn, base: str, n: int) -> None:
    """`n` users u00000@big.test ... in `base` of a MOCK_SYNC directory.  The
    first is added by ldap3's `add_entry`, which checks and prepares the
    values; the others are copies of it with their own values put in (a
    twentieth of the time of `add_entry` for each, the same entries)."""
    def attributes(i: int) -> dict[str, list[str]]:
        return {"mail": [f"u{i:05d}@big.test"], "cn": [f"User {i:05d}"], "uid": [f"u{i:05d}"]}

    first = f"mail=u00000@big.test,{base}"
    assert conn.strategy.add_entry(first, {
        "objectClass": ["inetOrgPerson", "shadowAccount", "amavisAccount", "mailUser"], "sn": ["x"],
        "accountStatus": ["active"], **attributes(0)})
    dit = conn.server.dit
    template = dit[first]
    with conn.server.dit_lock:
        for i in range(1, n):
            dn = safe_dn(f"mail=u{i:05d}@big.test,{base}")
            entry = CaseInsensitiveDict({name: list(values) for name, values in template.items()})
            for name, values in attributes(i).items():
                entry[name] = [v.encode() for v in values]
            entry["entryDN"] = [dn.encode()]
            dit[dn] = entry


@pytest.mark.parametrize("backend", ["mock"])   # 20,000 entries: MOCK_SYNC adds them fast
def test_listing_20000_users_holds_a_bounded_number_of_entries(api, factory, directory, monkeypatch):
    """Through the API on MOCK_SYNC: at no time are more entries alive than one
    LDAP page of results plus the requested page (and the heap's one extra)."""
    factory.domain("big.test")
    base = factory.tree.container("big.test", "Users")
    _add_users(directory._connection(), base, 20_000)
    alive = {"now": 0, "max": 0, "yielded": 0}

    def gone():
        alive["now"] -= 1

    original = Directory.paged_search

    def counted(self, *args, **kwargs):
        for entry in original(self, *args, **kwargs):
            alive["now"] += 1
            alive["yielded"] += 1
            alive["max"] = max(alive["max"], alive["now"])
            weakref.finalize(entry, gone)
            yield entry

    monkeypatch.setattr(Directory, "paged_search", counted)
    r = api.get("/api/users/big.test", {"page": 3, "page_size": 20, "sort": "name", "order": "desc"})
    assert r.status_code == 200, r.text
    assert r.json["_total"] == 20_000
    assert [d["mail"][0] for d in r.json["_data"]][:2] == ["u19959@big.test", "u19958@big.test"]
    assert alive["yielded"] == 20_000
    # One page of LDAP results (paged_search's page_size, 500) still referenced,
    # 3 pages of 20 and one more in the heap, a few in flight: not 20,000.
    assert alive["max"] <= 500 + 3 * 20 + 1 + 5, alive
